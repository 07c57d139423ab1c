//! What containers print, fanned out per app to whoever follows it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::proto::LogLine;

/// Lines kept per app for followers that arrive later.
const HISTORY: usize = 1000;
/// Lines a slow follower may fall behind before it misses some.
const BACKLOG: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub(crate) enum LogEvent {
    Line(LogLine),
    /// The app stopped; nothing more will come.
    Closed,
}

#[derive(Default)]
pub(crate) struct LogHub {
    apps: Mutex<HashMap<String, AppLog>>,
}

struct AppLog {
    tx: broadcast::Sender<LogEvent>,
    history: VecDeque<LogLine>,
    closed: bool,
}

impl AppLog {
    fn new() -> Self {
        AppLog {
            tx: broadcast::channel(BACKLOG).0,
            history: VecDeque::new(),
            closed: false,
        }
    }
}

impl LogHub {
    pub(crate) fn publish(&self, app: &str, line: LogLine) {
        let mut apps = self.apps.lock().unwrap();
        let log = apps.entry(app.to_owned()).or_insert_with(AppLog::new);
        if log.history.len() == HISTORY {
            log.history.pop_front();
        }
        log.history.push_back(line.clone());
        let _ = log.tx.send(LogEvent::Line(line));
    }

    /// Starts following `app`: the lines held so far (if asked), then a
    /// receiver for the rest, and whether the app has already stopped.
    pub(crate) fn subscribe(
        &self,
        app: &str,
        history: bool,
    ) -> (Vec<LogLine>, broadcast::Receiver<LogEvent>, bool) {
        let mut apps = self.apps.lock().unwrap();
        let log = apps.entry(app.to_owned()).or_insert_with(AppLog::new);
        let past = if history {
            log.history.iter().cloned().collect()
        } else {
            Vec::new()
        };
        (past, log.tx.subscribe(), log.closed)
    }

    /// Ends every follower's stream of `app`.
    pub(crate) fn close(&self, app: &str) {
        let mut apps = self.apps.lock().unwrap();
        let log = apps.entry(app.to_owned()).or_insert_with(AppLog::new);
        log.closed = true;
        let _ = log.tx.send(LogEvent::Closed);
    }

    /// Re-opens `app` (a stopped app deployed again).
    pub(crate) fn reopen(&self, app: &str) {
        let mut apps = self.apps.lock().unwrap();
        if let Some(log) = apps.get_mut(app) {
            log.closed = false;
        }
    }

    /// Forgets an app entirely (ephemeral apps, once stopped).
    pub(crate) fn remove(&self, app: &str) {
        self.apps.lock().unwrap().remove(app);
    }
}
