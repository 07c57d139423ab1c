//! How a container is created: its image, command, identity, resources and
//! hardening, as one pure function of the spec, so that what every
//! container gets is read (and tested) in one place.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};

use super::engine::EngineInfo;
use super::image::Image;
use crate::server::backend::{ContainerSpec, Resources};

/// Labels on everything this backend creates.
pub(crate) mod labels {
    /// The control plane that owns a container (its instance id).
    pub const CONTROL_PLANE: &str = "modal-rs.control-plane";
    pub const APP: &str = "modal-rs.app";
    pub const VERSION: &str = "modal-rs.version";
    pub const FUNCTION: &str = "modal-rs.function";
    pub const CONTAINER_ID: &str = "modal-rs.container-id";
    /// On images: the SHA-256 of the binary they run.
    pub const BINARY: &str = "modal-rs.binary";
}

/// Processes one container may run at once.
const PIDS_LIMIT: i64 = 1024;
/// Memory of a container that names none, in MiB.
pub(crate) const DEFAULT_MEMORY_MIB: u64 = 2048;
/// `/tmp` is memory: it counts against the container's memory limit.
const TMPFS_OPTIONS: &str = "rw,nosuid,nodev,mode=1777";
/// Where the control plane's CA certificate is mounted under TLS.
pub(crate) const CA_PATH: &str = "/etc/modal/ca.pem";

/// What every container of this backend shares.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub control_plane: String,
    pub network: String,
    /// The user containers run as: never root.
    pub user: User,
    /// The control plane's CA certificate on this machine, under TLS.
    pub ca_file: Option<String>,
}

/// A numeric user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// The user containers run as: the control plane's own user, or `nobody`
/// when the control plane runs as root.
pub(crate) fn container_user() -> User {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        User {
            uid: 65534,
            gid: 65534,
        }
    } else {
        User { uid, gid }
    }
}

/// Makes a volume's folder writable by containers (`user`): a control
/// plane running as root made it root's, and its containers are not root.
/// Only the folder itself: what is in it keeps its owner.
pub(crate) fn let_containers_write(folder: &std::path::Path, user: User) -> Result<(), String> {
    let meta = std::fs::metadata(folder)
        .map_err(|e| format!("cannot use the volume folder {}: {e}", folder.display()))?;
    if std::os::unix::fs::MetadataExt::uid(&meta) == user.uid {
        return Ok(());
    }
    std::os::unix::fs::chown(folder, Some(user.uid), Some(user.gid)).map_err(|e| {
        format!(
            "cannot give the volume folder {} to the containers' user {user}: {e}",
            folder.display()
        )
    })
}

/// The memory past which a container of `r` is killed, in MiB.
pub(crate) fn memory_limit_mib(r: &Resources) -> u64 {
    r.memory_limit_mib().map_or(DEFAULT_MEMORY_MIB, u64::from)
}

/// Refuses resources the engine cannot give, naming what was asked and
/// what the engine has: a container that can never start is an error at
/// deploy, not a queue that never moves.
pub(crate) fn check_resources(
    function: &str,
    resources: &Resources,
    engine: &EngineInfo,
) -> Result<(), String> {
    if let Some(cores) = resources.cpu_limit_cores()
        && cores > f64::from(engine.cores)
    {
        return Err(format!(
            "function `{function}` asks for {cores} CPU cores, but the Docker Engine at {} has {}",
            engine.address, engine.cores
        ));
    }
    if let Some(mib) = resources.memory_limit_mib()
        && engine.memory_bytes > 0
        && u64::from(mib) << 20 > engine.memory_bytes
    {
        return Err(format!(
            "function `{function}` asks for {mib} MiB of memory, but the Docker Engine at {} has {} MiB",
            engine.address,
            engine.memory_bytes >> 20
        ));
    }
    if let Some(gpu) = &resources.gpu
        && !engine.has_gpus()
    {
        return Err(format!(
            "function `{function}` asks for GPU `{gpu}`, but the Docker Engine at {} has no \
             NVIDIA runtime (its runtimes: {}), so it has no GPU to give; install the NVIDIA \
             Container Toolkit there, or drop `gpu`",
            engine.address,
            engine.runtimes.join(", ")
        ));
    }
    Ok(())
}

