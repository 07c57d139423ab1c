//! Functions that look at the container they run in: what the Docker
//! backend's tests check from the inside.

use modal_runtime::app;
use serde::{Deserialize, Serialize};

/// What a container's process sees of its own confinement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confinement {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// `CapEff` and `CapBnd` of `/proc/self/status`, in hex.
    pub effective_capabilities: String,
    pub bounding_capabilities: String,
    pub no_new_privileges: bool,
    /// Whether a file could be made outside `/tmp`.
    pub root_writable: bool,
    pub tmp_writable: bool,
    pub docker_socket_present: bool,
}

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

#[app::function]
pub fn confinement() -> Confinement {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Confinement {
        uid,
        gid,
        pid: std::process::id(),
        effective_capabilities: status_field(&status, "CapEff:"),
        bounding_capabilities: status_field(&status, "CapBnd:"),
        no_new_privileges: status_field(&status, "NoNewPrivs:") == "1",
        root_writable: std::fs::write("/modal/written", b"x").is_ok()
            || std::fs::write("/written", b"x").is_ok(),
        tmp_writable: std::fs::write("/tmp/written", b"x").is_ok(),
        docker_socket_present: std::path::Path::new("/var/run/docker.sock").exists()
            || std::path::Path::new("/run/docker.sock").exists(),
    }
}

/// Allocates and touches `mib` MiB, then answers how much it held.
#[app::function(memory = 64)]
pub fn hog(mib: u64) -> u64 {
    let mut held: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        held.push(vec![1u8; 1 << 20]);
    }
    std::hint::black_box(&held);
    held.len() as u64
}

/// The text of a file in the container, if it is there.
#[app::function]
pub fn read_text(path: String) -> Option<String> {
    std::fs::read_to_string(path).ok()
}
