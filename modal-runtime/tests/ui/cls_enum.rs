use modal_runtime::app;

#[app::cls]
enum Model {
    Small,
    Large,
}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
