//! Classes from the caller's side: [`Cls<C>`] (the class, and its option
//! variants), [`Obj<C>`] (one instance: parameter values plus a variant) and
//! [`Method`] (one remote method of an instance, typed).
//!
//! An instance handle is lazy: on first use it is bound on the control
//! plane, which creates (once, then reuses) a pool of containers for that
//! exact set of parameters and options.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::function::Resolved;
use super::invoke::{self, Callee};
use super::{Client, FunctionCall, FunctionStats, MapStream, running_app};
use crate::class::{ClsDef, ClsMethods, build_and_enter, class_fingerprint};
use crate::options::ClsOptions;
use crate::{Error, codec, proto};

/// A class: `Model::cls()` in the program that defines it, or
/// `Cls::<Model>::from_name(app, "Model")` on a deployed app. Make instances
/// with [`Cls::instance`] (or the generated `Model::new(...)`).
pub struct Cls<C> {
    target: ClassTarget,
    options: Arc<ClsOptions>,
    _class: PhantomData<fn() -> C>,
}

#[derive(Clone)]
enum ClassTarget {
    /// Linked into this binary, run in this program's app.
    Local,
    /// A class of a deployed app.
    Named(Arc<NamedClass>),
}

struct NamedClass {
    client: Option<Client>,
    app: String,
    name: String,
    version: Option<u32>,
    resolved: OnceCell<Arc<Resolved>>,
}

impl<C> Clone for Cls<C> {
    fn clone(&self) -> Self {
        Cls {
            target: self.target.clone(),
            options: self.options.clone(),
            _class: PhantomData,
        }
    }
}

impl<C: ClsDef> fmt::Debug for Cls<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            ClassTarget::Local => write!(f, "Cls({})", C::NAME),
            ClassTarget::Named(n) => write!(f, "Cls({}/{})", n.app, n.name),
        }
    }
}

impl<C: ClsMethods> Cls<C> {
    /// The class as linked into this program, run in its app.
    pub fn this_app() -> Self {
        Cls {
            target: ClassTarget::Local,
            options: Arc::default(),
            _class: PhantomData,
        }
    }

    /// Class `name` of deployed app `app`, latest version. Nothing is looked
    /// up until first use or [`Cls::hydrate`]; then the deployed class's
    /// parameters and methods are checked against `C`'s.
    pub fn from_name(app: &str, name: &str) -> Self {
        Self::from_name_with(None, app, name)
    }

    pub(crate) fn from_name_with(client: Option<Client>, app: &str, name: &str) -> Self {
        Cls {
            target: ClassTarget::Named(Arc::new(NamedClass {
                client,
                app: app.to_owned(),
                name: name.to_owned(),
                version: None,
                resolved: OnceCell::new(),
            })),
            options: Arc::default(),
            _class: PhantomData,
        }
    }

    /// Pins a deployed version (only for classes looked up by name).
    pub fn version(self, version: u32) -> Self {
        let target = match self.target {
            ClassTarget::Named(n) => ClassTarget::Named(Arc::new(NamedClass {
                client: n.client.clone(),
                app: n.app.clone(),
                name: n.name.clone(),
                version: Some(version),
                resolved: OnceCell::new(),
            })),
            local => local,
        };
        Cls { target, ..self }
    }

    /// Looks the class up now rather than on first use.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.target.resolve::<C>().await.map(|_| ())
    }

    /// A variant with other options; its instances get their own containers.
    pub fn with_options(&self, options: ClsOptions) -> Self {
        self.stacked(&options)
    }

    /// A variant whose containers each run up to `max_inputs` inputs at
    /// once; the autoscaler aims for `target_inputs` per container.
    pub fn with_concurrency(&self, max_inputs: u32, target_inputs: u32) -> Self {
        self.stacked(&ClsOptions::new().concurrency(max_inputs, target_inputs))
    }

    /// A variant whose batched method gets batches of up to `max_batch_size`
    /// inputs, formed when full or `wait_ms` after their first input.
    pub fn with_batching(&self, max_batch_size: u32, wait_ms: u64) -> Self {
        self.stacked(&ClsOptions::new().batching(max_batch_size, wait_ms))
    }

    fn stacked(&self, later: &ClsOptions) -> Self {
        Cls {
            target: self.target.clone(),
            options: Arc::new(self.options.stack(later)),
            _class: PhantomData,
        }
    }

    /// An instance with these parameter values. Each distinct set of values
    /// (and of options) runs in its own containers.
    pub fn instance(&self, params: C::Params) -> Obj<C> {
        let wire = C::to_wire(params);
        let params = codec::encode(&wire).map_err(|e| e.to_string());
        Obj::new(self.target.clone(), self.options.clone(), params)
    }
}

