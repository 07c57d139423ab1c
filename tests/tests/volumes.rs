//! Volumes end to end: named folders of an environment that functions
//! mount, written and read from functions, clients and `cargo xtask
//! volume`; paths that would leave a volume refused; a deploy naming a
//! volume that does not exist refused, naming it.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::*;
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, Manifest};

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

#[tokio::test]
async fn a_deploy_naming_a_missing_volume_fails_naming_it() {
    let (server, local) = control_plane("volumes-missing").await;
    let err = deploy_with(&local, "needs", &[("square", &[("/data", "nowhere")])])
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`nowhere`"), "{message}");
    assert!(message.contains("volume create nowhere"), "{message}");
    assert!(local.list_apps().await.unwrap().is_empty());
    server.shutdown().await;
}
