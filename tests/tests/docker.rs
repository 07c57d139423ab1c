//! The Docker backend, end to end: a standalone control plane with
//! `--backend docker` runs the tests' binary in real Docker containers of
//! an image built from it. Skipped, saying why, where no Docker Engine
//! answers; `MODAL_REQUIRE_DOCKER=1` (as CI sets) makes that a failure.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use modal_runtime::{Error, Manifest};
use modal_tests::docker::Confinement;
use modal_tests::{Recorder, RecorderParams};

/// Whether a Docker Engine answers here; if not, says so (or fails, when
/// `MODAL_REQUIRE_DOCKER=1`).
fn docker_engine(test: &str) -> bool {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        assert!(
            std::env::var("MODAL_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "MODAL_REQUIRE_DOCKER=1, but no Docker Engine answers `docker info`"
        );
        eprintln!("skipped `{test}`: no Docker Engine answers `docker info` here");
    }
    answers
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A control plane on the Docker backend, in a process of its own. Dropped,
/// it is stopped as an operator stops one (Ctrl-C), which removes its
/// containers; a test that kills it checks what a restart sweeps.
struct DockerServer(Standalone);

impl std::ops::Deref for DockerServer {
    type Target = Standalone;
    fn deref(&self) -> &Standalone {
        &self.0
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) touches no memory.
        unsafe { libc::kill(self.0.pid() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && self.0.child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let exited = self.0.child.try_wait().unwrap();
        let left = containers_of(&instance_of(&self.0));
        if !left.is_empty() {
            eprintln!(
                "control plane exit: {exited:?}; left: {}",
                docker(&["ps", "-a", "--format", "{{.ID}} {{.Status}} {{.Names}}"])
            );
        }
        // Its data folder holds a copy of the tests' binary: CI's disk is small.
        let _ = std::fs::remove_dir_all(&self.0.data_dir);
        if !std::thread::panicking() {
            assert!(
                left.is_empty(),
                "a stopped control plane left containers: {left:?}"
            );
        }
    }
}

fn docker_server() -> DockerServer {
    DockerServer(Standalone::start_in(
        scratch_dir("docker"),
        &["--backend", "docker"],
    ))
}

fn instance_of(server: &Standalone) -> String {
    std::fs::read_to_string(server.data_dir.join("instance-id"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Docker ids of the containers the control plane of `instance` owns.
fn containers_of(instance: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=modal-rs.control-plane={instance}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

#[tokio::test]
async fn remote_and_map_run_in_hardened_docker_containers() {
    if !docker_engine("remote_and_map_run_in_hardened_docker_containers") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked").await;
    let square = client.function::<(u64,), u64>("docked", "square");
    assert_eq!(square.remote((12,)).await.unwrap(), 144);
    let squares: Vec<u64> = square
        .map((0..50u64).map(|x| (x,)))
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(
        squares.iter().sum::<u64>(),
        (0..50u64).map(|x| x * x).sum::<u64>()
    );
    // It ran in a container of this control plane, labelled as its own.
    // (Containers started for the map and no longer needed may be going:
    // look at one that stays.)
    let id = containers_of(&instance_of(&server))
        .into_iter()
        .find(|id| {
            Command::new("docker")
                .args(["inspect", "--format", "{{.State.Running}}", id])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
        })
        .expect("no running container is labelled with this control plane");
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", &id]);
    for key in [
        "modal-rs.app",
        "modal-rs.version",
        "modal-rs.function",
        "modal-rs.container-id",
    ] {
        assert!(labels.contains(key), "{key} missing from {labels}");
    }
    // Confined, as seen from inside.
    let seen: Confinement = client
        .function::<(), Confinement>("docked", "confinement")
        .remote(())
        .await
        .unwrap();
    assert_ne!(seen.uid, 0, "{seen:?}");
    assert_eq!(
        seen.pid, 1,
        "the binary is the container's first process: {seen:?}"
    );
    assert_eq!(seen.effective_capabilities, "0000000000000000", "{seen:?}");
    assert_eq!(seen.bounding_capabilities, "0000000000000000", "{seen:?}");
    assert!(seen.no_new_privileges, "{seen:?}");
    assert!(!seen.root_writable, "the root is read-only: {seen:?}");
    assert!(seen.tmp_writable, "/tmp is writable: {seen:?}");
    assert!(!seen.docker_socket_present, "{seen:?}");
    let host = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.PidsLimit}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        &id,
    ]);
    let fields: Vec<&str> = host.split_whitespace().collect();
    assert_eq!(fields[0], "modal-rs", "{host}");
    for limit in &fields[1..] {
        assert!(
            limit.parse::<i64>().unwrap() > 0,
            "a limit is unset: {host}"
        );
    }
}

#[tokio::test]
async fn a_class_runs_enter_in_its_container() {
    if !docker_engine("a_class_runs_enter_in_its_container") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked-cls").await;
    let recorder = client
        .cls::<Recorder>("docked-cls", "Recorder")
        .instance(RecorderParams::new("/tmp/recorder".into()));
    let (pid, enters) = recorder.whoami.remote().await.unwrap();
    assert_eq!((pid, enters), (1, 1));
    assert_eq!(recorder.scaled.remote(21).await.unwrap(), 21);
}

#[tokio::test]
async fn past_its_memory_limit_a_function_fails_out_of_memory() {
    if !docker_engine("past_its_memory_limit_a_function_fails_out_of_memory") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked-oom").await;
    let hog = client.function::<(u64,), u64>("docked-oom", "hog");
    // Within its 64 MiB it runs; past it, the engine kills it.
    assert_eq!(hog.remote((8,)).await.unwrap(), 8);
    match hog.remote((256,)).await {
        Err(Error::OutOfMemory {
            function, message, ..
        }) => {
            assert_eq!(function, "hog");
            assert!(message.contains("64 MiB"), "{message}");
        }
        other => panic!("expected an out-of-memory failure, got {other:?}"),
    }
    // The function still serves.
    assert_eq!(hog.remote((4,)).await.unwrap(), 4);
}

#[tokio::test]
async fn no_container_outlives_a_stop_or_a_killed_server() {
    if !docker_engine("no_container_outlives_a_stop_or_a_killed_server") {
        return;
    }
    let addr = free_addr();
    let data_dir = scratch_dir("docker-sweep");
    let mut server = Standalone::start_on(&addr, data_dir.clone(), &["--backend", "docker"]);
    let instance = instance_of(&server);
    let client = deploy(&server.url, "docked-life").await;
    let square = client.function::<(u64,), u64>("docked-life", "square");
    assert_eq!(square.remote((3,)).await.unwrap(), 9);
    assert!(!containers_of(&instance).is_empty());
    client.stop_app("docked-life").await.unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || containers_of(&instance)
            .is_empty()),
        "containers outlived their app: {:?}",
        containers_of(&instance)
    );
    // Killed with running containers, the next start removes them.
    let client = deploy(&server.url, "docked-life").await;
    let square = client.function::<(u64,), u64>("docked-life", "square");
    assert_eq!(square.remote((4,)).await.unwrap(), 16);
    drop(client);
    server.kill9();
    assert!(
        !containers_of(&instance).is_empty(),
        "SIGKILL leaves its containers"
    );
    let server = DockerServer(Standalone::start_on(
        &addr,
        data_dir,
        &["--backend", "docker"],
    ));
    assert_eq!(instance_of(&server), instance);
    assert!(
        wait_until(Duration::from_secs(20), || containers_of(&instance)
            .is_empty()),
        "a restart left the killed server's containers: {:?}",
        containers_of(&instance)
    );
}

/// Deploys `binary` (uploaded) as `app` with `manifest`.
async fn upload_as(
    client: &modal_runtime::Client,
    app: &str,
    manifest: &Manifest,
    binary: &std::path::Path,
) -> Result<(), Error> {
    client
        .create_app(
            app,
            manifest,
            modal_runtime::AppBinary::Upload(binary),
            false,
        )
        .await
        .map(drop)
}

/// A copy of the tests' binary with bytes of its own appended (which the
/// loader ignores): a binary no other test deploys, so its image is its own.
fn binary_of_its_own(what: &str) -> std::path::PathBuf {
    let path = scratch_dir(what).join("test_app");
    let mut bytes = std::fs::read(test_app()).unwrap();
    bytes.extend_from_slice(format!("{:?}", Instant::now()).as_bytes());
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn an_unchanged_binary_never_builds_its_image_again() {
    if !docker_engine("an_unchanged_binary_never_builds_its_image_again") {
        return;
    }
    let server = docker_server();
    let binary = binary_of_its_own("image-cache");
    let manifest = Manifest::read_from_binary(&binary).unwrap();
    let sha = modal_runtime::server::sha256_file(&binary).unwrap();
    let image_of = || {
        docker(&[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=modal-rs.binary={sha}"),
        ])
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let deploy_as = |client: modal_runtime::Client, app: &'static str| {
        let (manifest, binary) = (manifest.clone(), binary.clone());
        async move {
            let started = Instant::now();
            upload_as(&client, app, &manifest, &binary).await.unwrap();
            started.elapsed()
        }
    };
    assert!(image_of().is_empty());
    let first = deploy_as(server.client().await, "docked-cache-a").await;
    let built = image_of();
    assert_eq!(built.len(), 1, "one image for the binary: {built:?}");
    let second = deploy_as(server.client().await, "docked-cache-b").await;
    assert_eq!(
        image_of(),
        built,
        "a second deploy of the same binary built again"
    );
    // Another control plane on the same engine finds it too.
    let other = docker_server();
    let third = deploy_as(other.client().await, "docked-cache-c").await;
    assert_eq!(image_of(), built);
    let square = other
        .client()
        .await
        .function::<(u64,), u64>("docked-cache-c", "square");
    assert_eq!(square.remote((5,)).await.unwrap(), 25);
    eprintln!("deploy with an image build: {first:?}; again: {second:?}; elsewhere: {third:?}");
    drop((server, other));
    docker(&["rmi", "-f", &built[0]]);
    let _ = std::fs::remove_dir_all(binary.parent().unwrap());
}

#[tokio::test]
async fn resources_the_engine_lacks_fail_the_deploy_naming_them() {
    if !docker_engine("resources_the_engine_lacks_fail_the_deploy_naming_them") {
        return;
    }
    let server = docker_server();
    let client = server.client().await;
    let binary = test_app();
    let asking = |change: &dyn Fn(&mut modal_runtime::FunctionOptions)| {
        let mut manifest = Manifest::read_from_binary(&binary).unwrap();
        let f = manifest
            .functions
            .iter_mut()
            .find(|f| f.name == "square")
            .unwrap();
        change(&mut f.options);
        manifest
    };
    let gpu = asking(&|o| o.gpu = Some("H100:2".into()));
    let err = upload_as(&client, "docked-gpu", &gpu, &binary)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GPU `H100:2`") && err.contains("runc"),
        "{err}"
    );
    let cpu = asking(&|o| o.cpu = Some(64.0));
    let err = upload_as(&client, "docked-cpu", &cpu, &binary)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("64 CPU cores"), "{err}");
    // Nothing was registered.
    let apps = client.list_apps().await.unwrap();
    assert!(
        apps.iter().all(|a| !a.name.starts_with("docked-")),
        "{apps:?}"
    );
}

