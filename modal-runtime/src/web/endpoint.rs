//! Container side of an endpoint: a request decoded into typed arguments,
//! a result encoded as the response.
//!
//! Arguments come from the JSON body, or from the query for `GET`, `HEAD`
//! and `DELETE`:
//! - no argument: the body is ignored;
//! - one argument: the whole body is that argument (`{"name": "x"}` for a
//!   struct argument, `3` for a number); from a query, the parameter named
//!   like the argument;
//! - several: a JSON object keyed by the argument names (or query
//!   parameters of those names). An unknown name is refused, a missing one
//!   is `null` (so an `Option` may be left out).
//!
//! A query value is read as JSON when it is JSON of the argument's type
//! (`?n=3`, `?flags=[1,2]`), else as a JSON string (`?name=ada`).

use std::fmt::Display;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{WireRequest, WireResponse, error_body};
use crate::codec::{CallFailure, UserFailure, decode, encode};
use crate::generator::{GenEvent, Generator, encode_steps, steps_of_future};

/// An error that answers the request with its own status: return
/// `Result<T, HttpError>` from an endpoint to send a 404 or a 422 rather
/// than the 500 any other error becomes. Called with `remote`, it is a user
/// error like any other.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpError {
    /// An HTTP status, 400 to 599.
    pub status: u16,
    pub message: String,
}

impl HttpError {
    /// An error answered with `status` (clamped to 400..=599).
    pub fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status: status.clamp(400, 599),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(404, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> HttpError {
        HttpError::new(422, message)
    }
}

impl Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for HttpError {}

fn bad_input(message: String) -> CallFailure {
    CallFailure::BadInput(message)
}

/// Decodes the request an input carries.
fn wire_request(payload: &[u8]) -> Result<WireRequest, CallFailure> {
    decode(payload).map_err(|e| bad_input(format!("the input is not an HTTP request: {e}")))
}

fn encode_response(response: &WireResponse) -> Result<Bytes, CallFailure> {
    encode(response).map_err(|e| CallFailure::BadOutput(format!("cannot encode the response: {e}")))
}

/// Where a JSON endpoint's arguments come from.
enum Source {
    /// No argument, or one: the whole body.
    Whole(Option<Value>),
    /// Several: a JSON object by argument name.
    Named(serde_json::Map<String, Value>),
    /// Query parameters by name.
    Query(Vec<(String, String)>),
}

/// A request to a JSON endpoint, ready to hand out its arguments.
pub struct JsonRequest {
    source: Source,
}

impl JsonRequest {
    /// The request in `payload`, for a function whose arguments are named
    /// `names` (in order).
    pub fn decode(payload: &[u8], names: &[&str]) -> Result<JsonRequest, CallFailure> {
        let request = wire_request(payload)?;
        let from_query = matches!(request.method.as_str(), "GET" | "HEAD" | "DELETE");
        let source = if from_query {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(request.query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if let Some((unknown, _)) = pairs.iter().find(|(k, _)| !names.contains(&k.as_str())) {
                return Err(unknown_argument(unknown, names));
            }
            Source::Query(pairs)
        } else if names.is_empty() {
            Source::Whole(None)
        } else {
            let body: Value = if request.body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&request.body)
                    .map_err(|e| bad_input(format!("the request body is not JSON: {e}")))?
            };
            if names.len() == 1 {
                Source::Whole(Some(body))
            } else {
                match body {
                    Value::Object(map) => {
                        if let Some(unknown) = map.keys().find(|k| !names.contains(&k.as_str())) {
                            return Err(unknown_argument(unknown, names));
                        }
                        Source::Named(map)
                    }
                    Value::Null => Source::Named(serde_json::Map::new()),
                    other => {
                        return Err(bad_input(format!(
                            "the request body must be a JSON object with the arguments by name \
                             ({}), not {}",
                            names.join(", "),
                            kind_of(&other)
                        )));
                    }
                }
            }
        };
        Ok(JsonRequest { source })
    }

