//! What the caller's client, the container and the control plane must agree
//! on beyond `proto/modal.proto`: the environment a container is started
//! with, and the sizes and times every connection shares.
//!
//! All three roles read these from here and from nowhere else, so a change to
//! one is a change to all of them.

use std::time::Duration;

/// Environment variables that tell a process it is a container, and what to
/// serve. The control plane sets them when it starts a container; the
/// program's `main` (`#[app::main]`) reads [`ROLE`](container_env::ROLE) to
/// pick its role, the container reads the rest.
pub mod container_env {
    /// Which role the program plays; unset for a program run by its user.
    pub const ROLE: &str = "MODAL_ROLE";
    /// [`ROLE`] of a container: serve one function's inputs.
    pub const ROLE_CONTAINER: &str = "container";
    /// [`ROLE`] of a manifest query: print the functions of the binary and exit.
    pub const ROLE_MANIFEST: &str = "manifest";
    /// The URL the container dials (the control plane's own, which may
    /// differ from the one its callers use).
    pub const SERVER_URL: &str = "MODAL_CONTAINER_SERVER_URL";
    /// With an `https://` [`SERVER_URL`]: the path of a PEM file holding
    /// the CA certificate(s) the container verifies the control plane with.
    pub const TLS_CA: &str = "MODAL_CONTAINER_TLS_CA";
    /// The container's id, presented with [`TOKEN`] when it connects.
    pub const CONTAINER_ID: &str = "MODAL_CONTAINER_ID";
    /// A secret per container: only the process the control plane started
    /// may take that container's inputs.
    pub const TOKEN: &str = "MODAL_CONTAINER_TOKEN";
    /// The function (or class) the container serves.
    pub const FUNCTION: &str = "MODAL_FUNCTION";
    /// The app the function belongs to.
    pub const APP: &str = "MODAL_APP";
    /// Milliseconds between the container's heartbeats.
    pub const HEARTBEAT_MS: &str = "MODAL_HEARTBEAT_MS";
    /// Inputs the container runs at once.
    pub const MAX_INPUTS: &str = "MODAL_MAX_INPUTS";
    /// Dynamic batching: the most inputs per batch (unset: no batching).
    pub const BATCH_MAX_SIZE: &str = "MODAL_BATCH_MAX_SIZE";
    /// Dynamic batching: milliseconds a batch waits for more inputs.
    pub const BATCH_WAIT_MS: &str = "MODAL_BATCH_WAIT_MS";
    /// Seconds each attempt of an input may run.
    pub const TIMEOUT_SECS: &str = "MODAL_TIMEOUT_SECS";
    /// Set by a backend that cannot mount volumes (the process backend): a
    /// JSON object of each mount path to the host folder that holds its
    /// volume, read by [`crate::volume::mounted`]. Unset where volumes are
    /// mounted at their paths.
    pub const VOLUME_MOUNTS: &str = "MODAL_VOLUME_MOUNTS";
}

/// The metadata every request's token travels in, as `Bearer <token>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The metadata naming the environment a request acts in (`main` when
/// absent, or the token's own).
pub const ENVIRONMENT_HEADER: &str = "modal-environment";

/// A container's bearer token: `ctr.<container id>.<secret>`, from
/// [`container_env::CONTAINER_ID`] and [`container_env::TOKEN`].
pub mod container_token {
    const PREFIX: &str = "ctr.";

    pub fn format(container_id: &str, secret: &str) -> String {
        format!("{PREFIX}{container_id}.{secret}")
    }

    /// The container id and secret of a container's token; `None` for any
    /// other token.
    pub fn parse(token: &str) -> Option<(&str, &str)> {
        token.strip_prefix(PREFIX)?.rsplit_once('.')
    }
}

/// Largest gRPC message either side sends or accepts (16 MiB): a few inline
/// payloads. A larger one is refused from its length prefix, before it is
/// read, so no client can make a control plane hold more than this per
/// request; batches of many payloads are cut at [`BATCH_BYTES`].
pub const MAX_MESSAGE_BYTES: usize = 4 * INLINE_LIMIT;

/// Where a batch of many payloads (map inputs and outputs, container inputs
/// and outcomes) is cut: the batch, plus one inline payload that goes alone,
/// stays well under [`MAX_MESSAGE_BYTES`].
pub const BATCH_BYTES: usize = 2 * INLINE_LIMIT;

/// Longest failure message sent (64 KiB): a failure travels inline, in
/// batches, whatever the size of the error it reports.
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 64 << 10;

/// Largest argument tuple or result sent inside a message (4 MiB); larger
/// ones are streamed to the control plane's blob store and travel as its id.
///
/// Small enough that a message of a few inline payloads stays far below
/// [`MAX_MESSAGE_BYTES`] and does not hold up other calls on the connection;
/// large enough that typical calls need no second round trip.
pub const INLINE_LIMIT: usize = 4 << 20;

/// Largest argument tuple or result accepted at all (1 GiB), by the caller
/// before anything is sent, by the container before it uploads a result, and
/// by the blob store as it receives one. Anything larger belongs on shared
/// storage, passed by reference.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// Items a generator may send ahead of its caller: beyond them it waits
/// until the control plane passes on that its caller took more. With each
/// item at most [`INLINE_LIMIT`], this bounds a generator's share of the
/// control plane's memory when its caller reads slowly.
pub const GENERATOR_CREDIT_ITEMS: u32 = 16;

/// Inputs of one map accepted and not yet answered: what bounds a map's
/// share of the control plane's memory and the caller's reorder buffer,
/// whoever sends it. The client keeps to it; the control plane enforces it.
pub const MAP_WINDOW_INPUTS: usize = 8192;

/// KiB of inline arguments of one map accepted and not yet answered
/// (128 MiB); each input counts for at least 1 KiB.
pub const MAP_WINDOW_KIB: u32 = 128 * 1024;

/// Size of one piece of a streamed blob or binary (1 MiB): big enough to
/// keep per-message overhead negligible, small enough to keep memory per
/// stream low.
pub const STREAM_CHUNK_BYTES: usize = 1 << 20;

/// HTTP/2 flow-control window of one stream (8 MiB), on every connection.
/// The default (64 KiB) limits a large payload to one window per round trip.
pub const STREAM_WINDOW_BYTES: u32 = 8 << 20;

/// HTTP/2 flow-control window of a whole connection (32 MiB): room for a few
/// streams at full speed at once.
pub const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;

/// How long a client or container waits for a TCP connection to the control
/// plane (5 s): a control plane that is up accepts at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection to the control plane may be silent before it is
/// pinged (10 s). The ping is only sent when nothing has arrived for this
/// long, so busy connections carry no extra traffic.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a ping may go unanswered before the connection is declared dead
/// and every call on it fails (10 s). With [`KEEPALIVE_INTERVAL`], a control
/// plane that stops answering is noticed within [`SILENCE_LIMIT`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a client or container waits on a control plane that has
/// stopped answering before its calls fail (20 s).
pub const SILENCE_LIMIT: Duration = KEEPALIVE_INTERVAL.saturating_add(KEEPALIVE_TIMEOUT);
