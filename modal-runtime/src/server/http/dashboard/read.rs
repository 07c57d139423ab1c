//! What the pages show, read from the control plane's own state (the
//! catalog, the pools, the backend, the recorded calls) at the moment a
//! page or a refresh is rendered. Nothing here changes anything.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::pages::{AppPage, AppRow, ContainerRow, FunctionRow, LiveTables, VersionRow};
use super::session::Viewer;
use crate::proto;
use crate::server::control::ControlPlane;
use crate::server::pool::Pool;

/// Recent calls an app page lists.
const RECENT_CALLS: usize = 50;

/// Every app the viewer may see: its own environment's, or (an admin)
/// every environment's, by environment then name.
pub(crate) fn apps(cp: &ControlPlane, viewer: &Viewer) -> Vec<AppRow> {
    let environments: Vec<String> = match &viewer.environment {
        Some(own) => vec![own.clone()],
        None => cp
            .access
            .environments()
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
    };
    environments
        .iter()
        .flat_map(|env| {
            cp.catalog
                .list_apps(env)
                .into_iter()
                .map(move |info| app_row(env, info))
        })
        .collect()
}

fn app_row(environment: &str, info: proto::AppInfo) -> AppRow {
    AppRow {
        name: info.name,
        environment: environment.to_owned(),
        state: info.state,
        version: info.version,
        ephemeral: info.ephemeral,
        containers: info.containers,
        functions: info.functions,
        created: at_ms(info.created_at_ms),
    }
}

/// App `name` of `environment` (catalog key `key`), or `None` if there
/// is none.
pub(crate) fn app_page(
    cp: &ControlPlane,
    environment: &str,
    name: &str,
    key: &str,
    viewer: &Viewer,
) -> Option<AppPage> {
    let info = cp
        .catalog
        .list_apps(environment)
        .into_iter()
        .find(|a| a.name == name)?;
    let history = cp.catalog.history(key).ok()?;
    let latest = history.last().map(|v| v.version);
    let versions = history
        .into_iter()
        .map(|v| VersionRow {
            live: Some(v.version) == latest,
            version: v.version,
            created: at_ms(v.created_at_ms),
            binary_sha256: v.binary_sha256,
            functions: v.functions,
            rolled_back_from: v.rolled_back_from,
        })
        .collect();
    Some(AppPage {
        app: app_row(environment, info),
        versions,
        live: live_tables(cp, key)?,
        logs: viewer.may_follow_logs(),
    })
}

/// The refreshing tables of the app keyed `key`, or `None` if it is gone.
pub(crate) fn live_tables(cp: &ControlPlane, key: &str) -> Option<LiveTables> {
    let functions = cp.catalog.app_functions(key).ok()?;
    let mut rows: Vec<FunctionRow> = functions.live.iter().map(|f| function_row(f)).collect();
    busy_first(&mut rows);
    Some(LiveTables {
        functions: rows,
        containers: containers(cp, &functions.every_version),
        calls: cp.recent_calls(Some(key), RECENT_CALLS),
    })
}

/// Functions with containers or inputs first, each group by name: an app
/// of many functions shows what is happening at the top.
pub(crate) fn busy_first(rows: &mut [FunctionRow]) {
    rows.sort_by(|a, b| {
        let idle = |f: &FunctionRow| f.containers == 0 && f.backlog == 0 && f.running_inputs == 0;
        (idle(a), &a.name).cmp(&(idle(b), &b.name))
    });
}

fn function_row(f: &Pool) -> FunctionRow {
    let stats = f.stats();
    FunctionRow {
        name: f.name.clone(),
        kind: if f.methods().is_empty() {
            "function"
        } else {
            "class"
        },
        backlog: stats.backlog,
        running_inputs: stats.running_inputs,
        containers: stats.containers,
    }
}

/// The containers of `pools` and of their classes' instances, by version
/// then function.
fn containers(cp: &ControlPlane, pools: &[Arc<Pool>]) -> Vec<ContainerRow> {
    let mut rows = Vec::new();
    for pool in pools {
        let serving = std::iter::once((pool.clone(), pool.name.clone())).chain(
            pool.instances()
                .into_iter()
                .map(|i| (i.clone(), format!("{} (instance {})", i.name, i.id))),
        );
        for (runs, label) in serving {
            for c in runs.container_snapshots() {
                let placement = cp.container_placement(&c.id);
                rows.push(ContainerRow {
                    function: label.clone(),
                    version: runs.version,
                    state: c.state,
                    age: c.age,
                    running_inputs: c.running_inputs,
                    image: placement.as_ref().map(|p| p.image.clone()),
                    host: placement.map(|p| p.host),
                    id: c.id,
                });
            }
        }
    }
    rows
}

fn at_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, containers: u32, backlog: u64) -> FunctionRow {
        FunctionRow {
            name: name.into(),
            kind: "function",
            backlog,
            running_inputs: 0,
            containers,
        }
    }

    #[test]
    fn busy_functions_come_first() {
        let mut rows = vec![
            row("a", 0, 0),
            row("b", 1, 0),
            row("c", 0, 0),
            row("d", 0, 5),
        ];
        busy_first(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "d", "a", "c"]);
    }
}
