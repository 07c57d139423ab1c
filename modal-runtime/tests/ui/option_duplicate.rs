use modal_runtime::app;

#[app::function(timeout = 60, retries = 1, timeout = 120)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
