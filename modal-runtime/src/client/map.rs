//! `MapStream<Ret>`: the ordered results of a map, with bounded memory.
//!
//! Inputs are read from the caller's iterator on a blocking thread (it may be
//! slow or lazy), encoded once and sent many per message. At most [`WINDOW`]
//! inputs are between "sent" and "handed to the caller", which bounds both the
//! control plane's share of this map and the reorder buffer here.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use futures::future::BoxFuture;

use super::invoke::Callee;
use super::outcome::decode_outcome;
use crate::proto::{self, MapInput, MapRequest};
use crate::{Error, codec};

/// Inputs in flight per map (sent, not yet handed to the caller).
const WINDOW: usize = 8192;
/// Inputs per request message.
const CHUNK: usize = 512;

type Starter<Ret> = Box<dyn FnOnce(mpsc::Sender<Result<Ret, Error>>) -> JoinHandle<()> + Send>;

/// The results of a map, in input order. A `Stream` of `Result<Ret, Error>`;
/// after the first error it ends.
pub struct MapStream<Ret> {
    starter: Option<Starter<Ret>>,
    results: Option<mpsc::Receiver<Result<Ret, Error>>>,
    driver: Option<JoinHandle<()>>,
}

impl<Ret: DeserializeOwned + Send + 'static> MapStream<Ret> {
    /// A map over `inputs` of whatever `callee` resolves to.
    pub(crate) fn start<Args, I>(
        callee: BoxFuture<'static, Result<Callee, Error>>,
        inputs: I,
    ) -> Self
    where
        Args: Serialize + Send + 'static,
        I: Iterator<Item = Args> + Send + 'static,
    {
        // Nothing runs until the stream is first polled (inside a runtime).
        let starter: Starter<Ret> = Box::new(move |out| {
            tokio::spawn(async move {
                if let Err(e) = drive(callee, inputs, out.clone()).await {
                    let _ = out.send(Err(e)).await;
                }
            })
        });
        MapStream {
            starter: Some(starter),
            results: None,
            driver: None,
        }
    }

    /// Collects every result, or returns the first error.
    pub async fn collect_vec(mut self) -> Result<Vec<Ret>, Error> {
        let mut all = Vec::new();
        while let Some(r) = futures::StreamExt::next(&mut self).await {
            all.push(r?);
        }
        Ok(all)
    }
}

