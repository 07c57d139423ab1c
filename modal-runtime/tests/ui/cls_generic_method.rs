use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn echo<T: Clone>(&self, x: T) -> T {
        x
    }
}

fn main() {}
