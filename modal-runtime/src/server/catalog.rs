//! The catalog: apps, their versions and leases, and every function, class
//! and class instance by id. It decides what exists and under which name;
//! what runs is the pools' business (`pool/`), and stopping the
//! containers of what the catalog retires is the control plane's.
//!
//! Lock order: `apps` before `functions`; a pool's own lock may be taken
//! under either, never the other way round.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tonic::Status;

use super::access::names::{app_name_of, environment_of};
use super::binaries::Binaries;
use super::ids::IdAllocator;
use super::pool::Pool;
use super::store::{
    Snapshot, Store, StoredInstance, StoredVersion, StoredVersionRecord, Write, now_ms,
};
use super::telemetry::Telemetry;
use crate::proto;
use crate::registry::Manifest;
use crate::status::StatusDetail;

pub(crate) struct Catalog {
    apps: Mutex<HashMap<String, AppRecord>>,
    functions: RwLock<HashMap<u64, Arc<Pool>>>,
    ids: IdAllocator,
    binaries: Binaries,
    store: Store,
    default_max_containers: u32,
    lease_timeout: Duration,
    /// Where web endpoints' URLs start (the HTTP listener's base URL), once
    /// it is bound.
    web_base: std::sync::OnceLock<String>,
    /// Where each new pool gets its metric handles.
    telemetry: Arc<Telemetry>,
}

struct AppRecord {
    ephemeral: bool,
    stopped: bool,
    versions: Vec<AppVersion>,
    /// Ephemeral apps only: who holds the app alive.
    lease: Lease,
}

struct AppVersion {
    stored: StoredVersion,
    functions: BTreeMap<String, Arc<Pool>>,
}

/// An ephemeral app's lease: held by open, beating streams of the program
/// that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub holders: u32,
    /// With no holder: when the app is stopped. Set at creation (the
    /// creator's time to take the lease) and when the last holder leaves.
    pub expires: Option<Instant>,
}

impl Lease {
    /// Whether the app it keeps should be stopped now.
    pub(crate) fn has_lapsed(&self, now: Instant) -> bool {
        self.holders == 0 && self.expires.is_some_and(|at| at <= now)
    }
}

/// What registering a version did.
pub(crate) struct Registered {
    pub response: proto::CreateAppResponse,
    /// The previous version's functions: they keep serving callers pinned
    /// to them and scale to zero when idle.
    pub superseded: Vec<Arc<Pool>>,
}

/// An app's functions and classes; see [`Catalog::app_functions`].
pub(crate) struct AppFunctions {
    /// The latest version's, by name.
    pub live: Vec<Arc<Pool>>,
    /// Every version's, oldest version first.
    pub every_version: Vec<Arc<Pool>>,
}

/// What stopping an app took out of service.
pub(crate) struct Stopped {
    pub functions: Vec<Arc<Pool>>,
    pub ephemeral: bool,
}

/// Where a new version's binary is.
pub(crate) enum BinarySource {
    /// A file on this machine, with its SHA-256 (empty for an ephemeral
    /// run, which is not worth hashing its binary for).
    Path { path: PathBuf, sha256: String },
    /// An upload, by its content hash.
    Uploaded(String),
}

