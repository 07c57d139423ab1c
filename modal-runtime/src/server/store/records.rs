//! What the store keeps, as plain values: the writes the control plane
//! makes ([`Write`]), what a start reads back ([`Snapshot`]), and how a
//! group of writes becomes one transaction ([`Plan`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::registry::Manifest;

/// One deployed version of an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredVersion {
    pub name: String,
    pub version: u32,
    pub binary: PathBuf,
    /// SHA-256 of the binary, in hex (empty for ephemeral runs).
    #[serde(default)]
    pub binary_sha256: String,
    pub manifest: Manifest,
    pub created_at_ms: i64,
    /// Set for a version made by a rollback: the version it copies.
    #[serde(default)]
    pub rolled_back_from: Option<u32>,
    /// The id of each of its functions and classes, by name: kept across
    /// restarts, so that callers holding an id keep reaching the same one.
    #[serde(default)]
    pub function_ids: BTreeMap<String, u64>,
}

/// A bound class instance: its id and what its containers are built from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredInstance {
    pub id: u64,
    pub class_id: u64,
    pub params: Bytes,
    pub overrides: String,
}

/// Autoscaler settings of one function or class instance of a deployed
/// version, as `update_autoscaler` left them: they stand until the app is
/// deployed again (a new version's rows are dropped with the older
/// versions' when it is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredAutoscaler {
    pub function_id: u64,
    pub version: u32,
    pub min_containers: u32,
    /// `None`: the server's default.
    pub max_containers: Option<u32>,
    pub buffer_containers: u32,
    pub scaledown_window_secs: u32,
}

/// A detached call (`spawn` or `spawn_map`) as accepted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewCall {
    pub id: Arc<str>,
    pub app: String,
    /// How the call is named to callers: `square`, `Model.predict`.
    pub function: String,
    /// The function or class instance running it.
    pub function_id: u64,
    /// The method its inputs call (empty for a function).
    pub method: String,
    /// A spawned map: its outcome is the list of its inputs' results.
    pub is_map: bool,
    pub created_ms: i64,
    /// The tick a scheduled run was made for (its due time); `None` for
    /// a call somebody made.
    pub scheduled_ms: Option<i64>,
}

/// A deployed function's schedule: what it is, when it runs next, and the
/// tick it ran last with that run's call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredSchedule {
    /// The app's catalog key.
    pub app: String,
    pub function: String,
    /// The version whose schedule this is.
    pub version: u32,
    /// The schedule as JSON (`Schedule`), to tell a changed one apart.
    pub spec: String,
    /// The next tick, milliseconds since the epoch: every tick before it
    /// is claimed (it ran, or was skipped as missed).
    pub next_ms: i64,
    pub last_tick_ms: Option<i64>,
    pub last_call_id: Option<String>,
}

/// One accepted input of a detached call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredInput {
    pub index: u64,
    pub args: Bytes,
    /// A large argument payload's blob id (then `args` is empty).
    pub args_blob: String,
}

/// One change to what the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    /// A version was deployed (its app serves again if it was stopped).
    Version(Box<StoredVersionRecord>),
    AppStopped {
        app: String,
        stopped: bool,
    },
    /// Every id below this mark may have been handed out.
    IdMark(u64),
    Instance(StoredInstance),
    /// A function's or instance's autoscaler settings, of app `app`.
    Autoscaler {
        app: String,
        settings: StoredAutoscaler,
    },
    Call(NewCall),
    Inputs {
        call_id: Arc<str>,
        inputs: Vec<StoredInput>,
    },
    /// Every input of a spawned map was accepted: it has `total`.
    MapTotal {
        call_id: Arc<str>,
        total: u64,
    },
    /// An input was handed to a container as this attempt.
    Dispatched {
        call_id: Arc<str>,
        index: u64,
        attempt: u32,
    },
    /// One input of a spawned map succeeded: its encoded `Outcome`.
    InputDone {
        call_id: Arc<str>,
        index: u64,
        outcome: Bytes,
    },
    /// A call's outcome (encoded `Outcome`): it is finished, and its
    /// inputs are forgotten.
    Outcome {
        call_id: Arc<str>,
        outcome: Bytes,
        finished_ms: i64,
    },
    /// An access record (a token, an environment, a secret) was set, or
    /// with `record: None` removed.
    Access(AccessRecord),
    /// A schedule was set (a deploy, a claimed tick), or with `row: None`
    /// removed (its app stopped, its function is gone).
    Schedule {
        app: String,
        function: String,
        row: Option<StoredSchedule>,
    },
    /// Outcomes of calls finished before `finished_before_ms` are dropped
    /// (the call is remembered as expired); calls expired before
    /// `forget_before_ms` are forgotten.
    Expire {
        finished_before_ms: i64,
        forget_before_ms: i64,
    },
}

