//! Deterministic snapshots of the whole state, their digests, restore, and incremental
//! persistence as `StoreOp` batches.
//!
//! # Snapshot (state transfer and replica comparison)
//!
//! [`StateMachine::checkpoint`] encodes the state canonically: the magic `SKV1`, the state clock,
//! then every key in key order with its deadline and value (hash fields in field order). Equal
//! states give equal bytes, so [`StateMachine::digest`] (SHA-256 of the snapshot) lets replicas
//! compare states (paper 004, section 3.2: correct replicas that executed the same ordered events
//! hold the same state). [`StateMachine::restore`] accepts only canonical, in-limit snapshots.
//!
//! # Incremental persistence (a restarted server recovers)
//!
//! The durable store mirrors the keyspace one record per key:
//! - `kv/e/<key>` holds the key's entry (deadline and value, encoded as in the snapshot);
//! - `kv/meta` holds the state clock.
//!
//! The state remembers which keys changed since the last call to
//! [`StateMachine::take_persist_ops`]; the replication layer calls it once per executed batch and
//! persists the returned ops in the same atomic batch as its own "executed up to" record, so the
//! store always holds the state after some whole batch. A FLUSHDB becomes one `DeleteRange` of
//! `kv/e/`. Expired keys not yet reclaimed are persisted as they are (they stay invisible).
//! Because the store always holds every live key, no periodic snapshot is needed for recovery:
//! [`StateMachine::recover`] rebuilds the state from the `kv/` records alone. The snapshot is for
//! state transfer: a replica that installs one from a peer writes it through with
//! [`StateMachine::persist_all_ops`].

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use stockade_core::store::prefix_end;
use stockade_core::wire::{put_bytes, put_varint};
use stockade_core::{DecodeError, DecodeLimits, Reader, StoreOp, StoreRead, Wire};
use thiserror::Error;

use crate::command::Bytes;
use crate::limits::Limits;
use crate::state::{Entry, StateMachine, Value};

/// A SHA-256 digest of a snapshot.
pub type Digest = [u8; 32];

/// The first bytes of every snapshot (format version 1).
pub const CHECKPOINT_MAGIC: &[u8; 4] = b"SKV1";
/// Store prefix of the per-key records.
pub const STORE_ENTRY_PREFIX: &[u8] = b"kv/e/";
/// Store key of the state clock.
pub const STORE_META_KEY: &[u8] = b"kv/meta";

/// Extra room allowed beyond the memory budget when decoding a snapshot (lengths, deadlines).
const SNAPSHOT_SLACK_BYTES: usize = 1024 * 1024;

/// Why a snapshot or the store could not be turned back into a state.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum CheckpointError {
    /// The bytes are not a well-formed encoding.
    #[error("malformed checkpoint: {0}")]
    Decode(#[from] DecodeError),
    /// The bytes do not start with `SKV1`.
    #[error("not a stockade-kv checkpoint (bad magic)")]
    BadMagic,
    /// Well-formed but not the canonical encoding (unsorted or duplicate keys, empty hash).
    #[error("checkpoint is not canonical: {0}")]
    NotCanonical(&'static str),
    /// A key or value beyond the limits this replica enforces.
    #[error("checkpoint holds a {what} of {len} bytes, over the limit of {max}")]
    OverLimit {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The state would not fit the memory budget.
    #[error("checkpoint needs {used} bytes, over the memory budget of {max}")]
    OverBudget {
        /// Accounted bytes the state needs.
        used: usize,
        /// The budget.
        max: usize,
    },
}

fn snapshot_limits(limits: &Limits) -> DecodeLimits {
    let bytes = limits
        .memory_bytes_max
        .saturating_mul(2)
        .saturating_add(SNAPSHOT_SLACK_BYTES);
    DecodeLimits {
        input_bytes_max: bytes,
        alloc_bytes_max: bytes,
        depth_max: 4,
    }
}

const TAG_STR: u8 = 0;
const TAG_HASH: u8 = 1;

fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    entry.expires_at_ms.encode(out);
    match &entry.value {
        Value::Str(s) => {
            out.push(TAG_STR);
            put_bytes(out, s);
        }
        Value::Hash(h) => {
            out.push(TAG_HASH);
            put_varint(out, h.len() as u64);
            for (f, v) in h {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
    }
}

fn decode_entry(r: &mut Reader<'_>, limits: &Limits) -> Result<Entry, CheckpointError> {
    let expires_at_ms = Option::<u64>::decode(r)?;
    let value = match r.u8()? {
        TAG_STR => Value::Str(r.byte_vec("string value", limits.value_bytes_max)?),
        TAG_HASH => {
            let n = r.len("hash fields", usize::MAX)?;
            if n == 0 {
                return Err(CheckpointError::NotCanonical("empty hash"));
            }
            let mut hash = BTreeMap::new();
            let mut previous: Option<Bytes> = None;
            for _ in 0..n {
                let field = r.byte_vec("hash field", limits.key_bytes_max)?;
                let value = r.byte_vec("hash value", limits.value_bytes_max)?;
                if previous.as_ref().is_some_and(|p| *p >= field) {
                    return Err(CheckpointError::NotCanonical("hash fields out of order"));
                }
                previous = Some(field.clone());
                hash.insert(field, value);
            }
            Value::Hash(hash)
        }
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "value",
                tag: tag as u64,
            }
            .into())
        }
    };
    Ok(Entry {
        value,
        expires_at_ms,
    })
}

