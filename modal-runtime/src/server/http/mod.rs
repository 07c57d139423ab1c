//! The control plane's HTTP listener, beside its gRPC port: web endpoints
//! (`ingress`), the dashboard and `/metrics`.
//!
//! Plain HTTP/1.1 and HTTP/2 (prior knowledge) on one port, served by
//! axum on hyper. Every route shares one [`HttpState`]; each module owns
//! its own routes and adds them in [`router`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::control::ControlPlane;

pub(crate) mod metrics;

/// What every HTTP route can reach.
#[derive(Clone)]
#[allow(
    dead_code,
    reason = "the routes that read it are added module by module"
)]
pub(crate) struct HttpState {
    pub cp: Arc<ControlPlane>,
    /// The listener's own base URL, e.g. `http://127.0.0.1:7471`: what
    /// `web_url` and the dashboard's links start with.
    pub base_url: Arc<str>,
}

/// Path segments under which nothing but the control plane's own pages
/// live: no environment may be named so, or its endpoints would be
/// shadowed.
pub(crate) const RESERVED_FIRST_SEGMENTS: &[&str] = &["dashboard", "metrics", "healthz"];

/// Every route of the HTTP listener.
pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(metrics::routes())
        .with_state(state)
}

/// A running HTTP listener.
pub(crate) struct HttpListener {
    pub base_url: String,
    pub addr: SocketAddr,
    pub serving: JoinHandle<()>,
}

/// Binds `bind` and serves every route on it until the task is aborted.
pub(crate) async fn serve(
    bind: SocketAddr,
    cp: Arc<ControlPlane>,
) -> std::io::Result<HttpListener> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let app = router(HttpState {
        cp,
        base_url: Arc::from(base_url.as_str()),
    });
    // Small responses must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the HTTP listener stopped: {e}");
        }
    });
    Ok(HttpListener {
        base_url,
        addr,
        serving,
    })
}