impl<Ret> Stream for MapStream<Ret> {
    type Item = Result<Ret, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(starter) = this.starter.take() {
            let (tx, rx) = mpsc::channel(CHUNK);
            this.driver = Some(starter(tx));
            this.results = Some(rx);
        }
        match this.results.as_mut() {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<Ret> Drop for MapStream<Ret> {
    fn drop(&mut self) {
        // Dropping the stream ends the map: its request stream closes.
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

async fn drive<Args, Ret, I>(
    callee: BoxFuture<'static, Result<Callee, Error>>,
    inputs: I,
    out: mpsc::Sender<Result<Ret, Error>>,
) -> Result<(), Error>
where
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
    I: Iterator<Item = Args> + Send + 'static,
{
    let callee = callee.await?;
    let name = callee.display_name();
    let resolved = callee.resolved.clone();
    let window = Arc::new(Semaphore::new(WINDOW));
    // However the map ends (done, failed, dropped), the feeder stops waiting.
    let _close_window = CloseOnDrop(window.clone());
    let (requests, request_stream) = mpsc::channel::<MapRequest>(4);
    let feeder = {
        let window = window.clone();
        let callee = callee.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || feed(inputs, &callee, &window, &requests, &runtime))
    };
    let mut responses = resolved
        .client
        .rpc()
        .map(ReceiverStream::new(request_stream))
        .await
        .map_err(|s| resolved.client.status(s))?
        .into_inner();

    let site = resolved.site(&name);
    let mut reorder = Reorder::default();
    while let Some(batch) = responses
        .message()
        .await
        .map_err(|s| resolved.client.status(s))?
    {
        for output in batch.outputs {
            reorder.insert(output.index, output.outcome);
        }
        while let Some(outcome) = reorder.pop_ready() {
            let result = decode_outcome::<Ret>(outcome, &site);
            let failed = result.is_err();
            if out.send(result).await.is_err() || failed {
                // The caller is gone, or the first failure ends the map.
                return Ok(());
            }
            window.add_permits(1);
        }
    }
    match feeder.await {
        Ok(Ok(sent)) if sent == reorder.next => Ok(()),
        Ok(Ok(sent)) => Err(Error::Internal(format!(
            "the control plane ended a map of `{name}` after {} of {sent} results",
            reorder.next
        ))),
        Ok(Err(e)) => Err(e),
        Err(join) => Err(Error::Internal(format!(
            "the input iterator of a map of `{name}` panicked: {}",
            join.try_into_panic()
                .map(|p| codec::panic_message(&*p))
                .unwrap_or_else(|_| "cancelled".into())
        ))),
    }
}

/// Reads the caller's iterator and sends inputs while the window allows.
/// Returns how many inputs were sent.
fn feed<Args: Serialize>(
    inputs: impl Iterator<Item = Args>,
    callee: &Callee,
    window: &Semaphore,
    requests: &mpsc::Sender<MapRequest>,
    runtime: &tokio::runtime::Handle,
) -> Result<u64, Error> {
    let mut inputs = inputs.peekable();
    let mut index = 0_u64;
    while inputs.peek().is_some() {
        // Wait for room, then take as much room as there is, up to a chunk.
        match runtime.block_on(window.acquire()) {
            Ok(permit) => permit.forget(),
            Err(_) => return Ok(index),
        }
        let mut room = 1;
        while room < CHUNK {
            match window.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    room += 1;
                }
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(room);
        for args in inputs.by_ref().take(room) {
            let args = codec::encode(&args).map_err(|e| Error::Encode {
                function: callee.display_name(),
                message: format!("input {index}: {e}"),
            })?;
            batch.push(MapInput { index, args });
            index += 1;
        }
        if batch.len() < room {
            window.add_permits(room - batch.len());
        }
        let request = MapRequest {
            function_id: callee.resolved.function_id,
            inputs: batch,
            method: callee.method.to_owned(),
        };
        if runtime.block_on(requests.send(request)).is_err() {
            // The map ended early (a failure, or the caller dropped it).
            return Ok(index);
        }
    }
    Ok(index)
}

struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Outputs that arrived ahead of an earlier one, held until it arrives.
#[derive(Default)]
struct Reorder {
    next: u64,
    pending: VecDeque<Option<Option<proto::Outcome>>>,
}

impl Reorder {
    fn insert(&mut self, index: u64, outcome: Option<proto::Outcome>) {
        let Some(offset) = index.checked_sub(self.next) else {
            return; // a duplicate of a delivered output
        };
        let offset = offset as usize;
        if self.pending.len() <= offset {
            self.pending.resize(offset + 1, None);
        }
        self.pending[offset] = Some(outcome);
    }

    fn pop_ready(&mut self) -> Option<Option<proto::Outcome>> {
        match self.pending.front() {
            Some(Some(_)) => {
                self.next += 1;
                self.pending.pop_front().flatten()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: u8) -> Option<proto::Outcome> {
        Some(proto::Outcome {
            result: Some(proto::outcome::Result::Value(vec![v].into())),
        })
    }

    #[test]
    fn reorder_releases_in_input_order() {
        let mut r = Reorder::default();
        r.insert(2, value(2));
        r.insert(1, value(1));
        assert!(r.pop_ready().is_none());
        r.insert(0, value(0));
        let got: Vec<_> = std::iter::from_fn(|| r.pop_ready()).collect();
        assert_eq!(got, vec![value(0), value(1), value(2)]);
        assert_eq!(r.next, 3);
    }
}
