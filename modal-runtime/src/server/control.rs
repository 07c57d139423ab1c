//! The control plane: the parts that own its state (the catalog, the
//! containers, spawned calls, blobs, logs) and its actions on apps, inputs
//! and calls. Containers' actions are in `containers.rs`, the loops in
//! `loops.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tonic::Status;

use super::ServerConfig;
use super::access::names::environment_of;
use super::backend::{ContainerBackend, ContainerEvent};
use super::budget::{BudgetShare, InlineBudget};
use super::calls::CallStore;
use super::calls::Lookup;
use super::catalog::{BinarySource, Catalog, Registered, Stopped};
use super::containers::ContainerRegistry;
use super::logs::LogHub;
use super::pool::{AutoscalerUpdate, Origin, Pending, Pool, Reply, failure};
use super::store::{StoredAutoscaler, Write};
use super::telemetry::{CallKind, RecentCall, Telemetry};
use crate::proto;
use crate::registry::Manifest;
use crate::status::StatusDetail;

/// Container events (output lines, exits) waiting for the event loop: beyond
/// this, backends wait, and so do containers printing into full pipes.
const EVENTS_IN_FLIGHT: usize = 4096;

pub(crate) struct ControlPlane {
    pub config: ServerConfig,
    /// The URL containers dial.
    pub(super) url: String,
    pub(super) backend: Arc<dyn ContainerBackend>,
    pub(super) events: mpsc::Sender<ContainerEvent>,
    pub catalog: Catalog,
    /// Tokens, environments and secrets.
    pub access: super::access::Access,
    pub(super) containers: ContainerRegistry,
    pub calls: CallStore,
    pub blobs: Arc<super::blobs::BlobStore>,
    pub volumes: super::volumes::Volumes,
    pub logs: LogHub,
    pub budget: InlineBudget,
    /// What must survive a restart (apps, versions, ids, detached calls).
    pub store: super::store::Store,
    /// Metrics (`/metrics`) and the recent calls.
    pub telemetry: Arc<Telemetry>,
    /// Deployed functions' schedules.
    pub schedules: super::schedules::Scheduler,
    /// Ids of inputs: they live no longer than the process (a restart
    /// re-numbers nothing that survives it), so they need no persisting.
    next_input_id: AtomicU64,
}

impl ControlPlane {
    pub(crate) fn new(
        config: ServerConfig,
        url: String,
        backend: Arc<dyn ContainerBackend>,
        store: super::store::Store,
        snapshot: super::store::Snapshot,
    ) -> std::io::Result<(Arc<Self>, mpsc::Receiver<ContainerEvent>)> {
        let telemetry = Arc::new(Telemetry::new());
        telemetry.register(store.commit_seconds());
        let catalog = Catalog::open(
            &config.data_dir,
            store.clone(),
            &snapshot,
            config.default_max_containers,
            config.lease_timeout,
            telemetry.clone(),
        )?;
        let blobs = Arc::new(super::blobs::BlobStore::open(&config.data_dir)?);
        let volumes = super::volumes::Volumes::open(&config.data_dir)?;
        let access = super::access::Access::open(&snapshot.access, store.clone());
        let (events, events_rx) = mpsc::channel(EVENTS_IN_FLIGHT);
        let budget = InlineBudget::new(
            config.max_inline_bytes_in_flight,
            config.inline_budget_patience,
        );
        let cp = Arc::new(ControlPlane {
            config,
            url,
            backend,
            events,
            catalog,
            access,
            containers: ContainerRegistry::default(),
            calls: CallStore::new(store.clone()),
            store,
            telemetry,
            blobs,
            volumes,
            logs: LogHub::default(),
            budget,
            next_input_id: AtomicU64::new(1),
            schedules: super::schedules::Scheduler::open(&snapshot.schedules),
        });
        let weak = Arc::downgrade(&cp);
        cp.telemetry
            .watch_pools(move || weak.upgrade().map(|cp| cp.pool_loads()).unwrap_or_default());
        cp.resume(snapshot.open_calls);
        Ok((cp, events_rx))
    }

