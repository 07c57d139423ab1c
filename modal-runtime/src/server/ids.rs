//! Ids of functions, class instances and containers: never reused, across
//! restarts too, so that a caller holding an id from before a restart is
//! told to look its function up again rather than reaching another one.
//!
//! The counter is persisted as a high-water mark reserved in blocks: the
//! store commits a mark once per [`BLOCK`] ids, before any id of the block
//! is handed out, and a restart starts above the last mark committed.

use std::sync::Mutex;

use super::store::{Store, Write};

/// Ids reserved per write of the mark.
const BLOCK: u64 = 1024;

pub(crate) struct IdAllocator {
    store: Store,
    state: Mutex<Range>,
}

struct Range {
    next: u64,
    /// Every id below this may have been handed out.
    reserved_to: u64,
}

impl IdAllocator {
    /// A counter starting above `mark`, the last mark the store holds, that
    /// commits its marks to `store`.
    pub(crate) fn new(mark: u64, store: Store) -> IdAllocator {
        let start = mark.max(1);
        IdAllocator {
            store,
            state: Mutex::new(Range {
                next: start,
                reserved_to: start,
            }),
        }
    }

    /// The next id. Fails only if the mark cannot be committed (a full or
    /// lost store): handing out an id that might come back is worse.
    pub(crate) fn next(&self) -> Result<u64, super::store::StoreError> {
        let mut range = self.state.lock().unwrap();
        if range.next == range.reserved_to {
            let mark = range.next + BLOCK;
            self.store.commit_blocking(vec![Write::IdMark(mark)])?;
            range.reserved_to = mark;
        }
        let id = range.next;
        range.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::StoreConfig;

    #[test]
    fn ids_are_not_reused_after_reopening() {
        let dir = std::env::temp_dir().join(format!("modal-ids-{}", uuid::Uuid::new_v4().simple()));
        let config = StoreConfig::Sqlite {
            path: dir.join("store.sqlite3"),
            max_bytes: None,
        };
        let open = || {
            let (store, snapshot) = Store::open(&config).unwrap();
            IdAllocator::new(snapshot.id_mark, store)
        };
        let first = open();
        let a: Vec<u64> = (0..3).map(|_| first.next().unwrap()).collect();
        assert_eq!(a, vec![1, 2, 3]);
        first.store.close();
        drop(first);
        let second = open();
        let b = second.next().unwrap();
        assert!(b > 3, "{b}");
        // A whole block used up, then a restart: still above.
        for _ in 0..BLOCK * 2 {
            second.next().unwrap();
        }
        let last = second.next().unwrap();
        second.store.close();
        drop(second);
        assert!(open().next().unwrap() > last);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
