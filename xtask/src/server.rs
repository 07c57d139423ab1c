//! `cargo xtask server`: a standalone control plane until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use modal_runtime::Error;
use modal_runtime::server::{
    BackendConfig, DockerConfig, MetricsToken, Server, ServerConfig, StoreConfig, TlsConfig,
};

/// Reads `--retention`: a human duration between 1 s and 3650 days.
fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as `7d` or `12h`: {e}"))?;
    let max = std::time::Duration::from_secs(3650 * 24 * 3600);
    if d < std::time::Duration::from_secs(1) || d > max {
        return Err(format!(
            "the retention must be between 1s and 3650d, not `{text}`"
        ));
    }
    Ok(d)
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = modal_runtime::config::DEFAULT_SERVER_ADDR)]
    addr: SocketAddr,
    /// Address to serve the dashboard (`/dashboard`) and `/metrics` on,
    /// in plaintext HTTP: on an address other than loopback it needs
    /// `--insecure` (put a TLS proxy in front). [default: the port after
    /// `--addr`'s (127.0.0.1:7471), a free one when `--addr` asks for one;
    /// on `--addr`'s host if that is loopback or `--insecure` was given,
    /// else on 127.0.0.1]
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Address to serve web endpoints on, in plaintext HTTP, as
    /// `--http-addr` [default: two ports after `--addr`'s, 127.0.0.1:7472].
    #[arg(long)]
    web_addr: Option<SocketAddr>,
    /// A file holding a bearer token that `/metrics` then requires
    /// (`Authorization: Bearer <token>`; 16 to 4096 visible ASCII
    /// characters). Without it, `/metrics` is served to anyone who reaches
    /// `--http-addr`.
    #[arg(long, value_name = "PATH")]
    metrics_token_file: Option<PathBuf>,
    /// Where deployed binaries and large payloads are kept, and the SQLite
    /// store unless `--store` names another.
    #[arg(long, default_value = "target/modal-rs-server")]
    data_dir: PathBuf,
    /// Where apps, versions and detached calls are kept: `sqlite:PATH` (by
    /// default `store.sqlite3` in the data folder), a
    /// `postgres://user@host:port/db` URL (several control planes may share
    /// one: one leads, the others wait to take over), or `memory`.
    #[arg(long, value_parser = StoreConfig::parse)]
    store: Option<StoreConfig>,
    /// The largest the SQLite store may grow, in MiB: past it, requests
    /// that need a commit are refused (`RESOURCE_EXHAUSTED`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_store_mib: Option<u64>,
    /// How long detached calls' outcomes (and their payloads) are kept,
    /// e.g. `7d`, `12h`, `30s` (1 s to 3650 days).
    #[arg(long, default_value = "7d", value_parser = parse_retention)]
    retention: std::time::Duration,
    /// Largest binary a deploy may upload, in bytes (1 GiB by default).
    #[arg(long, default_value_t = 1 << 30)]
    max_upload_bytes: u64,
    /// Inline argument bytes of accepted, unanswered inputs across all
    /// callers (1 GiB by default, 1 MiB at least): what bounds the control
    /// plane's memory.
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(1 << 20..))]
    max_inline_bytes: u64,
    /// Serve TLS with this certificate chain (PEM, leaf first); needs
    /// `--tls-key`. The control plane's URL is then `https://`.
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// The CA certificate (PEM) containers verify the control plane with;
    /// by default the `--tls-cert` chain itself (enough for a self-signed
    /// certificate).
    #[arg(long, value_name = "PATH")]
    tls_ca: Option<PathBuf>,
    /// Serve plaintext on an address other than loopback: anyone who
    /// reaches the port can read and alter the traffic. Only for a network
    /// that is yours alone; a warning is printed at every start. Not needed
    /// with TLS.
    #[arg(long)]
    insecure: bool,
    /// Where containers run: `process` (local processes of each binary,
    /// isolating nothing) or `docker` (hardened Docker containers of an
    /// image built from each binary, with their resources enforced).
    #[arg(long, value_enum, default_value = "process")]
    backend: Backend,
    /// The Docker Engine to use [default: DOCKER_HOST or the local socket].
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// The Docker network containers join (created if missing).
    #[arg(long, default_value = "modal-rs")]
    docker_network: String,
    /// The URL containers dial. By default the control plane also listens
    /// on the Docker network's gateway address, which only this machine
    /// and its containers reach; give a URL when containers reach the
    /// control plane another way (needed with TLS: a host the certificate
    /// names).
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
    /// Seconds an ephemeral app lives without a beat from its program.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_timeout_secs: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    Process,
    Docker,
}

