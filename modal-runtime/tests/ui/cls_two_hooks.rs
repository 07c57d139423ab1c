use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::enter]
    fn load(&mut self) {}

    #[app::enter]
    fn load_more(&mut self) {}

    #[app::exit]
    fn unload(&self) {}

    #[app::exit]
    async fn unload_more(&self) {}

    #[app::method]
    fn ping(&self) {}
}

fn main() {}
