//! The Docker Engine this control plane runs containers on: how to reach
//! it, and what it has (cores, memory, runtimes) to check requests against.

use bollard::Docker;

/// What the engine offers, read once when the backend connects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EngineInfo {
    /// Where the engine was reached, for messages.
    pub address: String,
    /// The engine's machine, as it names itself (`docker info`'s name);
    /// its address where it gives none.
    pub name: String,
    pub cores: u32,
    pub memory_bytes: u64,
    /// Container runtimes the engine knows (`runc`, `nvidia`, …).
    pub runtimes: Vec<String>,
}

impl EngineInfo {
    /// Whether the engine can give containers NVIDIA GPUs.
    pub(crate) fn has_gpus(&self) -> bool {
        self.runtimes.iter().any(|r| r == "nvidia")
    }
}

/// The address the engine is reached at: `DOCKER_HOST`, else the local
/// socket.
pub(crate) fn address(host: Option<&str>) -> String {
    host.map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Connects to the engine at `host` (`unix://…` or `tcp://…`/`http://…`;
/// `None`: `DOCKER_HOST` or the local socket), agrees on an API version and
/// reads what it offers. Fails with a message naming the address when the
/// engine does not answer.
pub(crate) async fn connect(host: Option<&str>) -> Result<(Docker, EngineInfo), String> {
    let address = address(host);
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "the Docker Engine at {address} does not answer ({e}): is it running, and may this \
             user use its socket? Set DOCKER_HOST (or `--docker-host`) to use another engine"
        )
    };
    const TIMEOUT_SECS: u64 = 10;
    let docker = if let Some(path) = address.strip_prefix("unix://") {
        Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(&address, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        return Err(format!(
            "`{address}` is not a Docker Engine address: use unix:///path/to/docker.sock or \
             tcp://HOST:PORT"
        ));
    }
    .map_err(|e| unreachable(&e))?;
    // An older engine refuses a newer client's version: speak its own.
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(&e))?;
    let info = docker.info().await.map_err(|e| unreachable(&e))?;
    let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
    runtimes.sort();
    Ok((
        docker,
        EngineInfo {
            name: info
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| address.clone()),
            address,
            cores: info.ncpu.unwrap_or(1).max(1) as u32,
            memory_bytes: info.mem_total.unwrap_or(0).max(0) as u64,
            runtimes,
        },
    ))
}
