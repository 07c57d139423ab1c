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

    /// `count` more inputs were accepted (numbered in order).
    pub(crate) fn expect(&self, count: usize) {
        let mut state = self.state.lock().unwrap();
        let len = state.results.len() + count;
        state.results.resize(len, None);
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
        // Indices were checked when their inputs were accepted.
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| state.results.get_mut(i))
        else {
            return;
        };
        if slot.replace(value).is_none() {
            state.received += 1;
        }
        self.finish_if_done(&mut state);
    }

    /// Every input was sent.
    pub(crate) fn inputs_end(&self) {
        let mut state = self.state.lock().unwrap();
        state.total = Some(state.results.len());
        self.finish_if_done(&mut state);
    }

    fn finish_if_done(&self, state: &mut MapCallState) {
        if state.total != Some(state.received) || self.call.is_done() {
            return;
        }
        let results = std::mem::take(&mut state.results);
        let mut list = Vec::new();
        // At most `u32::MAX` inputs are accepted, so the length fits.
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

/// The most inputs one spawned map takes: its results travel as one
/// MessagePack array, whose length is a `u32`.
pub(crate) const MAX_SPAWN_MAP_INPUTS: u64 = u32::MAX as u64;

/// Checks the indices of a spawned map's next message, given how many
/// inputs came before it: inputs are numbered 0, 1, 2, … in the order
/// they are sent, each once. `Err` says what is wrong.
pub(crate) fn check_spawn_map_indices(
    accepted: u64,
    inputs: &[crate::proto::MapInput],
) -> Result<(), String> {
    for (offset, input) in inputs.iter().enumerate() {
        let expected = accepted.saturating_add(offset as u64);
        if expected >= MAX_SPAWN_MAP_INPUTS {
            return Err(format!(
                "a spawned map takes at most {MAX_SPAWN_MAP_INPUTS} inputs; split it into several"
            ));
        }
        if input.index != expected {
            return Err(format!(
                "input index {} is out of place: a spawned map's inputs are numbered 0, 1, 2, … \
                 in the order they are sent, each once, so this one must be {expected}",
                input.index
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MapInput;

    fn inputs(indices: &[u64]) -> Vec<MapInput> {
        indices
            .iter()
            .map(|&index| MapInput {
                index,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn dense_indices_in_order_are_accepted_across_messages() {
        assert!(check_spawn_map_indices(0, &inputs(&[0, 1, 2])).is_ok());
        assert!(check_spawn_map_indices(3, &inputs(&[3, 4])).is_ok());
        assert!(check_spawn_map_indices(0, &[]).is_ok());
    }

    #[test]
    fn gaps_duplicates_huge_and_reordered_indices_are_refused() {
        for (accepted, indices) in [
            (0, vec![1 << 40]),
            (0, vec![u64::MAX]),
            (0, vec![0, 0]),
            (0, vec![0, 5]),
            (0, vec![1, 0]),
            (3, vec![0]),
        ] {
            let err = check_spawn_map_indices(accepted, &inputs(&indices)).unwrap_err();
            assert!(err.contains("index"), "{err}");
        }
    }

    #[test]
    fn the_count_is_bounded() {
        let err = check_spawn_map_indices(MAX_SPAWN_MAP_INPUTS, &inputs(&[MAX_SPAWN_MAP_INPUTS]))
            .unwrap_err();
        assert!(err.contains("at most"), "{err}");
    }
}
