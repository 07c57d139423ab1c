//! The calls of a typed handle, written once: [`Function`](super::Function)
//! and [`Method`](super::Method) each wrap a [`Callable`] and give its calls
//! their public names.

use std::marker::PhantomData;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::invoke::{self, Callee};
use super::resolve::Resolve;
use super::{FunctionCall, GenStream, MapStream};
use crate::Error;

/// Calls taking `Args` and answering `Ret`, going to what `source` resolves
/// to: a function, or a class instance.
pub(crate) struct Callable<S, Args, Ret> {
    source: S,
    /// The method called on an instance; empty for a function.
    method: &'static str,
    _types: PhantomData<fn(Args) -> Ret>,
}

impl<S: Clone, Args, Ret> Clone for Callable<S, Args, Ret> {
    fn clone(&self) -> Self {
        Callable::new(self.source.clone(), self.method)
    }
}

// Making a handle encodes nothing, so it needs no bounds on the types.
impl<S, Args, Ret> Callable<S, Args, Ret> {
    pub(crate) const fn new(source: S, method: &'static str) -> Self {
        Callable {
            source,
            method,
            _types: PhantomData,
        }
    }

    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    pub(crate) fn method(&self) -> &'static str {
        self.method
    }
}

impl<S: Resolve, Args, Ret> Callable<S, Args, Ret> {
    async fn callee(&self) -> Result<Callee, Error> {
        callee(&self.source, self.method).await
    }

    /// The callee as a future that owns what it needs: streams resolve it
    /// once they start, outside the caller's borrow.
    fn callee_later(&self) -> BoxFuture<'static, Result<Callee, Error>> {
        let (source, method) = (self.source.clone(), self.method);
        Box::pin(async move { callee(&source, method).await })
    }
}

async fn callee<S: Resolve>(source: &S, method: &'static str) -> Result<Callee, Error> {
    Ok(Callee {
        resolved: source.resolve().await?,
        method,
    })
}

impl<S, Args, Ret> Callable<S, Args, Ret>
where
    S: Resolve,
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
{
    /// One input, run in a container; waits for its result.
    pub(crate) async fn remote(&self, args: Args) -> Result<Ret, Error> {
        invoke::remote(&self.source, self.method, args).await
    }

    /// One input, queued; returns at once with a handle on its result.
    pub(crate) async fn spawn(&self, args: Args) -> Result<FunctionCall<Ret>, Error> {
        invoke::spawn(&self.callee().await?, args).await
    }

    /// Every input, in parallel across containers; results in input order.
    pub(crate) fn map<I>(&self, inputs: I) -> MapStream<Ret>
    where
        I: Iterator<Item = Args> + Send + 'static,
    {
        MapStream::start(self.source.clone(), self.method, inputs)
    }

    /// Like [`Callable::map`], over inputs that may fail to be produced.
    pub(crate) fn try_map<I, E>(&self, inputs: I) -> MapStream<Ret>
    where
        I: Iterator<Item = Result<Args, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        MapStream::start_fallible(self.source.clone(), self.method, inputs)
    }

    /// Every input queued without waiting; the call's result is the list of
    /// results in input order.
    pub(crate) async fn spawn_map<I>(&self, inputs: I) -> Result<FunctionCall<Vec<Ret>>, Error>
    where
        I: Iterator<Item = Args> + Send + 'static,
    {
        super::map::spawn_map(self.callee().await?, inputs).await
    }

    /// Every input run for its effects; fails with the first failure.
    pub(crate) async fn for_each<I>(&self, inputs: I) -> Result<(), Error>
    where
        I: Iterator<Item = Args> + Send + 'static,
    {
        self.map(inputs).drain().await
    }
}

impl<S, Args, T, R> Callable<S, Args, crate::Generator<T, R>>
where
    S: Resolve,
    Args: Serialize + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    /// A generator run in a container, its items streamed as they come.
    pub(crate) fn remote_gen(&self, args: Args) -> GenStream<T, R> {
        GenStream::start(self.callee_later(), args)
    }
}
