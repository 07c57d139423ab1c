//! Classes: what `#[app::cls]` implements, and how a container serves one
//! instance.
//!
//! `#[app::cls]` on a struct implements [`ClsDef`] (name, options, parameters,
//! how an instance is built); on its `impl` block it implements
//! [`ClsMethods`] (the remote methods and the `enter` / `exit` hooks) and
//! registers the class. A class is served like one function whose containers
//! each build one instance: the parameters arrive when the container
//! connects, `enter` runs once, and every input names the method it calls.

use std::fmt::Display;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::client::ObjCore;
use crate::codec::{self, BatchOutcomes, CallFailure, panic_message};
use crate::options::FunctionOptions;
use crate::registry::MethodManifest;

/// What `#[app::cls]` on a struct declares: the class's name, options and
/// parameters, and how an instance is built from them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a class",
    label = "mark the struct `{Self}` with `#[app::cls]`",
    note = "a class needs `#[app::cls]` on its struct and on its `impl` block"
)]
pub trait ClsDef: Sized + Send + Sync + 'static {
    /// The parameters as callers give them: a generated struct with one
    /// public field per `#[app::parameter]`.
    type Params: Send + 'static;
    /// The parameters on the wire: a tuple of their types, in declaration order.
    type Wire: crate::__private::Remote;
    /// The name the class is registered under.
    const NAME: &'static str;
    /// Where the struct is defined, e.g. `model::Model`.
    const RUST_PATH: &'static str;
    /// Options from the attribute.
    const OPTIONS: FunctionOptions;
    /// The parameters in their wire form.
    fn to_wire(params: Self::Params) -> Self::Wire;
    /// A new instance: parameters set, every other field `Default`.
    fn build(wire: Self::Wire) -> Self;
    /// The parameters' names and types, part of the class's fingerprint.
    fn params_fingerprint() -> String;
}

/// What `#[app::cls]` on an `impl` block declares: the remote methods and
/// the lifecycle hooks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no remote methods",
    label = "mark an `impl {Self}` block with `#[app::cls]`",
    note = "a class needs `#[app::cls]` on its struct and on its `impl` block"
)]
pub trait ClsMethods: ClsDef {
    /// One typed [`Method`](crate::Method) handle per `#[app::method]`,
    /// reached through [`Obj`](crate::Obj)'s `Deref`.
    type Methods: Clone + Send + Sync + 'static;
    /// How a container runs each method.
    const METHODS: &'static [MethodDescriptor<Self>];
    /// The method handles of one instance handle.
    fn methods(obj: &ObjCore) -> Self::Methods;
    /// Runs the `#[app::enter]` hook, if any; returns the instance and how
    /// the hook went.
    fn enter(self) -> BoxFuture<'static, (Self, Result<(), String>)> {
        Box::pin(std::future::ready((self, Ok(()))))
    }
    /// Runs the `#[app::exit]` hook, if any.
    fn exit(self) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One remote method, as a container runs it.
pub struct MethodDescriptor<C> {
    pub name: &'static str,
    /// Argument tuple and success type, as for functions.
    pub fingerprint: fn() -> String,
    pub arity: usize,
    pub handler: MethodHandler<C>,
}

