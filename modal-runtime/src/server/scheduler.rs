//! One function's inputs and containers: the queue, the dispatcher and the
//! scaling decisions.
//!
//! Inputs are pushed to containers over their open streams, many per message.
//! Each container holds at most its concurrency plus a small prefetch, sized
//! from the function's measured run time so that short inputs keep a pipeline
//! full while long ones are not hoarded by one container.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::calls::CallRecord;
use super::store::StoredVersion;
use crate::options::FunctionOptions;
use crate::proto::{self, ContainerCommand, FailureKind, container_command, outcome};
use crate::registry::FunctionManifest;

/// Work a container may have queued beyond what it runs, in microseconds of
/// the function's measured run time.
const PREFETCH_BUDGET_US: u64 = 2_000;
const MAX_PREFETCH: u64 = 256;
/// Prefetch before anything has been measured.
const INITIAL_PREFETCH: usize = 8;

/// Where an input's outcome goes.
pub(crate) enum Reply {
    /// A caller waiting in `remote`.
    Once(oneshot::Sender<proto::Outcome>),
    /// One input of a map stream, with the KiB of map window it holds.
    Map {
        index: u64,
        kib: u32,
        sink: mpsc::UnboundedSender<(proto::MapOutput, u32)>,
    },
    /// A spawned call.
    Call(Arc<CallRecord>),
    /// A generator's caller: items as they come, then the outcome.
    Generator(mpsc::UnboundedSender<proto::GeneratorEvent>),
    /// One input of a spawned map.
    MapCall {
        index: u64,
        call: Arc<super::calls::MapCall>,
    },
}

