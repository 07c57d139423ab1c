use modal_runtime::app;

struct Settings {
    #[app::parameter]
    depth: u32,
}

fn main() {}
