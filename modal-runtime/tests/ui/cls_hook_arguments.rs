use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::enter]
    fn load(&mut self, path: String, retries: u32) {
        let _ = (path, retries);
    }

    #[app::exit]
    fn unload<T: Default>(&self) {}

    #[app::method]
    fn ping(&self) {}
}

fn main() {}
