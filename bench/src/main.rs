//! `cargo xtask bench`: warm round trip, map throughput, cold start, the
//! overhead of a map of 10 ms inputs, a 1 MiB round trip (all on the
//! embedded control plane) and the memory of a 10-million-input map (caller
//! and a standalone control plane in processes of their own), one
//! `name value unit` line per figure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modal_runtime::{AppBinary, Client, Error, Manifest, app};
use serde_bytes::ByteBuf;

mod web;

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

/// Sleeps 10 ms: the unit of the scheduling-overhead figure.
#[app::function(max_containers = 2)]
fn sleep_10ms(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(10));
    x
}

/// Waits `ms`: a call that stays pending while a restart is measured.
#[app::function(max_containers = 1)]
async fn park(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// Returns its argument: a payload's round trip.
#[app::function]
async fn echo_bytes(payload: ByteBuf) -> ByteBuf {
    payload
}

struct Plan {
    rtt_samples: usize,
    map_inputs: u64,
    cold_samples: usize,
    sleep_inputs: u64,
    payload_samples: usize,
    spawn_map_inputs: u64,
    big_map_inputs: u64,
}

#[app::main]
async fn main() -> Result<(), Error> {
    // The child run of the memory figure: one big map, then its peak memory.
    if let Some(n) = std::env::args()
        .skip_while(|a| a != "--big-map")
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
    {
        return big_map(n).await;
    }
    if let Some(n) = std::env::args()
        .skip_while(|a| a != "--map")
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
    {
        // Map throughput alone: once from no container, then three times
        // over warm ones.
        let started = Instant::now();
        ping.map(0..n).drain().await?;
        report(
            "map_throughput_cold",
            n as f64 / started.elapsed().as_secs_f64(),
            "inputs/s",
        );
        for _ in 0..3 {
            let started = Instant::now();
            ping.map(0..n).drain().await?;
            report(
                "map_throughput_warm",
                n as f64 / started.elapsed().as_secs_f64(),
                "inputs/s",
            );
        }
        return Ok(());
    }
    if let Some(n) = arg_after("--spawn-map") {
        return spawn_map_durable(n).await;
    }
    if let Some(n) = arg_after("--spawns") {
        return spawn_rtt(n as usize).await;
    }
    if let Some(n) = arg_after("--park") {
        return park_calls(n).await;
    }
    if std::env::args().any(|a| a == "--docker-only") {
        return docker_figures(2_000, 10).await;
    }
    if std::env::args().any(|a| a == "--web-only") {
        return web::web_figures(5_000, Duration::from_secs(3)).await;
    }
    if std::env::args().any(|a| a == "--durable-only") {
        return durable_figures(1_000_000);
    }
    if std::env::args().any(|a| a == "--concurrent-64") {
        return concurrent_callers(64, Duration::from_secs(3)).await;
    }
    if std::env::args().any(|a| a == "--payloads") {
        // Round trip by payload size, to see where the time goes.
        for size in [1_usize << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20] {
            let payload = ByteBuf::from(vec![7_u8; size]);
            let rtt = round_trips(50, |_| {
                let payload = payload.clone();
                async move { echo_bytes.remote(payload).await.map(|p| p.len() as u64) }
            })
            .await?;
            report(
                &format!("payload_{size}_rtt_p50"),
                percentile(&rtt, 0.50) / 1000.0,
                "ms",
            );
        }
        return Ok(());
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            rtt_samples: 2_000,
            map_inputs: 20_000,
            cold_samples: 5,
            sleep_inputs: 1_000,
            payload_samples: 50,
            spawn_map_inputs: 100_000,
            big_map_inputs: 1_000_000,
        }
    } else {
        Plan {
            rtt_samples: 10_000,
            map_inputs: 100_000,
            cold_samples: 20,
            sleep_inputs: 10_000,
            payload_samples: 200,
            spawn_map_inputs: 1_000_000,
            big_map_inputs: 10_000_000,
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
    let cold = cold_starts(&client, "bench-cold", &binary, plan.cold_samples).await?;
    report("cold_start_p50", percentile(&cold, 0.50) / 1000.0, "ms");
    report("cold_start_max", percentile(&cold, 1.0) / 1000.0, "ms");

    // 10 ms inputs on two containers of concurrency 1: the time beyond the
    // ideal (inputs × 10 ms / 2) is the scheduling overhead. A `sleep` of
    // 10 ms itself takes longer on most machines; that part is measured
    // here too, so the overhead can also be read against the real sleep.
    let measured_sleep = {
        let started = Instant::now();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(10));
        }
        started.elapsed() / 100
    };
    report("sleep_10ms_takes", measured_sleep.as_secs_f64() * 1e3, "ms");
    sleep_10ms.remote(0).await?;
    let started = Instant::now();
    sleep_10ms.map(0..plan.sleep_inputs).drain().await?;
    let elapsed = started.elapsed();
    let ideal = Duration::from_millis(10 * plan.sleep_inputs / 2);
    report(
        "sleep_map_overhead_per_input",
        elapsed.saturating_sub(ideal).as_secs_f64() * 1e3 / plan.sleep_inputs as f64,
        "ms",
    );
    let real = measured_sleep * (plan.sleep_inputs as u32) / 2;
    report(
        "sleep_map_overhead_beyond_sleep",
        (elapsed.as_secs_f64() - real.as_secs_f64()) * 1e3 / plan.sleep_inputs as f64,
        "ms",
    );

    // 1 MiB in, 1 MiB out.
    let payload = ByteBuf::from(vec![7_u8; 1 << 20]);
    let rtt = round_trips(plan.payload_samples, |_| {
        let payload = payload.clone();
        async move { echo_bytes.remote(payload).await.map(|p| p.len() as u64) }
    })
    .await?;
    report(
        "payload_1mib_rtt_p50",
        percentile(&rtt, 0.50) / 1000.0,
        "ms",
    );

    let throughput = against_standalone(&["--concurrent-64"], |stdout| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("calls_per_s "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })?;
    report("remote_concurrent_64_throughput", throughput.0, "calls/s");

    durable_figures(plan.spawn_map_inputs)?;

    let (caller, server) = big_map_memory(plan.big_map_inputs)?;
    report("big_map_inputs", plan.big_map_inputs as f64, "inputs");
    report("big_map_caller_peak_rss", caller, "MiB");
    report("big_map_control_plane_peak_rss", server, "MiB");
    web::web_figures(plan.rtt_samples / 2, Duration::from_secs(3)).await?;
    docker_figures(plan.rtt_samples / 5, plan.cold_samples / 2).await
}

