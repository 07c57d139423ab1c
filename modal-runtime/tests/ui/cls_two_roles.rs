use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::enter]
    #[app::method]
    fn load(&self) {}
}

fn main() {}
