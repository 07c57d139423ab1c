use modal_runtime::app;

struct Model {}

impl Model {
    #[app::enter]
    fn load(&mut self) {}

    #[app::exit]
    fn unload(&mut self) {}

    #[app::method]
    fn ping(&self) {}
}

fn main() {}
