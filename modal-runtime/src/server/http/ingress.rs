//! The ingress: HTTP requests to web endpoints, each run as one input of
//! the endpoint's function.
//!
//! `/<environment>/<app>/<label>` (and, for raw endpoints and apps, any
//! path below it) reaches the endpoint labelled `label` of the live
//! version of the app. The request becomes a [`WireRequest`] input queued
//! like any call, so it gets the function's concurrency (`max_inputs`),
//! autoscaling from zero, timeout and retries; a container that dies under
//! it runs it again elsewhere, within the infrastructure retries. What the
//! caller sees of each way an input ends is [`failure_status`].

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::HttpState;
use crate::options::{WebEndpoint, WebKind};
use crate::proto::{self, FailureKind, outcome};
use crate::server::access::names;
use crate::server::pool::{Origin, Pool, Reply};
use crate::server::telemetry::CallKind;
use crate::trace::TraceParent;
use crate::web::wire::{WEB_INPUT_METHOD, WireRequest, WireResponse, error_body};

/// How long a caller refused for a full queue is asked to wait.
const RETRY_AFTER_SECS: u32 = 1;

/// Headers that belong to one hop, never passed on (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/{environment}/{app}/{label}", any(at_root))
        .route("/{environment}/{app}/{label}/", any(at_root))
        .route("/{environment}/{app}/{label}/{*rest}", any(below))
}

async fn at_root(
    State(state): State<HttpState>,
    Path((environment, app, label)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve(state, &environment, &app, &label, "/".into(), request).await
}

async fn below(
    State(state): State<HttpState>,
    Path((environment, app, label, rest)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    serve(
        state,
        &environment,
        &app,
        &label,
        format!("/{rest}"),
        request,
    )
    .await
}

/// A JSON error response.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = (status, error_body(kind, message)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn serve(
    state: HttpState,
    environment: &str,
    app: &str,
    label: &str,
    path: String,
    request: Request,
) -> Response {
    let cp = &state.cp;
    let not_found = |message: String| error(StatusCode::NOT_FOUND, "not_found", &message);
    if names::check_environment_name(environment).is_err()
        || !crate::server::catalog::valid_app_name(app)
    {
        return not_found(format!(
            "`/{environment}/{app}/{label}` names no endpoint: endpoints are served at \
             /<environment>/<app>/<label>"
        ));
    }
    let function = match cp
        .catalog
        .web_endpoint(&names::app_key(environment, app), label)
    {
        Ok(function) => function,
        Err(message) => return not_found(message),
    };
    let Some(endpoint) = function.options.web.as_ref() else {
        return not_found(format!("`{label}` is not a web endpoint"));
    };
    if let Err(response) = check_route(endpoint, request.method(), &path) {
        return *response;
    }
    let (public, streams) = (endpoint.public, endpoint.streams);
    if !public
        && let Err(status) = crate::server::access::identify_web(cp, request.headers(), environment)
    {
        return denied(&status);
    }
    if !function.has_room(cp.config.web_queue_limit) {
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            &format!(
                "`{label}` runs all the containers it may and {} requests already wait: try \
                 again shortly",
                cp.config.web_queue_limit
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        return response;
    }
    // The caller's trace, if it sent a valid one (W3C: an invalid header is
    // ignored), else a new one: the input runs as its child either way.
    let trace = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .unwrap_or_else(TraceParent::new_root);
    let origin = Origin::new(CallKind::Web, Some(trace));
    let wire = match read_request(request, path, public, cp.config.web_max_body_bytes).await {
        Ok(wire) => wire,
        Err(response) => return *response,
    };
    let args = match crate::codec::encode(&wire) {
        Ok(args) => args,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("the request could not be encoded: {e}"),
            );
        }
    };
    let budget = match cp.budget.reserve(args.len()).await {
        Ok(budget) => budget,
        Err(status) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                status.message(),
            );
        }
    };
    let timeout = cp.config.web_request_timeout;
    if streams {
        let (events, rx) = mpsc::unbounded_channel();
        let input_id = cp.submit_one(
            &function,
            WEB_INPUT_METHOD.into(),
            args,
            String::new(),
            Reply::Generator(events),
            budget,
            origin,
        );
        let sse = wire
            .header("accept")
            .is_some_and(|a| a.contains("text/event-stream"));
        return stream_items(function, input_id, rx, sse, timeout).await;
    }
    let (tx, rx) = oneshot::channel();
    let input_id = cp.submit_one(
        &function,
        WEB_INPUT_METHOD.into(),
        args,
        String::new(),
        Reply::Once(tx),
        budget,
        origin,
    );
    // The caller may go away (its connection closed: this future is
    // dropped) or wait too long: either way the input is cancelled.
    let cancel = CancelOnDrop::new(function.clone(), input_id);
    let outcome = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request was dropped without an outcome",
            );
        }
        Err(_) => return timed_out(label, timeout),
    };
    cancel.disarm();
    respond(&state, &function, outcome).await
}

