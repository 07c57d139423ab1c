//! Finding on the control plane what a handle names: a function or class
//! linked into this binary (run in this program's app), one of a deployed
//! app looked up by name and version and checked against the caller's
//! types, or a class instance bound from its class.

use std::fmt;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::outcome::CallSite;
use super::{AutoscalerSettings, Client, FunctionStats, invoke, running_app};
use crate::options::ClsOptions;
use crate::{Error, codec, proto};

/// A function the control plane knows, ready to take inputs.
pub(crate) struct Resolved {
    pub client: Client,
    pub function_id: u64,
    pub app: String,
    pub name: String,
    /// Its URL, if it is a web endpoint.
    pub web_url: Option<String>,
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

/// A handle that stands for a function on the control plane: a function, a
/// class, or a class instance. What it stands for is found on first use,
/// and found again if the control plane forgets it (it restarted).
pub(crate) trait Resolve: Clone + Send + Sync + 'static {
    /// What it stands for; with `ride_out`, waiting for an unreachable
    /// control plane to come back.
    fn find(&self, ride_out: bool) -> impl Future<Output = Result<Arc<Resolved>, Error>> + Send;

    /// Drops `stale` (which the control plane no longer knows) so that the
    /// next [`Resolve::find`] looks it up again. `false` when it cannot be
    /// looked up again.
    fn forget(&self, stale: &Arc<Resolved>) -> bool;

    fn resolve(&self) -> impl Future<Output = Result<Arc<Resolved>, Error>> + Send {
        self.find(false)
    }

    /// Finds it now rather than on first use, with the same checks.
    fn hydrate(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { self.resolve().await.map(|_| ()) }
    }

    /// Changes its autoscaler settings (each `None` keeps its value).
    fn update_autoscaler(
        &self,
        settings: AutoscalerSettings,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async move { invoke::update_autoscaler(&*self.resolve().await?, settings).await }
    }

    /// Its URL, if it is a web endpoint.
    fn web_url(&self) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        async { Ok(self.resolve().await?.web_url.clone()) }
    }

    fn current_stats(&self) -> impl Future<Output = Result<FunctionStats, Error>> + Send {
        async { invoke::stats(&*self.resolve().await?).await }
    }
}

/// What a handle found on the control plane, kept until the control plane
/// no longer knows it.
#[derive(Default)]
pub(crate) struct Found {
    cell: RwLock<Arc<OnceCell<Arc<Resolved>>>>,
}

impl Found {
    /// What was found, or what `find` finds now (once, however many callers
    /// wait for it).
    pub(crate) async fn get_or_find<F, Fut>(&self, find: F) -> Result<Arc<Resolved>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<Resolved>, Error>>,
    {
        let cell = {
            let cell = self.cell.read().unwrap();
            if let Some(found) = cell.get() {
                return Ok(found.clone());
            }
            cell.clone()
        };
        cell.get_or_try_init(find).await.cloned()
    }

    /// Drops what was found if it is `stale` (a caller that failed with an
    /// older one does not drop a newer one).
    pub(crate) fn forget(&self, stale: &Arc<Resolved>) {
        let mut cell = self.cell.write().unwrap();
        if cell.get().is_some_and(|found| Arc::ptr_eq(found, stale)) {
            *cell = Arc::default();
        }
    }
}

/// A function or class by name.
#[derive(Clone)]
pub(crate) enum Target {
    /// Linked into this binary, run in this program's app.
    Local(&'static str),
    /// Of a deployed app.
    Named(Arc<Named>),
}

pub(crate) struct Named {
    /// The client to use; the default one when `None`.
    client: Option<Client>,
    app: String,
    name: String,
    /// The latest when `None`.
    version: Option<u32>,
    /// What the deployed function must have been built as: the caller's
    /// types, so that a call never decodes into the wrong ones.
    fingerprint: fn() -> String,
    resolved: Found,
}

impl Target {
    /// `name` of deployed app `app`, latest version, checked on first use
    /// against `fingerprint`.
    pub(crate) fn named(
        client: Option<Client>,
        app: &str,
        name: &str,
        fingerprint: fn() -> String,
    ) -> Target {
        Target::Named(Arc::new(Named {
            client,
            app: app.to_owned(),
            name: name.to_owned(),
            version: None,
            fingerprint,
            resolved: Found::default(),
        }))
    }

