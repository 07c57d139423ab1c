use modal_runtime::app;

#[app::function(gpu = "A100:0")]
fn no_gpus(x: u64) -> u64 {
    x
}

#[app::function(gpu = "A100:x")]
fn not_a_count(x: u64) -> u64 {
    x
}

#[app::function(gpu = "H100:16")]
fn too_many(x: u64) -> u64 {
    x
}

#[app::cls(gpu = ":2")]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