    /// At most `limit` of the last inputs that ended, newest first; of app
    /// `app` only when given, named as the catalog keys it (its name in
    /// environment `main`, `<environment>/<name>` in any other).
    pub(crate) fn recent_calls(&self, app: Option<&str>, limit: usize) -> Vec<RecentCall> {
        self.telemetry.recent_calls(app, limit)
    }

    /// Every function's and instance's load now, for the gauges of
    /// `/metrics`.
    fn pool_loads(&self) -> Vec<super::telemetry::Load> {
        self.catalog
            .all_functions()
            .iter()
            .map(|f| {
                let stats = f.own_stats();
                super::telemetry::Load {
                    labels: f.telemetry.labels(),
                    queued: stats.backlog,
                    running: stats.running_inputs,
                    containers: u64::from(stats.containers),
                }
            })
            .collect()
    }

    /// Queues again the detached calls a previous control plane accepted
    /// and did not finish. An input that was handed to a container runs
    /// again as the next attempt; a spawned map's finished inputs keep
    /// their results.
    fn resume(self: &Arc<Self>, open: Vec<super::store::OpenCall>) {
        let (mut calls, mut inputs) = (0, 0);
        for open in open {
            let record = self.calls.restore(&open.call);
            let function = match self.callable(open.call.function_id, &open.call.method) {
                Ok(f) => f,
                Err(status) => {
                    record.complete(failure(
                        proto::FailureKind::AppStopped,
                        &format!(
                            "`{}` of app `{}` cannot run after the control plane restarted: {} \
                             (a program's own, ephemeral app ends with the control plane that ran it)",
                            open.call.function,
                            open.call.app,
                            status.message()
                        ),
                        "",
                    ));
                    continue;
                }
            };
            let pending = |input: super::store::OpenInput, reply: Reply| {
                let mut p = Pending::new(
                    self.next_input_id(),
                    open.call.method.clone(),
                    input.input.args,
                    reply,
                );
                p.args_blob = self
                    .blobs
                    .for_input(environment_of(&open.call.app), input.input.args_blob);
                p.attempt = input.attempt + 1;
                p
            };
            let queued: Vec<Pending> = if open.call.is_map {
                let call = Arc::new(super::calls::MapCall::new(
                    record.clone(),
                    self.blobs.dir(environment_of(&open.call.app)),
                ));
                call.expect(open.inputs.len());
                let Some(total) = open.total else {
                    record.complete(failure(
                        proto::FailureKind::BadInput,
                        "the spawned map was never acknowledged: its caller went away (or the \
                         control plane stopped) before its last input arrived",
                        "",
                    ));
                    continue;
                };
                debug_assert_eq!(total as usize, open.inputs.len());
                let mut queued = Vec::new();
                for input in open.inputs {
                    let index = input.input.index;
                    let done = input
                        .result
                        .as_ref()
                        .and_then(|r| <proto::Outcome as prost::Message>::decode(&r[..]).ok());
                    match done {
                        Some(outcome) => call.restore_output(index, outcome),
                        None => queued.push(pending(
                            input,
                            Reply::MapCall {
                                index,
                                call: call.clone(),
                            },
                        )),
                    }
                }
                call.inputs_end();
                queued
            } else {
                open.inputs
                    .into_iter()
                    .take(1)
                    .map(|input| pending(input, Reply::Call(record.clone())))
                    .collect()
            };
            calls += 1;
            inputs += queued.len();
            if !queued.is_empty() {
                self.submit(&function, queued);
            }
        }
        if calls > 0 {
            tracing::info!(
                calls,
                inputs,
                "resumed the detached calls of the previous control plane"
            );
        }
    }

    /// A new input id.
    pub(crate) fn next_input_id(&self) -> u64 {
        self.next_input_id.fetch_add(1, Ordering::Relaxed)
    }

    // ----- apps -----

