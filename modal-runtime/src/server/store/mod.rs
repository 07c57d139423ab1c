//! The store: what the control plane must not lose (apps and their state,
//! versions, instance ids, the id counter, every detached call with its
//! inputs and outcome), in SQLite (`sqlite.rs`, the default) or PostgreSQL
//! (`postgres.rs`). Binaries and large payloads stay content-addressed
//! files in the data folder; the database holds their ids.
//!
//! One thread owns the database connection (the writer). Writes queue for
//! it and are committed in groups: whatever waits when a commit starts goes
//! into one transaction, so concurrent requests share one commit (and one
//! fsync). A write that must be durable before its request is answered
//! (`commit`) waits for its group; the others (`record`) do not, and if one
//! is lost with the process, its input simply runs again. Reads wait in the
//! same queue, so they see every write queued before them.
//!
//! - `records.rs`: the writes, what a start reads back, and a group's plan.
//! - `sqlite.rs`, `postgres.rs`: the two databases, one [`Database`] each.

mod postgres;
mod records;
mod sqlite;

use std::path::PathBuf;
use std::sync::mpsc;

pub(crate) use records::{
    AccessKind, AccessRecord, NewCall, OpenCall, OpenInput, Plan, Snapshot, StoredAutoscaler,
    StoredCall, StoredInput, StoredInstance, StoredSchedule, StoredVersion, StoredVersionRecord,
    Write,
};

/// Where a control plane keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Nothing survives the process: for the embedded run of a program,
    /// whose app ends with it.
    Memory,
    /// A SQLite file (WAL), at most `max_bytes` large when set.
    Sqlite {
        path: PathBuf,
        max_bytes: Option<u64>,
    },
    /// A PostgreSQL database (`postgres://user@host:port/db`). Several
    /// control planes may share one: one leads, the others wait to take
    /// over.
    Postgres { url: String },
}

impl StoreConfig {
    /// Reads `--store`: `memory`, `sqlite:PATH`, a path, or a
    /// `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Result<StoreConfig, String> {
        if text == "memory" {
            return Ok(StoreConfig::Memory);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreConfig::Postgres {
                url: text.to_owned(),
            });
        }
        let path = text.strip_prefix("sqlite:").unwrap_or(text);
        if path.is_empty() || text.contains("://") {
            return Err(format!(
                "`{text}` is not a store: use `memory`, `sqlite:PATH` (or a path) or a \
                 `postgres://user@host:port/db` URL"
            ));
        }
        Ok(StoreConfig::Sqlite {
            path: PathBuf::from(path),
            max_bytes: None,
        })
    }

    /// What a message about the store calls it (no password).
    pub(crate) fn describe(&self) -> String {
        match self {
            StoreConfig::Memory => "the in-memory store".into(),
            StoreConfig::Sqlite { path, .. } => format!("the SQLite store {}", path.display()),
            StoreConfig::Postgres { url } => format!("the PostgreSQL store {}", redact(url)),
        }
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Why the store did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database is at its size limit, or its disk is full.
    #[error(
        "the control plane's store is full ({0}): nothing of this request was kept; free disk \
         space or raise the limit (`cargo xtask server --max-store-mib`), then try again"
    )]
    Full(String),
    /// The database went away (its connection closed): this control plane
    /// can keep nothing more, and another may have taken over.
    #[error("the control plane lost its store ({0}); another control plane may serve instead")]
    Lost(String),
    #[error("the control plane's store failed: {0}")]
    Other(String),
}

impl StoreError {
    /// What the client whose request needed the store is told.
    pub(crate) fn into_status(self) -> tonic::Status {
        let message = self.to_string();
        match self {
            StoreError::Full(_) => tonic::Status::resource_exhausted(message),
            StoreError::Lost(_) => tonic::Status::unavailable(message),
            StoreError::Other(_) => tonic::Status::internal(message),
        }
    }
}

