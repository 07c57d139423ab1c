//! Large payloads on disk: arguments and results over
//! [`crate::contract::INLINE_LIMIT`] travel as a blob id instead of inline,
//! so no message holds them whole and the control plane's memory stays flat.
//!
//! Each environment has its own folder, `blobs/<environment>/<id>`: a blob
//! is found only by callers and containers of the environment that stored
//! it, so an id from another environment names nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Blobs under `<data dir>/blobs/<environment>/<id>`.
pub(crate) struct BlobStore {
    root: PathBuf,
    /// Set when the control plane shuts down: inputs dropped then keep
    /// their blobs, for the next control plane to run them.
    keep_inputs: Arc<AtomicBool>,
}

impl BlobStore {
    /// Opens the store under `root`. Blobs a killed control plane left
    /// half written are removed: no writer is left to finish them.
    pub(crate) fn open(root: &Path) -> std::io::Result<BlobStore> {
        let root = root.join("blobs");
        std::fs::create_dir_all(&root)?;
        let main = root.join(super::access::DEFAULT_ENVIRONMENT);
        std::fs::create_dir_all(&main)?;
        for entry in std::fs::read_dir(&root)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                for blob in std::fs::read_dir(entry.path())?.flatten() {
                    if blob.file_name().to_string_lossy().ends_with(PARTIAL) {
                        let _ = std::fs::remove_file(blob.path());
                    }
                }
            } else if name.ends_with(PARTIAL) {
                let _ = std::fs::remove_file(entry.path());
            } else {
                // Kept before environments existed: environment `main`'s.
                let _ = std::fs::rename(entry.path(), main.join(&name));
            }
        }
        Ok(BlobStore {
            root,
            keep_inputs: Arc::default(),
        })
    }

    /// A writer for a new blob of `environment`; it gets its id when finished.
    pub(crate) fn begin(&self, environment: &str) -> std::io::Result<BlobWriter> {
        let dir = self.dir(environment);
        std::fs::create_dir_all(&dir)?;
        begin_in(&dir)
    }

    /// The folder of `environment`'s blobs.
    pub(crate) fn dir(&self, environment: &str) -> PathBuf {
        self.root.join(environment)
    }

    /// Every environment's folder.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.root)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The file of `environment`'s blob `id`, if it exists.
    pub(crate) fn path(&self, environment: &str, id: &str) -> Option<PathBuf> {
        path_in(&self.dir(environment), id)
    }

    /// The blob of an input's arguments (`None` for inline arguments), of
    /// `environment`: it is deleted when the input is dropped, once it has
    /// an outcome.
    pub(crate) fn for_input(&self, environment: &str, id: String) -> Option<InputBlob> {
        if id.is_empty() {
            return None;
        }
        Some(InputBlob {
            path: self.path(environment, &id),
            id,
            keep: self.keep_inputs.clone(),
        })
    }

    /// `Ok` if `id` is empty (inline arguments) or names a blob of
    /// `environment`; a blob of another environment is not found here.
    pub(crate) fn check_args(&self, environment: &str, id: &str) -> Result<(), tonic::Status> {
        if id.is_empty() || self.path(environment, id).is_some() {
            return Ok(());
        }
        Err(tonic::Status::not_found(format!(
            "payload `{id}` is not stored in environment `{environment}`: pass arguments \
             stored by this environment's callers (PutBlob), within the call retention"
        )))
    }

    /// Inputs dropped from now on leave their blobs: the control plane is
    /// shutting down, and its detached calls resume in the next one.
    pub(crate) fn keep_input_blobs(&self) {
        self.keep_inputs.store(true, Ordering::Relaxed);
    }
}

/// Deletes the blobs in `dir` older than `retention`. A blob is never newer
/// than the outcome that names it, so callers sweep with a margin over the
/// outcomes' retention: no kept outcome names a deleted blob.
pub(crate) fn expire_in(dir: &Path, retention: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > retention);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What a blob's file is called while it is written.
const PARTIAL: &str = ".partial";

/// A writer for a new blob in `dir`, the blob store's directory.
pub(crate) fn begin_in(dir: &Path) -> std::io::Result<BlobWriter> {
    let id = format!("bl-{}", uuid::Uuid::new_v4().simple());
    let tmp = dir.join(format!("{id}{PARTIAL}"));
    Ok(BlobWriter {
        file: Some(std::io::BufWriter::new(std::fs::File::create(&tmp)?)),
        tmp,
        path: dir.join(&id),
        id,
        size: 0,
    })
}

/// The file of blob `id` in `dir`, if `id` is a blob id and it exists:
/// ids come from clients and containers, and must name nothing else.
pub(crate) fn path_in(dir: &Path, id: &str) -> Option<PathBuf> {
    let valid =
        id.len() == 35 && id.starts_with("bl-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
    let path = dir.join(id);
    (valid && path.is_file()).then_some(path)
}

pub(crate) struct BlobWriter {
    /// `None` once finished.
    file: Option<std::io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    path: PathBuf,
    id: String,
    size: u64,
}

impl BlobWriter {
    pub(crate) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.size += data.len() as u64;
        if self.size > crate::contract::MAX_PAYLOAD_BYTES as u64 {
            return Err(std::io::Error::other(format!(
                "the payload exceeds the limit of {} bytes",
                crate::contract::MAX_PAYLOAD_BYTES
            )));
        }
        match &mut self.file {
            Some(file) => file.write_all(data),
            None => Err(std::io::Error::other("the blob is already finished")),
        }
    }

    /// Makes the blob visible; returns its id and size.
    pub(crate) fn finish(mut self) -> std::io::Result<(String, u64)> {
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the blob is already finished"))?;
        file.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&self.tmp, &self.path)?;
        Ok((std::mem::take(&mut self.id), self.size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // An unfinished blob leaves nothing behind.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The blob holding one input's arguments, owned by that input: retries keep
/// it, and it goes with the input once the input has an outcome.
pub(crate) struct InputBlob {
    pub id: String,
    /// `None` when no such blob was stored: the container then reports the
    /// arguments as unreadable.
    path: Option<PathBuf>,
    keep: Arc<AtomicBool>,
}

impl Drop for InputBlob {
    fn drop(&mut self) {
        if self.keep.load(Ordering::Relaxed) {
            return;
        }
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}
