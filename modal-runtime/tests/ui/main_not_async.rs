use modal_runtime::app;

#[app::main]
fn main() {
    println!("hello");
}
