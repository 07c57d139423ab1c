//! A program that keeps its control plane busy: a long map of slow inputs.
//! The tests kill it mid-map and watch what becomes of its app.

use futures::StreamExt;
use modal_runtime::app;
use modal_tests::solo;

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let mut results = solo.map(std::iter::repeat_n(50_u64, 100_000));
    let mut done = 0_u64;
    while let Some(result) = results.next().await {
        result?;
        done += 1;
        if done == 1 {
            println!("running");
        }
    }
    println!("finished {done}");
    Ok(())
}
