//! `FunctionCall<Ret>`: the handle `spawn` returns, usable from any process.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::Client;
use super::outcome::{CallSite, decode_outcome};
use super::reconnect::Outage;
use crate::Error;
use crate::proto;

/// The longest one long poll is held; `get(None)` polls again after it.
const LONG_POLL: Duration = Duration::from_secs(55);

/// A spawned input whose result can be fetched later, here or elsewhere.
pub struct FunctionCall<Ret> {
    client: Client,
    call_id: String,
    _ret: PhantomData<fn() -> Ret>,
}

impl<Ret> Clone for FunctionCall<Ret> {
    fn clone(&self) -> Self {
        FunctionCall {
            client: self.client.clone(),
            call_id: self.call_id.clone(),
            _ret: PhantomData,
        }
    }
}

impl<Ret> fmt::Debug for FunctionCall<Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionCall({})", self.call_id)
    }
}

impl<Ret: DeserializeOwned> FunctionCall<Ret> {
    pub(crate) fn new(client: Client, call_id: String) -> Self {
        FunctionCall {
            client,
            call_id,
            _ret: PhantomData,
        }
    }

    /// Rebuilds a handle from [`FunctionCall::object_id`], e.g. in another
    /// process, using the default control plane.
    pub fn from_id(call_id: &str) -> Result<Self, Error> {
        Ok(Self::new(Client::default_client()?, call_id.to_owned()))
    }

    /// Rebuilds a handle from [`FunctionCall::object_id`] on the control
    /// plane `client` reaches.
    pub fn from_id_with(client: &Client, call_id: &str) -> Self {
        Self::new(client.clone(), call_id.to_owned())
    }

    /// The call's id, valid in any process that reaches the same control plane.
    pub fn object_id(&self) -> &str {
        &self.call_id
    }

    /// Cancels the call: it ends as [`Error::Cancelled`] and is never
    /// retried. A queued input never runs; a running one is stopped (an
    /// `async fn` at its next `.await`; a plain `fn` runs on, its result
    /// ignored). With `terminate_containers`, the container running it is
    /// stopped too, and its other inputs run on other containers.
    pub async fn cancel(&self, terminate_containers: bool) -> Result<(), Error> {
        // Safe to send again through a restart: a call's first outcome stands.
        let request = proto::CancelCallRequest {
            call_id: self.call_id.clone(),
            terminate_containers,
        };
        self.client
            .unary(true, |mut rpc| {
                let request = request.clone();
                async move { rpc.cancel_call(request).await }
            })
            .await?;
        Ok(())
    }

    /// Waits for every call; the results in order, or the first failure.
    pub async fn gather(
        calls: impl IntoIterator<Item = FunctionCall<Ret>>,
    ) -> Result<Vec<Ret>, Error> {
        futures::future::try_join_all(
            calls
                .into_iter()
                .map(|call| async move { call.get(None).await }),
        )
        .await
    }

    /// Waits for the result. With `Some(timeout)`, gives up after it with
    /// [`Error::OutputTimeout`] and leaves the call running. Rides out a
    /// control plane that goes away and comes back (within the client's
    /// reconnect timeout).
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Ret, Error> {
        let started = Instant::now();
        let mut outage = Outage::default();
        loop {
            let wait = match timeout {
                Some(t) => t.saturating_sub(started.elapsed()).min(LONG_POLL),
                None => LONG_POLL,
            };
            let (at, rpc) = self.client.rpc_at();
            match self.poll(rpc, wait).await {
                Ok(Some(result)) => return result,
                Ok(None) => outage = Outage::default(),
                // Past the caller's timeout, the lost connection is the answer.
                Err(e) if timeout.is_some_and(|t| started.elapsed() >= t) => return Err(e),
                Err(e) => self.client.ride_out(&mut outage, at, e).await?,
            }
            if let Some(t) = timeout
                && started.elapsed() >= t
            {
                return Err(Error::OutputTimeout {
                    call_id: self.call_id.clone(),
                    waited: t,
                });
            }
        }
    }

    /// One long poll of up to `wait` on `rpc`: the call's result once it has
    /// one, `None` while it runs, or why the poll failed.
    async fn poll(
        &self,
        mut rpc: crate::connection::Rpc,
        wait: Duration,
    ) -> Result<Option<Result<Ret, Error>>, Error> {
        let reply = rpc
            .get_call_outcome(proto::GetCallOutcomeRequest {
                call_id: self.call_id.clone(),
                timeout_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
            })
            .await
            .map_err(|s| self.client.status(s))?
            .into_inner();
        let Some(outcome) = reply.outcome else {
            return Ok(None);
        };
        let outcome = super::invoke::fetch_outcome(&self.client, outcome).await?;
        let site = CallSite {
            app: &reply.app,
            function: &reply.function,
        };
        Ok(Some(decode_outcome(Some(outcome), &site)))
    }
}