impl Reply {
    pub(crate) fn deliver(self, outcome: proto::Outcome) {
        match self {
            Reply::Once(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Map { index, kib, sink } => {
                let output = proto::MapOutput {
                    index,
                    outcome: Some(outcome),
                };
                let _ = sink.send((output, kib));
            }
            Reply::Call(record) => record.complete(outcome),
            Reply::MapCall { index, call } => call.output(index, outcome),
            Reply::Generator(events) => {
                let _ = events.send(proto::GeneratorEvent {
                    event: Some(proto::generator_event::Event::Done(outcome)),
                });
            }
        }
    }

    fn fail(self, kind: FailureKind, message: &str, container_id: &str) {
        self.deliver(failure(kind, message, container_id));
    }

    /// Whether nobody waits for this outcome any more (a cancelled call, a
    /// caller that went away): such an input is not run again.
    pub(crate) fn is_settled(&self) -> bool {
        match self {
            Reply::Once(tx) => tx.is_closed(),
            Reply::Map { sink, .. } => sink.is_closed(),
            Reply::Call(record) => record.is_done(),
            Reply::MapCall { call, .. } => call.call.is_done(),
            Reply::Generator(events) => events.is_closed(),
        }
    }
}

/// Whether a failure may be retried under the `retries` budget: the
/// function's own failures and timeouts; never bad input, nor infrastructure
/// (handled apart), nor a stopped app.
fn is_retryable(outcome: &proto::Outcome) -> bool {
    matches!(
        &outcome.result,
        Some(outcome::Result::Failure(f))
            if matches!(
                FailureKind::try_from(f.kind),
                Ok(FailureKind::UserError | FailureKind::Panic | FailureKind::Timeout)
            )
    )
}

pub(crate) fn failure(kind: FailureKind, message: &str, container_id: &str) -> proto::Outcome {
    proto::Outcome {
        result: Some(outcome::Result::Failure(proto::Failure {
            kind: kind as i32,
            message: message.to_owned(),
            container_id: container_id.to_owned(),
        })),
    }
}

/// Re-runs of one input after the containers running it died, before it
/// fails: bounded, so that a crash loop ends.
pub(crate) const INFRA_RETRIES: u32 = 3;

/// An input waiting for a container, or running in one.
pub(crate) struct Pending {
    pub input_id: u64,
    /// The method, for a class instance; empty for a function.
    pub method: String,
    pub args: Bytes,
    /// A large argument payload's blob (then `args` is empty).
    pub args_blob: Option<super::blobs::InputBlob>,
    pub reply: Reply,
    /// Which run of the input this is: 1 for the first.
    pub attempt: u32,
    /// Retries used up by user errors and timeouts (the `retries` budget).
    pub retries_used: u32,
    /// Re-runs after a container died under it (not counted against `retries`).
    pub infra_retries: u32,
}

impl Pending {
    /// Whether the input may run again: not a generator, whose items may
    /// already have reached its caller.
    fn may_rerun(&self) -> bool {
        !matches!(self.reply, Reply::Generator(_)) && !self.reply.is_settled()
    }
}

impl Pending {
    pub(crate) fn new(input_id: u64, method: String, args: Bytes, reply: Reply) -> Self {
        Pending {
            input_id,
            method,
            args,
            args_blob: None,
            reply,
            attempt: 1,
            retries_used: 0,
            infra_retries: 0,
        }
    }
}

type CommandSender = mpsc::UnboundedSender<Result<ContainerCommand, Status>>;

enum SlotState {
    /// Started, not yet connected.
    Starting,
    /// Connected, building its instance and running `enter` (classes only).
    Entering(CommandSender),
    /// Connected and taking inputs.
    Ready(CommandSender),
    /// Told to stop; takes no more inputs.
    Stopping,
}

struct Slot {
    state: SlotState,
    in_flight: HashMap<u64, Pending>,
    started: Instant,
    idle_since: Instant,
    last_seen: Instant,
}

impl Slot {
    /// Tells a connected container to stop and takes no more inputs.
    fn stop(&mut self) {
        if let SlotState::Ready(commands) | SlotState::Entering(commands) = &self.state {
            let _ = commands.send(Ok(ContainerCommand {
                cmd: Some(container_command::Cmd::Stop(proto::Stop {})),
            }));
        }
        self.state = SlotState::Stopping;
    }
}

#[derive(Default)]
struct Sched {
    queue: VecDeque<Pending>,
    slots: HashMap<String, Slot>,
    stopped: bool,
}

/// Why the periodic check wants a container gone.
pub(crate) enum Retire {
    /// Idle past the scale-down window: stop gracefully.
    Idle(String),
    /// Silent past the heartbeat timeout: kill it.
    Lost(String),
    /// Not ready (started, connected, `enter` run) within the startup timeout: kill it.
    StartupTimeout(String),
}

/// A deployed function, a class, or one instance of a class (parameter
/// values and option overrides): its identity, options and live scheduling
/// state. Only functions and instances run containers.
pub(crate) struct FunctionRuntime {
    pub id: u64,
    pub app: String,
    pub name: String,
    pub version: u32,
    pub fingerprint: String,
    pub options: FunctionOptions,
    pub binary: PathBuf,
    pub kind: Kind,
    /// The server-wide cap where the function sets none.
    max_containers_default: u32,
    /// Containers kept warm: `min_containers`, or what `keep_warm` set.
    warm: AtomicU32,
    sched: Mutex<Sched>,
    /// Moving average of the run time of one input, in microseconds.
    exec_us: AtomicU64,
}

/// What a [`FunctionRuntime`] stands for.
pub(crate) enum Kind {
    Function,
    /// A class: takes no inputs itself; its instances do.
    Class {
        methods: Vec<String>,
        /// Instances bound so far, by parameters and options.
        instances: Mutex<HashMap<(Bytes, String), Arc<FunctionRuntime>>>,
    },
    /// One instance of a class; its containers build it from `params`.
    Instance {
        methods: Vec<String>,
        params: Bytes,
    },
}

impl FunctionRuntime {
    pub(crate) fn new(
        id: u64,
        version: &StoredVersion,
        function: &FunctionManifest,
        max_containers_default: u32,
    ) -> Self {
        let kind = match &function.methods {
            Some(methods) => Kind::Class {
                methods: methods.iter().map(|m| m.name.clone()).collect(),
                instances: Mutex::default(),
            },
            None => Kind::Function,
        };
        FunctionRuntime {
            id,
            app: version.name.clone(),
            name: function.name.clone(),
            version: version.version,
            fingerprint: function.fingerprint.clone(),
            warm: AtomicU32::new(function.options.min_containers),
            options: function.options.clone(),
            binary: version.binary.clone(),
            kind,
            max_containers_default,
            sched: Mutex::default(),
            exec_us: AtomicU64::new(0),
        }
    }

