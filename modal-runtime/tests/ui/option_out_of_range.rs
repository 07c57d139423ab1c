use modal_runtime::app;

#[app::function(
    timeout = 100000,
    retries = 11,
    scaledown_window = 1,
    max_containers = 0,
    cpu = 0
)]
fn square(x: u64) -> u64 {
    x * x
}

#[app::function(min_containers = 5, max_containers = 2)]
fn cube(x: u64) -> u64 {
    x * x * x
}

fn main() {}
