//! The SQLite store: one file in the data folder, in WAL mode with full
//! syncs (a commit survives a crash of the process and of the machine),
//! locked so that two control planes never share it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::records::{
    AccessKind, AccessRecord, NewCall, OpenCall, OpenInput, Plan, Snapshot, StoredAutoscaler,
    StoredCall, StoredInput, StoredInstance, StoredSchedule, StoredVersion,
};
use super::{Database, StoreError};

/// The schema, one migration per version (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_init.sql"),
    include_str!("migrations/sqlite/0002_access.sql"),
    include_str!("migrations/sqlite/0003_autoscaler.sql"),
    include_str!("migrations/sqlite/0004_schedules.sql"),
];

pub(crate) struct Sqlite {
    conn: Connection,
    /// Held while the store is open: a second control plane on the same
    /// file is refused at start.
    _lock: std::fs::File,
}

impl Sqlite {
    /// Opens (or creates) the store at `path`, at most `max_bytes` large.
    /// Fails, changing nothing, if the file is not a store, holds a schema
    /// newer than this binary knows, or another control plane has it.
    pub(crate) fn open(path: &Path, max_bytes: Option<u64>) -> Result<Sqlite, String> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the store's folder {}: {e}", dir.display()))?;
        }
        let lock = lock_beside(path)?;
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open the store {shown}: {e}"))?;
        let not_a_store = |e: rusqlite::Error| {
            format!(
                "{shown} cannot be opened as the control plane's store ({e}); it was left as it \
                 is. Point `--store` (or `--data-dir`) at another file, or move this one away"
            )
        };
        // Reading the schema version is the first read of the file: a file
        // that is not a database fails here, before anything is written.
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(not_a_store)? as usize;
        if version > MIGRATIONS.len() {
            return Err(format!(
                "{shown} holds schema version {version}, newer than this control plane knows \
                 ({}): it was left as it is; run a newer modal-rs on it",
                MIGRATIONS.len()
            ));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(not_a_store)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(not_a_store)?;
        if let Some(max) = max_bytes {
            let page: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(not_a_store)?;
            // Room for the schema at least, whatever the limit.
            let pages = (max / page.max(512) as u64).max(32);
            conn.pragma_update(None, "max_page_count", pages as i64)
                .map_err(not_a_store)?;
        }
        for (k, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.unchecked_transaction().map_err(not_a_store)?;
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "user_version", (k + 1) as i64))
                .and_then(|_| tx.commit())
                .map_err(|e| format!("cannot set up the store {shown}: {e}"))?;
        }
        Ok(Sqlite { conn, _lock: lock })
    }
}

/// Takes the lock file beside the store; another holder means another
/// control plane serves from it.
fn lock_beside(path: &Path) -> Result<std::fs::File, String> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    // A control plane killed a moment ago may still hold it for a while
    // through a child between fork and exec (which inherited the
    // descriptor): wait a little before calling it another control plane's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        return Err(format!(
            "{} is in use by another control plane: stop it, or give this one another \
             `--data-dir` or `--store`",
            path.display()
        ));
    }
    Ok(file)
}

fn error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

