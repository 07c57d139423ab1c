//! What the end-to-end test binaries share: one control plane per test
//! binary with the tests' app deployed, and helpers to find binaries and
//! processes.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, Manifest};

/// The name the tests' app is deployed under.
pub const APP: &str = "e2e";

pub struct TestEnv {
    pub url: String,
}

/// One control plane for the whole test binary, on its own runtime thread
/// (each test has its own runtime), with the tests' app deployed.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut config = ServerConfig::new(scratch_dir("server"));
                config.heartbeat_interval = Duration::from_millis(200);
                config.heartbeat_timeout = Duration::from_millis(1500);
                config.stop_grace = Duration::from_secs(2);
                let server = Server::start(config).await.unwrap();
                let url = server.url().to_owned();
                let client = Client::connect(&url).await.unwrap();
                let manifest = Manifest::read_from_binary(&test_app()).unwrap();
                client
                    .create_app(APP, &manifest, AppBinary::LocalPath(&test_app()), false)
                    .await
                    .unwrap();
                // Handles made by name use this client; its connection lives
                // on this runtime, which outlives every test.
                assert!(Client::lazy(&url).unwrap().set_default());
                tx.send(url).unwrap();
                std::future::pending::<()>().await;
                drop(server);
            });
        });
        TestEnv {
            url: rx.recv().unwrap(),
        }
    })
}

pub fn test_app() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_test_app"))
}

/// `target/debug` (or the profile in use), where workspace binaries are.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

pub fn workspace_binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo test --workspace` does)",
        path.display()
    );
    path
}

/// This process's id and the clock's nanoseconds: what makes a scratch
/// name unique across test binaries and runs.
fn unique() -> (u32, u128) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (std::process::id(), nanos)
}

pub fn scratch_dir(what: &str) -> PathBuf {
    let (pid, nanos) = unique();
    let dir = std::env::temp_dir().join(format!("modal-e2e-{what}-{pid}-{nanos}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deploys the tests' binary as app `app` on the control plane at `url`:
/// named by its path to a control plane in this process, uploaded to one
/// in a process of its own.
pub async fn deploy(url: &str, app: &str) -> Client {
    let client = connect(url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let binary = test_app();
    let binary = if standalone_token(url).is_some() {
        AppBinary::Upload(&binary)
    } else {
        AppBinary::LocalPath(&binary)
    };
    client
        .create_app(app, &manifest, binary, false)
        .await
        .unwrap();
    client
}

/// Admin tokens of the standalone control planes this test binary started,
/// by URL.
static STANDALONE_TOKENS: std::sync::Mutex<Vec<(String, String)>> =
    std::sync::Mutex::new(Vec::new());

fn standalone_token(urls: &str) -> Option<String> {
    let tokens = STANDALONE_TOKENS.lock().unwrap();
    urls.split(',').find_map(|url| {
        let url = modal_runtime::config::normalize_url(url);
        tokens
            .iter()
            .rev()
            .find(|(u, _)| *u == url)
            .map(|(_, t)| t.clone())
    })
}

/// The admin token of the control plane at `url` (any of a comma-separated
/// list): a standalone one's from its credentials file, an in-process
/// one's own.
pub fn token_for(url: &str) -> String {
    known_token(url).unwrap_or_else(|| panic!("no token is known for {url}"))
}

fn known_token(url: &str) -> Option<String> {
    standalone_token(url).or_else(|| {
        modal_runtime::config::token_for(&modal_runtime::config::split_urls(url))
            .ok()
            .flatten()
    })
}

/// A client of the control plane at `url` with its admin token (none if
/// no token is known for it: an address nobody serves, say).
pub async fn connect(url: &str) -> Result<Client, modal_runtime::Error> {
    match known_token(url) {
        Some(token) => Client::connect_with_token(url, &token).await,
        None => Client::connect(url).await,
    }
}

/// [`connect`], connecting on first use.
pub fn lazy(url: &str) -> Result<Client, modal_runtime::Error> {
    match known_token(url) {
        Some(token) => Client::lazy_with_token(url, &token),
        None => Client::lazy(url),
    }
}

/// The environment a program started by a test needs to reach the control
/// plane at `url`: its URL and, where one is known, a token.
pub fn server_env(url: &str) -> Vec<(&'static str, String)> {
    let mut vars = vec![("MODAL_SERVER_URL", url.to_owned())];
    vars.extend(known_token(url).map(|t| ("MODAL_TOKEN", t)));
    vars
}

/// Sends a token with every request of a raw gRPC client.
#[derive(Clone)]
pub struct WithToken(pub Option<tonic::metadata::AsciiMetadataValue>);

impl tonic::service::Interceptor for WithToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            r.metadata_mut().insert("authorization", token.clone());
        }
        Ok(r)
    }
}

/// A raw gRPC client of the control plane.
pub type Raw = modal_runtime::proto::control_plane_client::ControlPlaneClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, WithToken>,
>;

/// A raw gRPC client presenting `token` (none: `None`).
pub async fn raw_with(url: &str, token: Option<&str>) -> Raw {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = token.map(|t| format!("Bearer {t}").parse().unwrap());
    modal_runtime::proto::control_plane_client::ControlPlaneClient::with_interceptor(
        channel,
        WithToken(token),
    )
}

/// A raw gRPC client with the control plane's admin token.
pub async fn raw_admin(url: &str) -> Raw {
    raw_with(url, Some(&token_for(url))).await
}

pub fn on<T>(stub: fn(&str) -> T) -> T {
    env();
    stub(APP)
}

/// Processes whose environment holds `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(process) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(environ) = std::fs::read(entry.path().join("environ"))
            && environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes())
        {
            found.push(process);
        }
    }
    found
}

