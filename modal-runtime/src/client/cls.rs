//! Classes from the caller's side: [`Cls<C>`] (the class, and its option
//! variants) and [`Obj<C>`] (one instance: parameter values plus a variant),
//! whose methods are [`Method`](super::Method) handles.
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
use tokio::sync::OnceCell;

use super::resolve::{self, Found, Resolve, Resolved, Target};
use super::{AutoscalerSettings, Client, FunctionStats};
use futures::future::BoxFuture;

use crate::class::{ClsDef, ClsMethods, ServedInstance, build_and_enter, class_fingerprint};
use crate::codec::panic_message;
use crate::options::ClsOptions;
use crate::{Error, codec};

/// A class: `Model::cls()` in the program that defines it, or
/// `Cls::<Model>::from_name(app, "Model")` on a deployed app. Make instances
/// with [`Cls::instance`] (or the generated `Model::new(...)`).
pub struct Cls<C> {
    variant: Variant,
    _class: PhantomData<fn() -> C>,
}

/// What a class handle and its instances share: where the class is found
/// and the options of this variant.
#[derive(Clone)]
struct Variant {
    /// `C::NAME`, which errors about the class's instances give.
    class: &'static str,
    target: Target,
    options: Arc<ClsOptions>,
}

impl Variant {
    fn stacked(&self, later: &ClsOptions) -> Variant {
        Variant {
            options: Arc::new(self.options.stack(later)),
            ..self.clone()
        }
    }
}

/// `with_options`, `with_concurrency` and `with_batching`, for a handle with
/// a `stacked` method: classes and their instances make variants alike.
macro_rules! option_variants {
    () => {
        /// A variant with other options (an instance keeps its parameters);
        /// it runs in containers of its own.
        pub fn with_options(&self, options: ClsOptions) -> Self {
            self.stacked(&options)
        }

        /// A variant whose containers each run up to `max_inputs` inputs at
        /// once; the autoscaler aims for `target_inputs` per container.
        pub fn with_concurrency(&self, max_inputs: u32, target_inputs: u32) -> Self {
            self.stacked(&ClsOptions::new().concurrency(max_inputs, target_inputs))
        }

        /// A variant whose batched method gets batches of up to
        /// `max_batch_size` inputs, formed when full or `wait_ms` after their
        /// first input.
        pub fn with_batching(&self, max_batch_size: u32, wait_ms: u64) -> Self {
            self.stacked(&ClsOptions::new().batching(max_batch_size, wait_ms))
        }
    };
}

impl<C> Clone for Cls<C> {
    fn clone(&self) -> Self {
        Cls {
            variant: self.variant.clone(),
            _class: PhantomData,
        }
    }
}

impl<C: ClsDef> fmt::Debug for Cls<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cls({})", self.variant.target)
    }
}

impl<C: ClsMethods> Cls<C> {
    /// The class as linked into this program, run in its app.
    pub fn this_app() -> Self {
        Self::on(Target::Local(C::NAME))
    }

    /// Class `name` of deployed app `app`, latest version. Nothing is looked
    /// up until first use or [`Cls::hydrate`]; then the deployed class's
    /// parameters and methods are checked against `C`'s.
    pub fn from_name(app: &str, name: &str) -> Self {
        Self::from_name_with(None, app, name)
    }

    /// [`Cls::from_name`] of an app in `environment`, through the default
    /// client (`MODAL_SERVER_URL` or the config file).
    pub fn from_name_in(environment: &str, app: &str, name: &str) -> Result<Self, crate::Error> {
        let client = super::Client::default_client()?.with_environment(environment)?;
        Ok(Self::from_name_with(Some(client), app, name))
    }

    /// [`Cls::from_name`], looked up now: fails at once if the app or the
    /// class does not exist, or if the deployed class's parameters and
    /// methods are not `C`'s ([`Error::FingerprintMismatch`]).
    pub async fn lookup(app: &str, name: &str) -> Result<Self, Error> {
        let class = Self::from_name(app, name);
        class.hydrate().await?;
        Ok(class)
    }