/// Whether the control plane may serve on `addr`: loopback always; any
/// other address with TLS, or in plaintext only when the operator said
/// `--insecure`.
fn check_bind(addr: SocketAddr, tls: bool, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || tls || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to serve plaintext on {addr}: anyone who reaches a non-loopback address could \
         read and alter this control plane's traffic. Serve TLS (`--tls-cert PATH --tls-key \
         PATH`), serve on 127.0.0.1 (the default), or pass `--insecure` if the network is yours \
         alone"
    ))
}

/// Where an HTTP listener serves: `given` (`flag`), or `offset` ports
/// after `grpc`'s; checked like the gRPC address, as plaintext.
fn listener_addr(
    given: Option<SocketAddr>,
    grpc: SocketAddr,
    offset: u16,
    insecure: bool,
    flag: &str,
) -> Result<SocketAddr, Error> {
    let addr = match given {
        Some(addr) => addr,
        None => http_beside(grpc, offset, insecure)
            .map_err(|e| Error::Config(format!("{e}: give `{flag}`")))?,
    };
    check_bind(addr, false, insecure).map_err(|e| Error::Config(format!("{e} (for `{flag}`)")))?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: serving HTTP in plaintext on {addr} with --insecure");
    }
    Ok(addr)
}

/// Where an HTTP listener serves when its address is not given: `offset`
/// ports after `grpc`'s (a free one when `grpc` asks for one), on `grpc`'s
/// host when plaintext may be served there, else on loopback: a TLS
/// control plane does not expose plaintext HTTP unless asked.
fn http_beside(grpc: SocketAddr, offset: u16, insecure: bool) -> Result<SocketAddr, String> {
    let port = match grpc.port() {
        0 => 0,
        port => port
            .checked_add(offset)
            .ok_or_else(|| format!("`--addr` uses port {port}, too near the last"))?,
    };
    let ip = if grpc.ip().is_loopback() || insecure {
        grpc.ip()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    Ok(SocketAddr::new(ip, port))
}

/// The token in `--metrics-token-file`, if one is named: the file's
/// content less surrounding whitespace.
fn metrics_token(path: Option<&std::path::Path>) -> Result<Option<MetricsToken>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the metrics token file {}: {e}", path.display()))?;
    MetricsToken::new(text.trim())
        .map(Some)
        .map_err(|e| format!("{} does not hold a usable token: {e}", path.display()))
}

/// The TLS the operator asked for: `--tls-cert` and `--tls-key` together,
/// `--tls-ca` only with them.
fn tls_config(args: &Args) -> Result<Option<TlsConfig>, String> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsConfig::from_files(cert, key)?,
        (None, None) if args.tls_ca.is_some() => {
            return Err("`--tls-ca` needs `--tls-cert` and `--tls-key`".into());
        }
        (None, None) => return Ok(None),
        (Some(_), None) => return Err("`--tls-cert` needs `--tls-key` (its private key)".into()),
        (None, Some(_)) => return Err("`--tls-key` needs `--tls-cert` (its certificate)".into()),
    };
    match &args.tls_ca {
        Some(ca) => tls.with_ca_file(ca).map(Some),
        None => Ok(Some(tls)),
    }
}

