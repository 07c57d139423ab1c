//! The PostgreSQL store, for control planes that outgrow one machine:
//! several may share one database, and one leads. Leading is holding a
//! session advisory lock on the writer's own connection, so a leader whose
//! connection is gone can commit nothing more (its writes are fenced), and
//! a waiting control plane takes the lock, and the lead, the moment the
//! leader's session ends.

use std::time::Duration;

use bytes::Bytes;
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::records::{
    AccessKind, AccessRecord, NewCall, OpenCall, OpenInput, Plan, Snapshot, StoredAutoscaler,
    StoredCall, StoredInput, StoredInstance, StoredSchedule, StoredVersion,
};
use super::{Database, StoreError, redact};

/// The schema, one migration per version (`modal_schema`).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_access.sql"),
    include_str!("migrations/postgres/0003_autoscaler.sql"),
    include_str!("migrations/postgres/0004_schedules.sql"),
];

/// The advisory lock whose holder leads (any constant the database's other
/// users do not take: "modal-rs" in ASCII).
const LEADER_LOCK: i64 = 0x6d6f_6461_6c2d_7273;

pub(crate) struct Postgres {
    client: Client,
}

impl Postgres {
    /// Connects, waits to lead, and brings the schema up to date. Fails,
    /// changing nothing, if the database does not answer or holds a newer
    /// schema.
    pub(crate) fn open(url: &str) -> Result<Postgres, String> {
        let shown = redact(url);
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| format!("`{shown}` is not a PostgreSQL URL: {e}"))?;
        // A peer that vanished (its machine, not just its process) ends its
        // session within about 30 s: the lock it held goes with it.
        config
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let mut client = config.connect(NoTls).map_err(|e| {
            format!(
                "cannot reach the PostgreSQL store {shown}: {e}; check that it runs and the URL"
            )
        })?;
        let led: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .map_err(|e| format!("cannot take the lead on {shown}: {e}"))?
            .get(0);
        if !led {
            println!("another control plane leads on {shown}: waiting to take over when it stops");
            client
                .execute("SELECT pg_advisory_lock($1)", &[&LEADER_LOCK])
                .map_err(|e| format!("lost {shown} while waiting to lead: {e}"))?;
            println!("leading on {shown} now");
        }
        migrate(&mut client).map_err(|e| format!("{shown}: {e}"))?;
        Ok(Postgres { client })
    }
}

fn migrate(client: &mut Client) -> Result<(), String> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS modal_schema (version INTEGER NOT NULL)")
        .map_err(|e| format!("cannot set up the schema: {e}"))?;
    let version: i32 = client
        .query_opt("SELECT max(version) FROM modal_schema", &[])
        .map_err(|e| format!("cannot read the schema version: {e}"))?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if version as usize > MIGRATIONS.len() {
        return Err(format!(
            "the database holds schema version {version}, newer than this control plane knows \
             ({}): it was left as it is; run a newer modal-rs on it",
            MIGRATIONS.len()
        ));
    }
    for (k, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let mut tx = client
            .transaction()
            .map_err(|e| format!("cannot migrate: {e}"))?;
        tx.batch_execute(sql)
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO modal_schema (version) VALUES ($1)",
                    &[&((k + 1) as i32)],
                )
                .map(|_| ())
            })
            .map_err(|e| format!("cannot migrate to schema version {}: {e}", k + 1))?;
        tx.commit().map_err(|e| format!("cannot migrate: {e}"))?;
    }
    Ok(())
}

/// What went wrong, with the server's own message when it sent one.
fn describe(e: &postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}

fn error(client_closed: bool, e: postgres::Error) -> StoreError {
    if client_closed || e.is_closed() {
        return StoreError::Lost(describe(&e));
    }
    match e.code() {
        Some(code) if *code == SqlState::DISK_FULL || *code == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            StoreError::Full(describe(&e))
        }
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
            StoreError::Lost(describe(&e))
        }
        _ => StoreError::Other(describe(&e)),
    }
}

impl Postgres {
    fn fail(&self, e: postgres::Error) -> StoreError {
        error(self.client.is_closed(), e)
    }
}

