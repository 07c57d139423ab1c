//! A program on its own embedded control plane that leaves processes behind
//! in a container and then waits forever, for tests that kill it:
//! `embedded_sleepers KEY=VALUE` starts [`start_sleepers`] with that marker,
//! prints `started`, and sleeps.

use modal_runtime::app;
use modal_tests::start_sleepers;

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let marker = std::env::args()
        .nth(1)
        .expect("usage: embedded_sleepers KEY=VALUE");
    let started = start_sleepers.remote(marker).await?;
    println!("started {started}");
    std::future::pending::<()>().await;
    Ok(())
}