fn store_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(STORE_ENTRY_PREFIX.len() + key.len());
    k.extend_from_slice(STORE_ENTRY_PREFIX);
    k.extend_from_slice(key);
    k
}

fn entry_bytes(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    encode_entry(entry, &mut out);
    out
}

fn delete_all_entries() -> StoreOp {
    let end = prefix_end(STORE_ENTRY_PREFIX).unwrap_or_default();
    StoreOp::DeleteRange {
        start: STORE_ENTRY_PREFIX.to_vec(),
        end,
    }
}

/// Builds a state from entries arriving in key order, checking limits and budget.
struct Rebuild {
    state: StateMachine,
    previous_key: Option<Bytes>,
}

impl Rebuild {
    fn new(limits: Limits, clock_ms: u64) -> Rebuild {
        let mut state = StateMachine::new(limits);
        state.clock_ms = clock_ms;
        Rebuild {
            state,
            previous_key: None,
        }
    }

    fn add(&mut self, key: Bytes, entry: Entry) -> Result<(), CheckpointError> {
        let limits = self.state.limits;
        if key.len() > limits.key_bytes_max {
            return Err(CheckpointError::OverLimit {
                what: "key",
                len: key.len(),
                max: limits.key_bytes_max,
            });
        }
        if self.previous_key.as_ref().is_some_and(|p| *p >= key) {
            return Err(CheckpointError::NotCanonical("keys out of order"));
        }
        self.state.put(&key, entry.value, entry.expires_at_ms);
        if self.state.used_bytes > limits.memory_bytes_max {
            return Err(CheckpointError::OverBudget {
                used: self.state.used_bytes,
                max: limits.memory_bytes_max,
            });
        }
        self.previous_key = Some(key);
        Ok(())
    }

    fn finish(mut self) -> StateMachine {
        // Restoring is not a change: the records it came from already hold it.
        self.state.dirty.clear();
        self.state.flushed = false;
        self.state
    }
}

