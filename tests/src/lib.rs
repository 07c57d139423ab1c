//! Functions the end-to-end tests call. `src/bin/test_app.rs` is the binary
//! the control plane runs as their containers.

use modal_runtime::app;

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
