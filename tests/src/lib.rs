//! Functions the end-to-end tests call. `src/bin/test_app.rs` is the binary
//! the control plane runs as their containers.

use modal_runtime::app;

pub mod docker;
pub mod web;

#[app::function]
pub fn square(x: u64) -> u64 {
    x * x
}

#[app::function]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[app::function]
pub async fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

/// The container's process id, to tell containers apart.
#[app::function]
pub fn pid() -> u32 {
    std::process::id()
}

#[app::function]
pub fn checked_div(a: i64, b: i64) -> Result<i64, String> {
    if b == 0 {
        Err(format!("cannot divide {a} by zero"))
    } else {
        Ok(a / b)
    }
}

/// Why [`vet`] refused a number: a serde type, so that a caller gets it
/// back as a value and can match on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    Negative(i64),
    TooLarge { value: i64, limit: i64 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Negative(v) => write!(f, "{v} is negative"),
            Refusal::TooLarge { value, limit } => write!(f, "{value} is over {limit}"),
        }
    }
}

/// Refuses negative numbers and those over 100, with a typed error.
#[app::function]
pub fn vet(x: i64) -> Result<i64, Refusal> {
    match x {
        ..0 => Err(Refusal::Negative(x)),
        101.. => Err(Refusal::TooLarge {
            value: x,
            limit: 100,
        }),
        _ => Ok(x),
    }
}

/// Fails with an error that is not serde's: only its text travels.
#[app::function]
pub fn open_missing(path: String) -> Result<u64, std::io::Error> {
    std::fs::metadata(&path).map(|m| m.len())
}

/// Fails on multiples of 10: a map of it ends with a known count of each
/// outcome.
#[app::function]
pub fn fail_on_tens(x: u64) -> Result<u64, String> {
    if x.is_multiple_of(10) {
        Err(format!("{x} is a multiple of 10"))
    } else {
        Ok(x)
    }
}

/// Logs a line (inside the input's span) and returns the trace id the
/// input runs in, empty if none.
#[app::function]
pub async fn trace_id_seen(tag: String) -> String {
    tracing::info!(tag, "traced input");
    current_trace_id()
}

/// [`trace_id_seen`] in containers that log the inputs' `modal.input`
/// spans (a DEBUG span).
#[app::function(env = { "RUST_LOG": "info,modal_runtime::trace=debug" })]
pub async fn trace_id_seen_in_span(tag: String) -> String {
    tracing::info!(tag, "traced input");
    current_trace_id()
}

/// [`trace_id_seen`] as a plain `fn`, run on a blocking thread.
#[app::function]
pub fn trace_id_seen_blocking(tag: String) -> String {
    tracing::info!(tag, "traced input");
    current_trace_id()
}

fn current_trace_id() -> String {
    modal_runtime::trace::current()
        .map(|t| t.trace_id().to_string())
        .unwrap_or_default()
}

#[app::function]
pub fn explode(message: String) -> u32 {
    panic!("{message}")
}

#[app::function]
pub async fn explode_async(message: String) -> u32 {
    panic!("async {message}")
}

/// Exits the container process mid-input.
#[app::function]
pub fn exit_process(code: i32) -> u32 {
    std::process::exit(code)
}

/// Freezes the container (SIGSTOP): it stops sending heartbeats. Stops
/// again if anything resumes it, so it never answers.
#[app::function]
pub fn freeze() -> u32 {
    loop {
        // SAFETY: signals this very process; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGSTOP);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Prints to stdout and stderr, for the log tests.
#[app::function]
pub fn shout(word: String) -> usize {
    println!("stdout says {word}");
    eprintln!("stderr says {word}");
    word.len()
}

#[app::function]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Scales down two seconds after its last input.
#[app::function(scaledown_window = 2)]
pub fn brief(x: u64) -> u64 {
    x
}

/// At most two containers; returns the pid of the one that ran the input.
#[app::function(max_containers = 2)]
pub fn capped_pid(ms: u64) -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    std::process::id()
}

/// Records its lifecycle as files in `dir`: `enter-<pid>` when its `enter`
/// hook runs and `exit-<pid>` when its `exit` hook runs.
#[app::cls(scaledown_window = 2)]
pub struct Recorder {
    #[app::parameter]
    dir: String,
    #[app::parameter(default = 1)]
    factor: u64,
    /// How often `enter` ran on this instance.
    enters: u32,
}

#[app::cls]
impl Recorder {
    #[app::enter]
    fn open(&mut self) {
        self.enters += 1;
        record(&self.dir, "enter");
    }

    #[app::exit]
    fn close(&mut self) {
        record(&self.dir, "exit");
    }

    /// `x` times the instance's factor.
    #[app::method]
    fn scaled(&self, x: u64) -> u64 {
        x * self.factor
    }

    /// The container's process id and how often `enter` ran in it.
    #[app::method]
    fn whoami(&self) -> (u32, u32) {
        (std::process::id(), self.enters)
    }

    /// An environment variable of the container.
    #[app::method]
    async fn env_var(&self, name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    /// Holds the container busy for `ms`, then answers with its pid.
    #[app::method]
    async fn hold(&self, ms: u64) -> u32 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        std::process::id()
    }
}

fn record(dir: &str, event: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        format!("{dir}/{event}-{}", std::process::id()),
        event.as_bytes(),
    )
    .unwrap();
}

