//! Containers as Docker containers, through the engine's API (`bollard`).
//!
//! Each function's containers run an image built from its binary (see
//! [`image`]), hardened and limited as [`settings`] says, on a Docker network
//! from which they dial the control plane with the same protocol and
//! scoped token as local processes. Every container is labelled with this
//! control plane's instance id; those it does not know (left by a crash or
//! a killed server) are removed when it starts and on a timer.

mod engine;
mod image;
mod settings;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use sha2::Digest;
use tokio::sync::{mpsc, watch};

pub(crate) use settings::labels;

use super::{
    ContainerBackend, ContainerEvent, ContainerSpec, ExitCause, OutputStream, Placement, Resources,
    lines::LineSplitter,
};

/// How often containers this control plane does not know are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// How the Docker backend reaches its engine and its containers.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://…`);
    /// `None`: `DOCKER_HOST` or the local socket.
    pub host: Option<String>,
    /// The Docker network containers join (created if missing); `None`:
    /// `modal-rs`.
    pub network: Option<String>,
    /// The URL containers dial. `None`: the control plane also listens on
    /// the network's gateway address, which only this machine and its
    /// containers reach, and containers dial that.
    pub advertise_url: Option<String>,
}

/// Runs containers on a Docker Engine.
pub struct DockerBackend {
    docker: Docker,
    engine: engine::EngineInfo,
    settings: settings::Settings,
    images: image::Images,
    gateway: IpAddr,
    state: Arc<Mutex<Known>>,
}

/// Containers this backend started and has not seen removed.
#[derive(Default)]
struct Known {
    /// Container id → its Docker id and a flag that turns `true` once it
    /// is gone and its output reported.
    running: HashMap<String, (String, watch::Receiver<bool>)>,
    /// Container id → the tag of the image it was created from.
    images: HashMap<String, String>,
    /// Ids being created: not yet running, never swept.
    starting: HashSet<String>,
    /// Ids being created that were stopped meanwhile: removed once made.
    cancelled: HashSet<String>,
    /// Set at shutdown: whatever is made from then on is removed at once.
    closed: bool,
}

impl Known {
    /// Whether a container just made may run: not if it was stopped while
    /// it was being made, or the backend has shut down. One refused stays
    /// `starting` until it is removed, so that `kill_all` waits for it.
    fn admit(
        &mut self,
        id: &str,
        docker_id: String,
        image: String,
        gone: watch::Receiver<bool>,
    ) -> bool {
        if self.cancelled.remove(id) || self.closed {
            return false;
        }
        self.starting.remove(id);
        self.running.insert(id.to_owned(), (docker_id, gone));
        self.images.insert(id.to_owned(), image);
        true
    }

    /// Forgets a container that is gone.
    fn forget(&mut self, id: &str) {
        self.running.remove(id);
        self.images.remove(id);
    }
}

impl DockerBackend {
    /// Connects to the engine, makes sure the network exists and removes
    /// what an earlier control plane of `instance` left behind.
    pub async fn connect(
        config: &DockerConfig,
        instance: &str,
        ca_file: Option<&Path>,
    ) -> Result<Arc<DockerBackend>, String> {
        let (docker, engine) = engine::connect(config.host.as_deref()).await?;
        let network = config.network.clone().unwrap_or_else(|| "modal-rs".into());
        let gateway = ensure_network(&docker, &network).await?;
        let backend = Arc::new(DockerBackend {
            docker,
            engine,
            settings: settings::Settings {
                control_plane: instance.to_owned(),
                network,
                user: settings::container_user(),
                ca_file: ca_file.map(|p| p.display().to_string()),
            },
            images: image::Images::default(),
            gateway,
            state: Arc::default(),
        });
        let swept = backend.sweep().await;
        if swept > 0 {
            tracing::info!(swept, "removed containers an earlier control plane left");
        }
        let weak = Arc::downgrade(&backend);
        tokio::spawn(sweep_forever(weak));
        Ok(backend)
    }

