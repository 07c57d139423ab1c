//! Errors that cross the wire with structure: the server puts a JSON
//! [`StatusDetail`] in the gRPC status details, the client turns it back into
//! the matching [`Error`] variant.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use crate::Error;
use crate::connection::went_silent;
use crate::contract::SILENCE_LIMIT;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum StatusDetail {
    AppNotFound {
        app: String,
        available: Vec<String>,
    },
    FunctionNotFound {
        app: String,
        function: String,
        available: Vec<String>,
    },
    AppStopped {
        app: String,
        function: String,
    },
    CallNotFound {
        call_id: String,
    },
    FunctionIdUnknown {
        function_id: u64,
    },
    CallExpired {
        call_id: String,
        retention_secs: u64,
    },
}

// Only the control plane sends structured statuses.
#[cfg(feature = "server")]
impl StatusDetail {
    pub(crate) fn into_status(self) -> Status {
        let code = match self {
            StatusDetail::AppStopped { .. } => Code::FailedPrecondition,
            _ => Code::NotFound,
        };
        let message = Error::from(self.clone()).to_string();
        let details = serde_json::to_vec(&self).unwrap_or_default();
        Status::with_details(code, message, details.into())
    }
}

impl From<StatusDetail> for Error {
    fn from(detail: StatusDetail) -> Error {
        match detail {
            StatusDetail::AppNotFound { app, available } => Error::AppNotFound { app, available },
            StatusDetail::FunctionNotFound {
                app,
                function,
                available,
            } => Error::FunctionNotFound {
                app,
                function,
                available,
            },
            StatusDetail::AppStopped { app, function } => Error::AppStopped { app, function },
            StatusDetail::CallNotFound { call_id } => Error::CallNotFound { call_id },
            StatusDetail::FunctionIdUnknown { function_id } => {
                Error::FunctionIdUnknown { function_id }
            }
            StatusDetail::CallExpired {
                call_id,
                retention_secs,
            } => Error::CallExpired {
                call_id,
                retention: std::time::Duration::from_secs(retention_secs),
            },
        }
    }
}

/// Turns a status from the control plane at `url` into the caller's error.
pub(crate) fn from_status(status: Status, url: &str) -> Error {
    if let Ok(detail) = serde_json::from_slice::<StatusDetail>(status.details()) {
        return detail.into();
    }
    if went_silent(&status) {
        return Error::ServerSilent {
            url: url.to_owned(),
            silent: SILENCE_LIMIT,
        };
    }
    match status.code() {
        Code::Unavailable | Code::Unknown if is_transport_failure(&status) => {
            Error::ServerUnreachable {
                url: url.to_owned(),
                reason: status.message().to_owned(),
            }
        }
        // A connection cut in the middle of a stream.
        Code::Internal if caused_by_io(&status) => Error::ServerUnreachable {
            url: url.to_owned(),
            reason: status.message().to_owned(),
        },
        Code::Unauthenticated => Error::Unauthenticated {
            url: url.to_owned(),
            message: status.message().to_owned(),
        },
        Code::PermissionDenied => Error::PermissionDenied {
            url: url.to_owned(),
            message: status.message().to_owned(),
        },
        // A message over the size limit, refused here or by the control plane.
        _ => Error::Rpc(crate::message_size::explain_status(status)),
    }
}

/// Whether the call failed on its way (refused, reset, cut off), not on
/// the control plane.
fn is_transport_failure(status: &Status) -> bool {
    status.code() == Code::Unavailable
        || status.message().contains("transport")
        || status.message().contains("connect")
        || caused_by_io(status)
}

/// Whether an I/O error (the connection's) is among the causes of `status`.
fn caused_by_io(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
