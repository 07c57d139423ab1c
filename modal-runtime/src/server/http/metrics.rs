//! `GET /metrics`: the control plane's metrics in Prometheus' text format.
//!
//! Open by default, as Prometheus exporters are: the HTTP listener is on
//! loopback unless the operator binds it elsewhere (which `cargo xtask
//! server` allows only with `--insecure`), and a scrape changes nothing.
//! With [`ServerConfig::metrics_token`](crate::server::ServerConfig::metrics_token)
//! set, a scrape must present it as `Authorization: Bearer <token>`
//! (Prometheus: `authorization: { credentials_file: ... }`).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::HttpState;

/// The content type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bearer token `/metrics` requires. Never shown: its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// A token of 16 to 4,096 visible ASCII characters (what an HTTP
    /// header carries unchanged); `Err` says what is wrong, never quoting it.
    pub fn new(token: impl Into<String>) -> Result<MetricsToken, String> {
        let token = token.into();
        if !(16..=4096).contains(&token.len()) {
            return Err(format!(
                "a metrics token is 16 to 4096 characters long, not {}",
                token.len()
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "a metrics token is visible ASCII characters only (no spaces or control \
                 characters)"
                    .into(),
            );
        }
        Ok(MetricsToken(token))
    }

    /// Whether `presented` is this token; compared by their SHA-256, so
    /// that the time taken says nothing about the token.
    fn admits(&self, presented: &str) -> bool {
        Sha256::digest(presented.as_bytes()) == Sha256::digest(self.0.as_bytes())
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.cp.config.metrics_token
        && !token.admits(bearer(&headers).unwrap_or(""))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs the metrics token: send `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        state.cp.telemetry.render(),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert!(MetricsToken::new("short").is_err());
        assert!(MetricsToken::new("with a space in it, long enough").is_err());
        assert!(MetricsToken::new("x".repeat(4097)).is_err());
        let token = MetricsToken::new("s3cret-s3cret-s3cret").unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(token.admits("s3cret-s3cret-s3cret"));
        assert!(!token.admits("s3cret-s3cret-s3cre"));
        assert!(!token.admits(""));
        let err = MetricsToken::new("bad token\u{7}with bell inside").unwrap_err();
        assert!(!err.contains("bell"), "{err}");
    }

    #[test]
    fn the_bearer_token_is_read_from_its_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
