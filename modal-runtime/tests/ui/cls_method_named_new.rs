use modal_runtime::app;

#[app::cls]
struct Model {
    #[app::parameter]
    name: String,
}

#[app::cls]
impl Model {
    fn new(name: String) -> Self {
        Model { name }
    }

    #[app::method]
    fn name(&self) -> String {
        self.name.clone()
    }
}

fn main() {}
