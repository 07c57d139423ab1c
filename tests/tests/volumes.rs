//! Volumes end to end: named folders of an environment that functions
//! mount, written and read from functions, clients and `cargo xtask
//! volume`; paths that would leave a volume refused; a deploy naming a
//! volume that does not exist refused, naming it.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::*;
use modal_runtime::proto;
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, ClsOptions, Error, Manifest, Volume};
use modal_tests::{Recorder, RecorderParams};
use tonic::Code;

/// An in-process control plane and a client with every right.
async fn control_plane(what: &str) -> (Server, Client) {
    let mut config = ServerConfig::new(scratch_dir(what));
    config.stop_grace = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let local = Client::connect(server.url()).await.unwrap();
    (server, local)
}

/// The tests' manifest with `mounts` (`(mount path, volume)`) on the
/// functions named.
fn manifest_with(mounts: &[(&str, &[(&str, &str)])]) -> Manifest {
    let mut manifest = Manifest::read_from_binary(&test_app()).unwrap();
    for (function, volumes) in mounts {
        let f = manifest
            .functions
            .iter_mut()
            .find(|f| f.name == *function)
            .unwrap_or_else(|| panic!("no function `{function}` in the test app"));
        f.options.volumes = volumes
            .iter()
            .map(|(p, v)| (Cow::Owned(p.to_string()), Cow::Owned(v.to_string())))
            .collect::<Vec<_>>()
            .into();
    }
    manifest
}

async fn deploy_with(
    client: &Client,
    app: &str,
    mounts: &[(&str, &[(&str, &str)])],
) -> Result<(), modal_runtime::Error> {
    client
        .create_app(
            app,
            &manifest_with(mounts),
            AppBinary::Upload(&test_app()),
            false,
        )
        .await
        .map(drop)
}

