//! `cargo xtask server`: a standalone control plane until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use modal_runtime::Error;
use modal_runtime::server::{Server, ServerConfig};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = modal_runtime::config::DEFAULT_SERVER_ADDR)]
    addr: SocketAddr,
    /// Where deployed binaries and app versions are kept.
    #[arg(long, default_value = "target/modal-rs-server")]
    data_dir: PathBuf,
    /// Largest binary a deploy may upload, in bytes (1 GiB by default).
    #[arg(long, default_value_t = 1 << 30)]
    max_upload_bytes: u64,
    /// Inline argument bytes of accepted, unanswered inputs across all
    /// callers (1 GiB by default, 1 MiB at least): what bounds the control
    /// plane's memory.
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(1 << 20..))]
    max_inline_bytes: u64,
    /// Seconds an ephemeral app lives without a beat from its program.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_timeout_secs: u64,
}

pub(crate) async fn run(args: Args) -> Result<(), Error> {
    let mut config = ServerConfig::new(&args.data_dir);
    config.bind = args.addr;
    config.max_upload_bytes = args.max_upload_bytes;
    config.max_inline_bytes_in_flight = args.max_inline_bytes;
    config.lease_timeout = std::time::Duration::from_secs(args.lease_timeout_secs);
    let server = Server::start(config).await.map_err(|e| {
        Error::Config(format!(
            "cannot start the control plane on {}: {e}",
            args.addr
        ))
    })?;
    println!("modal-rs control plane listening on {}", server.url());
    println!("data in {}", args.data_dir.display());
    println!("use it with: export MODAL_SERVER_URL={}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping: killing containers");
    server.shutdown().await;
    Ok(())
}
