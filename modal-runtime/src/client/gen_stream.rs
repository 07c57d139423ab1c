//! `GenStream<T, R>`: the items of a remote generator as they arrive, then
//! its return value.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::invoke::{self, Callee};
use super::outcome::{CallSite, decode_outcome};
use crate::{Error, codec, proto};

/// Items kept ahead of a slow reader; beyond it, the generator waits.
const AHEAD: usize = 64;

/// A remote generator's items, in order, as a `Stream` of `Result<T, Error>`
/// (a failure is its last item); [`GenStream::finish`] gives the return value.
pub struct GenStream<T, R> {
    items: mpsc::Receiver<Result<T, Error>>,
    done: Option<oneshot::Receiver<Result<R, Error>>>,
    driver: JoinHandle<()>,
}

impl<T, R> GenStream<T, R>
where
    T: DeserializeOwned + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    pub(crate) fn start<Args>(
        callee: futures::future::BoxFuture<'static, Result<Callee, Error>>,
        args: Args,
    ) -> Self
    where
        Args: serde::Serialize + Send + 'static,
    {
        let (items_tx, items) = mpsc::channel(AHEAD);
        let (done_tx, done) = oneshot::channel();
        // Here, in the caller's context: the task below has none.
        let (span, trace) = crate::trace::call_span("generator");
        let driver = tokio::spawn(
            async move {
                let ret = drive::<Args, T, R>(callee, args, trace, &items_tx).await;
                if let Err(e) = &ret {
                    // Iterating callers see the failure too.
                    let _ = items_tx.send(Err(copy_error(e))).await;
                }
                let _ = done_tx.send(ret);
            }
            .instrument(span),
        );
        GenStream {
            items,
            done: Some(done),
            driver,
        }
    }

    /// Skips the items not read yet and returns the generator's return value
    /// (or its failure).
    pub async fn finish(mut self) -> Result<R, Error> {
        while self.items.recv().await.is_some() {}
        match self.done.take() {
            Some(done) => done
                .await
                .unwrap_or_else(|_| Err(Error::Internal("the generator's reader stopped".into()))),
            None => Err(Error::Internal("the return value was already taken".into())),
        }
    }
}

impl<T, R> Stream for GenStream<T, R> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.poll_recv(cx)
    }
}

impl<T, R> Drop for GenStream<T, R> {
    fn drop(&mut self) {
        // Dropping the stream stops reading; the call's stream closes.
        self.driver.abort();
    }
}

async fn drive<Args, T, R>(
    callee: futures::future::BoxFuture<'static, Result<Callee, Error>>,
    args: Args,
    trace: crate::trace::TraceParent,
    items: &mpsc::Sender<Result<T, Error>>,
) -> Result<R, Error>
where
    Args: serde::Serialize,
    T: DeserializeOwned,
    R: DeserializeOwned,
{
    let callee = callee.await?;
    let name = callee.display_name();
    tracing::Span::current().record("function", name.as_str());
    let r = &callee.resolved;
    let request = invoke::request(&callee, args, trace).await?;
    let mut events = r
        .client
        .rpc()
        .invoke_generator(request)
        .await
        .map_err(|s| r.client.status(s))?
        .into_inner();
    let site = CallSite {
        app: &r.app,
        function: &name,
    };
    while let Some(event) = events.message().await.map_err(|s| r.client.status(s))? {
        match event.event {
            Some(proto::generator_event::Event::Items(batch)) => {
                for value in batch.values {
                    let item = codec::decode::<T>(&value).map_err(|e| Error::Decode {
                        function: name.clone(),
                        expected: std::any::type_name::<T>(),
                        message: e.to_string(),
                    })?;
                    if items.send(Ok(item)).await.is_err() {
                        // Nobody reads the items; the return value still counts.
                    }
                }
            }
            Some(proto::generator_event::Event::Done(outcome)) => {
                let outcome = invoke::fetch_outcome(&r.client, outcome).await?;
                return decode_outcome(Some(outcome), &site);
            }
            None => {}
        }
    }
    Err(Error::Internal(format!(
        "the control plane ended the generator `{name}` without its outcome"
    )))
}

/// The same error again, for the stream and for `finish`.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::User {
            function,
            message,
            value,
        } => Error::User {
            function: function.clone(),
            message: message.clone(),
            value: value.clone(),
        },
        other => Error::Internal(other.to_string()),
    }
}
