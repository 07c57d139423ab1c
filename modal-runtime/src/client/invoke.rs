//! The calls every handle makes, whatever it names: a function, or one
//! method of a class instance.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use super::outcome::decode_outcome;
use super::reconnect::Outage;
use super::resolve::{Resolve, Resolved};
use super::{Autoscaler, AutoscalerSettings, FunctionCall, FunctionStats};
use crate::trace::TraceParent;
use crate::{Error, codec, contract, payload, proto};

/// What a call goes to: a resolved function (or class instance) and, for a
/// class, the method.
#[derive(Clone)]
pub(crate) struct Callee {
    pub resolved: Arc<Resolved>,
    /// Empty for a function.
    pub method: &'static str,
}

impl Callee {
    /// `square`, or `Model.predict`.
    pub(crate) fn display_name(&self) -> String {
        display_name(&self.resolved.name, self.method)
    }
}

pub(crate) fn display_name(name: &str, method: &str) -> String {
    if method.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{method}")
    }
}

pub(crate) fn encode_args<Args: Serialize>(name: &str, args: &Args) -> Result<Bytes, Error> {
    let bytes = codec::encode(args).map_err(|e| Error::Encode {
        function: name.to_owned(),
        message: e.to_string(),
    })?;
    if bytes.len() > contract::MAX_PAYLOAD_BYTES {
        return Err(Error::PayloadTooLarge {
            function: name.to_owned(),
            size: bytes.len(),
            limit: contract::MAX_PAYLOAD_BYTES,
        });
    }
    Ok(bytes)
}

/// Encoded arguments as they travel: inline, or (when large) as the id of a
/// blob uploaded now. Returns `(inline, blob id)`; one of them is empty.
pub(crate) async fn stage_args(resolved: &Resolved, args: Bytes) -> Result<(Bytes, String), Error> {
    stage_args_with(resolved, args, false).await
}

/// [`stage_args`], with `ride_out` waiting for an unreachable control plane
/// to take the blob.
pub(crate) async fn stage_args_with(
    resolved: &Resolved,
    args: Bytes,
    ride_out: bool,
) -> Result<(Bytes, String), Error> {
    if args.len() <= contract::INLINE_LIMIT {
        return Ok((args, String::new()));
    }
    let client = &resolved.client;
    let mut outage = Outage::default();
    loop {
        let (at, rpc) = client.rpc_at();
        let error = match payload::upload(rpc, args.clone()).await {
            Ok(id) => return Ok((Bytes::new(), id)),
            Err(s) => client.status_at(at, s),
        };
        if !ride_out {
            return Err(error);
        }
        client.ride_out(&mut outage, at, error).await?;
    }
}

/// An outcome with a large value read back from the blob store.
pub(crate) async fn fetch_outcome(
    client: &super::Client,
    outcome: proto::Outcome,
) -> Result<proto::Outcome, Error> {
    payload::inline_outcome(client.rpc(), outcome)
        .await
        .map_err(|s| client.status(s))
}

/// The request for one input of `callee`, in trace context `trace`:
/// arguments encoded once, and uploaded as a blob when large.
pub(crate) async fn request<Args: Serialize>(
    callee: &Callee,
    args: Args,
    trace: TraceParent,
) -> Result<proto::InvokeRequest, Error> {
    let encoded = encode_args(&callee.display_name(), &args)?;
    let (args, args_blob) = stage_args(&callee.resolved, encoded).await?;
    Ok(proto::InvokeRequest {
        function_id: callee.resolved.function_id,
        args,
        method: callee.method.to_owned(),
        args_blob,
        traceparent: trace.header(),
    })
}