/// A class whose `enter` always fails.
#[app::cls]
pub struct Broken {
    #[app::parameter]
    reason: String,
}

#[app::cls]
impl Broken {
    #[app::enter]
    async fn load(&mut self) -> Result<(), String> {
        Err(format!("cannot load the weights: {}", self.reason))
    }

    #[app::method]
    fn never(&self) -> u32 {
        0
    }
}

/// A class whose only method is batched: each input learns the size of the
/// batch it ran in.
#[app::cls]
pub struct Batcher {
    #[app::parameter(default = 0)]
    offset: u64,
}

#[app::cls]
impl Batcher {
    #[app::method]
    #[app::batched(max_batch_size = 4, wait_ms = 50)]
    fn sized(&self, xs: Vec<u64>) -> Vec<(u64, usize)> {
        let n = xs.len();
        xs.into_iter().map(|x| (x + self.offset, n)).collect()
    }
}

/// A batched function: each input learns the size of its batch.
#[app::function]
#[app::batched(max_batch_size = 1000, wait_ms = 200)]
pub fn batch_size(xs: Vec<u64>) -> Vec<(u64, usize)> {
    let n = xs.len();
    xs.into_iter().map(|x| (x, n)).collect()
}

/// A batched function that breaks its contract: one result too few.
#[app::function]
#[app::batched(max_batch_size = 8, wait_ms = 50)]
pub fn short_batch(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().skip(1).collect()
}

/// Ten inputs at once in one container: returns its pid after `ms`.
#[app::function(max_inputs = 10, max_containers = 1)]
pub async fn concurrent_pid(ms: u64) -> u32 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    std::process::id()
}

/// Fails on its first `failures` attempts, then answers with the attempt
/// number it succeeded on.
#[app::function(retries = 3)]
pub fn flaky(failures: u32) -> Result<u32, String> {
    let attempt = modal_runtime::current_input()
        .expect("runs in a container")
        .attempt;
    if attempt <= failures {
        Err(format!("attempt {attempt} fails"))
    } else {
        Ok(attempt)
    }
}

/// The first run exits the container mid-input (leaving a marker file in
/// `dir`); the next run answers with its pid and attempt.
#[app::function]
pub fn crash_once(dir: String) -> (u32, u32) {
    let marker = std::path::Path::new(&dir).join("crashed");
    if !marker.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&marker, b"").unwrap();
        std::process::exit(9);
    }
    let attempt = modal_runtime::current_input().unwrap().attempt;
    (std::process::id(), attempt)
}

