//! Where containers run. The control plane asks a backend to start and stop
//! containers and hears back, through [`ContainerEvent`]s, what they print and
//! when they exit. Local processes are the default; Docker and remote nodes
//! are further backends behind the same trait.

mod docker;
mod lines;
mod local;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

pub use docker::{DockerBackend, DockerConfig};
pub use local::LocalProcessBackend;

/// What a backend needs to start one container. Its `Debug` names the
/// variables and never shows their values: they hold secrets and tokens.
#[derive(Clone)]
pub struct ContainerSpec {
    pub container_id: String,
    pub app: String,
    pub version: u32,
    pub function: String,
    /// The user's binary, run in its container role.
    pub binary: PathBuf,
    /// Environment: the container's identity and the function's `env`.
    pub env: Vec<(String, String)>,
    pub resources: Resources,
    /// The volumes the function mounts, checked to exist when the spec
    /// was made.
    pub volumes: Vec<VolumeMount>,
}

/// What a container asks of the machine, from its function's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// CPU cores reserved; the limit is `cpu_limit`, else this.
    pub cpu: Option<f64>,
    pub cpu_limit: Option<f64>,
    /// Memory reserved, in MiB; the limit is `memory_limit_mib`, else this.
    pub memory_mib: Option<u32>,
    pub memory_limit_mib: Option<u32>,
    /// A GPU request such as `"A100"` or `"H100:2"`.
    pub gpu: Option<String>,
    /// The base image, `None` for a minimal one.
    pub image: Option<String>,
}

impl Resources {
    /// The most cores a container may use: the limit, else the request.
    pub(crate) fn cpu_limit_cores(&self) -> Option<f64> {
        self.cpu_limit.or(self.cpu)
    }

    /// The memory past which a container is killed, in MiB: the limit,
    /// else the request.
    pub(crate) fn memory_limit_mib(&self) -> Option<u32> {
        self.memory_limit_mib.or(self.memory_mib)
    }

    pub(crate) fn of(options: &crate::options::FunctionOptions) -> Resources {
        Resources {
            cpu: options.cpu,
            cpu_limit: options.cpu_limit,
            memory_mib: options.memory_mib,
            memory_limit_mib: options.memory_limit_mib,
            gpu: options.gpu.as_deref().map(str::to_owned),
            image: options.image.as_deref().map(str::to_owned),
        }
    }
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
            .field("version", &self.version)
            .field("function", &self.function)
            .field("binary", &self.binary)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("resources", &self.resources)
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
        cause: ExitCause,
    },
    /// Answered once every event sent before it has been handled.
    Barrier(oneshot::Sender<()>),
}

/// What ended a container, where the backend can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited, crashed or was killed.
    Ended,
    /// The engine killed it for passing its memory limit: its inputs fail
    /// as out of memory, and are not run again on another container.
    OutOfMemory,
}

/// A place to run containers.
pub trait ContainerBackend: Send + Sync + 'static {
    /// Refuses what this backend can never give a container of `function`
    /// (more cores than it has, a GPU it lacks), naming what was asked and
    /// what it has.
    fn check(&self, function: &str, resources: &Resources) -> Result<(), String> {
        match &resources.gpu {
            Some(gpu) => Err(format!(
                "function `{function}` asks for GPU `{gpu}`, but this control plane runs \
                 containers as local processes, which are given no GPU; run it with \
                 `--backend docker` on a machine whose Docker Engine has the NVIDIA runtime"
            )),
            None => Ok(()),
        }
    }

    /// Readies what containers of `binary` need before a version using it
    /// is registered (the Docker backend builds its image). `Err` refuses
    /// the deploy with the reason.
    fn prepare<'a>(
        &'a self,
        binary: &'a Path,
        resources: &'a Resources,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (binary, resources);
        Box::pin(async { Ok(()) })
    }

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

    /// Where a running container is, for listings; `None` for one this
    /// backend is not running (not yet made, or gone).
    fn placement(&self, container_id: &str) -> Option<Placement> {
        let _ = container_id;
        None
    }
}

/// Where a container runs, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The Docker image it was created from, or `process` for a local
    /// process of the app's binary.
    pub image: String,
    /// The machine or engine it runs on.
    pub host: String,
}