impl Catalog {
    /// The catalog of what `snapshot` holds: every stored version (older
    /// ones superseded), stopped apps stopped, bound instances with their
    /// ids. Deploys, stops and new instances are written to `store`.
    pub(crate) fn open(
        data_dir: &std::path::Path,
        store: Store,
        snapshot: &Snapshot,
        default_max_containers: u32,
        lease_timeout: Duration,
        telemetry: Arc<Telemetry>,
    ) -> std::io::Result<Catalog> {
        let catalog = Catalog {
            apps: Mutex::default(),
            functions: RwLock::default(),
            ids: IdAllocator::new(snapshot.id_mark, store.clone()),
            binaries: Binaries::open(data_dir)?,
            store,
            default_max_containers,
            lease_timeout,
            web_base: std::sync::OnceLock::new(),
            telemetry,
        };
        for stored in &snapshot.versions {
            match catalog.register(stored.clone(), false) {
                // Older versions come back as superseded: no warm pool,
                // containers only for callers pinned to them. None runs
                // yet, so there is nothing to stop.
                Ok(registered) => {
                    for f in registered.superseded {
                        f.supersede();
                    }
                }
                Err(e) => {
                    tracing::warn!(app = %stored.name, version = stored.version, "not restored: {e}")
                }
            }
        }
        for instance in &snapshot.instances {
            if let Err(e) = catalog.restore_instance(instance) {
                tracing::warn!(id = instance.id, "class instance not restored: {e}");
            }
        }
        // What `update_autoscaler` changed since each version was deployed
        // (a deploy drops its older versions' rows, so these are the
        // latest versions').
        for stored in &snapshot.autoscalers {
            match catalog.function(stored.function_id) {
                Ok(f) if f.version == stored.version => {
                    f.restore_autoscaler(super::pool::Autoscaler::stored(stored))
                }
                _ => tracing::warn!(
                    id = stored.function_id,
                    "autoscaler settings of an unknown function not restored"
                ),
            }
        }
        // Stopped stays stopped: nothing runs, and nothing is accepted,
        // until a redeploy.
        let mut apps = catalog.apps.lock().unwrap();
        for (name, app) in apps.iter_mut() {
            if snapshot.stopped_apps.contains(name) {
                app.stopped = true;
                for f in app.versions.iter().flat_map(|v| v.functions.values()) {
                    f.stop();
                }
            }
        }
        drop(apps);
        Ok(catalog)
    }

    /// A new id for a function, instance or container.
    pub(crate) fn next_id(&self) -> Result<u64, Status> {
        self.ids.next().map_err(|e| e.into_status())
    }

    pub(crate) fn begin_upload(&self) -> std::io::Result<super::binaries::Upload> {
        self.binaries.begin_upload()
    }