    /// The instance of this class with these parameters and options,
    /// created on first use. `Err` names what is wrong with the request.
    pub(crate) fn instance(
        &self,
        params: Bytes,
        overrides: &str,
        next_id: impl FnOnce() -> u64,
    ) -> Result<Arc<FunctionRuntime>, String> {
        let Kind::Class { methods, instances } = &self.kind else {
            return Err(format!(
                "`{}` is a function, not a class; call it without binding an instance",
                self.name
            ));
        };
        let options = if overrides.is_empty() {
            self.options.clone()
        } else {
            let overrides: crate::options::ClsOptions = serde_json::from_str(overrides)
                .map_err(|e| format!("the option overrides are not valid: {e}"))?;
            let options = overrides
                .apply(&self.options)
                .map_err(|e| format!("class `{}`: {e}", self.name))?;
            if self.options.batch_max_size.is_none() && options.batch_max_size.is_some() {
                return Err(format!(
                    "class `{}` has no batched method, so `with_batching` does not apply; mark its method `#[app::batched(...)]`",
                    self.name
                ));
            }
            options
        };
        if self.sched.lock().unwrap().stopped {
            return Err(format!("app `{}` is stopped", self.app));
        }
        let mut instances = instances.lock().unwrap();
        let key = (params.clone(), overrides.to_owned());
        if let Some(existing) = instances.get(&key) {
            return Ok(existing.clone());
        }
        let instance = Arc::new(FunctionRuntime {
            id: next_id(),
            app: self.app.clone(),
            name: self.name.clone(),
            version: self.version,
            fingerprint: self.fingerprint.clone(),
            warm: AtomicU32::new(options.min_containers),
            options,
            binary: self.binary.clone(),
            kind: Kind::Instance {
                methods: methods.clone(),
                params,
            },
            max_containers_default: self.max_containers_default,
            sched: Mutex::default(),
            exec_us: AtomicU64::new(0),
        });
        instances.insert(key, instance.clone());
        Ok(instance)
    }

    /// The class's instances so far (none for a function or an instance).
    pub(crate) fn instances(&self) -> Vec<Arc<FunctionRuntime>> {
        match &self.kind {
            Kind::Class { instances, .. } => instances.lock().unwrap().values().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The methods inputs may name: empty for a function.
    pub(crate) fn methods(&self) -> &[String] {
        match &self.kind {
            Kind::Function => &[],
            Kind::Class { methods, .. } | Kind::Instance { methods, .. } => methods,
        }
    }

    /// The parameters its containers build their instance from, for an instance.
    pub(crate) fn instance_params(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Instance { params, .. } => Some(params),
            _ => None,
        }
    }

    /// How calls of `method` are named to their callers: `square`, `Model.predict`.
    pub(crate) fn call_name(&self, method: &str) -> String {
        if method.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{method}", self.name)
        }
    }

    /// Checks that an input may be sent here calling `method`.
    pub(crate) fn check_method(&self, method: &str) -> Result<(), String> {
        match &self.kind {
            Kind::Function if method.is_empty() => Ok(()),
            Kind::Function => Err(format!(
                "`{}` is a function and has no method `{method}`",
                self.name
            )),
            Kind::Class { .. } => Err(format!(
                "`{}` is a class: bind an instance (with its parameter values) and call its methods",
                self.name
            )),
            Kind::Instance { methods, .. } if methods.iter().any(|m| m == method) => Ok(()),
            Kind::Instance { methods, .. } => Err(format!(
                "class `{}` has no method `{method}` (its methods: {})",
                self.name,
                methods.join(", ")
            )),
        }
    }