impl ClassTarget {
    /// The class's own function on the control plane.
    async fn resolve<C: ClsMethods>(&self) -> Result<Arc<Resolved>, Error> {
        match self {
            ClassTarget::Local => {
                let app = running_app().ok_or_else(|| Error::NoApp {
                    function: C::NAME.to_owned(),
                })?;
                let info = app.functions.get(C::NAME).ok_or_else(|| Error::NoApp {
                    function: C::NAME.to_owned(),
                })?;
                Ok(Arc::new(Resolved {
                    client: app.client.clone(),
                    function_id: info.function_id,
                    app: app.name.clone(),
                    name: C::NAME.to_owned(),
                }))
            }
            ClassTarget::Named(n) => n
                .resolved
                .get_or_try_init(|| async {
                    let client = match &n.client {
                        Some(c) => c.clone(),
                        None => Client::default_client()?,
                    };
                    let info = client
                        .rpc()
                        .lookup_function(proto::LookupFunctionRequest {
                            app: n.app.clone(),
                            name: n.name.clone(),
                            version: n.version,
                        })
                        .await
                        .map_err(|s| client.status(s))?
                        .into_inner();
                    let expected = class_fingerprint::<C>();
                    if info.fingerprint != expected {
                        return Err(Error::FingerprintMismatch {
                            app: n.app.clone(),
                            function: n.name.clone(),
                            deployed: info.fingerprint,
                            expected,
                        });
                    }
                    Ok(Arc::new(Resolved {
                        client,
                        function_id: info.function_id,
                        app: info.app,
                        name: info.name,
                    }))
                })
                .await
                .cloned(),
        }
    }
}

/// One instance of class `C`: its parameter values and options. Its methods
/// are fields, reached through `Deref`: `model.predict.remote(x)`.
pub struct Obj<C: ClsMethods> {
    core: ObjCore,
    methods: C::Methods,
}

/// What an instance handle and its method handles share.
#[doc(hidden)]
#[derive(Clone)]
pub struct ObjCore(Arc<ObjInner>);

struct ObjInner {
    target: ClassTarget,
    options: Arc<ClsOptions>,
    /// The encoded parameters, or why they could not be encoded.
    params: Result<Bytes, String>,
    /// The instance's own function on the control plane, once bound.
    bound: OnceCell<Arc<Resolved>>,
    /// The instance `local` calls run on, built (and entered) on first use.
    local: OnceCell<Arc<dyn Any + Send + Sync>>,
}

impl<C: ClsMethods> Clone for Obj<C> {
    fn clone(&self) -> Self {
        Obj {
            core: self.core.clone(),
            methods: self.methods.clone(),
        }
    }
}

impl<C: ClsMethods> fmt::Debug for Obj<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Obj({})", C::NAME)
    }
}

impl<C: ClsMethods> Deref for Obj<C> {
    type Target = C::Methods;

    fn deref(&self) -> &C::Methods {
        &self.methods
    }
}

impl<C: ClsMethods> Obj<C> {
    fn new(target: ClassTarget, options: Arc<ClsOptions>, params: Result<Bytes, String>) -> Self {
        let core = ObjCore(Arc::new(ObjInner {
            target,
            options,
            params,
            bound: OnceCell::new(),
            local: OnceCell::new(),
        }));
        let methods = C::methods(&core);
        Obj { core, methods }
    }

    /// The same parameters with other options: a variant with its own containers.
    pub fn with_options(&self, options: ClsOptions) -> Self {
        self.stacked(&options)
    }

    /// The same parameters, each container running up to `max_inputs` at once.
    pub fn with_concurrency(&self, max_inputs: u32, target_inputs: u32) -> Self {
        self.stacked(&ClsOptions::new().concurrency(max_inputs, target_inputs))
    }

    /// The same parameters, with batches of up to `max_batch_size` inputs.
    pub fn with_batching(&self, max_batch_size: u32, wait_ms: u64) -> Self {
        self.stacked(&ClsOptions::new().batching(max_batch_size, wait_ms))
    }

