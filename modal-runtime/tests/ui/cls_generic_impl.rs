use modal_runtime::app;

struct Wrapper<T>(T);

#[app::cls]
impl<T> Wrapper<T> {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
