use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls(cpu = 2)]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
