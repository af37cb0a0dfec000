//! The tokio runtime that runs any [`stockade_core::Protocol`] for real: authenticated encrypted
//! datagram links (Noise IK over UDP), named timers, durable storage in redb, Prometheus metrics.
//!
//! # Driving model
//! A node is one tokio task ([`driver::spawn_node`]) that owns its protocol. The protocol is
//! called one input at a time, never re-entrantly, and each call's effects are carried out in
//! the order emitted before the next input is taken:
//!
//! ```text
//!  application ──requests (bounded)──▶ ┌──────── node task ────────┐ ──outputs (bounded)──▶ application
//!                                      │ protocol: on_start,       │
//!  UDP socket ──datagrams──▶ Link ───▶ │ on_message, on_request,   │ ──Send──▶ Link ──▶ UDP socket
//!  (Noise IK, replay window,           │ on_timer, on_persisted    │ ──Persist──▶ storage thread (redb,
//!   cookies, reassembly)               └───────────────────────────┘      durable commit) ──▶ on_persisted
//! ```
//!
//! - Time given to the protocol is the monotonic time since the node started, as
//!   [`stockade_core::Time`]; it never goes backwards. Its RNG is a ChaCha20 generator seeded
//!   from the OS (or from [`driver::NodeSetup::rng_seed`]).
//! - A `Send` with `after: Some(token)` leaves only after batch `token` is durable; held sends are
//!   released before `on_persisted(token)` is called. `Charge` is ignored: the CPU is real.
//! - Messages are framed with [`stockade_core::wire::encode_frame`] and decoded with
//!   `decode_frame` under [`stockade_core::DecodeLimits::MESSAGE`]; anything malformed is dropped
//!   and counted, never trusted and never a panic. `from` is the peer whose Noise session
//!   authenticated the datagram.
//! - A node sending to itself receives the message locally, after the current call.
//!
//! The link layer ([`link::Link`]) is itself sans-IO: it takes datagrams and time and returns
//! datagrams and messages, so its security rules are tested datagram by datagram. Restarting a
//! node rebuilds its protocol from a [`storage::RedbStore`] holding exactly the batches that
//! became durable.
//!
//! Start with [`driver::spawn_node`] (with [`driver::NodeSetup::from_config`] for a TOML
//! [`config::NodeConfig`]), [`keys::StaticKeypair`] for key files, [`metrics_endpoint::serve_metrics`]
//! for Prometheus, [`local_cluster::write_local_cluster`] for a loopback cluster's keys and
//! configs, and [`mod@bench`] for the link benchmarks.

pub mod bench;
pub mod config;
pub mod driver;
pub mod keys;
pub mod link;
pub mod local_cluster;
pub mod metrics_endpoint;
pub mod noise;
pub mod packet;
pub mod records;
pub mod replay;
pub mod session;
pub mod stats;
pub mod storage;
pub mod timers;

pub use config::{LinkConfig, NodeConfig, Peer, PeerConfig};
pub use driver::{spawn_node, Listen, NodeError, NodeHandle, NodeSetup, NodeStats, QueueLimits};
pub use keys::{PublicKey, StaticKeypair};
pub use link::{Link, LinkIo};
pub use local_cluster::{write_local_cluster, LocalClusterPlan};
pub use metrics_endpoint::serve_metrics;
pub use storage::RedbStore;
