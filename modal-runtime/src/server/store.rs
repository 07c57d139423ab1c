//! Deployed apps on disk, so that a restarted control plane still serves
//! them: `binaries/<sha256>` and `apps/<name>/<version>.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::registry::Manifest;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredVersion {
    pub name: String,
    pub version: u32,
    pub binary: PathBuf,
    /// SHA-256 of the binary, in hex (empty for ephemeral runs).
    #[serde(default)]
    pub binary_sha256: String,
    pub manifest: Manifest,
    pub created_at_ms: i64,
    /// Set for a version made by a rollback: the version it copies.
    #[serde(default)]
    pub rolled_back_from: Option<u32>,
}

/// The SHA-256 of a file's content, in hex.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn open(root: &Path) -> std::io::Result<Store> {
        std::fs::create_dir_all(root.join("binaries"))?;
        std::fs::create_dir_all(root.join("apps"))?;
        Ok(Store {
            root: root.to_owned(),
        })
    }

    /// A writer for an upload; `finish` names the file by its content.
    pub(crate) fn begin_upload(&self) -> std::io::Result<Upload> {
        let tmp = self
            .root
            .join("binaries")
            .join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
        Ok(Upload {
            file: std::fs::File::create(&tmp)?,
            hasher: Sha256::new(),
            size: 0,
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

    pub(crate) fn save_version(&self, v: &StoredVersion) -> std::io::Result<()> {
        let dir = self.root.join("apps").join(&v.name);
        std::fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{}.json", v.version)), json)
    }

    /// Every stored version, oldest first within each app.
    pub(crate) fn load_all(&self) -> Vec<StoredVersion> {
        let mut all = Vec::new();
        let Ok(apps) = std::fs::read_dir(self.root.join("apps")) else {
            return all;
        };
        for app in apps.flatten() {
            let Ok(versions) = std::fs::read_dir(app.path()) else {
                continue;
            };
            for v in versions.flatten() {
                match std::fs::read(v.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<StoredVersion>(&b).ok())
                {
                    Some(stored) => all.push(stored),
                    None => {
                        tracing::warn!(path = %v.path().display(), "skipping unreadable app version")
                    }
                }
            }
        }
        all.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
        all
    }
}

pub(crate) struct Upload {
    file: std::fs::File,
    hasher: Sha256,
    size: u64,
    tmp: PathBuf,
    dir: PathBuf,
}

impl Upload {
    pub(crate) fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk)
    }

    /// Returns the content id and size.
    pub(crate) fn finish(self) -> std::io::Result<(String, u64)> {
        use std::os::unix::fs::PermissionsExt;
        self.file.sync_all()?;
        drop(self.file);
        let id = format!("{:x}", self.hasher.finalize());
        let path = self.dir.join(&id);
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&self.tmp, &path)?;
        Ok((id, self.size))
    }
}
