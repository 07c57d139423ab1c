use modal_runtime::app;

#[derive(Default)]
struct Config {
    depth: u32,
}

#[app::cls]
struct Model {
    #[app::parameter]
    config: Config,
}

#[app::cls]
impl Model {
    #[app::method]
    fn depth(&self) -> u32 {
        self.config.depth
    }
}

fn main() {}