    fn stacked(&self, later: &ClsOptions) -> Self {
        let inner = &self.core.0;
        Obj::new(
            inner.target.clone(),
            Arc::new(inner.options.stack(later)),
            inner.params.clone(),
        )
    }

    /// Binds the instance on the control plane now rather than on first call.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.core.bind::<C>().await.map(|_| ())
    }

    /// Keeps at least `min_containers` containers of this instance running.
    pub async fn keep_warm(&self, min_containers: u32) -> Result<(), Error> {
        invoke::keep_warm(&*self.core.bind::<C>().await?, min_containers).await
    }

    /// Queued inputs, containers and running inputs of this instance, now.
    pub async fn get_current_stats(&self) -> Result<FunctionStats, Error> {
        invoke::stats(&*self.core.bind::<C>().await?).await
    }
}

impl ObjCore {
    /// The instance's own function, created on the control plane on first use.
    async fn bind<C: ClsMethods>(&self) -> Result<Arc<Resolved>, Error> {
        let inner = &self.0;
        inner
            .bound
            .get_or_try_init(|| async {
                let params = inner.params.clone().map_err(|message| Error::Encode {
                    function: C::NAME.to_owned(),
                    message: format!("the parameters could not be encoded: {message}"),
                })?;
                let class = inner.target.resolve::<C>().await?;
                let options_json = if inner.options.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&*inner.options)
                        .map_err(|e| Error::Internal(e.to_string()))?
                };
                let info = class
                    .client
                    .rpc()
                    .bind_instance(proto::BindInstanceRequest {
                        function_id: class.function_id,
                        params,
                        options_json,
                    })
                    .await
                    .map_err(|s| class.client.status(s))?
                    .into_inner();
                Ok(Arc::new(Resolved {
                    client: class.client.clone(),
                    function_id: info.function_id,
                    app: class.app.clone(),
                    name: class.name.clone(),
                }))
            })
            .await
            .cloned()
    }

    /// The instance `local` calls run on: built here from the parameters,
    /// with `enter` run, once per instance handle.
    async fn local_instance<C: ClsMethods>(&self) -> Result<Arc<C>, Error> {
        let inner = &self.0;
        let instance = inner
            .local
            .get_or_try_init(|| async {
                let local_error = |message: String| Error::LocalInstance {
                    class: C::NAME.to_owned(),
                    message,
                };
                let params = inner.params.clone().map_err(local_error)?;
                let instance = build_and_enter::<C>(&params).await.map_err(local_error)?;
                Ok::<_, Error>(Arc::new(instance) as Arc<dyn Any + Send + Sync>)
            })
            .await?
            .clone();
        Ok(instance
            .downcast::<C>()
            .unwrap_or_else(|_| unreachable!("an instance handle only builds its own class")))
    }
}

/// One remote method of an instance, typed: `Args` is the tuple of its
/// parameters, `Ret` its success type, `Out` what it returns when run here
/// with `local`. Call it like a function: `model.predict.remote(x)`.
pub struct Method<C, Args, Ret, Out> {
    obj: ObjCore,
    name: &'static str,
    local: fn(Arc<C>, Args) -> BoxFuture<'static, Out>,
    _types: PhantomData<fn(Args) -> Ret>,
}

impl<C, Args, Ret, Out> Clone for Method<C, Args, Ret, Out> {
    fn clone(&self) -> Self {
        Method {
            obj: self.obj.clone(),
            name: self.name,
            local: self.local,
            _types: PhantomData,
        }
    }
}

