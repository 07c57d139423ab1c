//! The web figures: a trivial JSON endpoint through the ingress and a
//! container, warm, against a plain axum server in the same sitting.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modal_runtime::{Error, app};

use crate::{percentile, report};

/// The cheapest endpoint: what is measured is the ingress and the
/// framework. Public, as the floor has no token to check either; 64
/// inputs at once in one container, as the floor is one process.
#[app::function(max_inputs = 64, max_containers = 1)]
#[app::web_endpoint(label = "ping", public)]
async fn web_ping(x: u64) -> u64 {
    x
}

/// `web_rtt_p50` (one HTTP/1.1 keep-alive client, sequential) and
/// `web_throughput_64` (64 clients, each its own connection, for `length`),
/// for the endpoint and for the floor.
pub(crate) async fn web_figures(samples: usize, length: Duration) -> Result<(), Error> {
    let endpoint = web_ping
        .web_url()
        .await?
        .ok_or_else(|| Error::Internal("the embedded control plane serves no HTTP".into()))?;
    let (mut floor, floor_url) = start_floor()?;
    for (name, url) in [
        ("web", endpoint.as_str()),
        ("floor_axum", floor_url.as_str()),
    ] {
        let rtt = http_round_trips(url, samples).await?;
        report(&format!("{name}_rtt_p50"), percentile(&rtt, 0.50), "us");
        let throughput = http_throughput(url, 64, length).await?;
        report(&format!("{name}_throughput_64"), throughput, "requests/s");
    }
    drop(floor.stdin.take());
    let _ = floor.wait();
    Ok(())
}

fn start_floor() -> Result<(std::process::Child, String), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    let mut floor = Command::new(exe.with_file_name("axum_floor"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the axum floor: {e}")))?;
    let mut url = String::new();
    BufReader::new(floor.stdout.take().expect("piped"))
        .read_line(&mut url)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((floor, url.trim().to_owned()))
}

/// `url`, parsed once: what is measured is the server, not URL parsing.
fn parse(url: &str) -> Result<reqwest::Url, Error> {
    reqwest::Url::parse(url).map_err(|e| Error::Internal(format!("{url}: {e}")))
}

async fn post(client: &reqwest::Client, url: &reqwest::Url, x: u64) -> Result<u64, Error> {
    let response = client
        .post(url.clone())
        .json(&x)
        .send()
        .await
        .map_err(|e| Error::Internal(format!("POST {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(Error::Internal(format!(
            "POST {url}: {}",
            response.status()
        )));
    }
    response
        .json()
        .await
        .map_err(|e| Error::Internal(format!("POST {url}: {e}")))
}

async fn http_round_trips(url: &str, samples: usize) -> Result<Vec<Duration>, Error> {
    let url = &parse(url)?;
    let client = reqwest::Client::new();
    for i in 0..(samples / 10).max(50) as u64 {
        post(&client, url, i).await?;
    }
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples as u64 {
        let started = Instant::now();
        let back = post(&client, url, i).await?;
        times.push(started.elapsed());
        assert_eq!(back, i);
    }
    Ok(times)
}

async fn http_throughput(url: &str, clients: usize, length: Duration) -> Result<f64, Error> {
    let url = parse(url)?;
    let run = |length: Duration| {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let deadline = Instant::now() + length;
                    let mut done = 0_u64;
                    while Instant::now() < deadline {
                        post(&client, &url, done).await?;
                        done += 1;
                    }
                    Ok::<u64, Error>(done)
                })
            })
            .collect();
        async move {
            let mut total = 0;
            for task in tasks {
                total += task.await.map_err(|e| Error::Internal(e.to_string()))??;
            }
            Ok::<u64, Error>(total)
        }
    };
    run(Duration::from_millis(500)).await?;
    let started = Instant::now();
    let total = run(length).await?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