/// Runs `xtask` with `args`; with `--server URL`, it presents the token
/// known for that control plane.
pub fn xtask(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(workspace_binary("xtask"));
    command.args(args).env_remove("MODAL_TOKEN");
    let server = args
        .iter()
        .position(|a| *a == "--server")
        .and_then(|at| args.get(at + 1));
    if let Some(token) = server.and_then(|url| known_token(url)) {
        command.env("MODAL_TOKEN", token);
    }
    command.output().unwrap()
}

pub fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A loopback address no one listens on now (`127.0.0.1:PORT`).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `xtask server` on `addr` and `data_dir`, its standard output piped. Its
/// config file is `config.toml` in the data folder, so that its admin
/// token is written to `credentials.toml` beside it. Its HTTP listener is
/// on a free port: several run at once.
fn start_server(addr: &str, data_dir: &std::path::Path, extra: &[&str]) -> std::process::Child {
    Command::new(workspace_binary("xtask"))
        .env("MODAL_CONFIG", data_dir.join("config.toml"))
        .env_remove("MODAL_TOKEN")
        .args([
            "server",
            "--addr",
            addr,
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A control plane in a process of its own (`xtask server`), for tests that
/// kill it or measure it. Killed when dropped.
pub struct Standalone {
    pub child: std::process::Child,
    pub url: String,
    pub data_dir: PathBuf,
    /// Its admin token, from the credentials file it wrote.
    pub token: String,
}

/// The admin token the control plane at `url` keeps in `data_dir`'s
/// credentials file; remembered for [`connect`] and [`token_for`].
pub fn learn_token(data_dir: &std::path::Path, url: &str) -> String {
    let path = data_dir.join("credentials.toml");
    let token = modal_runtime::config::read_credential(&path, url)
        .unwrap()
        .unwrap_or_else(|| panic!("{} holds no token for {url}", path.display()));
    STANDALONE_TOKENS
        .lock()
        .unwrap()
        .push((modal_runtime::config::normalize_url(url), token.clone()));
    token
}

impl Standalone {
    /// Starts one on a free loopback port with a fresh data folder.
    pub fn start() -> Standalone {
        Self::start_in(scratch_dir("standalone"), &[])
    }

    /// Starts one on `data_dir` with extra `xtask server` arguments.
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Standalone {
        Self::start_on("127.0.0.1:0", data_dir, extra)
    }

    /// Starts one listening on `addr` (e.g. from [`free_addr`]), so that it
    /// can be started again at the same address.
    pub fn start_on(addr: &str, data_dir: PathBuf, extra: &[&str]) -> Standalone {
        use std::io::BufRead;
        let mut child = start_server(addr, &data_dir, extra);
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the control plane exited before it listened")
                .unwrap();
            if let Some(url) = line.strip_prefix("modal-rs control plane listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let token = learn_token(&data_dir, &url);
        Standalone {
            child,
            url,
            data_dir,
            token,
        }
    }

    /// A client of it, with its admin token.
    pub async fn client(&self) -> Client {
        Client::connect_with_token(&self.url, &self.token)
            .await
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// SIGKILL, and wait for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh PostgreSQL database for one test, made on the server that
/// `MODAL_TEST_POSTGRES_URL` names (any database there the tests' user may
/// create databases from). `None`, saying why, where none is configured;
/// with `MODAL_REQUIRE_POSTGRES=1` (as CI sets), that fails the test.
pub fn postgres_db(test: &str) -> Option<String> {
    let Ok(base) = std::env::var("MODAL_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("MODAL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "MODAL_REQUIRE_POSTGRES=1, but MODAL_TEST_POSTGRES_URL names no server"
        );
        eprintln!(
            "skipped `{test}`: set MODAL_TEST_POSTGRES_URL (e.g. \
             postgres://postgres@127.0.0.1:55432/postgres) to run the PostgreSQL tests"
        );
        return None;
    };
    // Database names are at most 63 bytes: the nanoseconds within a second.
    let (pid, nanos) = unique();
    let name = format!("modal_{test}_{pid}_{}", nanos % 1_000_000_000);
    let (server, _) = base.rsplit_once('/').expect("a URL ending in /DATABASE");
    let url = format!("{server}/{name}");
    // The synchronous client runs its own runtime: not on a test's.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach MODAL_TEST_POSTGRES_URL ({base}): {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    })
    .join()
    .unwrap();
    Some(url)
}

/// Waits until no process has `marker` in its environment, up to `within`;
/// returns those still there.
pub fn wait_for_no_processes_with(marker: &str, within: Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = processes_with(marker);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A control plane (`xtask server`) on `addr`, not waited for: a standby
/// waits to lead before it listens. Its output lines arrive on `lines`.
/// Killed when dropped.
pub struct Spawned {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Spawned {
    pub fn start(addr: &str, data_dir: &std::path::Path, extra: &[&str]) -> Spawned {
        use std::io::BufRead;
        let mut child = start_server(addr, data_dir, extra);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Spawned { child, lines }
    }

    /// Waits up to `within` for a line containing `text`.
    pub fn wait_for(&self, text: &str, within: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
