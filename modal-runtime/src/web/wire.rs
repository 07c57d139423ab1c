//! An HTTP request and response as they travel between the ingress and a
//! container: MessagePack, like every other input and result.

use serde::{Deserialize, Serialize};

/// The method name an input carries when it is an HTTP request to a web
/// endpoint rather than a typed call: no Rust method can be named so.
pub const WEB_INPUT_METHOD: &str = "@web";

/// One HTTP request to an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path below the endpoint's own prefix, starting with `/` (`/` for
    /// the endpoint itself).
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, serde_bytes::ByteBuf)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl WireRequest {
    /// The first value of header `name` (lowercase), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// One HTTP response from an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireResponse {
    pub status: u16,
    pub headers: Vec<(String, serde_bytes::ByteBuf)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl WireResponse {
    /// A JSON response with `status`.
    pub fn json(status: u16, body: Vec<u8>) -> WireResponse {
        WireResponse {
            status,
            headers: vec![(
                "content-type".into(),
                serde_bytes::ByteBuf::from(b"application/json".to_vec()),
            )],
            body,
        }
    }
}

/// The JSON body of an error response: `{"error": {"kind": …, "message": …}}`.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "error": { "kind": kind, "message": message }
    }))
    .unwrap_or_default()
}
