//! The control plane's state: apps and their versions, functions, containers,
//! spawned calls and logs, and the loops that keep them moving.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::ServerConfig;
use super::backend::{ContainerBackend, ContainerEvent, ContainerSpec, OutputStream};
use super::calls::CallStore;
use super::calls::Lookup;
use super::catalog::{BinarySource, Catalog, Registered, Stopped};
use super::logs::LogHub;
use super::pool::{Pending, Pool, Reply, Retire, failure};
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
    pub catalog: Catalog,
    containers: Mutex<HashMap<String, ContainerRecord>>,
    pub calls: CallStore,
    pub blobs: super::blobs::BlobStore,
    pub logs: LogHub,
    /// Ids of inputs: they live no longer than the process (a restart
    /// re-numbers nothing that survives it), so they need no persisting.
    next_input_id: AtomicU64,
}

struct ContainerRecord {
    function: Arc<Pool>,
    token: String,
    stderr_tail: VecDeque<String>,
}

impl ControlPlane {
    pub(crate) fn new(
        config: ServerConfig,
        url: String,
        backend: Arc<dyn ContainerBackend>,
    ) -> std::io::Result<(Arc<Self>, mpsc::UnboundedReceiver<ContainerEvent>)> {
        let catalog = Catalog::open(
            &config.data_dir,
            config.default_max_containers,
            config.lease_timeout,
        )?;
        let blobs = super::blobs::BlobStore::open(&config.data_dir)?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let cp = Arc::new(ControlPlane {
            config,
            url,
            backend,
            events,
            catalog,
            containers: Mutex::default(),
            calls: CallStore::default(),
            blobs,
            logs: LogHub::default(),
            next_input_id: AtomicU64::new(1),
        });
        Ok((cp, events_rx))
    }

    /// A new input id.
    pub(crate) fn next_input_id(&self) -> u64 {
        self.next_input_id.fetch_add(1, Ordering::Relaxed)
    }

    // ----- apps -----

    /// Registers a new version of an app. Ephemeral apps get a unique name
    /// and live while their program holds their lease.
    pub(crate) fn create_app(
        &self,
        request: proto::CreateAppRequest,
    ) -> Result<proto::CreateAppResponse, Status> {
        let manifest: Manifest = serde_json::from_str(&request.manifest_json).map_err(|e| {
            Status::invalid_argument(format!("the app's manifest is not valid: {e}"))
        })?;
        let binary = match request.binary {
            Some(proto::create_app_request::Binary::LocalPath(p)) => {
                BinarySource::Path(PathBuf::from(p))
            }
            Some(proto::create_app_request::Binary::UploadedId(id)) => BinarySource::Uploaded(id),
            None => return Err(Status::invalid_argument("the request names no binary")),
        };
        let registered =
            self.catalog
                .create_app(&request.name, request.ephemeral, manifest, binary)?;
        Ok(self.registered(registered))
    }

    /// A new version copying an earlier one.
    pub(crate) fn rollback(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<proto::CreateAppResponse, Status> {
        let registered = self.catalog.rollback(name, version)?;
        Ok(self.registered(registered))
    }

    /// A version was registered: its app's logs reopen, and the previous
    /// version's idle containers go (its pool serves pinned callers on
    /// demand and scales to zero).
    fn registered(&self, registered: Registered) -> proto::CreateAppResponse {
        self.logs.reopen(&registered.response.app);
        for f in registered.superseded {
            for id in f.supersede() {
                self.spawn_stop(id, self.config.stop_grace);
            }
        }
        registered.response
    }

    /// Stops every version of an app and waits for its containers to exit.
    pub(crate) async fn stop_app(&self, name: &str) -> Result<u32, Status> {
        let Stopped {
            functions,
            ephemeral,
        } = self.catalog.stop_app(name)?;
        let ids: Vec<String> = functions.iter().flat_map(|f| f.stop()).collect();
        let stopped = ids.len() as u32;
        let grace = self.config.stop_grace;
        futures::future::join_all(ids.iter().map(|id| self.backend.stop(id, grace))).await;
        // Every line they printed is published before followers are told.
        self.barrier().await;
        self.logs.close(name);
        if ephemeral {
            self.catalog.remove(name, &functions);
            self.logs.remove(name);
        }
        Ok(stopped)
    }

    // ----- functions and inputs -----

    /// The function (or class instance) an input calling `method` goes to.
    pub(crate) fn callable(&self, id: u64, method: &str) -> Result<Arc<Pool>, Status> {
        let function = self.catalog.function(id)?;
        function
            .check_method(method)
            .map_err(Status::invalid_argument)?;
        Ok(function)
    }

    /// Sets the warm pool of a function or instance and fills it now.
    pub(crate) fn set_warm_pool(
        self: &Arc<Self>,
        function_id: u64,
        min_containers: u32,
    ) -> Result<(), Status> {
        let function = self.catalog.function(function_id)?;
        function
            .set_min_containers(min_containers)
            .map_err(Status::invalid_argument)?;
        let shortfall = function.warm_pool_shortfall();
        self.start_containers(&function, shortfall);
        Ok(())
    }

    /// Queues inputs and starts the containers they need.
    pub(crate) fn submit(self: &Arc<Self>, function: &Arc<Pool>, inputs: Vec<Pending>) {
        let to_start = function.submit(inputs);
        self.start_containers(function, to_start);
    }

    pub(crate) fn submit_one(
        self: &Arc<Self>,
        function: &Arc<Pool>,
        method: String,
        args: bytes::Bytes,
        args_blob: String,
        reply: Reply,
    ) {
        let mut input = Pending::new(self.next_input_id(), method, args, reply);
        input.args_blob = self.blobs.for_input(args_blob);
        self.submit(function, vec![input]);
    }

    /// Outcomes from a container; inputs that failed with retries left run
    /// again after their backoff.
    pub(crate) fn container_outputs(
        self: &Arc<Self>,
        function: &Arc<Pool>,
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
        if let Ok(function) = self.catalog.function(record.function_id)
            && let Some((container_id, _)) = function.cancel(&record)
            && terminate_containers
        {
            self.container_disconnected(&container_id);
        }
        Ok(())
    }

    // ----- containers -----

    /// Starts `count` containers of `function`, all at once.
    fn start_containers(self: &Arc<Self>, function: &Arc<Pool>, count: usize) {
        if count == 0 {
            return;
        }
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            match self.catalog.next_id() {
                Ok(id) => ids.push(format!("c-{id}")),
                Err(e) => {
                    tracing::error!("no container started: {}", e.message());
                    break;
                }
            }
        }
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

    fn container_spec(&self, f: &Pool, id: &str, token: &str) -> ContainerSpec {
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
    ) -> Result<Arc<Pool>, Status> {
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
            for app in self.catalog.lapsed(Instant::now()) {
                tracing::info!(%app, "the lease of an ephemeral app lapsed: stopping it");
                let cp = self.clone();
                tokio::spawn(async move {
                    let _ = cp.stop_app(&app).await;
                });
            }
            for f in self.catalog.all_functions() {
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
        for f in self.catalog.all_functions() {
            f.stop();
        }
        self.backend.kill_all().await;
        self.barrier().await;
    }
}