/// The Docker backend's figures, where a Docker Engine answers: warm round
/// trip, zero containers to the first result, and in the same sitting the
/// floor, `docker run --rm` of a no-op static binary in a `FROM scratch`
/// image.
async fn docker_figures(rtt_samples: usize, cold_samples: usize) -> Result<(), Error> {
    use modal_runtime::server::{BackendConfig, DockerConfig, Server, ServerConfig};
    let data_dir = std::env::temp_dir().join(format!("modal-bench-docker-{}", std::process::id()));
    let mut config = ServerConfig::new(&data_dir);
    config.backend = BackendConfig::Docker(DockerConfig::default());
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("no Docker figures: {e}");
            return Ok(());
        }
    };
    let client = Client::connect(server.url()).await?;
    let binary = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    let manifest = Manifest::of_this_binary();
    // The first deploy builds the image; every later one finds it.
    client
        .create_app(
            "bench-docker",
            &manifest,
            AppBinary::LocalPath(&binary),
            false,
        )
        .await?;
    let warm = client.function::<(u64,), u64>("bench-docker", "ping");
    let rtt = round_trips(rtt_samples, |i| {
        let warm = warm.clone();
        async move { warm.remote((i,)).await }
    })
    .await?;
    report("docker_remote_rtt_p50", percentile(&rtt, 0.50), "us");
    let cold = cold_starts(&client, "bench-docker-cold", &binary, cold_samples).await?;
    report(
        "docker_cold_start_p50",
        percentile(&cold, 0.50) / 1000.0,
        "ms",
    );
    report(
        "docker_cold_start_max",
        percentile(&cold, 1.0) / 1000.0,
        "ms",
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    match docker_run_floor(cold_samples.max(5)) {
        Ok(runs) => {
            report(
                "floor_docker_run_p50",
                percentile(&runs, 0.50) / 1000.0,
                "ms",
            );
            report(
                "floor_docker_run_min",
                percentile(&runs, 0.0) / 1000.0,
                "ms",
            );
        }
        Err(e) => eprintln!("no Docker floor: {e}"),
    }
    Ok(())
}

/// Zero containers to the first result, `samples` times: each a fresh
/// ephemeral app `name` of `binary`, hydrated, then timed from `remote` to
/// its result, then stopped.
async fn cold_starts(
    client: &Client,
    name: &str,
    binary: &std::path::Path,
    samples: usize,
) -> Result<Vec<Duration>, Error> {
    let manifest = Manifest::of_this_binary();
    let mut cold = Vec::with_capacity(samples);
    for _ in 0..samples {
        let created = client
            .create_app(name, &manifest, AppBinary::LocalPath(binary), true)
            .await?;
        let function = client.function::<(u64,), u64>(&created.app, "ping");
        function.hydrate().await?;
        let started = Instant::now();
        function.remote((1,)).await?;
        cold.push(started.elapsed());
        client.stop_app(&created.app).await?;
    }
    Ok(cold)
}

