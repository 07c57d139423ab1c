//! `Function<Args, Ret>`: a typed handle on one function, local to this
//! program's app or looked up by name in a deployed app.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::invoke::{self, Callee};
use super::outcome::CallSite;
use super::{Client, FunctionCall, FunctionStats, MapStream, running_app};
use crate::proto;
use crate::registry::FunctionDescriptor;
use crate::{Error, codec};

/// A typed handle on a function: `Args` is the tuple of its parameters,
/// `Ret` its success type.
///
/// Handles from `#[app::function]` stubs call the function in this program's
/// app; [`Function::from_name`] gives one on a deployed app, checked against
/// the deployed types on first use.
pub struct Function<Args, Ret> {
    target: Target,
    _types: PhantomData<fn(Args) -> Ret>,
}

#[derive(Clone)]
enum Target {
    /// A function linked into this binary, run in this program's app.
    Local(&'static FunctionDescriptor),
    /// A function of a deployed app.
    Named(Arc<Named>),
}

struct Named {
    /// The client to use; the default one when `None`.
    client: Option<Client>,
    app: String,
    name: String,
    version: Option<u32>,
    resolved: OnceCell<Arc<Resolved>>,
}

/// A function the control plane knows, ready to take inputs.
pub(crate) struct Resolved {
    pub client: Client,
    pub function_id: u64,
    pub app: String,
    pub name: String,
}

impl Resolved {
    /// Where outcomes of calls named `name` (`square`, `Model.predict`) come from.
    pub(crate) fn site<'a>(&'a self, name: &'a str) -> CallSite<'a> {
        CallSite {
            app: &self.app,
            function: name,
        }
    }
}

impl<Args, Ret> Clone for Function<Args, Ret> {
    fn clone(&self) -> Self {
        Function {
            target: self.target.clone(),
            _types: PhantomData,
        }
    }
}

impl<Args, Ret> fmt::Debug for Function<Args, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Local(d) => write!(f, "Function({})", d.name),
            Target::Named(n) => write!(f, "Function({}/{})", n.app, n.name),
        }
    }
}

impl<Args, Ret> Function<Args, Ret> {
    /// The handle of a function linked into this binary.
    #[doc(hidden)]
    pub const fn from_descriptor(descriptor: &'static FunctionDescriptor) -> Self {
        Function {
            target: Target::Local(descriptor),
            _types: PhantomData,
        }
    }

    /// A handle on function `name` of deployed app `app`, latest version.
    /// Nothing is looked up until first use or [`Function::hydrate`].
    pub fn from_name(app: &str, name: &str) -> Self {
        Self::from_name_with(None, app, name)
    }

    pub(crate) fn from_name_with(client: Option<Client>, app: &str, name: &str) -> Self {
        Function {
            target: Target::Named(Arc::new(Named {
                client,
                app: app.to_owned(),
                name: name.to_owned(),
                version: None,
                resolved: OnceCell::new(),
            })),
            _types: PhantomData,
        }
    }

    /// Pins a deployed version (only for handles made by name).
    pub fn version(self, version: u32) -> Self {
        match self.target {
            Target::Named(n) => Function {
                target: Target::Named(Arc::new(Named {
                    client: n.client.clone(),
                    app: n.app.clone(),
                    name: n.name.clone(),
                    version: Some(version),
                    resolved: OnceCell::new(),
                })),
                _types: PhantomData,
            },
            local => Function {
                target: local,
                _types: PhantomData,
            },
        }
    }

    pub(crate) async fn resolve(&self) -> Result<Arc<Resolved>, Error> {
        match &self.target {
            Target::Local(d) => {
                let app = running_app().ok_or_else(|| Error::NoApp {
                    function: d.name.to_owned(),
                })?;
                let info = app.functions.get(d.name).ok_or_else(|| Error::NoApp {
                    function: d.name.to_owned(),
                })?;
                // The running app's functions come from this very binary, so
                // their types match by construction.
                Ok(Arc::new(Resolved {
                    client: app.client.clone(),
                    function_id: info.function_id,
                    app: app.name.clone(),
                    name: d.name.to_owned(),
                }))
            }
            Target::Named(n) => n
                .resolved
                .get_or_try_init(|| lookup::<Args, Ret>(n))
                .await
                .cloned(),
        }
    }