/// The gRPC code of a refusal.
fn code(err: &Error) -> Code {
    match err {
        Error::Rpc(status) => status.code(),
        Error::PermissionDenied { .. } => Code::PermissionDenied,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test]
async fn a_deploy_naming_a_missing_volume_fails_naming_it() {
    let (server, local) = control_plane("volumes-missing").await;
    let err = deploy_with(&local, "needs", &[("square", &[("/data", "nowhere")])])
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`nowhere`"), "{message}");
    assert!(message.contains("volume create nowhere"), "{message}");
    assert!(message.contains("Volume::from_name"), "{message}");
    assert!(local.list_apps().await.unwrap().is_empty());
    // Made, the same deploy goes through.
    local.create_volume("nowhere", false).await.unwrap();
    deploy_with(&local, "needs", &[("square", &[("/data", "nowhere")])])
        .await
        .unwrap();
    // A class variant naming a missing volume fails at its first call,
    // naming it, before any container starts.
    deploy_with(&local, "classes", &[]).await.unwrap();
    let dir = scratch_dir("volumes-recorder").display().to_string();
    let missing = local
        .cls::<Recorder>("classes", "Recorder")
        .instance(RecorderParams::new(dir))
        .with_options(ClsOptions::new().volumes([("/data", &Volume::from_name("gone", false))]));
    let err = missing.scaled.remote(2).await.unwrap_err();
    assert!(err.to_string().contains("`gone`"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_volume_written_by_one_function_is_read_by_another_after_a_redeploy() {
    let (server, local) = control_plane("volumes-redeploy").await;
    // Made on first use, as Modal's `Volume.from_name(.., create_if_missing=True)`.
    let shared = Volume::from_name_with(&local, "shared", true);
    shared.hydrate().await.unwrap();
    deploy_with(&local, "vols", &[("write_mounted", &[("/data", "shared")])])
        .await
        .unwrap();
    let write = local.function::<(String, String), String>("vols", "write_mounted");
    write
        .remote(("/data/notes/a.txt".into(), "written in version 1".into()))
        .await
        .unwrap();
    // Version 2 mounts it elsewhere, in another function.
    deploy_with(&local, "vols", &[("read_mounted", &[("/mnt/v", "shared")])])
        .await
        .unwrap();
    let read = local.function::<(String,), String>("vols", "read_mounted");
    assert_eq!(
        read.remote(("/mnt/v/notes/a.txt".into(),)).await.unwrap(),
        "written in version 1"
    );
    // A client sees the same file, and a function sees what a client wrote.
    assert_eq!(
        shared.read_file("/notes/a.txt").await.unwrap(),
        b"written in version 1"
    );
    shared
        .write_file("from-client.txt", &b"by a client"[..], false)
        .await
        .unwrap();
    assert_eq!(
        read.remote(("/mnt/v/from-client.txt".into(),))
            .await
            .unwrap(),
        "by a client"
    );
    let listed = shared.listdir("/", true).await.unwrap();
    let paths: Vec<_> = listed.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["from-client.txt", "notes", "notes/a.txt"]);
    assert!(listed[1].is_dir);
    assert_eq!(listed[2].size, "written in version 1".len() as u64);
    // A path in no volume is the function's own file system's.
    let err = read
        .remote(("/mnt/elsewhere/a.txt".into(),))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/mnt/elsewhere/a.txt"), "{err}");
    server.shutdown().await;
}

/// Runs `cargo xtask volume ARGS --server URL` as `token`.
fn volume_cli(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(workspace_binary("xtask"))
        .env("MODAL_TOKEN", token)
        .env_remove("MODAL_ENVIRONMENT")
        .arg("volume")
        .args(args)
        .args(["--server", url])
        .output()
        .unwrap()
}

// The CLI runs (and is waited for) while this runtime serves its control plane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_puts_lists_gets_and_removes_files() {
    let (server, local) = control_plane("volumes-cli").await;
    let url = server.url().to_owned();
    let token = local.create_token("deploy", None, "cli").await.unwrap().1;
    let run = |args: &[&str]| {
        let out = volume_cli(&url, &token, args);
        assert!(out.status.success(), "volume {args:?}: {}", text(&out));
        out
    };
    let refused = |args: &[&str]| {
        let out = volume_cli(&url, &token, args);
        assert!(
            !out.status.success(),
            "volume {args:?} succeeded: {}",
            text(&out)
        );
        text(&out)
    };
    run(&["create", "cli-vol"]);
    assert!(text(&run(&["list"])).contains("cli-vol"));
    assert!(refused(&["create", "cli-vol"]).contains("exists already"));
    run(&["create", "cli-vol", "--exist-ok"]);
    // A file of several chunks, and an empty one.
    let dir = scratch_dir("volumes-cli-files");
    let big: Vec<u8> = (0..(3 << 20) + 12_345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    let local_big = dir.join("big.bin").display().to_string();
    run(&["put", "cli-vol", &local_big, "/sub/"]);
    run(&["put", "cli-vol", &dir.join("empty").display().to_string()]);
    assert!(refused(&["put", "cli-vol", &local_big, "sub/big.bin"]).contains("--force"));
    run(&["put", "cli-vol", &local_big, "sub/big.bin", "--force"]);
    let listed = text(&run(&["ls", "cli-vol", "/", "-r"]));
    assert!(listed.contains("sub/big.bin"), "{listed}");
    assert!(listed.contains(&big.len().to_string()), "{listed}");
    assert!(listed.contains("empty"), "{listed}");
    let top = text(&run(&["ls", "cli-vol"]));
    assert!(!top.contains("sub/big.bin"), "{top}");
    // Back into a file, and to standard output.
    let got = dir.join("got.bin");
    run(&["get", "cli-vol", "sub/big.bin", &got.display().to_string()]);
    assert_eq!(std::fs::read(&got).unwrap(), big);
    let stdout = run(&["get", "cli-vol", "/sub/big.bin", "-"]).stdout;
    assert_eq!(stdout, big);
    assert!(run(&["get", "cli-vol", "empty", "-"]).stdout.is_empty());
    assert!(refused(&["get", "cli-vol", "nothing-here", "-"]).contains("nothing is at"));
    // A folder goes only when asked for recursively.
    assert!(refused(&["rm", "cli-vol", "sub"]).contains("folder"));
    run(&["rm", "cli-vol", "sub", "-r"]);
    let listed = text(&run(&["ls", "cli-vol", "/", "-r"]));
    assert!(!listed.contains("sub"), "{listed}");
    run(&["rm", "cli-vol"]);
    assert!(!text(&run(&["list"])).contains("cli-vol"));
    assert!(refused(&["ls", "cli-vol"]).contains("does not exist"));
    // Reading needs an invoke token; changing needs deploy.
    let invoke = local
        .create_token("invoke", None, "reader")
        .await
        .unwrap()
        .1;
    run(&["create", "ro"]);
    let out = volume_cli(&url, &invoke, &["ls", "ro"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = volume_cli(&url, &invoke, &["put", "ro", &local_big]);
    assert!(!out.status.success());
    assert!(text(&out).contains("`deploy`"), "{}", text(&out));
    server.shutdown().await;
}

#[tokio::test]
async fn paths_that_would_leave_a_volume_are_refused() {
    let (server, local) = control_plane("volumes-escape").await;
    local.create_volume("box", false).await.unwrap();
    let volume = local.volume("box");
    volume.write_file("inside.txt", "in", false).await.unwrap();
    for path in ["../x", "a/../../x", "/.."] {
        let err = volume.read_file(path).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
        assert!(err.to_string().contains("`..`"), "{err}");
        let err = volume.write_file(path, "x", true).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
        let err = volume.listdir(path, false).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
        let err = volume.remove_file(path, true).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
    }
    // A container makes links out of the volume: to a folder and to a file.
    deploy_with(&local, "linker", &[("link_mounted", &[("/data", "box")])])
        .await
        .unwrap();
    let link = local.function::<(String, String), ()>("linker", "link_mounted");
    link.remote(("/data/etc".into(), "/etc".into()))
        .await
        .unwrap();
    link.remote(("/data/passwd".into(), "/etc/passwd".into()))
        .await
        .unwrap();
    let outside = scratch_dir("volumes-outside");
    link.remote(("/data/out".into(), outside.display().to_string()))
        .await
        .unwrap();
    for path in ["etc/passwd", "passwd", "/etc/hostname"] {
        let err = volume.read_file(path).await.unwrap_err();
        assert_eq!(code(&err), Code::FailedPrecondition, "{path}: {err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
    for path in ["out/planted", "out/deeper/planted"] {
        let err = volume.write_file(path, "x", true).await.unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
    // Over a link to a file: the link is replaced, its target untouched.
    link.remote((
        "/data/target-link".into(),
        outside.join("kept").display().to_string(),
    ))
    .await
    .unwrap();
    std::fs::write(outside.join("kept"), "untouched").unwrap();
    volume
        .write_file("target-link", "replaced", true)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("kept")).unwrap(),
        "untouched"
    );
    assert_eq!(volume.read_file("target-link").await.unwrap(), b"replaced");
    assert!(
        std::fs::read_dir(&outside).unwrap().count() == 1,
        "something was planted outside"
    );
    let err = volume.listdir("etc/ssh", false).await.unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // Listed, a link is itself; removed, only the link goes.
    let listed = volume.listdir("/", true).await.unwrap();
    let etc = listed.iter().find(|e| e.path == "etc").unwrap();
    assert!(etc.is_symlink && !etc.is_dir, "{etc:?}");
    assert!(
        !listed.iter().any(|e| e.path.starts_with("etc/")),
        "{listed:?}"
    );
    volume.remove_file("etc", true).await.unwrap();
    volume.remove_file("out", true).await.unwrap();
    assert!(std::path::Path::new("/etc/passwd").exists());
    assert!(outside.join("kept").exists());
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_volume_name_or_mount_path_is_refused_with_the_rule() {
    let (server, local) = control_plane("volumes-names").await;
    for bad in ["", "../up", "has space", ".hidden", "a/b", &"v".repeat(64)] {
        let err = local.create_volume(bad, true).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{bad:?}: {err}");
        assert!(
            err.to_string().contains(
                "1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
            ),
            "{err}"
        );
        let err = local.volume(bad).read_file("x").await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{bad:?}: {err}");
    }
    assert!(local.list_volumes().await.unwrap().is_empty());
    local.create_volume("ok", false).await.unwrap();
    for (mounts, expected) in [
        (&[("/data", "bad name")][..], "not a valid volume name"),
        (&[("data", "ok")][..], "must be absolute"),
        (&[("/proc/x", "ok")][..], "kernel"),
        (&[("/a/../b", "ok")][..], "plain components"),
        (&[("/a", "ok"), ("/a", "ok")][..], "both mounted at `/a`"),
        (&[("/a", "ok"), ("/a/b", "ok")][..], "inside"),
    ] {
        let err = deploy_with(&local, "bad", &[("square", mounts)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{mounts:?}: {err}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_upload_cut_short_leaves_nothing() {
    let (server, local) = control_plane("volumes-cut").await;
    local.create_volume("cut", false).await.unwrap();
    let mut raw = raw_with(server.url(), Some(server.local_token())).await;
    // Announced as 10 bytes, 4 sent: the sender failed to read its file.
    let status = raw
        .put_volume_file(tokio_stream::iter(vec![proto::VolumeFileChunk {
            volume: "cut".into(),
            path: "half.bin".into(),
            size: Some(10),
            data: bytes::Bytes::from_static(b"1234"),
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    // A message over 1 MiB is refused.
    let status = raw
        .put_volume_file(tokio_stream::iter(vec![proto::VolumeFileChunk {
            volume: "cut".into(),
            path: "big.bin".into(),
            data: vec![0; (1 << 20) + 1].into(),
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        local
            .volume("cut")
            .listdir("", true)
            .await
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn volumes_are_per_environment() {
    let (server, local) = control_plane("volumes-envs").await;
    local.create_environment("staging").await.unwrap();
    let staging = local.with_environment("staging").unwrap();
    local.create_volume("same", false).await.unwrap();
    staging.create_volume("same", false).await.unwrap();
    local.create_volume("main-only", false).await.unwrap();
    local
        .volume("same")
        .write_file("who", "main", false)
        .await
        .unwrap();
    staging
        .volume("same")
        .write_file("who", "staging", false)
        .await
        .unwrap();
    assert_eq!(
        local.volume("same").read_file("who").await.unwrap(),
        b"main"
    );
    assert_eq!(
        staging.volume("same").read_file("who").await.unwrap(),
        b"staging"
    );
    let names = |v: Vec<proto::VolumeInfo>| v.into_iter().map(|v| v.name).collect::<Vec<_>>();
    assert_eq!(
        names(local.list_volumes().await.unwrap()),
        ["main-only", "same"]
    );
    assert_eq!(names(staging.list_volumes().await.unwrap()), ["same"]);
    // A staging function mounts staging's volume; main's other volume is
    // not there to mount.
    deploy_with(&staging, "reader", &[("read_mounted", &[("/v", "same")])])
        .await
        .unwrap();
    let read = staging.function::<(String,), String>("reader", "read_mounted");
    assert_eq!(read.remote(("/v/who".into(),)).await.unwrap(), "staging");
    let err = deploy_with(
        &staging,
        "reader",
        &[("read_mounted", &[("/v", "main-only")])],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("environment `staging`"), "{err}");
    // An environment keeps its volumes until they are removed one by one.
    staging.stop_app("reader").await.unwrap();
    let err = local.remove_environment("staging").await.unwrap_err();
    assert!(err.to_string().contains("volume"), "{err}");
    staging.remove_volume("same").await.unwrap();
    local.remove_environment("staging").await.unwrap();
    assert_eq!(
        local.volume("same").read_file("who").await.unwrap(),
        b"main"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_programs_own_app_may_make_its_volume_after_it_starts() {
    // As `#[app::main]` does: the ephemeral app is registered before the
    // program's code runs, and that code makes the volume.
    let (server, local) = control_plane("volumes-ephemeral").await;
    let created = local
        .create_app(
            "program",
            &manifest_with(&[("read_mounted", &[("/data", "made-later")])]),
            AppBinary::Upload(&test_app()),
            true,
        )
        .await
        .unwrap();
    let _lease = local.hold_app(&created.app).await.unwrap();
    let read = local.function::<(String,), String>(&created.app, "read_mounted");
    // Used before it exists: the call fails, naming it.
    let err = read.remote(("/data/x".into(),)).await.unwrap_err();
    assert!(err.to_string().contains("`made-later`"), "{err}");
    let volume = Volume::from_name_with(&local, "made-later", true);
    volume.write_file("x", "here now", false).await.unwrap();
    assert_eq!(read.remote(("/data/x".into(),)).await.unwrap(), "here now");
    server.shutdown().await;
}
