use modal_runtime::app;

#[app::parameter]
struct Settings {
    depth: u32,
}

fn main() {}