impl Database for Postgres {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let c = &mut self.client;
        let closed = |e| error(false, e);
        let mut snapshot = Snapshot {
            id_mark: c
                .query_opt("SELECT value FROM meta WHERE key = 'id_mark'", &[])
                .map_err(closed)?
                .map_or(0, |r| r.get::<_, i64>(0) as u64),
            ..Snapshot::default()
        };
        for r in c
            .query(
                "SELECT app, version, record FROM versions ORDER BY app, version",
                &[],
            )
            .map_err(closed)?
        {
            let json: String = r.get(2);
            match serde_json::from_str::<StoredVersion>(&json) {
                Ok(v) => snapshot.versions.push(v),
                Err(e) => {
                    let app: String = r.get(0);
                    tracing::warn!(%app, "skipping an unreadable version: {e}")
                }
            }
        }
        for r in c
            .query("SELECT app FROM apps WHERE stopped", &[])
            .map_err(closed)?
        {
            snapshot.stopped_apps.insert(r.get(0));
        }
        for r in c
            .query(
                "SELECT id, class_id, params, overrides FROM instances ORDER BY id",
                &[],
            )
            .map_err(closed)?
        {
            snapshot.instances.push(StoredInstance {
                id: r.get::<_, i64>(0) as u64,
                class_id: r.get::<_, i64>(1) as u64,
                params: Bytes::from(r.get::<_, Vec<u8>>(2)),
                overrides: r.get(3),
            });
        }
        for r in c
            .query(
                "SELECT function_id, version, min_containers, max_containers, \
                 buffer_containers, scaledown_window_secs FROM autoscaler ORDER BY function_id",
                &[],
            )
            .map_err(closed)?
        {
            let u32_of = |i: usize| r.get::<_, i32>(i) as u32;
            snapshot.autoscalers.push(StoredAutoscaler {
                function_id: r.get::<_, i64>(0) as u64,
                version: r.get::<_, i64>(1) as u32,
                min_containers: u32_of(2),
                max_containers: r.get::<_, Option<i32>>(3).map(|m| m as u32),
                buffer_containers: u32_of(4),
                scaledown_window_secs: u32_of(5),
            });
        }
        for r in c
            .query(
                "SELECT kind, key, record FROM access ORDER BY kind, key",
                &[],
            )
            .map_err(closed)?
        {
            let kind: String = r.get(0);
            match AccessKind::parse(&kind) {
                Some(kind) => snapshot.access.push(AccessRecord {
                    kind,
                    key: r.get(1),
                    record: Some(r.get(2)),
                }),
                None => tracing::warn!(%kind, "skipping an access record of unknown kind"),
            }
        }
        for r in c
            .query(
                "SELECT app, function, version, spec, next_ms, last_tick_ms, last_call_id \
                 FROM schedules ORDER BY app, function",
                &[],
            )
            .map_err(closed)?
        {
            snapshot.schedules.push(StoredSchedule {
                app: r.get(0),
                function: r.get(1),
                version: r.get::<_, i64>(2) as u32,
                spec: r.get(3),
                next_ms: r.get(4),
                last_tick_ms: r.get(5),
                last_call_id: r.get(6),
            });
        }
        let calls = c
            .query(
                "SELECT id, app, function, function_id, method, is_map, total, created_ms, \
                 scheduled_ms FROM calls WHERE finished_ms IS NULL ORDER BY created_ms",
                &[],
            )
            .map_err(closed)?;
        let inputs = c
            .prepare(
                "SELECT idx, args, args_blob, attempt, result FROM inputs WHERE call_id = $1 \
                 ORDER BY idx",
            )
            .map_err(closed)?;
        for r in calls {
            let call = NewCall {
                id: r.get::<_, String>(0).into(),
                app: r.get(1),
                function: r.get(2),
                function_id: r.get::<_, i64>(3) as u64,
                method: r.get(4),
                is_map: r.get(5),
                created_ms: r.get(7),
                scheduled_ms: r.get(8),
            };
            let total: Option<i64> = r.get(6);
            let rows = c.query(&inputs, &[&&*call.id]).map_err(closed)?;
            snapshot.open_calls.push(OpenCall {
                call,
                total: total.map(|t| t as u64),
                inputs: rows
                    .into_iter()
                    .map(|i| OpenInput {
                        input: StoredInput {
                            index: i.get::<_, i64>(0) as u64,
                            args: Bytes::from(i.get::<_, Vec<u8>>(1)),
                            args_blob: i.get(2),
                        },
                        attempt: i.get::<_, i32>(3) as u32,
                        result: i.get::<_, Option<Vec<u8>>>(4).map(Bytes::from),
                    })
                    .collect(),
            });
        }
        Ok(snapshot)
    }

    fn commit(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let result = (|| {
            let mut tx = self.client.transaction()?;
            apply(&mut tx, plan)?;
            tx.commit()
        })();
        result.map_err(|e| self.fail(e))
    }

    fn ping(&mut self) -> Result<(), StoreError> {
        self.client
            .is_valid(Duration::from_secs(5))
            .map_err(|e| StoreError::Lost(describe(&e)))
    }

    fn read_call(&mut self, call_id: &str) -> Result<Option<StoredCall>, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT app, function, function_id, outcome, expired FROM calls WHERE id = $1",
                &[&call_id],
            )
            .map_err(|e| error(false, e))?;
        Ok(row.map(|r| StoredCall {
            app: r.get(0),
            function: r.get(1),
            function_id: r.get::<_, i64>(2) as u64,
            outcome: r.get::<_, Option<Vec<u8>>>(3).map(Bytes::from),
            expired: r.get(4),
        }))
    }
}