    fn max_containers(&self) -> usize {
        self.options
            .max_containers
            .unwrap_or(self.max_containers_default)
            .max(1) as usize
    }

    fn min_containers(&self) -> usize {
        self.warm.load(Ordering::Relaxed) as usize
    }

    /// Sets the warm pool at run time (`keep_warm`).
    pub(crate) fn set_min_containers(&self, n: u32) -> Result<(), String> {
        if matches!(self.kind, Kind::Class { .. }) {
            return Err(format!(
                "`{}` is a class: keep an instance warm, not the class",
                self.name
            ));
        }
        let max = self.max_containers();
        if n as usize > max {
            return Err(format!(
                "cannot keep {n} containers of `{}` warm: it runs at most {max} (`max_containers`)",
                self.name
            ));
        }
        self.warm.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// Inputs one container runs at once: its concurrency, times the batch
    /// size for a batched function (each concurrent slot runs a batch).
    fn concurrency(&self) -> usize {
        self.options.max_inputs.max(1) as usize * self.batch_size()
    }

    /// Inputs per container the autoscaler aims for.
    fn target_concurrency(&self) -> usize {
        self.options
            .target_inputs
            .unwrap_or(self.options.max_inputs)
            .max(1) as usize
            * self.batch_size()
    }

    fn batch_size(&self) -> usize {
        self.options.batch_max_size.unwrap_or(1).max(1) as usize
    }

    /// Queued inputs, containers and running inputs, now.
    pub(crate) fn stats(&self) -> proto::FunctionStats {
        let s = self.sched.lock().unwrap();
        let mut stats = proto::FunctionStats {
            backlog: s.queue.len() as u64,
            containers: s.slots.len() as u32,
            running_inputs: s.slots.values().map(|x| x.in_flight.len() as u64).sum(),
        };
        drop(s);
        for instance in self.instances() {
            let more = instance.stats();
            stats.backlog += more.backlog;
            stats.containers += more.containers;
            stats.running_inputs += more.running_inputs;
        }
        stats
    }

    /// Inputs one container may hold: what it runs plus a prefetch sized so
    /// that about [`PREFETCH_BUDGET_US`] of work waits in it.
    fn window(&self) -> usize {
        let exec = self.exec_us.load(Ordering::Relaxed);
        let prefetch = PREFETCH_BUDGET_US
            .checked_div(exec)
            .map_or(INITIAL_PREFETCH, |p| p.clamp(1, MAX_PREFETCH) as usize);
        self.concurrency() + prefetch
    }

    /// Queues inputs and hands them to containers with room. Returns how many
    /// new containers to start.
    pub(crate) fn submit(&self, inputs: Vec<Pending>) -> usize {
        let mut s = self.sched.lock().unwrap();
        if s.stopped {
            drop(s);
            for p in inputs {
                p.reply.fail(
                    FailureKind::AppStopped,
                    &format!("app `{}` is stopped", self.app),
                    "",
                );
            }
            return 0;
        }
        s.queue.extend(inputs);
        self.dispatch(&mut s);
        self.containers_to_start(&s)
    }

    /// How many containers to add for the current backlog. A class itself
    /// runs none: its instances do, each with the class's options.
    fn containers_to_start(&self, s: &Sched) -> usize {
        if matches!(self.kind, Kind::Class { .. }) {
            return 0;
        }
        let live = s
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, SlotState::Stopping))
            .count();
        let in_flight: usize = s.slots.values().map(|slot| slot.in_flight.len()).sum();
        let backlog = s.queue.len() + in_flight;
        let mut wanted = backlog.div_ceil(self.target_concurrency());
        if backlog > 0 {
            wanted += self.options.buffer_containers as usize;
        }
        let wanted = wanted.max(self.min_containers()).min(self.max_containers());
        wanted.saturating_sub(live)
    }