    /// The function's registered name.
    pub fn name(&self) -> &str {
        match &self.target {
            Target::Local(d) => d.name,
            Target::Named(n) => &n.name,
        }
    }

    // These never encode a value, so they need no bounds on `Args` and `Ret`.

    /// Looks the function up now rather than on first use, checking that the
    /// deployed types match `Args` and `Ret`.
    pub async fn hydrate(&self) -> Result<(), Error> {
        self.resolve().await.map(|_| ())
    }

    /// Keeps at least `min_containers` containers running (the warm pool),
    /// overriding `min_containers` until the app is deployed again.
    pub async fn keep_warm(&self, min_containers: u32) -> Result<(), Error> {
        invoke::keep_warm(&*self.resolve().await?, min_containers).await
    }

    /// Queued inputs, containers and running inputs, now.
    pub async fn get_current_stats(&self) -> Result<FunctionStats, Error> {
        invoke::stats(&*self.resolve().await?).await
    }

    async fn callee(&self) -> Result<Callee, Error> {
        Ok(Callee {
            resolved: self.resolve().await?,
            method: "",
        })
    }
}

impl<Args, Ret> Function<Args, Ret>
where
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned + Send + 'static,
{
    /// Runs one input in a container and waits for its result.
    pub async fn remote(&self, args: Args) -> Result<Ret, Error> {
        invoke::remote(&self.callee().await?, args).await
    }

    /// Queues one input and returns at once with a handle on its result.
    pub async fn spawn(&self, args: Args) -> Result<FunctionCall<Ret>, Error> {
        invoke::spawn(&self.callee().await?, args).await
    }

    /// Runs every input, in parallel across containers; results come back in
    /// input order. The first failure ends the stream with its error.
    pub fn map<I>(&self, inputs: I) -> MapStream<Ret>
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

    /// Like [`Function::map`], over inputs that may fail to be produced (read
    /// from a file, say): the first `Err` ends the map with
    /// [`Error::InputIterator`], after the results of the inputs before it.
    pub fn try_map<I, E>(&self, inputs: I) -> MapStream<Ret>
    where
        I: IntoIterator<Item = Result<Args, E>>,
        I::IntoIter: Send + 'static,
        E: std::fmt::Display,
    {
        let this = self.clone();
        MapStream::start_fallible(
            Box::pin(async move { this.callee().await }),
            inputs.into_iter(),
        )
    }

    /// Queues every input without waiting; the returned call's result is the
    /// list of results in input order (or the first failure).
    pub async fn spawn_map<I>(&self, inputs: I) -> Result<FunctionCall<Vec<Ret>>, Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        super::map::spawn_map(self.callee().await?, inputs.into_iter()).await
    }

    /// Runs every input for its effects; fails with the first failure.
    pub async fn for_each<I>(&self, inputs: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        self.map(inputs).drain().await
    }
}

async fn lookup<Args, Ret>(named: &Named) -> Result<Arc<Resolved>, Error> {
    let client = match &named.client {
        Some(c) => c.clone(),
        None => Client::default_client()?,
    };
    let info = client
        .rpc()
        .lookup_function(proto::LookupFunctionRequest {
            app: named.app.clone(),
            name: named.name.clone(),
            version: named.version,
        })
        .await
        .map_err(|s| client.status(s))?
        .into_inner();
    let expected = codec::fingerprint::<Args, Ret>();
    if info.fingerprint != expected {
        return Err(Error::FingerprintMismatch {
            app: named.app.clone(),
            function: named.name.clone(),
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
        let this = self.clone();
        super::GenStream::start(
            Box::pin(async move {
                Ok(Callee {
                    resolved: this.resolve().await?,
                    method: "",
                })
            }),
            args,
        )
    }
}
