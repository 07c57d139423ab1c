//! Detached calls (`spawn`, `spawn_map`): their outcomes, kept for the
//! retention for `FunctionCall::get`, in memory and (with a durable store)
//! in the store.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::store::{NewCall, Store, StoredCall, Write, now_ms};
use crate::contract::{INLINE_LIMIT, MAX_PAYLOAD_BYTES};
use crate::proto::{Outcome, outcome};

/// A detached call (`spawn` or `spawn_map`): where it runs and its outcome,
/// once it exists. A durable call records its progress in the store.
pub(crate) struct CallRecord {
    pub id: Arc<str>,
    pub app: String,
    pub function: String,
    /// The function (or class instance) running it.
    pub function_id: u64,
    outcome: watch::Sender<Option<Outcome>>,
    /// When it got its outcome.
    finished: OnceLock<Instant>,
    store: Store,
}

impl CallRecord {
    /// Records the outcome. The first one stands: a cancelled call stays
    /// cancelled whatever its input does later.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let encoded = self
            .store
            .is_durable()
            .then(|| Bytes::from(prost::Message::encode_to_vec(&outcome)));
        let first = self.outcome.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(outcome);
            true
        });
        if first {
            let _ = self.finished.set(Instant::now());
            if let Some(outcome) = encoded {
                self.store.record(Write::Outcome {
                    call_id: self.id.clone(),
                    outcome,
                    finished_ms: now_ms(),
                });
            }
        }
    }

    /// Its input `index` was handed to a container as `attempt`: after a
    /// restart, it runs again as the attempt after.
    pub(crate) fn dispatched(&self, index: u64, attempt: u32) {
        if self.store.is_durable() {
            self.store.record(Write::Dispatched {
                call_id: self.id.clone(),
                index,
                attempt,
            });
        }
    }

    /// The outcome, waiting up to `timeout` for it.
    pub(crate) async fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let mut rx = self.outcome.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|o| o.is_some())).await;
        rx.borrow().clone()
    }

    /// The outcome now, if it has one.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        self.outcome.borrow().clone()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

/// How long a long poll that asks for `timeout_ms` is held: never more
/// than `cap`, so that no client holds a request (and its connection) open
/// for days. Clients poll again when it ends.
pub(crate) fn long_poll(timeout_ms: u32, cap: Duration) -> Duration {
    Duration::from_millis(u64::from(timeout_ms)).min(cap)
}

/// Detached calls in memory: running ones, and finished ones for a while.
/// With a durable store, a finished call leaves memory after
/// [`FINISHED_IN_MEMORY`] and is read back from the store when asked for.
pub(crate) struct CallStore {
    calls: Mutex<HashMap<Arc<str>, Arc<CallRecord>>>,
    /// Calls whose outcome was dropped after the retention, and when: asked
    /// for, they are reported as expired rather than unknown.
    expired: Mutex<HashMap<Arc<str>, Instant>>,
    store: Store,
}

/// How long a finished call stays in memory when the store has it too.
const FINISHED_IN_MEMORY: Duration = Duration::from_secs(60);

/// What became of a call id.
pub(crate) enum Lookup {
    Found(Arc<CallRecord>),
    Expired,
    Unknown,
}

impl CallStore {
    pub(crate) fn new(store: Store) -> CallStore {
        CallStore {
            calls: Mutex::default(),
            expired: Mutex::default(),
            store,
        }
    }

    /// A new call, and the write that makes it durable (committed, with
    /// its inputs, before its id is given out).
    pub(crate) fn create(
        &self,
        app: &str,
        function: &str,
        function_id: u64,
        method: &str,
        is_map: bool,
    ) -> (Arc<CallRecord>, NewCall) {
        let call = NewCall {
            id: Arc::from(format!("fc-{}", uuid::Uuid::new_v4().simple())),
            app: app.to_owned(),
            function: function.to_owned(),
            function_id,
            method: method.to_owned(),
            is_map,
            created_ms: now_ms(),
            scheduled_ms: None,
        };
        (self.restore(&call), call)
    }

    /// The record of a call the store holds (or one just made).
    pub(crate) fn restore(&self, call: &NewCall) -> Arc<CallRecord> {
        let record = Arc::new(CallRecord {
            id: call.id.clone(),
            app: call.app.clone(),
            function: call.function.clone(),
            function_id: call.function_id,
            outcome: watch::channel(None).0,
            finished: OnceLock::new(),
            store: self.store.clone(),
        });
        self.calls
            .lock()
            .unwrap()
            .insert(call.id.clone(), record.clone());
        record
    }