    /// Records containers the control plane is about to start.
    pub(crate) fn starting(&self, container_ids: &[String]) {
        let now = Instant::now();
        let mut s = self.sched.lock().unwrap();
        for id in container_ids {
            s.slots.insert(
                id.clone(),
                Slot {
                    state: SlotState::Starting,
                    in_flight: HashMap::new(),
                    started: now,
                    idle_since: now,
                    last_seen: now,
                },
            );
        }
    }

    /// A container connected. A function's starts taking inputs; an
    /// instance's is sent its parameters and takes inputs once it reports
    /// that `enter` is done.
    pub(crate) fn connected(&self, container_id: &str, commands: CommandSender) -> bool {
        let mut s = self.sched.lock().unwrap();
        let Some(slot) = s.slots.get_mut(container_id) else {
            return false;
        };
        if !matches!(slot.state, SlotState::Starting) {
            return false;
        }
        slot.last_seen = Instant::now();
        if let Some(params) = self.instance_params() {
            let init = ContainerCommand {
                cmd: Some(container_command::Cmd::Init(proto::InitInstance {
                    params: params.clone(),
                })),
            };
            if commands.send(Ok(init)).is_err() {
                return false;
            }
            slot.state = SlotState::Entering(commands);
            return true;
        }
        slot.state = SlotState::Ready(commands);
        self.dispatch(&mut s);
        true
    }

    /// A class's container built its instance and ran `enter`.
    pub(crate) fn ready(&self, container_id: &str) {
        let mut s = self.sched.lock().unwrap();
        let Some(slot) = s.slots.get_mut(container_id) else {
            return;
        };
        slot.last_seen = Instant::now();
        if let SlotState::Entering(_) = &slot.state {
            let SlotState::Entering(commands) =
                std::mem::replace(&mut slot.state, SlotState::Stopping)
            else {
                unreachable!("matched above")
            };
            slot.state = SlotState::Ready(commands);
            slot.idle_since = Instant::now();
            self.dispatch(&mut s);
        }
    }

    /// A container sent something: it is alive.
    pub(crate) fn touch(&self, container_id: &str) {
        if let Some(slot) = self.sched.lock().unwrap().slots.get_mut(container_id) {
            slot.last_seen = Instant::now();
        }
    }

    /// Outcomes from a container. Inputs it was not running (a late answer
    /// after it was declared lost or the input was cancelled) are ignored.
    /// Returns the inputs to run again under the `retries` budget, each with
    /// the delay before it.
    pub(crate) fn outputs(
        &self,
        container_id: &str,
        outputs: Vec<proto::ContainerOutput>,
    ) -> Vec<(Pending, Duration)> {
        let mut delivered = Vec::with_capacity(outputs.len());
        let mut retries = Vec::new();
        {
            let mut s = self.sched.lock().unwrap();
            let now = Instant::now();
            let Some(slot) = s.slots.get_mut(container_id) else {
                return retries;
            };
            slot.last_seen = now;
            for output in outputs {
                let Some(mut p) = slot.in_flight.remove(&output.input_id) else {
                    continue;
                };
                self.record_exec_time(output.exec_us);
                let mut outcome = output.outcome.unwrap_or_default();
                if is_retryable(&outcome) {
                    if p.retries_used < self.options.retries && p.may_rerun() {
                        p.retries_used += 1;
                        p.attempt += 1;
                        let delay = self.options.retry_delay(p.retries_used);
                        retries.push((p, delay));
                        continue;
                    }
                    if p.retries_used > 0
                        && let Some(outcome::Result::Failure(f)) = &mut outcome.result
                    {
                        f.message
                            .push_str(&format!(" (failed on all {} attempts)", p.attempt));
                    }
                }
                delivered.push((p.reply, outcome));
            }
            if slot.in_flight.is_empty() {
                slot.idle_since = now;
            }
            self.dispatch(&mut s);
        }
        // Outside the lock: waking callers may run their code inline.
        for (reply, outcome) in delivered {
            reply.deliver(outcome);
        }
        retries
    }

