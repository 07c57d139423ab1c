//! Where containers run. The control plane asks a backend to start and stop
//! containers and hears back, through [`ContainerEvent`]s, what they print and
//! when they exit. Local processes are the default; Docker and remote nodes
//! are further backends behind the same trait.

mod local;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

pub use local::LocalProcessBackend;

/// What a backend needs to start one container. Its `Debug` names the
/// variables and never shows their values: they hold secrets and tokens.
#[derive(Clone)]
pub struct ContainerSpec {
    pub container_id: String,
    pub app: String,
    pub function: String,
    /// The user's binary, run in its container role.
    pub binary: PathBuf,
    /// Environment: the container's identity and the function's `env`.
    pub env: Vec<(String, String)>,
    /// The volumes the function mounts, checked to exist when the spec
    /// was made.
    pub volumes: Vec<VolumeMount>,
}

/// One volume of a container: mount the folder `host_dir` at `mount_path`.
/// A backend that cannot mount (local processes) tells the container
/// instead, through [`crate::contract::container_env::VOLUME_MOUNTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Absolute, checked by [`crate::volume::check_mount_path`]; no two of
    /// one container share a path or nest.
    pub mount_path: String,
    /// The volume's name, in the function's environment.
    pub volume: String,
    /// `<data dir>/volumes/<environment>/<name>`, absolute.
    pub host_dir: PathBuf,
}

impl std::fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("container_id", &self.container_id)
            .field("app", &self.app)
            .field("function", &self.function)
            .field("binary", &self.binary)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("volumes", &self.volumes)
            .finish()
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// What backends report about their containers.
#[derive(Debug)]
pub enum ContainerEvent {
    /// One line a container printed.
    Output {
        container_id: String,
        stream: OutputStream,
        line: String,
    },
    /// The container is gone and all its output has been reported.
    Exited {
        container_id: String,
        reason: String,
    },
    /// Answered once every event sent before it has been handled.
    Barrier(oneshot::Sender<()>),
}

/// A place to run containers.
pub trait ContainerBackend: Send + Sync + 'static {
    /// Starts a container; its output and exit arrive on `events`. The
    /// channel is bounded: a backend waits for room (holding a container
    /// that prints faster than its lines are published) rather than buffer
    /// without limit.
    fn start(
        &self,
        spec: ContainerSpec,
        events: mpsc::Sender<ContainerEvent>,
    ) -> BoxFuture<'_, Result<(), String>>;

    /// Asks a container to stop, kills it after `grace`, and returns once it
    /// has exited. Stopping an unknown or exited container does nothing.
    fn stop(&self, container_id: &str, grace: Duration) -> BoxFuture<'_, ()>;

    /// Kills every container at once (shutdown).
    fn kill_all(&self) -> BoxFuture<'_, ()>;
}