/// `docker run --rm` of the no-op binary beside this one (linked
/// statically by `cargo xtask bench`) in a `FROM scratch` image, `runs`
/// times after one warm-up.
fn docker_run_floor(runs: usize) -> Result<Vec<Duration>, String> {
    let noop = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("noop");
    let context = std::env::temp_dir().join(format!("modal-bench-noop-{}", std::process::id()));
    std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
    std::fs::copy(&noop, context.join("noop")).map_err(|e| format!("{}: {e}", noop.display()))?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY noop /noop\nENTRYPOINT [\"/noop\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run docker: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or(format!("docker {args:?} failed"))
            })
    };
    let tag = "modal-rs-bench-noop:latest";
    docker(&["build", "-q", "-t", tag, &context.display().to_string()])?;
    let _ = std::fs::remove_dir_all(&context);
    docker(&["run", "--rm", tag])?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        docker(&["run", "--rm", tag])?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// The store's figures, against a standalone control plane on SQLite (and
/// on PostgreSQL where `MODAL_BENCH_POSTGRES_URL` names a database):
/// a `spawn_map` of `n` trivial inputs to its acknowledgement (every input
/// committed), one `spawn` to its id, and a restart with 10,000 calls
/// pending.
fn durable_figures(n: u64) -> Result<(), Error> {
    let mut stores = vec![("sqlite", None)];
    if let Ok(url) = std::env::var("MODAL_BENCH_POSTGRES_URL") {
        stores.push(("postgres", Some(url)));
    }
    for (name, store) in stores {
        let env = store.as_deref().map(|url| ("MODAL_BENCH_STORE", url));
        let (throughput, _) =
            against_standalone_with(&["--spawn-map", &n.to_string()], env, |out| {
                figure(out, "acked_per_s ")
            })?;
        report(
            &format!("spawn_map_durable_throughput_{name}"),
            throughput,
            "inputs/s",
        );
        let (p50, _) = against_standalone_with(&["--spawns", "1000"], env, |out| {
            figure(out, "spawn_p50_us ")
        })?;
        report(&format!("spawn_rtt_p50_{name}"), p50, "us");
    }
    report("restart_recovery_time", restart_recovery(10_000)?, "ms");
    Ok(())
}

fn figure(stdout: &str, prefix: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn arg_after(flag: &str) -> Option<u64> {
    std::env::args()
        .skip_while(|a| a != flag)
        .nth(1)
        .and_then(|n| n.parse().ok())
}

/// The child run: a `spawn_map` of `n` trivial inputs on this program's
/// own (ephemeral) app; prints inputs acknowledged per second.
async fn spawn_map_durable(n: u64) -> Result<(), Error> {
    ping.remote(0).await?;
    let started = Instant::now();
    let call = ping
        .handle()
        .clone()
        .spawn_map((0..n).map(|x| (x,)))
        .await?;
    let acked = started.elapsed();
    println!("acked_per_s {:.0}", n as f64 / acked.as_secs_f64());
    let results = call.get(None).await?;
    assert_eq!(results.len() as u64, n);
    Ok(())
}

/// The child run: `n` spawns one after another; prints the p50 from the
/// request to its (committed) call id.
async fn spawn_rtt(n: usize) -> Result<(), Error> {
    let times = round_trips(n, |i| async move { ping.spawn(i).await.map(|_| i) }).await?;
    println!("spawn_p50_us {:.0}", percentile(&times, 0.5));
    Ok(())
}

/// The child run: deploys this binary as `bench-durable` and spawns `n`
/// calls of `park` that stay pending, then prints `submitted`.
async fn park_calls(n: u64) -> Result<(), Error> {
    let client = Client::default_client()?;
    let binary = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    client
        .create_app(
            "bench-durable",
            &Manifest::of_this_binary(),
            AppBinary::Upload(&binary),
            false,
        )
        .await?;
    let parked = client.function::<(u64,), u64>("bench-durable", "park");
    for _ in 0..n / 100 {
        futures::future::try_join_all((0..100).map(|_| parked.spawn((600_000,)))).await?;
    }
    println!("submitted");
    Ok(())
}

/// SIGKILL of a control plane holding `n` pending calls to the moment its
/// successor on the same store has them all queued again, in ms.
fn restart_recovery(n: u64) -> Result<f64, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    let server_exe = exe.with_file_name("bench_server");
    let data_dir = std::env::temp_dir().join(format!("modal-bench-restart-{}", std::process::id()));
    let start = || {
        let mut command = Command::new(&server_exe);
        command.env("MODAL_BENCH_DATA_DIR", &data_dir);
        start_server(command)
    };
    let (mut first, url, config) = start()?;
    let submitted = Command::new(&exe)
        .args(["--park", &n.to_string()])
        .env("MODAL_SERVER_URL", &url)
        .env("MODAL_CONFIG", &config)
        .output()
        .map_err(|e| Error::Internal(e.to_string()))?;
    if !submitted.status.success() {
        return Err(Error::Internal(format!(
            "submitting the pending calls failed: {}",
            String::from_utf8_lossy(&submitted.stderr)
        )));
    }
    let killed = Instant::now();
    let _ = first.kill();
    let _ = first.wait();
    // The successor queues every open call before it listens.
    let (mut second, _, _) = start()?;
    let took = killed.elapsed();
    drop(second.stdin.take());
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(took.as_secs_f64() * 1e3)
}

