//! The control plane's state: apps and their versions, functions, containers,
//! spawned calls and logs, and the loops that keep them moving.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::ServerConfig;
use super::backend::{ContainerBackend, ContainerEvent, ContainerSpec, OutputStream};
use super::calls::CallStore;
use super::calls::Lookup;
use super::logs::LogHub;
use super::scheduler::{FunctionRuntime, Pending, Reply, Retire, failure};
use super::store::{Store, StoredVersion};
use crate::contract::container_env;
use crate::proto::{self, LogStream};
use crate::registry::Manifest;
use crate::status::StatusDetail;

/// Recent stderr lines kept per container, quoted when it fails to start.
const STDERR_TAIL: usize = 8;

pub(crate) struct ControlPlane {
    pub config: ServerConfig,
    /// The URL containers dial.
    url: String,
    backend: Arc<dyn ContainerBackend>,
    events: mpsc::UnboundedSender<ContainerEvent>,
    apps: Mutex<HashMap<String, AppRecord>>,
    functions: RwLock<HashMap<u64, Arc<FunctionRuntime>>>,
    containers: Mutex<HashMap<String, ContainerRecord>>,
    pub calls: CallStore,
    pub blobs: super::blobs::BlobStore,
    pub logs: LogHub,
    store: Store,
    next_id: AtomicU64,
}

struct AppRecord {
    ephemeral: bool,
    stopped: bool,
    versions: Vec<AppVersion>,
}

struct AppVersion {
    version: u32,
    created_at_ms: i64,
    functions: BTreeMap<String, Arc<FunctionRuntime>>,
}

struct ContainerRecord {
    function: Arc<FunctionRuntime>,
    token: String,
    stderr_tail: VecDeque<String>,
}

