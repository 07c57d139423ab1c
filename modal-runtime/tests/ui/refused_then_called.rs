use modal_runtime::app;

#[app::function]
fn identity<T: Clone>(x: T) -> T {
    x
}

#[app::function]
fn count(text: &str, bytes: &[u8]) -> usize {
    text.len() + bytes.len()
}

// Only the macro's errors above: the calls below add none.
#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let n: usize = count.remote("a", b"b").await?;
    let _ = identity.remote(n).await?;
    let _ = count.spawn("a", b"b").await?;
    let _: modal_runtime::MapStream<u8> = identity.map(vec![1u8]);
    let _ = count.starmap(vec![("a", &b"b"[..])]);
    count.for_each(vec![("a", &b"b"[..])]).await?;
    let _: usize = count.local("a", b"b");
    Ok(())
}