    /// The address of the network's gateway on this machine: what
    /// containers dial when no URL is advertised.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// Removes this control plane's containers that it does not know.
    async fn sweep(&self) -> usize {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!(
                "{}={}",
                labels::CONTROL_PLANE,
                self.settings.control_plane
            )],
        )]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(listed) = self.docker.list_containers(Some(options)).await else {
            return 0;
        };
        let strays: Vec<String> = {
            let known = self.state.lock().unwrap();
            listed
                .into_iter()
                .filter(|c| {
                    let id = c
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::CONTAINER_ID))
                        .cloned()
                        .unwrap_or_default();
                    !known.running.contains_key(&id) && !known.starting.contains(&id)
                })
                .filter_map(|c| c.id)
                .collect()
        };
        for id in &strays {
            remove(&self.docker, id).await;
        }
        strays.len()
    }

    /// Creates and starts a container of `spec` (whose resources the
    /// control plane has had [`ContainerBackend::check`]ed); returns its
    /// Docker id and its image's tag.
    async fn create(&self, spec: &ContainerSpec) -> Result<(String, String), String> {
        let image = self
            .images
            .ensure(&self.docker, &spec.binary, spec.resources.image.as_deref())
            .await?;
        let mut mounts = Vec::with_capacity(spec.volumes.len());
        for m in &spec.volumes {
            settings::let_containers_write(&m.host_dir, self.settings.user)?;
            let volume = self.ensure_volume(&m.volume, &m.host_dir).await?;
            mounts.push(settings::Mount {
                docker_volume: volume,
                mount_path: m.mount_path.clone(),
            });
        }
        let body = settings::container_body(spec, &image, &mounts, &self.settings, &self.engine);
        let name = format!(
            "modal-{}-{}",
            &self.settings.control_plane[..self.settings.control_plane.len().min(12)],
            spec.container_id
        );
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(&name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| format!("the Docker Engine refused to create it: {e}"))?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            remove(&self.docker, &created.id).await;
            return Err(format!("the Docker Engine refused to start it: {e}"));
        }
        Ok((created.id, image.tag))
    }

    /// The Docker volume holding the folder `host_dir` (created if
    /// missing): a volume per modal-rs volume, so the engine shows what
    /// containers share.
    async fn ensure_volume(&self, volume: &str, host_dir: &Path) -> Result<String, String> {
        // Named by the folder too: the same volume name in two
        // environments is two volumes.
        let folder = format!(
            "{:x}",
            sha2::Sha256::digest(host_dir.as_os_str().as_encoded_bytes())
        );
        let name = format!("modal-rs-{}-{volume}", &folder[..12]);
        if self.docker.inspect_volume(&name).await.is_ok() {
            return Ok(name);
        }
        let options = bollard::models::VolumeCreateRequest {
            name: Some(name.clone()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_owned(), "none".to_owned()),
                ("o".to_owned(), "bind".to_owned()),
                ("device".to_owned(), host_dir.display().to_string()),
            ])),
            labels: Some(HashMap::from([(
                labels::CONTROL_PLANE.to_owned(),
                self.settings.control_plane.clone(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_volume(options)
            .await
            .map_err(|e| format!("cannot create the Docker volume for `{volume}`: {e}"))?;
        Ok(name)
    }
}

/// Forces a container out, whatever its state.
async fn remove(docker: &Docker, id: &str) {
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    let _ = docker.remove_container(id, Some(options)).await;
}

async fn sweep_forever(backend: Weak<DockerBackend>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(backend) = backend.upgrade() else {
            return;
        };
        let swept = backend.sweep().await;
        if swept > 0 {
            tracing::warn!(swept, "removed containers this control plane did not start");
        }
    }
}

/// Creates `network` if it is missing; returns its gateway address.
///
/// The engine lets two networks share a name, and control planes starting
/// at once may each create one: all of them then use the oldest, and the
/// others are removed.
async fn ensure_network(docker: &Docker, network: &str) -> Result<IpAddr, String> {
    let mut chosen = named_networks(docker, network).await?;
    if chosen.is_empty() {
        let request = bollard::models::NetworkCreateRequest {
            name: network.to_owned(),
            driver: Some("bridge".into()),
            ..Default::default()
        };
        docker
            .create_network(request)
            .await
            .map_err(|e| format!("cannot create the Docker network `{network}`: {e}"))?;
        chosen = named_networks(docker, network).await?;
    }
    let mut found = chosen.into_iter();
    let oldest = found
        .next()
        .ok_or_else(|| format!("the Docker network `{network}` vanished as it was created"))?;
    for extra in found {
        if let Some(id) = extra.id {
            let _ = docker.remove_network(&id).await;
        }
    }
    oldest
        .ipam
        .and_then(|i| i.config)
        .into_iter()
        .flatten()
        .filter_map(|c| c.gateway)
        .find_map(|g| g.parse::<IpAddr>().ok())
        .ok_or_else(|| format!("the Docker network `{network}` has no gateway address"))
}

/// The networks called exactly `name`, oldest first.
async fn named_networks(
    docker: &Docker,
    name: &str,
) -> Result<Vec<bollard::models::Network>, String> {
    let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut networks: Vec<_> = docker
        .list_networks(Some(options))
        .await
        .map_err(|e| format!("cannot list the Docker networks: {e}"))?
        .into_iter()
        // The engine's filter matches part of a name.
        .filter(|n| n.name.as_deref() == Some(name))
        .collect();
    networks.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    Ok(networks)
}

/// Why a container ended, from the engine's record of it.
fn describe_end(
    state: Option<&bollard::models::ContainerState>,
    memory_mib: u64,
) -> (String, ExitCause) {
    let Some(state) = state else {
        return ("was lost".into(), ExitCause::Ended);
    };
    if state.oom_killed == Some(true) {
        return (
            format!("ran out of memory (its limit is {memory_mib} MiB) and was killed"),
            ExitCause::OutOfMemory,
        );
    }
    let code = state.exit_code.unwrap_or(-1);
    let reason = match code {
        137 => "was killed by signal 9".to_owned(),
        c if c > 128 => format!("was killed by signal {}", c - 128),
        c => format!("exited with status {c}"),
    };
    (reason, ExitCause::Ended)
}

impl ContainerBackend for DockerBackend {
    fn check(&self, function: &str, resources: &Resources) -> Result<(), String> {
        settings::check_resources(function, resources, &self.engine)
    }

    fn prepare<'a>(
        &'a self,
        binary: &'a Path,
        resources: &'a Resources,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            self.images
                .ensure(&self.docker, binary, resources.image.as_deref())
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn start(
        &self,
        spec: ContainerSpec,
        events: mpsc::Sender<ContainerEvent>,
    ) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let id = spec.container_id.clone();
            {
                // Under the lock that `kill_all` closes: a container is either
                // seen by it (and waited for) or never made.
                let mut known = self.state.lock().unwrap();
                if known.closed {
                    return Err("the control plane is shutting down".into());
                }
                known.starting.insert(id.clone());
            }
            let created = self.create(&spec).await;
            let (docker_id, image) = match created {
                Ok(made) => made,
                Err(e) => {
                    let mut known = self.state.lock().unwrap();
                    known.starting.remove(&id);
                    known.cancelled.remove(&id);
                    return Err(e);
                }
            };
            let (gone_tx, gone_rx) = watch::channel(false);
            let admitted = self
                .state
                .lock()
                .unwrap()
                .admit(&id, docker_id.clone(), image, gone_rx);
            if !admitted {
                remove(&self.docker, &docker_id).await;
                self.state.lock().unwrap().starting.remove(&id);
                return Err("it was stopped while it was being made".into());
            }
            let memory_mib = settings::memory_limit_mib(&spec.resources);
            let docker = self.docker.clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                forward_output(&docker, &docker_id, &id, &events).await;
                // The output ends when the container does; its record says why.
                let wait = bollard::query_parameters::WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build();
                let _ = docker.wait_container(&docker_id, Some(wait)).next().await;
                let inspected = docker.inspect_container(&docker_id, None).await.ok();
                let (reason, cause) = describe_end(
                    inspected.as_ref().and_then(|c| c.state.as_ref()),
                    memory_mib,
                );
                remove(&docker, &docker_id).await;
                state.lock().unwrap().forget(&id);
                let _ = events
                    .send(ContainerEvent::Exited {
                        container_id: id,
                        reason,
                        cause,
                    })
                    .await;
                let _ = gone_tx.send(true);
            });
            Ok(())
        }
        .boxed()
    }

    fn stop(&self, container_id: &str, grace: Duration) -> BoxFuture<'_, ()> {
        let running = {
            let mut known = self.state.lock().unwrap();
            if known.starting.contains(container_id) {
                known.cancelled.insert(container_id.to_owned());
            }
            known.running.get(container_id).cloned()
        };
        async move {
            let Some((docker_id, mut gone)) = running else {
                return;
            };
            if grace.is_zero() {
                let _ = self
                    .docker
                    .kill_container(
                        &docker_id,
                        None::<bollard::query_parameters::KillContainerOptions>,
                    )
                    .await;
            } else {
                let options = bollard::query_parameters::StopContainerOptionsBuilder::default()
                    .t(grace.as_secs().clamp(1, i32::MAX as u64) as i32)
                    .build();
                let _ = self.docker.stop_container(&docker_id, Some(options)).await;
            }
            let _ = gone.wait_for(|g| *g).await;
        }
        .boxed()
    }

    fn kill_all(&self) -> BoxFuture<'_, ()> {
        let all: Vec<_> = {
            let mut known = self.state.lock().unwrap();
            known.closed = true;
            known.running.values().cloned().collect()
        };
        async move {
            for (docker_id, _) in &all {
                remove(&self.docker, docker_id).await;
            }
            for (_, mut gone) in all {
                let _ = gone.wait_for(|g| *g).await;
            }
            // Containers being made are removed as their creation ends.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !self.state.lock().unwrap().starting.is_empty()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        .boxed()
    }

    fn placement(&self, container_id: &str) -> Option<Placement> {
        let known = self.state.lock().unwrap();
        known.images.get(container_id).map(|image| Placement {
            image: image.clone(),
            host: self.engine.name.clone(),
        })
    }
}

/// Publishes a container's output, line by line, until it ends.
async fn forward_output(
    docker: &Docker,
    docker_id: &str,
    container_id: &str,
    events: &mpsc::Sender<ContainerEvent>,
) {
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut output = docker.logs(docker_id, Some(options));
    let mut stdout = LineSplitter::default();
    let mut stderr = LineSplitter::default();
    let send = |stream, line: Vec<u8>| ContainerEvent::Output {
        container_id: container_id.to_owned(),
        stream,
        line: String::from_utf8_lossy(&line).into_owned(),
    };
    while let Some(Ok(chunk)) = output.next().await {
        let (stream, splitter, bytes) = match chunk {
            LogOutput::StdOut { message } => (OutputStream::Stdout, &mut stdout, message),
            LogOutput::StdErr { message } => (OutputStream::Stderr, &mut stderr, message),
            _ => continue,
        };
        for line in splitter.push(&bytes) {
            if events.send(send(stream, line)).await.is_err() {
                return;
            }
        }
    }
    for (stream, splitter) in [
        (OutputStream::Stdout, stdout),
        (OutputStream::Stderr, stderr),
    ] {
        if let Some(line) = splitter.finish() {
            let _ = events.send(send(stream, line)).await;
        }
    }
}
