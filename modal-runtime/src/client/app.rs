//! The app this program is running (set up by `#[app::main]`): its control
//! plane and the ids of its functions, so that local stubs need no lookup.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Client;
use crate::proto::FunctionInfo;

pub(crate) struct RunningApp {
    pub name: String,
    pub client: Client,
    pub functions: HashMap<String, FunctionInfo>,
}

static RUNNING: OnceLock<RunningApp> = OnceLock::new();

pub(crate) fn set_running_app(app: RunningApp) {
    let _ = RUNNING.set(app);
}

pub(crate) fn running_app() -> Option<&'static RunningApp> {
    RUNNING.get()
}