/// One database: the writer thread's only way to it.
pub(crate) trait Database: Send {
    /// Everything a start needs.
    fn load(&mut self) -> Result<Snapshot, StoreError>;
    /// Applies one group of writes as one transaction: all or nothing.
    fn commit(&mut self, plan: &Plan) -> Result<(), StoreError>;
    /// One call, for `get` on a call no longer held in memory.
    fn read_call(&mut self, call_id: &str) -> Result<Option<StoredCall>, StoreError>;
    /// Checks, while no write comes, that the database is still there (and
    /// still this control plane's to write).
    fn ping(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How long the writer waits for a job before it checks its database.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What waits for the writer.
enum Job {
    /// Written with the next group; nobody waits.
    Record(Write),
    /// Written with the next group; `done` hears how its commit went.
    Commit(Vec<Write>, Done),
    Read(
        String,
        tokio::sync::oneshot::Sender<Result<Option<StoredCall>, StoreError>>,
    ),
    /// Everything before it is committed; nothing after it is written.
    Close(mpsc::SyncSender<()>),
}

enum Done {
    Async(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
    Blocking(mpsc::SyncSender<Result<(), StoreError>>),
}

impl Done {
    fn send(self, result: Result<(), StoreError>) {
        match self {
            Done::Async(tx) => {
                let _ = tx.send(result);
            }
            Done::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Jobs taken into one group at most: bounds a transaction's size (and the
/// writer's memory) under a flood.
const GROUP_JOBS: usize = 65_536;

/// The store's handle: cheap to clone; every clone talks to one writer.
/// The in-memory store has no writer, and keeps nothing.
#[derive(Clone)]
pub(crate) struct Store {
    jobs: Option<mpsc::Sender<Job>>,
    /// How long each group commit takes (observed by the writer).
    commit_seconds: prometheus::Histogram,
}

impl Store {
    /// Opens the store `config` names, runs its migrations and reads back
    /// what it holds. A PostgreSQL store first waits to lead: until every
    /// other control plane on the same database has gone.
    pub(crate) fn open(config: &StoreConfig) -> Result<(Store, Snapshot), String> {
        let mut db: Box<dyn Database> = match config {
            StoreConfig::Memory => return Ok((Store::memory(), Snapshot::default())),
            StoreConfig::Sqlite { path, max_bytes } => {
                Box::new(sqlite::Sqlite::open(path, *max_bytes)?)
            }
            StoreConfig::Postgres { url } => Box::new(postgres::Postgres::open(url)?),
        };
        let snapshot = db
            .load()
            .map_err(|e| format!("cannot read {}: {e}", config.describe()))?;
        let (jobs, rx) = mpsc::channel();
        let fatal_on_loss = matches!(config, StoreConfig::Postgres { .. });
        let commit_seconds = crate::server::telemetry::commit_seconds();
        let observed = commit_seconds.clone();
        std::thread::Builder::new()
            .name("modal-store".into())
            .spawn(move || run_writer(db, rx, fatal_on_loss, observed))
            .map_err(|e| format!("cannot start the store's writer: {e}"))?;
        Ok((
            Store {
                jobs: Some(jobs),
                commit_seconds,
            },
            snapshot,
        ))
    }

    /// A store that keeps nothing.
    pub(crate) fn memory() -> Store {
        Store {
            jobs: None,
            commit_seconds: crate::server::telemetry::commit_seconds(),
        }
    }

    /// The histogram of its group commits' times, for `/metrics`.
    pub(crate) fn commit_seconds(&self) -> prometheus::Histogram {
        self.commit_seconds.clone()
    }

    /// Whether what is written here survives the process.
    pub(crate) fn is_durable(&self) -> bool {
        self.jobs.is_some()
    }

    /// Queues a write without waiting for it.
    pub(crate) fn record(&self, write: Write) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Record(write));
        }
    }

    /// Queues writes now, in order with every write queued before them;
    /// the future resolves once they are committed.
    pub(crate) fn commit(
        &self,
        writes: Vec<Write>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let queued = self.jobs.as_ref().map(|jobs| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            jobs.send(Job::Commit(writes, Done::Async(tx)))
                .map(|_| rx)
                .map_err(|_| closed())
        });
        async move {
            match queued {
                None => Ok(()),
                Some(Err(e)) => Err(e),
                Some(Ok(rx)) => rx.await.map_err(|_| closed())?,
            }
        }
    }

    /// Writes and blocks this thread until they are committed: for the
    /// rare writes made where nothing can wait (the id counter's mark).
    pub(crate) fn commit_blocking(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let (tx, rx) = mpsc::sync_channel(1);
        jobs.send(Job::Commit(writes, Done::Blocking(tx)))
            .map_err(|_| closed())?;
        rx.recv().map_err(|_| closed())?
    }

    /// One call as the store has it.
    pub(crate) async fn read_call(&self, call_id: &str) -> Result<Option<StoredCall>, StoreError> {
        let Some(jobs) = &self.jobs else {
            return Ok(None);
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        jobs.send(Job::Read(call_id.to_owned(), tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Commits what is queued and writes nothing after it: a control plane
    /// shutting down leaves its detached calls as they were, for the next
    /// one to finish, instead of recording them as stopped.
    pub(crate) fn close(&self) {
        if let Some(jobs) = &self.jobs {
            let (tx, rx) = mpsc::sync_channel(1);
            if jobs.send(Job::Close(tx)).is_ok() {
                let _ = rx.recv();
            }
        }
    }
}

fn closed() -> StoreError {
    StoreError::Lost("the store's writer has stopped".into())
}

/// The writer: takes whatever is queued, commits it as one group, answers
/// the waiting requests, then serves the reads queued with it.
fn run_writer(
    mut db: Box<dyn Database>,
    jobs: mpsc::Receiver<Job>,
    fatal_on_loss: bool,
    commit_seconds: prometheus::Histogram,
) {
    let mut closing: Option<mpsc::SyncSender<()>> = None;
    while closing.is_none() {
        let first = match jobs.recv_timeout(IDLE_CHECK) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = db.ping() {
                    lost(&e, fatal_on_loss);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut writes = Vec::new();
        let mut waiting = Vec::new();
        let mut reads = Vec::new();
        let mut job = Some(first);
        let mut taken = 0;
        while let Some(next) = job.take() {
            match next {
                Job::Record(w) => writes.push(w),
                Job::Commit(ws, done) => {
                    writes.extend(ws);
                    waiting.push(done);
                }
                Job::Read(id, tx) => reads.push((id, tx)),
                Job::Close(tx) => {
                    closing = Some(tx);
                    break;
                }
            }
            taken += 1;
            if taken < GROUP_JOBS {
                job = jobs.try_recv().ok();
            }
        }
        let plan = Plan::new(writes);
        let result = if plan.is_empty() {
            Ok(())
        } else {
            let started = std::time::Instant::now();
            let result = db.commit(&plan);
            commit_seconds.observe(started.elapsed().as_secs_f64());
            result
        };
        if let Err(e) = &result {
            tracing::error!("a commit failed: {e}");
            if fatal_on_loss && matches!(e, StoreError::Lost(_)) {
                // Fenced: another control plane may lead by now, and this
                // one can record nothing. Its containers end with it.
                eprintln!(
                    "modal-rs: {e}; exiting so that the control plane that leads now serves alone"
                );
                std::process::exit(75);
            }
        }
        for done in waiting {
            done.send(result.clone());
        }
        for (id, tx) in reads {
            let _ = tx.send(db.read_call(&id));
        }
    }
    // The database (and the lock on it) goes before the closer hears.
    drop(db);
    if let Some(tx) = closing {
        let _ = tx.send(());
    }
}

/// A store shared with other control planes that is lost ends this one:
/// another may lead by now, and this one can record nothing (its writes
/// are fenced). Its containers end with it.
fn lost(e: &StoreError, fatal_on_loss: bool) {
    if fatal_on_loss && matches!(e, StoreError::Lost(_)) {
        eprintln!("modal-rs: {e}; exiting, so that the control plane that leads now serves alone");
        std::process::exit(75);
    }
}

/// Milliseconds since the epoch, as the store records times.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_arguments_are_read() {
        assert_eq!(StoreConfig::parse("memory"), Ok(StoreConfig::Memory));
        assert_eq!(
            StoreConfig::parse("sqlite:/x/s.db"),
            Ok(StoreConfig::Sqlite {
                path: "/x/s.db".into(),
                max_bytes: None
            })
        );
        assert!(matches!(
            StoreConfig::parse("postgres://u@h/db"),
            Ok(StoreConfig::Postgres { .. })
        ));
        let err = StoreConfig::parse("mysql://h/db").unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        assert!(StoreConfig::parse("").is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown = StoreConfig::Postgres {
            url: "postgres://me:secret@db:5432/modal".into(),
        }
        .describe();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgres://me@db:5432/modal"), "{shown}");
    }
}
