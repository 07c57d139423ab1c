//! Containers of a pool: starting, connecting, ready, lost, retired,
//! stopped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::decide;
use super::{CommandSender, INFRA_RETRIES, Pending, Pool, Retire, Slot, SlotState, failure};
use crate::proto::{self, ContainerCommand, FailureKind, container_command};

/// One container of a pool, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerSnapshot {
    pub id: String,
    /// `starting` (not yet connected), `entering` (a class's instance
    /// being built), `ready` (taking inputs) or `stopping`.
    pub state: &'static str,
    /// Since the control plane asked for it.
    pub age: Duration,
    pub running_inputs: usize,
}

impl Pool {
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
        self.telemetry.container_ready(slot.started.elapsed());
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
                std::mem::replace(&mut slot.state, SlotState::Stopping(None))
            else {
                unreachable!("matched above")
            };
            slot.state = SlotState::Ready(commands);
            slot.idle_since = Instant::now();
            self.telemetry.container_ready(slot.started.elapsed());
            self.dispatch(&mut s);
        }
    }

    /// A container sent something: it is alive.
    pub(crate) fn touch(&self, container_id: &str) {
        if let Some(slot) = self.sched.lock().unwrap().slots.get_mut(container_id) {
            slot.last_seen = Instant::now();
        }
    }

    /// A container is gone. Its inputs run again on another container (up
    /// to [`INFRA_RETRIES`] times each), then fail with `reason`; if it never
    /// connected and no other container can take the queue, the queue fails
    /// too. Returns how many containers to start in its place.
    /// An input whose container ran out of memory fails at once: it would
    /// only run out again on the next.
    pub(crate) fn container_gone(
        &self,
        container_id: &str,
        reason: &str,
        cause: crate::server::backend::ExitCause,
    ) -> usize {
        let out_of_memory = cause == crate::server::backend::ExitCause::OutOfMemory;
        let (in_flight, queue, replacements, stopped) = {
            let mut s = self.sched.lock().unwrap();
            let Some(mut slot) = s.slots.remove(container_id) else {
                return 0;
            };
            if !s.stopped && !out_of_memory {
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
            if never_connected && !s.stopped {
                self.telemetry.container_start_failed();
            }
            let others_alive = s
                .slots
                .values()
                .any(|o| !matches!(o.state, SlotState::Stopping(_)));
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
                if out_of_memory {
                    (FailureKind::OutOfMemory, reason)
                } else {
                    (FailureKind::ContainerCrashed, reason)
                },
                (FailureKind::ContainerStart, start_failure.as_str()),
            )
        };
        let lost = in_flight
            .into_values()
            .map(|p| {
                let message = if p.infra_retries > 0 {
                    format!(
                        "{} (the input was run on {} containers, and each was lost)",
                        in_flight_failure.1,
                        p.infra_retries + 1
                    )
                } else {
                    in_flight_failure.1.to_owned()
                };
                let outcome = failure(in_flight_failure.0, &message, container_id);
                (p, outcome)
            })
            .collect();
        self.settle(container_id, lost);
        // The queue's inputs never ran: no container is theirs.
        let unstarted = queue
            .into_iter()
            .map(|p| (p, failure(queue_failure.0, queue_failure.1, container_id)))
            .collect();
        self.settle("", unstarted);
        replacements
    }

    /// Containers to retire now: idle past the window (beyond the minimum),
    /// idle at all (beyond the maximum), silent past `heartbeat_timeout`, or
    /// not connected after `start_timeout`.
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
            .filter(|slot| !matches!(slot.state, SlotState::Stopping(_)))
            .count();
        let autoscaler = self.autoscaler();
        let limits = decide::Limits {
            heartbeat_timeout,
            startup_timeout: start_timeout,
            scaledown_window: Duration::from_secs(u64::from(autoscaler.scaledown_window_secs)),
        };
        let min = autoscaler.min_containers as usize;
        let max = autoscaler.max(self.max_containers_default) as usize;
        let busy = !s.queue.is_empty();
        for (id, slot) in s.slots.iter_mut() {
            let phase = match slot.state {
                SlotState::Starting | SlotState::Entering(_) => decide::Phase::Starting {
                    for_: now.duration_since(slot.started),
                },
                SlotState::Ready(_) => decide::Phase::Ready {
                    silent_for: now.duration_since(slot.last_seen),
                    idle_for: now.duration_since(slot.idle_since),
                    running: slot.in_flight.len(),
                },
                SlotState::Stopping(_) => decide::Phase::Stopping,
            };
            let shrink = if live > max {
                // `max_containers` was lowered: idle containers go now.
                decide::Shrink::Now
            } else if !busy && live > min {
                decide::Shrink::AfterWindow
            } else {
                decide::Shrink::No
            };
            match decide::verdict(phase, limits, shrink) {
                decide::Verdict::Keep => {}
                decide::Verdict::StartupTimeout => retire.push(Retire::StartupTimeout(id.clone())),
                decide::Verdict::Lost => retire.push(Retire::Lost(id.clone())),
                decide::Verdict::Idle => {
                    // Told to stop now, it finishes, runs `exit` and exits
                    // within the grace period the control plane gives it.
                    slot.stop();
                    live -= 1;
                    retire.push(Retire::Idle(id.clone()));
                }
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

    /// A newer version took this one's place: it keeps no warm pool, and
    /// its idle containers go now. Callers pinned to it still get
    /// containers on demand, which scale to zero when idle. Returns the
    /// containers to stop.
    pub(crate) fn supersede(&self) -> Vec<String> {
        self.autoscaler.lock().unwrap().min_containers = 0;
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

    pub(super) fn stop_own(&self) -> Vec<String> {
        let (queue, ids) = {
            let mut s = self.sched.lock().unwrap();
            s.stopped = true;
            let queue: Vec<Pending> = s.queue.drain(..).collect();
            (queue, s.slots.keys().cloned().collect::<Vec<_>>())
        };
        let message = format!("app `{}` was stopped", self.app);
        let stopped = queue
            .into_iter()
            .map(|p| (p, failure(FailureKind::AppStopped, &message, "")))
            .collect();
        self.settle("", stopped);
        for id in &ids {
            self.stop_container(id);
        }
        ids
    }

    /// This pool's own containers as they are now (not a class's
    /// instances': each instance is a pool of its own), oldest id first.
    pub(crate) fn container_snapshots(&self) -> Vec<ContainerSnapshot> {
        let now = Instant::now();
        let s = self.sched.lock().unwrap();
        let mut list: Vec<ContainerSnapshot> = s
            .slots
            .iter()
            .map(|(id, slot)| ContainerSnapshot {
                id: id.clone(),
                state: match slot.state {
                    SlotState::Starting => "starting",
                    SlotState::Entering(_) => "entering",
                    SlotState::Ready(_) => "ready",
                    SlotState::Stopping(_) => "stopping",
                },
                age: now.saturating_duration_since(slot.started),
                running_inputs: slot.in_flight.len(),
            })
            .collect();
        // `c-9` before `c-10`.
        list.sort_by(|a, b| (a.id.len(), &a.id).cmp(&(b.id.len(), &b.id)));
        list
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
