//! Schedules: deployed functions that run by themselves
//! (`schedule = Cron(..)` or `Period(..)`).
//!
//! The scheduler owns each schedule's state: the next tick, and the last
//! tick that ran with its call. Every change to that state is queued to
//! the store while the scheduler's lock is held, so the store sees the
//! changes in the order they were made. A tick is claimed in the commit
//! that records its call (the call, its input and the schedule's new next
//! tick, one transaction), and the call is queued only after that commit:
//! a control plane that restarts, or one that takes over the store, reads
//! the next tick back and never claims a tick twice; a claimed call it
//! finds without an outcome runs again, like any spawned call.
//!
//! Only deployed apps that serve have schedules: an ephemeral app's are
//! ignored, a stopped app's are dropped (a redeploy starts them afresh). A
//! redeploy keeps a cron schedule's next tick (its ticks are wall-clock
//! times); a period, or a changed schedule, starts again from the deploy.
//!
//! - `due.rs`: when ticks fall (plain functions).

mod due;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::due::{NEVER, Rule};
use super::calls::CallRecord;
use super::control::ControlPlane;
use super::pool::{Origin, Pool, Reply, failure};
use super::store::{StoredInput, StoredSchedule, Write, now_ms};
use super::telemetry::CallKind;
use crate::options::Schedule;
use crate::proto;

/// How often the scheduler looks at the clock and at what is deployed.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// A deployed function with a schedule, as the catalog has it.
pub(crate) struct Scheduled {
    /// The app's catalog key.
    pub app: String,
    pub version: u32,
    pub function: String,
    pub schedule: Schedule,
    pub pool: Arc<Pool>,
}

/// Every schedule's state, by app key and function name.
#[derive(Default)]
pub(crate) struct Scheduler {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

struct Entry {
    schedule: Schedule,
    rule: Rule,
    version: u32,
    next_ms: i64,
    last: Option<Last>,
}

/// The last tick that ran.
struct Last {
    tick_ms: i64,
    call_id: Arc<str>,
    /// The call, while this control plane holds it in memory.
    record: Option<Arc<CallRecord>>,
    /// What became of it, for a call read back from the store.
    state: Option<String>,
}

/// A tick claimed, waiting for its commit.
struct Claim {
    pool: Arc<Pool>,
    record: Arc<CallRecord>,
    committed: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), super::store::StoreError>> + Send>,
    >,
}