    /// [`Cls::lookup`] of an app in `environment`, through the default
    /// client (`MODAL_SERVER_URL` or the config file).
    pub async fn lookup_in(environment: &str, app: &str, name: &str) -> Result<Self, Error> {
        let class = Self::from_name_in(environment, app, name)?;
        class.hydrate().await?;
        Ok(class)
    }

    pub(crate) fn from_name_with(client: Option<Client>, app: &str, name: &str) -> Self {
        Self::on(Target::named(client, app, name, class_fingerprint::<C>))
    }

    /// The class `target` names, with no options of its own.
    fn on(target: Target) -> Self {
        Cls {
            variant: Variant {
                class: C::NAME,
                target,
                options: Arc::default(),
            },
            _class: PhantomData,
        }
    }

    /// Pins a deployed version (only for classes looked up by name).
    pub fn version(self, version: u32) -> Self {
        Cls {
            variant: Variant {
                target: self.variant.target.version(version),
                ..self.variant
            },
            _class: PhantomData,
        }
    }

    /// Looks the class up now rather than on first use.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.variant.target.hydrate().await
    }

    option_variants!();

    fn stacked(&self, later: &ClsOptions) -> Self {
        Cls {
            variant: self.variant.stacked(later),
            _class: PhantomData,
        }
    }

    /// An instance with these parameter values. Each distinct set of values
    /// (and of options) runs in its own containers.
    pub fn instance(&self, params: C::Params) -> Obj<C> {
        let wire = C::to_wire(params);
        let params = codec::encode(&wire).map_err(|e| e.to_string());
        Obj::new(self.variant.clone(), params)
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
    variant: Variant,
    /// The encoded parameters, or why they could not be encoded.
    params: Result<Bytes, String>,
    /// The instance's own function on the control plane, once bound.
    bound: Found,
    /// The instance `local` calls run on, built (and entered) on first use;
    /// its `exit` runs when the last handle on the instance goes.
    local: OnceCell<LocalInstance>,
}

/// The instance `local` calls run on, as a container holds its own: built
/// and entered on first use, and its `#[app::exit]` hooks run when it is
/// dropped (with the last handle on the instance, `Obj` and method
/// handles alike), as a container runs them at shutdown.
///
/// `exit` runs to its end before the drop returns, so that whatever it
/// releases or writes is done once the handle is gone. It runs on a thread
/// of its own with a runtime of its own: a drop may happen with no runtime,
/// or inside one, where blocking on a future would stall (on a
/// current-thread runtime, deadlock) the runtime the drop happens on. In a
/// multi-threaded runtime the wait is marked as blocking
/// (`block_in_place`), so the worker's other tasks move on meanwhile; on a
/// current-thread runtime the runtime waits for `exit`, which therefore
/// must not wait on tasks of that runtime. An `exit` that fails (or
/// panics) is logged: a drop has nobody to tell. A call the instance still
/// runs elsewhere (a method that handed its `Arc<Self>` to a task of its
/// own) keeps `exit` from running, as in a container.
struct LocalInstance {
    class: &'static str,
    instance: Option<AnyInstance>,
    exit: fn(AnyInstance) -> BoxFuture<'static, Result<(), String>>,
}

/// An instance of some class, as an instance handle keeps it.
type AnyInstance = Arc<dyn Any + Send + Sync>;

impl LocalInstance {
    fn new<C: ClsMethods>(instance: C) -> Self {
        LocalInstance {
            class: C::NAME,
            instance: Some(Arc::new(instance)),
            exit: exit_local::<C>,
        }
    }

    fn get(&self) -> AnyInstance {
        self.instance
            .clone()
            .expect("a local instance is only taken when it is dropped")
    }
}

impl Drop for LocalInstance {
    fn drop(&mut self) {
        let Some(instance) = self.instance.take() else {
            return;
        };
        let exit = (self.exit)(instance);
        if let Err(e) = run_to_end(exit) {
            tracing::warn!(class = self.class, "`exit` of a local instance: {e}");
        }
    }
}

