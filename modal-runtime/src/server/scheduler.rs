//! One function's inputs and containers: the queue, the dispatcher and the
//! scaling decisions.
//!
//! Inputs are pushed to containers over their open streams, many per message.
//! Each container holds at most its concurrency plus a small prefetch, sized
//! from the function's measured run time so that short inputs keep a pipeline
//! full while long ones are not hoarded by one container.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// One input of a map stream.
    Map {
        index: u64,
        sink: mpsc::UnboundedSender<proto::MapOutput>,
    },
    /// A spawned call.
    Call(Arc<CallRecord>),
}

impl Reply {
    pub(crate) fn deliver(self, outcome: proto::Outcome) {
        match self {
            Reply::Once(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Map { index, sink } => {
                let _ = sink.send(proto::MapOutput {
                    index,
                    outcome: Some(outcome),
                });
            }
            Reply::Call(record) => record.complete(outcome),
        }
    }

    fn fail(self, kind: FailureKind, message: &str, container_id: &str) {
        self.deliver(failure(kind, message, container_id));
    }
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

/// An input waiting for a container.
pub(crate) struct Pending {
    pub input_id: u64,
    pub args: Bytes,
    pub reply: Reply,
}

type CommandSender = mpsc::UnboundedSender<Result<ContainerCommand, Status>>;

enum SlotState {
    /// Started, not yet connected.
    Starting,
    /// Connected and taking inputs.
    Ready(CommandSender),
    /// Told to stop; takes no more inputs.
    Stopping,
}

struct Slot {
    state: SlotState,
    in_flight: HashMap<u64, Reply>,
    started: Instant,
    idle_since: Instant,
    last_seen: Instant,
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
    /// Silent past the heartbeat timeout, or never connected: kill it.
    Lost(String),
}

/// A deployed function: its identity, options and live scheduling state.
pub(crate) struct FunctionRuntime {
    pub id: u64,
    pub app: String,
    pub name: String,
    pub version: u32,
    pub fingerprint: String,
    pub options: FunctionOptions,
    pub binary: PathBuf,
    /// The server-wide cap where the function sets none.
    max_containers_default: u32,
    sched: Mutex<Sched>,
    /// Moving average of the run time of one input, in microseconds.
    exec_us: AtomicU64,
}

impl FunctionRuntime {
    pub(crate) fn new(
        id: u64,
        version: &StoredVersion,
        function: &FunctionManifest,
        max_containers_default: u32,
    ) -> Self {
        FunctionRuntime {
            id,
            app: version.name.clone(),
            name: function.name.clone(),
            version: version.version,
            fingerprint: function.fingerprint.clone(),
            options: function.options.clone(),
            binary: version.binary.clone(),
            max_containers_default,
            sched: Mutex::default(),
            exec_us: AtomicU64::new(0),
        }
    }

    fn max_containers(&self) -> usize {
        self.options
            .max_containers
            .unwrap_or(self.max_containers_default)
            .max(1) as usize
    }

    /// Inputs one container runs at once.
    fn concurrency(&self) -> usize {
        1
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

    /// How many containers to add for the current backlog.
    fn containers_to_start(&self, s: &Sched) -> usize {
        let live = s
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, SlotState::Stopping))
            .count();
        let in_flight: usize = s.slots.values().map(|slot| slot.in_flight.len()).sum();
        let backlog = s.queue.len() + in_flight;
        let mut wanted = backlog.div_ceil(self.concurrency());
        if backlog > 0 {
            wanted += self.options.buffer_containers as usize;
        }
        let wanted = wanted
            .max(self.options.min_containers as usize)
            .min(self.max_containers());
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

    /// A container connected: it starts taking inputs.
    pub(crate) fn connected(&self, container_id: &str, commands: CommandSender) -> bool {
        let mut s = self.sched.lock().unwrap();
        let Some(slot) = s.slots.get_mut(container_id) else {
            return false;
        };
        if !matches!(slot.state, SlotState::Starting) {
            return false;
        }
        slot.state = SlotState::Ready(commands);
        slot.last_seen = Instant::now();
        self.dispatch(&mut s);
        true
    }

    /// A container sent something: it is alive.
    pub(crate) fn touch(&self, container_id: &str) {
        if let Some(slot) = self.sched.lock().unwrap().slots.get_mut(container_id) {
            slot.last_seen = Instant::now();
        }
    }

    /// Outcomes from a container. Inputs it was not running (a late answer
    /// after it was declared lost) are ignored.
    pub(crate) fn outputs(&self, container_id: &str, outputs: Vec<proto::ContainerOutput>) {
        let mut delivered = Vec::with_capacity(outputs.len());
        {
            let mut s = self.sched.lock().unwrap();
            let now = Instant::now();
            let Some(slot) = s.slots.get_mut(container_id) else {
                return;
            };
            slot.last_seen = now;
            for output in outputs {
                if let Some(reply) = slot.in_flight.remove(&output.input_id) {
                    self.record_exec_time(output.exec_us);
                    delivered.push((reply, output.outcome.unwrap_or_default()));
                }
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

    /// A container is gone. Its inputs fail with `reason`; if it never
    /// connected and no other container can take the queue, the queue fails
    /// too. Returns how many containers to start in its place.
    pub(crate) fn container_gone(&self, container_id: &str, reason: &str) -> usize {
        let (in_flight, queue, replacements, stopped) = {
            let mut s = self.sched.lock().unwrap();
            let Some(slot) = s.slots.remove(container_id) else {
                return 0;
            };
            let never_connected = matches!(slot.state, SlotState::Starting);
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
        let start_failure = format!("container {container_id} {reason} before it connected");
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
        for reply in in_flight.into_values() {
            reply.fail(in_flight_failure.0, in_flight_failure.1, container_id);
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
            let batch: Vec<Pending> = s.queue.drain(..take).collect();
            let slot = s.slots.get_mut(&id).expect("slot listed above");
            let SlotState::Ready(commands) = &slot.state else {
                unreachable!("only ready slots are listed")
            };
            let mut inputs = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            for p in batch {
                inputs.push(proto::ContainerInput {
                    input_id: p.input_id,
                    function: self.name.clone(),
                    args: p.args,
                });
                replies.push((p.input_id, p.reply));
            }
            let command = ContainerCommand {
                cmd: Some(container_command::Cmd::Inputs(proto::InputBatch { inputs })),
            };
            match commands.send(Ok(command)) {
                Ok(()) => {
                    slot.in_flight.extend(replies);
                }
                Err(mpsc::error::SendError(Ok(ContainerCommand {
                    cmd: Some(container_command::Cmd::Inputs(batch)),
                }))) => {
                    // The stream just closed; the inputs go back to the front
                    // and the container is cleaned up when its exit is seen.
                    slot.state = SlotState::Stopping;
                    for (input, (_, reply)) in batch.inputs.into_iter().zip(replies).rev() {
                        s.queue.push_front(Pending {
                            input_id: input.input_id,
                            args: input.args,
                            reply,
                        });
                    }
                }
                Err(_) => unreachable!("the failed send returns what was sent"),
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
        let min = self.options.min_containers as usize;
        let busy = !s.queue.is_empty();
        for (id, slot) in s.slots.iter_mut() {
            match slot.state {
                SlotState::Starting if now.duration_since(slot.started) > start_timeout => {
                    retire.push(Retire::Lost(id.clone()));
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
                    slot.state = SlotState::Stopping;
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
        if let SlotState::Ready(commands) = &slot.state {
            let _ = commands.send(Ok(ContainerCommand {
                cmd: Some(container_command::Cmd::Stop(proto::Stop {})),
            }));
        }
        slot.state = SlotState::Stopping;
        true
    }

    /// Stops taking inputs: fails the queue and returns every container to stop.
    pub(crate) fn stop(&self) -> Vec<String> {
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

    pub(crate) fn container_count(&self) -> usize {
        self.sched.lock().unwrap().slots.len()
    }
}
