//! The two spans of a call: `modal.call` where it is made, `modal.input`
//! in the container that runs it. Both record the trace id, their own
//! span id and their parent's, so that without OpenTelemetry too a log
//! line of either side names its trace.

use super::TraceParent;

/// The span of one call made from here, and the context its callee runs
/// under (this span's): a child of [`super::current`], else a new trace.
/// Its `function` is recorded once the call knows it
/// (`span.record("function", name)`).
pub(crate) fn call_span(kind: &'static str) -> (tracing::Span, TraceParent) {
    let parent = super::current();
    let span = tracing::info_span!(
        "modal.call",
        kind,
        function = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    let own = own_context(&span, parent);
    record(&span, own, parent);
    (span, own)
}

/// The span a container runs one input in, under the `traceparent` the
/// input came with (a new trace without one), and the context its code
/// runs under (this span's).
///
/// Level DEBUG: a span per input, formatted for the container's log,
/// costs about a fifth of a trivial map's throughput. Log lines written
/// during an input name its trace all the same (the container's log
/// format starts them with `trace_id=`), and the OpenTelemetry export
/// (the `otel` feature) records the span whatever `RUST_LOG` says.
pub(crate) fn input_span(
    traceparent: &[u8],
    function: &str,
    method: &str,
    input_id: u64,
    attempt: u32,
) -> (tracing::Span, TraceParent) {
    let parent = if traceparent.is_empty() {
        None
    } else {
        TraceParent::check_bytes(traceparent).ok()
    };
    let span = tracing::debug_span!(
        "modal.input",
        function,
        method = tracing::field::Empty,
        input_id,
        attempt,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    if !method.is_empty() {
        span.record("method", method);
    }
    let own = own_context(&span, parent);
    record(&span, own, parent);
    (span, own)
}

/// The context `span` has: with OpenTelemetry recording it, its own ids
/// there; otherwise a child of `parent`, or a new trace.
fn own_context(span: &tracing::Span, parent: Option<TraceParent>) -> TraceParent {
    #[cfg(feature = "otel")]
    if let Some(own) = super::otel::adopt(span, parent) {
        return own;
    }
    let _ = span;
    match parent {
        Some(parent) => parent.child(),
        None => TraceParent::new_root(),
    }
}

fn record(span: &tracing::Span, own: TraceParent, parent: Option<TraceParent>) {
    if span.is_disabled() {
        return;
    }
    span.record("trace_id", tracing::field::display(own.trace_id()));
    span.record("span_id", tracing::field::display(own.span_id()));
    if let Some(parent) = parent {
        span.record("parent_span_id", tracing::field::display(parent.span_id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_joins_the_trace_it_came_with() {
        let caller = TraceParent::new_root();
        let (_, own) = input_span(caller.header().as_bytes(), "f", "", 1, 1);
        assert_eq!(own.trace_id(), caller.trace_id());
        assert_ne!(own.span_id(), caller.span_id());
        // Without one, or with one that is not valid: a trace of its own.
        let (_, alone) = input_span(b"", "f", "", 1, 1);
        let (_, bad) = input_span(b"00-zz", "f", "", 1, 1);
        assert_ne!(alone.trace_id(), bad.trace_id());
        assert_ne!(alone.trace_id(), caller.trace_id());
    }

    #[tokio::test]
    async fn a_call_joins_the_scoped_trace_or_starts_one() {
        let outer = TraceParent::new_root();
        let (_, inner) = super::super::scope(outer, async { call_span("remote") }).await;
        assert_eq!(inner.trace_id(), outer.trace_id());
        assert_ne!(inner.span_id(), outer.span_id());
        let (_, fresh) = call_span("remote");
        assert_ne!(fresh.trace_id(), outer.trace_id());
    }
}