impl Scheduler {
    /// The schedules the store holds.
    pub(crate) fn open(stored: &[StoredSchedule]) -> Scheduler {
        let mut entries = HashMap::new();
        for s in stored {
            let parsed = serde_json::from_str::<Schedule>(&s.spec)
                .map_err(|e| e.to_string())
                .and_then(|schedule| Rule::of(&schedule).map(|rule| (schedule, rule)));
            let (schedule, rule) = match parsed {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::warn!(app = %s.app, function = %s.function, "schedule not restored: {e}");
                    continue;
                }
            };
            let last = match (s.last_tick_ms, &s.last_call_id) {
                (Some(tick_ms), Some(id)) => Some(Last {
                    tick_ms,
                    call_id: Arc::from(id.as_str()),
                    record: None,
                    state: None,
                }),
                _ => None,
            };
            entries.insert(
                (s.app.clone(), s.function.clone()),
                Entry {
                    schedule,
                    rule,
                    version: s.version,
                    next_ms: s.next_ms,
                    last,
                },
            );
        }
        Scheduler {
            entries: Mutex::new(entries),
        }
    }

    /// The schedules of app `app` (its catalog key), by function name:
    /// those `deployed` has (a schedule of an app stopped a moment ago
    /// is not shown, though the scheduler has yet to drop it).
    pub(crate) fn info(&self, app: &str, deployed: &[Scheduled]) -> Vec<proto::ScheduleInfo> {
        let entries = self.entries.lock().unwrap();
        let mut list: Vec<proto::ScheduleInfo> = entries
            .iter()
            .filter(|((a, f), e)| {
                a == app
                    && deployed
                        .iter()
                        .any(|d| d.app == *a && d.function == *f && d.schedule == e.schedule)
            })
            .map(|((_, function), e)| {
                let last = e.last.as_ref();
                proto::ScheduleInfo {
                    function: function.clone(),
                    schedule: e.schedule.to_string(),
                    next_run_ms: if e.next_ms == NEVER { 0 } else { e.next_ms },
                    last_tick_ms: last.map_or(0, |l| l.tick_ms),
                    last_call_id: last.map_or_else(String::new, |l| l.call_id.to_string()),
                    last_state: last.map_or_else(String::new, Last::state),
                }
            })
            .collect();
        list.sort_by(|a, b| a.function.cmp(&b.function));
        list
    }

    /// Brings the schedules in line with what is deployed, and claims the
    /// ticks that are due at `now`. Writes are queued under the lock.
    fn step(&self, cp: &ControlPlane, deployed: Vec<Scheduled>, now: i64) -> Vec<Claim> {
        let mut entries = self.entries.lock().unwrap();
        let mut wanted = std::collections::HashSet::new();
        let mut claims = Vec::new();
        for s in deployed {
            let key = (s.app.clone(), s.function.clone());
            wanted.insert(key.clone());
            let current = entries
                .get(&key)
                .is_some_and(|e| e.version == s.version && e.schedule == s.schedule);
            if !current {
                let rule = match Rule::of(&s.schedule) {
                    Ok(rule) => rule,
                    Err(e) => {
                        tracing::warn!(app = %s.app, function = %s.function, "schedule refused: {e}");
                        continue;
                    }
                };
                let old = entries.remove(&key);
                let kept = old
                    .as_ref()
                    .filter(|old| old.schedule == s.schedule)
                    .map(|old| old.next_ms);
                let next_ms = rule.next_at_deploy(kept, now);
                let last = old.and_then(|old| old.last);
                let entry = Entry {
                    schedule: s.schedule.clone(),
                    rule,
                    version: s.version,
                    next_ms,
                    last,
                };
                cp.store.record(entry.write(&key));
                entries.insert(key.clone(), entry);
            }
            let entry = entries.get_mut(&key).expect("kept or just inserted");
            let Some(due) = entry.rule.due(entry.next_ms, now) else {
                continue;
            };
            if now - due.tick_ms > 2 * LOOK_EVERY.as_millis() as i64 {
                tracing::info!(
                    app = %s.app,
                    function = %s.function,
                    "running the schedule's tick of {} ms ago once, and skipping any missed after it",
                    now - due.tick_ms
                );
            }
            let (record, mut call) =
                cp.calls
                    .create(&s.pool.app, &s.pool.call_name(""), s.pool.id, "", false);
            call.scheduled_ms = Some(due.tick_ms);
            entry.next_ms = due.next_ms;
            entry.last = Some(Last {
                tick_ms: due.tick_ms,
                call_id: record.id.clone(),
                record: Some(record.clone()),
                state: None,
            });
            let committed = cp.store.commit(vec![
                Write::Call(call),
                Write::Inputs {
                    call_id: record.id.clone(),
                    inputs: vec![StoredInput {
                        index: 0,
                        args: no_arguments(),
                        args_blob: String::new(),
                    }],
                },
                entry.write(&key),
            ]);
            claims.push(Claim {
                pool: s.pool,
                record,
                committed: Box::pin(committed),
            });
        }
        // A stopped app's schedules, and those of functions that are
        // gone, end.
        entries.retain(|key, _| {
            let keep = wanted.contains(key);
            if !keep {
                cp.store.record(Write::Schedule {
                    app: key.0.clone(),
                    function: key.1.clone(),
                    row: None,
                });
            }
            keep
        });
        claims
    }

    /// The last calls of a restarted control plane: held in memory when
    /// they had no outcome (they run again), else read back from the store.
    async fn recall(&self, cp: &ControlPlane) {
        let ids: Vec<Arc<str>> = {
            let mut entries = self.entries.lock().unwrap();
            let mut ids = Vec::new();
            for last in entries.values_mut().filter_map(|e| e.last.as_mut()) {
                match cp.calls.get(&last.call_id) {
                    super::calls::Lookup::Found(record) => last.record = Some(record),
                    _ => ids.push(last.call_id.clone()),
                }
            }
            ids
        };
        for id in ids {
            let state = match cp.store.read_call(&id).await {
                Ok(Some(stored)) if stored.expired => "expired".to_owned(),
                Ok(Some(stored)) => state_of(
                    stored
                        .outcome
                        .and_then(|o| <proto::Outcome as prost::Message>::decode(&o[..]).ok())
                        .as_ref(),
                ),
                Ok(None) => "unknown".to_owned(),
                Err(e) => {
                    tracing::warn!(call = %id, "cannot read a scheduled call back: {e}");
                    continue;
                }
            };
            let mut entries = self.entries.lock().unwrap();
            for last in entries.values_mut().filter_map(|e| e.last.as_mut()) {
                if last.call_id == id && last.record.is_none() {
                    last.state = Some(state.clone());
                }
            }
        }
    }
}

