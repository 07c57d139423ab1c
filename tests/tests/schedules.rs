//! Schedules, end to end: `tick` (`schedule = Period(2)`, in the
//! `scheduled_app` binary) runs on a deployed app every 2 s, keeps running
//! across a control plane killed and started again on its store, or
//! replaced by a standby on PostgreSQL, and runs once per tick throughout:
//! the store holds one call per tick, and the function's own file one
//! first run per call. An ephemeral run of the same binary runs no
//! schedule. `app list` and `app history` show the next run and the last.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Standalone, free_addr, scratch_dir, text, xtask};
use modal_runtime::{AppBinary, Client, FunctionCall, Manifest};

/// The schedule's period.
const PERIOD_MS: i64 = 2_000;

fn scheduled_app() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scheduled_app"))
}

/// A unique app name for one test.
fn app_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("ticks-{what}-{}-{nanos}", std::process::id())
}

/// Where `tick` of app `app` writes its runs.
fn ticks_file(app: &str) -> PathBuf {
    std::env::temp_dir().join(format!("modal-e2e-ticks-{app}.log"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn deploy_scheduled(url: &str, app: &str) -> Client {
    let client = common::connect(url).await.unwrap();
    let binary = scheduled_app();
    let manifest = Manifest::read_from_binary(&binary).unwrap();
    client
        .create_app(app, &manifest, AppBinary::Upload(&binary), false)
        .await
        .unwrap();
    client
}

/// The runs `tick` recorded: `(attempt, unix ms)`, in order.
fn runs(path: &Path) -> Vec<(u32, i64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (attempt, at) = line.split_once(' ')?;
            Some((attempt.parse().ok()?, at.parse().ok()?))
        })
        .collect()
}

/// Waits until `path` holds a run after `after_ms` and `count` runs in
/// all.
async fn wait_for_runs(path: &Path, count: usize, after_ms: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let runs = runs(path);
        if runs.len() >= count && runs.iter().any(|(_, at)| *at > after_ms) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {count} runs, the last after {after_ms}, within {within:?}; got {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks one run per tick: `ticks` (each scheduled call's tick, with how
/// many calls the store holds for it) are distinct, on the period's grid,
/// and at most one lies in the time the control plane was down (the one
/// catch-up); every first run the function recorded is one call's.
fn assert_one_run_per_tick(ticks: &[(i64, i64)], runs: &[(u32, i64)], down: (i64, i64)) {
    assert!(ticks.len() >= 5, "too few ticks: {ticks:?}");
    for (tick, calls) in ticks {
        assert_eq!(*calls, 1, "tick {tick} has {calls} calls: {ticks:?}");
    }
    for pair in ticks.windows(2) {
        let step = pair[1].0 - pair[0].0;
        assert!(
            step > 0 && step % PERIOD_MS == 0,
            "ticks {} and {} are not on the 2 s grid: {ticks:?}",
            pair[0].0,
            pair[1].0
        );
    }
    let in_downtime = ticks
        .iter()
        .filter(|(t, _)| *t > down.0 && *t < down.1)
        .count();
    assert!(
        in_downtime <= 1,
        "{in_downtime} ticks of the downtime {down:?} ran (one catch-up at most): {ticks:?}"
    );
    let first_runs = runs.iter().filter(|(attempt, _)| *attempt == 1).count();
    assert!(
        first_runs <= ticks.len(),
        "{first_runs} first runs for {} ticks: {runs:?}",
        ticks.len()
    );
    // A call whose outcome the killed control plane had not recorded runs
    // again (as attempt 2): the claim stands, the call is at least once.
    let again = runs.iter().filter(|(attempt, _)| *attempt > 1).count();
    assert!(again <= 1, "{again} runs again: {runs:?}");
    // The last tick claimed before a kill may not have run; all others did.
    assert!(
        first_runs + 2 >= ticks.len(),
        "{first_runs} first runs for {} ticks: {runs:?}",
        ticks.len()
    );
}

/// Each scheduled call of `app` in the SQLite store: its tick and how many
/// calls have it.
fn sqlite_ticks(data_dir: &Path, app: &str) -> Vec<(i64, i64)> {
    let db = rusqlite::Connection::open(data_dir.join("store.sqlite3")).unwrap();
    let mut query = db
        .prepare(
            "SELECT scheduled_ms, count(*) FROM calls WHERE app = ?1 AND scheduled_ms IS NOT NULL \
             GROUP BY scheduled_ms ORDER BY scheduled_ms",
        )
        .unwrap();
    query
        .query_map([app], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_schedule_runs_once_per_tick_on_a_deployed_app_across_a_restart() {
    let app = app_name("restart");
    let ticks = ticks_file(&app);
    let addr = free_addr();
    let data_dir = scratch_dir("schedules");
    let mut cp = Standalone::start_on(&addr, data_dir.clone(), &[]);
    let url = cp.url.clone();
    let deployed = now_ms();
    let client = deploy_scheduled(&url, &app).await;
    // The first tick is one period after the deploy.
    wait_for_runs(&ticks, 3, deployed, Duration::from_secs(30)).await;
    let first = runs(&ticks);
    assert!(
        first[0].1 >= deployed + PERIOD_MS - 100,
        "ran before its first tick: deployed at {deployed}, {first:?}"
    );

    // `app list` and `app history` show the next run and the last one.
    let listed = text(&xtask(&["app", "list", "--server", &url]));
    let history = text(&xtask(&["app", "history", &app, "--server", &url]));
    eprintln!("{listed}\n{history}");
    for shown in [&listed, &history] {
        assert!(shown.contains("NEXT RUN"), "{shown}");
        assert!(shown.contains(&format!("{app}.tick")), "{shown}");
        assert!(shown.contains("Period(2)"), "{shown}");
        assert!(shown.contains("fc-"), "{shown}");
        assert!(
            shown.contains("succeeded") || shown.contains("running"),
            "{shown}"
        );
    }
    // The last run is a call like any spawned one.
    let (_, schedules) = client.app_history_and_schedules(&app).await.unwrap();
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    assert!(schedules[0].next_run_ms > schedules[0].last_tick_ms);
    let last = FunctionCall::<u32>::from_id_with(&client, &schedules[0].last_call_id)
        .get(Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(last, 1, "its first attempt");

    // Killed, and down for 5 s: two or three ticks missed, one caught up.
    let killed = now_ms();
    cp.kill9();
    drop(cp);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarting = now_ms();
    let cp = Standalone::start_on(&addr, data_dir.clone(), &[]);
    wait_for_runs(
        &ticks,
        runs(&ticks).len() + 3,
        restarting + 2 * PERIOD_MS,
        Duration::from_secs(60),
    )
    .await;
    drop(cp);

    let stored = sqlite_ticks(&data_dir, &app);
    let recorded = runs(&ticks);
    eprintln!("ticks {stored:?}\nruns {recorded:?}");
    assert_one_run_per_tick(&stored, &recorded, (killed, restarting));
    assert!(
        recorded.iter().any(|(_, at)| *at > restarting),
        "it ran after the restart: {recorded:?}"
    );
    let _ = std::fs::remove_file(&ticks);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_standby_on_postgres_takes_the_schedule_over_without_a_double_run() {
    let Some(db) = common::postgres_db("schedules") else {
        return;
    };
    let app = app_name("failover");
    let ticks = ticks_file(&app);
    let data_dir = scratch_dir("schedules-failover");
    let store = ["--store", db.as_str()];
    let (a, b) = (free_addr(), free_addr());
    let mut leader = common::Spawned::start(&a, &data_dir, &store);
    leader
        .wait_for("listening on", Duration::from_secs(30))
        .expect("the first control plane leads");
    common::learn_token(&data_dir, &format!("http://{a}"));
    let standby = common::Spawned::start(&b, &data_dir, &store);
    standby
        .wait_for("another control plane leads", Duration::from_secs(30))
        .expect("the second one waits");
    let deployed = now_ms();
    deploy_scheduled(&format!("http://{a}"), &app).await;
    wait_for_runs(&ticks, 3, deployed, Duration::from_secs(30)).await;

    let killed = now_ms();
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    standby
        .wait_for("listening on", Duration::from_secs(10))
        .expect("the standby leads");
    let leading = now_ms();
    wait_for_runs(
        &ticks,
        runs(&ticks).len() + 3,
        leading + 2 * PERIOD_MS,
        Duration::from_secs(60),
    )
    .await;
    drop(standby);

    // The blocking client, off the runtime's threads.
    let query = (db.clone(), app.clone());
    let stored: Vec<(i64, i64)> = tokio::task::spawn_blocking(move || {
        let (db, app) = query;
        let mut pg = postgres::Client::connect(&db, postgres::NoTls).unwrap();
        pg.query(
            "SELECT scheduled_ms, count(*) FROM calls WHERE app = $1 AND scheduled_ms IS NOT NULL \
             GROUP BY scheduled_ms ORDER BY scheduled_ms",
            &[&app],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    })
    .await
    .unwrap();
    let recorded = runs(&ticks);
    eprintln!("ticks {stored:?}\nruns {recorded:?}");
    assert_one_run_per_tick(&stored, &recorded, (killed, leading));
    assert!(recorded.iter().any(|(_, at)| *at > leading), "{recorded:?}");
    let _ = std::fs::remove_file(&ticks);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_stopped_app_runs_no_schedule_until_it_is_deployed_again() {
    let app = app_name("stop");
    let ticks = ticks_file(&app);
    let cp = Standalone::start();
    let deployed = now_ms();
    let client = deploy_scheduled(&cp.url, &app).await;
    wait_for_runs(&ticks, 1, deployed, Duration::from_secs(30)).await;
    client.stop_app(&app).await.unwrap();
    let stopped = now_ms();
    let listed = text(&xtask(&["app", "list", "--server", &cp.url]));
    assert!(!listed.contains("NEXT RUN"), "{listed}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_stop: Vec<_> = runs(&ticks)
        .into_iter()
        .filter(|(_, at)| *at > stopped + 500)
        .collect();
    assert!(after_stop.is_empty(), "ran while stopped: {after_stop:?}");
    // Deployed again, it runs again, from the new deploy.
    let redeployed = now_ms();
    deploy_scheduled(&cp.url, &app).await;
    wait_for_runs(&ticks, 2, redeployed, Duration::from_secs(30)).await;
    let _ = std::fs::remove_file(&ticks);
    let _ = std::fs::remove_dir_all(&cp.data_dir);
}

#[test]
fn an_ephemeral_run_does_not_run_its_schedule() {
    let dir = scratch_dir("schedules-ephemeral");
    let ticks = dir.join("ticks.log");
    let output = std::process::Command::new(scheduled_app())
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env("TICKS_FILE", &ticks)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("tick 1") && stdout.contains("done"),
        "{stdout}"
    );
    // Its one call ran; in the 5 s it then waited, two ticks did not.
    let recorded = runs(&ticks);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
