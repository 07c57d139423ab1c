//! Large payloads on disk: arguments and results over
//! [`crate::contract::INLINE_LIMIT`] travel as a blob id instead of inline,
//! so no message holds them whole and the control plane's memory stays flat.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Blobs under `<data dir>/blobs/<id>`.
pub(crate) struct BlobStore {
    dir: PathBuf,
    /// Set when the control plane shuts down: inputs dropped then keep
    /// their blobs, for the next control plane to run them.
    keep_inputs: Arc<AtomicBool>,
}

impl BlobStore {
    /// Opens the store under `root`. Blobs a killed control plane left
    /// half written are removed: no writer is left to finish them.
    pub(crate) fn open(root: &Path) -> std::io::Result<BlobStore> {
        let dir = root.join("blobs");
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(PARTIAL) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(BlobStore {
            dir,
            keep_inputs: Arc::default(),
        })
    }

    /// A writer for a new blob; it gets its id when finished.
    pub(crate) fn begin(&self) -> std::io::Result<BlobWriter> {
        begin_in(&self.dir)
    }

    /// The directory blobs live in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of blob `id`, if it exists.
    pub(crate) fn path(&self, id: &str) -> Option<PathBuf> {
        path_in(&self.dir, id)
    }

    /// The blob of an input's arguments (`None` for inline arguments): it is
    /// deleted when the input is dropped, once it has an outcome.
    pub(crate) fn for_input(&self, id: String) -> Option<InputBlob> {
        if id.is_empty() {
            return None;
        }
        Some(InputBlob {
            path: self.path(&id),
            id,
            keep: self.keep_inputs.clone(),
        })
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