    /// Items a generator produced: passed on to its caller at once.
    pub(crate) fn items(&self, container_id: &str, items: proto::ContainerItems) {
        let s = self.sched.lock().unwrap();
        if let Some(slot) = s.slots.get(container_id)
            && let Some(p) = slot.in_flight.get(&items.input_id)
            && let Reply::Generator(events) = &p.reply
        {
            let _ = events.send(proto::GeneratorEvent {
                event: Some(proto::generator_event::Event::Items(
                    proto::GeneratorItems {
                        values: items.values,
                    },
                )),
            });
        }
    }

    /// Cancels the input of a spawned call: taken from the queue, or from
    /// the container running it (whose late answer is then ignored). Returns
    /// the container it ran in and its input id, if it was running.
    pub(crate) fn cancel(&self, call: &Arc<CallRecord>) -> Option<(String, u64)> {
        let is_call = |reply: &Reply| matches!(reply, Reply::Call(r) if Arc::ptr_eq(r, call));
        let mut s = self.sched.lock().unwrap();
        if let Some(at) = s.queue.iter().position(|p| is_call(&p.reply)) {
            s.queue.remove(at);
            return None;
        }
        for (id, slot) in s.slots.iter_mut() {
            let found = slot
                .in_flight
                .iter()
                .find(|(_, p)| is_call(&p.reply))
                .map(|(input_id, _)| *input_id);
            if let Some(input_id) = found {
                slot.in_flight.remove(&input_id);
                if slot.in_flight.is_empty() {
                    slot.idle_since = Instant::now();
                }
                if let SlotState::Ready(commands) = &slot.state {
                    let _ = commands.send(Ok(ContainerCommand {
                        cmd: Some(container_command::Cmd::Cancel(proto::CancelInput {
                            input_id,
                        })),
                    }));
                }
                return Some((id.clone(), input_id));
            }
        }
        None
    }

