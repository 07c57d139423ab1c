//! Inputs in, onto containers, outcomes out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decide;
use super::input::is_retryable;
use super::{Kind, Pending, Pool, Reply, Sched, SlotState, failure};
use crate::proto::{self, ContainerCommand, FailureKind, container_command, outcome};
use crate::server::calls::CallRecord;

impl Pool {
    /// Queues inputs and hands them to containers with room. Returns how many
    /// new containers to start.
    pub(crate) fn submit(&self, inputs: Vec<Pending>) -> usize {
        let mut s = self.sched.lock().unwrap();
        if s.stopped {
            drop(s);
            let message = format!("app `{}` is stopped", self.app);
            let failed = inputs
                .into_iter()
                .map(|p| (p, failure(FailureKind::AppStopped, &message, "")))
                .collect();
            self.settle("", failed);
            return 0;
        }
        s.queue.extend(inputs);
        self.dispatch(&mut s);
        self.containers_to_start(&s)
    }

    /// How many containers to add for the current backlog. A class itself
    /// runs none: its instances do, each with the class's options.
    pub(super) fn containers_to_start(&self, s: &Sched) -> usize {
        if matches!(self.kind, Kind::Class { .. }) {
            return 0;
        }
        let live = s
            .slots
            .values()
            .filter(|slot| !matches!(slot.state, SlotState::Stopping(_)))
            .count();
        let in_flight: usize = s.slots.values().map(|slot| slot.in_flight.len()).sum();
        decide::containers_to_add(decide::Demand {
            backlog: s.queue.len() + in_flight,
            live,
            per_container: self.target_concurrency(),
            buffer: self.autoscaler().buffer_containers as usize,
            min: self.min_containers(),
            max: self.max_containers(),
        })
    }

    /// Sends queued inputs to ready containers with room, least loaded first.
    pub(super) fn dispatch(&self, s: &mut Sched) {
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
            let take = decide::share(s.queue.len(), remaining_slots, window - load);
            remaining_slots -= 1;
            // Inputs nobody waits for any more (a caller gone, a call
            // cancelled) are dropped here rather than run.
            let (unwanted, batch): (Vec<Pending>, Vec<Pending>) =
                s.queue.drain(..take).partition(|p| p.reply.is_settled());
            self.abandoned("", &unwanted);
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
                    traceparent: p.traceparent.clone(),
                })
                .collect();
            // Inputs handed over together go in as many messages as their
            // size needs.
            let sent = crate::message_size::input_commands(inputs)
                .into_iter()
                .all(|command| commands.send(Ok(command)).is_ok());
            if sent {
                for p in &batch {
                    p.reply.dispatched(p.attempt);
                }
                slot.in_flight
                    .extend(batch.into_iter().map(|p| (p.input_id, p)));
            } else {
                // The stream just closed; the inputs go back to the front and
                // the container is cleaned up when its exit is seen.
                slot.state = SlotState::Stopping(None);
                for p in batch.into_iter().rev() {
                    s.queue.push_front(p);
                }
            }
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
                self.telemetry.ran(&p.method, output.exec_us);
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
                delivered.push((p, outcome));
            }
            if slot.in_flight.is_empty() {
                slot.idle_since = now;
            }
            self.dispatch(&mut s);
        }
        // Outside the lock: waking callers may run their code inline.
        self.settle(container_id, delivered);
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
        self.cancel_first(|_, reply| matches!(reply, Reply::Call(r) if Arc::ptr_eq(r, call)))
    }

    /// Cancels one input by its id (a generator whose caller went away).
    pub(crate) fn cancel_input(&self, input_id: u64) {
        self.cancel_first(|id, _| id == input_id);
    }

    /// Cancels the first input `is_it` picks (by id and reply): taken from
    /// the queue, or from the container running it, which is told to drop
    /// it. Returns that container and the input's id, if it was running.
    fn cancel_first(&self, is_it: impl Fn(u64, &Reply) -> bool) -> Option<(String, u64)> {
        let mut s = self.sched.lock().unwrap();
        if let Some(at) = s.queue.iter().position(|p| is_it(p.input_id, &p.reply)) {
            self.abandoned("", s.queue.remove(at).as_ref());
            return None;
        }
        for (id, slot) in s.slots.iter_mut() {
            let found = slot
                .in_flight
                .iter()
                .find(|(input_id, p)| is_it(**input_id, &p.reply))
                .map(|(input_id, _)| *input_id);
            if let Some(input_id) = found {
                self.abandoned(id, slot.in_flight.remove(&input_id).as_ref());
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

    /// Lets the generator running `input_id` send `items` more items: its
    /// caller took that many.
    pub(crate) fn grant_items(&self, input_id: u64, items: u32) {
        let s = self.sched.lock().unwrap();
        let running = s
            .slots
            .values()
            .find(|slot| slot.in_flight.contains_key(&input_id));
        if let Some(slot) = running
            && let SlotState::Ready(commands) = &slot.state
        {
            let _ = commands.send(Ok(ContainerCommand {
                cmd: Some(container_command::Cmd::Credit(proto::GeneratorCredit {
                    input_id,
                    items,
                })),
            }));
        }
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
        self.abandoned("", &dropped);
        // Dropped outside the lock: an input's blob is deleted with it.
        drop(dropped);
    }
}
