//! Turns an input's outcome into the caller's typed result.

use serde::de::DeserializeOwned;

use crate::error::ErrorValue;
use crate::proto::{self, FailureKind, outcome};
use crate::{Error, codec};

/// What the caller knows about the function an outcome belongs to.
pub(crate) struct CallSite<'a> {
    pub app: &'a str,
    pub function: &'a str,
}

pub(crate) fn decode_outcome<Ret: DeserializeOwned>(
    outcome: Option<proto::Outcome>,
    site: &CallSite<'_>,
) -> Result<Ret, Error> {
    let function = site.function.to_owned();
    match outcome.and_then(|o| o.result) {
        Some(outcome::Result::Value(bytes)) => {
            codec::decode::<Ret>(&bytes).map_err(|e| Error::Decode {
                function,
                expected: std::any::type_name::<Ret>(),
                message: e.to_string(),
            })
        }
        Some(outcome::Result::Failure(f)) => Err(failure_error(f, site)),
        Some(outcome::Result::ValueBlob(_)) => Err(Error::Internal(format!(
            "the result of `{function}` was not fetched from the blob store"
        ))),
        None => Err(Error::Internal(format!(
            "the control plane sent an empty outcome for `{function}`"
        ))),
    }
}

pub(crate) fn failure_error(f: proto::Failure, site: &CallSite<'_>) -> Error {
    let function = site.function.to_owned();
    let container = f.container_id;
    let message = f.message;
    match FailureKind::try_from(f.kind).unwrap_or(FailureKind::Unspecified) {
        FailureKind::UserError => Error::User {
            function,
            message,
            value: ErrorValue::new(f.error_value),
        },
        FailureKind::Panic => Error::Panic {
            function,
            container,
            message,
        },
        FailureKind::BadInput => Error::BadInput { function, message },
        FailureKind::BadOutput => Error::BadOutput { function, message },
        FailureKind::ContainerCrashed => Error::ContainerCrashed {
            function,
            container,
            reason: message,
        },
        FailureKind::ContainerStart => Error::ContainerStart { function, message },
        FailureKind::OutOfMemory => Error::OutOfMemory {
            function,
            container,
            message,
        },
        FailureKind::AppStopped => Error::AppStopped {
            app: site.app.to_owned(),
            function,
        },
        FailureKind::Timeout => Error::Timeout { function, message },
        FailureKind::Cancelled => Error::Cancelled { function },
        FailureKind::Unspecified => Error::Internal(message),
    }
}
