use modal_runtime::app;

#[app::function(cpu = (2.0, 0.5))]
fn limit_below_request(x: u64) -> u64 {
    x
}

#[app::function(memory = (1024, 512))]
fn memory_limit_below_request(x: u64) -> u64 {
    x
}

#[app::function(memory = (512, 1024, 2048))]
fn three_values(x: u64) -> u64 {
    x
}

#[app::function(memory = (512, "1GiB"))]
fn string_limit(x: u64) -> u64 {
    x
}

#[app::function(memory = (0.5, 1))]
fn float_request(x: u64) -> u64 {
    x
}

#[app::cls(cpu = (1, 2000), memory_limit = 4096)]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