    /// Argument `name` as a `T`.
    pub fn arg<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, CallFailure> {
        let wrong = |e: serde_json::Error| bad_input(format!("argument `{name}`: {e}"));
        match &mut self.source {
            Source::Whole(value) => {
                serde_json::from_value(value.take().unwrap_or(Value::Null)).map_err(wrong)
            }
            Source::Named(map) => serde_json::from_value(map.remove(name).unwrap_or(Value::Null))
                .map_err(|e| bad_input(format!("argument `{name}` is missing or not valid: {e}"))),
            Source::Query(pairs) => match pairs.iter().rev().find(|(k, _)| k == name) {
                None => serde_json::from_value(Value::Null).map_err(|_| {
                    bad_input(format!(
                        "query parameter `{name}` is missing: it is an argument of this endpoint"
                    ))
                }),
                Some((_, text)) => serde_json::from_str(text)
                    .or_else(|_| serde_json::from_value(Value::String(text.clone())))
                    .map_err(wrong),
            },
        }
    }
}

fn unknown_argument(unknown: &str, names: &[&str]) -> CallFailure {
    let known = if names.is_empty() {
        "it takes none".to_owned()
    } else {
        format!("its arguments: {}", names.join(", "))
    };
    bad_input(format!(
        "this endpoint has no argument `{unknown}` ({known})"
    ))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CallFailure> {
    serde_json::to_vec(value).map_err(|e| {
        CallFailure::BadOutput(format!(
            "the result of type `{}` cannot be written as JSON: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// A successful result: `200` with its JSON.
pub fn json_ok<T: Serialize>(value: &T) -> Result<Bytes, CallFailure> {
    encode_response(&WireResponse::json(200, to_json(value)?))
}

/// An endpoint's error, which generated code resolves by its type: an
/// [`HttpError`] answers with its status ([`ViaHttpError`]), any other
/// error is a user error, a 500 ([`ViaDisplay`]).
pub struct ErrorStatus<'a, E>(pub &'a E);

pub trait ViaHttpError {
    fn web_failure(&self) -> Result<Bytes, CallFailure>;
}

impl ViaHttpError for ErrorStatus<'_, HttpError> {
    fn web_failure(&self) -> Result<Bytes, CallFailure> {
        let e = self.0;
        encode_response(&WireResponse::json(
            e.status,
            error_body("http_error", &e.message),
        ))
    }
}

pub trait ViaDisplay {
    fn web_failure(&self) -> Result<Bytes, CallFailure>;
}

impl<E: Display> ViaDisplay for &ErrorStatus<'_, E> {
    fn web_failure(&self) -> Result<Bytes, CallFailure> {
        Err(UserFailure::text(self.0.to_string()))
    }
}

/// A generator's items, each as one JSON value.
pub fn json_generator<T, R>(generator: Generator<T, R>) -> BoxStream<'static, GenEvent>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
{
    encode_steps(generator, |item| to_json(item).map(Bytes::from))
}

/// The items of the generator an `async fn` returns, as JSON.
pub fn json_generator_future<T, R, F>(generator: F) -> BoxStream<'static, GenEvent>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
    F: Future<Output = Generator<T, R>> + Send + 'static,
{
    steps_of_future(generator, json_generator)
}

/// The request in `payload` as an `http::Request` (its URI the path below
/// the endpoint and the query).
pub fn raw_request(payload: &[u8]) -> Result<http::Request<Bytes>, CallFailure> {
    let wire = wire_request(payload)?;
    to_http_request(wire)
}

pub(crate) fn to_http_request(wire: WireRequest) -> Result<http::Request<Bytes>, CallFailure> {
    let uri = if wire.query.is_empty() {
        wire.path
    } else {
        format!("{}?{}", wire.path, wire.query)
    };
    let mut builder = http::Request::builder()
        .method(wire.method.as_str())
        .uri(uri);
    for (name, value) in wire.headers {
        builder = builder.header(name, value.into_vec());
    }
    builder
        .body(Bytes::from(wire.body))
        .map_err(|e| bad_input(format!("the request cannot be rebuilt: {e}")))
}

/// An `http::Response` as the response of an input.
pub fn raw_response(response: http::Response<Bytes>) -> Result<Bytes, CallFailure> {
    let (parts, body) = response.into_parts();
    encode_response(&WireResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    serde_bytes::ByteBuf::from(v.as_bytes().to_vec()),
                )
            })
            .collect(),
        body: body.to_vec(),
    })
}

