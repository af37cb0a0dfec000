//! [`ReplicatedKv`]: the key-value [`StateMachine`] as a Prime [`Application`] (paper 004,
//! section 5: the replicated service is a deterministic state machine that Prime feeds totally
//! ordered updates; PRIME.md step 11).
//!
//! - An update's `op` is a [`Command`] in its canonical binary encoding; its result is the
//!   [`Reply`] in its binary encoding, which clients compare byte for byte when they vote (a reply
//!   over one Prime reply's size is replaced by its [`crate::large_reply::LargeReplyRef`]).
//! - Every update of a slot runs at the slot's agreed timestamp.
//! - The digest Prime reports after each slot is a hash chain over what executed (slot, op,
//!   result), so it costs O(batch) rather than O(state) per slot and still differs as soon as two
//!   replicas executed anything differently. A snapshot carries the chain.
//! - Durability: after each batch the changed keys and the executed slot go into a
//!   [`PersistOutbox`] that the hosting protocol ([`crate::replica::KvReplica`]) turns into one
//!   atomic persist batch. A restarted replica is rebuilt from those records with
//!   [`ReplicatedKv::recover`]. Prime persists no execution position, so the restarted server
//!   learns the executed slots again from its peers: slots it re-executes through catch-up are
//!   skipped up to the slot the records hold (answered with an empty result, which voting clients
//!   treat as "no vote"); a checkpoint JUMP replaces the whole state by the snapshot, persists
//!   every key, and the slots after the snapshot execute for real (paper 004, section 4.5:
//!   state transfer), so nothing is applied twice and nothing is skipped that the state lacks.

use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};
use stockade_core::wire::{put_bytes, Reader, Wire};
use stockade_core::{DecodeLimits, StoreOp, StoreRead};
use stockade_replication::app::{Application, ExecutedUpdate, RestoreError};

use crate::checkpoint::{CheckpointError, Digest};
use crate::command::Command;
use crate::large_reply::LargeReplies;
use crate::limits::Limits;
use crate::reply::Reply;
use crate::state::StateMachine;

/// Store key of the replica record: the last executed slot and the digest chain after it.
pub const STORE_REPLICA_KEY: &[u8] = b"kv/replica";
/// First bytes of a [`ReplicatedKv`] snapshot (format version 1).
pub const REPLICA_SNAPSHOT_MAGIC: &[u8; 4] = b"SKR1";

/// The reply to an update whose `op` does not decode as a command (a faulty client's bytes).
pub const MALFORMED_OP_ERROR: &str = "ERR malformed replicated command";

/// Persist batches produced by execution and not yet handed to the driver. The hosting protocol
/// drains it after every call into Prime, so it never holds more than one call's batches.
#[derive(Clone, Default, Debug)]
pub struct PersistOutbox(Arc<Mutex<Vec<Vec<StoreOp>>>>);

impl PersistOutbox {
    fn push(&self, ops: Vec<StoreOp>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ops);
    }

    /// Every batch queued so far, oldest first.
    pub fn drain(&self) -> Vec<Vec<StoreOp>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The key-value state machine replicated by Prime. See the module documentation.
#[derive(Debug)]
pub struct ReplicatedKv {
    state: StateMachine,
    /// The last slot whose effects the state holds.
    executed_slot: u64,
    /// Slots up to this one were recovered from the store, not executed here since the start.
    recovered_slot: u64,
    chain: Digest,
    outbox: Option<PersistOutbox>,
    /// Updates skipped because the recovered state already held their slot.
    skipped_updates: u64,
    /// Replies too large for a Prime reply, kept for fetching (not part of the state).
    large_replies: LargeReplies,
}

impl ReplicatedKv {
    /// An empty state that persists nothing (tests, simulations).
    pub fn new(limits: Limits) -> ReplicatedKv {
        ReplicatedKv {
            state: StateMachine::new(limits).without_change_tracking(),
            executed_slot: 0,
            recovered_slot: 0,
            chain: [0; 32],
            outbox: None,
            skipped_updates: 0,
            large_replies: LargeReplies::default(),
        }
    }

    /// An empty state whose changes go to `outbox` after every batch.
    pub fn persistent(limits: Limits, outbox: PersistOutbox) -> ReplicatedKv {
        ReplicatedKv {
            state: StateMachine::new(limits),
            outbox: Some(outbox),
            ..ReplicatedKv::new(limits)
        }
    }

    /// The state a crashed replica persisted (empty if nothing was), persisting on into `outbox`.
    pub fn recover(
        store: &dyn StoreRead,
        limits: Limits,
        outbox: PersistOutbox,
    ) -> Result<ReplicatedKv, CheckpointError> {
        let state = StateMachine::recover(store, limits)?;
        let (executed_slot, chain) = match store.get(STORE_REPLICA_KEY) {
            None => (0, [0; 32]),
            Some(bytes) => <(u64, Digest)>::from_bytes(&bytes, DecodeLimits::MESSAGE)?,
        };
        Ok(ReplicatedKv {
            state,
            executed_slot,
            recovered_slot: executed_slot,
            chain,
            outbox: Some(outbox),
            skipped_updates: 0,
            large_replies: LargeReplies::default(),
        })
    }

