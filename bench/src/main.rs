//! `cargo xtask bench`: warm round trip, map throughput and cold start on the
//! embedded control plane, one `name value unit` line per figure.

use std::time::{Duration, Instant};

use modal_runtime::{AppBinary, Client, Error, Manifest, app};

/// The cheapest possible function: what is measured is the framework.
#[app::function]
async fn ping(x: u64) -> u64 {
    x
}

/// The same on a blocking thread, as plain `fn`s run.
#[app::function]
fn ping_blocking(x: u64) -> u64 {
    x
}

struct Plan {
    rtt_samples: usize,
    map_inputs: u64,
    cold_samples: usize,
}

#[app::main]
async fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            rtt_samples: 2_000,
            map_inputs: 20_000,
            cold_samples: 5,
        }
    } else {
        Plan {
            rtt_samples: 10_000,
            map_inputs: 100_000,
            cold_samples: 20,
        }
    };

    // Warm round trip: one container, already started.
    let rtt = round_trips(plan.rtt_samples, |i| async move { ping.remote(i).await }).await?;
    report("remote_rtt_p50", percentile(&rtt, 0.50), "us");
    report("remote_rtt_p99", percentile(&rtt, 0.99), "us");
    let rtt = round_trips(plan.rtt_samples, |i| async move {
        ping_blocking.remote(i).await
    })
    .await?;
    report("remote_rtt_blocking_fn_p50", percentile(&rtt, 0.50), "us");

    // Map throughput over trivial inputs.
    let started = Instant::now();
    let results = ping.map(0..plan.map_inputs).collect_vec().await?;
    let elapsed = started.elapsed();
    assert_eq!(results.len() as u64, plan.map_inputs);
    report(
        "map_throughput",
        plan.map_inputs as f64 / elapsed.as_secs_f64(),
        "inputs/s",
    );

    // Cold start: a fresh app with no containers, to its first result.
    let client = Client::default_client()?;
    let binary = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    let manifest = Manifest::of_this_binary();
    let mut cold = Vec::new();
    for _ in 0..plan.cold_samples {
        let created = client
            .create_app("bench-cold", &manifest, AppBinary::LocalPath(&binary), true)
            .await?;
        let function = client.function::<(u64,), u64>(&created.app, "ping");
        function.hydrate().await?;
        let started = Instant::now();
        function.remote((1,)).await?;
        cold.push(started.elapsed());
        client.stop_app(&created.app).await?;
    }
    report("cold_start_p50", percentile(&cold, 0.50) / 1000.0, "ms");
    report("cold_start_max", percentile(&cold, 1.0) / 1000.0, "ms");
    Ok(())
}

async fn round_trips<F, Fut>(samples: usize, call: F) -> Result<Vec<Duration>, Error>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, Error>>,
{
    for i in 0..(samples / 10).max(50) as u64 {
        call(i).await?;
    }
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples as u64 {
        let started = Instant::now();
        call(i).await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// The `q` quantile in microseconds.
fn percentile(times: &[Duration], q: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn report(name: &str, value: f64, unit: &str) {
    let value = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    };
    println!("{name} {value} {unit}");
}