/// How many GPUs a request such as `"A100"`, `"H100:2"` or `"any"` asks
/// for (validated at deploy: one if it cannot be read).
pub(crate) fn gpu_count(gpu: &str) -> i64 {
    crate::options::GpuRequest::parse(gpu).map_or(1, |g| i64::from(g.count))
}

/// A volume as the engine mounts it: the Docker volume over its folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mount {
    pub docker_volume: String,
    pub mount_path: String,
}

/// The container to create for `spec` from `image`, with `mounts` (the
/// Docker volumes of `spec.volumes`).
pub(crate) fn container_body(
    spec: &ContainerSpec,
    image: &Image,
    mounts: &[Mount],
    settings: &Settings,
    engine: &EngineInfo,
) -> ContainerCreateBody {
    let r = &spec.resources;
    let memory = (memory_limit_mib(r) << 20) as i64;
    let cpu_limit = r.cpu_limit_cores().unwrap_or(f64::from(engine.cores));
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut binds = Vec::new();
    if let Some(ca) = &settings.ca_file {
        binds.push(format!("{ca}:{CA_PATH}:ro"));
        env.retain(|e| !e.starts_with(&format!("{}=", crate::contract::container_env::TLS_CA)));
        env.push(format!(
            "{}={CA_PATH}",
            crate::contract::container_env::TLS_CA
        ));
    }
    for m in mounts {
        binds.push(format!("{}:{}:rw", m.docker_volume, m.mount_path));
    }
    let labels = HashMap::from([
        (
            labels::CONTROL_PLANE.to_owned(),
            settings.control_plane.clone(),
        ),
        (labels::APP.to_owned(), spec.app.clone()),
        (labels::VERSION.to_owned(), spec.version.to_string()),
        (labels::FUNCTION.to_owned(), spec.function.clone()),
        (labels::CONTAINER_ID.to_owned(), spec.container_id.clone()),
    ]);
    let device_requests = r.gpu.as_deref().map(|gpu| {
        vec![DeviceRequest {
            driver: Some("nvidia".into()),
            count: Some(gpu_count(gpu)),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]
    });
    ContainerCreateBody {
        image: Some(image.tag.clone()),
        entrypoint: Some(image.entrypoint.clone()),
        cmd: Some(Vec::new()),
        env: Some(env),
        user: Some(settings.user.to_string()),
        working_dir: Some("/tmp".into()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(settings.network.clone()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                TMPFS_OPTIONS.to_owned(),
            )])),
            pids_limit: Some(PIDS_LIMIT),
            memory: Some(memory),
            // No swap: past its memory a container is killed, not slowed.
            memory_swap: Some(memory),
            memory_reservation: r
                .memory_limit_mib
                .and(r.memory_mib)
                .map(|mib| (u64::from(mib) << 20) as i64),
            nano_cpus: Some((cpu_limit * 1e9) as i64),
            cpu_shares: r.cpu.map(|c| ((c * 1024.0) as i64).max(2)),
            device_requests,
            binds: (!binds.is_empty()).then_some(binds),
            init: Some(false),
            privileged: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> EngineInfo {
        EngineInfo {
            address: "unix:///var/run/docker.sock".into(),
            name: "builder".into(),
            cores: 2,
            memory_bytes: 8 << 30,
            runtimes: vec!["runc".into()],
        }
    }

    fn spec(resources: Resources) -> ContainerSpec {
        ContainerSpec {
            container_id: "c-7".into(),
            app: "main/app".into(),
            version: 3,
            function: "f".into(),
            binary: "/bin/true".into(),
            env: vec![("A".into(), "1".into())],
            resources,
            volumes: Vec::new(),
        }
    }

    fn settings() -> Settings {
        Settings {
            control_plane: "cp-1".into(),
            network: "modal-rs".into(),
            user: User {
                uid: 65534,
                gid: 65534,
            },
            ca_file: None,
        }
    }

    fn image() -> Image {
        Image {
            tag: "modal-rs-app:x".into(),
            entrypoint: vec!["/modal/app".into()],
        }
    }

    fn body(resources: Resources) -> ContainerCreateBody {
        container_body(&spec(resources), &image(), &[], &settings(), &engine())
    }

    #[test]
    fn every_container_is_hardened() {
        let b = body(Resources::default());
        let h = b.host_config.unwrap();
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert!(h.tmpfs.unwrap().contains_key("/tmp"));
        assert_eq!(h.pids_limit, Some(PIDS_LIMIT));
        assert_eq!(h.memory, Some((DEFAULT_MEMORY_MIB << 20) as i64));
        assert_eq!(h.memory_swap, h.memory);
        assert_eq!(h.nano_cpus, Some(2_000_000_000));
        assert_eq!(h.network_mode.as_deref(), Some("modal-rs"));
        assert_eq!(h.privileged, Some(false));
        assert!(h.binds.is_none(), "nothing of the host is mounted");
        assert_eq!(b.user.as_deref(), Some("65534:65534"));
        let labels = b.labels.unwrap();
        assert_eq!(labels[labels::CONTAINER_ID], "c-7");
        assert_eq!(labels[labels::CONTROL_PLANE], "cp-1");
        assert_eq!(labels[labels::VERSION], "3");
    }

    #[test]
    fn requests_and_limits_map_to_reservations_and_caps() {
        let h = body(Resources {
            cpu: Some(0.5),
            cpu_limit: Some(1.5),
            memory_mib: Some(256),
            memory_limit_mib: Some(512),
            ..Default::default()
        })
        .host_config
        .unwrap();
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.memory_reservation, Some(256 << 20));
        let h = body(Resources {
            memory_mib: Some(300),
            ..Default::default()
        })
        .host_config
        .unwrap();
        assert_eq!(h.memory, Some(300 << 20));
        assert_eq!(h.memory_reservation, None);
    }

    #[test]
    fn resources_beyond_the_engine_are_refused_naming_both() {
        let cpu = Resources {
            cpu: Some(64.0),
            ..Default::default()
        };
        let err = check_resources("f", &cpu, &engine()).unwrap_err();
        assert!(
            err.contains("64 CPU cores") && err.contains("has 2"),
            "{err}"
        );
        let memory = Resources {
            memory_mib: Some(1 << 20),
            ..Default::default()
        };
        let err = check_resources("f", &memory, &engine()).unwrap_err();
        assert!(
            err.contains("1048576 MiB") && err.contains("8192 MiB"),
            "{err}"
        );
        let gpu = Resources {
            gpu: Some("H100:2".into()),
            ..Default::default()
        };
        let err = check_resources("f", &gpu, &engine()).unwrap_err();
        assert!(
            err.contains("GPU `H100:2`") && err.contains("runc"),
            "{err}"
        );
        let mut with_gpus = engine();
        with_gpus.runtimes.push("nvidia".into());
        assert_eq!(check_resources("f", &gpu, &with_gpus), Ok(()));
        assert_eq!(
            check_resources("f", &Resources::default(), &engine()),
            Ok(())
        );
    }

    #[test]
    fn volumes_are_the_only_mounts() {
        let mounts = [Mount {
            docker_volume: "modal-rs-abc-data".into(),
            mount_path: "/data".into(),
        }];
        let body = container_body(
            &spec(Resources::default()),
            &image(),
            &mounts,
            &settings(),
            &engine(),
        );
        assert_eq!(
            body.host_config.unwrap().binds,
            Some(vec!["modal-rs-abc-data:/data:rw".to_owned()])
        );
    }

    #[test]
    fn a_gpu_request_becomes_a_device_request() {
        let h = body(Resources {
            gpu: Some("A100:2".into()),
            ..Default::default()
        })
        .host_config
        .unwrap();
        let request = &h.device_requests.unwrap()[0];
        assert_eq!(request.count, Some(2));
        assert_eq!(request.driver.as_deref(), Some("nvidia"));
        assert_eq!(gpu_count("any"), 1);
    }
}
