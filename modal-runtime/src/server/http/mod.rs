//! The control plane's HTTP listeners, beside its gRPC port: one for web
//! endpoints (`ingress`), one for its own pages (the dashboard, `/metrics`).
//!
//! Two ports, so two origins: a page a deployed endpoint serves can script
//! nothing of the dashboard a signed-in operator's browser shows. Each is
//! plain HTTP/1.1 and HTTP/2 (prior knowledge), served by axum on hyper.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::control::ControlPlane;

mod dashboard;
mod ingress;
pub(crate) mod metrics;

/// What every HTTP route can reach.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub cp: Arc<ControlPlane>,
}

/// The routes of the control plane's own pages.
pub(crate) fn console_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(dashboard::router(&state))
        .merge(metrics::routes())
        .with_state(state)
}

/// The routes of web endpoints.
pub(crate) fn endpoints_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(ingress::routes())
        .with_state(state)
}

/// A running HTTP listener.
pub(crate) struct HttpListener {
    pub base_url: String,
    pub serving: JoinHandle<()>,
}

/// Binds `bind` and serves `app` on it until the task is aborted.
pub(crate) async fn serve(bind: SocketAddr, app: Router) -> std::io::Result<HttpListener> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    // Small responses must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("an HTTP listener stopped: {e}");
        }
    });
    Ok(HttpListener { base_url, serving })
}
