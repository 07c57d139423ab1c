//! An embedded run's temporary folder, `<temp>/modal-rs-<pid>-<random>`,
//! which holds its control plane's data. The run removes it when it ends; a
//! run that crashed cannot, so every run first removes the folders of runs
//! that are gone.
//!
//! A run holds an exclusive `flock` on its folder's `lock` file for its
//! whole life, and the kernel releases it when the process ends, however it
//! ends. So a folder whose lock can be taken belongs to nobody: a test that
//! pid reuse cannot fool (the pid in the name is there for people).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

const PREFIX: &str = "modal-rs-";
const LOCK: &str = "lock";

/// This run's folder, owned (locked) until [`RunDir::remove`] or the end of
/// the process.
pub(crate) struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Removes the folders that crashed runs left in the temporary folder,
    /// then makes this run's.
    pub(crate) fn create() -> io::Result<RunDir> {
        let temp = std::env::temp_dir();
        sweep(&temp);
        // Another run's sweep may take a lock in the instant between its
        // file's creation and our locking it, and remove the folder: then
        // we start over under a new name.
        let mut attempts = 0;
        loop {
            match Self::try_create(&temp) {
                Ok(Some(dir)) => return Ok(dir),
                Ok(None) if attempts < 5 => attempts += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
                Ok(None) => {
                    return Err(io::Error::other(
                        "other programs kept removing it while it was being made",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_create(temp: &Path) -> io::Result<Option<RunDir>> {
        let path = temp.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        // Private: it holds the control plane's data.
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let lock_path = path.join(LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&lock_path)?;
        lock.lock()?;
        // Ours only if the file we locked is still the folder's lock.
        let held = lock.metadata()?;
        match std::fs::metadata(&lock_path) {
            Ok(linked) if linked.dev() == held.dev() && linked.ino() == held.ino() => {
                Ok(Some(RunDir { path, _lock: lock }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the folder; the lock goes after it, so that no other run's
    /// sweep sees it half removed and unlocked.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the run folders in `temp` that belong to no live run. Folders of
/// other users, links, and whatever cannot be read are left alone.
fn sweep(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    for entry in entries.flatten() {
        let Some(pid) = run_pid(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() && meta.uid() == uid => {}
            _ => continue,
        }
        let orphaned = match File::open(path.join(LOCK)) {
            // Held while removing, so that no run sees it half removed.
            Ok(lock) => match lock.try_lock() {
                Ok(()) => {
                    let _ = std::fs::remove_dir_all(&path);
                    continue;
                }
                Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => false,
            },
            // No lock yet: a run still making it (alive), or one that
            // crashed before locking it. Only its pid can tell; a reused pid
            // keeps the folder, which errs on the safe side.
            Err(e) if e.kind() == io::ErrorKind::NotFound => !process_exists(pid),
            Err(_) => false,
        };
        if orphaned {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The pid in a run folder's name, `modal-rs-<pid>-<random>`.
fn run_pid(name: &str) -> Option<i32> {
    let (pid, random) = name.strip_prefix(PREFIX)?.split_once('-')?;
    // Exactly what `try_create` makes: other tools' folders are not ours.
    if random.len() != 8 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok().filter(|pid| *pid > 0)
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_run_folder_names_are_recognised() {
        assert_eq!(run_pid("modal-rs-1234-abcd0123"), Some(1234));
        assert_eq!(run_pid("modal-rs-1234-"), None);
        assert_eq!(run_pid("modal-rs-0-abcd0123"), None);
        assert_eq!(run_pid("modal-rs-x-abcd0123"), None);
        assert_eq!(run_pid("modal-rs-1234-ab/cd0123"), None);
        assert_eq!(run_pid("modal-rs-1234-abcd01234"), None);
        assert_eq!(run_pid("modal-e2e-server-1-2"), None);
    }
}