/// A raw endpoint's `Result`: the response, or a user error.
pub fn raw_response_fallible<E: Display>(
    result: Result<http::Response<Bytes>, E>,
) -> Result<Bytes, CallFailure> {
    match result {
        Ok(response) => raw_response(response),
        Err(e) => Err(UserFailure::text(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, query: &str, body: &str) -> Bytes {
        encode(&WireRequest {
            method: method.into(),
            path: "/".into(),
            query: query.into(),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        })
        .unwrap()
    }

    fn message(failure: CallFailure) -> String {
        match failure {
            CallFailure::BadInput(m) => m,
            other => panic!("not bad input: {other:?}"),
        }
    }

    #[test]
    fn one_argument_is_the_whole_body() {
        let mut r = JsonRequest::decode(&request("POST", "", r#"{"a": 1}"#), &["x"]).unwrap();
        let v: serde_json::Value = r.arg("x").unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
        let mut r = JsonRequest::decode(&request("POST", "", "7"), &["x"]).unwrap();
        assert_eq!(r.arg::<u64>("x").unwrap(), 7);
    }

    #[test]
    fn several_arguments_by_name_and_missing_options_are_none() {
        let payload = request("POST", "", r#"{"a": 2, "b": "x"}"#);
        let mut r = JsonRequest::decode(&payload, &["a", "b", "c"]).unwrap();
        assert_eq!(r.arg::<u32>("a").unwrap(), 2);
        assert_eq!(r.arg::<String>("b").unwrap(), "x");
        assert_eq!(r.arg::<Option<u8>>("c").unwrap(), None);
        let mut r = JsonRequest::decode(&request("POST", "", r#"{"a": 2}"#), &["a", "b"]).unwrap();
        let _ = r.arg::<u32>("a").unwrap();
        assert!(message(r.arg::<String>("b").unwrap_err()).contains("argument `b`"));
    }

    #[test]
    fn unknown_names_and_bad_bodies_are_refused_with_their_names() {
        let err = JsonRequest::decode(&request("POST", "", r#"{"a": 1, "z": 2}"#), &["a", "b"])
            .err()
            .unwrap();
        assert!(message(err).contains("no argument `z` (its arguments: a, b)"));
        let err = JsonRequest::decode(&request("POST", "", "{"), &["a"])
            .err()
            .unwrap();
        assert!(message(err).contains("not JSON"));
        let err = JsonRequest::decode(&request("POST", "", "[1]"), &["a", "b"])
            .err()
            .unwrap();
        assert!(message(err).contains("not an array"));
        let err = JsonRequest::decode(&request("GET", "q=1", ""), &[])
            .err()
            .unwrap();
        assert!(message(err).contains("it takes none"));
    }

    #[test]
    fn query_values_are_json_of_the_type_or_strings() {
        let payload = request("GET", "n=3&name=ada&id=007&list=%5B1%2C2%5D", "");
        let mut r = JsonRequest::decode(&payload, &["n", "name", "id", "list", "gone"]).unwrap();
        assert_eq!(r.arg::<u64>("n").unwrap(), 3);
        assert_eq!(r.arg::<String>("name").unwrap(), "ada");
        // `007` is not JSON: read as text.
        assert_eq!(r.arg::<String>("id").unwrap(), "007");
        assert_eq!(r.arg::<Vec<u8>>("list").unwrap(), vec![1, 2]);
        assert!(message(r.arg::<u64>("gone").unwrap_err()).contains("`gone` is missing"));
        let mut r = JsonRequest::decode(&request("GET", "n=x", ""), &["n"]).unwrap();
        assert!(message(r.arg::<u64>("n").unwrap_err()).contains("argument `n`"));
    }

    #[test]
    fn an_http_error_answers_with_its_status_and_others_are_user_errors() {
        let e = HttpError::not_found("no such item");
        let response: WireResponse = decode(&ErrorStatus(&e).web_failure().unwrap()).unwrap();
        assert_eq!(response.status, 404);
        assert!(String::from_utf8_lossy(&response.body).contains("no such item"));
        let other = std::io::Error::other("disk on fire");
        assert_eq!(
            (&ErrorStatus(&other)).web_failure(),
            Err(UserFailure::text("disk on fire"))
        );
        assert_eq!(HttpError::new(200, "x").status, 400);
    }
}