/// What kind of access record a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AccessKind {
    Token,
    Environment,
    Secret,
}

impl AccessKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccessKind::Token => "token",
            AccessKind::Environment => "environment",
            AccessKind::Secret => "secret",
        }
    }

    pub(crate) fn parse(kind: &str) -> Option<AccessKind> {
        [
            AccessKind::Token,
            AccessKind::Environment,
            AccessKind::Secret,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// One token, environment or secret as stored: its JSON, by kind and key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccessRecord {
    pub kind: AccessKind,
    pub key: String,
    /// `None`: the record is removed.
    pub record: Option<String>,
}

/// A version as written: its record and its JSON (made once, by the
/// writer's caller).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredVersionRecord {
    pub app: String,
    pub version: u32,
    pub json: String,
}

impl StoredVersionRecord {
    pub(crate) fn new(v: &StoredVersion) -> Self {
        StoredVersionRecord {
            app: v.name.clone(),
            version: v.version,
            json: serde_json::to_string(v).expect("a version always encodes"),
        }
    }
}

/// Everything a starting control plane reads back.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub id_mark: u64,
    /// Oldest first within each app.
    pub versions: Vec<StoredVersion>,
    pub stopped_apps: HashSet<String>,
    pub instances: Vec<StoredInstance>,
    /// Autoscaler settings changed since their version was deployed.
    pub autoscalers: Vec<StoredAutoscaler>,
    /// Calls with no outcome yet.
    pub open_calls: Vec<OpenCall>,
    /// Tokens, environments and secrets.
    pub access: Vec<AccessRecord>,
    pub schedules: Vec<StoredSchedule>,
}

/// A call with no outcome yet, as a restart finds it.
#[derive(Debug, Clone)]
pub(crate) struct OpenCall {
    pub call: NewCall,
    /// A spawned map's input count, once its last input was accepted.
    pub total: Option<u64>,
    pub inputs: Vec<OpenInput>,
}

#[derive(Debug, Clone)]
pub(crate) struct OpenInput {
    pub input: StoredInput,
    /// The last attempt handed to a container (0: never dispatched).
    pub attempt: u32,
    /// A spawned map input's encoded success, if it has one.
    pub result: Option<Bytes>,
}

/// A call as `get` reads it back from the store.
#[derive(Debug, Clone)]
pub(crate) struct StoredCall {
    pub app: String,
    pub function: String,
    pub function_id: u64,
    /// Encoded `Outcome`; `None` while running, or once expired.
    pub outcome: Option<Bytes>,
    pub expired: bool,
}

/// A group of writes as one transaction: the same effect as applying them
/// in order, arranged by kind so that each kind is one statement (or one
/// prepared statement run many times).
///
/// Order within a group does not matter once grouped by kind, because
/// kinds are applied in causal order (a call before its inputs, inputs
/// before their dispatches and results, outcomes after all of those,
/// expiry last), and writes of one kind to one key are reduced to the one
/// that stands (the last app state, the highest attempt, the highest mark).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub versions: Vec<StoredVersionRecord>,
    pub app_states: Vec<(String, bool)>,
    pub id_mark: Option<u64>,
    pub instances: Vec<StoredInstance>,
    /// By app; the last write to a function stands. Applied after
    /// `versions`, whose older versions' settings are then dropped.
    pub autoscalers: Vec<(String, StoredAutoscaler)>,
    pub calls: Vec<NewCall>,
    pub inputs: Vec<(Arc<str>, StoredInput)>,
    pub totals: Vec<(Arc<str>, u64)>,
    pub dispatched: Vec<(Arc<str>, u64, u32)>,
    pub results: Vec<(Arc<str>, u64, Bytes)>,
    pub outcomes: Vec<(Arc<str>, Bytes, i64)>,
    /// In the order written: a later write to a key overrides an earlier.
    pub access: Vec<AccessRecord>,
    /// In the order written: a later write to a key overrides an earlier.
    pub schedules: Vec<(String, String, Option<StoredSchedule>)>,
    pub expire: Option<(i64, i64)>,
}

