use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::enter]
    fn load(&mut self) -> u32 {
        0
    }

    #[app::method]
    fn ping(&self) {}
}

fn main() {}