impl ControlPlane {
    pub(crate) fn new(
        config: ServerConfig,
        url: String,
        backend: Arc<dyn ContainerBackend>,
    ) -> std::io::Result<(Arc<Self>, mpsc::UnboundedReceiver<ContainerEvent>)> {
        let store = Store::open(&config.data_dir)?;
        let blobs = super::blobs::BlobStore::open(&config.data_dir)?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let cp = Arc::new(ControlPlane {
            config,
            url,
            backend,
            events,
            apps: Mutex::default(),
            functions: RwLock::default(),
            containers: Mutex::default(),
            calls: CallStore::default(),
            blobs,
            logs: LogHub::default(),
            store,
            next_id: AtomicU64::new(1),
        });
        for stored in cp.store.load_all() {
            if let Err(e) = cp.register_version(&stored, false) {
                tracing::warn!(app = %stored.name, version = stored.version, "not restored: {e}");
            }
        }
        Ok((cp, events_rx))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    // ----- apps -----

    pub(crate) fn begin_upload(&self) -> std::io::Result<super::store::Upload> {
        self.store.begin_upload()
    }

    /// Registers a new version of an app. Ephemeral apps get a unique name.
    pub(crate) fn create_app(
        &self,
        request: proto::CreateAppRequest,
    ) -> Result<proto::CreateAppResponse, Status> {
        let manifest: Manifest = serde_json::from_str(&request.manifest_json).map_err(|e| {
            Status::invalid_argument(format!("the app's manifest is not valid: {e}"))
        })?;
        manifest.validate().map_err(Status::invalid_argument)?;
        if !valid_app_name(&request.name) {
            return Err(Status::invalid_argument(format!(
                "`{}` is not a valid app name: use 1 to 64 letters, digits, `-` or `_`",
                request.name
            )));
        }
        if !request.ephemeral && manifest.functions.is_empty() {
            return Err(Status::invalid_argument(
                "the binary registers no functions: mark functions with #[app::function], and if \
                 they live in a library crate, link it from the binary (`use that_crate as _;`)",
            ));
        }
        let binary = match request.binary {
            Some(proto::create_app_request::Binary::LocalPath(p)) => {
                let path = PathBuf::from(&p);
                if !path.is_file() {
                    return Err(Status::invalid_argument(format!(
                        "the app's binary `{p}` does not exist on the control plane's machine; \
                         upload it instead"
                    )));
                }
                path
            }
            Some(proto::create_app_request::Binary::UploadedId(id)) => {
                self.store.binary_path(&id).ok_or_else(|| {
                    Status::invalid_argument(format!("no uploaded binary has the id `{id}`"))
                })?
            }
            None => return Err(Status::invalid_argument("the request names no binary")),
        };
        let name = if request.ephemeral {
            format!(
                "{}-{}",
                request.name,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        } else {
            request.name.clone()
        };
        let version = {
            let apps = self.apps.lock().unwrap();
            apps.get(&name)
                .and_then(|a| a.versions.last())
                .map_or(1, |v| v.version + 1)
        };
        let stored = StoredVersion {
            name: name.clone(),
            version,
            binary,
            manifest,
            created_at_ms: now_ms(),
        };
        if !request.ephemeral {
            self.store
                .save_version(&stored)
                .map_err(|e| Status::internal(format!("cannot record the deployment: {e}")))?;
        }
        let functions = self.register_version(&stored, request.ephemeral)?;
        Ok(proto::CreateAppResponse {
            version,
            functions: functions.iter().map(|f| info(f)).collect(),
            app: name,
        })
    }

    fn register_version(
        &self,
        stored: &StoredVersion,
        ephemeral: bool,
    ) -> Result<Vec<Arc<FunctionRuntime>>, Status> {
        let mut functions = BTreeMap::new();
        for f in &stored.manifest.functions {
            let runtime = Arc::new(FunctionRuntime::new(
                self.next_id(),
                stored,
                f,
                self.config.default_max_containers,
            ));
            functions.insert(f.name.clone(), runtime);
        }
        let previous = {
            let mut apps = self.apps.lock().unwrap();
            let app = apps
                .entry(stored.name.clone())
                .or_insert_with(|| AppRecord {
                    ephemeral,
                    stopped: false,
                    versions: Vec::new(),
                });
            let previous = app.versions.last().map(|v| v.functions.clone());
            app.stopped = false;
            app.versions.push(AppVersion {
                version: stored.version,
                created_at_ms: stored.created_at_ms,
                functions: functions.clone(),
            });
            previous
        };
        self.logs.reopen(&stored.name);
        {
            let mut all = self.functions.write().unwrap();
            for f in functions.values() {
                all.insert(f.id, f.clone());
            }
        }
        // The previous version's idle containers go; pinned callers restart them.
        if let Some(previous) = previous {
            for f in previous.values() {
                for id in f.stop() {
                    self.spawn_stop(id, self.config.stop_grace);
                }
            }
        }
        Ok(functions.into_values().collect())
    }

    pub(crate) fn list_apps(&self) -> Vec<proto::AppInfo> {
        let apps = self.apps.lock().unwrap();
        let mut list: Vec<_> = apps
            .iter()
            .filter_map(|(name, app)| {
                let latest = app.versions.last()?;
                Some(proto::AppInfo {
                    name: name.clone(),
                    version: latest.version,
                    ephemeral: app.ephemeral,
                    state: if app.stopped { "stopped" } else { "running" }.into(),
                    functions: latest.functions.keys().cloned().collect(),
                    containers: app
                        .versions
                        .iter()
                        .flat_map(|v| v.functions.values())
                        .map(|f| f.container_count() as u32)
                        .sum(),
                    created_at_ms: latest.created_at_ms,
                })
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Stops every version of an app and waits for its containers to exit.
    pub(crate) async fn stop_app(&self, name: &str) -> Result<u32, Status> {
        let (functions, ephemeral) = {
            let mut apps = self.apps.lock().unwrap();
            let Some(app) = apps.get_mut(name) else {
                return Err(self.app_not_found(&apps, name).into_status());
            };
            app.stopped = true;
            let functions: Vec<_> = app
                .versions
                .iter()
                .flat_map(|v| v.functions.values().cloned())
                .collect();
            (functions, app.ephemeral)
        };
        let ids: Vec<String> = functions.iter().flat_map(|f| f.stop()).collect();
        let stopped = ids.len() as u32;
        let grace = self.config.stop_grace;
        futures::future::join_all(ids.iter().map(|id| self.backend.stop(id, grace))).await;
        // Every line they printed is published before followers are told.
        self.barrier().await;
        self.logs.close(name);
        if ephemeral {
            self.apps.lock().unwrap().remove(name);
            let mut all = self.functions.write().unwrap();
            for f in &functions {
                all.remove(&f.id);
                for instance in f.instances() {
                    all.remove(&instance.id);
                }
            }
            drop(all);
            self.logs.remove(name);
        }
        Ok(stopped)
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

    pub(crate) fn is_ephemeral(&self, name: &str) -> bool {
        self.apps
            .lock()
            .unwrap()
            .get(name)
            .is_some_and(|a| a.ephemeral)
    }

    fn app_not_found(&self, apps: &HashMap<String, AppRecord>, name: &str) -> StatusDetail {
        let mut available: Vec<String> = apps
            .iter()
            .filter(|(_, a)| !a.ephemeral)
            .map(|(n, _)| n.clone())
            .collect();
        available.sort();
        StatusDetail::AppNotFound {
            app: name.to_owned(),
            available,
        }
    }

    // ----- functions and inputs -----

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
                app: app_name.to_owned(),
                function: function.to_owned(),
            }
            .into_status());
        }
        let chosen = match version {
            Some(v) => app
                .versions
                .iter()
                .find(|x| x.version == v)
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "app `{app_name}` has no version {v} (latest is {})",
                        app.versions.last().map_or(0, |x| x.version)
                    ))
                })?,
            None => app
                .versions
                .last()
                .ok_or_else(|| Status::not_found(format!("app `{app_name}` has no versions")))?,
        };
        match chosen.functions.get(function) {
            Some(f) => Ok(info(f)),
            None => Err(StatusDetail::FunctionNotFound {
                app: app_name.to_owned(),
                function: function.to_owned(),
                available: chosen.functions.keys().cloned().collect(),
            }
            .into_status()),
        }
    }

    pub(crate) fn function(&self, id: u64) -> Result<Arc<FunctionRuntime>, Status> {
        self.functions
            .read()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "function id {id} is unknown (its app was stopped or the control plane restarted); look it up again"
                ))
            })
    }

    /// The function (or class instance) an input calling `method` goes to.
    pub(crate) fn callable(&self, id: u64, method: &str) -> Result<Arc<FunctionRuntime>, Status> {
        let function = self.function(id)?;
        function
            .check_method(method)
            .map_err(Status::invalid_argument)?;
        Ok(function)
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
        let instance = class
            .instance(params, overrides, || self.next_id())
            .map_err(Status::invalid_argument)?;
        self.functions
            .write()
            .unwrap()
            .entry(instance.id)
            .or_insert_with(|| instance.clone());
        Ok(info(&instance))
    }

    /// Sets the warm pool of a function or instance and fills it now.
    pub(crate) fn set_warm_pool(
        self: &Arc<Self>,
        function_id: u64,
        min_containers: u32,
    ) -> Result<(), Status> {
        let function = self.function(function_id)?;
        function
            .set_min_containers(min_containers)
            .map_err(Status::invalid_argument)?;
        let shortfall = function.warm_pool_shortfall();
        self.start_containers(&function, shortfall);
        Ok(())
    }

    /// Queues inputs and starts the containers they need.
    pub(crate) fn submit(self: &Arc<Self>, function: &Arc<FunctionRuntime>, inputs: Vec<Pending>) {
        let to_start = function.submit(inputs);
        self.start_containers(function, to_start);
    }

    pub(crate) fn submit_one(
        self: &Arc<Self>,
        function: &Arc<FunctionRuntime>,
        method: String,
        args: bytes::Bytes,
        args_blob: String,
        reply: Reply,
    ) {
        let mut input = Pending::new(self.next_id(), method, args, reply);
        input.args_blob = self.blobs.for_input(args_blob);
        self.submit(function, vec![input]);
    }

    /// Outcomes from a container; inputs that failed with retries left run
    /// again after their backoff.
    pub(crate) fn container_outputs(
        self: &Arc<Self>,
        function: &Arc<FunctionRuntime>,
        container_id: &str,
        outputs: Vec<proto::ContainerOutput>,
    ) {
        for (input, delay) in function.outputs(container_id, outputs) {
            if delay.is_zero() {
                self.submit(function, vec![input]);
                continue;
            }
            let cp = self.clone();
            let function = function.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // A call cancelled while it waited is not run again.
                if !input.reply.is_settled() {
                    cp.submit(&function, vec![input]);
                }
            });
        }
    }

    /// A spawned call, or why there is none.
    pub(crate) fn call(&self, call_id: &str) -> Result<Arc<super::calls::CallRecord>, Status> {
        match self.calls.get(call_id) {
            Lookup::Found(record) => Ok(record),
            Lookup::Expired => Err(StatusDetail::CallExpired {
                call_id: call_id.to_owned(),
                retention_secs: self.config.call_retention.as_secs(),
            }
            .into_status()),
            Lookup::Unknown => Err(StatusDetail::CallNotFound {
                call_id: call_id.to_owned(),
            }
            .into_status()),
        }
    }

    /// Ends a spawned call as cancelled (never retried). Its input leaves the
    /// queue, or the container running it is told to drop it; with
    /// `terminate_containers` that container is stopped, and its other
    /// inputs run elsewhere.
    pub(crate) fn cancel_call(
        self: &Arc<Self>,
        call_id: &str,
        terminate_containers: bool,
    ) -> Result<(), Status> {
        let record = self.call(call_id)?;
        if record.is_done() {
            return Ok(());
        }
        record.complete(failure(
            proto::FailureKind::Cancelled,
            "the call was cancelled",
            "",
        ));
        if let Ok(function) = self.function(record.function_id)
            && let Some((container_id, _)) = function.cancel(&record)
            && terminate_containers
        {
            self.container_disconnected(&container_id);
        }
        Ok(())
    }

    // ----- containers -----

    /// Starts `count` containers of `function`, all at once.
    fn start_containers(self: &Arc<Self>, function: &Arc<FunctionRuntime>, count: usize) {
        if count == 0 {
            return;
        }
        let ids: Vec<String> = (0..count)
            .map(|_| format!("c-{}", self.next_id()))
            .collect();
        function.starting(&ids);
        for id in ids {
            let token = uuid::Uuid::new_v4().simple().to_string();
            self.containers.lock().unwrap().insert(
                id.clone(),
                ContainerRecord {
                    function: function.clone(),
                    token: token.clone(),
                    stderr_tail: VecDeque::new(),
                },
            );
            let spec = self.container_spec(function, &id, &token);
            let cp = self.clone();
            tokio::spawn(async move {
                if let Err(reason) = cp.backend.start(spec, cp.events.clone()).await {
                    cp.container_exited(&id, &format!("could not be started ({reason})"));
                }
            });
        }
    }

    fn container_spec(&self, f: &FunctionRuntime, id: &str, token: &str) -> ContainerSpec {
        use container_env as env;
        let mut vars: Vec<(String, String)> = f
            .options
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(
            [
                (env::ROLE, env::ROLE_CONTAINER.to_owned()),
                (env::SERVER_URL, self.url.clone()),
                (env::CONTAINER_ID, id.to_owned()),
                (env::TOKEN, token.to_owned()),
                (env::FUNCTION, f.name.clone()),
                (env::APP, f.app.clone()),
                (
                    env::HEARTBEAT_MS,
                    self.config.heartbeat_interval.as_millis().to_string(),
                ),
                (env::MAX_INPUTS, f.options.max_inputs.max(1).to_string()),
                (env::TIMEOUT_SECS, f.options.timeout_secs.to_string()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        if let Some(size) = f.options.batch_max_size {
            vars.push((env::BATCH_MAX_SIZE.to_owned(), size.to_string()));
            vars.push((
                env::BATCH_WAIT_MS.to_owned(),
                f.options.batch_wait_ms.to_string(),
            ));
        }
        ContainerSpec {
            container_id: id.to_owned(),
            app: f.app.clone(),
            function: f.name.clone(),
            binary: f.binary.clone(),
            env: vars,
        }
    }

    /// Checks a connecting container's credentials; returns its function.
    pub(crate) fn authenticate(
        &self,
        container_id: &str,
        token: &str,
    ) -> Result<Arc<FunctionRuntime>, Status> {
        let containers = self.containers.lock().unwrap();
        match containers.get(container_id) {
            Some(c) if c.token == token => Ok(c.function.clone()),
            _ => Err(Status::unauthenticated(format!(
                "container `{container_id}` is unknown or its token is wrong"
            ))),
        }
    }

    /// A class's container could not build its instance or run `enter`.
    pub(crate) fn container_start_failed(self: &Arc<Self>, container_id: &str, message: &str) {
        self.container_exited(container_id, &format!("failed to start: {message}"));
        self.spawn_stop(container_id.to_owned(), Duration::ZERO);
    }

    /// A container's stream ended while it was meant to be running.
    pub(crate) fn container_disconnected(self: &Arc<Self>, container_id: &str) {
        // Its process is killed; the exit event fails its inputs.
        self.spawn_stop(container_id.to_owned(), Duration::ZERO);
    }

    fn spawn_stop(&self, container_id: String, grace: Duration) {
        let backend = self.backend.clone();
        tokio::spawn(async move { backend.stop(&container_id, grace).await });
    }

    fn container_exited(self: &Arc<Self>, container_id: &str, reason: &str) {
        let Some(record) = self.containers.lock().unwrap().remove(container_id) else {
            return;
        };
        let mut reason = reason.to_owned();
        if !record.stderr_tail.is_empty() {
            reason.push_str("; its last output:\n  ");
            reason.push_str(&Vec::from(record.stderr_tail).join("\n  "));
        }
        let replacements = record.function.container_gone(container_id, &reason);
        self.start_containers(&record.function, replacements);
    }

    /// Handles backend events: output lines become logs, exits fail inputs.
    pub(crate) async fn run_events(
        self: Arc<Self>,
        mut events: mpsc::UnboundedReceiver<ContainerEvent>,
    ) {
        while let Some(event) = events.recv().await {
            match event {
                ContainerEvent::Output {
                    container_id,
                    stream,
                    line,
                } => {
                    let target = {
                        let mut containers = self.containers.lock().unwrap();
                        containers.get_mut(&container_id).map(|c| {
                            if stream == OutputStream::Stderr {
                                if c.stderr_tail.len() == STDERR_TAIL {
                                    c.stderr_tail.pop_front();
                                }
                                c.stderr_tail.push_back(line.clone());
                            }
                            (c.function.app.clone(), c.function.name.clone())
                        })
                    };
                    if let Some((app, function)) = target {
                        self.logs.publish(
                            &app,
                            proto::LogLine {
                                function,
                                container_id,
                                stream: match stream {
                                    OutputStream::Stdout => LogStream::Stdout,
                                    OutputStream::Stderr => LogStream::Stderr,
                                } as i32,
                                text: line,
                            },
                        );
                    }
                }
                ContainerEvent::Exited {
                    container_id,
                    reason,
                } => self.container_exited(&container_id, &reason),
                ContainerEvent::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.events.send(ContainerEvent::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Periodic upkeep: scale down idle containers, replace lost ones, keep
    /// warm pools filled, forget expired calls.
    pub(crate) async fn run_upkeep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.upkeep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick_count: u64 = 0;
        loop {
            tick.tick().await;
            let functions: Vec<_> = self.functions.read().unwrap().values().cloned().collect();
            for f in functions {
                let start_timeout = f.options.startup_timeout();
                for retire in f.retire(self.config.heartbeat_timeout, start_timeout) {
                    match retire {
                        Retire::Idle(id) => self.spawn_stop(id, self.config.stop_grace),
                        Retire::StartupTimeout(id) => {
                            tracing::warn!(container = %id, function = %f.name, "startup timeout");
                            self.container_exited(
                                &id,
                                &format!(
                                    "failed to start: it was not ready within its `startup_timeout` of {start_timeout:?} (which covers starting the process and running `enter`)"
                                ),
                            );
                            self.spawn_stop(id, Duration::ZERO);
                        }
                        Retire::Lost(id) => {
                            tracing::warn!(container = %id, function = %f.name, "container lost");
                            self.fail_lost(&id);
                            self.spawn_stop(id, Duration::ZERO);
                        }
                    }
                }
                let shortfall = f.warm_pool_shortfall();
                self.start_containers(&f, shortfall);
            }
            self.calls.expire(self.config.call_retention);
            if tick_count.is_multiple_of(120) {
                self.blobs.expire(self.config.call_retention);
            }
            tick_count += 1;
        }
    }

    fn fail_lost(self: &Arc<Self>, container_id: &str) {
        let timeout = self.config.heartbeat_timeout;
        self.container_exited(
            container_id,
            &format!("stopped answering (no heartbeat for {timeout:?}) and was killed"),
        );
    }

    /// Kills every container (server shutdown).
    pub(crate) async fn shutdown(&self) {
        let functions: Vec<_> = self.functions.read().unwrap().values().cloned().collect();
        for f in functions {
            f.stop();
        }
        self.backend.kill_all().await;
        self.barrier().await;
    }
}

fn info(f: &FunctionRuntime) -> proto::FunctionInfo {
    proto::FunctionInfo {
        function_id: f.id,
        app: f.app.clone(),
        name: f.name.clone(),
        version: f.version,
        fingerprint: f.fingerprint.clone(),
        is_class: !f.methods().is_empty() || f.instance_params().is_some(),
        methods: f.methods().to_vec(),
    }
}

fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
