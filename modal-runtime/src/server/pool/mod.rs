//! A pool: one function's, or one class instance's, inputs and containers:
//! the queue, the dispatcher and the scaling decisions. A class itself is a
//! pool that runs no containers; each of its instances has its own.
//!
//! Inputs are pushed to containers over their open streams, many per message.
//! Each container holds at most its concurrency plus a small prefetch, sized
//! from the function's measured run time so that short inputs keep a pipeline
//! full while long ones are not hoarded by one container.
//!
//! - `autoscaler.rs`: the settings a pool scales by, and their run-time changes.
//! - `input.rs`: an input and where its outcome goes.
//! - `decide.rs`: the decisions (prefetch, how many containers, which to
//!   retire) as plain functions over plain numbers.
//! - `dispatch.rs`: inputs in, onto containers, outcomes out.
//! - `lifecycle.rs`: containers starting, connecting, lost, retired, stopped.
//!
//! Each pool's state is behind its own lock, never held across an await or
//! while an outcome is delivered (waking a caller may run its code inline).
//! Commands to a container are queued under the lock, on the container's
//! unbounded channel, which never waits: the lock is what keeps one
//! container's commands in order (its inputs before its `Stop`, a `Cancel`
//! after the input it cancels).

mod autoscaler;
mod decide;
mod dispatch;
mod input;
mod lifecycle;
#[cfg(test)]
mod props;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::Status;

pub(crate) use autoscaler::{Autoscaler, Update as AutoscalerUpdate};
pub(crate) use input::{INFRA_RETRIES, Origin, Pending, Reply, failure};

use crate::options::FunctionOptions;
use crate::proto::{self, ContainerCommand, container_command};
use crate::registry::FunctionManifest;
use crate::server::store::StoredVersion;
use crate::server::telemetry::{Ended, Ending, PoolTelemetry};

type CommandSender = mpsc::UnboundedSender<Result<ContainerCommand, Status>>;

enum SlotState {
    /// Started, not yet connected.
    Starting,
    /// Connected, building its instance and running `enter` (classes only).
    Entering(CommandSender),
    /// Connected and taking inputs.
    Ready(CommandSender),
    /// Told to stop; takes no more inputs. Its command stream stays open
    /// until it exits: ending it would end the container's session, which
    /// the control plane takes for a lost container and kills at once,
    /// before its inputs finish and its `exit` hook runs.
    Stopping(Option<CommandSender>),
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
        let commands = match std::mem::replace(&mut self.state, SlotState::Stopping(None)) {
            SlotState::Ready(commands) | SlotState::Entering(commands) => {
                let _ = commands.send(Ok(ContainerCommand {
                    cmd: Some(container_command::Cmd::Stop(proto::Stop {})),
                }));
                Some(commands)
            }
            SlotState::Stopping(commands) => commands,
            SlotState::Starting => None,
        };
        self.state = SlotState::Stopping(commands);
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
pub(crate) struct Pool {
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
    /// What it scales by: its options', or what `update_autoscaler` (or
    /// `keep_warm`) set since. Never locked while calling out.
    autoscaler: Mutex<Autoscaler>,
    sched: Mutex<Sched>,
    /// Moving average of the run time of one input, in microseconds.
    exec_us: AtomicU64,
    /// Its function's metrics and recent calls (a class's instances share
    /// their class's).
    pub telemetry: Arc<PoolTelemetry>,
}

/// What a [`Pool`] stands for.
pub(crate) enum Kind {
    Function,
    /// A class: takes no inputs itself; its instances do.
    Class {
        methods: Vec<String>,
        /// Instances bound so far, by parameters and options.
        instances: Mutex<HashMap<(Bytes, String), Arc<Pool>>>,
    },
    /// One instance of a class; its containers build it from `params`.
    Instance {
        methods: Vec<String>,
        params: Bytes,
    },
}

impl Pool {
    pub(crate) fn new(
        id: u64,
        version: &StoredVersion,
        function: &FunctionManifest,
        max_containers_default: u32,
        telemetry: Arc<PoolTelemetry>,
    ) -> Self {
        let kind = match &function.methods {
            Some(methods) => Kind::Class {
                methods: methods.iter().map(|m| m.name.clone()).collect(),
                instances: Mutex::default(),
            },
            None => Kind::Function,
        };
        Pool {
            id,
            app: version.name.clone(),
            name: function.name.clone(),
            version: version.version,
            fingerprint: function.fingerprint.clone(),
            autoscaler: Mutex::new(Autoscaler::of(&function.options)),
            options: function.options.clone(),
            binary: version.binary.clone(),
            kind,
            max_containers_default,
            sched: Mutex::default(),
            exec_us: AtomicU64::new(0),
            telemetry,
        }
    }

