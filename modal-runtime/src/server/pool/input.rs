//! One input as a pool holds it ([`Pending`]) and where its outcome goes
//! ([`Reply`]): to a waiting caller, a map stream, a spawned call, a
//! generator's caller or a spawned map.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::proto::{self, FailureKind, outcome};
use crate::server::calls::CallRecord;
use crate::server::telemetry::CallKind;
use crate::trace::TraceParent;

/// Where an input's outcome goes.
pub(crate) enum Reply {
    /// A caller waiting in `remote`.
    Once(oneshot::Sender<proto::Outcome>),
    /// One input of a map stream, with the KiB of map window it holds.
    Map {
        index: u64,
        kib: u32,
        sink: mpsc::UnboundedSender<(proto::MapOutput, u32)>,
    },
    /// A spawned call.
    Call(Arc<CallRecord>),
    /// A generator's caller: items as they come, then the outcome.
    Generator(mpsc::UnboundedSender<proto::GeneratorEvent>),
    /// One input of a spawned map.
    MapCall {
        index: u64,
        call: Arc<crate::server::calls::MapCall>,
    },
}

impl Reply {
    /// Hands the outcome over; only [`Pool::settle`](super::Pool::settle)
    /// does, which records it too.
    pub(super) fn deliver(self, outcome: proto::Outcome) {
        match self {
            Reply::Once(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Map { index, kib, sink } => {
                let output = proto::MapOutput {
                    index,
                    outcome: Some(outcome),
                };
                let _ = sink.send((output, kib));
            }
            Reply::Call(record) => record.complete(outcome),
            Reply::MapCall { index, call } => call.output(index, outcome),
            Reply::Generator(events) => {
                let _ = events.send(proto::GeneratorEvent {
                    event: Some(proto::generator_event::Event::Done(outcome)),
                });
            }
        }
    }

    /// The input was handed to a container as `attempt`: a detached call
    /// records it, so that a restart runs the input again as the next one.
    pub(crate) fn dispatched(&self, attempt: u32) {
        match self {
            Reply::Call(record) => record.dispatched(0, attempt),
            Reply::MapCall { index, call } => call.call.dispatched(*index, attempt),
            _ => {}
        }
    }

    /// The kind of call that waits for this outcome (a caller waiting in
    /// `remote` may be a web request: its [`Origin`] says so).
    fn kind(&self) -> CallKind {
        match self {
            Reply::Once(_) => CallKind::Remote,
            Reply::Map { .. } | Reply::MapCall { .. } => CallKind::Map,
            Reply::Call(_) => CallKind::Spawn,
            Reply::Generator(_) => CallKind::Generator,
        }
    }

    /// Whether nobody waits for this outcome any more (a cancelled call, a
    /// caller that went away): such an input is not run again.
    pub(crate) fn is_settled(&self) -> bool {
        match self {
            Reply::Once(tx) => tx.is_closed(),
            Reply::Map { sink, .. } => sink.is_closed(),
            Reply::Call(record) => record.is_done(),
            Reply::MapCall { call, .. } => call.call.is_done(),
            Reply::Generator(events) => events.is_closed(),
        }
    }
}

/// Whether a failure may be retried under the `retries` budget: the
/// function's own failures and timeouts; never bad input, nor infrastructure
/// (handled apart), nor a stopped app.
pub(super) fn is_retryable(outcome: &proto::Outcome) -> bool {
    matches!(
        &outcome.result,
        Some(outcome::Result::Failure(f))
            if matches!(
                FailureKind::try_from(f.kind),
                Ok(FailureKind::UserError | FailureKind::Panic | FailureKind::Timeout)
            )
    )
}

pub(crate) fn failure(kind: FailureKind, message: &str, container_id: &str) -> proto::Outcome {
    proto::Outcome {
        result: Some(outcome::Result::Failure(proto::Failure {
            kind: kind as i32,
            message: message.to_owned(),
            container_id: container_id.to_owned(),
            error_value: Bytes::new(),
        })),
    }
}

/// Re-runs of one input after the containers running it died, before it
/// fails: bounded, so that a crash loop ends.
pub(crate) const INFRA_RETRIES: u32 = 3;

/// Where an input comes from: the kind of call, and the trace it belongs
/// to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub kind: CallKind,
    /// The caller's trace context, checked: the input runs as its child.
    pub trace: Option<TraceParent>,
}

impl Origin {
    pub(crate) fn new(kind: CallKind, trace: Option<TraceParent>) -> Self {
        Origin { kind, trace }
    }

    /// Its trace context as inputs carry it to containers; empty for none.
    pub(crate) fn traceparent(&self) -> Bytes {
        self.trace
            .map(|t| Bytes::from(t.header()))
            .unwrap_or_default()
    }
}

/// An input waiting for a container, or running in one.
pub(crate) struct Pending {
    pub input_id: u64,
    /// The method, for a class instance; empty for a function.
    pub method: String,
    pub args: Bytes,
    /// A large argument payload's blob (then `args` is empty).
    pub args_blob: Option<crate::server::blobs::InputBlob>,
    pub reply: Reply,
    /// Which run of the input this is: 1 for the first.
    pub attempt: u32,
    /// Retries used up by user errors and timeouts (the `retries` budget).
    pub retries_used: u32,
    /// Re-runs after a container died under it (not counted against `retries`).
    pub infra_retries: u32,
    /// Its share of the control plane's inline budget, held until it has
    /// an outcome (or is dropped unrun).
    pub budget: Option<crate::server::budget::BudgetShare>,
    /// What kind of call it is.
    pub kind: CallKind,
    /// The caller's trace context, checked, as containers get it: empty
    /// for none, one copy for all the inputs of a map.
    pub traceparent: Bytes,
    /// When the control plane accepted it (its first attempt).
    pub accepted: Instant,
}

impl Pending {
    /// Whether the input may run again: not a generator, whose items may
    /// already have reached its caller.
    pub(super) fn may_rerun(&self) -> bool {
        !matches!(self.reply, Reply::Generator(_)) && !self.reply.is_settled()
    }
}

impl Pending {
    /// An input, of the kind of call its reply tells, in no trace.
    pub(crate) fn new(input_id: u64, method: String, args: Bytes, reply: Reply) -> Self {
        let reply_kind = reply.kind();
        Pending {
            input_id,
            method,
            args,
            args_blob: None,
            reply,
            attempt: 1,
            retries_used: 0,
            infra_retries: 0,
            budget: None,
            kind: reply_kind,
            traceparent: Bytes::new(),
            accepted: Instant::now(),
        }
    }
}
