//! The replicated key-value state machine: executes ordered commands deterministically.
//!
//! # How to drive it
//!
//! - [`StateMachine::exec`] executes one command at the time the replication layer agreed on for
//!   it (paper 004, section 3.2: every replica executes the same ordered events; section 5: the
//!   service is a state machine replicated by Prime). The result depends only on the prior state,
//!   the command and that time, never on a local clock, so correct replicas produce equal replies
//!   and equal states.
//! - [`StateMachine::query`] answers a read-only command without changing anything (the fast read
//!   path). It never reclaims expired keys: a read on one replica must not make its state differ
//!   from the others'.
//! - After each executed batch, [`StateMachine::take_persist_ops`] returns the `StoreOp`s that make
//!   the changes durable (see [`crate::checkpoint`] for the scheme).
//!
//! The state's clock is the largest agreed time seen so far: a command stamped earlier than a
//! previous one runs at the previous one's time, so time never goes backwards inside the state.
//!
//! Expiry: a key whose deadline is at or before the current time is invisible to every command.
//! It is reclaimed lazily (when a write touches it) and actively (before each executed command, up
//! to [`Limits::reclaim_per_exec_max`] keys in deadline order; [`StateMachine::reclaim_expired`]
//! reclaims more on request). Both are driven by ordered inputs only, so reclamation is identical
//! on every replica.

mod hashes;
mod keyspace;
mod strings;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use stockade_core::InvariantViolation;

use crate::command::{Bytes, Command, CommandClass};
use crate::error::KvError;
use crate::limits::{Limits, ENTRY_OVERHEAD_BYTES, FIELD_OVERHEAD_BYTES};
use crate::reply::Reply;

/// A stored value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    /// A binary-safe string.
    Str(Bytes),
    /// A hash: field to value, in field order.
    Hash(BTreeMap<Bytes, Bytes>),
}

impl Value {
    /// Accounted bytes of the value.
    pub fn cost(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Hash(h) => h.iter().map(|(f, v)| field_cost(f, v)).sum(),
        }
    }
}

/// Accounted bytes of one hash field.
pub(crate) fn field_cost(field: &[u8], value: &[u8]) -> usize {
    FIELD_OVERHEAD_BYTES + field.len() + value.len()
}

/// Accounted bytes of one key with `value`.
pub(crate) fn entry_cost(key: &[u8], value: &Value) -> usize {
    ENTRY_OVERHEAD_BYTES + key.len() + value.cost()
}

/// One key's value and deadline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// When the key expires (agreed milliseconds); `None` lives forever.
    pub expires_at_ms: Option<u64>,
}

