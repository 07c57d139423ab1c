//! OpenTelemetry (the `otel` feature): the `modal.call` and `modal.input`
//! spans exported over OTLP, with the caller's OpenTelemetry context as
//! their parent.
//!
//! Containers export on their own when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set. A calling program adds [`layer`] to its own `tracing` subscriber.

use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::TraceParent;

/// The environment variable naming the collector (e.g.
/// `http://127.0.0.1:4317`); containers export only when it is set.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The provider [`layer`] made: flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// A `tracing` layer that exports spans over OTLP/gRPC to the collector
/// that `OTEL_EXPORTER_OTLP_ENDPOINT` names (`http://localhost:4317` when
/// unset), as service `service_name` (unless `OTEL_SERVICE_NAME` says
/// otherwise). Call it inside a tokio runtime; call [`shutdown`] before
/// the process exits, or the last spans may be lost.
pub fn layer<S>(service_name: &str) -> Result<impl tracing_subscriber::Layer<S>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("cannot make the OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("modal-runtime");
    let _ = PROVIDER.set(provider);
    Ok(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports what is still buffered and stops exporting.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// The current `tracing` span's OpenTelemetry context, when it has a
/// valid one.
pub(super) fn current() -> Option<TraceParent> {
    of_span(&tracing::Span::current())
}

/// The OpenTelemetry context of `span`, when it has a valid one (an
/// OpenTelemetry layer records it).
fn of_span(span: &tracing::Span) -> Option<TraceParent> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    TraceParent::from_parts(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.is_sampled(),
    )
}

/// Makes `span` a child of `parent` (a remote context: the caller's), and
/// returns the context `span` itself has in OpenTelemetry, if an
/// OpenTelemetry layer records it.
pub(super) fn adopt(span: &tracing::Span, parent: Option<TraceParent>) -> Option<TraceParent> {
    if let Some(parent) = parent {
        let flags = if parent.sampled() {
            opentelemetry::trace::TraceFlags::SAMPLED
        } else {
            opentelemetry::trace::TraceFlags::default()
        };
        let remote = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(parent.trace_id().to_bytes()),
            opentelemetry::trace::SpanId::from_bytes(parent.span_id().to_bytes()),
            flags,
            true,
            opentelemetry::trace::TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(remote);
        let _ = span.set_parent(cx);
    }
    of_span(span)
}
