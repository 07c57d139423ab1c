//! The floor of the web figures: a plain axum server answering `POST /ping`
//! with the JSON number it was sent, on loopback, in one process. It
//! prints its address and serves until its stdin closes.

use modal_runtime::web::axum::{self, Json, Router, routing};

#[tokio::main]
async fn main() {
    let app = Router::new().route(
        "/ping",
        routing::post(|Json(x): Json<u64>| async move { Json(x) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}/ping", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Ends with the benchmark that started it.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
    })
    .await
    .unwrap();
}
