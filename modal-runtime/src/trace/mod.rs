//! Trace context: every call carries a W3C `traceparent` from its caller,
//! through the control plane, to the container that runs it, so that both
//! sides' spans and log lines belong to one trace.
//!
//! A call opens a `modal.call` span where it is made (`tracing`, level
//! INFO, fields `kind`, `function`, `trace_id`, `span_id`,
//! `parent_span_id`); the container runs the input in a `modal.input`
//! span (level DEBUG; `function`, `method`, `input_id`, `attempt` and the
//! same ids), whose parent is the `modal.call` span, and starts each line
//! it logs during the input with `trace_id=`. Code running in a container
//! reads its input's context with [`current`].
//!
//! Which trace a call joins: the context set with [`scope`]; else, with
//! the `otel` feature, the current `tracing` span's OpenTelemetry
//! context; else, inside a container, the current input's; else a new
//! trace.
//!
//! ```ignore
//! use modal_runtime::trace::{self, TraceParent};
//!
//! // Join the trace of an incoming request:
//! let parent = TraceParent::parse(header).unwrap_or_else(TraceParent::new_root);
//! let y = trace::scope(parent, square.remote(3)).await?;
//!
//! // In a function: the trace it runs in.
//! let id = trace::current().map(|t| t.trace_id().to_string());
//! ```

#[cfg(feature = "otel")]
pub mod otel;
mod parent;
mod spans;

pub use parent::{SpanId, TraceId, TraceParent};
pub(crate) use spans::{call_span, input_span};

tokio::task_local! {
    static SCOPED: TraceParent;
}

/// Runs `future` with `parent` as the trace context of the calls it
/// makes: each becomes a child of `parent`.
pub async fn scope<F: std::future::Future>(parent: TraceParent, future: F) -> F::Output {
    SCOPED.scope(parent, future).await
}

/// The trace context calls made here join: the one set with [`scope`];
/// else (with the `otel` feature) the current `tracing` span's
/// OpenTelemetry context; else, in a function running in a container,
/// its input's; else `None` (a call starts a new trace).
pub fn current() -> Option<TraceParent> {
    if let Ok(scoped) = SCOPED.try_with(|parent| *parent) {
        return Some(scoped);
    }
    #[cfg(feature = "otel")]
    if let Some(otel) = otel::current() {
        return Some(otel);
    }
    crate::context::current_input().and_then(|input| input.trace)
}