impl Entry {
    fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

/// A key's position in SCAN order: the first 8 bytes of SHA-256(key). A fixed function of the key,
/// so a key never moves while a scan is in progress, and the same on every replica and build.
pub fn scan_position(key: &[u8]) -> u64 {
    let digest = Sha256::digest(key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The key-value state machine. See the module documentation for how to drive it.
#[derive(Clone, Debug)]
pub struct StateMachine {
    pub(crate) limits: Limits,
    pub(crate) entries: BTreeMap<Bytes, Entry>,
    /// Every key by SCAN position (paper-independent: the cursor design of `keyspace::scan`).
    pub(crate) scan_order: BTreeSet<(u64, Bytes)>,
    /// Keys with a deadline, by deadline: active expiry reclaims from the front.
    pub(crate) deadlines: BTreeSet<(u64, Bytes)>,
    pub(crate) used_bytes: usize,
    pub(crate) clock_ms: u64,
    /// Keys changed since the last `take_persist_ops` (bounded by the keys one batch touches).
    pub(crate) dirty: BTreeSet<Bytes>,
    /// FLUSHDB ran since the last `take_persist_ops`.
    pub(crate) flushed: bool,
    /// Whether `dirty` and `flushed` are kept (off for a server that never persists).
    track_changes: bool,
}

impl StateMachine {
    /// An empty state enforcing `limits`.
    pub fn new(limits: Limits) -> StateMachine {
        StateMachine {
            limits,
            entries: BTreeMap::new(),
            scan_order: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            used_bytes: 0,
            clock_ms: 0,
            dirty: BTreeSet::new(),
            flushed: false,
            track_changes: true,
        }
    }

    /// Stop remembering changes for [`StateMachine::take_persist_ops`]: for a server that keeps
    /// the state in memory only (the unreplicated baseline), so the change set cannot grow.
    pub fn without_change_tracking(mut self) -> StateMachine {
        self.track_changes = false;
        self.dirty.clear();
        self.flushed = false;
        self
    }

    fn mark_changed(&mut self, key: &[u8]) {
        if self.track_changes {
            self.dirty.insert(key.to_vec());
        }
    }

    /// The limits this state enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Accounted memory of the keyspace, in bytes (at most `limits().memory_bytes_max`).
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// The state's clock: the largest agreed time executed so far, in milliseconds.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Keys held, including expired keys not yet reclaimed.
    pub fn stored_keys(&self) -> usize {
        self.entries.len()
    }

    /// Execute an ordered command at the agreed time `now_ms` (milliseconds since the Unix epoch,
    /// as the replication layer agreed). Connection-local commands get an error reply: they are
    /// the connection's to answer.
    pub fn exec(&mut self, now_ms: u64, command: &Command) -> Reply {
        self.clock_ms = self.clock_ms.max(now_ms);
        let now = self.clock_ms;
        self.reclaim_expired(self.limits.reclaim_per_exec_max);
        let result = match command.class() {
            CommandClass::Read => self.read(now, command),
            CommandClass::Write => self.write(now, command),
            CommandClass::Local => Err(KvError::NotReplicated(command.name().to_string())),
        };
        Reply::from(result)
    }

    /// Answer a read-only command at `now_ms` without changing the state (the fast read path).
    /// Writes get an error reply.
    pub fn query(&self, now_ms: u64, command: &Command) -> Reply {
        let now = self.clock_ms.max(now_ms);
        let result = match command.class() {
            CommandClass::Read => self.read(now, command),
            CommandClass::Write => Err(KvError::WriteOnReadPath(command.name().to_string())),
            CommandClass::Local => Err(KvError::NotReplicated(command.name().to_string())),
        };
        Reply::from(result)
    }

    fn read(&self, now: u64, command: &Command) -> Result<Reply, KvError> {
        match command {
            Command::Get { key } => self.get(now, key),
            Command::Exists { keys } => Ok(self.exists(now, keys)),
            Command::Strlen { key } => self.strlen(now, key),
            Command::MGet { keys } => Ok(self.mget(now, keys)),
            Command::Ttl { key, unit } => Ok(self.ttl(now, key, *unit)),
            Command::Keys { pattern } => Ok(self.keys(now, pattern)),
            Command::Scan {
                cursor,
                pattern,
                count,
            } => Ok(self.scan(now, *cursor, pattern.as_deref(), *count)),
            Command::DbSize => Ok(Reply::Integer(self.live_key_count(now) as i64)),
            Command::HGet { key, field } => self.hget(now, key, field),
            Command::HGetAll { key } => self.hgetall(now, key),
            _ => Err(KvError::WriteOnReadPath(command.name().to_string())),
        }
    }

    fn write(&mut self, now: u64, command: &Command) -> Result<Reply, KvError> {
        match command {
            Command::Set {
                key,
                value,
                condition,
                expiry,
                get,
            } => self.set(now, key, value, *condition, *expiry, *get),
            Command::GetSet { key, value } => self.getset(now, key, value),
            Command::Del { keys } => Ok(self.del(now, keys)),
            Command::IncrBy { key, delta } => self.incr_by(now, key, *delta),
            Command::Append { key, value } => self.append(now, key, value),
            Command::MSet { pairs } => self.mset(now, pairs),
            Command::Expire {
                key,
                amount,
                unit,
                flags,
            } => self.expire(now, key, *amount, *unit, *flags),
            Command::Persist { key } => Ok(self.persist(now, key)),
            Command::FlushDb => Ok(self.flush()),
            Command::HSet { key, pairs } => self.hset(now, key, pairs),
            Command::HMSet { key, pairs } => self.hset(now, key, pairs).map(|_| Reply::ok()),
            Command::HDel { key, fields } => self.hdel(now, key, fields),
            Command::HIncrBy { key, field, delta } => self.hincr_by(now, key, field, *delta),
            _ => self.read(now, command),
        }
    }

    /// Reclaim up to `keys_max` expired keys, earliest deadline first; returns how many. Only
    /// call it from the ordered path (every replica must reclaim the same keys).
    pub fn reclaim_expired(&mut self, keys_max: usize) -> usize {
        let mut reclaimed = 0;
        while reclaimed < keys_max {
            let Some((deadline, key)) = self.deadlines.first().cloned() else {
                break;
            };
            if deadline > self.clock_ms {
                break;
            }
            self.remove(&key);
            reclaimed += 1;
        }
        reclaimed
    }

    // ---- the primitives every command is built from; they keep the indexes and accounting ----

    /// The entry under `key` unless it is absent or expired.
    fn live(&self, now: u64, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.is_live(now))
    }

    /// Reclaim `key` if it has expired (lazy expiry, on the write path only).
    fn purge_if_expired(&mut self, now: u64, key: &[u8]) {
        if self.entries.get(key).is_some_and(|e| !e.is_live(now)) {
            self.remove(key);
        }
    }

    /// Fail with OOM unless `growth` more accounted bytes fit.
    fn ensure_room(&self, growth: usize) -> Result<(), KvError> {
        match self.used_bytes.checked_add(growth) {
            Some(total) if total <= self.limits.memory_bytes_max => Ok(()),
            _ => Err(KvError::OutOfMemory),
        }
    }

    /// Fail with OOM unless replacing `key`'s current value with one of `new_cost` bytes fits.
    fn ensure_room_for(&self, key: &[u8], new_cost: usize) -> Result<(), KvError> {
        let old = self
            .entries
            .get(key)
            .map_or(0, |e| entry_cost(key, &e.value));
        self.ensure_room(new_cost.saturating_sub(old))
    }

    /// Remove `key` and its index entries; returns the entry.
    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (key, entry) = self.entries.remove_entry(key)?;
        self.used_bytes -= entry_cost(&key, &entry.value);
        if let Some(at) = entry.expires_at_ms {
            self.deadlines.remove(&(at, key.clone()));
        }
        self.scan_order.remove(&(scan_position(&key), key.clone()));
        self.mark_changed(&key);
        Some(entry)
    }

    /// Store `value` under `key` with deadline `expires_at_ms`, replacing what was there.
    pub(crate) fn put(&mut self, key: &[u8], value: Value, expires_at_ms: Option<u64>) {
        if let Some(old) = self.entries.get(key) {
            let old_cost = entry_cost(key, &old.value);
            let old_deadline = old.expires_at_ms;
            self.used_bytes = self.used_bytes - old_cost + entry_cost(key, &value);
            self.move_deadline(key, old_deadline, expires_at_ms);
            if let Some(e) = self.entries.get_mut(key) {
                *e = Entry {
                    value,
                    expires_at_ms,
                };
            }
        } else {
            self.used_bytes += entry_cost(key, &value);
            if let Some(at) = expires_at_ms {
                self.deadlines.insert((at, key.to_vec()));
            }
            self.scan_order.insert((scan_position(key), key.to_vec()));
            self.entries.insert(
                key.to_vec(),
                Entry {
                    value,
                    expires_at_ms,
                },
            );
        }
        self.mark_changed(key);
    }

    /// Change `key`'s deadline (the key exists).
    fn set_deadline(&mut self, key: &[u8], expires_at_ms: Option<u64>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut entry.expires_at_ms, expires_at_ms);
        self.move_deadline(key, old, expires_at_ms);
        self.mark_changed(key);
    }

