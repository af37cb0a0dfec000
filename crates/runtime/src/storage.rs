//! Durable storage of a node in redb: persist batches applied atomically and durably, on a
//! dedicated thread so the node's async task never waits on a disk flush, and a read view
//! ([`RedbStore`] implements [`StoreRead`]) to rebuild a protocol at restart.
//!
//! Batches are committed in the order submitted; the writer groups the batches waiting in its
//! queue into one durable transaction (each batch stays atomic, since a transaction is all or
//! nothing) and reports their tokens in order once the commit returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use stockade_core::{MemStore, PersistToken, StoreOp, StoreRead};
use thiserror::Error;
use tokio::sync::mpsc;

/// The one table a node's protocol state lives in: byte keys to byte values.
const STATE_TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("protocol_state");

/// Key-value pairs in key order, as reads return them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Name of the database file inside the node's data directory.
pub const DATABASE_FILE: &str = "state.redb";

/// Most persist batches one durable transaction groups together.
pub const GROUP_COMMIT_BATCHES_MAX: usize = 256;

/// A storage failure. A node cannot keep its promises without its disk, so the driver stops.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// redb failed.
    #[error("database {path}: {message}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// redb's description of the failure.
        message: String,
    },
}

/// A node's redb database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl RedbStore {
    /// Open (creating if needed) the database in `data_dir`. redb recovers from an interrupted
    /// commit here, so what is visible afterwards is exactly the committed batches.
    pub fn open(data_dir: &Path) -> Result<RedbStore, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::Directory {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let db = Database::create(&path).map_err(|e| db_error(&path, &e))?;
        let store = RedbStore {
            db: Arc::new(db),
            path,
        };
        // Create the table up front so reads of a fresh database find it.
        store.apply_batches(&[])?;
        Ok(store)
    }

    /// The redb database, for tools and tests (a test holds a write transaction on it to stall
    /// the node's storage thread).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Apply `batches` in order in one durable transaction. Blocks until the commit is on disk.
    pub fn apply_batches(&self, batches: &[&[StoreOp]]) -> Result<(), StorageError> {
        let err = |e: &dyn std::fmt::Display| db_error(&self.path, e);
        let mut txn = self.db.begin_write().map_err(|e| err(&e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(STATE_TABLE).map_err(|e| err(&e))?;
            for op in batches.iter().flat_map(|b| b.iter()) {
                match op {
                    StoreOp::Put { key, value } => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(|e| err(&e))?;
                    }
                    StoreOp::Delete { key } => {
                        table.remove(key.as_slice()).map_err(|e| err(&e))?;
                    }
                    StoreOp::DeleteRange { start, end } => {
                        table
                            .retain_in::<&[u8], _>(start.as_slice()..end.as_slice(), |_, _| false)
                            .map_err(|e| err(&e))?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| err(&e))
    }

    fn read_range(&self, start: &[u8], end: &[u8]) -> Result<Pairs, StorageError> {
        let err = |e: &dyn std::fmt::Display| db_error(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(STATE_TABLE).map_err(|e| err(&e))?;
        let range = if end.is_empty() {
            table.range::<&[u8]>(start..)
        } else {
            table.range::<&[u8]>(start..end)
        };
        let mut out = Vec::new();
        for entry in range.map_err(|e| err(&e))? {
            let (k, v) = entry.map_err(|e| err(&e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Everything stored, as an in-memory copy (with read errors reported, unlike [`StoreRead`]).
    pub fn snapshot(&self) -> Result<MemStore, StorageError> {
        let mut mem = MemStore::new();
        let ops: Vec<StoreOp> = self
            .read_range(&[], &[])?
            .into_iter()
            .map(|(key, value)| StoreOp::Put { key, value })
            .collect();
        mem.apply(&ops);
        Ok(mem)
    }
}

fn db_error(path: &Path, e: &dyn std::fmt::Display) -> StorageError {
    StorageError::Database {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads for rebuilding a protocol. A read error (a failing disk under a database that opened
/// fine) is logged and reads as absent; use [`RedbStore::snapshot`] where it must be surfaced.
impl StoreRead for RedbStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let read = || -> Result<Option<Vec<u8>>, StorageError> {
            let err = |e: &dyn std::fmt::Display| db_error(&self.path, e);
            let txn = self.db.begin_read().map_err(|e| err(&e))?;
            let table = txn.open_table(STATE_TABLE).map_err(|e| err(&e))?;
            let value = table.get(key).map_err(|e| err(&e))?;
            Ok(value.map(|v| v.value().to_vec()))
        };
        read().unwrap_or_else(|e| {
            tracing::error!(error = %e, "storage read failed");
            None
        })
    }

    /// An empty `end` means "to the end of the store".
    fn range(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read_range(start, end).unwrap_or_else(|e| {
            tracing::error!(error = %e, "storage read failed");
            Vec::new()
        })
    }
}

/// One batch for the writer thread.
pub struct PersistJob {
    /// The protocol's token for the batch.
    pub token: PersistToken,
    /// The operations.
    pub ops: Vec<StoreOp>,
}

/// What the writer thread reports: the batches made durable, in order, or the failure that
/// stopped it.
pub type PersistReport = Result<Vec<(PersistToken, usize)>, StorageError>;

/// Start the writer thread for `store`. It takes jobs from `jobs` (bounded by the caller) and
/// reports on `reports`; it exits when `jobs` closes or after reporting a failure.
pub fn spawn_writer(
    store: RedbStore,
    mut jobs: mpsc::Receiver<PersistJob>,
    reports: mpsc::UnboundedSender<PersistReport>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stockade-storage".into())
        .spawn(move || {
            while let Some(first) = jobs.blocking_recv() {
                let mut group = vec![first];
                while group.len() < GROUP_COMMIT_BATCHES_MAX {
                    match jobs.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                let batches: Vec<&[StoreOp]> = group.iter().map(|j| j.ops.as_slice()).collect();
                let report = store.apply_batches(&batches).map(|()| {
                    group
                        .iter()
                        .map(|j| (j.token, j.ops.iter().map(StoreOp::size_bytes).sum()))
                        .collect()
                });
                let failed = report.is_err();
                if reports.send(report).is_err() || failed {
                    return;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> StoreOp {
        StoreOp::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn the_writer_groups_at_most_the_bound_of_batches_per_commit() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|source| StorageError::Directory {
            path: "tmp".into(),
            source,
        })?;
        let store = RedbStore::open(dir.path())?;
        let jobs_total = GROUP_COMMIT_BATCHES_MAX + 44;
        let (jobs, jobs_rx) = mpsc::channel(jobs_total);
        for i in 0..jobs_total as u64 {
            let ops = vec![put(&i.to_be_bytes(), b"v")];
            jobs.try_send(PersistJob {
                token: PersistToken(i),
                ops,
            })
            .expect("room");
        }
        drop(jobs);
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let writer = spawn_writer(store.clone(), jobs_rx, reports_tx).map_err(|source| {
            StorageError::Directory {
                path: "thread".into(),
                source,
            }
        })?;
        let _ = writer.join();
        let first = reports.blocking_recv().expect("a report")?;
        let second = reports.blocking_recv().expect("a report")?;
        assert_eq!((first.len(), second.len()), (GROUP_COMMIT_BATCHES_MAX, 44));
        assert_eq!(first[0].0, PersistToken(0), "tokens are reported in order");
        assert_eq!(second[43].0, PersistToken(jobs_total as u64 - 1));
        assert_eq!(store.snapshot()?.len(), jobs_total);
        Ok(())
    }

    #[test]
    fn redb_applies_batches_like_the_memstore_and_survives_reopen() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(|source| StorageError::Directory {
            path: "tmp".into(),
            source,
        })?;
        let batches = [
            vec![
                put(b"a1", b"x"),
                put(b"a2", b"y"),
                put(b"b1", b"z"),
                put(b"c", b"w"),
            ],
            vec![
                StoreOp::Delete {
                    key: b"a1".to_vec(),
                },
                put(b"a3", b"v"),
            ],
            vec![StoreOp::DeleteRange {
                start: b"a2".to_vec(),
                end: b"a3".to_vec(),
            }],
        ];
        let mut model = MemStore::new();
        {
            let store = RedbStore::open(dir.path())?;
            for b in &batches {
                store.apply_batches(&[b])?;
                model.apply(b);
            }
        }
        let reopened = RedbStore::open(dir.path())?;
        assert_eq!(reopened.snapshot()?, model);
        assert_eq!(reopened.get(b"a3"), Some(b"v".to_vec()));
        assert_eq!(reopened.get(b"a2"), None, "deleted by the range");
        assert_eq!(reopened.scan_prefix(b"a"), model.scan_prefix(b"a"));
        assert_eq!(reopened.range(b"b", b""), model.range(b"b", b""));
        Ok(())
    }
}
