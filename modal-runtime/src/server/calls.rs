//! Spawned calls: their outcomes, kept for a while for `FunctionCall::get`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::proto::Outcome;

/// One spawned input's outcome, once it exists.
pub(crate) struct CallRecord {
    pub app: String,
    pub function: String,
    /// The function (or class instance) running it.
    pub function_id: u64,
    outcome: watch::Sender<Option<Outcome>>,
    created: Instant,
}

impl CallRecord {
    /// Records the outcome. The first one stands: a cancelled call stays
    /// cancelled whatever its input does later.
    pub(crate) fn complete(&self, outcome: Outcome) {
        self.outcome.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(outcome);
            true
        });
    }

    /// The outcome, waiting up to `timeout` for it.
    pub(crate) async fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let mut rx = self.outcome.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|o| o.is_some())).await;
        rx.borrow().clone()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

#[derive(Default)]
pub(crate) struct CallStore {
    calls: Mutex<HashMap<String, std::sync::Arc<CallRecord>>>,
    /// Calls whose outcome was dropped after the retention, and when: asked
    /// for, they are reported as expired rather than unknown.
    expired: Mutex<HashMap<String, Instant>>,
}

/// What became of a call id.
pub(crate) enum Lookup {
    Found(std::sync::Arc<CallRecord>),
    Expired,
    Unknown,
}

impl CallStore {
    pub(crate) fn create(
        &self,
        app: &str,
        function: &str,
        function_id: u64,
    ) -> (String, std::sync::Arc<CallRecord>) {
        let id = format!("fc-{}", uuid::Uuid::new_v4().simple());
        let record = std::sync::Arc::new(CallRecord {
            app: app.to_owned(),
            function: function.to_owned(),
            function_id,
            outcome: watch::channel(None).0,
            created: Instant::now(),
        });
        self.calls
            .lock()
            .unwrap()
            .insert(id.clone(), record.clone());
        (id, record)
    }

    pub(crate) fn get(&self, id: &str) -> Lookup {
        if let Some(record) = self.calls.lock().unwrap().get(id) {
            return Lookup::Found(record.clone());
        }
        if self.expired.lock().unwrap().contains_key(id) {
            Lookup::Expired
        } else {
            Lookup::Unknown
        }
    }

    /// Forgets finished calls older than `retention`, remembering that they
    /// expired for as long again, and for a day at least.
    pub(crate) fn expire(&self, retention: Duration) {
        let remember = retention.max(Duration::from_secs(24 * 3600));
        let mut gone = Vec::new();
        self.calls.lock().unwrap().retain(|id, c| {
            let keep = !(c.is_done() && c.created.elapsed() > retention);
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        let mut expired = self.expired.lock().unwrap();
        expired.retain(|_, at| at.elapsed() <= remember);
        let now = Instant::now();
        expired.extend(gone.into_iter().map(|id| (id, now)));
    }
}

/// The outcome of a spawned map: one list of results, in input order, or
/// the first failure. Results are encoded one by one; the list is their
/// MessagePack array, built without decoding them.
pub(crate) struct MapCall {
    pub call: std::sync::Arc<CallRecord>,
    /// Where results stored as blobs are read back from.
    blobs: std::path::PathBuf,
    state: Mutex<MapCallState>,
}

#[derive(Default)]
struct MapCallState {
    results: Vec<Option<bytes::Bytes>>,
    received: usize,
    /// Known once every input was sent.
    total: Option<usize>,
}

impl MapCall {
    pub(crate) fn new(call: std::sync::Arc<CallRecord>, blobs: std::path::PathBuf) -> Self {
        MapCall {
            call,
            blobs,
            state: Mutex::default(),
        }
    }

    pub(crate) fn output(&self, index: u64, outcome: Outcome) {
        let value = match outcome.result {
            Some(crate::proto::outcome::Result::Value(v)) => v,
            Some(crate::proto::outcome::Result::ValueBlob(id)) => {
                match std::fs::read(self.blobs.join(&id)) {
                    Ok(v) => v.into(),
                    Err(e) => {
                        self.call.complete(crate::server::scheduler::failure(
                            crate::proto::FailureKind::BadOutput,
                            &format!("a result could not be read back: {e}"),
                            "",
                        ));
                        return;
                    }
                }
            }
            _ => {
                self.call.complete(outcome);
                return;
            }
        };
        let mut state = self.state.lock().unwrap();
        let index = index as usize;
        if state.results.len() <= index {
            state.results.resize(index + 1, None);
        }
        if state.results[index].replace(value).is_none() {
            state.received += 1;
        }
        self.finish_if_done(&mut state);
    }

    /// Every input was sent: `total` of them.
    pub(crate) fn inputs_end(&self, total: usize) {
        let mut state = self.state.lock().unwrap();
        state.total = Some(total);
        self.finish_if_done(&mut state);
    }

    fn finish_if_done(&self, state: &mut MapCallState) {
        if state.total != Some(state.received) || self.call.is_done() {
            return;
        }
        let results = std::mem::take(&mut state.results);
        let mut list = Vec::new();
        rmp::encode::write_array_len(&mut list, results.len() as u32)
            .expect("writing to a Vec cannot fail");
        for value in results.into_iter().flatten() {
            list.extend_from_slice(&value);
        }
        self.call.complete(Outcome {
            result: Some(crate::proto::outcome::Result::Value(list.into())),
        });
    }
}
