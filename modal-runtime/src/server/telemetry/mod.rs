//! What the control plane knows of the calls it ran, for the dashboard.
//!
//! Calls are not recorded yet: [`ControlPlane::recent_calls`] lists none,
//! and the dashboard's table of recent calls stays empty.

use std::time::{Duration, SystemTime};

use super::control::ControlPlane;

/// One call the control plane ran (an input of a function or method).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "built where calls are recorded; the dashboard only reads it"
)]
pub struct RecentCall {
    /// The catalog's key of the app (`name`, or `env/name` outside `main`).
    pub app: String,
    pub function: String,
    /// How it was called: `remote`, `spawn`, `map`, ….
    pub kind: &'static str,
    /// `running`, `success`, `failure`, ….
    pub state: String,
    pub started_at: SystemTime,
    /// How long it ran (so far, for a running one).
    pub duration: Duration,
    pub container_id: String,
}

impl ControlPlane {
    /// The latest `limit` calls of `app` (its catalog key; `None`: of every
    /// app), newest first.
    pub(crate) fn recent_calls(&self, app: Option<&str>, limit: usize) -> Vec<RecentCall> {
        let _ = (app, limit);
        Vec::new()
    }
}
