use modal_runtime::app;

#[app::cls]
struct Greeter {}

#[app::cls]
impl Greeter {
    #[app::method]
    fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

fn main() {}
