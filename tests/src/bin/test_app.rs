//! The tests' app. As a container it serves the functions of `modal_tests`;
//! run directly it exercises them on the embedded control plane.

use modal_runtime::app;
use modal_tests::{add, checked_div, greet, shout, square};

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    println!("remote {}", square.remote(12).await?);
    println!("greet {}", greet.remote("embedded".into()).await?);
    let call = add.spawn(20, 22).await?;
    println!("spawn {}", call.get(None).await?);
    let squares = square.map(0..100).collect_vec().await?;
    println!("map {}", squares.iter().sum::<u64>());
    println!("shout {}", shout.remote("hello".into()).await?);
    match checked_div.remote(1, 0).await {
        Err(e) => println!("error {e}"),
        Ok(v) => println!("unexpected {v}"),
    }
    Ok(())
}
