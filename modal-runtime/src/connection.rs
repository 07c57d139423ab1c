//! Connections to the control plane, made the same way by the caller's
//! client and by containers.
//!
//! Every connection is pinged when it has been silent for
//! [`KEEPALIVE_INTERVAL`], even with no call in flight, and dropped when a
//! ping goes unanswered for [`KEEPALIVE_TIMEOUT`]: a control plane that stops
//! answering (hung, or its machine gone without closing the connection) fails
//! the calls waiting on it instead of holding them forever. A busy connection
//! sends no pings, so calls pay nothing for this.

use tonic::transport::Endpoint;

use crate::contract::{
    CONNECT_TIMEOUT, CONNECTION_WINDOW_BYTES, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT,
    STREAM_WINDOW_BYTES,
};

/// How to connect to the control plane at `url`.
pub(crate) fn endpoint(url: &str) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("`{url}` is not a valid control plane URL: {e}"))?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES))
}

/// Whether a call failed because its connection went unanswered for the
/// keepalive timeout (rather than being refused or reset).
pub(crate) fn went_silent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(status);
    while let Some(e) = source {
        // hyper's error for an unanswered keepalive ping.
        if e.to_string().contains("keep-alive timed out") {
            return true;
        }
        source = e.source();
    }
    false
}