/// Runs a map of `n` trivial inputs in a child process against a
/// standalone control plane in another; returns both peak RSS figures, MiB.
fn big_map_memory(n: u64) -> Result<(f64, f64), Error> {
    against_standalone(&["--big-map", &n.to_string()], |stdout| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("peak_rss_mib "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Runs this binary with `args` as a caller of a standalone control plane
/// (both in processes of their own); returns what `parse` reads from the
/// caller's output and the control plane's peak RSS in MiB.
fn against_standalone(
    args: &[&str],
    parse: impl Fn(&str) -> Option<f64>,
) -> Result<(f64, f64), Error> {
    against_standalone_with(args, None, parse)
}

/// [`against_standalone`], with one more variable in the control plane's
/// environment.
fn against_standalone_with(
    args: &[&str],
    env: Option<(&str, &str)>,
    parse: impl Fn(&str) -> Option<f64>,
) -> Result<(f64, f64), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Internal(e.to_string()))?;
    let mut command = Command::new(exe.with_file_name("bench_server"));
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let (mut server, url, config) = start_server(command)?;
    let output = Command::new(&exe)
        .args(args)
        .env("MODAL_SERVER_URL", &url)
        .env("MODAL_CONFIG", &config)
        .output()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let server_peak = peak_rss_mib(server.id());
    drop(server.stdin.take());
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::Internal(format!(
            "the run with {args:?} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let figure = parse(&stdout).ok_or_else(|| {
        Error::Internal(format!("the run with {args:?} printed no figure: {stdout}"))
    })?;
    Ok((figure, server_peak.unwrap_or(f64::NAN)))
}

/// Starts the standalone control plane `command` runs; returns it and
/// the URL it printed once listening.
/// Starts a `bench_server`; returns it and what its callers need: its URL
/// and the config file beside its credentials (its admin token).
fn start_server(mut command: Command) -> Result<(std::process::Child, String, String), Error> {
    let mut server = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the control plane: {e}")))?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped"));
    let (mut url, mut config) = (String::new(), String::new());
    lines
        .read_line(&mut url)
        .and_then(|_| lines.read_line(&mut config))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((server, url.trim().to_owned(), config.trim().to_owned()))
}

/// The child run: `callers` tasks each calling `ping` in a loop for
/// `length` (after a warm-up), then the calls per second of them all.
async fn concurrent_callers(callers: usize, length: Duration) -> Result<(), Error> {
    ping.remote(0).await?;
    let run = |length: Duration| async move {
        let deadline = Instant::now() + length;
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                tokio::spawn(async move {
                    let mut calls = 0_u64;
                    while Instant::now() < deadline {
                        ping.remote(calls).await?;
                        calls += 1;
                    }
                    Ok::<u64, Error>(calls)
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.map_err(|e| Error::Internal(e.to_string()))??;
        }
        Ok::<u64, Error>(total)
    };
    run(Duration::from_millis(500)).await?;
    let started = Instant::now();
    let calls = run(length).await?;
    println!(
        "calls_per_s {:.0}",
        calls as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The child run: a map of `n` trivial inputs, then this process's peak RSS.
async fn big_map(n: u64) -> Result<(), Error> {
    let mut seen = 0_u64;
    let mut results = ping.map(0..n);
    while let Some(r) = futures::StreamExt::next(&mut results).await {
        r?;
        seen += 1;
    }
    assert_eq!(seen, n);
    println!(
        "peak_rss_mib {:.1}",
        peak_rss_mib(std::process::id()).unwrap_or(f64::NAN)
    );
    Ok(())
}

/// `VmHWM` of a process, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
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
