use modal_runtime::app;

#[app::function(image = "Ubuntu:22.04")]
fn upper(x: u64) -> u64 {
    x
}

#[app::function(image = "python:3.12@sha256:abc")]
fn short_digest(x: u64) -> u64 {
    x
}

#[app::function(image = "registry.example.com/team//app")]
fn empty_component(x: u64) -> u64 {
    x
}

#[app::cls(image = "app:-dev")]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
