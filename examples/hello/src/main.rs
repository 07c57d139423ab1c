//! Run with `cargo run -p hello`: an embedded control plane starts, each call
//! runs in a container process, and everything is stopped at the end.

use hello::{add, greet, hello_web, parse_port, square};
use modal_runtime::app;

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    println!("square.remote(7) = {}", square.remote(7).await?);
    println!(
        "greet.remote(\"modal-rs\") = {}",
        greet.remote("modal-rs".into()).await?
    );

    let call = add.spawn(40, 2).await?;
    println!(
        "add.spawn(40, 2) -> {} = {}",
        call.object_id(),
        call.get(None).await?
    );

    let squares = square.map(1..=10).collect_vec().await?;
    println!("square.map(1..=10) = {squares:?}");

    let sums = add.starmap([(1, 2), (3, 4), (5, 6)]).collect_vec().await?;
    println!("add.starmap([(1, 2), (3, 4), (5, 6)]) = {sums:?}");

    square.for_each(0..100).await?;
    println!("square.for_each(0..100) done");

    println!("square.local(9) = {}", square.local(9));

    if let Some(url) = hello_web.web_url().await? {
        println!("hello_web is served at {url}?name=you");
    }
    println!(
        "hello_web.remote(\"modal-rs\") = {}",
        hello_web.remote("modal-rs".into()).await?
    );

    match parse_port.remote("eighty".into()).await {
        Ok(port) => println!("parse_port.remote(\"eighty\") = {port}?!"),
        Err(e) => println!("parse_port.remote(\"eighty\") failed: {e}"),
    }
    Ok(())
}
