//! Run with `cargo run -p model`: one table is built per container, then
//! used by many calls; a second parameter set gets its own containers.

use modal_runtime::app;
use model::{Factorizer, FactorizerParams};

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let small = Factorizer::new("small".into());
    println!("factorize(360) = {:?}", small.factorize.remote(360).await?);

    // A thousand calls, one table: `enter` ran once per container.
    let factors = small.factorize.map(2..1_002).collect_vec().await?;
    let most = factors.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "factorize.map(2..1002): {} results, at most {most} factors",
        factors.len()
    );
    println!(
        "count_primes(1_000_000) = {}",
        small.count_primes.remote(1_000_000).await?
    );

    // Another parameter set is another instance, in its own containers.
    let large = Factorizer::with_params(FactorizerParams {
        size: 10_000_000,
        ..FactorizerParams::new("large".into())
    });
    println!(
        "large.factorize(9_999_991) = {:?}",
        large.factorize.remote(9_999_991).await?
    );

    match small.factorize.remote(5_000_000).await {
        Ok(f) => println!("factorize(5_000_000) = {f:?}?!"),
        Err(e) => println!("factorize(5_000_000) failed: {e}"),
    }

    let stats = small.get_current_stats().await?;
    println!(
        "small: {} container(s), {} queued",
        stats.num_total_runners, stats.backlog
    );
    Ok(())
}