impl Entry {
    fn write(&self, key: &(String, String)) -> Write {
        Write::Schedule {
            app: key.0.clone(),
            function: key.1.clone(),
            row: Some(StoredSchedule {
                app: key.0.clone(),
                function: key.1.clone(),
                version: self.version,
                spec: serde_json::to_string(&self.schedule).expect("a schedule always encodes"),
                next_ms: self.next_ms,
                last_tick_ms: self.last.as_ref().map(|l| l.tick_ms),
                last_call_id: self.last.as_ref().map(|l| l.call_id.to_string()),
            }),
        }
    }
}

impl Last {
    fn state(&self) -> String {
        match (&self.record, &self.state) {
            (Some(record), _) => state_of(record.outcome().as_ref()),
            (None, Some(state)) => state.clone(),
            (None, None) => "unknown".to_owned(),
        }
    }
}

/// A call's state as `app list` shows it.
fn state_of(outcome: Option<&proto::Outcome>) -> String {
    use proto::outcome::Result as R;
    match outcome.and_then(|o| o.result.as_ref()) {
        None => "running".to_owned(),
        Some(R::Value(_) | R::ValueBlob(_)) => "succeeded".to_owned(),
        Some(R::Failure(f)) => {
            let kind = proto::FailureKind::try_from(f.kind)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("FAILURE_KIND_")
                        .to_lowercase()
                })
                .unwrap_or_else(|_| "unknown".to_owned());
            format!("failed ({})", kind.replace('_', " "))
        }
    }
}

/// The arguments of a function that takes none.
fn no_arguments() -> bytes::Bytes {
    crate::codec::encode(&()).expect("`()` always encodes")
}

/// The scheduler's loop: every [`LOOK_EVERY`], claims what is due and
/// queues it once committed.
pub(crate) async fn run(cp: Arc<ControlPlane>) {
    cp.schedules.recall(&cp).await;
    let mut look = tokio::time::interval(LOOK_EVERY);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        look.tick().await;
        let claims = cp.schedules.step(&cp, cp.catalog.scheduled(), now_ms());
        for claim in claims {
            let cp = cp.clone();
            tokio::spawn(async move { queue(&cp, claim).await });
        }
    }
}

/// Queues a claimed tick's call once its claim is durable.
async fn queue(cp: &Arc<ControlPlane>, claim: Claim) {
    if let Err(e) = claim.committed.await {
        tracing::error!(function = %claim.record.function, "a schedule's tick was not recorded: {e}");
        claim.record.complete(failure(
            proto::FailureKind::BadInput,
            &format!("the scheduled run was not recorded, so it did not run: {e}"),
            "",
        ));
        return;
    }
    let args = no_arguments();
    let budget = match cp.budget.reserve(args.len()).await {
        Ok(budget) => budget,
        Err(status) => {
            claim.record.complete(failure(
                proto::FailureKind::BadInput,
                &format!(
                    "the scheduled run could not be queued: {}",
                    status.message()
                ),
                "",
            ));
            return;
        }
    };
    cp.submit_one(
        &claim.pool,
        String::new(),
        args,
        String::new(),
        Reply::Call(claim.record),
        budget,
        Origin::new(CallKind::Spawn, None),
    );
}
