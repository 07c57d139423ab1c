use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn version() -> u32 {
        1
    }
}

fn main() {}
