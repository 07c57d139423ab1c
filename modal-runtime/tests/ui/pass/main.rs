//! `#[app::main]` with a result type. The UI test runs this binary in the
//! manifest role, where it prints the manifest and exits.

use modal_runtime::app;

#[app::function]
fn square(x: u64) -> u64 {
    x * x
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let n = square.remote(3).await?;
    assert_eq!(n, 9);
    Ok(())
}
