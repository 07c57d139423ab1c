use modal_runtime::app;

#[app::cls]
struct Model {
    #[app::parameter]
    name: &'static str,
}

#[app::cls]
impl Model {
    #[app::method]
    fn name(&self) -> String {
        self.name.to_string()
    }
}

fn main() {}
