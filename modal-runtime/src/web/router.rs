//! A whole web app in a container: the `axum::Router` a `#[app::web_app]`
//! function builds, once per container, answering every request under the
//! endpoint's prefix.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::endpoint::{raw_response, to_http_request};
use crate::codec::{CallFailure, decode};
use crate::contract::INLINE_LIMIT;

/// Runs the request in `payload` through the router in `cell`, built by
/// `build` on the container's first request. The response body is read
/// whole (up to the inline limit: a response travels as one result).
pub async fn serve_router(
    payload: Bytes,
    cell: &'static OnceLock<axum::Router>,
    build: fn() -> axum::Router,
) -> Result<Bytes, CallFailure> {
    let wire = decode(&payload)
        .map_err(|e| CallFailure::BadInput(format!("the input is not an HTTP request: {e}")))?;
    let request = to_http_request(wire)?.map(axum::body::Body::from);
    let router = cell.get_or_init(build).clone();
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let limited = http_body_util::Limited::new(body, INLINE_LIMIT);
    let body = limited.collect().await.map_err(|e| {
        CallFailure::BadOutput(format!(
            "the app's response body could not be read whole (at most {INLINE_LIMIT} bytes): {e}"
        ))
    })?;
    raw_response(http::Response::from_parts(parts, body.to_bytes()))
}
