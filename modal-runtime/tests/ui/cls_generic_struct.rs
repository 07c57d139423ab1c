use modal_runtime::app;

#[app::cls]
struct Model<T> {
    #[app::parameter]
    value: T,
}

fn main() {}
