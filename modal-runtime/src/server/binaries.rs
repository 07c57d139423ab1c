//! Deployed binaries on disk, named by their SHA-256 (`binaries/<sha256>`):
//! content-addressed files the store's versions refer to, so that the
//! database holds no binaries.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The SHA-256 of a file's content, in hex.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
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
    Io(std::io::Error),
}

impl UploadError {
    /// What the uploading client is told.
    pub(crate) fn into_status(self) -> tonic::Status {
        match self {
            UploadError::TooLarge { limit } => tonic::Status::resource_exhausted(format!(
                "the binary is larger than this control plane's upload limit of {limit} \
                 bytes; start the control plane with a larger limit (`cargo xtask server \
                 --max-upload-bytes <BYTES>`), or deploy a smaller (e.g. stripped) binary"
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
        self.hasher.update(chunk);
        self.size = size;
        Ok(())
    }

    /// Returns the content id and size.
    pub(crate) fn finish(mut self) -> std::io::Result<(String, u64)> {
        use std::os::unix::fs::PermissionsExt;
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the upload is finished"))?;
        file.sync_all()?;
        drop(file);
        let id = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        let path = self.dir.join(&id);
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&self.tmp, &path)?;
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
        upload.write(&[1; 10]).unwrap();
        let (id, size) = upload.finish().unwrap();
        assert_eq!(size, 10);
        assert_eq!(binaries(&root), vec![id]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