/// `exit` of a local instance of `C`.
fn exit_local<C: ClsMethods>(instance: AnyInstance) -> BoxFuture<'static, Result<(), String>> {
    let instance = instance
        .downcast::<C>()
        .unwrap_or_else(|_| unreachable!("a local instance only holds its own class"));
    ServedInstance::exit(instance)
}

/// Runs `future` to its end on a thread and runtime of its own, waiting
/// for it here (see [`LocalInstance`] for why).
fn run_to_end(future: BoxFuture<'static, Result<(), String>>) -> Result<(), String> {
    let thread = std::thread::Builder::new()
        .name("modal-local-exit".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime to run it on: {e}"))?
                .block_on(future)
        })
        .map_err(|e| format!("cannot start a thread to run it on: {e}"))?;
    let join = move || {
        thread
            .join()
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&*p))))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(join)
        }
        _ => join(),
    }
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
    fn new(variant: Variant, params: Result<Bytes, String>) -> Self {
        let core = ObjCore(Arc::new(ObjInner {
            variant,
            params,
            bound: Found::default(),
            local: OnceCell::new(),
        }));
        let methods = C::methods(&core);
        Obj { core, methods }
    }

    option_variants!();

    fn stacked(&self, later: &ClsOptions) -> Self {
        let inner = &self.core.0;
        Obj::new(inner.variant.stacked(later), inner.params.clone())
    }

    /// Binds the instance on the control plane now rather than on first call.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.core.hydrate().await
    }

    /// Keeps at least `min_containers` containers of this instance running:
    /// [`Obj::update_autoscaler`] with `min_containers` alone.
    pub async fn keep_warm(&self, min_containers: u32) -> Result<(), Error> {
        self.update_autoscaler(AutoscalerSettings::min_containers(min_containers))
            .await
    }

    /// Changes this instance's autoscaler now (its parameters and options
    /// name it; other instances keep theirs), until the app is deployed
    /// again; each setting left `None` keeps its value.
    pub async fn update_autoscaler(&self, settings: AutoscalerSettings) -> Result<(), Error> {
        self.core.update_autoscaler(settings).await
    }

    /// Queued inputs, containers and running inputs of this instance, now.
    pub async fn get_current_stats(&self) -> Result<FunctionStats, Error> {
        self.core.current_stats().await
    }
}

/// An instance resolves to its own function, bound on the control plane on
/// first use from its class, parameters and options (and bound again if
/// the control plane forgets it).
impl Resolve for ObjCore {
    async fn find(&self, ride_out: bool) -> Result<Arc<Resolved>, Error> {
        let inner = &self.0;
        inner
            .bound
            .get_or_find(|| async {
                let params = inner.params.clone().map_err(|message| Error::Encode {
                    function: inner.variant.class.to_owned(),
                    message: format!("the parameters could not be encoded: {message}"),
                })?;
                let target = &inner.variant.target;
                let options = &inner.variant.options;
                let class = target.find(ride_out).await?;
                let bound =
                    match resolve::bind_instance(&class, params.clone(), options, ride_out).await {
                        // The control plane forgot the class too: find it again.
                        Err(Error::FunctionIdUnknown { .. }) if target.forget(&class) => {
                            let class = target.find(ride_out).await?;
                            resolve::bind_instance(&class, params, options, ride_out).await?
                        }
                        bound => bound?,
                    };
                Ok(Arc::new(bound))
            })
            .await
    }

    fn forget(&self, stale: &Arc<Resolved>) -> bool {
        self.0.bound.forget(stale);
        true
    }
}

impl ObjCore {
    /// The instance `local` calls run on: built here from the parameters,
    /// with `enter` run, once per instance handle.
    pub(super) async fn local_instance<C: ClsMethods>(&self) -> Result<Arc<C>, Error> {
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
                Ok::<_, Error>(LocalInstance::new(instance))
            })
            .await?
            .get();
        Ok(instance
            .downcast::<C>()
            .unwrap_or_else(|_| unreachable!("an instance handle only builds its own class")))
    }
}