/// Sleeps on a blocking thread; the attempt times out after one second.
#[app::function(timeout = 1)]
pub fn slow_blocking(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Sleeps asynchronously; the attempt times out after one second.
#[app::function(timeout = 1)]
pub async fn slow_async(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

/// Sleeps asynchronously (cancellable at its `.await`), then answers.
#[app::function]
pub async fn nap(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

/// Up to five containers, gone two seconds after the last input.
#[app::function(max_containers = 5, scaledown_window = 2)]
pub fn burst(ms: u64) -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    std::process::id()
}

/// A class whose `enter` takes `ms`.
#[app::cls]
pub struct SlowStart {
    #[app::parameter]
    ms: u64,
}

#[app::cls]
impl SlowStart {
    #[app::enter]
    async fn warm_up(&mut self) {
        tokio::time::sleep(std::time::Duration::from_millis(self.ms)).await;
    }

    #[app::method]
    fn ready(&self) -> bool {
        true
    }
}

/// Returns a payload of `len` bytes whose every byte is the sum of the
/// argument's bytes (mod 256): big in both directions.
#[app::function]
pub fn big_echo(data: serde_bytes::ByteBuf, len: usize) -> serde_bytes::ByteBuf {
    let sum = data.iter().fold(0_u8, |acc, b| acc.wrapping_add(*b));
    serde_bytes::ByteBuf::from(vec![sum; len])
}

/// `big_echo` with 64 inputs at a time on one container: its inputs and
/// results pile up, so that many large ones would share a message.
#[app::function(max_inputs = 64, max_containers = 1)]
pub async fn wide_echo(data: serde_bytes::ByteBuf, len: usize) -> serde_bytes::ByteBuf {
    let sum = data.iter().fold(0_u8, |acc, b| acc.wrapping_add(*b));
    serde_bytes::ByteBuf::from(vec![sum; len])
}

/// Takes a second to start, then runs 64 inputs at once: the inputs that
/// queue while it starts are handed to it together, and the ones that
/// arrive in its first half second all finish at its end, together.
#[app::cls(max_inputs = 64, max_containers = 1)]
pub struct SlowStartEcho {
    /// Tells instances apart: each new value is a cold start.
    #[app::parameter]
    #[allow(dead_code)]
    tag: u64,
    /// Set by `enter`: half a second after it.
    finish_at: Option<std::time::Instant>,
}

#[app::cls]
impl SlowStartEcho {
    #[app::enter]
    fn warm_up(&mut self) {
        std::thread::sleep(std::time::Duration::from_secs(1));
        self.finish_at = Some(std::time::Instant::now() + std::time::Duration::from_millis(500));
    }

    /// `big_echo`, as a method.
    #[app::method]
    async fn echo(&self, data: serde_bytes::ByteBuf, len: usize) -> serde_bytes::ByteBuf {
        let sum = data.iter().fold(0_u8, |acc, b| acc.wrapping_add(*b));
        let echo = serde_bytes::ByteBuf::from(vec![sum; len]);
        if let Some(at) = self.finish_at {
            tokio::time::sleep_until(at.into()).await;
        }
        echo
    }
}

/// Yields `from` down to 1, `gap_ms` apart, then returns how many it yielded.
#[app::function]
pub fn countdown(from: u32, gap_ms: u64) -> modal_runtime::Generator<u32, String> {
    modal_runtime::Generator::new(move |out| async move {
        for n in (1..=from).rev() {
            out.send(n).await;
            tokio::time::sleep(std::time::Duration::from_millis(gap_ms)).await;
        }
        format!("{from} items")
    })
}

/// Yields one word, then fails.
#[app::function]
pub async fn fails_midway(word: String) -> modal_runtime::Generator<String> {
    modal_runtime::Generator::try_new(move |out| async move {
        out.send(word).await;
        Err::<(), _>("the source went away")
    })
}

/// One container at most: a backlog on it holds up every other caller.
#[app::function(max_containers = 1)]
pub fn solo(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// One container at most, for the map window test (apart from `solo`, which
/// another test needs free).
#[app::function(max_containers = 1)]
pub fn held(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Starts two `sleep 300` processes and leaves them running: one a child of
/// the container, one detached by a shell that exits at once (a grandchild
/// whose parent is gone). `marker` (`KEY=VALUE`) goes into their
/// environment so that tests can find them. Returns how many it started.
#[app::function]
pub fn start_sleepers(marker: String) -> u32 {
    spawn_sleepers(&marker)
}

/// [`start_sleepers`], on a function that scales down two seconds after
/// its last input.
#[app::function(scaledown_window = 2)]
pub fn start_sleepers_briefly(marker: String) -> u32 {
    spawn_sleepers(&marker)
}

#[expect(
    clippy::zombie_processes,
    reason = "never waited on, like a user's stray child: it must end with its container"
)]
fn spawn_sleepers(marker: &str) -> u32 {
    let (key, value) = marker.split_once('=').expect("a marker is KEY=VALUE");
    std::process::Command::new("sleep")
        .arg("300")
        .env(key, value)
        .spawn()
        .expect("start `sleep`");
    let shell = std::process::Command::new("sh")
        .args(["-c", "sleep 300 >/dev/null 2>&1 &"])
        .env(key, value)
        .status()
        .expect("start `sh`");
    assert!(shell.success(), "the shell failed: {shell}");
    2
}

/// Yields `count` items of `size` bytes as fast as it can: a generator
/// far ahead of its caller.
#[app::function]
pub fn gush(count: u32, size: usize) -> modal_runtime::Generator<serde_bytes::ByteBuf, u32> {
    modal_runtime::Generator::new(move |out| async move {
        for _ in 0..count {
            out.send(serde_bytes::ByteBuf::from(vec![7_u8; size])).await;
        }
        count
    })
}

/// Waits `ms` (without holding a thread), then answers with the attempt
/// this run of the input is. At most 4 containers of 64 inputs each, so
/// that a large submission builds a backlog.
#[app::function(max_containers = 4, max_inputs = 64)]
pub async fn attempt_of(ms: u64) -> u32 {
    let attempt = modal_runtime::current_input().unwrap().attempt;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    attempt
}

/// Writes `contents` at `path` under a mounted volume (found through
/// `modal_runtime::mounted`, as on any backend), making folders above it.
#[app::function]
pub fn write_mounted(path: String, contents: String) -> Result<String, String> {
    let real = modal_runtime::mounted(&path);
    if let Some(parent) = real.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&real, contents).map_err(|e| format!("{}: {e}", real.display()))?;
    Ok(real.display().to_string())
}

/// What the file at `path` under a mounted volume holds.
#[app::function]
pub fn read_mounted(path: String) -> Result<String, String> {
    let real = modal_runtime::mounted(&path);
    std::fs::read_to_string(&real).map_err(|e| format!("{}: {e}", real.display()))
}

/// Makes a symbolic link at `path` under a mounted volume, pointing to
/// `target`, as a container may.
#[app::function]
pub fn link_mounted(path: String, target: String) -> Result<(), String> {
    let real = modal_runtime::mounted(&path);
    std::os::unix::fs::symlink(&target, &real).map_err(|e| format!("{}: {e}", real.display()))
}
