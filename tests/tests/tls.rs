//! A control plane serving TLS: programs that trust its certificate, and
//! the containers it starts, reach it over `https://`; plaintext clients and
//! clients trusting another CA are refused, and it keeps serving.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Raw, Standalone, WithToken, scratch_dir, test_app, text, token_for, xtask};
use modal_runtime::proto::ListAppsRequest;
use modal_runtime::proto::control_plane_client::ControlPlaneClient;
use modal_runtime::server::{Server, ServerConfig, TlsConfig};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A self-signed certificate for `localhost` and 127.0.0.1, written as
/// `cert.pem` and `key.pem` in a fresh folder.
struct SelfSigned {
    cert: PathBuf,
    key: PathBuf,
}

impl SelfSigned {
    fn new(what: &str) -> SelfSigned {
        let dir = scratch_dir(what);
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        SelfSigned { cert, key }
    }

    fn pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).unwrap()
    }
}

async fn tls_server(identity: &SelfSigned) -> Server {
    let mut config = ServerConfig::new(scratch_dir("tls-server"));
    config.tls = Some(TlsConfig::from_files(&identity.cert, &identity.key).unwrap());
    Server::start(config).await.unwrap()
}

/// A raw gRPC connection to `url`, verifying it against `ca` if given.
async fn raw(url: &str, ca: Option<Vec<u8>>) -> Result<Raw, String> {
    let mut endpoint = Endpoint::from_shared(url.to_owned()).unwrap();
    if let Some(ca) = ca {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .unwrap();
    }
    let channel = endpoint.connect().await.map_err(|e| chain(&e))?;
    // The token of the TLS control plane, also for its plaintext address.
    let token = token_for(&url.replacen("http://", "https://", 1));
    let token = format!("Bearer {token}").parse().unwrap();
    Ok(ControlPlaneClient::with_interceptor(
        channel,
        WithToken(Some(token)),
    ))
}

async fn list_apps(url: &str, ca: Option<Vec<u8>>) -> Result<usize, String> {
    let mut rpc = raw(url, ca).await?;
    let apps = rpc
        .list_apps(ListAppsRequest {})
        .await
        .map_err(|e| chain(&e))?;
    Ok(apps.into_inner().apps.len())
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Runs the tests' program against the control plane at `url`, with the
/// extra environment `vars`.
async fn run_program(url: &str, vars: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(test_app());
    command
        .env("MODAL_SERVER_URL", url)
        .env("MODAL_TOKEN", token_for(url))
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env_remove("MODAL_TLS_CA");
    for (k, v) in vars {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn assert_ran(output: &Output) {
    let out = text(output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("remote 144"), "{out}");
    assert!(out.contains("map 328350"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_trusting_the_certificate_runs_its_functions_over_tls() {
    let identity = SelfSigned::new("tls-identity");
    let server = tls_server(&identity).await;
    let url = server.url().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert_eq!(list_apps(&url, Some(identity.pem())).await, Ok(0));
    // The program's client trusts the certificate through MODAL_TLS_CA; its
    // containers reach the control plane only at its https:// URL.
    let output = run_program(&url, &[("MODAL_TLS_CA", &identity.cert)]).await;
    assert_ran(&output);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_may_name_the_ca() {
    let identity = SelfSigned::new("tls-identity");
    let server = tls_server(&identity).await;
    // `tls_ca` is relative to the config file's folder.
    let folder = identity.cert.parent().unwrap();
    let config = folder.join("config.toml");
    std::fs::write(&config, "tls_ca = \"cert.pem\"\n").unwrap();
    let output = run_program(server.url(), &[("MODAL_CONFIG", &config)]).await;
    assert_ran(&output);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_and_untrusting_clients_are_refused() {
    let identity = SelfSigned::new("tls-identity");
    let other = SelfSigned::new("tls-other");
    let server = tls_server(&identity).await;
    let url = server.url().to_owned();
    let plain = url.replacen("https://", "http://", 1);

    // A plaintext client's HTTP/2 is not a TLS handshake: the connection
    // is closed.
    assert!(list_apps(&plain, None).await.is_err());
    let err = list_apps(&url, Some(other.pem())).await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    let output = run_program(&url, &[("MODAL_TLS_CA", &other.cert)]).await;
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains(&url), "{}", text(&output));
    // Without a CA, the program says where to give one.
    let output = run_program(&url, &[]).await;
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("MODAL_TLS_CA"), "{}", text(&output));
    let missing = identity.cert.with_file_name("missing.pem");
    let output = run_program(&url, &[("MODAL_TLS_CA", &missing)]).await;
    assert!(text(&output).contains("missing.pem"), "{}", text(&output));

    // Refused handshakes leave it serving.
    assert_eq!(list_apps(&url, Some(identity.pem())).await, Ok(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn xtask_server_serves_tls_on_any_address_and_plaintext_only_on_loopback() {
    let identity = SelfSigned::new("tls-identity");
    let output = xtask(&["server", "--addr", "0.0.0.0:0"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--tls-cert"), "{}", text(&output));
    let output = xtask(&["server", "--tls-cert", identity.cert.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--tls-key"), "{}", text(&output));

    let (cert, key) = (
        identity.cert.to_str().unwrap(),
        identity.key.to_str().unwrap(),
    );
    let cp = Standalone::start_on(
        "0.0.0.0:0",
        scratch_dir("tls-standalone"),
        &["--tls-cert", cert, "--tls-key", key],
    );
    // Containers dial loopback, which the certificate names.
    assert!(cp.url.starts_with("https://127.0.0.1:"), "{}", cp.url);
    let output = run_program(&cp.url, &[("MODAL_TLS_CA", &identity.cert)]).await;
    assert_ran(&output);
}