    /// Registers a new version of an app. Ephemeral apps get a unique name
    /// and live while their program holds their lease.
    pub(crate) async fn create_app(
        &self,
        caller: &super::access::Caller,
        request: proto::CreateAppRequest,
    ) -> Result<proto::CreateAppResponse, Status> {
        if !super::catalog::valid_app_name(&request.name) {
            return Err(Status::invalid_argument(format!(
                "`{}` is not a valid app name: use 1 to 64 letters, digits, `-` or `_`",
                request.name
            )));
        }
        let manifest: Manifest = serde_json::from_str(&request.manifest_json).map_err(|e| {
            Status::invalid_argument(format!("the app's manifest is not valid: {e}"))
        })?;
        manifest.validate().map_err(Status::invalid_argument)?;
        self.check_secrets(&caller.environment, &manifest)?;
        // A program's own (ephemeral) app is registered before the
        // program's code runs, so that code can make its volumes only
        // after: for it, a missing volume fails the containers that would
        // mount it (naming it), not the start.
        if !request.ephemeral {
            self.check_volumes(&caller.environment, &manifest)?;
        }
        let binary = match request.binary {
            Some(proto::create_app_request::Binary::LocalPath(_))
                if !caller.may_name_server_paths() =>
            {
                return Err(Status::permission_denied(
                    "a binary named by its path on the control plane's machine is accepted \
                     only from the control plane's own process; upload the binary instead \
                     (`cargo xtask deploy` and `Client::create_app` with `AppBinary::Upload` do)",
                ));
            }
            Some(proto::create_app_request::Binary::LocalPath(p)) => {
                let path = PathBuf::from(p);
                // A deployed version records what it runs. Hashing a large
                // binary takes a while: not on the threads that serve calls
                // and heartbeats.
                let sha256 = if request.ephemeral || !path.is_file() {
                    String::new()
                } else {
                    let hashed = path.clone();
                    tokio::task::spawn_blocking(move || super::binaries::sha256_file(&hashed))
                        .await
                        .map_err(|e| Status::internal(format!("hashing the binary failed: {e}")))?
                        .map_err(|e| {
                            Status::invalid_argument(format!(
                                "cannot read the app's binary `{}`: {e}",
                                path.display()
                            ))
                        })?
                };
                BinarySource::Path { path, sha256 }
            }
            Some(proto::create_app_request::Binary::UploadedId(id)) => BinarySource::Uploaded(id),
            None => return Err(Status::invalid_argument("the request names no binary")),
        };
        self.prepare(&binary, &manifest).await?;
        let registered = self.catalog.create_app(
            &caller.app_key(&request.name)?,
            request.ephemeral,
            manifest,
            binary,
        )?;
        Ok(self.registered(registered))
    }

    /// Has the backend ready what the functions of `manifest` need (the
    /// Docker backend builds their images), and refuses resources it can
    /// never give: `FAILED_PRECONDITION` naming the function, before
    /// anything is registered.
    async fn prepare(&self, binary: &BinarySource, manifest: &Manifest) -> Result<(), Status> {
        let path = self.catalog.binary_path(binary)?;
        let mut prepared = std::collections::HashSet::new();
        for f in &manifest.functions {
            let resources = super::backend::Resources::of(&f.options);
            self.backend
                .check(&f.name, &resources)
                .map_err(Status::failed_precondition)?;
            if prepared.insert(resources.image.clone()) {
                self.backend.prepare(&path, &resources).await.map_err(|e| {
                    Status::failed_precondition(format!("function `{}`: {e}", f.name))
                })?;
            }
        }
        Ok(())
    }