    /// Where a binary to deploy is on this machine.
    pub(crate) fn binary_path(&self, binary: &BinarySource) -> Result<PathBuf, Status> {
        match binary {
            BinarySource::Path { path, .. } if path.is_file() => Ok(path.clone()),
            BinarySource::Path { path, .. } => Err(Status::invalid_argument(format!(
                "the app's binary `{}` does not exist on the control plane's machine; \
                 upload it instead",
                path.display()
            ))),
            BinarySource::Uploaded(id) => self.binaries.binary_path(id).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "no uploaded binary has the id `{id}`: upload it first (UploadBinary)"
                ))
            }),
        }
    }

    /// Registers a new version of an app. Ephemeral apps get a unique name.
    pub(crate) fn create_app(
        &self,
        name: &str,
        ephemeral: bool,
        manifest: Manifest,
        binary: BinarySource,
    ) -> Result<Registered, Status> {
        manifest.validate().map_err(Status::invalid_argument)?;
        if !valid_app_name(app_name_of(name)) {
            return Err(Status::invalid_argument(format!(
                "`{name}` is not a valid app name: use 1 to 64 letters, digits, `-` or `_`"
            )));
        }
        if !ephemeral && manifest.functions.is_empty() {
            return Err(Status::invalid_argument(
                "the binary registers no functions: mark functions with #[app::function], and if \
                 they live in a library crate, link it from the binary (`use that_crate as _;`)",
            ));
        }
        let path = self.binary_path(&binary)?;
        let binary_sha256 = match binary {
            BinarySource::Path { sha256, .. } => sha256,
            BinarySource::Uploaded(id) => id,
        };
        let binary = path;
        let name = if ephemeral {
            format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
        } else {
            name.to_owned()
        };
        let stored = StoredVersion {
            version: self.next_version(&name),
            name,
            binary,
            binary_sha256,
            manifest,
            created_at_ms: now_ms(),
            rolled_back_from: None,
            function_ids: BTreeMap::new(),
        };
        self.save_and_register(stored, ephemeral)
    }

    /// A new version of a deployed app copying `version` (by default the
    /// one before the latest).
    pub(crate) fn rollback(
        &self,
        name: &str,
        version: Option<u32>,
        check: impl FnOnce(&Manifest) -> Result<(), Status>,
    ) -> Result<Registered, Status> {
        let source = {
            let apps = self.apps.lock().unwrap();
            let app = apps
                .get(name)
                .ok_or_else(|| self.app_not_found(&apps, name).into_status())?;
            if app.ephemeral {
                return Err(Status::failed_precondition(format!(
                    "app `{name}` is ephemeral: only deployed apps have versions to roll back to"
                )));
            }
            let latest = app.versions.last().map_or(0, |v| v.stored.version);
            let wanted = match version {
                Some(v) => v,
                None if latest > 1 => latest - 1,
                None => {
                    return Err(Status::failed_precondition(format!(
                        "app `{name}` has a single version: there is none to roll back to"
                    )));
                }
            };
            app.versions
                .iter()
                .find(|v| v.stored.version == wanted)
                .map(|v| v.stored.clone())
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "app `{name}` has no version {wanted} (it has 1 to {latest}); see `cargo xtask app history {name}`"
                    ))
                })?
        };
        check(&source.manifest)?;
        if !source.binary.is_file() {
            return Err(Status::failed_precondition(format!(
                "version {} of `{name}` cannot be rolled back to: its binary {} is gone",
                source.version,
                source.binary.display()
            )));
        }
        let stored = StoredVersion {
            version: self.next_version(name),
            created_at_ms: now_ms(),
            rolled_back_from: Some(source.version),
            function_ids: BTreeMap::new(),
            ..source
        };
        self.save_and_register(stored, false)
    }

    fn next_version(&self, name: &str) -> u32 {
        let apps = self.apps.lock().unwrap();
        apps.get(name)
            .and_then(|a| a.versions.last())
            .map_or(1, |v| v.stored.version + 1)
    }

    /// Gives a new version's functions their ids, commits a deployed
    /// version (a deploy is acknowledged once it is durable), and serves it.
    fn save_and_register(
        &self,
        mut stored: StoredVersion,
        ephemeral: bool,
    ) -> Result<Registered, Status> {
        for f in &stored.manifest.functions {
            stored.function_ids.insert(f.name.clone(), self.next_id()?);
        }
        if !ephemeral {
            self.store
                .commit_blocking(vec![
                    Write::Version(Box::new(StoredVersionRecord::new(&stored))),
                    Write::AppStopped {
                        app: stored.name.clone(),
                        stopped: false,
                    },
                ])
                .map_err(|e| e.into_status())?;
        }
        self.register(stored, ephemeral)
    }

    fn register(&self, stored: StoredVersion, ephemeral: bool) -> Result<Registered, Status> {
        let mut functions = BTreeMap::new();
        for f in &stored.manifest.functions {
            let id = match stored.function_ids.get(&f.name) {
                Some(&id) => id,
                None => self.next_id()?,
            };
            let methods: Vec<String> = f.methods.iter().flatten().map(|m| m.name.clone()).collect();
            let telemetry = self.telemetry.pool(&stored.name, &f.name, &methods);
            let runtime = Arc::new(Pool::new(
                id,
                &stored,
                f,
                self.default_max_containers,
                telemetry,
            ));
            functions.insert(f.name.clone(), runtime);
        }
        let superseded = {
            let mut apps = self.apps.lock().unwrap();
            let app = apps
                .entry(stored.name.clone())
                .or_insert_with(|| AppRecord {
                    ephemeral,
                    stopped: false,
                    versions: Vec::new(),
                    lease: Lease {
                        holders: 0,
                        expires: Some(Instant::now() + self.lease_timeout),
                    },
                });
            let superseded: Vec<_> = app
                .versions
                .last()
                .map(|v| v.functions.values().cloned().collect())
                .unwrap_or_default();
            // A redeployed app serves again, and so do its older versions
            // for callers pinned to them.
            if app.stopped {
                for version in &app.versions {
                    for f in version.functions.values() {
                        f.reopen();
                    }
                }
            }
            app.stopped = false;
            app.versions.push(AppVersion {
                stored: stored.clone(),
                functions: functions.clone(),
            });
            superseded
        };
        let mut all = self.functions.write().unwrap();
        for f in functions.values() {
            all.insert(f.id, f.clone());
        }
        drop(all);
        Ok(Registered {
            response: proto::CreateAppResponse {
                version: stored.version,
                functions: functions.values().map(|f| self.info(f)).collect(),
                app: app_name_of(&stored.name).to_owned(),
            },
            superseded,
        })
    }

    /// The apps of `environment`.
    pub(crate) fn list_apps(&self, environment: &str) -> Vec<proto::AppInfo> {
        let apps = self.apps.lock().unwrap();
        let mut list: Vec<_> = apps
            .iter()
            .filter(|(key, _)| environment_of(key) == environment)
            .filter_map(|(name, app)| {
                let latest = app.versions.last()?;
                Some(proto::AppInfo {
                    name: app_name_of(name).to_owned(),
                    version: latest.stored.version,
                    ephemeral: app.ephemeral,
                    state: if app.stopped { "stopped" } else { "running" }.into(),
                    functions: latest.functions.keys().cloned().collect(),
                    containers: app
                        .versions
                        .iter()
                        .flat_map(|v| v.functions.values())
                        .map(|f| f.container_count() as u32)
                        .sum(),
                    created_at_ms: latest.stored.created_at_ms,
                    // The scheduler's to fill in.
                    schedules: Vec::new(),
                })
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// The scheduled functions of the deployed apps that serve: each one's
    /// latest version's.
    pub(crate) fn scheduled(&self) -> Vec<super::schedules::Scheduled> {
        let apps = self.apps.lock().unwrap();
        let mut scheduled = Vec::new();
        for (key, app) in apps.iter().filter(|(_, a)| !a.ephemeral && !a.stopped) {
            let Some(latest) = app.versions.last() else {
                continue;
            };
            for f in &latest.stored.manifest.functions {
                if let (Some(schedule), Some(pool)) =
                    (&f.options.schedule, latest.functions.get(&f.name))
                {
                    scheduled.push(super::schedules::Scheduled {
                        app: key.clone(),
                        version: latest.stored.version,
                        function: f.name.clone(),
                        schedule: schedule.clone(),
                        pool: pool.clone(),
                    });
                }
            }
        }
        scheduled
    }

    /// Every version of an app, oldest first.
    pub(crate) fn history(&self, name: &str) -> Result<Vec<proto::AppVersionInfo>, Status> {
        let apps = self.apps.lock().unwrap();
        let app = apps
            .get(name)
            .ok_or_else(|| self.app_not_found(&apps, name).into_status())?;
        Ok(app
            .versions
            .iter()
            .map(|v| proto::AppVersionInfo {
                version: v.stored.version,
                created_at_ms: v.stored.created_at_ms,
                binary_sha256: v.stored.binary_sha256.clone(),
                functions: v.functions.keys().cloned().collect(),
                rolled_back_from: v.stored.rolled_back_from,
            })
            .collect())
    }

    /// The functions and classes of an app: its latest version's, and
    /// every version's (older versions keep containers for callers pinned
    /// to them), oldest version first.
    pub(crate) fn app_functions(&self, name: &str) -> Result<AppFunctions, Status> {
        let apps = self.apps.lock().unwrap();
        let app = apps
            .get(name)
            .ok_or_else(|| self.app_not_found(&apps, name).into_status())?;
        Ok(AppFunctions {
            live: app
                .versions
                .last()
                .map(|v| v.functions.values().cloned().collect())
                .unwrap_or_default(),
            every_version: app
                .versions
                .iter()
                .flat_map(|v| v.functions.values().cloned())
                .collect(),
        })
    }

    /// Marks an app stopped; returns the functions of all its versions.
    pub(crate) fn stop_app(&self, name: &str) -> Result<Stopped, Status> {
        let mut apps = self.apps.lock().unwrap();
        let Some(app) = apps.get_mut(name) else {
            return Err(self.app_not_found(&apps, name).into_status());
        };
        if !app.ephemeral {
            // A stop is acknowledged once a restart would keep it.
            self.store
                .commit_blocking(vec![Write::AppStopped {
                    app: name.to_owned(),
                    stopped: true,
                }])
                .map_err(|e| e.into_status())?;
        }
        app.stopped = true;
        Ok(Stopped {
            functions: app
                .versions
                .iter()
                .flat_map(|v| v.functions.values().cloned())
                .collect(),
            ephemeral: app.ephemeral,
        })
    }

    /// Forgets a stopped ephemeral app and its functions.
    pub(crate) fn remove(&self, name: &str, functions: &[Arc<Pool>]) {
        self.apps.lock().unwrap().remove(name);
        let mut all = self.functions.write().unwrap();
        for f in functions {
            all.remove(&f.id);
            for instance in f.instances() {
                all.remove(&instance.id);
            }
        }
    }

    /// Whether app `name` is deployed (not ephemeral): what is changed of
    /// it at run time is kept across restarts.
    pub(crate) fn is_deployed(&self, name: &str) -> bool {
        self.apps
            .lock()
            .unwrap()
            .get(name)
            .is_some_and(|app| !app.ephemeral)
    }

    /// `Ok` if an app of this name exists (running or stopped).
    pub(crate) fn require_app(&self, name: &str) -> Result<(), Status> {
        let apps = self.apps.lock().unwrap();
        if apps.contains_key(name) {
            Ok(())
        } else {
            Err(self.app_not_found(&apps, name).into_status())
        }
    }

    // ----- leases -----

    /// A holder takes the lease of a running ephemeral app.
    pub(crate) fn hold(&self, name: &str) -> Result<(), Status> {
        let mut apps = self.apps.lock().unwrap();
        let Some(app) = apps.get_mut(name) else {
            return Err(self.app_not_found(&apps, name).into_status());
        };
        if !app.ephemeral {
            return Err(Status::failed_precondition(format!(
                "app `{name}` is deployed, not ephemeral: it lives until stopped, without a lease"
            )));
        }
        if app.stopped {
            return Err(Status::failed_precondition(format!(
                "app `{name}` is stopped: its lease cannot be taken again"
            )));
        }
        app.lease.holders += 1;
        app.lease.expires = None;
        Ok(())
    }

    /// A holder left: with none left, the app lapses now.
    pub(crate) fn release(&self, name: &str) {
        if let Some(app) = self.apps.lock().unwrap().get_mut(name) {
            app.lease.holders = app.lease.holders.saturating_sub(1);
            if app.lease.holders == 0 {
                app.lease.expires = Some(Instant::now());
            }
        }
    }

    /// Running ephemeral apps whose lease has lapsed.
    pub(crate) fn lapsed(&self, now: Instant) -> Vec<String> {
        self.apps
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, app)| app.ephemeral && !app.stopped && app.lease.has_lapsed(now))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Names the deployed apps of the same environment only.
    fn app_not_found(&self, apps: &HashMap<String, AppRecord>, name: &str) -> StatusDetail {
        let environment = environment_of(name);
        let mut available: Vec<String> = apps
            .iter()
            .filter(|(key, a)| !a.ephemeral && environment_of(key) == environment)
            .map(|(key, _)| app_name_of(key).to_owned())
            .collect();
        available.sort();
        StatusDetail::AppNotFound {
            app: app_name_of(name).to_owned(),
            available,
        }
    }

    /// The size of the uploaded binary with this SHA-256, if it is stored.
    pub(crate) fn binary_size(&self, sha256: &str) -> Option<u64> {
        let path = self.binaries.binary_path(sha256)?;
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    /// How many apps (deployed or running) `environment` holds.
    pub(crate) fn apps_in(&self, environment: &str) -> usize {
        self.apps
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, app)| environment_of(key) == environment && !app.stopped)
            .count()
    }

    // ----- functions -----

    pub(crate) fn lookup(
        &self,
        app_name: &str,
        function: &str,
        version: Option<u32>,
    ) -> Result<proto::FunctionInfo, Status> {
        let apps = self.apps.lock().unwrap();
        let Some(app) = apps.get(app_name) else {
            return Err(self.app_not_found(&apps, app_name).into_status());
        };
        if app.stopped {
            return Err(StatusDetail::AppStopped {
                app: app_name_of(app_name).to_owned(),
                function: function.to_owned(),
            }
            .into_status());
        }
        let latest = app.versions.last().map_or(0, |x| x.stored.version);
        let chosen = match version {
            Some(v) => app
                .versions
                .iter()
                .find(|x| x.stored.version == v)
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "app `{app_name}` has no version {v} (latest is {latest})"
                    ))
                })?,
            None => app
                .versions
                .last()
                .ok_or_else(|| Status::not_found(format!("app `{app_name}` has no versions")))?,
        };
        match chosen.functions.get(function) {
            Some(f) => Ok(self.info(f)),
            None => Err(StatusDetail::FunctionNotFound {
                app: app_name_of(app_name).to_owned(),
                function: function.to_owned(),
                available: chosen.functions.keys().cloned().collect(),
            }
            .into_status()),
        }
    }

    pub(crate) fn function(&self, id: u64) -> Result<Arc<Pool>, Status> {
        self.functions
            .read()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| StatusDetail::FunctionIdUnknown { function_id: id }.into_status())
    }

    /// Every function, class and instance.
    pub(crate) fn all_functions(&self) -> Vec<Arc<Pool>> {
        self.functions.read().unwrap().values().cloned().collect()
    }

    /// The instance of class `class_id` with these parameters and option
    /// overrides, created (with its own pool of containers) on first use.
    pub(crate) fn bind_instance(
        &self,
        class_id: u64,
        params: bytes::Bytes,
        overrides: &str,
    ) -> Result<proto::FunctionInfo, Status> {
        let class = self.function(class_id)?;
        // Taken before the class's lock: the id is spent even if the
        // instance already exists, which costs nothing.
        let id = self.next_id()?;
        let instance = class
            .instance(params.clone(), overrides, || id)
            .map_err(Status::invalid_argument)?;
        if instance.id == id {
            // Recorded before any spawn that names it (the store writes in
            // order), so a restart finds every instance a call runs on.
            self.store.record(Write::Instance(StoredInstance {
                id,
                class_id,
                params,
                overrides: overrides.to_owned(),
            }));
        }
        self.functions
            .write()
            .unwrap()
            .entry(instance.id)
            .or_insert_with(|| instance.clone());
        Ok(self.info(&instance))
    }
}

