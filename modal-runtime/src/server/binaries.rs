//! Deployed binaries on disk, named by their SHA-256 (`binaries/<sha256>`):
//! content-addressed files the store's versions refer to, so that the
//! database holds no binaries.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The SHA-256 of a file's content, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

pub(crate) struct Binaries {
    root: PathBuf,
}

/// What an upload's file is called until it is finished.
const UPLOAD_PREFIX: &str = "upload-";

impl Binaries {
    /// Opens the store under `root`. Uploads a killed control plane left
    /// half written are removed: no client is left to finish them.
    pub(crate) fn open(root: &Path) -> std::io::Result<Binaries> {
        let binaries = root.join("binaries");
        std::fs::create_dir_all(&binaries)?;
        for entry in std::fs::read_dir(&binaries)?.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(UPLOAD_PREFIX)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Binaries {
            root: root.to_owned(),
        })
    }

    /// A writer for an upload; `finish` names the file by its content.
    /// Unfinished, it leaves nothing behind.
    pub(crate) fn begin_upload(&self) -> std::io::Result<Upload> {
        let tmp = self
            .root
            .join("binaries")
            .join(format!("{UPLOAD_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        Ok(Upload {
            file: Some(std::fs::File::create(&tmp)?),
            hasher: Sha256::new(),
            size: 0,
            limit: u64::MAX,
            expected_sha256: None,
            head: Vec::new(),
            tmp,
            dir: self.root.join("binaries"),
        })
    }

    pub(crate) fn binary_path(&self, id: &str) -> Option<PathBuf> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = self.root.join("binaries").join(id);
        path.exists().then_some(path)
    }
}

pub(crate) struct Upload {
    /// `None` once finished.
    file: Option<std::fs::File>,
    hasher: Sha256,
    size: u64,
    /// Largest size accepted.
    limit: u64,
    /// What the client said the whole upload hashes to.
    expected_sha256: Option<String>,
    /// The first bytes, to tell an executable from anything else.
    head: Vec<u8>,
    tmp: PathBuf,
    dir: PathBuf,
}

/// Why an upload could not be written.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// It grew past its limit.
    TooLarge {
        limit: u64,
    },
    /// It is not an executable this machine runs (a script, say).
    NotExecutable,
    /// What arrived does not hash to what the client said.
    HashMismatch {
        expected: String,
        received: String,
    },
    Io(std::io::Error),
}

/// How every executable this control plane runs begins (ELF).
const EXECUTABLE_MAGIC: &[u8] = b"\x7fELF";

impl UploadError {
    /// What the uploading client is told.
    pub(crate) fn into_status(self) -> tonic::Status {
        match self {
            UploadError::TooLarge { limit } => tonic::Status::resource_exhausted(format!(
                "the binary is larger than this control plane's upload limit of {limit} \
                 bytes; start the control plane with a larger limit (`cargo xtask server \
                 --max-upload-bytes <BYTES>`), or deploy a smaller (e.g. stripped) binary"
            )),
            UploadError::NotExecutable => tonic::Status::invalid_argument(
                "the upload is not an executable this control plane runs (an ELF binary): \
                 deploy the binary cargo built, not a script",
            ),
            UploadError::HashMismatch { expected, received } => tonic::Status::data_loss(format!(
                "the binary that arrived hashes to {received}, not {expected} as the \
                     client said: it was changed or cut on the way; upload it again"
            )),
            UploadError::Io(e) => tonic::Status::internal(format!("cannot store the upload: {e}")),
        }
    }
}

impl Upload {
    /// Refuses to grow past `limit` bytes.
    pub(crate) fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// Refuses to finish unless the whole upload hashes to `sha256` (hex).
    pub(crate) fn expect_sha256(&mut self, sha256: &str) {
        self.expected_sha256 = Some(sha256.to_ascii_lowercase());
    }

    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| UploadError::Io(std::io::Error::other("the upload is finished")))?;
        file.write_all(chunk).map_err(UploadError::Io)?;
        if self.head.len() < EXECUTABLE_MAGIC.len() {
            let take = (EXECUTABLE_MAGIC.len() - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.size = size;
        Ok(())
    }

    /// Returns the content id and size: once it is known to be an
    /// executable that hashes to what the client said.
    pub(crate) fn finish(mut self) -> Result<(String, u64), UploadError> {
        use std::os::unix::fs::PermissionsExt;
        let file = self
            .file
            .take()
            .ok_or_else(|| UploadError::Io(std::io::Error::other("the upload is finished")))?;
        file.sync_all().map_err(UploadError::Io)?;
        drop(file);
        if self.head != EXECUTABLE_MAGIC {
            return Err(UploadError::NotExecutable);
        }
        let id = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        if let Some(expected) = self.expected_sha256.take()
            && expected != id
        {
            return Err(UploadError::HashMismatch {
                expected,
                received: id,
            });
        }
        let path = self.dir.join(&id);
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(0o755))
            .and_then(|_| std::fs::rename(&self.tmp, &path))
            .map_err(UploadError::Io)?;
        Ok((id, self.size))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Failed, refused or abandoned (the client went away, the request
        // was dropped): the partial file goes. Once finished it was renamed,
        // and this finds nothing.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modal-binaries-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn binaries(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join("binaries"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_upload_past_its_limit_or_dropped_leaves_nothing_and_a_finished_one_stays() {
        let root = scratch();
        let store = Binaries::open(&root).unwrap();
        let mut upload = store.begin_upload().unwrap().with_limit(10);
        upload.write(&[1; 6]).unwrap();
        assert!(matches!(
            upload.write(&[1; 6]),
            Err(UploadError::TooLarge { limit: 10 })
        ));
        drop(upload);
        assert!(binaries(&root).is_empty());

        let mut upload = store.begin_upload().unwrap().with_limit(10);
        upload.write(b"\x7fEL").unwrap();
        upload.write(b"F123456").unwrap();
        let (id, size) = upload.finish().unwrap();
        assert_eq!(size, 10);
        assert_eq!(binaries(&root), vec![id]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_script_or_an_upload_that_does_not_hash_as_announced_is_refused() {
        let root = scratch();
        let store = Binaries::open(&root).unwrap();
        let mut script = store.begin_upload().unwrap();
        script.write(b"#!/bin/sh\ntouch /tmp/owned\n").unwrap();
        assert!(matches!(script.finish(), Err(UploadError::NotExecutable)));
        let mut changed = store.begin_upload().unwrap();
        changed.expect_sha256(&"0".repeat(64));
        changed.write(b"\x7fELF....").unwrap();
        assert!(matches!(
            changed.finish(),
            Err(UploadError::HashMismatch { .. })
        ));
        assert!(binaries(&root).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