impl<C: ClsDef, Args, Ret, Out> fmt::Debug for Method<C, Args, Ret, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Method({}.{})", C::NAME, self.name)
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
            obj: obj.clone(),
            name,
            local,
            _types: PhantomData,
        }
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<C, Args, Ret, Out> Method<C, Args, Ret, Out>
where
    C: ClsMethods,
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
    Out: Send + 'static,
{
    async fn callee(&self) -> Result<Callee, Error> {
        Ok(Callee {
            resolved: self.obj.bind::<C>().await?,
            method: self.name,
        })
    }

    /// Runs one input (an argument tuple) in a container and waits.
    pub async fn remote_tuple(&self, args: Args) -> Result<Ret, Error> {
        invoke::remote(&self.callee().await?, args).await
    }

    /// Queues one input (an argument tuple); returns at once.
    pub async fn spawn_tuple(&self, args: Args) -> Result<FunctionCall<Ret>, Error> {
        invoke::spawn(&self.callee().await?, args).await
    }

    /// Runs one input (an argument tuple) on an instance in this process,
    /// built and entered on first use.
    pub async fn local_tuple(&self, args: Args) -> Result<Out, Error> {
        let instance = self.obj.local_instance::<C>().await?;
        Ok((self.local)(instance, args).await)
    }

    /// Runs the method once per argument tuple, in parallel containers;
    /// results come back in input order.
    pub fn starmap<I>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        let this = self.clone();
        MapStream::start(
            Box::pin(async move { this.callee().await }),
            inputs.into_iter(),
        )
    }

    /// Queues every argument tuple without waiting; the returned call's
    /// result is the list of results in input order.
    pub async fn spawn_starmap<I>(&self, inputs: I) -> Result<FunctionCall<Vec<Ret>>, Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        super::map::spawn_map(self.callee().await?, inputs.into_iter()).await
    }

    /// Runs every argument tuple for its effects; fails with the first failure.
    pub async fn for_each_tuple<I>(&self, inputs: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.starmap(inputs).drain().await
    }
}

/// `remote(a, b)`, `spawn(a, b)`, `local(a, b)` with the arguments spread,
/// for every arity; `for_each` takes tuples (except for one argument).
macro_rules! spread_arguments {
    ($($arg:ident: $ty:ident),*) => {
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
                let this = self.clone();
                let args = ($($arg,)*);
                Box::pin(async move { this.remote_tuple(args).await })
            }

            /// Starts the method in a container without waiting.
            #[allow(clippy::too_many_arguments)]
            pub fn spawn(&self, $($arg: $ty),*) -> BoxFuture<'static, Result<FunctionCall<Ret>, Error>> {
                let this = self.clone();
                let args = ($($arg,)*);
                Box::pin(async move { this.spawn_tuple(args).await })
            }

            /// Runs the method here, on an instance built in this process
            /// (its `enter` hook runs first, once).
            #[allow(clippy::too_many_arguments)]
            pub fn local(&self, $($arg: $ty),*) -> BoxFuture<'static, Result<Out, Error>> {
                let this = self.clone();
                let args = ($($arg,)*);
                Box::pin(async move { this.local_tuple(args).await })
            }
        }
    };
}

macro_rules! for_each_over_tuples {
    ($($ty:ident),*) => {
        impl<C, $($ty,)* Ret, Out> Method<C, ($($ty,)*), Ret, Out>
        where
            C: ClsMethods,
            ($($ty,)*): Serialize + Send + 'static,
            Ret: DeserializeOwned + Send + 'static,
            Out: Send + 'static,
        {
            /// Runs the method once per argument tuple, discarding the
            /// results; fails on the first failed input.
            pub fn for_each<I>(&self, inputs: I) -> BoxFuture<'static, Result<(), Error>>
            where
                I: IntoIterator<Item = ($($ty,)*)>,
                I::IntoIter: Send + 'static,
            {
                let this = self.clone();
                let inputs = inputs.into_iter();
                Box::pin(async move { this.for_each_tuple(inputs).await })
            }
        }
    };
}

spread_arguments!();
spread_arguments!(a: A);
spread_arguments!(a: A, b: B);
spread_arguments!(a: A, b: B, c: C3);
spread_arguments!(a: A, b: B, c: C3, d: D);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F, g: G);
spread_arguments!(a: A, b: B, c: C3, d: D, e: E, f: F, g: G, h: H);
for_each_over_tuples!();
for_each_over_tuples!(A, B);
for_each_over_tuples!(A, B, C3);
for_each_over_tuples!(A, B, C3, D);
for_each_over_tuples!(A, B, C3, D, E);
for_each_over_tuples!(A, B, C3, D, E, F);
for_each_over_tuples!(A, B, C3, D, E, F, G);
for_each_over_tuples!(A, B, C3, D, E, F, G, H);

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
        let this = self.clone();
        let inputs = inputs.into_iter().map(|a| (a,));
        Box::pin(async move { this.spawn_starmap(inputs).await })
    }

    /// Runs the method once per input, discarding the results; fails on the
    /// first failed input.
    pub fn for_each<I>(&self, inputs: I) -> BoxFuture<'static, Result<(), Error>>
    where
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let this = self.clone();
        let inputs = inputs.into_iter().map(|a| (a,));
        Box::pin(async move { this.for_each_tuple(inputs).await })
    }
}