    /// A finished call read back from the store, held in memory again for a while.
    pub(crate) fn reloaded(
        &self,
        id: &str,
        stored: StoredCall,
        outcome: Outcome,
    ) -> Arc<CallRecord> {
        let record = Arc::new(CallRecord {
            id: Arc::from(id),
            app: stored.app,
            function: stored.function,
            function_id: stored.function_id,
            outcome: watch::channel(Some(outcome)).0,
            finished: OnceLock::from(Instant::now()),
            store: Store::memory(),
        });
        self.calls
            .lock()
            .unwrap()
            .insert(record.id.clone(), record.clone());
        record
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

    /// Forgets finished calls: past `retention` (remembering that they
    /// expired, for as long again and a day at least), and, when the store
    /// has them, after [`FINISHED_IN_MEMORY`].
    pub(crate) fn expire(&self, retention: Duration) {
        let remember = retention.max(Duration::from_secs(24 * 3600));
        let in_memory = if self.store.is_durable() {
            retention.min(FINISHED_IN_MEMORY)
        } else {
            retention
        };
        let mut gone = Vec::new();
        self.calls.lock().unwrap().retain(|id, c| {
            let Some(at) = c.finished.get() else {
                return true;
            };
            let age = at.elapsed();
            if age > retention {
                gone.push(id.clone());
            }
            age <= in_memory
        });
        let mut expired = self.expired.lock().unwrap();
        expired.retain(|_, at| at.elapsed() <= remember);
        let now = Instant::now();
        expired.extend(gone.into_iter().map(|id| (id, now)));
    }
}

/// The outcome of a spawned map: one list of results, in input order, or
/// the first failure. Results are encoded one by one; the list is their
/// MessagePack array, built without decoding them. A list over
/// [`INLINE_LIMIT`] is stored as a blob: no message could hold it.
pub(crate) struct MapCall {
    pub call: Arc<CallRecord>,
    /// The blob store's directory: where large results are, and where a
    /// large list goes.
    blobs: PathBuf,
    state: Mutex<MapCallState>,
}

#[derive(Default)]
struct MapCallState {
    results: Vec<Option<MapResult>>,
    received: usize,
    /// Known once every input was sent.
    total: Option<usize>,
    /// The list is being built, or was.
    finished: bool,
}

/// One result of a spawned map, until the list is built.
enum MapResult {
    Inline(Bytes),
    /// A large result, in the blob its container stored: it stays on disk
    /// and is copied into the list.
    Blob {
        path: PathBuf,
        len: u64,
    },
}

impl MapResult {
    fn len(&self) -> u64 {
        match self {
            MapResult::Inline(b) => b.len() as u64,
            MapResult::Blob { len, .. } => *len,
        }
    }
}

impl MapCall {
    pub(crate) fn new(call: Arc<CallRecord>, blobs: PathBuf) -> Self {
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
        state.results.resize_with(len, || None);
    }

    /// Input `index` has its outcome: a success joins the list (and, with
    /// a durable store, is recorded, so that a restart does not run it
    /// again); a failure ends the map.
    pub(crate) fn output(&self, index: u64, outcome: Outcome) {
        if self.call.store.is_durable()
            && matches!(
                outcome.result,
                Some(outcome::Result::Value(_) | outcome::Result::ValueBlob(_))
            )
        {
            self.call.store.record(Write::InputDone {
                call_id: self.call.id.clone(),
                index,
                outcome: Bytes::from(prost::Message::encode_to_vec(&outcome)),
            });
        }
        self.restore_output(index, outcome);
    }

