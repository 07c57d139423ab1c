use modal_runtime::app;

#[app::function(max_inputs = 4, target_inputs = 8)]
fn a(x: u32) -> u32 {
    x
}

#[app::function(target_inputs = 2)]
fn b(x: u32) -> u32 {
    x
}

#[app::function(max_inputs = 0)]
fn c(x: u32) -> u32 {
    x
}

#[app::cls(allow_concurrent_inputs = 10)]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
