use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn items(&self) -> impl Iterator<Item = u8> {
        0..3
    }
}

fn main() {}
