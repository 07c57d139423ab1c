use modal_runtime::app;
use modal_runtime::web::{Bytes, http};

#[app::function]
#[app::web_endpoint(raw)]
fn raw_two(a: http::Request<Bytes>, b: u8) -> http::Response<Bytes> {
    let _ = b;
    http::Response::new(a.into_body())
}

#[app::function]
#[app::web_app]
async fn app_async() -> modal_runtime::web::axum::Router {
    modal_runtime::web::axum::Router::new()
}

#[app::function]
#[app::web_app]
fn app_with_args(port: u16) -> modal_runtime::web::axum::Router {
    let _ = port;
    modal_runtime::web::axum::Router::new()
}

#[app::function]
#[app::web_endpoint]
#[app::batched(max_batch_size = 2, wait_ms = 1)]
fn batched(xs: Vec<u8>) -> Vec<u8> {
    xs
}

#[app::function]
#[app::web_endpoint]
#[app::web_app]
fn twice() -> modal_runtime::web::axum::Router {
    modal_runtime::web::axum::Router::new()
}

fn main() {}
