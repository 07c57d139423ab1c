use modal_runtime::app;

struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
