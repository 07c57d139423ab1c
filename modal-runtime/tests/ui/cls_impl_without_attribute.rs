use modal_runtime::app;

#[app::cls]
struct Model {}

impl Model {
    fn ping(&self) {}
}

fn main() {}