fn bytes_col(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Bytes> {
    Ok(Bytes::from(row.get::<_, Vec<u8>>(i)?))
}

impl Database for Sqlite {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let c = &self.conn;
        let mut snapshot = Snapshot {
            id_mark: c
                .query_row("SELECT value FROM meta WHERE key = 'id_mark'", [], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()
                .map_err(error)?
                .unwrap_or(0) as u64,
            ..Snapshot::default()
        };
        let mut versions = c
            .prepare("SELECT app, version, record FROM versions ORDER BY app, version")
            .map_err(error)?;
        let rows = versions
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(error)?;
        for row in rows {
            let (app, version, json) = row.map_err(error)?;
            match serde_json::from_str::<StoredVersion>(&json) {
                Ok(v) => snapshot.versions.push(v),
                Err(e) => tracing::warn!(%app, version, "skipping an unreadable version: {e}"),
            }
        }
        let mut apps = c
            .prepare("SELECT app FROM apps WHERE stopped <> 0")
            .map_err(error)?;
        for app in apps.query_map([], |r| r.get(0)).map_err(error)? {
            snapshot.stopped_apps.insert(app.map_err(error)?);
        }
        let mut instances = c
            .prepare("SELECT id, class_id, params, overrides FROM instances ORDER BY id")
            .map_err(error)?;
        for i in instances
            .query_map([], |r| {
                Ok(StoredInstance {
                    id: r.get::<_, i64>(0)? as u64,
                    class_id: r.get::<_, i64>(1)? as u64,
                    params: bytes_col(r, 2)?,
                    overrides: r.get(3)?,
                })
            })
            .map_err(error)?
        {
            snapshot.instances.push(i.map_err(error)?);
        }
        let mut autoscalers = c
            .prepare(
                "SELECT function_id, version, min_containers, max_containers, \
                 buffer_containers, scaledown_window_secs FROM autoscaler ORDER BY function_id",
            )
            .map_err(error)?;
        for a in autoscalers
            .query_map([], |r| {
                Ok(StoredAutoscaler {
                    function_id: r.get::<_, i64>(0)? as u64,
                    version: r.get(1)?,
                    min_containers: r.get(2)?,
                    max_containers: r.get(3)?,
                    buffer_containers: r.get(4)?,
                    scaledown_window_secs: r.get(5)?,
                })
            })
            .map_err(error)?
        {
            snapshot.autoscalers.push(a.map_err(error)?);
        }
        let mut access = c
            .prepare("SELECT kind, key, record FROM access ORDER BY kind, key")
            .map_err(error)?;
        for row in access
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(error)?
        {
            let (kind, key, record) = row.map_err(error)?;
            match AccessKind::parse(&kind) {
                Some(kind) => snapshot.access.push(AccessRecord {
                    kind,
                    key,
                    record: Some(record),
                }),
                None => tracing::warn!(%kind, %key, "skipping an access record of unknown kind"),
            }
        }
        let mut schedules = c
            .prepare(
                "SELECT app, function, version, spec, next_ms, last_tick_ms, last_call_id \
                 FROM schedules ORDER BY app, function",
            )
            .map_err(error)?;
        for s in schedules
            .query_map([], |r| {
                Ok(StoredSchedule {
                    app: r.get(0)?,
                    function: r.get(1)?,
                    version: r.get::<_, i64>(2)? as u32,
                    spec: r.get(3)?,
                    next_ms: r.get(4)?,
                    last_tick_ms: r.get(5)?,
                    last_call_id: r.get(6)?,
                })
            })
            .map_err(error)?
        {
            snapshot.schedules.push(s.map_err(error)?);
        }
        let mut calls = c
            .prepare(
                "SELECT id, app, function, function_id, method, is_map, total, created_ms, \
                 scheduled_ms FROM calls WHERE finished_ms IS NULL ORDER BY created_ms",
            )
            .map_err(error)?;
        let mut inputs = c
            .prepare(
                "SELECT idx, args, args_blob, attempt, result FROM inputs WHERE call_id = ?1 \
                 ORDER BY idx",
            )
            .map_err(error)?;
        let open: Vec<(NewCall, Option<i64>)> = calls
            .query_map([], |r| {
                Ok((
                    NewCall {
                        id: r.get::<_, String>(0)?.into(),
                        app: r.get(1)?,
                        function: r.get(2)?,
                        function_id: r.get::<_, i64>(3)? as u64,
                        method: r.get(4)?,
                        is_map: r.get::<_, i64>(5)? != 0,
                        created_ms: r.get(7)?,
                        scheduled_ms: r.get(8)?,
                    },
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .map_err(error)?
            .collect::<Result<_, _>>()
            .map_err(error)?;
        for (call, total) in open {
            let call_inputs = inputs
                .query_map([&*call.id], |r| {
                    Ok(OpenInput {
                        input: StoredInput {
                            index: r.get::<_, i64>(0)? as u64,
                            args: bytes_col(r, 1)?,
                            args_blob: r.get(2)?,
                        },
                        attempt: r.get::<_, i64>(3)? as u32,
                        result: r.get::<_, Option<Vec<u8>>>(4)?.map(Bytes::from),
                    })
                })
                .map_err(error)?
                .collect::<Result<_, _>>()
                .map_err(error)?;
            snapshot.open_calls.push(OpenCall {
                call,
                total: total.map(|t| t as u64),
                inputs: call_inputs,
            });
        }
        Ok(snapshot)
    }

    fn commit(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(error)?;
        apply(&tx, plan).map_err(error)?;
        tx.commit().map_err(error)
    }

    fn read_call(&mut self, call_id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT app, function, function_id, outcome, expired FROM calls WHERE id = ?1",
            )
            .map_err(error)?
            .query_row([call_id], |r| {
                Ok(StoredCall {
                    app: r.get(0)?,
                    function: r.get(1)?,
                    function_id: r.get::<_, i64>(2)? as u64,
                    outcome: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                    expired: r.get::<_, i64>(4)? != 0,
                })
            })
            .optional()
            .map_err(error)
    }
}

/// One group's plan, kind by kind, in its causal order.
fn apply(tx: &rusqlite::Transaction<'_>, plan: &Plan) -> rusqlite::Result<()> {
    if !plan.versions.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR REPLACE INTO versions (app, version, record) VALUES (?1, ?2, ?3)",
        )?;
        for v in &plan.versions {
            s.execute(params![v.app, v.version, v.json])?;
        }
    }
    if !plan.app_states.is_empty() {
        let mut s =
            tx.prepare_cached("INSERT OR REPLACE INTO apps (app, stopped) VALUES (?1, ?2)")?;
        for (app, stopped) in &plan.app_states {
            s.execute(params![app, *stopped as i64])?;
        }
    }
    if let Some(mark) = plan.id_mark {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('id_mark', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute([mark as i64])?;
    }
    if !plan.instances.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR IGNORE INTO instances (id, class_id, params, overrides) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for i in &plan.instances {
            s.execute(params![
                i.id as i64,
                i.class_id as i64,
                &i.params[..],
                i.overrides
            ])?;
        }
    }
    if !plan.autoscalers.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR REPLACE INTO autoscaler (function_id, app, version, min_containers, \
             max_containers, buffer_containers, scaledown_window_secs) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (app, a) in &plan.autoscalers {
            s.execute(params![
                a.function_id as i64,
                app,
                a.version,
                a.min_containers,
                a.max_containers,
                a.buffer_containers,
                a.scaledown_window_secs
            ])?;
        }
    }
    // A deploy resets what `update_autoscaler` changed: the older
    // versions' settings go.
    for v in &plan.versions {
        tx.prepare_cached("DELETE FROM autoscaler WHERE app = ?1 AND version < ?2")?
            .execute(params![v.app, v.version])?;
    }
    if !plan.calls.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT INTO calls (id, app, function, function_id, method, is_map, created_ms, \
             scheduled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for c in &plan.calls {
            s.execute(params![
                &*c.id,
                c.app,
                c.function,
                c.function_id as i64,
                c.method,
                c.is_map as i64,
                c.created_ms,
                c.scheduled_ms
            ])?;
        }
    }
    if !plan.inputs.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT INTO inputs (call_id, idx, args, args_blob) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (call, i) in &plan.inputs {
            s.execute(params![&**call, i.index as i64, &i.args[..], i.args_blob])?;
        }
    }
    if !plan.totals.is_empty() {
        let mut s = tx.prepare_cached("UPDATE calls SET total = ?2 WHERE id = ?1")?;
        for (call, total) in &plan.totals {
            s.execute(params![&**call, *total as i64])?;
        }
    }
    if !plan.dispatched.is_empty() {
        let mut s = tx.prepare_cached(
            "UPDATE inputs SET attempt = max(attempt, ?3) WHERE call_id = ?1 AND idx = ?2",
        )?;
        for (call, index, attempt) in &plan.dispatched {
            s.execute(params![&**call, *index as i64, *attempt])?;
        }
    }
    if !plan.results.is_empty() {
        let mut s =
            tx.prepare_cached("UPDATE inputs SET result = ?3 WHERE call_id = ?1 AND idx = ?2")?;
        for (call, index, outcome) in &plan.results {
            s.execute(params![&**call, *index as i64, &outcome[..]])?;
        }
    }
    if !plan.outcomes.is_empty() {
        let mut finish = tx.prepare_cached(
            "UPDATE calls SET outcome = ?2, finished_ms = ?3 WHERE id = ?1 AND finished_ms IS NULL",
        )?;
        let mut forget = tx.prepare_cached("DELETE FROM inputs WHERE call_id = ?1")?;
        for (call, outcome, at) in &plan.outcomes {
            finish.execute(params![&**call, &outcome[..], at])?;
            forget.execute([&**call])?;
        }
    }
    for a in &plan.access {
        match &a.record {
            Some(record) => tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO access (kind, key, record) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![a.kind.as_str(), a.key, record])?,
            None => tx
                .prepare_cached("DELETE FROM access WHERE kind = ?1 AND key = ?2")?
                .execute(params![a.kind.as_str(), a.key])?,
        };
    }
    for (app, function, row) in &plan.schedules {
        match row {
            Some(s) => tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO schedules (app, function, version, spec, next_ms, \
                     last_tick_ms, last_call_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    s.app,
                    s.function,
                    s.version,
                    s.spec,
                    s.next_ms,
                    s.last_tick_ms,
                    s.last_call_id
                ])?,
            None => tx
                .prepare_cached("DELETE FROM schedules WHERE app = ?1 AND function = ?2")?
                .execute(params![app, function])?,
        };
    }
    if let Some((finished_before, forget_before)) = plan.expire {
        tx.prepare_cached(
            "UPDATE calls SET outcome = NULL, expired = 1 \
             WHERE finished_ms IS NOT NULL AND finished_ms < ?1 AND expired = 0",
        )?
        .execute([finished_before])?;
        tx.prepare_cached(
            "DELETE FROM calls WHERE finished_ms IS NOT NULL AND finished_ms < ?1 AND expired = 1",
        )?
        .execute([forget_before])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::records::Write;
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modal-sqlite-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("store.sqlite3")
    }

    fn call(id: &str) -> NewCall {
        NewCall {
            id: Arc::from(id),
            app: "a".into(),
            function: "f".into(),
            function_id: 7,
            method: String::new(),
            is_map: true,
            created_ms: 1,
            scheduled_ms: None,
        }
    }

    #[test]
    fn open_calls_come_back_with_their_attempts_and_results_and_finished_ones_do_not() {
        let path = scratch();
        let mut db = Sqlite::open(&path, None).unwrap();
        let id: Arc<str> = Arc::from("fc-1");
        let input = |index| StoredInput {
            index,
            args: Bytes::from_static(b"\x01"),
            args_blob: String::new(),
        };
        db.commit(&Plan::new(vec![
            Write::IdMark(1024),
            Write::Call(call("fc-1")),
            Write::Call(call("fc-2")),
            Write::Inputs {
                call_id: id.clone(),
                inputs: vec![input(0), input(1)],
            },
        ]))
        .unwrap();
        db.commit(&Plan::new(vec![
            Write::Dispatched {
                call_id: id.clone(),
                index: 0,
                attempt: 1,
            },
            Write::Dispatched {
                call_id: id.clone(),
                index: 1,
                attempt: 2,
            },
            Write::InputDone {
                call_id: id.clone(),
                index: 0,
                outcome: Bytes::from_static(b"ok"),
            },
            Write::MapTotal {
                call_id: id.clone(),
                total: 2,
            },
            Write::Outcome {
                call_id: Arc::from("fc-2"),
                outcome: Bytes::from_static(b"done"),
                finished_ms: 5,
            },
        ]))
        .unwrap();
        drop(db);
        let snapshot = Sqlite::open(&path, None).unwrap().load().unwrap();
        assert_eq!(snapshot.id_mark, 1024);
        assert_eq!(snapshot.open_calls.len(), 1);
        let open = &snapshot.open_calls[0];
        assert_eq!(open.total, Some(2));
        // Input 0's dispatch was moot: it got its result in the same group.
        let attempts: Vec<u32> = open.inputs.iter().map(|i| i.attempt).collect();
        assert_eq!(attempts, vec![0, 2]);
        assert_eq!(open.inputs[0].result.as_deref(), Some(&b"ok"[..]));
        assert_eq!(open.inputs[1].result, None);
    }

    #[test]
    fn outcomes_expire_and_are_then_forgotten() {
        let path = scratch();
        let mut db = Sqlite::open(&path, None).unwrap();
        db.commit(&Plan::new(vec![
            Write::Call(call("fc-1")),
            Write::Inputs {
                call_id: Arc::from("fc-1"),
                inputs: vec![StoredInput {
                    index: 0,
                    args: Bytes::from_static(b"\x01"),
                    args_blob: String::new(),
                }],
            },
        ]))
        .unwrap();
        db.commit(&Plan::new(vec![Write::Outcome {
            call_id: Arc::from("fc-1"),
            outcome: Bytes::from_static(b"done"),
            finished_ms: 10,
        }]))
        .unwrap();
        // A finished call's inputs are gone: the store holds what is open.
        let inputs: i64 = db
            .conn
            .query_row("SELECT count(*) FROM inputs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(inputs, 0);
        let read = |db: &mut Sqlite| db.read_call("fc-1").unwrap();
        assert_eq!(
            read(&mut db).unwrap().outcome.as_deref(),
            Some(&b"done"[..])
        );
        db.commit(&Plan::new(vec![Write::Expire {
            finished_before_ms: 11,
            forget_before_ms: 0,
        }]))
        .unwrap();
        let expired = read(&mut db).unwrap();
        assert!(expired.expired && expired.outcome.is_none());
        db.commit(&Plan::new(vec![Write::Expire {
            finished_before_ms: 11,
            forget_before_ms: 11,
        }]))
        .unwrap();
        assert!(read(&mut db).is_none());
    }

    #[test]
    fn schedules_and_scheduled_calls_come_back() {
        let path = scratch();
        let mut db = Sqlite::open(&path, None).unwrap();
        let row = |function: &str, next_ms| StoredSchedule {
            app: "a".into(),
            function: function.into(),
            version: 2,
            spec: r#"{"period":{"millis":2000}}"#.into(),
            next_ms,
            last_tick_ms: Some(next_ms - 2000),
            last_call_id: Some("fc-1".into()),
        };
        let set = |s: StoredSchedule| Write::Schedule {
            app: s.app.clone(),
            function: s.function.clone(),
            row: Some(s),
        };
        let mut scheduled = call("fc-1");
        scheduled.is_map = false;
        scheduled.scheduled_ms = Some(10_000);
        db.commit(&Plan::new(vec![
            set(row("tick", 12_000)),
            set(row("gone", 12_000)),
            Write::Call(scheduled),
        ]))
        .unwrap();
        // The last write to a schedule stands, within a group and after.
        db.commit(&Plan::new(vec![
            set(row("tick", 14_000)),
            set(row("tick", 16_000)),
            Write::Schedule {
                app: "a".into(),
                function: "gone".into(),
                row: None,
            },
        ]))
        .unwrap();
        drop(db);
        let snapshot = Sqlite::open(&path, None).unwrap().load().unwrap();
        assert_eq!(snapshot.schedules, vec![row("tick", 16_000)]);
        assert_eq!(snapshot.open_calls[0].call.scheduled_ms, Some(10_000));
    }

    #[test]
    fn a_file_that_is_not_a_store_or_is_newer_is_refused_and_left_as_it_is() {
        let path = scratch();
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let err = Sqlite::open(&path, None).err().unwrap();
        assert!(
            err.contains("cannot be opened as the control plane's store"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 8192]);

        let newer = scratch();
        drop(Sqlite::open(&newer, None).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Sqlite::open(&newer, None).err().unwrap();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[test]
    fn autoscaler_settings_stand_until_their_app_is_deployed_again() {
        let path = scratch();
        let mut db = Sqlite::open(&path, None).unwrap();
        let set = |app: &str, function_id, version, min| Write::Autoscaler {
            app: app.into(),
            settings: StoredAutoscaler {
                function_id,
                version,
                min_containers: min,
                max_containers: (min > 1).then_some(min),
                buffer_containers: 1,
                scaledown_window_secs: 5,
            },
        };
        db.commit(&Plan::new(vec![
            set("a", 1, 1, 2),
            set("a", 1, 1, 3),
            set("a", 2, 1, 1),
            set("b", 3, 1, 4),
        ]))
        .unwrap();
        let mins = |db: &mut Sqlite| -> Vec<(u64, u32, Option<u32>)> {
            db.load()
                .unwrap()
                .autoscalers
                .iter()
                .map(|a| (a.function_id, a.min_containers, a.max_containers))
                .collect()
        };
        // The last write to a function stands.
        assert_eq!(
            mins(&mut db),
            [(1, 3, Some(3)), (2, 1, None), (3, 4, Some(4))]
        );
        // Version 2 of `a`, with a change to one of its functions in the
        // same group: version 1's settings go, `b`'s and version 2's stay.
        let version = Write::Version(Box::new(super::super::StoredVersionRecord {
            app: "a".into(),
            version: 2,
            json: "{}".into(),
        }));
        db.commit(&Plan::new(vec![set("a", 4, 2, 2), version]))
            .unwrap();
        assert_eq!(mins(&mut db), [(3, 4, Some(4)), (4, 2, Some(2))]);
        drop(db);
        let mut db = Sqlite::open(&path, None).unwrap();
        assert_eq!(mins(&mut db), [(3, 4, Some(4)), (4, 2, Some(2))]);
    }

    #[test]
    fn a_second_control_plane_on_one_file_is_refused() {
        let path = scratch();
        let _first = Sqlite::open(&path, None).unwrap();
        let err = Sqlite::open(&path, None).err().unwrap();
        assert!(err.contains("in use by another control plane"), "{err}");
    }

    #[test]
    fn a_full_store_fails_the_commit_and_keeps_what_it_had() {
        let path = scratch();
        let mut db = Sqlite::open(&path, Some(64 << 10)).unwrap();
        db.commit(&Plan::new(vec![Write::Call(call("kept"))]))
            .unwrap();
        let big = Write::Inputs {
            call_id: Arc::from("kept"),
            inputs: vec![StoredInput {
                index: 0,
                args: Bytes::from(vec![0u8; 1 << 20]),
                args_blob: String::new(),
            }],
        };
        let err = db.commit(&Plan::new(vec![big])).unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        assert!(db.read_call("kept").unwrap().is_some());
    }
}
