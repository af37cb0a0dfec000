//! Bracha-style signed reliable broadcast among `n = 3f + 1` nodes: stockade's conformance
//! protocol, small enough to read in one sitting, run by both drivers (simulator and runtime).
//!
//! Start at [`BrachaBroadcast`] (module `node`), which states the four rules and the guarantees.
//! Messages are in [`message`], signatures in [`signing`], retransmission over lossy links in
//! `retransmit`, and the bounded memory of delivered broadcasts in `delivered`.

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
