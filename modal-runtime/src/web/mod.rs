//! Functions on the web: what a container needs to answer HTTP requests
//! that the control plane's ingress hands it as inputs.
//!
//! A function marked `#[app::web_endpoint]` below `#[app::function]` is
//! served at `http://HOST:PORT/<environment>/<app>/<label>` (see
//! [`crate::client::Function::web_url`]). The ingress turns each request
//! into one input (a [`wire::WireRequest`]); the container decodes it into
//! the function's typed arguments, runs the function like any other input
//! (same timeout, retries, concurrency), and answers with a
//! [`wire::WireResponse`]. Three kinds:
//!
//! - JSON (`#[app::web_endpoint]`, `method = "POST"` by default): the body
//!   (or, for `GET`, the query) decodes into the arguments, the result is
//!   the JSON response; a generator's items stream as server-sent events or
//!   JSON lines.
//! - raw (`#[app::web_endpoint(raw)]`): the function takes an
//!   `http::Request<Bytes>` and returns an `http::Response<Bytes>`.
//! - app (`#[app::web_app]`): the function builds an [`axum::Router`] once
//!   per container, and every request under the endpoint's prefix is routed
//!   through it.

mod endpoint;
mod router;
pub mod wire;

pub use ::axum;
pub use ::bytes::Bytes;
pub use ::http;
pub use endpoint::HttpError;

/// What generated code uses; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use ::axum;

    pub use super::endpoint::{
        ErrorStatus, JsonRequest, ViaDisplay, ViaHttpError, json_generator, json_generator_future,
        json_ok, raw_request, raw_response, raw_response_fallible,
    };
    pub use super::router::serve_router;
}
