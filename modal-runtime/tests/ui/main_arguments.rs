use modal_runtime::app;

#[app::main]
async fn main(args: Vec<String>) {
    println!("{args:?}");
}