    /// The last executed slot recorded in `store` (0 when it holds none).
    pub fn recorded_slot(store: &dyn StoreRead) -> Result<u64, CheckpointError> {
        match store.get(STORE_REPLICA_KEY) {
            None => Ok(0),
            Some(bytes) => Ok(<(u64, Digest)>::from_bytes(&bytes, DecodeLimits::MESSAGE)?.0),
        }
    }

    /// The key-value state.
    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    /// The last slot whose effects the state holds.
    pub fn executed_slot(&self) -> u64 {
        self.executed_slot
    }

    /// The large replies this replica computed, shared with its RESP front end.
    pub fn large_replies(&self) -> LargeReplies {
        self.large_replies.clone()
    }

    /// Updates skipped because the recovered state already held their slot.
    pub fn skipped_updates(&self) -> u64 {
        self.skipped_updates
    }

    fn run_one(&mut self, op: &[u8], now_ms: u64) -> Reply {
        let limits = *self.state.limits();
        let command = Reader::new(op, DecodeLimits::MESSAGE).and_then(|mut r| {
            let command = Command::decode_within(&mut r, &limits)?;
            r.finish()?;
            Ok(command)
        });
        match command {
            Ok(command) => self.state.exec(now_ms, &command),
            Err(_) => Reply::Error(MALFORMED_OP_ERROR.into()),
        }
    }

    fn extend_chain(&mut self, slot: u64, op: &[u8], result: &[u8]) {
        let mut h = Sha256::new();
        h.update(b"stockade-kv/chain");
        h.update(self.chain);
        h.update(slot.to_le_bytes());
        let mut framed = Vec::with_capacity(op.len() + result.len() + 8);
        put_bytes(&mut framed, op);
        put_bytes(&mut framed, result);
        h.update(&framed);
        self.chain = h.finalize().into();
    }

    fn persist_batch(&mut self) {
        if let Some(outbox) = &self.outbox {
            let mut ops = self.state.take_persist_ops();
            ops.push(StoreOp::Put {
                key: STORE_REPLICA_KEY.to_vec(),
                value: (self.executed_slot, self.chain).to_bytes(),
            });
            outbox.push(ops);
        }
    }
}

impl Application for ReplicatedKv {
    fn execute(&mut self, updates: &[ExecutedUpdate<'_>], timestamp_ms: u64) -> Vec<Vec<u8>> {
        let mut results = Vec::with_capacity(updates.len());
        let mut changed = false;
        for executed in updates {
            if executed.global_seq <= self.recovered_slot {
                // Re-execution after a restart: the recovered state already holds this slot.
                self.skipped_updates += 1;
                results.push(Vec::new());
                continue;
            }
            let reply = self.run_one(&executed.update.op, timestamp_ms);
            // Larger than a Prime reply carries: the replicas vote on its digest instead.
            let result = self.large_replies.result_for(reply.to_bytes());
            self.extend_chain(executed.global_seq, &executed.update.op, &result);
            self.executed_slot = executed.global_seq;
            changed = true;
            results.push(result);
        }
        if changed {
            self.persist_batch();
        }
        results
    }

    fn checkpoint(&self) -> Vec<u8> {
        let mut out = REPLICA_SNAPSHOT_MAGIC.to_vec();
        self.executed_slot.encode(&mut out);
        self.chain.encode(&mut out);
        out.extend_from_slice(&self.state.checkpoint());
        out
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let header_len = REPLICA_SNAPSHOT_MAGIC.len() + 8 + 32;
        if snapshot.len() < header_len || &snapshot[..4] != REPLICA_SNAPSHOT_MAGIC {
            return Err(RestoreError("not a stockade-kv replica snapshot".into()));
        }
        let (slot, chain) =
            <(u64, Digest)>::from_bytes(&snapshot[4..header_len], DecodeLimits::MESSAGE)
                .map_err(|e| RestoreError(e.to_string()))?;
        let limits = *self.state.limits();
        let mut state = StateMachine::restore(&snapshot[header_len..], limits)
            .map_err(|e| RestoreError(e.to_string()))?;
        if let Some(outbox) = &self.outbox {
            let mut ops = state.persist_all_ops();
            ops.push(StoreOp::Put {
                key: STORE_REPLICA_KEY.to_vec(),
                value: (slot, chain).to_bytes(),
            });
            outbox.push(ops);
        } else {
            state = state.without_change_tracking();
        }
        self.state = state;
        self.executed_slot = slot;
        // The state is now exactly the snapshot's: every later slot must execute, even one the
        // records held before (they described a state this snapshot replaced).
        self.recovered_slot = slot;
        self.chain = chain;
        Ok(())
    }

    fn digest(&self) -> Digest {
        self.chain
    }
}

#[cfg(test)]
mod tests;
