//! A standalone control plane for the benchmark's figures that need one:
//! printing its URL and then the config file whose credentials file holds
//! its admin token, serving until its standard input closes. Its data
//! folder is `MODAL_BENCH_DATA_DIR` (kept), else a temporary one; its store
//! `MODAL_BENCH_STORE` (as `cargo xtask server --store` reads it), else
//! SQLite in the data folder.

use std::io::Read;

use modal_runtime::server::{Server, ServerConfig, StoreConfig};

#[tokio::main]
async fn main() {
    let kept = std::env::var_os("MODAL_BENCH_DATA_DIR").map(std::path::PathBuf::from);
    let data_dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("modal-bench-server-{}", std::process::id()))
    });
    let mut config = ServerConfig::new(&data_dir);
    if let Ok(store) = std::env::var("MODAL_BENCH_STORE") {
        config.store = StoreConfig::parse(&store).expect("MODAL_BENCH_STORE names a store");
    }
    config.credentials_file = Some(data_dir.join("credentials.toml"));
    let server = Server::start(config)
        .await
        .expect("start the control plane");
    println!("{}", server.url());
    println!("{}", data_dir.join("config.toml").display());
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .ok();
    server.shutdown().await;
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(data_dir);
    }
}