    /// The instance of this class with these parameters and options,
    /// created on first use. `Err` names what is wrong with the request.
    pub(crate) fn instance(
        &self,
        params: Bytes,
        overrides: &str,
        next_id: impl FnOnce() -> u64,
    ) -> Result<Arc<Pool>, String> {
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
        let instance = Arc::new(Pool {
            id: next_id(),
            app: self.app.clone(),
            name: self.name.clone(),
            version: self.version,
            fingerprint: self.fingerprint.clone(),
            autoscaler: Mutex::new(Autoscaler::of(&options)),
            options,
            binary: self.binary.clone(),
            kind: Kind::Instance {
                methods: methods.clone(),
                params,
            },
            max_containers_default: self.max_containers_default,
            sched: Mutex::default(),
            exec_us: AtomicU64::new(0),
            telemetry: self.telemetry.clone(),
        });
        instances.insert(key, instance.clone());
        Ok(instance)
    }

    /// The class's instances so far (none for a function or an instance).
    pub(crate) fn instances(&self) -> Vec<Arc<Pool>> {
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

    /// The settings it scales by now.
    pub(crate) fn autoscaler(&self) -> Autoscaler {
        *self.autoscaler.lock().unwrap()
    }

    pub(super) fn max_containers(&self) -> usize {
        self.autoscaler().max(self.max_containers_default) as usize
    }

    pub(super) fn min_containers(&self) -> usize {
        self.autoscaler().min_containers as usize
    }

    /// Changes its autoscaler settings at run time (`update_autoscaler`,
    /// `keep_warm`). `Err` names what is wrong, and nothing changed.
    /// `record` is handed the new settings before they take effect, under
    /// this pool's lock (so that concurrent changes are recorded in the
    /// order they take effect); it must not call back into the pool.
    /// Returns the settings before and after, and what `record` returned.
    /// Filling or trimming the pool to the new bounds is the caller's
    /// next step.
    pub(crate) fn update_autoscaler<R>(
        &self,
        update: AutoscalerUpdate,
        record: impl FnOnce(&Autoscaler) -> R,
    ) -> Result<(Autoscaler, Autoscaler, R), String> {
        if matches!(self.kind, Kind::Class { .. }) {
            return Err(format!(
                "`{}` is a class: change the autoscaler of an instance (bound with its \
                 parameters), not of the class",
                self.name
            ));
        }
        let mut current = self.autoscaler.lock().unwrap();
        let before = *current;
        let after = before
            .updated(update, self.max_containers_default)
            .map_err(|e| format!("`{}`: {e}", self.name))?;
        let recorded = record(&after);
        *current = after;
        Ok((before, after, recorded))
    }

    /// Undoes a change that could not be recorded, unless another came
    /// since.
    pub(crate) fn revert_autoscaler(&self, after: Autoscaler, before: Autoscaler) {
        let mut current = self.autoscaler.lock().unwrap();
        if *current == after {
            *current = before;
        }
    }

    /// The settings as callers see them (the server's default filled in).
    pub(crate) fn autoscaler_settings(&self) -> proto::AutoscalerSettings {
        self.autoscaler().to_proto(self.max_containers_default)
    }

    /// Puts back settings a restart read from the store.
    pub(crate) fn restore_autoscaler(&self, settings: Autoscaler) {
        *self.autoscaler.lock().unwrap() = settings;
    }

    /// Inputs one container runs at once: its concurrency, times the batch
    /// size for a batched function (each concurrent slot runs a batch).
    pub(super) fn concurrency(&self) -> usize {
        self.options.max_inputs.max(1) as usize * self.batch_size()
    }

    /// Inputs per container the autoscaler aims for.
    pub(super) fn target_concurrency(&self) -> usize {
        self.options
            .target_inputs
            .unwrap_or(self.options.max_inputs)
            .max(1) as usize
            * self.batch_size()
    }

    pub(super) fn batch_size(&self) -> usize {
        self.options.batch_max_size.unwrap_or(1).max(1) as usize
    }

    /// Queued inputs, containers and running inputs, now: a class's are
    /// its instances'.
    pub(crate) fn stats(&self) -> proto::FunctionStats {
        let mut stats = self.own_stats();
        for instance in self.instances() {
            let more = instance.stats();
            stats.backlog += more.backlog;
            stats.containers += more.containers;
            stats.running_inputs += more.running_inputs;
        }
        stats
    }

    /// Whether one more web request may queue (see [`decide::has_room`]).
    pub(crate) fn has_room(&self, queue_limit: usize) -> bool {
        let s = self.sched.lock().unwrap();
        let live = s
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, SlotState::Stopping(_)))
            .count();
        decide::has_room(live, self.max_containers(), s.queue.len(), queue_limit)
    }

