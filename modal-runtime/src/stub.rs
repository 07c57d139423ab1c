//! What a function's generated stub calls through: one [`Calls`] value per
//! function, made by [`calls`], the one place where its argument tuple and
//! result are required to travel.
//!
//! Every use of serde in a stub (calling, mapping, the container's handler,
//! the fingerprint) goes through the function pointers made there, so a
//! parameter or result that is not serde gives one error, in the words of
//! [`Remote`], on the user's tokens: the stub's methods and handler compile
//! without bounds of their own and add no follow-on errors.

use bytes::Bytes;
use futures::future::BoxFuture;

use futures::stream::BoxStream;

use crate::client::{Function, FunctionCall, GenStream, MapStream};
use crate::codec::{self, BatchOutcomes, BatchOutput, CallFailure, Fallible};
use crate::error::Error;
use crate::generator::{GenEvent, Generator, encode_generator, encode_generator_future};

/// Compile-time check that a parameter or result can travel.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross to a container",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "arguments and results of a remote function travel through serde: derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, or use a type that implements them"
)]
pub trait Remote: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static {}

// Not recommended: rustc then reports `Remote` itself, with its message,
// rather than the missing serde trait behind it.
#[diagnostic::do_not_recommend]
impl<T> Remote for T where T: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static {}

/// The tuple of a remote function's arguments: each element is [`Remote`].
/// (Its impls name the element that cannot travel, where `(A, B): Remote`
/// would name the tuple.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross to a container",
    label = "an argument is not `Serialize + DeserializeOwned + Send + 'static`"
)]
pub trait RemoteArgs: Remote {}

macro_rules! remote_args {
    ($($name:ident)*) => {
        impl<$($name: Remote),*> RemoteArgs for ($($name,)*) {}
    };
}
remote_args!();
remote_args!(A);
remote_args!(A B);
remote_args!(A B C);
remote_args!(A B C D);
remote_args!(A B C D E);
remote_args!(A B C D E F);
remote_args!(A B C D E F G);
remote_args!(A B C D E F G H);
remote_args!(A B C D E F G H I);
remote_args!(A B C D E F G H I J);
remote_args!(A B C D E F G H I J K);
remote_args!(A B C D E F G H I J K L);
remote_args!(A B C D E F G H I J K L M);
remote_args!(A B C D E F G H I J K L M N);
remote_args!(A B C D E F G H I J K L M N O);
remote_args!(A B C D E F G H I J K L M N O P);

/// Never implemented: what a stub's `map` requires of its inputs when the
/// function takes other than one argument, so that calling it says to use
/// `starmap` (rather than rustc's "is not an iterator").
#[diagnostic::on_unimplemented(
    message = "`map` calls a function of one argument once per item; this function takes a different number of arguments",
    label = "use `starmap` here, with a tuple of arguments per input",
    note = "`f.starmap([(a1, b1), (a2, b2)])` runs `f(a1, b1)` and `f(a2, b2)`"
)]
pub trait MapNeedsOneArgument {}

/// The iterator a stub's `map` and `for_each` hand on.
pub type Inputs<A> = Box<dyn Iterator<Item = A> + Send + 'static>;

/// What a stub's `remote`, `spawn` and `for_each` return.
pub type CallFuture<T> = BoxFuture<'static, Result<T, Error>>;

/// A batch's decoded inputs, by slot, and the outcomes of those that failed
/// to decode (see [`codec::decode_batch`]).
type DecodedBatch<A> = (Vec<(usize, A)>, BatchOutcomes);

/// The serde-bound operations of one function's stub, as plain function
/// pointers: using them needs no bound, making them needs [`Remote`].
pub struct Calls<A, R> {
    remote: fn(&Function<A, R>, A) -> CallFuture<R>,
    spawn: fn(&Function<A, R>, A) -> CallFuture<FunctionCall<R>>,
    map: fn(&Function<A, R>, Inputs<A>) -> MapStream<R>,
    for_each: fn(&Function<A, R>, Inputs<A>) -> CallFuture<()>,
    decode_args: fn(&[u8]) -> Result<A, CallFailure>,
    encode_output: fn(&R) -> Result<Bytes, CallFailure>,
    decode_batch: fn(&[Bytes]) -> DecodedBatch<A>,
    fingerprint: fn() -> String,
}

/// The calls of a function taking the tuple `A` and yielding `R`; the one
/// bound a stub has.
pub const fn calls<A: RemoteArgs, R: Remote>() -> Calls<A, R> {
    Calls {
        remote: |f, args| {
            let f = f.clone();
            Box::pin(async move { f.remote(args).await })
        },
        spawn: |f, args| {
            let f = f.clone();
            Box::pin(async move { f.spawn(args).await })
        },
        map: |f, inputs| f.map(inputs),
        for_each: |f, inputs| {
            let f = f.clone();
            Box::pin(async move { f.for_each(inputs).await })
        },
        decode_args: codec::decode_args::<A>,
        encode_output: codec::encode_output::<R>,
        decode_batch: codec::decode_batch::<A>,
        fingerprint: codec::fingerprint::<A, R>,
    }
}

