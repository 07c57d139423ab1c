use modal_runtime::app;

#[app::function]
fn greet(name: impl Into<String>) -> String {
    format!("hello {}", name.into())
}

fn main() {}
