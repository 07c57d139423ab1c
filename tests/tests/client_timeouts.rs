//! A control plane that accepts connections and never answers: callers,
//! programs and containers must fail with an error naming it, not hang.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use modal_runtime::contract::container_env as env;

/// How long a silent control plane may hold anyone up: it is noticed within
/// `contract::SILENCE_LIMIT` (20 s), plus time to connect and report.
const BOUND: Duration = Duration::from_secs(30);

/// A "control plane" on a free loopback port that accepts every connection,
/// keeps it open and never sends a byte. Returns its URL.
fn silent_control_plane() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Held, never read or written: the peer sees a live, mute server.
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    url
}

/// Waits for `child` to exit within `BOUND`; kills it and fails if it does
/// not. Returns its status and stderr.
fn exit_within_bound(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {BOUND:?} against a silent control plane");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[tokio::test]
async fn a_call_to_a_silent_control_plane_fails_in_bounded_time_naming_it() {
    let url = silent_control_plane();
    let started = Instant::now();
    let outcome = tokio::time::timeout(BOUND, async {
        let client = common::connect(&url).await?;
        client.list_apps().await
    })
    .await;
    let err = outcome
        .unwrap_or_else(|_| panic!("list_apps still waiting after {BOUND:?}"))
        .expect_err("a silent control plane cannot list apps");
    let text = err.to_string();
    assert!(text.contains(&url), "the error names the URL: {text}");
    assert!(
        text.contains("did not answer") && text.contains("is it running and reachable"),
        "the error says what happened and what to check: {text}"
    );
    eprintln!("failed after {:?}: {text}", started.elapsed());
}

#[test]
fn a_program_pointed_at_a_silent_control_plane_exits_naming_it() {
    let url = silent_control_plane();
    let child = Command::new(test_app())
        .envs(common::server_env(&url))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = exit_within_bound(child);
    assert!(!status.success(), "exited with {status}: {stderr}");
    assert!(stderr.contains(&url), "the message names the URL: {stderr}");
    assert!(
        stderr.contains("did not answer"),
        "the message says what happened: {stderr}"
    );
}

#[test]
fn a_container_whose_control_plane_falls_silent_exits() {
    let url = silent_control_plane();
    let child = Command::new(test_app())
        .env_remove("MODAL_SERVER_URL")
        .env(env::ROLE, env::ROLE_CONTAINER)
        .env(env::SERVER_URL, &url)
        .env(env::CONTAINER_ID, "silent-test")
        .env(env::TOKEN, "token")
        .env(env::FUNCTION, "square")
        .env(env::APP, APP)
        .env(env::HEARTBEAT_MS, "200")
        .env(env::MAX_INPUTS, "1")
        .env(env::TIMEOUT_SECS, "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = exit_within_bound(child);
    assert!(!status.success(), "exited with {status}: {stderr}");
    assert!(stderr.contains(&url), "the message names the URL: {stderr}");
}
