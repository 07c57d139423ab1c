use modal_runtime::app;

#[app::web_endpoint]
#[app::function]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
