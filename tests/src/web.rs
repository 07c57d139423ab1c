//! Web endpoints the end-to-end tests call over HTTP.

use modal_runtime::web::axum::{self, Json, Router, routing};
use modal_runtime::web::http::{Request, Response, StatusCode};
use modal_runtime::web::{Bytes, HttpError};
use modal_runtime::{Generator, app};

/// A JSON endpoint: `POST /…/square` with the number as the body.
#[app::function]
#[app::web_endpoint(label = "square")]
pub fn web_square(x: u64) -> u64 {
    x * x
}

/// Public, from the query: `GET /…/add?a=1&b=2`.
#[app::function]
#[app::web_endpoint(method = "GET", label = "add", public)]
pub async fn web_add(a: i64, b: i64) -> i64 {
    a + b
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub id: u32,
    pub name: String,
}

/// 404 from the function's own `HttpError`, 500 from any other error.
#[app::function]
#[app::web_endpoint(method = "GET", label = "item")]
pub fn web_item(id: u32) -> Result<Item, HttpError> {
    match id {
        1 => Ok(Item {
            id,
            name: "one".into(),
        }),
        _ => Err(HttpError::not_found(format!("no item {id}"))),
    }
}

#[app::function]
#[app::web_endpoint(label = "fail")]
pub fn web_fail(reason: String) -> Result<u32, String> {
    Err(format!("refused: {reason}"))
}

#[app::function]
#[app::web_endpoint(label = "panic")]
pub fn web_panic() -> u32 {
    panic!("the endpoint panicked")
}

/// Runs past its one-second timeout when asked to sleep longer.
#[app::function(timeout = 1)]
#[app::web_endpoint(label = "slow")]
pub async fn web_slow(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

/// One container, one input at a time: holds it for `ms`.
#[app::function(max_containers = 1)]
#[app::web_endpoint(label = "hold")]
pub async fn web_hold(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

/// Eight requests at once in one container.
#[app::function(max_containers = 1, max_inputs = 8)]
#[app::web_endpoint(label = "hold-many")]
pub async fn web_hold_many(ms: u64) -> u32 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    std::process::id()
}

/// Its container dies under the first attempt; the second answers.
#[app::function]
#[app::web_endpoint(label = "crash-once")]
pub fn web_crash_once() -> u32 {
    let attempt = modal_runtime::current_input().map_or(0, |i| i.attempt);
    if attempt == 1 {
        std::process::exit(3);
    }
    attempt
}

/// Its container dies under every attempt.
#[app::function]
#[app::web_endpoint(label = "crash-always")]
pub fn web_crash_always() -> u32 {
    std::process::exit(4)
}

/// A raw endpoint: echoes what it was sent.
#[app::function]
#[app::web_endpoint(raw, label = "echo")]
pub fn web_echo(request: Request<Bytes>) -> Response<Bytes> {
    let header = request
        .headers()
        .get("x-probe")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = format!(
        "{} {} {} token={} body={}",
        request.method(),
        request.uri(),
        header,
        request.headers().contains_key("authorization"),
        String::from_utf8_lossy(request.body())
    );
    Response::builder()
        .status(StatusCode::CREATED)
        .header("x-echo", "yes")
        .body(Bytes::from(text))
        .unwrap()
}

/// A streaming endpoint: `n` items.
#[app::function]
#[app::web_endpoint(label = "count")]
pub fn web_count(n: u32) -> Generator<u32> {
    Generator::from_stream(futures::stream::iter(0..n))
}

/// A whole app.
#[app::function(max_inputs = 16)]
#[app::web_app(label = "api")]
pub fn web_api() -> Router {
    Router::new()
        .route("/", routing::get(|| async { "api root" }))
        .route(
            "/items/{id}",
            routing::post(
                |axum::extract::Path(id): axum::extract::Path<u32>,
                 Json(body): Json<serde_json::Value>| async move {
                    Json(serde_json::json!({ "id": id, "got": body, "pid": std::process::id() }))
                },
            ),
        )
}

/// The trace id the input runs under.
#[app::function]
#[app::web_endpoint(method = "GET", label = "trace")]
pub fn web_trace() -> String {
    modal_runtime::trace::current().map_or_else(String::new, |t| t.trace_id().to_string())
}