#[test]
fn an_engine_that_does_not_answer_is_named_at_start() {
    let start_on = |host: &str| {
        let out = Command::new(workspace_binary("xtask"))
            .args(["server", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(scratch_dir("no-engine"))
            .args(["--backend", "docker", "--docker-host", host])
            .env(
                "MODAL_CONFIG",
                scratch_dir("no-engine-config").join("config.toml"),
            )
            .output()
            .unwrap();
        assert!(!out.status.success());
        text(&out)
    };
    let said = start_on("unix:///nonexistent/docker.sock");
    assert!(
        said.contains("unix:///nonexistent/docker.sock") && said.contains("does not answer"),
        "{said}"
    );
    // An address that is no engine's kind at all is named with the forms
    // that are.
    let said = start_on("ftp://engine:21");
    assert!(
        said.contains("`ftp://engine:21` is not a Docker Engine address")
            && said.contains("unix://"),
        "{said}"
    );
}

/// The tests' manifest with `change` applied to function `name`'s options.
fn manifest_changing(name: &str, change: impl Fn(&mut modal_runtime::FunctionOptions)) -> Manifest {
    let mut manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let f = manifest
        .functions
        .iter_mut()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no function `{name}` in the test app"));
    change(&mut f.options);
    manifest
}

fn mounting(path: &str, volume: &str) -> impl Fn(&mut modal_runtime::FunctionOptions) {
    let mount = vec![(
        std::borrow::Cow::Owned(path.to_owned()),
        std::borrow::Cow::Owned(volume.to_owned()),
    )];
    move |o| o.volumes = mount.clone().into()
}

#[tokio::test]
async fn a_volume_is_shared_by_functions_and_outlives_a_redeploy_on_docker() {
    if !docker_engine("a_volume_is_shared_by_functions_and_outlives_a_redeploy_on_docker") {
        return;
    }
    let server = docker_server();
    let client = server.client().await;
    client.create_volume("docked-data", false).await.unwrap();
    let binary = test_app();
    upload_as(
        &client,
        "docked-vol",
        &manifest_changing("write_mounted", mounting("/data", "docked-data")),
        &binary,
    )
    .await
    .unwrap();
    let write = client.function::<(String, String), String>("docked-vol", "write_mounted");
    let real = write
        .remote(("/data/notes/a.txt".into(), "written in version 1".into()))
        .await
        .unwrap();
    assert_eq!(
        real, "/data/notes/a.txt",
        "mounted where the function asked"
    );
    // Another function of the next version mounts it elsewhere.
    upload_as(
        &client,
        "docked-vol",
        &manifest_changing("read_mounted", mounting("/mnt/v", "docked-data")),
        &binary,
    )
    .await
    .unwrap();
    let read = client.function::<(String,), String>("docked-vol", "read_mounted");
    assert_eq!(
        read.remote(("/mnt/v/notes/a.txt".into(),)).await.unwrap(),
        "written in version 1"
    );
    // A client reads what a container wrote.
    let volume = client.volume("docked-data");
    assert_eq!(
        volume.read_file("/notes/a.txt").await.unwrap(),
        b"written in version 1"
    );
    // One Docker volume holds it.
    let volumes = docker(&["volume", "ls", "-q"]);
    assert!(
        volumes.lines().any(|v| v.ends_with("-docked-data")),
        "{volumes}"
    );
}

#[tokio::test]
async fn a_function_runs_on_the_base_image_it_names() {
    if !docker_engine("a_function_runs_on_the_base_image_it_names") {
        return;
    }
    // A base image of the engine's own, with a file of its own.
    let context = scratch_dir("base-image");
    std::fs::write(context.join("marker"), "from the base image").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY marker /etc/base-marker\n",
    )
    .unwrap();
    let base = "modal-rs-test-base:1";
    docker(&["build", "-q", "-t", base, &context.display().to_string()]);
    let server = docker_server();
    let client = server.client().await;
    let binary = test_app();
    upload_as(
        &client,
        "docked-base",
        &manifest_changing("read_text", |o| o.image = Some(base.into())),
        &binary,
    )
    .await
    .unwrap();
    let read = client.function::<(String,), Option<String>>("docked-base", "read_text");
    assert_eq!(
        read.remote(("/etc/base-marker".into(),))
            .await
            .unwrap()
            .as_deref(),
        Some("from the base image")
    );
    // A base image the engine lacks fails the deploy, naming it.
    let err = upload_as(
        &client,
        "docked-nobase",
        &manifest_changing("read_text", |o| o.image = Some("modal-rs-absent:1".into())),
        &binary,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`modal-rs-absent:1`") && err.contains("not in the Docker Engine"),
        "{err}"
    );
    let apps = client.list_apps().await.unwrap();
    assert!(apps.iter().all(|a| a.name != "docked-nobase"), "{apps:?}");
}

#[tokio::test]
async fn a_call_asking_for_a_gpu_the_engine_lacks_fails_naming_it() {
    if !docker_engine("a_call_asking_for_a_gpu_the_engine_lacks_fails_naming_it") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked-gpu-call").await;
    let on_gpu = client
        .cls::<Recorder>("docked-gpu-call", "Recorder")
        .instance(RecorderParams::new("/tmp/recorder".into()))
        .with_options(modal_runtime::ClsOptions::new().gpu("A100"));
    let err = on_gpu.scaled.remote(2).await.unwrap_err().to_string();
    assert!(
        err.contains("GPU `A100`") && err.contains("NVIDIA"),
        "{err}"
    );
}

#[tokio::test]
async fn the_process_backend_refuses_a_gpu_rather_than_run_without_one() {
    let data_dir = scratch_dir("process-gpu");
    let server =
        modal_runtime::server::Server::start(modal_runtime::server::ServerConfig::new(&data_dir))
            .await
            .unwrap();
    let client = modal_runtime::Client::connect(server.url()).await.unwrap();
    let binary = test_app();
    let err = client
        .create_app(
            "process-gpu",
            &manifest_changing("square", |o| o.gpu = Some("H100".into())),
            modal_runtime::AppBinary::LocalPath(&binary),
            false,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GPU `H100`") && err.contains("--backend docker"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_long_call_and_its_container_outlast_the_engine_clients_timeouts() {
    if !docker_engine("a_long_call_and_its_container_outlast_the_engine_clients_timeouts") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked-long").await;
    let sleep = client.function::<(u64,), u64>("docked-long", "sleep_ms");
    let pid = client.function::<(), u32>("docked-long", "pid");
    assert_eq!(pid.remote(()).await.unwrap(), 1);
    let before = containers_of(&instance_of(&server));
    // Longer than any request timeout of the engine's client (10 s).
    assert_eq!(sleep.remote((12_000,)).await.unwrap(), 12_000);
    assert_eq!(pid.remote(()).await.unwrap(), 1);
    let after = containers_of(&instance_of(&server));
    assert!(
        before.iter().all(|c| after.contains(c)),
        "a container went: before {before:?}, after {after:?}"
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_built_fails_the_deploy_and_registers_nothing() {
    if !docker_engine("an_image_that_cannot_be_built_fails_the_deploy_and_registers_nothing") {
        return;
    }
    // The tests' binary, asking for a library no machine has (the name in
    // its dynamic section changed, same length).
    let path = scratch_dir("unbuildable").join("test_app");
    let mut bytes = std::fs::read(test_app()).unwrap();
    let wanted = b"libc.so.6\0";
    let at = bytes
        .windows(wanted.len())
        .position(|w| w == wanted)
        .expect("the binary names libc");
    bytes[at..at + wanted.len()].copy_from_slice(b"libq.so.9\0");
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = docker_server();
    let client = server.client().await;
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let err = upload_as(&client, "docked-unbuildable", &manifest, &path)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`libq.so.9`"), "{err}");
    let apps = client.list_apps().await.unwrap();
    assert!(apps.is_empty(), "{apps:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn cpu_and_memory_pairs_become_the_containers_reservations_and_limits() {
    if !docker_engine("cpu_and_memory_pairs_become_the_containers_reservations_and_limits") {
        return;
    }
    let server = docker_server();
    let client = server.client().await;
    let binary = test_app();
    upload_as(
        &client,
        "docked-limits",
        &manifest_changing("square", |o| {
            o.cpu = Some(0.5);
            o.cpu_limit = Some(1.5);
            o.memory_mib = Some(96);
            o.memory_limit_mib = Some(192);
        }),
        &binary,
    )
    .await
    .unwrap();
    let square = client.function::<(u64,), u64>("docked-limits", "square");
    assert_eq!(square.remote((9,)).await.unwrap(), 81);
    let id = containers_of(&instance_of(&server))
        .into_iter()
        .next()
        .unwrap();
    let host = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwap}}",
        &id,
    ]);
    assert_eq!(
        host.split_whitespace().collect::<Vec<_>>(),
        [
            "1500000000",
            "512",
            &(192u64 << 20).to_string(),
            &(96u64 << 20).to_string(),
            &(192u64 << 20).to_string(),
        ],
        "{host}"
    );
}

#[tokio::test]
async fn a_web_endpoint_answers_from_a_docker_container() {
    if !docker_engine("a_web_endpoint_answers_from_a_docker_container") {
        return;
    }
    let server = docker_server();
    let client = deploy(&server.url, "docked-web").await;
    let square = client.function::<(u64,), u64>("docked-web", "web_square");
    let url = square.web_url().await.unwrap().unwrap();
    let base = server
        .web_base_url
        .clone()
        .expect("the server prints its web URL");
    assert_eq!(url, format!("{base}/main/docked-web/square"));
    let response = reqwest::Client::new()
        .post(&url)
        .header("authorization", format!("Bearer {}", server.token))
        .body("12")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<u64>().await.unwrap(), 144);
}
