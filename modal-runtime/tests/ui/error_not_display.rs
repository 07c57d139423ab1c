use modal_runtime::app;

#[derive(Debug)]
struct MyError;

#[app::function]
fn check(x: u64) -> Result<u64, MyError> {
    if x > 0 { Ok(x) } else { Err(MyError) }
}

fn main() {}
