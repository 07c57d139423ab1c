//! Generators: functions whose results arrive as a stream of items, then a
//! final return value.
//!
//! A remote generator returns [`Generator<T, R>`]; its caller uses
//! `remote_gen` and reads items as the container produces them
//! ([`GenStream`]), then the return value, which is never lost.
//!
//! ```ignore
//! #[app::function]
//! fn countdown(from: u32) -> Generator<u32, &'static str> { ... }
//!
//! let mut items = countdown.remote_gen(3);
//! while let Some(n) = items.next().await { println!("{}", n?); }
//! println!("{}", items.finish().await?);
//! ```

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::codec::{CallFailure, UserFailure, encode_output};

/// What a generator produces: items, then one return value (`Err` is the
/// generator's own failure, reported to the caller as a user error).
pub struct Generator<T, R = ()> {
    steps: BoxStream<'static, Step<T, R>>,
}

enum Step<T, R> {
    Item(T),
    Return(Result<R, String>),
}

/// Sends items from a generator's body ([`Generator::new`]); waits while
/// the consumer is behind.
pub struct Yielder<T> {
    tx: mpsc::Sender<T>,
}

impl<T> Yielder<T> {
    /// Yields one item.
    pub async fn send(&self, item: T) {
        // The consumer only goes away with the whole generator.
        let _ = self.tx.send(item).await;
    }
}

impl<T: Send + 'static> Generator<T, ()> {
    /// A generator of a stream's items, returning `()`.
    pub fn from_stream(items: impl Stream<Item = T> + Send + 'static) -> Self {
        use futures::StreamExt;
        Generator {
            steps: items
                .map(Step::Item)
                .chain(futures::stream::once(async { Step::Return(Ok(())) }))
                .boxed(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Generator<T, R> {
    /// A generator whose body yields items through a [`Yielder`] and ends
    /// with its return value.
    pub fn new<F, Fut>(body: F) -> Self
    where
        F: FnOnce(Yielder<T>) -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(1);
        let body = body(Yielder { tx });
        Generator {
            steps: Box::pin(Driven {
                body: Some(Box::pin(async move { Ok(body.await) })),
                items: rx,
                ret: None,
            }),
        }
    }

    /// Like [`Generator::new`], for a body that may fail: an `Err` ends the
    /// generator and reaches the caller as the function's error.
    pub fn try_new<F, Fut, E>(body: F) -> Self
    where
        F: FnOnce(Yielder<T>) -> Fut,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        E: Display,
    {
        let (tx, rx) = mpsc::channel(1);
        let body = body(Yielder { tx });
        Generator {
            steps: Box::pin(Driven {
                body: Some(Box::pin(
                    async move { body.await.map_err(|e| format!("{e:#}")) },
                )),
                items: rx,
                ret: None,
            }),
        }
    }

    /// Runs the generator here: every item to `each`, then the return value.
    pub async fn run_local(mut self, mut each: impl FnMut(T)) -> Result<R, String> {
        use futures::StreamExt;
        while let Some(step) = self.steps.next().await {
            match step {
                Step::Item(item) => each(item),
                Step::Return(r) => return r,
            }
        }
        Err("the generator ended without a return value".into())
    }
}

/// A body and the channel it yields into, polled as one stream: items first,
/// the return value once the body is done and every item is out.
struct Driven<T, R> {
    body: Option<BoxFuture<'static, Result<R, String>>>,
    items: mpsc::Receiver<T>,
    ret: Option<Result<R, String>>,
}

// Nothing of `T` or `R` is ever pinned in place: they only pass through.
impl<T, R> Unpin for Driven<T, R> {}

impl<T, R> Stream for Driven<T, R> {
    type Item = Step<T, R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Step<T, R>>> {
        let this = self.get_mut();
        if let Poll::Ready(Some(item)) = this.items.poll_recv(cx) {
            return Poll::Ready(Some(Step::Item(item)));
        }
        if let Some(body) = &mut this.body {
            match body.as_mut().poll(cx) {
                Poll::Ready(r) => {
                    this.body = None;
                    this.ret = Some(r);
                    // The yielder is gone with the body: drain what it left.
                    this.items.close();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        match this.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(Step::Item(item))),
            _ => Poll::Ready(this.ret.take().map(Step::Return)),
        }
    }
}

/// One event of a generator as a container sends it.
pub enum GenEvent {
    Item(Result<Bytes, CallFailure>),
    Return(Result<Bytes, CallFailure>),
}

/// Container side: a generator's steps, encoded.
pub fn encode_generator<T, R>(generator: Generator<T, R>) -> BoxStream<'static, GenEvent>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
{
    encode_steps(generator, encode_output::<T>)
}

/// A generator's steps, each item encoded with `item`, the return value
/// as any result.
pub(crate) fn encode_steps<T, R>(
    generator: Generator<T, R>,
    item: fn(&T) -> Result<Bytes, CallFailure>,
) -> BoxStream<'static, GenEvent>
where
    T: Send + 'static,
    R: Serialize + Send + 'static,
{
    use futures::StreamExt;
    generator
        .steps
        .map(move |step| match step {
            Step::Item(value) => GenEvent::Item(item(&value)),
            Step::Return(Ok(r)) => GenEvent::Return(encode_output(&r)),
            Step::Return(Err(message)) => GenEvent::Return(Err(UserFailure::text(message))),
        })
        .boxed()
}

/// Container side: the steps of the generator an `async fn` returns.
pub fn encode_generator_future<T, R, F>(generator: F) -> BoxStream<'static, GenEvent>
where
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
    F: Future<Output = Generator<T, R>> + Send + 'static,
{
    steps_of_future(generator, encode_generator)
}

/// The steps of the generator `generator` resolves to, encoded by `encode`.
pub(crate) fn steps_of_future<T, R, F>(
    generator: F,
    encode: fn(Generator<T, R>) -> BoxStream<'static, GenEvent>,
) -> BoxStream<'static, GenEvent>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Future<Output = Generator<T, R>> + Send + 'static,
{
    use futures::StreamExt;
    futures::stream::once(generator).flat_map(encode).boxed()
}
