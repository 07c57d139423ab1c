use modal_runtime::app;

#[app::function]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[app::function]
fn now() -> u64 {
    0
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    // `map` is for one-argument functions: these need `starmap`.
    let _ = add.map(vec![(1, 2), (3, 4)]);
    let _ = now.map(vec![()]);
    let _ = add.starmap(vec![(1, 2), (3, 4)]);
    Ok(())
}