    /// This pool's own queued inputs, containers and running inputs (none
    /// for a class itself).
    pub(crate) fn own_stats(&self) -> proto::FunctionStats {
        let s = self.sched.lock().unwrap();
        proto::FunctionStats {
            backlog: s.queue.len() as u64,
            containers: s.slots.len() as u32,
            running_inputs: s.slots.values().map(|x| x.in_flight.len() as u64).sum(),
            autoscaler: Some(self.autoscaler_settings()),
        }
    }

    /// Delivers the outcomes of inputs that ended and records them: the one
    /// way an input ends with an outcome. `container_id` ran them (empty:
    /// none did). Called outside the pool's lock: waking a caller may run
    /// its code inline.
    pub(super) fn settle(&self, container_id: &str, ended: Vec<(Pending, proto::Outcome)>) {
        if ended.is_empty() {
            return;
        }
        self.telemetry.ended(
            container_id,
            ended.iter().map(|(p, outcome)| Ended {
                method: &p.method,
                kind: p.kind,
                accepted: p.accepted,
                ending: Ending::of(outcome),
            }),
        );
        for (p, outcome) in ended {
            p.reply.deliver(outcome);
        }
    }

    /// Records inputs that end unrun because nobody waits for them any more
    /// (a cancelled call, a caller gone): as cancelled, on `container_id`
    /// if one held them.
    pub(crate) fn abandoned<'a>(
        &self,
        container_id: &str,
        inputs: impl IntoIterator<Item = &'a Pending>,
    ) {
        self.telemetry.ended(
            container_id,
            inputs.into_iter().map(|p| Ended {
                method: &p.method,
                kind: p.kind,
                accepted: p.accepted,
                ending: Ending::Failed(proto::FailureKind::Cancelled),
            }),
        );
    }

    /// Inputs one container may hold now.
    pub(super) fn window(&self) -> usize {
        decide::container_window(self.concurrency(), self.exec_us.load(Ordering::Relaxed))
    }

    pub(super) fn record_exec_time(&self, exec_us: u64) {
        let exec_us = exec_us.max(1);
        let old = self.exec_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            exec_us
        } else {
            (old * 7 + exec_us) / 8
        };
        self.exec_us.store(new.max(1), Ordering::Relaxed);
    }
}
