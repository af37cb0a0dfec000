//! The replicated application as Prime sees it: a deterministic state machine that executes
//! totally ordered batches of updates, and can checkpoint and restore its state.
//!
//! PRIME.md step 11: a global slot executes its eligible PO-REQUESTs' updates in order; catch-up
//! ("JUMP ... state transfer from a checkpoint") needs checkpoints of the application.

use thiserror::Error;

use crate::auth::Digest;
use crate::messages::Update;

/// One update of an ordered batch, with where it came from.
#[derive(Clone, Copy, Debug)]
pub struct ExecutedUpdate<'a> {
    /// The update.
    pub update: &'a Update,
    /// The global slot executing it.
    pub global_seq: u64,
}

/// Why a snapshot could not be restored.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("cannot restore the application from a snapshot: {0}")]
pub struct RestoreError(pub String);

/// A deterministic state machine replicated by Prime.
///
/// Every correct server calls `execute` with the same batches in the same order and the same
/// timestamps, so `execute` must depend on nothing else (no clock, no randomness, no I/O).
pub trait Application {
    /// Execute `updates` in order, at the agreed `timestamp_ms` (non-decreasing across calls), and
    /// return one result per update, in the same order.
    fn execute(&mut self, updates: &[ExecutedUpdate<'_>], timestamp_ms: u64) -> Vec<Vec<u8>>;
    /// A snapshot of the whole state.
    fn checkpoint(&self) -> Vec<u8>;
    /// Replace the state by a snapshot taken by `checkpoint` on a correct server.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;
    /// A digest of the state: equal on every correct server after the same slot.
    fn digest(&self) -> Digest;
}