    fn move_deadline(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            self.deadlines.remove(&(at, key.to_vec()));
        }
        if let Some(at) = new {
            self.deadlines.insert((at, key.to_vec()));
        }
    }

    /// Drop every key.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.scan_order.clear();
        self.deadlines.clear();
        self.used_bytes = 0;
        self.dirty.clear();
        self.flushed = self.track_changes;
    }

    /// Recompute every index and the accounting from scratch and compare (tests, restores).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let used: usize = self
            .entries
            .iter()
            .map(|(k, e)| entry_cost(k, &e.value))
            .sum();
        if used != self.used_bytes {
            return Err(InvariantViolation(format!(
                "accounted {} bytes, entries hold {used}",
                self.used_bytes
            )));
        }
        let scan: BTreeSet<(u64, Bytes)> = self
            .entries
            .keys()
            .map(|k| (scan_position(k), k.clone()))
            .collect();
        if scan != self.scan_order {
            return Err(InvariantViolation(
                "scan index differs from the keyspace".into(),
            ));
        }
        let deadlines: BTreeSet<(u64, Bytes)> = self
            .entries
            .iter()
            .filter_map(|(k, e)| e.expires_at_ms.map(|at| (at, k.clone())))
            .collect();
        if deadlines != self.deadlines {
            return Err(InvariantViolation(
                "deadline index differs from the keyspace".into(),
            ));
        }
        if self.used_bytes > self.limits.memory_bytes_max {
            return Err(InvariantViolation(format!(
                "{} bytes used over the budget of {}",
                self.used_bytes, self.limits.memory_bytes_max
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Run one command given as words at `now_ms`.
    pub fn run(sm: &mut StateMachine, now_ms: u64, words: &[&[u8]]) -> Reply {
        let args: Vec<Bytes> = words.iter().map(|w| w.to_vec()).collect();
        match Command::parse(&args, sm.limits()) {
            Ok(c) => sm.exec(now_ms, &c),
            Err(e) => Reply::from(e),
        }
    }

    /// Run a space-separated command at `now_ms`.
    pub fn cmd(sm: &mut StateMachine, now_ms: u64, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let reply = run(sm, now_ms, &words);
        sm.check_invariants()
            .expect("invariants hold after every command");
        reply
    }

    pub fn bulk(s: &str) -> Reply {
        Reply::bulk(s)
    }

    pub fn err(s: &str) -> Reply {
        Reply::Error(s.to_string())
    }

    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
}
