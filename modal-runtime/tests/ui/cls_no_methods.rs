use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    fn helper(&self) -> u32 {
        1
    }
}

fn main() {}