/// One group's plan in its causal order. The kinds a large group holds
/// many of (inputs, dispatches, results) go as one statement over arrays:
/// one round trip each, however many rows.
fn apply(tx: &mut postgres::Transaction<'_>, plan: &Plan) -> Result<(), postgres::Error> {
    for v in &plan.versions {
        tx.execute(
            "INSERT INTO versions (app, version, record) VALUES ($1, $2, $3) \
             ON CONFLICT (app, version) DO UPDATE SET record = excluded.record",
            &[&v.app, &i64::from(v.version), &v.json],
        )?;
    }
    for (app, stopped) in &plan.app_states {
        tx.execute(
            "INSERT INTO apps (app, stopped) VALUES ($1, $2) \
             ON CONFLICT (app) DO UPDATE SET stopped = excluded.stopped",
            &[app, stopped],
        )?;
    }
    if let Some(mark) = plan.id_mark {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('id_mark', $1) \
             ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)",
            &[&(mark as i64)],
        )?;
    }
    for i in &plan.instances {
        tx.execute(
            "INSERT INTO instances (id, class_id, params, overrides) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
            &[
                &(i.id as i64),
                &(i.class_id as i64),
                &&i.params[..],
                &i.overrides,
            ],
        )?;
    }
    for (app, a) in &plan.autoscalers {
        // INTEGER columns hold the `u32`s bit for bit; `load` casts back.
        let int = |v: u32| v as i32;
        tx.execute(
            "INSERT INTO autoscaler (function_id, app, version, min_containers, max_containers, \
             buffer_containers, scaledown_window_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (function_id) DO UPDATE SET min_containers = excluded.min_containers, \
             max_containers = excluded.max_containers, \
             buffer_containers = excluded.buffer_containers, \
             scaledown_window_secs = excluded.scaledown_window_secs",
            &[
                &(a.function_id as i64),
                app,
                &i64::from(a.version),
                &int(a.min_containers),
                &a.max_containers.map(int),
                &int(a.buffer_containers),
                &int(a.scaledown_window_secs),
            ],
        )?;
    }
    // A deploy resets what `update_autoscaler` changed: the older
    // versions' settings go.
    for v in &plan.versions {
        tx.execute(
            "DELETE FROM autoscaler WHERE app = $1 AND version < $2",
            &[&v.app, &i64::from(v.version)],
        )?;
    }
    for c in &plan.calls {
        tx.execute(
            "INSERT INTO calls (id, app, function, function_id, method, is_map, created_ms, \
             scheduled_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &&*c.id,
                &c.app,
                &c.function,
                &(c.function_id as i64),
                &c.method,
                &c.is_map,
                &c.created_ms,
                &c.scheduled_ms,
            ],
        )?;
    }
    if !plan.inputs.is_empty() {
        let calls: Vec<&str> = plan.inputs.iter().map(|(c, _)| &**c).collect();
        let indices: Vec<i64> = plan.inputs.iter().map(|(_, i)| i.index as i64).collect();
        let args: Vec<&[u8]> = plan.inputs.iter().map(|(_, i)| &i.args[..]).collect();
        let blobs: Vec<&str> = plan
            .inputs
            .iter()
            .map(|(_, i)| i.args_blob.as_str())
            .collect();
        tx.execute(
            "INSERT INTO inputs (call_id, idx, args, args_blob) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[], $4::text[])",
            &[&calls, &indices, &args, &blobs],
        )?;
    }
    for (call, total) in &plan.totals {
        tx.execute(
            "UPDATE calls SET total = $2 WHERE id = $1",
            &[&&**call, &(*total as i64)],
        )?;
    }
    if !plan.dispatched.is_empty() {
        let calls: Vec<&str> = plan.dispatched.iter().map(|(c, _, _)| &**c).collect();
        let indices: Vec<i64> = plan.dispatched.iter().map(|(_, i, _)| *i as i64).collect();
        let attempts: Vec<i32> = plan.dispatched.iter().map(|(_, _, a)| *a as i32).collect();
        tx.execute(
            "UPDATE inputs SET attempt = GREATEST(inputs.attempt, u.attempt) \
             FROM UNNEST($1::text[], $2::bigint[], $3::int[]) AS u(call_id, idx, attempt) \
             WHERE inputs.call_id = u.call_id AND inputs.idx = u.idx",
            &[&calls, &indices, &attempts],
        )?;
    }
    if !plan.results.is_empty() {
        let calls: Vec<&str> = plan.results.iter().map(|(c, _, _)| &**c).collect();
        let indices: Vec<i64> = plan.results.iter().map(|(_, i, _)| *i as i64).collect();
        let results: Vec<&[u8]> = plan.results.iter().map(|(_, _, r)| &r[..]).collect();
        tx.execute(
            "UPDATE inputs SET result = u.result \
             FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) AS u(call_id, idx, result) \
             WHERE inputs.call_id = u.call_id AND inputs.idx = u.idx",
            &[&calls, &indices, &results],
        )?;
    }
    if !plan.outcomes.is_empty() {
        let calls: Vec<&str> = plan.outcomes.iter().map(|(c, _, _)| &**c).collect();
        let outcomes: Vec<&[u8]> = plan.outcomes.iter().map(|(_, o, _)| &o[..]).collect();
        let at: Vec<i64> = plan.outcomes.iter().map(|(_, _, t)| *t).collect();
        tx.execute(
            "UPDATE calls SET outcome = u.outcome, finished_ms = u.at \
             FROM UNNEST($1::text[], $2::bytea[], $3::bigint[]) AS u(id, outcome, at) \
             WHERE calls.id = u.id AND calls.finished_ms IS NULL",
            &[&calls, &outcomes, &at],
        )?;
        tx.execute(
            "DELETE FROM inputs WHERE call_id = ANY($1::text[])",
            &[&calls],
        )?;
    }
    for a in &plan.access {
        match &a.record {
            Some(record) => tx.execute(
                "INSERT INTO access (kind, key, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record",
                &[&a.kind.as_str(), &a.key, record],
            )?,
            None => tx.execute(
                "DELETE FROM access WHERE kind = $1 AND key = $2",
                &[&a.kind.as_str(), &a.key],
            )?,
        };
    }
    for (app, function, row) in &plan.schedules {
        match row {
            Some(s) => tx.execute(
                "INSERT INTO schedules (app, function, version, spec, next_ms, last_tick_ms, \
                 last_call_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (app, function) DO UPDATE SET version = excluded.version, \
                 spec = excluded.spec, next_ms = excluded.next_ms, \
                 last_tick_ms = excluded.last_tick_ms, last_call_id = excluded.last_call_id",
                &[
                    &s.app,
                    &s.function,
                    &i64::from(s.version),
                    &s.spec,
                    &s.next_ms,
                    &s.last_tick_ms,
                    &s.last_call_id,
                ],
            )?,
            None => tx.execute(
                "DELETE FROM schedules WHERE app = $1 AND function = $2",
                &[app, function],
            )?,
        };
    }
    if let Some((finished_before, forget_before)) = plan.expire {
        tx.execute(
            "UPDATE calls SET outcome = NULL, expired = TRUE \
             WHERE finished_ms IS NOT NULL AND finished_ms < $1 AND NOT expired",
            &[&finished_before],
        )?;
        tx.execute(
            "DELETE FROM calls WHERE finished_ms IS NOT NULL AND finished_ms < $1 AND expired",
            &[&forget_before],
        )?;
    }
    Ok(())
}
