//! `Function<Args, Ret>`: a typed handle on one function, local to this
//! program's app or looked up by name in a deployed app.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::callable::Callable;
use super::resolve::{Resolve, Target};
use super::{AutoscalerSettings, Client, FunctionCall, FunctionStats, MapStream};
use crate::registry::FunctionDescriptor;
use crate::{Error, codec};

/// A typed handle on a function: `Args` is the tuple of its parameters,
/// `Ret` its success type.
///
/// Handles from `#[app::function]` stubs call the function in this program's
/// app; [`Function::from_name`] gives one on a deployed app, checked against
/// the deployed types on first use.
pub struct Function<Args, Ret> {
    calls: Callable<Target, Args, Ret>,
}

impl<Args, Ret> Clone for Function<Args, Ret> {
    fn clone(&self) -> Self {
        Function {
            calls: self.calls.clone(),
        }
    }
}

impl<Args, Ret> fmt::Debug for Function<Args, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Function({})", self.calls.source())
    }
}

impl<Args, Ret> Function<Args, Ret> {
    /// A handle calling the function `target` names.
    const fn on(target: Target) -> Self {
        Function {
            calls: Callable::new(target, ""),
        }
    }

    /// The handle of a function linked into this binary.
    #[doc(hidden)]
    pub const fn from_descriptor(descriptor: &'static FunctionDescriptor) -> Self {
        Self::on(Target::Local(descriptor.name))
    }

    /// The handle a stub's `from_name` gives: checked against the
    /// stub's own `fingerprint`, which also covers the function's error type.
    #[doc(hidden)]
    pub fn from_name_checked(app: &str, name: &str, fingerprint: fn() -> String) -> Self {
        Self::on(Target::named(None, app, name, fingerprint))
    }

    /// Pins a deployed version (only for handles made by name).
    pub fn version(self, version: u32) -> Self {
        Self::on(self.calls.source().clone().version(version))
    }

    /// The function's registered name.
    pub fn name(&self) -> &str {
        self.calls.source().name()
    }

    // These never encode a value, so they need no bounds on `Args` and `Ret`.

    /// Looks the function up now rather than on first use, checking that the
    /// deployed types match `Args` and `Ret`.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.calls.source().hydrate().await
    }

    /// Keeps at least `min_containers` containers running (the warm pool),
    /// overriding `min_containers` until the app is deployed again: the
    /// same as [`Function::update_autoscaler`] with `min_containers` alone.
    pub async fn keep_warm(&self, min_containers: u32) -> Result<(), Error> {
        self.update_autoscaler(AutoscalerSettings::min_containers(min_containers))
            .await
    }

    /// Changes the function's autoscaler now, until the app is deployed
    /// again (across control-plane restarts); each setting left `None`
    /// keeps its value. See [`AutoscalerSettings`] for what is refused.
    pub async fn update_autoscaler(&self, settings: AutoscalerSettings) -> Result<(), Error> {
        self.calls.source().update_autoscaler(settings).await
    }

    /// Queued inputs, containers and running inputs, now.
    pub async fn get_current_stats(&self) -> Result<FunctionStats, Error> {
        self.calls.source().current_stats().await
    }

    /// The URL this function is served at, if it is a web endpoint
    /// (`#[app::web_endpoint]`, `#[app::web_app]`):
    /// `http://HOST:PORT/<environment>/<app>/<label>`, the same across
    /// redeploys. `None` for any other function, or when the control plane
    /// serves no HTTP.
    pub async fn web_url(&self) -> Result<Option<String>, Error> {
        self.calls.source().web_url().await
    }

    /// [`Function::web_url`], by Modal's newer name.
    pub async fn get_web_url(&self) -> Result<Option<String>, Error> {
        self.web_url().await
    }
}

impl<Args, Ret> Function<Args, Ret>
where
    Args: DeserializeOwned,
    Ret: DeserializeOwned,
{
    /// A handle on function `name` of deployed app `app`, latest version.
    /// Nothing is looked up until first use or [`Function::hydrate`], which
    /// check that the deployed function's argument and result types have
    /// the serde shapes of `Args` and `Ret` (see [`crate::shape`]).
    pub fn from_name(app: &str, name: &str) -> Self {
        Self::from_name_with(None, app, name)
    }

    /// [`Function::from_name`] of an app in `environment`, through the
    /// default client (`MODAL_SERVER_URL` or the config file).
    pub fn from_name_in(environment: &str, app: &str, name: &str) -> Result<Self, Error> {
        let client = Client::default_client()?.with_environment(environment)?;
        Ok(Self::from_name_with(Some(client), app, name))
    }

    /// [`Function::from_name`], looked up now: fails at once if the app or
    /// the function does not exist, or if the deployed function's types
    /// are not `Args` and `Ret` ([`Error::FingerprintMismatch`]).
    pub async fn lookup(app: &str, name: &str) -> Result<Self, Error> {
        let function = Self::from_name(app, name);
        function.hydrate().await?;
        Ok(function)
    }

    /// [`Function::lookup`] of an app in `environment`, through the
    /// default client (`MODAL_SERVER_URL` or the config file).
    pub async fn lookup_in(environment: &str, app: &str, name: &str) -> Result<Self, Error> {
        let function = Self::from_name_in(environment, app, name)?;
        function.hydrate().await?;
        Ok(function)
    }

    pub(crate) fn from_name_with(client: Option<Client>, app: &str, name: &str) -> Self {
        Self::on(Target::named(
            client,
            app,
            name,
            codec::fingerprint::<Args, Ret>,
        ))
    }
}

impl<Args, Ret> Function<Args, Ret>
where
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
{
    /// Runs one input in a container and waits for its result.
    pub async fn remote(&self, args: Args) -> Result<Ret, Error> {
        self.calls.remote(args).await
    }

    /// Queues one input and returns at once with a handle on its result.
    pub async fn spawn(&self, args: Args) -> Result<FunctionCall<Ret>, Error> {
        self.calls.spawn(args).await
    }

    /// Runs every input, in parallel across containers; results come back in
    /// input order. The first failure ends the stream with its error.
    pub fn map<I>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.map(inputs.into_iter())
    }

    /// Like [`Function::map`], over inputs that may fail to be produced (read
    /// from a file, say): the first `Err` ends the map with
    /// [`Error::InputIterator`], after the results of the inputs before it.
    pub fn try_map<I, E>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = Result<Args, E>>,
        I::IntoIter: Send + 'static,
        E: std::fmt::Display,
    {
        self.calls.try_map(inputs.into_iter())
    }

    /// Queues every input without waiting; the returned call's result is the
    /// list of results in input order (or the first failure).
    pub async fn spawn_map<I>(&self, inputs: I) -> Result<FunctionCall<Vec<Ret>>, Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.spawn_map(inputs.into_iter()).await
    }

    /// Runs every input for its effects; fails with the first failure.
    pub async fn for_each<I>(&self, inputs: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.calls.for_each(inputs.into_iter()).await
    }
}

impl<Args, T, R> Function<Args, crate::Generator<T, R>>
where
    Args: Serialize + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    /// Runs the generator in a container: its items arrive as they are
    /// produced; [`GenStream::finish`](super::GenStream::finish) gives its
    /// return value. Generators are not retried (their items may already
    /// have been seen).
    pub fn remote_gen(&self, args: Args) -> super::GenStream<T, R> {
        self.calls.remote_gen(args)
    }
}