    /// Pinned to a deployed version, looked up afresh. A local target has
    /// only the version this binary is, so it stays as it is.
    pub(crate) fn version(self, version: u32) -> Target {
        match self {
            Target::Named(n) => Target::Named(Arc::new(Named {
                client: n.client.clone(),
                app: n.app.clone(),
                name: n.name.clone(),
                version: Some(version),
                fingerprint: n.fingerprint,
                resolved: Found::default(),
            })),
            local => local,
        }
    }

    /// The registered name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Target::Local(name) => name,
            Target::Named(n) => &n.name,
        }
    }
}

/// `square`, or `app/square` for a deployed app's.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local(name) => f.write_str(name),
            Target::Named(n) => write!(f, "{}/{}", n.app, n.name),
        }
    }
}

impl Resolve for Target {
    async fn find(&self, ride_out: bool) -> Result<Arc<Resolved>, Error> {
        match self {
            Target::Local(name) => {
                let no_app = || Error::NoApp {
                    function: (*name).to_owned(),
                };
                let app = running_app().ok_or_else(no_app)?;
                let info = app.functions.get(*name).ok_or_else(no_app)?;
                // The running app's functions come from this very binary, so
                // their types match by construction.
                Ok(Arc::new(Resolved {
                    client: app.client.clone(),
                    function_id: info.function_id,
                    app: app.name.clone(),
                    name: (*name).to_owned(),
                    web_url: info.web_url.clone(),
                }))
            }
            Target::Named(n) => n.resolved.get_or_find(|| lookup(n, ride_out)).await,
        }
    }

    fn forget(&self, stale: &Arc<Resolved>) -> bool {
        match self {
            // The running app's ids are this program's own: it has no other.
            Target::Local(_) => false,
            Target::Named(n) => {
                n.resolved.forget(stale);
                true
            }
        }
    }
}

async fn lookup(named: &Named, ride_out: bool) -> Result<Arc<Resolved>, Error> {
    let client = match &named.client {
        Some(c) => c.clone(),
        None => Client::default_client()?,
    };
    let request = proto::LookupFunctionRequest {
        app: named.app.clone(),
        name: named.name.clone(),
        version: named.version,
    };
    let info = client
        .unary(ride_out, |mut rpc| {
            let request = request.clone();
            async move { rpc.lookup_function(request).await }
        })
        .await?;
    let expected = (named.fingerprint)();
    if !codec::fingerprints_match(&info.fingerprint, &expected) {
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
        web_url: info.web_url,
    }))
}

/// The function of one instance of `class`: the control plane makes it once
/// per set of encoded parameters and options, then hands back the same one.
pub(crate) async fn bind_instance(
    class: &Resolved,
    params: Bytes,
    options: &ClsOptions,
    ride_out: bool,
) -> Result<Resolved, Error> {
    // An empty text tells the control plane there are no overrides.
    let options_json = if options.is_empty() {
        String::new()
    } else {
        serde_json::to_string(options).map_err(|e| Error::Internal(e.to_string()))?
    };
    let request = proto::BindInstanceRequest {
        function_id: class.function_id,
        params,
        options_json,
    };
    let info = class
        .client
        .unary(ride_out, |mut rpc| {
            let request = request.clone();
            async move { rpc.bind_instance(request).await }
        })
        .await?;
    Ok(Resolved {
        client: class.client.clone(),
        function_id: info.function_id,
        app: class.app.clone(),
        name: class.name.clone(),
        web_url: info.web_url,
    })
}