impl StateMachine {
    /// The canonical snapshot of the whole state.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.used_bytes);
        out.extend_from_slice(CHECKPOINT_MAGIC);
        self.clock_ms.encode(&mut out);
        put_varint(&mut out, self.entries.len() as u64);
        for (key, entry) in &self.entries {
            put_bytes(&mut out, key);
            encode_entry(entry, &mut out);
        }
        out
    }

    /// SHA-256 of [`StateMachine::checkpoint`]: equal on replicas holding equal states.
    pub fn digest(&self) -> Digest {
        Sha256::digest(self.checkpoint()).into()
    }

    /// Rebuild a state from a snapshot, enforcing `limits` (those of this replica).
    pub fn restore(bytes: &[u8], limits: Limits) -> Result<StateMachine, CheckpointError> {
        let mut r = Reader::new(bytes, snapshot_limits(&limits))?;
        if r.bytes(CHECKPOINT_MAGIC.len())? != CHECKPOINT_MAGIC {
            return Err(CheckpointError::BadMagic);
        }
        let clock_ms = u64::decode(&mut r)?;
        let n = r.len("entries", usize::MAX)?;
        let mut rebuild = Rebuild::new(limits, clock_ms);
        for _ in 0..n {
            let key = r.byte_vec("key", limits.key_bytes_max)?;
            let entry = decode_entry(&mut r, &limits)?;
            rebuild.add(key, entry)?;
        }
        r.finish()?;
        Ok(rebuild.finish())
    }

    /// The ops that make every change since the last call durable (see the module docs). Call
    /// once per executed batch and persist them atomically with the batch's execution record.
    pub fn take_persist_ops(&mut self) -> Vec<StoreOp> {
        let mut ops = Vec::with_capacity(self.dirty.len() + 2);
        if std::mem::take(&mut self.flushed) {
            ops.push(delete_all_entries());
        }
        for key in std::mem::take(&mut self.dirty) {
            ops.push(match self.entries.get(&key) {
                Some(entry) => StoreOp::Put {
                    key: store_key(&key),
                    value: entry_bytes(entry),
                },
                None => StoreOp::Delete {
                    key: store_key(&key),
                },
            });
        }
        ops.push(StoreOp::Put {
            key: STORE_META_KEY.to_vec(),
            value: self.clock_ms.to_le_bytes().to_vec(),
        });
        ops
    }

    /// Ops that replace whatever the store holds with this whole state (after installing a
    /// snapshot from a peer). Also forgets pending changes: these ops include them.
    pub fn persist_all_ops(&mut self) -> Vec<StoreOp> {
        self.dirty.clear();
        self.flushed = false;
        let mut ops = Vec::with_capacity(self.entries.len() + 2);
        ops.push(delete_all_entries());
        for (key, entry) in &self.entries {
            ops.push(StoreOp::Put {
                key: store_key(key),
                value: entry_bytes(entry),
            });
        }
        ops.push(StoreOp::Put {
            key: STORE_META_KEY.to_vec(),
            value: self.clock_ms.to_le_bytes().to_vec(),
        });
        ops
    }

    /// Rebuild the state a crashed server had persisted, enforcing `limits`.
    pub fn recover(store: &dyn StoreRead, limits: Limits) -> Result<StateMachine, CheckpointError> {
        let clock_ms = match store.get(STORE_META_KEY) {
            None => 0,
            Some(bytes) => u64::from_bytes(&bytes, DecodeLimits::MESSAGE)?,
        };
        let entry_limits = DecodeLimits {
            input_bytes_max: limits
                .value_bytes_max
                .saturating_mul(2)
                .saturating_add(SNAPSHOT_SLACK_BYTES),
            ..snapshot_limits(&limits)
        };
        let mut rebuild = Rebuild::new(limits, clock_ms);
        for (store_key, bytes) in store.scan_prefix(STORE_ENTRY_PREFIX) {
            let key = store_key[STORE_ENTRY_PREFIX.len()..].to_vec();
            let mut r = Reader::new(&bytes, entry_limits)?;
            let entry = decode_entry(&mut r, &limits)?;
            r.finish()?;
            rebuild.add(key, entry)?;
        }
        Ok(rebuild.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::reply::Reply;
    use proptest::prelude::*;
    use stockade_core::MemStore;

    fn run(s: &mut StateMachine, now: u64, line: &str) -> Reply {
        let args: Vec<Bytes> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        let c = Command::parse(&args, s.limits()).expect(line);
        s.exec(now, &c)
    }

    fn populated() -> StateMachine {
        let mut s = StateMachine::new(Limits::DEFAULT);
        run(&mut s, 10, "mset a 1 b 2 c 3");
        run(&mut s, 10, "hset h f v g w");
        run(&mut s, 10, "set t x px 1000");
        run(&mut s, 20, "del b");
        s
    }

    #[test]
    fn checkpoint_roundtrips_and_digests_match() {
        let s = populated();
        let bytes = s.checkpoint();
        let back = StateMachine::restore(&bytes, Limits::DEFAULT).expect("restores");
        back.check_invariants()
            .expect("restored state is consistent");
        assert_eq!(back.checkpoint(), bytes);
        assert_eq!(back.digest(), s.digest());
        assert_eq!(back.clock_ms(), 20);
        assert_eq!(
            back.query(
                20,
                &Command::Ttl {
                    key: b"t".to_vec(),
                    unit: crate::command::TimeUnit::Millis
                }
            ),
            Reply::Integer(990)
        );
    }

    #[test]
    fn digests_differ_when_states_differ() {
        let mut a = populated();
        let b = populated();
        assert_eq!(a.digest(), b.digest());
        run(&mut a, 30, "set a 9");
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn restore_rejects_bad_snapshots() {
        let s = populated();
        let mut bad = s.checkpoint();
        bad[0] = b'X';
        assert_eq!(
            StateMachine::restore(&bad, Limits::DEFAULT).err(),
            Some(CheckpointError::BadMagic)
        );
        let mut trailing = s.checkpoint();
        trailing.push(0);
        assert!(matches!(
            StateMachine::restore(&trailing, Limits::DEFAULT),
            Err(CheckpointError::Decode(DecodeError::TrailingBytes(1)))
        ));
        let tight = Limits {
            memory_bytes_max: 200,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            StateMachine::restore(&s.checkpoint(), tight),
            Err(CheckpointError::OverBudget { .. }) | Err(CheckpointError::Decode(_))
        ));
        // Two keys swapped: same content, not canonical.
        let mut unsorted = Vec::new();
        unsorted.extend_from_slice(CHECKPOINT_MAGIC);
        0u64.encode(&mut unsorted);
        put_varint(&mut unsorted, 2);
        for k in [&b"b"[..], b"a"] {
            put_bytes(&mut unsorted, k);
            encode_entry(
                &Entry {
                    value: Value::Str(b"v".to_vec()),
                    expires_at_ms: None,
                },
                &mut unsorted,
            );
        }
        assert_eq!(
            StateMachine::restore(&unsorted, Limits::DEFAULT).err(),
            Some(CheckpointError::NotCanonical("keys out of order"))
        );
    }

    #[test]
    fn incremental_persistence_recovers_the_state() {
        let mut s = StateMachine::new(Limits::DEFAULT);
        let mut store = MemStore::new();
        run(&mut s, 1, "mset a 1 b 2");
        run(&mut s, 1, "hset h f v");
        store.apply(&s.take_persist_ops());
        run(&mut s, 2, "del a");
        run(&mut s, 2, "incr b");
        let ops = s.take_persist_ops();
        assert_eq!(ops.len(), 3, "two changed keys and the clock: {ops:?}");
        store.apply(&ops);
        assert_eq!(
            s.take_persist_ops().len(),
            1,
            "nothing changed: only the clock"
        );
        let back = StateMachine::recover(&store, Limits::DEFAULT).expect("recovers");
        assert_eq!(back.digest(), s.digest());
        // FLUSHDB then a write in the same batch.
        run(&mut s, 3, "flushdb");
        run(&mut s, 3, "set z 1");
        let ops = s.take_persist_ops();
        assert!(
            matches!(ops[0], StoreOp::DeleteRange { .. }),
            "flush first: {ops:?}"
        );
        store.apply(&ops);
        let back = StateMachine::recover(&store, Limits::DEFAULT).expect("recovers");
        assert_eq!(back.digest(), s.digest());
        assert_eq!(back.stored_keys(), 1);
    }

    #[test]
    fn persist_all_replaces_the_store() {
        let mut s = populated();
        let mut store = MemStore::new();
        store.apply(&[StoreOp::Put {
            key: store_key(b"stale"),
            value: entry_bytes(&Entry {
                value: Value::Str(b"x".to_vec()),
                expires_at_ms: None,
            }),
        }]);
        store.apply(&s.persist_all_ops());
        assert_eq!(
            StateMachine::recover(&store, Limits::DEFAULT).map(|r| r.digest()),
            Ok(s.digest())
        );
    }

    proptest! {
        #[test]
        fn restore_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut input = CHECKPOINT_MAGIC.to_vec();
            input.extend(bytes);
            let _ = StateMachine::restore(&input, Limits::DEFAULT);
        }
    }
}
