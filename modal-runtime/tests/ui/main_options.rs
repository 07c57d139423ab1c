use modal_runtime::app;

#[app::main(workers = 4)]
async fn main() {}