    /// A new version copying an earlier one.
    pub(crate) fn rollback(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<proto::CreateAppResponse, Status> {
        let registered = self.catalog.rollback(name, version, |manifest| {
            self.check_secrets(environment_of(name), manifest)?;
            self.check_volumes(environment_of(name), manifest)
        })?;
        Ok(self.registered(registered))
    }

    /// `FAILED_PRECONDITION` naming the first secret a function of
    /// `manifest` names that `environment` does not hold.
    fn check_secrets(&self, environment: &str, manifest: &Manifest) -> Result<(), Status> {
        for f in &manifest.functions {
            self.access
                .secret_env(environment, &f.options.secrets)
                .map_err(|e| Status::failed_precondition(format!("function `{}`: {e}", f.name)))?;
        }
        Ok(())
    }

    /// `FAILED_PRECONDITION` naming the first volume a function of
    /// `manifest` mounts that `environment` does not hold, and how to make it.
    fn check_volumes(&self, environment: &str, manifest: &Manifest) -> Result<(), Status> {
        for f in &manifest.functions {
            self.volumes
                .mounts(environment, &f.options.volumes)
                .map_err(|e| Status::failed_precondition(format!("function `{}`: {e}", f.name)))?;
        }
        Ok(())
    }

    /// A class instance, bound on first use; the secrets and volumes its
    /// options name must exist.
    pub(crate) fn bind_instance(
        &self,
        class_id: u64,
        params: bytes::Bytes,
        overrides: &str,
    ) -> Result<proto::FunctionInfo, Status> {
        let info = self.catalog.bind_instance(class_id, params, overrides)?;
        let instance = self.catalog.function(info.function_id)?;
        self.access
            .secret_env(environment_of(&instance.app), &instance.options.secrets)
            .map_err(|e| Status::failed_precondition(format!("`{}`: {e}", instance.name)))?;
        self.volumes
            .mounts(environment_of(&instance.app), &instance.options.volumes)
            .map_err(|e| Status::failed_precondition(format!("`{}`: {e}", instance.name)))?;
        Ok(info)
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
            // Its name never comes back: its series would only pile up.
            for f in &functions {
                f.telemetry.forget();
            }
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

    /// [`ControlPlane::callable`], for `caller`: the function must be of
    /// the caller's environment.
    pub(crate) fn callable_by(
        &self,
        caller: &super::access::Caller,
        id: u64,
        method: &str,
    ) -> Result<Arc<Pool>, Status> {
        let function = self.function_of(caller, id)?;
        function
            .check_method(method)
            .map_err(Status::invalid_argument)?;
        Ok(function)
    }

    /// Function (or instance) `id`, if it is of `caller`'s environment.
    pub(crate) fn function_of(
        &self,
        caller: &super::access::Caller,
        id: u64,
    ) -> Result<Arc<Pool>, Status> {
        let function = self.catalog.function(id)?;
        caller.check_app(
            &function.app,
            &format!("function {id} (`{}`)", function.name),
        )?;
        Ok(function)
    }

    /// Changes the autoscaler settings of a function or instance, keeps
    /// them in the store until its app is deployed again (answering once
    /// they are durable), and applies them now: the pool fills to its new
    /// minimum, and idle containers beyond its new maximum stop.
    pub(crate) async fn update_autoscaler(
        self: &Arc<Self>,
        function: &Arc<Pool>,
        update: AutoscalerUpdate,
    ) -> Result<proto::AutoscalerSettings, Status> {
        // Asked before the pool's lock is taken: the catalog's locks come
        // first.
        let durable = self.catalog.is_deployed(&function.app);
        let (before, after, committed) = function
            .update_autoscaler(update, |settings| {
                durable.then(|| {
                    self.store.commit(vec![Write::Autoscaler {
                        app: function.app.clone(),
                        settings: StoredAutoscaler {
                            function_id: function.id,
                            version: function.version,
                            min_containers: settings.min_containers,
                            max_containers: settings.max_containers,
                            buffer_containers: settings.buffer_containers,
                            scaledown_window_secs: settings.scaledown_window_secs,
                        },
                    }])
                })
            })
            .map_err(Status::invalid_argument)?;
        if let Some(committed) = committed
            && let Err(e) = committed.await
        {
            function.revert_autoscaler(after, before);
            return Err(e.into_status());
        }
        self.upkeep_pool(function);
        Ok(function.autoscaler_settings())
    }

    /// Queues inputs and starts the containers they need.
    pub(crate) fn submit(self: &Arc<Self>, function: &Arc<Pool>, inputs: Vec<Pending>) {
        let to_start = function.submit(inputs);
        self.start_containers(function, to_start);
    }

    /// Accepts one message's inputs: one share of the inline budget for
    /// them all (waiting for room as long as it takes: the sender is held
    /// back meanwhile), each with the reply `reply` makes from its position
    /// and itself.
    pub(crate) async fn admit(
        &self,
        environment: &str,
        method: &str,
        trace: Option<crate::trace::TraceParent>,
        inputs: Vec<proto::MapInput>,
        mut reply: impl FnMut(usize, &proto::MapInput) -> Reply,
    ) -> Vec<Pending> {
        let budget = self
            .budget
            .wait_for(inputs.iter().map(|i| i.args.len()))
            .await;
        self.telemetry.map_inputs_started(inputs.len());
        let traceparent = Origin::new(CallKind::Map, trace).traceparent();
        inputs
            .into_iter()
            .enumerate()
            .map(|(k, input)| {
                let reply = reply(k, &input);
                let mut p =
                    Pending::new(self.next_input_id(), method.to_owned(), input.args, reply);
                p.args_blob = self.blobs.for_input(environment, input.args_blob);
                p.budget = Some(budget.clone());
                p.kind = CallKind::Map;
                p.traceparent = traceparent.clone();
                p
            })
            .collect()
    }

    /// Queues one input calling `method` of `function` (arguments inline,
    /// or in blob `args_blob`), whose outcome goes to `reply`; `origin`
    /// says what kind of call it is and which trace it belongs to. Returns
    /// its input id.
    #[allow(
        clippy::too_many_arguments,
        reason = "one input's parts, as requests carry them"
    )]
    pub(crate) fn submit_one(
        self: &Arc<Self>,
        function: &Arc<Pool>,
        method: String,
        args: bytes::Bytes,
        args_blob: String,
        reply: Reply,
        budget: BudgetShare,
        origin: Origin,
    ) -> u64 {
        let input_id = self.next_input_id();
        let mut input = Pending::new(input_id, method, args, reply);
        input.args_blob = self
            .blobs
            .for_input(environment_of(&function.app), args_blob);
        input.budget = Some(budget);
        input.kind = origin.kind;
        input.traceparent = origin.traceparent();
        self.telemetry.call_started(origin.kind);
        self.submit(function, vec![input]);
        input_id
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
                if input.reply.is_settled() {
                    function.abandoned("", [&input]);
                } else {
                    cp.submit(&function, vec![input]);
                }
            });
        }
    }

    /// A spawned call, or why there is none: from memory, else (a call
    /// finished a while ago) from the store.
    pub(crate) async fn call(
        &self,
        call_id: &str,
    ) -> Result<Arc<super::calls::CallRecord>, Status> {
        let lookup = match self.calls.get(call_id) {
            Lookup::Unknown if self.store.is_durable() => {
                match self
                    .store
                    .read_call(call_id)
                    .await
                    .map_err(|e| e.into_status())?
                {
                    Some(stored) if stored.expired => Lookup::Expired,
                    Some(stored) => match stored
                        .outcome
                        .as_ref()
                        .and_then(|o| <proto::Outcome as prost::Message>::decode(&o[..]).ok())
                    {
                        Some(outcome) => {
                            Lookup::Found(self.calls.reloaded(call_id, stored, outcome))
                        }
                        None => Lookup::Unknown,
                    },
                    None => Lookup::Unknown,
                }
            }
            lookup => lookup,
        };
        match lookup {
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
    pub(crate) async fn cancel_call(
        self: &Arc<Self>,
        caller: &super::access::Caller,
        call_id: &str,
        terminate_containers: bool,
    ) -> Result<(), Status> {
        let record = self.call(call_id).await?;
        caller.check_app(&record.app, &format!("call `{call_id}`"))?;
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
}