impl Catalog {
    /// Binds a stored class instance again, under its stored id.
    fn restore_instance(&self, stored: &StoredInstance) -> Result<(), Status> {
        let class = self.function(stored.class_id)?;
        let instance = class
            .instance(stored.params.clone(), &stored.overrides, || stored.id)
            .map_err(Status::invalid_argument)?;
        self.functions
            .write()
            .unwrap()
            .insert(instance.id, instance);
        Ok(())
    }
}

impl Catalog {
    /// Records where web endpoints' URLs start (once, at start).
    pub(crate) fn set_web_base(&self, base_url: &str) {
        let _ = self.web_base.set(base_url.trim_end_matches('/').to_owned());
    }

    /// What callers learn of `f`.
    fn info(&self, f: &Pool) -> proto::FunctionInfo {
        proto::FunctionInfo {
            function_id: f.id,
            app: app_name_of(&f.app).to_owned(),
            name: f.name.clone(),
            version: f.version,
            fingerprint: f.fingerprint.clone(),
            is_class: !f.methods().is_empty() || f.instance_params().is_some(),
            methods: f.methods().to_vec(),
            web_url: self.web_url(f),
        }
    }

    /// `f`'s URL if it is a web endpoint and the control plane serves HTTP:
    /// `<base>/<environment>/<app>/<label>`, the same for every version.
    pub(crate) fn web_url(&self, f: &Pool) -> Option<String> {
        let endpoint = f.options.web.as_ref()?;
        let base = self.web_base.get()?;
        Some(web_url(base, &f.app, &endpoint.label))
    }

