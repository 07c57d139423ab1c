//! A standalone control plane for the benchmark's memory figures: printing
//! its URL, serving until its standard input closes.

use std::io::Read;

use modal_runtime::server::{Server, ServerConfig};

#[tokio::main]
async fn main() {
    let data_dir = std::env::temp_dir().join(format!("modal-bench-server-{}", std::process::id()));
    let server = Server::start(ServerConfig::new(&data_dir))
        .await
        .expect("start the control plane");
    println!("{}", server.url());
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .ok();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(data_dir);
}