impl<A, R> Calls<A, R> {
    /// Runs one input in a container and waits for its result.
    pub fn remote(&self, f: &Function<A, R>, args: A) -> CallFuture<R> {
        (self.remote)(f, args)
    }

    /// Queues one input; the call gives its result later.
    pub fn spawn(&self, f: &Function<A, R>, args: A) -> CallFuture<FunctionCall<R>> {
        (self.spawn)(f, args)
    }

    /// Runs every input in parallel containers; results in input order.
    pub fn map(&self, f: &Function<A, R>, inputs: Inputs<A>) -> MapStream<R> {
        (self.map)(f, inputs)
    }

    /// Runs every input for its effects; fails with the first failure.
    pub fn for_each(&self, f: &Function<A, R>, inputs: Inputs<A>) -> CallFuture<()> {
        (self.for_each)(f, inputs)
    }

    /// Container side: the argument tuple of one input.
    pub fn decode_args(&self, payload: &[u8]) -> Result<A, CallFailure> {
        (self.decode_args)(payload)
    }

    /// Container side: an infallible function's result.
    pub fn encode_output(&self, value: &R) -> Result<Bytes, CallFailure> {
        (self.encode_output)(value)
    }

    /// Container side: a fallible function's result; an `Err` is a user
    /// error, with its own encoding when `encode_error` gives one (see
    /// [`codec::ErrorValue`]).
    pub fn encode_fallible<F: Fallible<Ok = R>>(
        &self,
        ret: F,
        encode_error: impl FnOnce(&F::Err) -> Option<Bytes>,
    ) -> Result<Bytes, CallFailure> {
        codec::encode_fallible_with(ret, self.encode_output, encode_error)
    }

    /// Container side of a batched function: see [`codec::run_batch`].
    pub fn run_batch<O: BatchOutput<Item = R>>(
        &self,
        payloads: Vec<Bytes>,
        f: impl FnOnce(Vec<A>) -> O,
    ) -> BatchOutcomes {
        codec::run_batch_with(&payloads, self.decode_batch, self.encode_output, f)
    }

    /// [`Calls::run_batch`] for an `async fn`.
    pub async fn run_batch_async<O, Fut>(
        &self,
        payloads: Vec<Bytes>,
        f: impl FnOnce(Vec<A>) -> Fut,
    ) -> BatchOutcomes
    where
        O: BatchOutput<Item = R>,
        Fut: Future<Output = O>,
    {
        codec::run_batch_async_with(&payloads, self.decode_batch, self.encode_output, f).await
    }

    /// The type signature callers are checked against.
    pub const fn fingerprint(&self) -> fn() -> String {
        self.fingerprint
    }
}

/// The handle of a generator taking the tuple `A`: typed with the
/// `Generator<T, R>` itself.
pub type GenFunction<A, T, R> = Function<A, Generator<T, R>>;

/// How a generator's stub starts it.
type RemoteGen<A, T, R> = fn(&GenFunction<A, T, R>, A) -> GenStream<T, R>;

/// [`Calls`] for a generator taking the tuple `A`, yielding items `T` and
/// returning `R`.
pub struct GenCalls<A, T, R> {
    remote_gen: RemoteGen<A, T, R>,
    decode_args: fn(&[u8]) -> Result<A, CallFailure>,
    encode: fn(Generator<T, R>) -> BoxStream<'static, GenEvent>,
    encode_future: fn(BoxFuture<'static, Generator<T, R>>) -> BoxStream<'static, GenEvent>,
    fingerprint: fn() -> String,
}

/// The calls of a generator; the one bound its stub has.
pub const fn gen_calls<A: RemoteArgs, T: Remote, R: Remote>() -> GenCalls<A, T, R> {
    GenCalls {
        remote_gen: |f, args| f.remote_gen(args),
        decode_args: codec::decode_args::<A>,
        encode: encode_generator::<T, R>,
        encode_future: encode_generator_future::<T, R, BoxFuture<'static, Generator<T, R>>>,
        fingerprint: codec::fingerprint_generator::<A, T, R>,
    }
}

impl<A, T, R> GenCalls<A, T, R> {
    /// Runs the generator in a container, its items streamed as they come.
    pub fn remote_gen(&self, f: &GenFunction<A, T, R>, args: A) -> GenStream<T, R> {
        (self.remote_gen)(f, args)
    }

    /// Container side: the argument tuple of one input.
    pub fn decode_args(&self, payload: &[u8]) -> Result<A, CallFailure> {
        (self.decode_args)(payload)
    }

    /// Container side: a blocking generator's steps, encoded.
    pub fn encode(&self, generator: Generator<T, R>) -> BoxStream<'static, GenEvent> {
        (self.encode)(generator)
    }

    /// Container side: the steps of the generator an async function's
    /// future resolves to, encoded.
    pub fn encode_future(
        &self,
        generator: BoxFuture<'static, Generator<T, R>>,
    ) -> BoxStream<'static, GenEvent> {
        (self.encode_future)(generator)
    }

    /// The type signature callers are checked against.
    pub const fn fingerprint(&self) -> fn() -> String {
        self.fingerprint
    }
}