    /// The web endpoint labelled `label` of the live version of app
    /// `app_key`.
    pub(crate) fn web_endpoint(&self, app_key: &str, label: &str) -> Result<Arc<Pool>, String> {
        let apps = self.apps.lock().unwrap();
        let (environment, app) = (environment_of(app_key), app_name_of(app_key));
        let record = apps
            .get(app_key)
            .ok_or_else(|| format!("environment `{environment}` has no app `{app}`"))?;
        if record.stopped {
            return Err(format!(
                "app `{app}` is stopped: deploy it again to serve its endpoints"
            ));
        }
        let live = record
            .versions
            .last()
            .ok_or_else(|| format!("app `{app}` has no versions"))?;
        let mut labels = Vec::new();
        for f in live.functions.values() {
            if let Some(endpoint) = &f.options.web {
                if endpoint.label == label {
                    return Ok(f.clone());
                }
                labels.push(endpoint.label.to_string());
            }
        }
        Err(if labels.is_empty() {
            format!("app `{app}` has no web endpoints")
        } else {
            format!(
                "app `{app}` has no endpoint `{label}` (its endpoints: {})",
                labels.join(", ")
            )
        })
    }
}

/// The URL of endpoint `label` of the app keyed `app_key`.
pub(crate) fn web_url(base: &str, app_key: &str, label: &str) -> String {
    format!(
        "{base}/{}/{}/{label}",
        environment_of(app_key),
        app_name_of(app_key)
    )
}

