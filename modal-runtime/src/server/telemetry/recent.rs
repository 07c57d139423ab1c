//! The last inputs that ended, newest last: a bounded ring, for the
//! dashboard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{CallKind, Ending};

/// How many ended inputs are kept.
pub(crate) const RECENT_CALLS: usize = 500;

/// One input that ended, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCall {
    /// The app as the control plane keys it: its name in environment
    /// `main`, `<environment>/<name>` in any other.
    pub app: String,
    /// The call's name: `square`, or `Model.predict` for a method.
    pub function: String,
    /// `remote`, `spawn`, `map`, `generator` or `web`.
    pub kind: &'static str,
    /// `succeeded`, or the failure's kind (`user_error`, `timeout`, …).
    pub state: String,
    /// When the control plane accepted it.
    pub started_at: SystemTime,
    /// From then to its outcome (queueing and retries included).
    pub duration: Duration,
    /// The container that ran its last attempt; empty if none did.
    pub container_id: String,
}

/// An ended input as the ring holds it: names shared, not copied.
pub(super) struct Entry {
    pub app: Arc<str>,
    pub function: Arc<str>,
    pub kind: CallKind,
    pub ending: Ending,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub container: Arc<str>,
}

impl Entry {
    fn to_call(&self) -> RecentCall {
        RecentCall {
            app: self.app.to_string(),
            function: self.function.to_string(),
            kind: self.kind.as_str(),
            state: self.ending.label().to_owned(),
            started_at: self.started_at,
            duration: self.duration,
            container_id: self.container.to_string(),
        }
    }
}

/// The ring of ended inputs.
pub(crate) struct RecentCalls {
    ring: Mutex<VecDeque<Entry>>,
    capacity: usize,
}

impl RecentCalls {
    pub(super) fn new(capacity: usize) -> Self {
        RecentCalls {
            ring: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Adds inputs that ended together, under one lock; the oldest go.
    pub(super) fn push(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let skip = entries.len().saturating_sub(self.capacity);
        let mut ring = self.ring.lock().unwrap();
        for entry in entries.into_iter().skip(skip) {
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(entry);
        }
    }

    /// At most `limit` of the kept inputs, newest first; of app `app` (as
    /// the control plane keys it) only, when given.
    pub(super) fn newest(&self, app: Option<&str>, limit: usize) -> Vec<RecentCall> {
        let ring = self.ring.lock().unwrap();
        ring.iter()
            .rev()
            .filter(|e| app.is_none_or(|app| *e.app == *app))
            .take(limit)
            .map(Entry::to_call)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::FailureKind;

    fn entry(app: &str, n: u64) -> Entry {
        Entry {
            app: app.into(),
            function: format!("f{n}").into(),
            kind: CallKind::Map,
            ending: if n.is_multiple_of(2) {
                Ending::Succeeded
            } else {
                Ending::Failed(FailureKind::UserError)
            },
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(n),
            duration: Duration::from_millis(n),
            container: "c-1".into(),
        }
    }

    #[test]
    fn the_newest_come_first_and_the_oldest_go() {
        let recent = RecentCalls::new(3);
        recent.push((0..2).map(|n| entry("a", n)).collect());
        recent.push(
            (2..5)
                .map(|n| entry(if n == 3 { "b" } else { "a" }, n))
                .collect(),
        );
        let all = recent.newest(None, 10);
        assert_eq!(
            all.iter().map(|c| c.function.as_str()).collect::<Vec<_>>(),
            ["f4", "f3", "f2"]
        );
        assert_eq!(all[0].state, "succeeded");
        assert_eq!(all[1].state, "user_error");
        assert_eq!(all[1].kind, "map");
        assert_eq!(all[1].app, "b");
        assert_eq!(all[0].duration, Duration::from_millis(4));
        assert_eq!(recent.newest(Some("a"), 10).len(), 2);
        assert_eq!(recent.newest(Some("a"), 1)[0].function, "f4");
        assert!(recent.newest(Some("nobody"), 10).is_empty());
        // A batch larger than the ring keeps its own newest.
        recent.push((10..20).map(|n| entry("a", n)).collect());
        let all = recent.newest(None, 10);
        assert_eq!(
            all.iter().map(|c| c.function.as_str()).collect::<Vec<_>>(),
            ["f19", "f18", "f17"]
        );
    }
}