/// One input of what `source` names, waiting for its result. Rides out a
/// control plane that goes away: the input is sent again (under a fresh
/// lookup if the control plane forgot the function) until it has an outcome.
pub(crate) async fn remote<S: Resolve, Args: Serialize, Ret: DeserializeOwned>(
    source: &S,
    method: &'static str,
    args: Args,
) -> Result<Ret, Error> {
    let (span, trace) = crate::trace::call_span("remote");
    async move {
        let mut callee = find(source, method).await?;
        let name = callee.display_name();
        tracing::Span::current().record("function", name.as_str());
        // Encoded once; a resend shares these bytes.
        let encoded = encode_args(&name, &args)?;
        drop(args);
        let traceparent = trace.header();
        let mut outage = Outage::default();
        let mut renewals = 0;
        loop {
            let client = &callee.resolved.client;
            let (at, rpc) = client.rpc_at();
            match invoke_once(&callee, rpc, encoded.clone(), &traceparent).await {
                Ok(outcome) => return decode_outcome(Some(outcome), &callee.resolved.site(&name)),
                Err(Error::FunctionIdUnknown { .. })
                    if renewals < MAX_RENEWALS && source.forget(&callee.resolved) =>
                {
                    renewals += 1;
                    callee = find(source, method).await?;
                }
                Err(e) => client.ride_out(&mut outage, at, e).await?,
            }
        }
    }
    .instrument(span)
    .await
}

/// How many times in a row a call looks up again what the control plane
/// says it does not know, before it gives up with that error.
pub(crate) const MAX_RENEWALS: u32 = 3;

/// What `source` names, waiting for an unreachable control plane.
pub(crate) async fn find<S: Resolve>(source: &S, method: &'static str) -> Result<Callee, Error> {
    Ok(Callee {
        resolved: source.find(true).await?,
        method,
    })
}

/// Sends one input on `rpc` and waits for its outcome.
async fn invoke_once(
    callee: &Callee,
    mut rpc: crate::connection::Rpc,
    encoded: Bytes,
    traceparent: &str,
) -> Result<proto::Outcome, Error> {
    let r = &callee.resolved;
    let (args, args_blob) = stage_args(r, encoded).await?;
    let request = proto::InvokeRequest {
        function_id: r.function_id,
        args,
        method: callee.method.to_owned(),
        args_blob,
        traceparent: traceparent.to_owned(),
    };
    let reply = rpc.invoke(request).await.map_err(|s| r.client.status(s))?;
    fetch_outcome(&r.client, reply.into_inner()).await
}

pub(crate) async fn spawn<Args: Serialize, Ret: DeserializeOwned>(
    callee: &Callee,
    args: Args,
) -> Result<FunctionCall<Ret>, Error> {
    let (span, trace) = crate::trace::call_span("spawn");
    span.record("function", callee.display_name());
    async move {
        let request = request(callee, args, trace).await?;
        let r = &callee.resolved;
        let reply = r
            .client
            .rpc()
            .spawn(request)
            .await
            .map_err(|s| r.client.status(s))?;
        Ok(FunctionCall::new(
            r.client.clone(),
            reply.into_inner().call_id,
        ))
    }
    .instrument(span)
    .await
}

/// Changes the autoscaler settings of a resolved function or instance
/// (the same request again changes nothing: it rides through a restart).
pub(crate) async fn update_autoscaler(
    resolved: &Resolved,
    settings: AutoscalerSettings,
) -> Result<(), Error> {
    let request = proto::UpdateAutoscalerRequest {
        function_id: resolved.function_id,
        min_containers: settings.min_containers,
        max_containers: settings.max_containers,
        buffer_containers: settings.buffer_containers,
        // Out of range either way: the control plane names it.
        scaledown_window_secs: settings
            .scaledown_window
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
    };
    resolved
        .client
        .unary(true, |mut rpc| async move {
            rpc.update_autoscaler(request).await
        })
        .await?;
    Ok(())
}

pub(crate) async fn stats(resolved: &Resolved) -> Result<FunctionStats, Error> {
    let request = proto::GetStatsRequest {
        function_id: resolved.function_id,
    };
    let s = resolved
        .client
        .unary(true, |mut rpc| async move { rpc.get_stats(request).await })
        .await?;
    let autoscaler = s.autoscaler.unwrap_or_default();
    Ok(FunctionStats {
        backlog: s.backlog,
        num_total_runners: s.containers,
        running_inputs: s.running_inputs,
        autoscaler: Autoscaler {
            min_containers: autoscaler.min_containers,
            max_containers: autoscaler.max_containers,
            buffer_containers: autoscaler.buffer_containers,
            scaledown_window: std::time::Duration::from_secs(u64::from(
                autoscaler.scaledown_window_secs,
            )),
        },
    })
}