/// Whether `endpoint` answers `method` at `path` (a JSON endpoint answers
/// its own method at its own URL only).
fn check_route(endpoint: &WebEndpoint, method: &Method, path: &str) -> Result<(), Box<Response>> {
    if endpoint.kind != WebKind::Json {
        return Ok(());
    }
    if path != "/" {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "endpoint `{}` answers at its own URL only, not below it",
                endpoint.label
            ),
        )));
    }
    let answers =
        method.as_str() == endpoint.method || (method == Method::HEAD && endpoint.method == "GET");
    if answers {
        return Ok(());
    }
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!(
            "endpoint `{}` answers {}, not {method}",
            endpoint.label, endpoint.method
        ),
    );
    if let Ok(allow) = HeaderValue::from_str(&endpoint.method) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    Err(Box::new(response))
}

/// 401 for a missing or unknown token, 403 for one that may not call.
fn denied(status: &tonic::Status) -> Response {
    let (code, kind) = match status.code() {
        tonic::Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        _ => (StatusCode::FORBIDDEN, "permission_denied"),
    };
    let mut response = error(code, kind, status.message());
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"modal-rs\""),
        );
    }
    response
}

fn timed_out(label: &str, timeout: Duration) -> Response {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        &format!(
            "`{label}` did not answer within {}s, the control plane's limit for a web request",
            timeout.as_secs()
        ),
    )
}

/// The request as the container receives it; 413 past `limit` bytes of
/// body. The caller's token is not passed on, unless the endpoint is
/// public (then the header is the caller's own business).
async fn read_request(
    request: Request,
    path: String,
    public: bool,
    limit: usize,
) -> Result<WireRequest, Box<Response>> {
    let too_large = || {
        Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the request body is over the limit of {limit} bytes"),
        ))
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    Ok(WireRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: pass_on(&parts.headers, public),
        body: body.to_vec(),
    })
}

fn pass_on(headers: &HeaderMap, public: bool) -> Vec<(String, serde_bytes::ByteBuf)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !HOP_BY_HOP.contains(&name) && (public || name != "authorization")
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                serde_bytes::ByteBuf::from(value.as_bytes().to_vec()),
            )
        })
        .collect()
}

/// What the caller sees of an input's outcome.
async fn respond(state: &HttpState, function: &Pool, outcome: proto::Outcome) -> Response {
    let bytes = match outcome.result {
        Some(outcome::Result::Value(bytes)) => bytes,
        Some(outcome::Result::ValueBlob(id)) => {
            let environment = names::environment_of(&function.app);
            let Some(path) = state.cp.blobs.path(environment, &id) else {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "bad_output",
                    "the response was stored, and is gone",
                );
            };
            match tokio::fs::read(&path).await {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    return error(
                        StatusCode::BAD_GATEWAY,
                        "bad_output",
                        &format!("the stored response cannot be read: {e}"),
                    );
                }
            }
        }
        Some(outcome::Result::Failure(failure)) => return failure_response(&failure),
        None => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the input ended with no outcome",
            );
        }
    };
    match crate::codec::decode::<WireResponse>(&bytes) {
        Ok(wire) => to_response(wire),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "bad_output",
            &format!("the function's answer is not an HTTP response: {e}"),
        ),
    }
}

