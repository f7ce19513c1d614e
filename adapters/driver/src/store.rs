//! Persistence of the metadata store in redb.
//!
//! The node stays pure: whenever an object must be durable it emits
//! `metadata::Event::Persist` with the whole encoded object. The driver hands each
//! record, in order, to a writer thread of its own (redb is blocking I/O and
//! must never run on the loop), which writes every record queued so far in
//! one transaction, commits it durably (fsync), and only then reports the
//! records' ids back. The loop then calls `Node::persisted`, which brings
//! `metadata::Event::PutDurable` for a put, and only then is the put acknowledged to
//! its caller. So **an acknowledged put is on disk**, whatever happens to the
//! process afterwards.
//!
//! One table maps `len(prefix) ‖ prefix ‖ len(subprefix) ‖ subprefix ‖ key`
//! to the encoded object; a record without an object (a collected
//! tombstone) removes its key. On start, [`Store::open`] reads every record
//! back, and the driver feeds them to `Node::restore` before the node joins.
//!
//! Group commit: while one transaction commits, records keep queueing, and
//! the next transaction takes them all, so the number of fsyncs per second
//! stays bounded however fast puts arrive.

use crate::handle::Shared;
use crate::sync::Arc;
use bytes::Bytes;
use epidemic_core::metadata::{FullPrefix, Persist, PersistId};
use futures_lite::future;
use redb::{Database, ReadableTable, TableDefinition};
use std::fmt;
use std::path::{Path, PathBuf};

const OBJECTS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("objects");

/// The file, inside the node's data directory.
pub const FILE_NAME: &str = "epidemic.redb";

/// Records written per transaction at most.
const BATCH: usize = 4096;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("creating {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// redb refused to open, read or write (boxed: redb's error is large).
    #[error("redb: {0}")]
    Redb(Box<redb::Error>),
    /// A stored key is not one this store wrote.
    #[error("corrupt key in the store")]
    CorruptKey,
}

fn redb_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Redb(Box::new(e.into()))
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The key's full prefix.
    pub prefix: FullPrefix,
    /// The key.
    pub key: Bytes,
    /// The encoded object.
    pub object: Bytes,
}

/// A node's durable store: a redb file in its data directory, and what it
/// held when opened.
pub struct Store {
    db: Database,
    path: PathBuf,
    records: Vec<Record>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("records", &self.records.len())
            .finish()
    }
}

/// The table key of `(prefix, key)`. Prefix parts are at most 255 bytes
/// (the node refuses longer ones), so one length byte each suffices.
fn table_key(prefix: &FullPrefix, key: &[u8]) -> Vec<u8> {
    let (p, s) = (prefix.prefix(), prefix.subprefix());
    let mut out = Vec::with_capacity(2 + p.len() + s.len() + key.len());
    out.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(p);
    out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(s);
    out.extend_from_slice(key);
    out
}

fn split_key(k: &[u8]) -> Option<(FullPrefix, Bytes)> {
    let (&plen, rest) = k.split_first()?;
    let (p, rest) = rest.split_at_checked(usize::from(plen))?;
    let (&slen, rest) = rest.split_first()?;
    let (s, key) = rest.split_at_checked(usize::from(slen))?;
    Some((FullPrefix::new(p, s), Bytes::copy_from_slice(key)))
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and reads every record.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(redb_err)?;
        // Make sure the table exists, so that reading an empty store works.
        let txn = db.begin_write().map_err(redb_err)?;
        txn.open_table(OBJECTS).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        let mut records = Vec::new();
        {
            let txn = db.begin_read().map_err(redb_err)?;
            let table = txn.open_table(OBJECTS).map_err(redb_err)?;
            for entry in table.iter().map_err(redb_err)? {
                let (k, v) = entry.map_err(redb_err)?;
                let (prefix, key) = split_key(k.value()).ok_or(StoreError::CorruptKey)?;
                records.push(Record {
                    prefix,
                    key,
                    object: Bytes::copy_from_slice(v.value()),
                });
            }
        }
        Ok(Store { db, path, records })
    }

    /// The records read when the store was opened.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }

    /// Writes `batch` in one durable transaction, later records of a key
    /// replacing earlier ones.
    fn write(&self, batch: &[Persist]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(redb_err)?;
        {
            let mut table = txn.open_table(OBJECTS).map_err(redb_err)?;
            for record in batch {
                let k = table_key(&record.prefix, &record.key);
                match &record.object {
                    Some(object) => {
                        table.insert(&k[..], &object[..]).map_err(redb_err)?;
                    }
                    None => {
                        table.remove(&k[..]).map_err(redb_err)?;
                    }
                }
            }
        }
        txn.commit().map_err(redb_err)
    }
}

/// What the writer thread reports after each commit.
pub(crate) enum Durable {
    /// These records are on disk.
    Written(Vec<PersistId>),
    /// The store failed; nothing more will be written.
    Failed(String),
}

/// The writer thread: takes records from the shared persist queue, writes
/// and commits them in batches, and reports them durable. It ends when the
/// queue is closed and empty (after writing what was left in it, reported
/// or not), or at the first failure, and then tells the node it ended.
pub(crate) fn spawn_writer(store: Store, shared: Arc<Shared>, slow_write: std::time::Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("epidemic-store".into())
        .spawn(move || {
            let mut batch = Vec::new();
            while let Some(first) = future::block_on(future::poll_fn(|cx| shared.persist.poll_pop(cx))) {
                batch.clear();
                batch.push(first);
                while batch.len() < BATCH {
                    match shared.persist.try_pop() {
                        Some(r) => batch.push(r),
                        None => break,
                    }
                }
                let started = std::time::Instant::now();
                let written = store.write(&batch);
                let took = started.elapsed();
                if took >= slow_write {
                    tracing::warn!(?took, records = batch.len(), path = %store.path().display(), "slow disk write");
                }
                let report = match written {
                    Ok(()) => Durable::Written(batch.iter().map(|r| r.id).collect()),
                    Err(e) => Durable::Failed(e.to_string()),
                };
                let failed = matches!(report, Durable::Failed(_));
                // A closed report queue means the loop is gone; what is still
                // queued is written all the same.
                let _ = future::block_on(shared.durable.push(report));
                if failed {
                    break;
                }
            }
            // Close the database before saying so: the directory can then be
            // opened again at once.
            drop(store);
            shared.part_ended();
        })
        .map(drop)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_refuse_garbage() {
        let p = FullPrefix::new("app", "users");
        let k = table_key(&p, b"alice");
        assert_eq!(split_key(&k), Some((p, Bytes::from_static(b"alice"))));
        let empty = FullPrefix::new("", "");
        assert_eq!(split_key(&table_key(&empty, b"")), Some((empty, Bytes::new())));
        assert_eq!(split_key(&[5, b'a']), None);
        assert_eq!(split_key(&[]), None);
    }
}