/// How a container runs one input (or batch) of a method.
pub enum MethodHandler<C> {
    /// An `async fn`: polled as a task on the container's runtime.
    Async(fn(Arc<C>, Bytes) -> BoxFuture<'static, Result<Bytes, CallFailure>>),
    /// A plain `fn`: run on a blocking thread.
    Blocking(fn(&C, Bytes) -> Result<Bytes, CallFailure>),
    /// A batched `async fn`: one call per batch, one outcome per input.
    BatchAsync(fn(Arc<C>, Vec<Bytes>) -> BoxFuture<'static, BatchOutcomes>),
    /// A batched plain `fn`, run on a blocking thread.
    BatchBlocking(fn(&C, Vec<Bytes>) -> BatchOutcomes),
}

// Fn pointers are `Copy` whatever `C` is; a derive would demand `C: Copy`.
impl<C> Clone for MethodHandler<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for MethodHandler<C> {}

/// The fingerprint callers of a class are checked against: its parameters
/// and every method's signature.
pub fn class_fingerprint<C: ClsMethods>() -> String {
    let methods: Vec<String> = C::METHODS
        .iter()
        .map(|m| format!("{}: {}", m.name, (m.fingerprint)()))
        .collect();
    format!(
        "class({}) {{ {} }}",
        C::params_fingerprint(),
        methods.join("; ")
    )
}

/// The manifest entries of a class's methods.
pub fn method_manifests<C: ClsMethods>() -> Vec<MethodManifest> {
    C::METHODS
        .iter()
        .map(|m| MethodManifest {
            name: m.name.to_owned(),
            fingerprint: (m.fingerprint)(),
            arity: m.arity,
        })
        .collect()
}

/// One instance, serving inputs in a container.
pub trait ServedInstance: Send + Sync {
    /// Starts one input of `method`.
    fn call(self: Arc<Self>, method: &str, args: Bytes) -> Invocation;
    /// Starts one batch of inputs of the batched `method`.
    fn call_batch(self: Arc<Self>, method: &str, args: Vec<Bytes>) -> BatchInvocation;
    /// Runs the `exit` hook once every input has finished.
    fn exit(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>>;
}

/// One input of a method, ready to run.
pub enum Invocation {
    Async(BoxFuture<'static, Result<Bytes, CallFailure>>),
    Blocking(Box<dyn FnOnce() -> Result<Bytes, CallFailure> + Send>),
    /// The method does not exist (or the input could not be run at all).
    Failed(CallFailure),
}

/// One batch of a batched function or method, ready to run: one outcome
/// per input, in order.
pub enum BatchInvocation {
    Async(BoxFuture<'static, Vec<Result<Bytes, CallFailure>>>),
    Blocking(Box<dyn FnOnce() -> Vec<Result<Bytes, CallFailure>> + Send>),
    /// The method does not exist or is not batched: every input fails so.
    Failed(CallFailure),
}

impl<C: ClsMethods> ServedInstance for C {
    fn call(self: Arc<Self>, method: &str, args: Bytes) -> Invocation {
        let Some(m) = C::METHODS.iter().find(|m| m.name == method) else {
            let known: Vec<&str> = C::METHODS.iter().map(|m| m.name).collect();
            return Invocation::Failed(CallFailure::BadInput(format!(
                "class `{}` has no method `{method}` (its methods: {})",
                C::NAME,
                known.join(", ")
            )));
        };
        match m.handler {
            MethodHandler::Async(run) => Invocation::Async(run(self, args)),
            MethodHandler::Blocking(run) => {
                Invocation::Blocking(Box::new(move || run(&self, args)))
            }
            // A lone input of a batched method is a batch of one.
            MethodHandler::BatchAsync(run) => Invocation::Async(Box::pin(
                run(self, vec![args]).map(|mut out| out.pop().unwrap_or_else(missing_outcome)),
            )),
            MethodHandler::BatchBlocking(run) => Invocation::Blocking(Box::new(move || {
                run(&self, vec![args]).pop().unwrap_or_else(missing_outcome)
            })),
        }
    }

    fn call_batch(self: Arc<Self>, method: &str, args: Vec<Bytes>) -> BatchInvocation {
        match C::METHODS
            .iter()
            .find(|m| m.name == method)
            .map(|m| m.handler)
        {
            Some(MethodHandler::BatchAsync(run)) => BatchInvocation::Async(run(self, args)),
            Some(MethodHandler::BatchBlocking(run)) => {
                BatchInvocation::Blocking(Box::new(move || run(&self, args)))
            }
            _ => BatchInvocation::Failed(CallFailure::BadInput(format!(
                "class `{}` has no batched method `{method}`",
                C::NAME
            ))),
        }
    }

    fn exit(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        match Arc::try_unwrap(self) {
            Ok(instance) => {
                Box::pin(AssertUnwindSafe(C::exit(instance)).catch_unwind().map(|r| {
                    r.unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p))))
                }))
            }
            Err(_) => Box::pin(std::future::ready(Err(
                "the instance is still in use, so `exit` did not run".to_owned(),
            ))),
        }
    }
}

fn missing_outcome() -> Result<Bytes, CallFailure> {
    Err(CallFailure::BadOutput(
        "the batched function returned no outcome for its input".into(),
    ))
}

/// Builds one instance from its encoded parameters and runs `enter`; the
/// container's start. An error is the text the caller sees.
pub fn start_instance<C: ClsMethods>(
    params: Bytes,
) -> BoxFuture<'static, Result<Arc<dyn ServedInstance>, String>> {
    Box::pin(async move {
        let instance = build_and_enter::<C>(&params).await?;
        Ok(Arc::new(instance) as Arc<dyn ServedInstance>)
    })
}

/// Decodes the parameters, builds the instance and runs its `enter` hook;
/// a panic in either is reported as an error.
pub(crate) async fn build_and_enter<C: ClsMethods>(params: &[u8]) -> Result<C, String> {
    let wire: C::Wire = codec::decode(params).map_err(|e| {
        format!(
            "the parameters of class `{}` do not decode as `{}`: {e}",
            C::NAME,
            std::any::type_name::<C::Wire>()
        )
    })?;
    let instance = std::panic::catch_unwind(AssertUnwindSafe(|| C::build(wire))).map_err(|p| {
        format!(
            "building an instance of `{}` panicked: {}",
            C::NAME,
            panic_message(&*p)
        )
    })?;
    let (instance, entered) = AssertUnwindSafe(C::enter(instance))
        .catch_unwind()
        .await
        .map_err(|p| format!("`enter` of `{}` panicked: {}", C::NAME, panic_message(&*p)))?;
    entered.map_err(|e| format!("`enter` of `{}` failed: {e}", C::NAME))?;
    Ok(instance)
}

/// Runs a synchronous hook on a blocking thread (it may take a while: a
/// model load) and hands the instance back.
pub fn run_hook_blocking<C, R>(
    instance: C,
    hook: fn(&mut C) -> R,
) -> BoxFuture<'static, (C, Result<(), String>)>
where
    C: Send + 'static,
    R: HookResult + 'static,
{
    Box::pin(async move {
        let mut instance = instance;
        match tokio::task::spawn_blocking(move || {
            let outcome = hook(&mut instance).into_hook_result();
            (instance, outcome)
        })
        .await
        {
            Ok(done) => done,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    })
}

/// What a lifecycle hook may return: nothing, or a `Result` whose error is
/// `Display`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a lifecycle hook",
    label = "`#[app::enter]` and `#[app::exit]` return `()` or `Result<(), E>` with `E: Display`"
)]
pub trait HookResult {
    fn into_hook_result(self) -> Result<(), String>;
}

impl HookResult for () {
    fn into_hook_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> HookResult for Result<(), E> {
    fn into_hook_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Runs a synchronous `exit` hook on a blocking thread.
pub fn run_exit_blocking<C, R>(
    instance: C,
    hook: fn(&mut C) -> R,
) -> BoxFuture<'static, Result<(), String>>
where
    C: Send + 'static,
    R: HookResult + 'static,
{
    Box::pin(run_hook_blocking(instance, hook).map(|(_, outcome)| outcome))
}
