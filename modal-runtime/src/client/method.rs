//! `Method<C, Args, Ret, Out>`: a typed handle on one remote method of a
//! class instance, reached as a field of an [`Obj`](super::Obj):
//! `model.predict.remote(x)`.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::callable::Callable;
use super::{FunctionCall, MapStream, ObjCore};
use crate::Error;
use crate::class::{ClsDef, ClsMethods};

/// One remote method of an instance, typed: `Args` is the tuple of its
/// parameters, `Ret` its success type, `Out` what it returns when run here
/// with `local`. Call it like a function: `model.predict.remote(x)`.
pub struct Method<C, Args, Ret, Out> {
    calls: Callable<ObjCore, Args, Ret>,
    local: fn(Arc<C>, Args) -> BoxFuture<'static, Out>,
}

impl<C, Args, Ret, Out> Clone for Method<C, Args, Ret, Out> {
    fn clone(&self) -> Self {
        Method {
            calls: self.calls.clone(),
            local: self.local,
        }
    }
}

impl<C: ClsDef, Args, Ret, Out> fmt::Debug for Method<C, Args, Ret, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Method({}.{})", C::NAME, self.name())
    }
}

// Making a handle encodes nothing, so it needs no bounds on the types.
impl<C, Args, Ret, Out> Method<C, Args, Ret, Out> {
    /// The handle of method `name` of the instance `obj`; `local` runs it
    /// on a local instance.
    #[doc(hidden)]
    pub fn new(
        obj: &ObjCore,
        name: &'static str,
        local: fn(Arc<C>, Args) -> BoxFuture<'static, Out>,
    ) -> Self {
        Method {
            calls: Callable::new(obj.clone(), name),
            local,
        }
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.calls.method()
    }

    /// `call` on a clone of this handle, as a future that borrows nothing:
    /// what the forms with spread arguments return.
    fn detached<T, F>(&self, call: impl FnOnce(Self) -> F) -> BoxFuture<'static, T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        Box::pin(call(self.clone()))
    }
}

impl<C, Args, Ret, Out> Method<C, Args, Ret, Out>
where
    C: ClsMethods,
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
    Out: Send + 'static,
{
    /// Runs one input (an argument tuple) in a container and waits.
    pub async fn remote_tuple(&self, args: Args) -> Result<Ret, Error> {
        self.calls.remote(args).await
    }

    /// Queues one input (an argument tuple); returns at once.
    pub async fn spawn_tuple(&self, args: Args) -> Result<FunctionCall<Ret>, Error> {
        self.calls.spawn(args).await
    }

    /// Runs one input (an argument tuple) on an instance in this process,
    /// built and entered on first use; its `exit` runs when the last handle
    /// on the instance is dropped.
    pub async fn local_tuple(&self, args: Args) -> Result<Out, Error> {
        let instance = self.calls.source().local_instance::<C>().await?;
        Ok((self.local)(instance, args).await)
    }

    /// Runs the method once per argument tuple, in parallel containers;
    /// results come back in input order.
    pub fn starmap<I>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.map(inputs.into_iter())
    }

    /// Queues every argument tuple without waiting; the returned call's
    /// result is the list of results in input order.
    pub async fn spawn_starmap<I>(&self, inputs: I) -> Result<FunctionCall<Vec<Ret>>, Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.spawn_map(inputs.into_iter()).await
    }

    /// Runs every argument tuple for its effects; fails with the first failure.
    pub async fn for_each_tuple<I>(&self, inputs: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.for_each(inputs.into_iter()).await
    }
}

/// `remote(a, b)`, `spawn(a, b)`, `local(a, b)` with the arguments spread,
/// for every arity, and `for_each` over argument tuples (except for one
/// argument: its `for_each` takes the arguments themselves, see below).
macro_rules! spread_arguments {
    (@impl [$($arg:ident: $ty:ident),*] $($for_each:tt)*) => {
        impl<C, $($ty,)* Ret, Out> Method<C, ($($ty,)*), Ret, Out>
        where
            C: ClsMethods,
            ($($ty,)*): Serialize + Send + 'static,
            Ret: DeserializeOwned + Send + 'static,
            Out: Send + 'static,
        {
            /// Runs the method in a container and waits for its result.
            #[allow(clippy::too_many_arguments)]
            pub fn remote(&self, $($arg: $ty),*) -> BoxFuture<'static, Result<Ret, Error>> {
                let args = ($($arg,)*);
                self.detached(|this| async move { this.remote_tuple(args).await })
            }

            /// Starts the method in a container without waiting.
            #[allow(clippy::too_many_arguments)]
            pub fn spawn(&self, $($arg: $ty),*) -> BoxFuture<'static, Result<FunctionCall<Ret>, Error>> {
                let args = ($($arg,)*);
                self.detached(|this| async move { this.spawn_tuple(args).await })
            }

            /// Runs the method here, on an instance built in this process
            /// (its `enter` hook runs first, once; its `exit` hook when the
            /// last handle on the instance is dropped).
            #[allow(clippy::too_many_arguments)]
            pub fn local(&self, $($arg: $ty),*) -> BoxFuture<'static, Result<Out, Error>> {
                let args = ($($arg,)*);
                self.detached(|this| async move { this.local_tuple(args).await })
            }

            $($for_each)*
        }
    };
    (one $arg:ident: $ty:ident) => {
        spread_arguments!(@impl [$arg: $ty]);
    };
    ($($arg:ident: $ty:ident),*) => {
        spread_arguments!(@impl [$($arg: $ty),*]
            /// Runs the method once per argument tuple, discarding the
            /// results; fails on the first failed input.
            pub fn for_each<I>(&self, inputs: I) -> BoxFuture<'static, Result<(), Error>>
            where
                I: IntoIterator<Item = ($($ty,)*)>,
                I::IntoIter: Send + 'static,
            {
                let inputs = inputs.into_iter();
                self.detached(|this| async move { this.for_each_tuple(inputs).await })
            }
        );
    };
}

spread_arguments!();
spread_arguments!(one a: A);
spread_arguments!(a: A, b: B);
spread_arguments!(a: A, b: B, c: C3);
spread_arguments!(a: A, b: B, c: C3, d: D);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F, g: G);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F, g: G, h: H);

impl<C, A, Ret, Out> Method<C, (A,), Ret, Out>
where
    C: ClsMethods,
    A: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
    Out: Send + 'static,
{
    /// Runs the method once per input, in parallel containers; results come
    /// back in input order.
    pub fn map<I>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        self.starmap(inputs.into_iter().map(|a| (a,)))
    }

    /// Queues every input without waiting; the returned call's result is the
    /// list of results in input order.
    pub fn spawn_map<I>(
        &self,
        inputs: I,
    ) -> BoxFuture<'static, Result<FunctionCall<Vec<Ret>>, Error>>
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let inputs = inputs.into_iter().map(|a| (a,));
        self.detached(|this| async move { this.spawn_starmap(inputs).await })
    }

    /// Runs the method once per input, discarding the results; fails on the
    /// first failed input.
    pub fn for_each<I>(&self, inputs: I) -> BoxFuture<'static, Result<(), Error>>
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let inputs = inputs.into_iter().map(|a| (a,));
        self.detached(|this| async move { this.for_each_tuple(inputs).await })
    }
}