    /// An outcome the store already holds (a restart's replay).
    pub(crate) fn restore_output(&self, index: u64, outcome: Outcome) {
        let result = match outcome.result {
            Some(outcome::Result::Value(v)) => MapResult::Inline(v),
            Some(outcome::Result::ValueBlob(id)) => {
                let stored = super::blobs::path_in(&self.blobs, &id)
                    .and_then(|path| Some((std::fs::metadata(&path).ok()?.len(), path)));
                match stored {
                    Some((len, path)) => MapResult::Blob { path, len },
                    None => {
                        self.fail(&format!("result {index} (blob `{id}`) is not stored"));
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
        if slot.replace(result).is_none() {
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

    fn fail(&self, message: &str) {
        self.call.complete(crate::server::pool::failure(
            crate::proto::FailureKind::BadOutput,
            message,
            "",
        ));
    }

    fn finish_if_done(&self, state: &mut MapCallState) {
        if state.finished || state.total != Some(state.received) || self.call.is_done() {
            return;
        }
        state.finished = true;
        let results: Vec<MapResult> = std::mem::take(&mut state.results)
            .into_iter()
            .flatten()
            .collect();
        let total: u64 = results.iter().map(MapResult::len).sum();
        let call = self.call.clone();
        let blobs = self.blobs.clone();
        let build = move || match build_list(results, total, &blobs) {
            Ok(outcome) => call.complete(outcome),
            Err(message) => call.complete(crate::server::pool::failure(
                crate::proto::FailureKind::BadOutput,
                &message,
                "",
            )),
        };
        // A large list is written to disk: not on the thread that runs the
        // control plane's tasks.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if total > INLINE_LIMIT as u64 => {
                runtime.spawn_blocking(build);
            }
            _ => build(),
        }
    }
}

impl Drop for MapCall {
    fn drop(&mut self) {
        // A map that failed or was dropped leaves no result blobs behind.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for result in state.results.drain(..).flatten() {
            if let MapResult::Blob { path, .. } = result {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The MessagePack array of `results` (`total` bytes of them): inline when
/// small, else a blob in `blobs`, into which the results stored as blobs
/// are moved.
fn build_list(results: Vec<MapResult>, total: u64, blobs: &Path) -> Result<Outcome, String> {
    let mut header = Vec::new();
    rmp::encode::write_array_len(&mut header, results.len() as u32)
        .expect("writing to a Vec cannot fail");
    let size = total + header.len() as u64;
    if size <= INLINE_LIMIT as u64 {
        let mut list = header;
        for result in results {
            match result {
                MapResult::Inline(bytes) => list.extend_from_slice(&bytes),
                MapResult::Blob { path, .. } => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| format!("a result could not be read back: {e}"))?;
                    list.extend_from_slice(&bytes);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        return Ok(Outcome {
            result: Some(outcome::Result::Value(list.into())),
        });
    }
    if size > MAX_PAYLOAD_BYTES as u64 {
        return Err(format!(
            "the map's results are {size} bytes together, over the limit of {MAX_PAYLOAD_BYTES} \
             bytes for one result; `map` streams results one by one instead"
        ));
    }
    let io = |e: std::io::Error| format!("the map's results could not be stored: {e}");
    let mut list = super::blobs::begin_in(blobs).map_err(io)?;
    list.write(&header).map_err(io)?;
    let mut written = Vec::new();
    for result in results {
        match result {
            MapResult::Inline(bytes) => list.write(&bytes).map_err(io)?,
            MapResult::Blob { path, .. } => {
                let mut file = std::fs::File::open(&path).map_err(io)?;
                let mut chunk = vec![0; 1 << 20];
                loop {
                    let n = file.read(&mut chunk).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    list.write(&chunk[..n]).map_err(io)?;
                }
                written.push(path);
            }
        }
    }
    let (id, _) = list.finish().map_err(io)?;
    for path in written {
        let _ = std::fs::remove_file(path);
    }
    Ok(Outcome {
        result: Some(outcome::Result::ValueBlob(id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_poll_is_capped() {
        let cap = Duration::from_secs(55);
        assert_eq!(long_poll(0, cap), Duration::ZERO);
        assert_eq!(long_poll(1_500, cap), Duration::from_millis(1_500));
        assert_eq!(long_poll(55_000, cap), cap);
        assert_eq!(long_poll(u32::MAX, cap), cap);
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modal-calls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn value(outcome: &Outcome) -> &[u8] {
        match &outcome.result {
            Some(outcome::Result::Value(v)) => v,
            other => panic!("an inline value, not {other:?}"),
        }
    }

    #[test]
    fn a_small_list_is_inline_and_a_large_one_a_blob_holding_the_result_blobs() {
        let dir = scratch();
        let small = build_list(
            vec![
                MapResult::Inline(vec![1].into()),
                MapResult::Inline(vec![2].into()),
            ],
            2,
            &dir,
        )
        .unwrap();
        assert_eq!(value(&small), [0x92, 1, 2]);

        // One result stored as a blob by its container, one inline.
        let mut result = super::super::blobs::begin_in(&dir).unwrap();
        result.write(&vec![7; INLINE_LIMIT + 1]).unwrap();
        let (result_id, len) = result.finish().unwrap();
        let results = vec![
            MapResult::Inline(vec![1].into()),
            MapResult::Blob {
                path: dir.join(&result_id),
                len,
            },
        ];
        let large = build_list(results, len + 1, &dir).unwrap();
        let Some(outcome::Result::ValueBlob(id)) = large.result else {
            panic!("a blob")
        };
        let list = std::fs::read(dir.join(&id)).unwrap();
        assert_eq!(list.len(), 1 + 1 + INLINE_LIMIT + 1);
        assert_eq!(list[..3], [0x92, 1, 7]);
        // The result's own blob went into the list.
        assert!(!dir.join(&result_id).exists());
        std::fs::remove_dir_all(&dir).unwrap();
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
mod spawn_map_index_tests {
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

#[cfg(test)]
mod spawn_map_index_props {
    use proptest::prelude::*;

    use super::check_spawn_map_indices;
    use crate::proto::{MapInput, MapRequest};

    proptest! {
        /// Any indices a client sends: accepted exactly when they continue
        /// the dense numbering, and never a panic.
        #[test]
        fn indices_are_accepted_exactly_when_dense(
            accepted in prop_oneof![Just(0_u64), any::<u64>()],
            indices in proptest::collection::vec(prop_oneof![0..8_u64, any::<u64>()], 0..16),
        ) {
            let inputs: Vec<MapInput> = indices
                .iter()
                .map(|&index| MapInput { index, ..Default::default() })
                .collect();
            let dense = indices
                .iter()
                .enumerate()
                .all(|(k, &i)| accepted.checked_add(k as u64) == Some(i) && i < super::MAX_SPAWN_MAP_INPUTS);
            prop_assert_eq!(check_spawn_map_indices(accepted, &inputs).is_ok(), dense);
        }

        /// Whatever bytes arrive as a map request, decoding and checking
        /// them ends in a value or an error, never a panic.
        #[test]
        fn arbitrary_map_requests_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(request) = <MapRequest as prost::Message>::decode(bytes.as_slice()) {
                let _ = check_spawn_map_indices(0, &request.inputs);
            }
        }
    }
}
