//! Who may do what, end to end: every RPC refuses a caller without a
//! token or with the wrong scope or environment; containers hold only
//! their own inputs; no client names a file on the control plane's
//! machine; calls and payloads stay in their environment; secrets reach
//! their function's containers and nothing else.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use modal_runtime::proto::{self, create_app_request};
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, ClsOptions, Manifest};
use modal_tests::{Recorder, RecorderParams};
use tonic::Code;

/// Every RPC the API defines, read from the proto file.
fn rpcs() -> Vec<String> {
    let proto = include_str!("../../modal-runtime/proto/modal.proto");
    proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .map(|l| l.split('(').next().unwrap().trim().to_owned())
        .collect()
}

/// Calls `method` with an empty message, presenting `token` (and asking for
/// `environment`); the status it fails with, if it fails.
async fn call(
    url: &str,
    method: &str,
    token: Option<&str>,
    environment: Option<&str>,
) -> Option<tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(proto::ListAppsRequest {});
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(environment) = environment {
        request
            .metadata_mut()
            .insert("modal-environment", environment.parse().unwrap());
    }
    let path = format!("/modal.v1.ControlPlane/{method}").parse().unwrap();
    let codec =
        tonic_prost::ProstCodec::<proto::ListAppsRequest, proto::ListAppsRequest>::default();
    // A streaming reply may wait on more input: its refusal comes at once.
    match tokio::time::timeout(Duration::from_secs(2), grpc.unary(request, path, codec)).await {
        Ok(Err(status)) => Some(status),
        _ => None,
    }
}

/// An in-process control plane with the tests' app deployed, and a client
/// with every right (its own process's).
async fn control_plane(what: &str) -> (Server, Client) {
    let mut config = ServerConfig::new(scratch_dir(what));
    config.stop_grace = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let local = Client::connect(server.url()).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    local
        .create_app("shop", &manifest, AppBinary::LocalPath(&test_app()), false)
        .await
        .unwrap();
    (server, local)
}

