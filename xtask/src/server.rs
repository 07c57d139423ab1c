//! `cargo xtask server`: a standalone control plane until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use modal_runtime::Error;
use modal_runtime::server::{Server, ServerConfig, StoreConfig};

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
    /// Serve on an address other than loopback although this control plane
    /// has no authentication or TLS yet: anyone who reaches the port can
    /// deploy and run code as this user. Only for a network that is yours
    /// alone; a warning is printed at every start.
    #[arg(long)]
    insecure: bool,
    /// Seconds an ephemeral app lives without a beat from its program.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_timeout_secs: u64,
}

/// Whether the control plane may serve on `addr`: loopback always; any
/// other address only when the operator said `--insecure`.
fn check_bind(addr: SocketAddr, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to serve on {addr}: this control plane has no authentication or TLS yet, so \
         anyone who reaches a non-loopback address could deploy and run code as this user. \
         Serve on 127.0.0.1 (the default), or pass `--insecure` if the network is yours alone"
    ))
}

pub(crate) async fn run(args: Args) -> Result<(), Error> {
    check_bind(args.addr, args.insecure).map_err(Error::Config)?;
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "warning: serving on {} with --insecure: no authentication, no TLS; anyone who \
             reaches this address can deploy and run code as this user",
            args.addr
        );
    }
    let mut config = ServerConfig::new(&args.data_dir);
    config.bind = args.addr;
    config.max_upload_bytes = args.max_upload_bytes;
    config.max_inline_bytes_in_flight = args.max_inline_bytes;
    config.lease_timeout = std::time::Duration::from_secs(args.lease_timeout_secs);
    config.call_retention = args.retention;
    if let Some(store) = args.store {
        config.store = store;
    }
    config.credentials_file = modal_runtime::config::credentials_path();
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
    fn only_loopback_is_served_without_insecure() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(check_bind(at("127.0.0.1:7470"), false).is_ok());
        assert!(check_bind(at("[::1]:7470"), false).is_ok());
        let err = check_bind(at("0.0.0.0:7470"), false).unwrap_err();
        assert!(
            err.contains("--insecure") && err.contains("0.0.0.0:7470"),
            "{err}"
        );
        assert!(check_bind(at("0.0.0.0:7470"), true).is_ok());
    }
}
