//! Bracha-style signed reliable broadcast among `n = 3f + 1` nodes: stockade's conformance
//! protocol, small enough to read in one sitting, run by both drivers (simulator and runtime).
//!
//! Where Bracha's rules live (G. Bracha, "Asynchronous Byzantine agreement protocols", 1987; the
//! primitive PRIME.md's view change uses, "init, echo, ready"):
//!
//! | rule | code |
//! |---|---|
//! | 1. origin sends `(initial, v)` | `node::BrachaBroadcast::start_queued` |
//! | 2. first `(initial, v)` from the origin: send `(echo, v)` | `node::BrachaBroadcast::progress` |
//! | 3. `2f+1` echoes or `f+1` readies: send `(ready, v)` once | `node::BrachaBroadcast::progress` |
//! | 4. `2f+1` readies: deliver `v` | `node::BrachaBroadcast::progress`, `deliver` |
//! | one vote per signer and phase | `instance` |
//! | every message signed by its sender | [`signing`] |
//! | reliable links (Bracha assumes them; datagrams are lossy) | `retransmit`, `delivered` |
//!
//! Bounds: `window_per_origin` undelivered broadcasts per origin, `request_queue_len_max` local
//! requests waiting, `delivered_cache_len_max` delivered broadcasts remembered,
//! `retransmit_messages_per_round_max` messages per retransmission round, payloads of at most
//! [`PAYLOAD_BYTES_MAX`]. Start at [`BrachaBroadcast`].

pub mod config;
mod delivered;
mod instance;
mod invariants;
pub mod message;
mod node;
mod retransmit;
pub mod signing;
pub mod stats;
#[cfg(test)]
mod tests;

pub use config::{BroadcastConfig, ConfigError};
pub use message::{BroadcastMessage, InstanceId, Phase, PAYLOAD_BYTES_MAX};
pub use node::{BrachaBroadcast, BroadcastOutput, BroadcastRequest, BroadcastTimer, RefusedReason};
pub use signing::{KeyRing, KeyRingError};
pub use stats::BroadcastStats;
