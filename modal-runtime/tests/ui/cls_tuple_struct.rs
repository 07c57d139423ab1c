use modal_runtime::app;

#[app::cls]
struct Model(String);

#[app::cls]
struct Empty;

fn main() {}
