//! The errors a caller sees. Each names what went wrong and what to do.

use std::time::Duration;

/// Everything that can go wrong calling a function.
///
/// `Debug` prints the same readable message as `Display`, so that a `main`
/// returning `Result<(), Error>` reports what happened and what to do.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "cannot reach the modal-rs control plane at {url}: {reason}. \
         Start one with `cargo xtask server`, or unset MODAL_SERVER_URL to use the embedded control plane"
    )]
    ServerUnreachable { url: String, reason: String },

    #[error(
        "the modal-rs control plane at {url} did not answer for {}s: is it running and reachable? \
         (it accepted the connection, then went silent: check that its process is not stuck and \
         that the network between here and it passes traffic)",
        .silent.as_secs()
    )]
    ServerSilent { url: String, silent: Duration },

    #[error(
        "no modal-rs control plane answered at {} for {:.1}s: check that it is running \
         (restarted with the same --data-dir and --addr) and reachable from here; callers wait \
         for it up to MODAL_RECONNECT_TIMEOUT_SECS (60 s by default; see also \
         `Client::with_reconnect_timeout`)",
        .urls.join(", "),
        .waited.as_secs_f64()
    )]
    ServerLost { urls: Vec<String>, waited: Duration },

    #[error("{0}")]
    Config(String),
    /// The control plane did not accept the caller's token (none, unknown,
    /// or revoked).
    #[error("the control plane at {url} refused the request: {message}")]
    Unauthenticated { url: String, message: String },
    /// The caller's token may not do this (its scope or environment).
    #[error("the control plane at {url} does not allow this: {message}")]
    PermissionDenied { url: String, message: String },

    #[error("app `{app}` is not deployed on this control plane{}", list_hint("deployed apps", .available))]
    AppNotFound { app: String, available: Vec<String> },

    #[error("app `{app}` has no function `{function}`{}", list_hint("its functions are", .available))]
    FunctionNotFound {
        app: String,
        function: String,
        available: Vec<String>,
    },

    #[error(
        "function id {function_id} is unknown here (its app was stopped, or the control plane \
         restarted and ids are never reused): look it up again by name"
    )]
    FunctionIdUnknown { function_id: u64 },

    #[error(
        "function `{function}` of app `{app}` was deployed with types `{deployed}`, \
         but this caller expects `{expected}`; rebuild the caller against the deployed code or redeploy the app"
    )]
    FingerprintMismatch {
        app: String,
        function: String,
        deployed: String,
        expected: String,
    },

    #[error(
        "function `{function}` is not part of a running app: call it from a program whose main is \
         marked #[app::main], or use `{function}::from_name(\"<app>\")` to call a deployed app"
    )]
    NoApp { function: String },

    /// The function returned `Err`. `message` is the error's text;
    /// `value`, for an error type that is serde's, the error itself: get it
    /// back with [`Error::user_error`].
    #[error("function `{function}` failed: {message}")]
    User {
        function: String,
        message: String,
        value: Option<ErrorValue>,
    },

    #[error("function `{function}` panicked in container {container}: {message}")]
    Panic {
        function: String,
        container: String,
        message: String,
    },

    #[error("function `{function}`: container {container} {reason} while running this input")]
    ContainerCrashed {
        function: String,
        container: String,
        reason: String,
    },

    #[error(
        "function `{function}` ran out of memory: container {container} {message}; give it more with `memory = …`"
    )]
    OutOfMemory {
        function: String,
        container: String,
        message: String,
    },

    #[error("function `{function}` could not start a container: {message}")]
    ContainerStart { function: String, message: String },

    #[error("function `{function}` rejected its input: {message}")]
    BadInput { function: String, message: String },

    #[error("function `{function}` produced a result that could not be sent back: {message}")]
    BadOutput { function: String, message: String },

    #[error(
        "app `{app}` is stopped, so function `{function}` takes no inputs; deploy it again to restart it"
    )]
    AppStopped { app: String, function: String },

    #[error("could not encode the arguments of `{function}`: {message}")]
    Encode { function: String, message: String },

    #[error(
        "the inputs of a map of `{function}` failed at input {index}: {message} \
         (the results of the inputs before it were delivered)"
    )]
    InputIterator {
        function: String,
        index: u64,
        message: String,
    },

    #[error(
        "the arguments of `{function}` are {size} bytes encoded, over the limit of {limit} bytes; \
         pass a reference (a path on a shared volume, a URL) instead"
    )]
    PayloadTooLarge {
        function: String,
        size: usize,
        limit: usize,
    },

    #[error("could not decode the result of `{function}` as `{expected}`: {message}")]
    Decode {
        function: String,
        expected: &'static str,
        message: String,
    },

    #[error(
        "function call {call_id} has no result after {waited:?}; it is still running, call `get` again to keep waiting"
    )]
    OutputTimeout { call_id: String, waited: Duration },

    #[error(
        "function call `{call_id}` is unknown to this control plane (results are kept for a limited time)"
    )]
    CallNotFound { call_id: String },

    #[error(
        "the result of function call `{call_id}` has expired: results are kept for {retention:?} after the call ends"
    )]
    CallExpired {
        call_id: String,
        retention: Duration,
    },

    #[error("function `{function}` timed out: {message}")]
    Timeout { function: String, message: String },

    #[error("function `{function}`: the call was cancelled")]
    Cancelled { function: String },

    #[error("cannot start a local instance of class `{class}`: {message}")]
    LocalInstance { class: String, message: String },

    #[error("{message}")]
    Deploy { message: String },

    #[error("the control plane answered with an error: {0}")]
    Rpc(#[from] tonic::Status),

    #[error("internal error: {0}")]
    Internal(String),
}

fn list_hint(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({what}: {})", names.join(", "))
    }
}

impl Error {
    /// The function's own error, when this is [`Error::User`] and the
    /// function's error type `E` is serde's:
    ///
    /// ```ignore
    /// match divide.remote(1, 0).await {
    ///     Err(e) => match e.user_error::<MathError>() {
    ///         Some(MathError::DivisionByZero) => { /* … */ }
    ///         _ => return Err(e),
    ///     },
    ///     Ok(q) => { /* … */ }
    /// }
    /// ```
    ///
    /// `None` for any other error, for an error type that is not
    /// `Serialize` (anyhow's, say: only its text travels), or when the error
    /// does not decode as `E`. A stub's `from_name` handle checks the
    /// deployed error type against its own at lookup, so through a stub the
    /// last cannot happen.
    pub fn user_error<E: serde::de::DeserializeOwned>(&self) -> Option<E> {
        match self {
            Error::User {
                value: Some(value), ..
            } => value.decode().ok(),
            _ => None,
        }
    }
}

/// A user's error as it came back from a container: encoded, to be decoded
/// as the function's error type ([`Error::user_error`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorValue(bytes::Bytes);

impl ErrorValue {
    pub(crate) fn new(bytes: bytes::Bytes) -> Option<ErrorValue> {
        (!bytes.is_empty()).then_some(ErrorValue(bytes))
    }

    /// The error, decoded as `E`.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, Error> {
        crate::codec::decode(&self.0).map_err(|e| Error::Decode {
            function: String::new(),
            expected: std::any::type_name::<E>(),
            message: e.to_string(),
        })
    }

    /// The encoded bytes (MessagePack).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ErrorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ErrorValue({} bytes)", self.0.len())
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
