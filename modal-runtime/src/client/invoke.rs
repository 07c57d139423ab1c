//! The calls every handle makes, whatever it names: a function, or one
//! method of a class instance.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::function::Resolved;
use super::outcome::decode_outcome;
use super::{FunctionCall, FunctionStats};
use crate::{Error, codec, proto};

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
    codec::encode(args).map_err(|e| Error::Encode {
        function: name.to_owned(),
        message: e.to_string(),
    })
}

pub(crate) async fn remote<Args: Serialize, Ret: DeserializeOwned>(
    callee: &Callee,
    args: Args,
) -> Result<Ret, Error> {
    let name = callee.display_name();
    let args = encode_args(&name, &args)?;
    let r = &callee.resolved;
    let reply = r
        .client
        .rpc()
        .invoke(proto::InvokeRequest {
            function_id: r.function_id,
            args,
            method: callee.method.to_owned(),
        })
        .await
        .map_err(|s| r.client.status(s))?;
    decode_outcome(Some(reply.into_inner()), &r.site(&name))
}

pub(crate) async fn spawn<Args: Serialize, Ret: DeserializeOwned>(
    callee: &Callee,
    args: Args,
) -> Result<FunctionCall<Ret>, Error> {
    let name = callee.display_name();
    let args = encode_args(&name, &args)?;
    let r = &callee.resolved;
    let reply = r
        .client
        .rpc()
        .spawn(proto::InvokeRequest {
            function_id: r.function_id,
            args,
            method: callee.method.to_owned(),
        })
        .await
        .map_err(|s| r.client.status(s))?;
    Ok(FunctionCall::new(
        r.client.clone(),
        reply.into_inner().call_id,
    ))
}

/// Sets the minimum number of containers of a resolved function or instance.
pub(crate) async fn keep_warm(resolved: &Resolved, min_containers: u32) -> Result<(), Error> {
    resolved
        .client
        .rpc()
        .set_warm_pool(proto::SetWarmPoolRequest {
            function_id: resolved.function_id,
            min_containers,
        })
        .await
        .map_err(|s| resolved.client.status(s))?;
    Ok(())
}

pub(crate) async fn stats(resolved: &Resolved) -> Result<FunctionStats, Error> {
    let s = resolved
        .client
        .rpc()
        .get_stats(proto::GetStatsRequest {
            function_id: resolved.function_id,
        })
        .await
        .map_err(|s| resolved.client.status(s))?
        .into_inner();
    Ok(FunctionStats {
        backlog: s.backlog,
        num_total_runners: s.containers,
        running_inputs: s.running_inputs,
    })
}