    fn record_exec_time(&self, exec_us: u64) {
        let exec_us = exec_us.max(1);
        let old = self.exec_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            exec_us
        } else {
            (old * 7 + exec_us) / 8
        };
        self.exec_us.store(new.max(1), Ordering::Relaxed);
    }

    /// A container is gone. Its inputs run again on another container (up
    /// to [`INFRA_RETRIES`] times each), then fail with `reason`; if it never
    /// connected and no other container can take the queue, the queue fails
    /// too. Returns how many containers to start in its place.
    pub(crate) fn container_gone(&self, container_id: &str, reason: &str) -> usize {
        let (in_flight, queue, replacements, stopped) = {
            let mut s = self.sched.lock().unwrap();
            let Some(mut slot) = s.slots.remove(container_id) else {
                return 0;
            };
            if !s.stopped {
                let again: Vec<u64> = slot
                    .in_flight
                    .iter()
                    .filter(|(_, p)| p.infra_retries < INFRA_RETRIES && p.may_rerun())
                    .map(|(id, _)| *id)
                    .collect();
                for id in again {
                    let mut p = slot.in_flight.remove(&id).expect("listed above");
                    p.infra_retries += 1;
                    p.attempt += 1;
                    s.queue.push_front(p);
                }
            }
            let never_connected =
                matches!(slot.state, SlotState::Starting | SlotState::Entering(_));
            let others_alive = s
                .slots
                .values()
                .any(|o| !matches!(o.state, SlotState::Stopping));
            // A start failure with nobody left to take the queue fails it,
            // rather than starting the same failing container forever.
            let queue: Vec<Pending> = if s.stopped || (never_connected && !others_alive) {
                s.queue.drain(..).collect()
            } else {
                Vec::new()
            };
            let replacements = if s.stopped || never_connected {
                0
            } else {
                self.containers_to_start(&s)
            };
            (slot.in_flight, queue, replacements, s.stopped)
        };
        let stopped_message = format!("app `{}` was stopped", self.app);
        let start_failure = if reason.starts_with("failed to start") {
            format!("container {container_id} {reason}")
        } else {
            format!("container {container_id} {reason} before it was ready")
        };
        let (in_flight_failure, queue_failure) = if stopped {
            (
                (FailureKind::AppStopped, stopped_message.as_str()),
                (FailureKind::AppStopped, stopped_message.as_str()),
            )
        } else {
            (
                (FailureKind::ContainerCrashed, reason),
                (FailureKind::ContainerStart, start_failure.as_str()),
            )
        };
        for p in in_flight.into_values() {
            let message = if p.infra_retries > 0 {
                format!(
                    "{} (the input was run on {} containers, and each was lost)",
                    in_flight_failure.1,
                    p.infra_retries + 1
                )
            } else {
                in_flight_failure.1.to_owned()
            };
            p.reply.fail(in_flight_failure.0, &message, container_id);
        }
        for p in queue {
            p.reply.fail(queue_failure.0, queue_failure.1, container_id);
        }
        replacements
    }

    /// Sends queued inputs to ready containers with room, least loaded first.
    fn dispatch(&self, s: &mut Sched) {
        if s.queue.is_empty() {
            return;
        }
        let window = self.window();
        let mut ready: Vec<(usize, String)> = s
            .slots
            .iter()
            .filter(|(_, slot)| matches!(slot.state, SlotState::Ready(_)))
            .filter(|(_, slot)| slot.in_flight.len() < window)
            .map(|(id, slot)| (slot.in_flight.len(), id.clone()))
            .collect();
        ready.sort_unstable();
        let mut remaining_slots = ready.len();
        for (load, id) in ready {
            if s.queue.is_empty() {
                break;
            }
            // Share the queue evenly among the containers with room.
            let fair = s.queue.len().div_ceil(remaining_slots);
            remaining_slots -= 1;
            let take = (window - load).min(fair);
            // Inputs nobody waits for any more (a caller gone, a call
            // cancelled) are dropped here rather than run.
            let batch: Vec<Pending> = s
                .queue
                .drain(..take)
                .filter(|p| !p.reply.is_settled())
                .collect();
            if batch.is_empty() {
                continue;
            }
            let slot = s.slots.get_mut(&id).expect("slot listed above");
            let SlotState::Ready(commands) = &slot.state else {
                unreachable!("only ready slots are listed")
            };
            let inputs = batch
                .iter()
                .map(|p| proto::ContainerInput {
                    input_id: p.input_id,
                    method: p.method.clone(),
                    args: p.args.clone(),
                    attempt: p.attempt,
                    args_blob: p
                        .args_blob
                        .as_ref()
                        .map(|b| b.id.clone())
                        .unwrap_or_default(),
                })
                .collect();
            let command = ContainerCommand {
                cmd: Some(container_command::Cmd::Inputs(proto::InputBatch { inputs })),
            };
            if commands.send(Ok(command)).is_ok() {
                slot.in_flight
                    .extend(batch.into_iter().map(|p| (p.input_id, p)));
            } else {
                // The stream just closed; the inputs go back to the front and
                // the container is cleaned up when its exit is seen.
                slot.state = SlotState::Stopping;
                for p in batch.into_iter().rev() {
                    s.queue.push_front(p);
                }
            }
        }
    }

    /// Containers to retire now: idle past the window (beyond the minimum),
    /// silent past `heartbeat_timeout`, or not connected after `start_timeout`.
    pub(crate) fn retire(
        &self,
        heartbeat_timeout: Duration,
        start_timeout: Duration,
    ) -> Vec<Retire> {
        let now = Instant::now();
        let mut s = self.sched.lock().unwrap();
        let mut retire = Vec::new();
        let mut live = s
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, SlotState::Stopping))
            .count();
        let window = Duration::from_secs(u64::from(self.options.scaledown_window_secs));
        let min = self.min_containers();
        let busy = !s.queue.is_empty();
        for (id, slot) in s.slots.iter_mut() {
            match slot.state {
                SlotState::Starting | SlotState::Entering(_)
                    if now.duration_since(slot.started) > start_timeout =>
                {
                    retire.push(Retire::StartupTimeout(id.clone()));
                }
                SlotState::Ready(_) if now.duration_since(slot.last_seen) > heartbeat_timeout => {
                    retire.push(Retire::Lost(id.clone()));
                }
                SlotState::Ready(_)
                    if !busy
                        && slot.in_flight.is_empty()
                        && live > min
                        && now.duration_since(slot.idle_since) >= window =>
                {
                    // Told to stop now, it finishes, runs `exit` and exits
                    // within the grace period the control plane gives it.
                    slot.stop();
                    live -= 1;
                    retire.push(Retire::Idle(id.clone()));
                }
                _ => {}
            }
        }
        retire
    }

    /// Containers to add to reach `min_containers` (checked periodically).
    pub(crate) fn warm_pool_shortfall(&self) -> usize {
        let s = self.sched.lock().unwrap();
        if s.stopped {
            return 0;
        }
        self.containers_to_start(&s)
    }

    /// Marks a container as stopping and tells it so. Returns whether it was
    /// known.
    pub(crate) fn stop_container(&self, container_id: &str) -> bool {
        let mut s = self.sched.lock().unwrap();
        let Some(slot) = s.slots.get_mut(container_id) else {
            return false;
        };
        slot.stop();
        true
    }

    /// Drops queued inputs whose caller went away (an abandoned map), so
    /// that they do not hold up other callers.
    pub(crate) fn drop_settled(&self) {
        let dropped: VecDeque<Pending> = {
            let mut s = self.sched.lock().unwrap();
            let (settled, live) = std::mem::take(&mut s.queue)
                .into_iter()
                .partition(|p| p.reply.is_settled());
            s.queue = live;
            settled
        };
        // Dropped outside the lock: an input's blob is deleted with it.
        drop(dropped);
    }

    /// A newer version took this one's place: it keeps no warm pool, and
    /// its idle containers go now. Callers pinned to it still get
    /// containers on demand, which scale to zero when idle. Returns the
    /// containers to stop.
    pub(crate) fn supersede(&self) -> Vec<String> {
        self.warm.store(0, Ordering::Relaxed);
        let mut ids = Vec::new();
        {
            let mut s = self.sched.lock().unwrap();
            if s.queue.is_empty() {
                for (id, slot) in s.slots.iter_mut() {
                    if matches!(slot.state, SlotState::Ready(_)) && slot.in_flight.is_empty() {
                        slot.stop();
                        ids.push(id.clone());
                    }
                }
            }
        }
        for instance in self.instances() {
            ids.extend(instance.supersede());
        }
        ids
    }

    /// Takes inputs again after a stop (the app was deployed again).
    pub(crate) fn reopen(&self) {
        self.sched.lock().unwrap().stopped = false;
        for instance in self.instances() {
            instance.reopen();
        }
    }

    /// Stops taking inputs (and so do the class's instances): fails the
    /// queue and returns every container to stop.
    pub(crate) fn stop(&self) -> Vec<String> {
        let mut ids = self.stop_own();
        for instance in self.instances() {
            ids.extend(instance.stop());
        }
        ids
    }

    fn stop_own(&self) -> Vec<String> {
        let (queue, ids) = {
            let mut s = self.sched.lock().unwrap();
            s.stopped = true;
            let queue: Vec<Pending> = s.queue.drain(..).collect();
            (queue, s.slots.keys().cloned().collect::<Vec<_>>())
        };
        for p in queue {
            p.reply.fail(
                FailureKind::AppStopped,
                &format!("app `{}` was stopped", self.app),
                "",
            );
        }
        for id in &ids {
            self.stop_container(id);
        }
        ids
    }

    /// Containers of this function, or of all the class's instances.
    pub(crate) fn container_count(&self) -> usize {
        let own = self.sched.lock().unwrap().slots.len();
        own + self
            .instances()
            .iter()
            .map(|i| i.container_count())
            .sum::<usize>()
    }
}