fn to_response(wire: WireResponse) -> Response {
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(wire.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in wire.headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// The status of each way an input can fail: the caller's fault (400),
/// the function's (500), the time limit (504), the infrastructure's (502,
/// naming the container), or the app's state (503).
pub(crate) fn failure_status(kind: FailureKind) -> (StatusCode, &'static str) {
    use FailureKind as K;
    match kind {
        K::BadInput => (StatusCode::BAD_REQUEST, "bad_input"),
        K::UserError => (StatusCode::INTERNAL_SERVER_ERROR, "user_error"),
        K::Panic => (StatusCode::INTERNAL_SERVER_ERROR, "panic"),
        K::BadOutput => (StatusCode::INTERNAL_SERVER_ERROR, "bad_output"),
        K::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        K::ContainerCrashed => (StatusCode::BAD_GATEWAY, "container_crashed"),
        K::OutOfMemory => (StatusCode::BAD_GATEWAY, "out_of_memory"),
        K::ContainerStart => (StatusCode::BAD_GATEWAY, "container_start"),
        K::AppStopped => (StatusCode::SERVICE_UNAVAILABLE, "app_stopped"),
        K::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
        K::Unspecified => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn failure_response(failure: &proto::Failure) -> Response {
    let kind = FailureKind::try_from(failure.kind).unwrap_or(FailureKind::Unspecified);
    let (status, name) = failure_status(kind);
    let message = if failure.container_id.is_empty() {
        failure.message.clone()
    } else {
        format!("{} (container {})", failure.message, failure.container_id)
    };
    error(status, name, &message)
}

/// Cancels an input unless disarmed: what a caller that went away leaves.
struct CancelOnDrop {
    function: Option<std::sync::Arc<Pool>>,
    input_id: u64,
}

impl CancelOnDrop {
    fn new(function: std::sync::Arc<Pool>, input_id: u64) -> Self {
        CancelOnDrop {
            function: Some(function),
            input_id,
        }
    }

    fn disarm(mut self) {
        self.function = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(function) = self.function.take() {
            function.cancel_input(self.input_id);
        }
    }
}

/// A generator endpoint's items as they come: server-sent events when the
/// caller accepts them, else one JSON value per line. The status waits for
/// the first event, so that a request that fails at once (bad input) gets
/// its own status rather than a 200 and an error line.
async fn stream_items(
    function: std::sync::Arc<Pool>,
    input_id: u64,
    mut events: mpsc::UnboundedReceiver<proto::GeneratorEvent>,
    sse: bool,
    timeout: Duration,
) -> Response {
    use proto::generator_event::Event;
    let label = function
        .options
        .web
        .as_ref()
        .map(|w| w.label.to_string())
        .unwrap_or_default();
    let cancel = CancelOnDrop::new(function.clone(), input_id);
    let deadline = tokio::time::Instant::now() + timeout;
    let first = match tokio::time::timeout_at(deadline, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request was dropped without an outcome",
            );
        }
        Err(_) => return timed_out(&label, timeout),
    };
    if let Some(Event::Done(proto::Outcome {
        result: Some(outcome::Result::Failure(failure)),
    })) = &first.event
    {
        cancel.disarm();
        return failure_response(failure);
    }
    let body = async_stream_body(first, events, function, input_id, cancel, sse);
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One item of a stream: an event, or a line.
fn frame(json: &[u8], sse: bool) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    if sse {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(json);
        out.extend_from_slice(b"\n\n");
    } else {
        out.extend_from_slice(json);
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// The body of a streamed answer: each batch of items passed on lets the
/// generator send as many more, so a slow reader holds it back. A failure
/// after the first item ends the stream with an error event (or line).
fn async_stream_body(
    first: proto::GeneratorEvent,
    events: mpsc::UnboundedReceiver<proto::GeneratorEvent>,
    function: std::sync::Arc<Pool>,
    input_id: u64,
    cancel: CancelOnDrop,
    sse: bool,
) -> Body {
    use futures::StreamExt as _;
    use proto::generator_event::Event;
    let state = (Some(first), events, cancel, false);
    let stream = futures::stream::unfold(state, move |(mut next, mut events, cancel, done)| {
        let function = function.clone();
        async move {
            if done {
                cancel.disarm();
                return None;
            }
            let event = match next.take() {
                Some(event) => event,
                None => events.recv().await?,
            };
            let (bytes, done) = match event.event {
                Some(Event::Items(items)) => {
                    let mut out = Vec::new();
                    for value in &items.values {
                        out.extend_from_slice(&frame(value, sse));
                    }
                    function.grant_items(input_id, items.values.len() as u32);
                    (Bytes::from(out), false)
                }
                Some(Event::Done(proto::Outcome {
                    result: Some(outcome::Result::Failure(failure)),
                })) => {
                    let kind =
                        FailureKind::try_from(failure.kind).unwrap_or(FailureKind::Unspecified);
                    let body = error_body(failure_status(kind).1, &failure.message);
                    let bytes = if sse {
                        let mut out = b"event: error\ndata: ".to_vec();
                        out.extend_from_slice(&body);
                        out.extend_from_slice(b"\n\n");
                        Bytes::from(out)
                    } else {
                        frame(&body, sse)
                    };
                    (bytes, true)
                }
                Some(Event::Done(_)) | None => (Bytes::new(), true),
            };
            Some((
                Ok::<_, std::convert::Infallible>(bytes),
                (None, events, cancel, done),
            ))
        }
    });
    Body::from_stream(stream.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(kind: WebKind, method: &str) -> WebEndpoint {
        WebEndpoint {
            kind,
            method: method.to_owned().into(),
            label: "square".into(),
            public: false,
            streams: false,
        }
    }

    #[test]
    fn a_json_endpoint_answers_its_method_at_its_url_only() {
        let post = endpoint(WebKind::Json, "POST");
        assert!(check_route(&post, &Method::POST, "/").is_ok());
        let wrong = check_route(&post, &Method::GET, "/").unwrap_err();
        assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.headers()[header::ALLOW], "POST");
        let below = check_route(&post, &Method::POST, "/x").unwrap_err();
        assert_eq!(below.status(), StatusCode::NOT_FOUND);
        let get = endpoint(WebKind::Json, "GET");
        assert!(check_route(&get, &Method::HEAD, "/").is_ok());
        let app = endpoint(WebKind::App, "*");
        assert!(check_route(&app, &Method::DELETE, "/items/3").is_ok());
    }

    #[test]
    fn failures_map_to_statuses() {
        assert_eq!(
            failure_status(FailureKind::BadInput).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            failure_status(FailureKind::UserError).0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            failure_status(FailureKind::Panic).0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            failure_status(FailureKind::Timeout).0,
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            failure_status(FailureKind::ContainerCrashed).0,
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn the_token_is_not_passed_on_unless_the_endpoint_is_public() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("x-app", HeaderValue::from_static("1"));
        headers.insert("connection", HeaderValue::from_static("keep-alive"));
        let names = |public| -> Vec<String> {
            pass_on(&headers, public)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(false), vec!["x-app"]);
        assert_eq!(names(true), vec!["authorization", "x-app"]);
    }
}