pub(crate) async fn run(args: Args) -> Result<(), Error> {
    let tls = tls_config(&args).map_err(Error::Config)?;
    check_bind(args.addr, tls.is_some(), args.insecure).map_err(Error::Config)?;
    if !args.addr.ip().is_loopback() && tls.is_none() {
        eprintln!(
            "warning: serving plaintext on {} with --insecure: anyone who reaches this address \
             can read and alter this control plane's traffic",
            args.addr
        );
    }
    // The HTTP listeners are plaintext whatever the gRPC port serves.
    let http_addr = listener_addr(args.http_addr, args.addr, 1, args.insecure, "--http-addr")?;
    let web_addr = listener_addr(args.web_addr, args.addr, 2, args.insecure, "--web-addr")?;
    let metrics_token = metrics_token(args.metrics_token_file.as_deref()).map_err(Error::Config)?;
    if !http_addr.ip().is_loopback() && metrics_token.is_none() {
        eprintln!(
            "warning: /metrics is open to anyone who reaches {http_addr}: give a token with \
             --metrics-token-file"
        );
    }
    let mut config = ServerConfig::new(&args.data_dir);
    config.bind = args.addr;
    config.http_bind = Some(http_addr);
    config.web_bind = Some(web_addr);
    config.metrics_token = metrics_token;
    config.max_upload_bytes = args.max_upload_bytes;
    config.max_inline_bytes_in_flight = args.max_inline_bytes;
    config.lease_timeout = std::time::Duration::from_secs(args.lease_timeout_secs);
    config.call_retention = args.retention;
    config.tls = tls;
    if let Some(store) = args.store {
        config.store = store;
    }
    config.credentials_file = modal_runtime::config::credentials_path();
    config.backend = match args.backend {
        Backend::Process => BackendConfig::Process,
        Backend::Docker => BackendConfig::Docker(DockerConfig {
            host: args.docker_host.clone(),
            network: Some(args.docker_network.clone()),
            advertise_url: args.advertise_url.clone(),
        }),
    };
    if let Some(mib) = args.max_store_mib {
        match &mut config.store {
            StoreConfig::Sqlite { max_bytes, .. } => *max_bytes = Some(mib << 20),
            _ => {
                return Err(Error::Config(
                    "`--max-store-mib` limits a SQLite store only".into(),
                ));
            }
        }
    }
    let server = Server::start(config).await.map_err(|e| {
        Error::Config(format!(
            "cannot start the control plane on {}: {e}",
            args.addr
        ))
    })?;
    println!("modal-rs control plane listening on {}", server.url());
    if let Some(path) = server.admin_token_written() {
        println!(
            "an admin token for {} was written to {} (readable by you only); clients on this \
             machine use it without configuration",
            server.url(),
            path.display()
        );
    }
    if let Some(http) = server.http_url() {
        println!("the dashboard at {http}/dashboard, metrics at {http}/metrics");
    }
    if let Some(web) = server.web_base_url() {
        println!("web endpoints under {web}/<environment>/<app>/<label>");
    }
    println!("data in {}", args.data_dir.display());
    println!("use it with: export MODAL_SERVER_URL={}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping: killing containers");
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_served_beside_grpc_by_default() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let beside = |grpc: &str, offset, insecure| http_beside(at(grpc), offset, insecure);
        assert_eq!(beside("127.0.0.1:7470", 1, false), Ok(at("127.0.0.1:7471")));
        assert_eq!(beside("127.0.0.1:7470", 2, false), Ok(at("127.0.0.1:7472")));
        assert_eq!(beside("127.0.0.1:0", 2, false), Ok(at("127.0.0.1:0")));
        assert!(beside("127.0.0.1:65534", 2, false).is_err());
        assert_eq!(beside("0.0.0.0:7470", 1, false), Ok(at("127.0.0.1:7471")));
        assert_eq!(beside("0.0.0.0:7470", 1, true), Ok(at("0.0.0.0:7471")));
    }

    #[test]
    fn non_loopback_needs_tls_or_insecure() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(check_bind(at("127.0.0.1:7470"), false, false).is_ok());
        assert!(check_bind(at("[::1]:7470"), false, false).is_ok());
        let err = check_bind(at("0.0.0.0:7470"), false, false).unwrap_err();
        assert!(
            err.contains("--insecure")
                && err.contains("--tls-cert")
                && err.contains("0.0.0.0:7470"),
            "{err}"
        );
        assert!(check_bind(at("0.0.0.0:7470"), true, false).is_ok());
        assert!(check_bind(at("[::]:7470"), true, false).is_ok());
        assert!(check_bind(at("0.0.0.0:7470"), false, true).is_ok());
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |extra: &[&str]| {
            let cli = <Cli as clap::Parser>::try_parse_from(
                ["server"].iter().chain(extra).collect::<Vec<_>>(),
            )
            .unwrap();
            tls_config(&cli.args)
        };
        assert!(parse(&[]).unwrap().is_none());
        let err = parse(&["--tls-cert", "c.pem"]).unwrap_err();
        assert!(err.contains("--tls-key"), "{err}");
        let err = parse(&["--tls-key", "k.pem"]).unwrap_err();
        assert!(err.contains("--tls-cert"), "{err}");
        let err = parse(&["--tls-ca", "ca.pem"]).unwrap_err();
        assert!(
            err.contains("--tls-cert") && err.contains("--tls-key"),
            "{err}"
        );
        let err = parse(&["--tls-cert", "/nonexistent/c.pem", "--tls-key", "k.pem"]).unwrap_err();
        assert!(err.contains("/nonexistent/c.pem"), "{err}");
    }

    #[test]
    fn the_metrics_token_is_read_from_its_file_and_never_quoted() {
        assert_eq!(metrics_token(None), Ok(None));
        let dir = std::env::temp_dir().join(format!("modal-metrics-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "scrape-me-0123456789\n").unwrap();
        assert_eq!(
            metrics_token(Some(&file)),
            Ok(Some(MetricsToken::new("scrape-me-0123456789").unwrap()))
        );
        std::fs::write(&file, "short-secret").unwrap();
        let err = metrics_token(Some(&file)).unwrap_err();
        assert!(
            err.contains("16 to 4096") && !err.contains("short-secret"),
            "{err}"
        );
        let err = metrics_token(Some(&dir.join("missing"))).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