/// App names: 1 to 64 letters, digits, `-` or `_`.
pub(crate) fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lapses_only_without_holders_past_its_deadline() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let held = Lease {
            holders: 1,
            expires: None,
        };
        assert!(!held.has_lapsed(later));
        let fresh = Lease {
            holders: 0,
            expires: Some(later),
        };
        assert!(!fresh.has_lapsed(now));
        assert!(fresh.has_lapsed(later));
    }

    fn warm_manifest() -> Manifest {
        let options = crate::options::FunctionOptions {
            min_containers: 1,
            ..crate::options::FunctionOptions::DEFAULT
        };
        Manifest {
            functions: vec![crate::registry::FunctionManifest::for_tests("f", options)],
        }
    }

    #[test]
    fn only_the_latest_version_keeps_a_warm_pool_across_a_restart() {
        let dir =
            std::env::temp_dir().join(format!("modal-catalog-{}", uuid::Uuid::new_v4().simple()));
        let binary = || BinarySource::Path {
            path: PathBuf::from("/bin/true"),
            sha256: String::new(),
        };
        let open = || open_on(&dir);
        let catalog = open();
        let v1 = catalog
            .create_app("warm", false, warm_manifest(), binary())
            .unwrap();
        let v2 = catalog
            .create_app("warm", false, warm_manifest(), binary())
            .unwrap();
        assert_eq!(v2.superseded.len(), 1);
        catalog.store.close();
        drop((v1, v2, catalog));
        let catalog = open();
        let shortfall = |version: u32| {
            let id = catalog
                .lookup("warm", "f", Some(version))
                .unwrap()
                .function_id;
            catalog.function(id).unwrap().warm_pool_shortfall()
        };
        assert_eq!(shortfall(1), 0, "a superseded version keeps no warm pool");
        assert_eq!(shortfall(2), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A catalog on the SQLite store in `dir`, as a restart opens it.
    fn open_on(dir: &std::path::Path) -> Catalog {
        let config = crate::server::store::StoreConfig::Sqlite {
            path: dir.join("store.sqlite3"),
            max_bytes: None,
        };
        let (store, snapshot) = Store::open(&config).unwrap();
        Catalog::open(
            dir,
            store,
            &snapshot,
            8,
            Duration::from_secs(10),
            Arc::new(Telemetry::new()),
        )
        .unwrap()
    }

    #[test]
    fn ids_and_stopped_apps_are_kept_across_a_restart() {
        let dir =
            std::env::temp_dir().join(format!("modal-catalog-{}", uuid::Uuid::new_v4().simple()));
        let binary = || BinarySource::Path {
            path: PathBuf::from("/bin/true"),
            sha256: String::new(),
        };
        let catalog = open_on(&dir);
        for app in ["kept", "halted"] {
            catalog
                .create_app(app, false, warm_manifest(), binary())
                .unwrap();
        }
        let id = catalog.lookup("kept", "f", None).unwrap().function_id;
        catalog.stop_app("halted").unwrap();
        catalog.store.close();
        drop(catalog);
        let catalog = open_on(&dir);
        assert_eq!(catalog.lookup("kept", "f", None).unwrap().function_id, id);
        let err = catalog.lookup("halted", "f", None).unwrap_err();
        assert!(err.message().contains("stopped"), "{}", err.message());
        let listed: Vec<String> = catalog
            .list_apps("main")
            .into_iter()
            .map(|a| a.state)
            .collect();
        assert_eq!(listed, vec!["stopped".to_owned(), "running".to_owned()]);
        // A new id is above every id handed out before.
        assert!(catalog.next_id().unwrap() > id);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn app_names_are_checked() {
        assert!(valid_app_name("my-app_2"));
        assert!(!valid_app_name(""));
        assert!(!valid_app_name("a/b"));
        assert!(!valid_app_name(&"x".repeat(65)));
    }
}