impl Plan {
    /// The plan for `writes`, applied in order. Work made moot within the
    /// group is left out: a dispatch whose input also got its result, and
    /// dispatches and results of a call that also got its outcome.
    pub(crate) fn new(writes: Vec<Write>) -> Plan {
        let finished: HashSet<Arc<str>> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Outcome { call_id, .. } => Some(call_id.clone()),
                _ => None,
            })
            .collect();
        let done: HashSet<(Arc<str>, u64)> = writes
            .iter()
            .filter_map(|w| match w {
                Write::InputDone { call_id, index, .. } => Some((call_id.clone(), *index)),
                _ => None,
            })
            .collect();
        let mut plan = Plan::default();
        let mut app_states: HashMap<String, usize> = HashMap::new();
        let mut dispatched: HashMap<(Arc<str>, u64), usize> = HashMap::new();
        let mut autoscalers: HashMap<u64, usize> = HashMap::new();
        for write in writes {
            match write {
                Write::Version(v) => plan.versions.push(*v),
                Write::AppStopped { app, stopped } => match app_states.get(&app) {
                    Some(&at) => plan.app_states[at].1 = stopped,
                    None => {
                        app_states.insert(app.clone(), plan.app_states.len());
                        plan.app_states.push((app, stopped));
                    }
                },
                Write::IdMark(mark) => plan.id_mark = plan.id_mark.max(Some(mark)),
                Write::Instance(i) => plan.instances.push(i),
                Write::Autoscaler { app, settings } => {
                    match autoscalers.get(&settings.function_id) {
                        Some(&at) => plan.autoscalers[at] = (app, settings),
                        None => {
                            autoscalers.insert(settings.function_id, plan.autoscalers.len());
                            plan.autoscalers.push((app, settings));
                        }
                    }
                }
                Write::Call(c) => plan.calls.push(c),
                Write::Inputs { call_id, inputs } => plan
                    .inputs
                    .extend(inputs.into_iter().map(|i| (call_id.clone(), i))),
                Write::MapTotal { call_id, total } => plan.totals.push((call_id, total)),
                Write::Dispatched {
                    call_id,
                    index,
                    attempt,
                } => {
                    if finished.contains(&call_id) || done.contains(&(call_id.clone(), index)) {
                        continue;
                    }
                    match dispatched.get(&(call_id.clone(), index)) {
                        Some(&at) => {
                            let slot = &mut plan.dispatched[at].2;
                            *slot = (*slot).max(attempt);
                        }
                        None => {
                            dispatched.insert((call_id.clone(), index), plan.dispatched.len());
                            plan.dispatched.push((call_id, index, attempt));
                        }
                    }
                }
                Write::InputDone {
                    call_id,
                    index,
                    outcome,
                } => {
                    if !finished.contains(&call_id) {
                        plan.results.push((call_id, index, outcome));
                    }
                }
                Write::Outcome {
                    call_id,
                    outcome,
                    finished_ms,
                } => plan.outcomes.push((call_id, outcome, finished_ms)),
                Write::Access(record) => plan.access.push(record),
                Write::Schedule { app, function, row } => plan.schedules.push((app, function, row)),
                Write::Expire {
                    finished_before_ms,
                    forget_before_ms,
                } => plan.expire = Some((finished_before_ms, forget_before_ms)),
            }
        }
        plan
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn moot_dispatches_and_results_are_left_out() {
        let plan = Plan::new(vec![
            Write::Dispatched {
                call_id: id("a"),
                index: 0,
                attempt: 1,
            },
            Write::Dispatched {
                call_id: id("a"),
                index: 1,
                attempt: 1,
            },
            Write::InputDone {
                call_id: id("a"),
                index: 0,
                outcome: Bytes::from_static(b"r"),
            },
            Write::Dispatched {
                call_id: id("b"),
                index: 0,
                attempt: 1,
            },
            Write::InputDone {
                call_id: id("b"),
                index: 0,
                outcome: Bytes::from_static(b"r"),
            },
            Write::Outcome {
                call_id: id("b"),
                outcome: Bytes::from_static(b"o"),
                finished_ms: 5,
            },
            Write::Dispatched {
                call_id: id("a"),
                index: 1,
                attempt: 2,
            },
        ]);
        // Input a/0 got its result, and call b its outcome, in the group.
        assert_eq!(plan.dispatched, vec![(id("a"), 1, 2)]);
        assert_eq!(plan.results.len(), 1);
        assert_eq!(plan.results[0].0, id("a"));
        assert_eq!(plan.outcomes.len(), 1);
    }

    #[test]
    fn the_last_app_state_and_the_highest_mark_stand() {
        let plan = Plan::new(vec![
            Write::AppStopped {
                app: "x".into(),
                stopped: true,
            },
            Write::IdMark(2048),
            Write::AppStopped {
                app: "y".into(),
                stopped: true,
            },
            Write::IdMark(1024),
            Write::AppStopped {
                app: "x".into(),
                stopped: false,
            },
        ]);
        assert_eq!(
            plan.app_states,
            vec![("x".to_owned(), false), ("y".to_owned(), true)]
        );
        assert_eq!(plan.id_mark, Some(2048));
        assert!(Plan::new(Vec::new()).is_empty());
    }
}
