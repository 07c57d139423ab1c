use modal_runtime::app;

#[app::cls]
struct Model {}

trait Ping {
    fn ping(&self);
}

#[app::cls]
impl Ping for Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
