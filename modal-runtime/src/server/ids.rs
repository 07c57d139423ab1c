//! Ids of functions, class instances and containers: never reused, across
//! restarts too, so that a caller holding an id from before a restart is
//! told to look its function up again rather than reaching another one.
//!
//! The counter is persisted as a high-water mark reserved in blocks: the
//! file is written once per [`BLOCK`] ids, before any id of the block is
//! handed out, and a restart starts above the last mark written.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Ids reserved per write of the mark.
const BLOCK: u64 = 1024;

pub(crate) struct IdAllocator {
    path: PathBuf,
    state: Mutex<Range>,
}

struct Range {
    next: u64,
    /// Every id below this may have been handed out.
    reserved_to: u64,
}

impl IdAllocator {
    /// Opens the counter kept in `dir`, starting above every id handed out
    /// before.
    pub(crate) fn open(dir: &Path) -> std::io::Result<IdAllocator> {
        let path = dir.join("next-id");
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::other(format!(
                    "{} is corrupt ({e}); it holds the id counter and must not be edited",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e),
        };
        Ok(IdAllocator {
            path,
            state: Mutex::new(Range {
                next: start,
                reserved_to: start,
            }),
        })
    }

    /// The next id. Fails only if the mark cannot be written (a full or
    /// read-only disk): handing out an id that might come back is worse.
    pub(crate) fn next(&self) -> std::io::Result<u64> {
        let mut range = self.state.lock().unwrap();
        if range.next == range.reserved_to {
            let mark = range.next + BLOCK;
            write_mark(&self.path, mark)?;
            range.reserved_to = mark;
        }
        let id = range.next;
        range.next += 1;
        Ok(id)
    }
}

fn write_mark(path: &Path, mark: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(mark.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modal-ids-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn ids_are_not_reused_after_reopening() {
        let dir = dir();
        let first = IdAllocator::open(&dir).unwrap();
        let a: Vec<u64> = (0..3).map(|_| first.next().unwrap()).collect();
        assert_eq!(a, vec![1, 2, 3]);
        drop(first);
        let second = IdAllocator::open(&dir).unwrap();
        let b = second.next().unwrap();
        assert!(b > 3, "{b}");
        // A whole block used up, then a restart: still above.
        for _ in 0..BLOCK * 2 {
            second.next().unwrap();
        }
        let last = second.next().unwrap();
        drop(second);
        assert!(IdAllocator::open(&dir).unwrap().next().unwrap() > last);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_counter_is_an_error_naming_the_file() {
        let dir = dir();
        std::fs::write(dir.join("next-id"), "not a number").unwrap();
        let err = IdAllocator::open(&dir).err().unwrap().to_string();
        assert!(err.contains("next-id"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
