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
    outcome: watch::Sender<Option<Outcome>>,
    created: Instant,
}

impl CallRecord {
    pub(crate) fn complete(&self, outcome: Outcome) {
        self.outcome.send_replace(Some(outcome));
    }

    /// The outcome, waiting up to `timeout` for it.
    pub(crate) async fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let mut rx = self.outcome.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|o| o.is_some())).await;
        rx.borrow().clone()
    }

    fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

#[derive(Default)]
pub(crate) struct CallStore {
    calls: Mutex<HashMap<String, std::sync::Arc<CallRecord>>>,
}

impl CallStore {
    pub(crate) fn create(&self, app: &str, function: &str) -> (String, std::sync::Arc<CallRecord>) {
        let id = format!("fc-{}", uuid::Uuid::new_v4().simple());
        let record = std::sync::Arc::new(CallRecord {
            app: app.to_owned(),
            function: function.to_owned(),
            outcome: watch::channel(None).0,
            created: Instant::now(),
        });
        self.calls
            .lock()
            .unwrap()
            .insert(id.clone(), record.clone());
        (id, record)
    }

    pub(crate) fn get(&self, id: &str) -> Option<std::sync::Arc<CallRecord>> {
        self.calls.lock().unwrap().get(id).cloned()
    }

    /// Forgets finished calls older than `retention`.
    pub(crate) fn expire(&self, retention: Duration) {
        self.calls
            .lock()
            .unwrap()
            .retain(|_, c| !(c.is_done() && c.created.elapsed() > retention));
    }
}
