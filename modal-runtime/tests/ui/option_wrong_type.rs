use modal_runtime::app;

#[app::function(timeout = "60", cpu = "2", gpu = A100, env = ["RUST_LOG=info"], secrets = "db")]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    // The stub is still generated, so using it is not a second error.
    let _ = square.local(2);
}