async fn token(local: &Client, scope: &str, environment: Option<&str>) -> String {
    local
        .create_token(scope, environment, "test")
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn every_rpc_refuses_a_missing_or_unknown_token_and_the_wrong_scope() {
    let (server, local) = control_plane("rpc-table").await;
    let url = server.url().to_owned();
    let invoke = token(&local, "invoke", None).await;
    let deploy = token(&local, "deploy", None).await;
    let admin = token(&local, "admin", None).await;
    let rpcs = rpcs();
    assert!(rpcs.len() >= 30, "{rpcs:?}");
    let deploy_rpcs = [
        "UploadBinary",
        "FindBinary",
        "CreateApp",
        "ListApps",
        "StopApp",
        "StreamLogs",
        "HoldApp",
        "AppHistory",
        "RollbackApp",
        "SetWarmPool",
        "UpdateAutoscaler",
        "CreateVolume",
        "RemoveVolume",
        "PutVolumeFile",
        "RemoveVolumeFile",
    ];
    let admin_rpcs = [
        "CreateToken",
        "ListTokens",
        "RevokeToken",
        "CreateEnvironment",
        "ListEnvironments",
        "RemoveEnvironment",
        "CreateSecret",
        "ListSecrets",
        "RemoveSecret",
    ];
    for rpc in &rpcs {
        for bad in [None, Some("tk-000000000000.0000"), Some("garbage")] {
            let status = call(&url, rpc, bad, None)
                .await
                .unwrap_or_else(|| panic!("{rpc} with {bad:?} was not refused"));
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc} with {bad:?}: {status:?}"
            );
            assert!(
                status.message().contains("token"),
                "{rpc}: {}",
                status.message()
            );
        }
        let needs = if rpc == "ContainerSession" {
            "container"
        } else if admin_rpcs.contains(&rpc.as_str()) {
            "admin"
        } else if deploy_rpcs.contains(&rpc.as_str()) {
            "deploy"
        } else {
            "invoke"
        };
        for (scope, token) in [("invoke", &invoke), ("deploy", &deploy), ("admin", &admin)] {
            let allowed = match needs {
                "container" => false,
                "admin" => scope == "admin",
                "deploy" => scope != "invoke",
                _ => true,
            };
            let status = call(&url, rpc, Some(token), None).await;
            let denied = status
                .as_ref()
                .is_some_and(|s| s.code() == Code::PermissionDenied);
            assert_eq!(!denied, allowed, "{rpc} with a {scope} token: {status:?}");
            if denied {
                let message = status.unwrap().message().to_owned();
                assert!(
                    message.contains(needs) || message.contains("container"),
                    "{rpc}: the refusal names what is missing: {message}"
                );
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_of_another_environment_is_refused_and_environments_keep_apps_apart() {
    let (server, local) = control_plane("environments").await;
    let url = server.url().to_owned();
    local.create_environment("staging").await.unwrap();
    let staging = token(&local, "deploy", Some("staging")).await;
    let main = token(&local, "deploy", None).await;
    // A staging token asking for main, and a main token asking for staging.
    for (token, asked) in [(&staging, "main"), (&main, "staging")] {
        let status = call(&url, "ListApps", Some(token), Some(asked))
            .await
            .unwrap();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("environment"),
            "{}",
            status.message()
        );
    }
    // The same app name in staging is another app.
    let staging_client = Client::connect_with_token(&url, &staging).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    staging_client
        .create_app("shop", &manifest, AppBinary::Upload(&test_app()), false)
        .await
        .unwrap();
    let main_shop = local.function::<(u64,), u64>("shop", "square");
    let staging_shop = staging_client.function::<(u64,), u64>("shop", "square");
    assert_eq!(main_shop.remote((3,)).await.unwrap(), 9);
    assert_eq!(staging_shop.remote((4,)).await.unwrap(), 16);
    assert_eq!(staging_client.list_apps().await.unwrap().len(), 1);
    staging_client.stop_app("shop").await.unwrap();
    // Stopping staging's app leaves main's serving.
    assert_eq!(main_shop.remote((5,)).await.unwrap(), 25);
    let main_apps = local.list_apps().await.unwrap();
    assert_eq!(main_apps.len(), 1);
    assert_eq!(main_apps[0].state, "running");
    // A main function's id with the staging token: refused.
    let id = raw_admin(&url)
        .await
        .lookup_function(proto::LookupFunctionRequest {
            app: "shop".into(),
            name: "square".into(),
            version: None,
        })
        .await
        .unwrap()
        .into_inner()
        .function_id;
    let mut raw = raw_with(&url, Some(&staging)).await;
    let status = raw
        .invoke(proto::InvokeRequest {
            function_id: id,
            args: modal_runtime::codec::encode(&(2_u64,)).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // An environment with an app cannot be removed; an empty one can.
    local.create_environment("empty").await.unwrap();
    local.remove_environment("empty").await.unwrap();
    assert!(
        !local
            .list_environments()
            .await
            .unwrap()
            .iter()
            .any(|e| e.name == "empty")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_its_next_call() {
    let (server, local) = control_plane("revoke").await;
    let (info, invoke) = local.create_token("invoke", None, "ci").await.unwrap();
    let client = Client::connect_with_token(server.url(), &invoke)
        .await
        .unwrap();
    let square = client.function::<(u64,), u64>("shop", "square");
    assert_eq!(square.remote((6,)).await.unwrap(), 36);
    let listed = local.list_tokens().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.id == info.id && t.scope == "invoke")
    );
    let secret = invoke.split_once('.').unwrap().1;
    assert!(
        !format!("{listed:?}").contains(secret),
        "a listing shows a secret"
    );
    local.revoke_token(&info.id).await.unwrap();
    let err = square.remote((7,)).await.unwrap_err();
    assert!(
        matches!(err, modal_runtime::Error::Unauthenticated { .. }),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_network_client_names_a_server_path_or_runs_a_script_or_preloads_a_library() {
    let (server, local) = control_plane("server-paths").await;
    let admin = token(&local, "admin", None).await;
    let mut raw = raw_with(server.url(), Some(&admin)).await;
    let dir = scratch_dir("marker");
    let marker = dir.join("ran");
    let script = dir.join("script.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let manifest_json = serde_json::to_string(&manifest).unwrap();
    // The path of a script on the control plane's machine: refused.
    let status = raw
        .create_app(proto::CreateAppRequest {
            name: "owned".into(),
            ephemeral: false,
            manifest_json: manifest_json.clone(),
            binary: Some(create_app_request::Binary::LocalPath(
                script.to_string_lossy().into_owned(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("upload"), "{}", status.message());
    // The script uploaded: not an executable, refused.
    let client = Client::connect_with_token(server.url(), &admin)
        .await
        .unwrap();
    let err = client.upload_binary(&script).await.unwrap_err();
    assert!(err.to_string().contains("ELF"), "{err}");
    // A manifest that preloads a library into the containers: refused.
    let function = manifest
        .functions
        .iter_mut()
        .find(|f| f.name == "square")
        .unwrap();
    let mut env = function.options.env.to_vec();
    env.push((
        "LD_PRELOAD".into(),
        script.to_string_lossy().into_owned().into(),
    ));
    function.options.env = env.into();
    let err = client
        .create_app("preload", &manifest, AppBinary::Upload(&test_app()), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LD_PRELOAD"), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "the script ran");
    assert!(
        client
            .list_apps()
            .await
            .unwrap()
            .iter()
            .all(|a| a.name == "shop")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_payload_of_another_environment_cannot_be_borrowed_and_stays_its_owners() {
    let (server, local) = control_plane("blobs").await;
    let url = server.url().to_owned();
    local.create_environment("other").await.unwrap();
    let owner = token(&local, "invoke", None).await;
    let borrower = token(&local, "admin", None).await;
    let mut owner_rpc = raw_with(&url, Some(&owner)).await;
    let args =
        modal_runtime::codec::encode(&(serde_bytes::ByteBuf::from(vec![7_u8; 64]), 64_usize))
            .unwrap();
    let blob = owner_rpc
        .put_blob(tokio_stream::iter(vec![proto::BlobChunk {
            data: args.clone(),
        }]))
        .await
        .unwrap()
        .into_inner()
        .id;
    // Another environment's caller passes the id as its arguments, and
    // asks for it: it is not found there.
    let other = Client::connect_with_token(&url, &borrower)
        .await
        .unwrap()
        .with_environment("other")
        .unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let created = other
        .create_app("thief", &manifest, AppBinary::Upload(&test_app()), false)
        .await
        .unwrap();
    let function_id = created
        .functions
        .iter()
        .find(|f| f.name == "big_echo")
        .unwrap()
        .function_id;
    let mut thief = raw_with(&url, Some(&borrower)).await;
    let mut request = tonic::Request::new(proto::InvokeRequest {
        function_id,
        args_blob: blob.clone(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("modal-environment", "other".parse().unwrap());
    let status = thief.invoke(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(&blob), "{}", status.message());
    let mut request = tonic::Request::new(proto::GetBlobRequest { id: blob.clone() });
    request
        .metadata_mut()
        .insert("modal-environment", "other".parse().unwrap());
    let refused = match thief.get_blob(request).await {
        Err(status) => status,
        Ok(mut stream) => stream.get_mut().message().await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    // Still the owner's, whole.
    let mut stream = owner_rpc
        .get_blob(proto::GetBlobRequest { id: blob })
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        read.extend_from_slice(&chunk.data);
    }
    assert_eq!(read, args);
    server.shutdown().await;
}

/// The token of a running container of the control plane at `url`, read
/// from its environment as the container itself sees it.
fn container_credentials(url: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for pid in processes_with(&format!("MODAL_CONTAINER_SERVER_URL={url}")) {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: BTreeMap<String, String> = environ
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect();
        if let (Some(id), Some(token)) = (
            vars.get("MODAL_CONTAINER_ID"),
            vars.get("MODAL_CONTAINER_TOKEN"),
        ) {
            found.push((id.clone(), token.clone()));
        }
    }
    found
}

#[tokio::test]
async fn a_container_token_serves_its_own_inputs_only() {
    let (server, local) = control_plane("container-token").await;
    let url = server.url().to_owned();
    // Two warm containers of two functions.
    local
        .function::<(u64,), u64>("shop", "square")
        .keep_warm(1)
        .await
        .unwrap();
    local
        .function::<(i64, i64), i64>("shop", "add")
        .keep_warm(1)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let containers = loop {
        let found = container_credentials(&url);
        if found.len() >= 2 || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(containers.len() >= 2, "{containers:?}");
    let (id, secret) = &containers[0];
    let (other_id, other_secret) = &containers[1];
    let bearer = format!("ctr.{id}.{secret}");
    for rpc in [
        "CreateApp",
        "UploadBinary",
        "ListApps",
        "StopApp",
        "LookupFunction",
        "Invoke",
        "Map",
        "GetCallOutcome",
        "CreateToken",
        "ListSecrets",
    ] {
        let status = call(&url, rpc, Some(&bearer), None).await.unwrap();
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {status:?}");
    }
    // Its token with another container's hello: refused, and that
    // container's inputs stay its own.
    let mut raw = raw_with(&url, Some(&bearer)).await;
    let hello = proto::ContainerMessage {
        msg: Some(proto::container_message::Msg::Hello(
            proto::ContainerHello {
                container_id: other_id.clone(),
                token: other_secret.clone(),
            },
        )),
    };
    let status = raw
        .container_session(tokio_stream::iter(vec![hello]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // A forged container token: refused.
    let status = call(
        &url,
        "ContainerSession",
        Some(&format!("ctr.{other_id}.0000")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // Both still serve.
    assert_eq!(
        local
            .function::<(u64,), u64>("shop", "square")
            .remote((8,))
            .await
            .unwrap(),
        64
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_secret_reaches_its_containers_only_and_its_value_is_never_shown() {
    // A standalone control plane, its every log line kept.
    let data_dir = scratch_dir("secrets");
    let log_path = data_dir.join("server.log");
    let mut child = std::process::Command::new(workspace_binary("xtask"))
        .env("MODAL_CONFIG", data_dir.join("config.toml"))
        .env("RUST_LOG", "debug")
        .args([
            "server",
            "--addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--web-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(std::fs::File::create(data_dir.join("server.out")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let out = data_dir.join("server.out");
    let url = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find_map(|l| l.strip_prefix("modal-rs control plane listening on "))
        {
            break line.trim().to_owned();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the control plane exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let admin = learn_token(&data_dir, &url);
    let value = format!("hunter2-{}", std::process::id());
    let xtask_as_admin = |args: &[&str]| {
        std::process::Command::new(workspace_binary("xtask"))
            .env("MODAL_CONFIG", data_dir.join("config.toml"))
            .env_remove("MODAL_TOKEN")
            .args(args)
            .args(["--server", &url])
            .output()
            .unwrap()
    };
    // Made and listed through `cargo xtask`, which finds the admin token
    // in the credentials file the control plane wrote.
    let made = xtask_as_admin(&[
        "secret",
        "create",
        "db",
        &format!("DB_PASSWORD={value}"),
        "OTHER=x",
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let listed = xtask_as_admin(&["secret", "list"]);
    assert!(text(&listed).contains("DB_PASSWORD"), "{}", text(&listed));
    let client = Client::connect_with_token(&url, &admin).await.unwrap();
    deploy(&url, "vault").await;
    // A variant that names the secret reads it; one that does not, does not.
    let recorder = client.cls::<Recorder>("vault", "Recorder");
    let dir = scratch_dir("secrets-recorder")
        .to_string_lossy()
        .into_owned();
    let plain = recorder.instance(RecorderParams::new(dir.clone()));
    let with_secret = plain.with_options(ClsOptions::new().secrets(["db"]));
    assert_eq!(
        with_secret
            .env_var
            .remote("DB_PASSWORD".into())
            .await
            .unwrap()
            .as_deref(),
        Some(value.as_str())
    );
    assert_eq!(
        plain.env_var.remote("DB_PASSWORD".into()).await.unwrap(),
        None
    );
    // A secret that does not exist: refused, naming it.
    let missing = plain.with_options(ClsOptions::new().secrets(["nope"]));
    let err = missing.env_var.remote("X".into()).await.unwrap_err();
    assert!(err.to_string().contains("`nope`"), "{err}");
    // The value is in no listing, history, app list or log line.
    let mut shown = text(&listed);
    shown.push_str(&text(&xtask_as_admin(&["app", "history", "vault"])));
    shown.push_str(&text(&xtask_as_admin(&["app", "list"])));
    shown.push_str(&format!("{:?}", client.list_secrets().await.unwrap()));
    shown.push_str(&format!("{:?}", client.app_history("vault").await.unwrap()));
    let mut logs = client.stream_logs("vault", true).await.unwrap();
    while let Ok(Some(Ok(batch))) = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut logs),
    )
    .await
    {
        shown.push_str(&format!("{batch:?}"));
    }
    shown.push_str(&std::fs::read_to_string(&log_path).unwrap());
    shown.push_str(&std::fs::read_to_string(&out).unwrap());
    assert!(!shown.contains(&value), "the secret's value was shown");
    let _ = child.kill();
    let _ = child.wait();
}
