//! Nothing outlives its owner: a container's whole process tree ends with
//! the container, whether it is stopped, scaled down, or its control plane
//! (standalone or embedded in a program) is killed; and an embedded run's
//! temporary folder goes with it, even after a crash.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use modal_runtime::Client;

/// A marker no other test or run shares.
fn marker(what: &str) -> String {
    format!(
        "MODAL_LIFETIMES_{what}={}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Waits until no process carries `marker`; fails naming the survivors.
fn wait_until_gone(marker: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let described: Vec<String> = left
                .iter()
                .map(|pid| {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    format!(
                        "{pid}: {}",
                        String::from_utf8_lossy(&cmdline).replace('\0', " ")
                    )
                })
                .collect();
            panic!("processes outlived their owner after {within:?}: {described:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls `function` (one of the sleeper starters) with `marker` and checks
/// that both sleepers run.
async fn start_sleepers_on(client: &Client, app: &str, function: &str, marker: &str) {
    let started = client
        .function::<(String,), u32>(app, function)
        .remote((marker.to_owned(),))
        .await
        .unwrap();
    assert_eq!(started, 2);
    assert_eq!(processes_with(marker).len(), 2, "both sleepers run");
}

#[tokio::test]
async fn stopping_an_app_ends_what_its_containers_started() {
    let marker = marker("STOP");
    let client = deploy(&env().url, "lifetimes-stop").await;
    start_sleepers_on(&client, "lifetimes-stop", "start_sleepers", &marker).await;
    client.stop_app("lifetimes-stop").await.unwrap();
    wait_until_gone(&marker, Duration::from_secs(5));
}

#[tokio::test]
async fn scaling_down_ends_what_the_container_started() {
    let marker = marker("SCALEDOWN");
    let client = deploy(&env().url, "lifetimes-scaledown").await;
    start_sleepers_on(
        &client,
        "lifetimes-scaledown",
        "start_sleepers_briefly",
        &marker,
    )
    .await;
    // A two-second window, then the upkeep loop's next pass.
    wait_until_gone(&marker, Duration::from_secs(15));
}

#[tokio::test]
async fn killing_the_control_plane_ends_what_its_containers_started() {
    let marker = marker("KILL9");
    let mut standalone = Standalone::start();
    let client = deploy(&standalone.url, "lifetimes").await;
    start_sleepers_on(&client, "lifetimes", "start_sleepers", &marker).await;
    standalone.kill9();
    wait_until_gone(&marker, Duration::from_secs(5));
}

/// A program the test started; killed if the test fails first.
struct Program(Child);

impl Program {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, and wait for it.
    fn kill9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `embedded_sleepers` on its embedded control plane, with its temporary
/// folders under `tmp`; returns once its sleepers run.
fn start_embedded(marker: &str, tmp: &Path) -> Program {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedded_sleepers"))
        .arg(marker)
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the embedded program exited before its sleepers started")
            .unwrap();
        if line.starts_with("started ") {
            break;
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert_eq!(processes_with(marker).len(), 2, "both sleepers run");
    Program(child)
}

/// The embedded control plane's folders of run `pid` under `tmp`.
fn run_folders(tmp: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!("modal-rs-{pid}-");
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn killing_an_embedded_program_ends_what_its_containers_started() {
    let marker = marker("EMBEDDED");
    let tmp = scratch_dir("embedded-kill");
    start_embedded(&marker, &tmp).kill9();
    wait_until_gone(&marker, Duration::from_secs(5));
}

#[test]
fn the_next_embedded_run_removes_a_crashed_runs_folder_and_keeps_a_live_ones() {
    let tmp = scratch_dir("embedded-sweep");
    let crashed_marker = marker("CRASHED");
    let crashed = start_embedded(&crashed_marker, &tmp);
    let crashed_pid = crashed.id();
    crashed.kill9();
    wait_until_gone(&crashed_marker, Duration::from_secs(5));
    assert_eq!(
        run_folders(&tmp, crashed_pid).len(),
        1,
        "a crash leaves its folder"
    );

    let live_marker = marker("LIVE");
    let live = start_embedded(&live_marker, &tmp);
    let live_pid = live.id();
    assert_eq!(run_folders(&tmp, live_pid).len(), 1);

    // Another run, to its end: it sweeps what crashed runs left.
    let output = Command::new(test_app())
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        run_folders(&tmp, crashed_pid),
        Vec::<PathBuf>::new(),
        "the crashed run's folder is still there"
    );
    assert_eq!(
        run_folders(&tmp, live_pid).len(),
        1,
        "a live run's folder was removed"
    );
    live.kill9();
    wait_until_gone(&live_marker, Duration::from_secs(5));
}
