//! Prime, the attack-resilient Byzantine replication protocol of paper 004 (sections 3.2, 5),
//! written as a sans-IO [`stockade_core::Protocol`].
//!
//! The protocol is specified in `PRIME.md` (our summary of Amir, Coan, Kirsch, Lane, DSN 2008, and of
//! the authors' release). Map from the specification to modules:
//!
//! | PRIME.md section | module |
//! |---|---|
//! | participants and quorums | [`config`] |
//! | message signing (per-server signatures, Merkle batches; a site's threshold signature later) | [`auth`] |
//! | the participants' threshold key (VC-PROOF) | [`threshold_auth`] |
//! | every message and its bounded wire encoding | [`messages`] |
//! | pre-ordering, steps 1-7 | [`pre_order`] |
//! | global ordering, steps 8-10 | [`order`] |
//! | execution, step 11, and the application boundary | [`execute`], [`app`] |
//! | the last reply per client, re-sent to a client that re-submits | `reply_cache` |
//! | suspect-leader | [`suspect`] |
//! | reconciliation and catch-up | [`catchup`] |
//! | checkpoints and state transfer (JUMP) | [`checkpoint`], [`state_transfer`] (chunked) |
//! | view change, and its re-sending under loss | [`view_change`], [`view_change_resend`] |
//! | crash recovery (what is persisted) | [`persist`] |
//! | the server itself: state, timers, dispatch | [`replica`] |
//! | the release's attack switches (simulation only) | [`attack`] |
//!
//! The identity of a participant is an index ([`ParticipantId`]) mapped to transport addresses by a
//! [`Membership`] table, and authentication is behind [`MessageAuth`]: the wide-area hierarchy of
//! paper 004 section 3.1 runs this same code with sites as participants (a site's messages carried by
//! logical links and signed by the site's threshold key).

pub mod app;
pub mod attack;
pub mod auth;
pub mod catchup;
pub mod checkpoint;
pub mod config;
pub mod execute;
pub mod messages;
pub mod order;
pub mod persist;
pub mod pre_order;
pub mod replica;
mod reply_cache;
#[cfg(any(test, feature = "sim"))]
pub mod scenario_attacks;
#[cfg(any(test, feature = "sim"))]
pub mod scenario_harness;
#[cfg(any(test, feature = "sim"))]
pub mod scenarios;
pub mod state_transfer;
pub mod suspect;
pub mod threshold_auth;
pub mod view_change;
pub mod view_change_resend;

#[cfg(test)]
mod pump_tests;
#[cfg(test)]
mod suspect_load_tests;
#[cfg(test)]
mod test_support;

pub use app::{Application, ExecutedUpdate};
pub use attack::Attack;
pub use auth::{AuthTag, Ed25519MerkleAuth, MessageAuth};
pub use config::{ConfigError, Membership, ParticipantId, PrimeConfig, Quorums};
pub use messages::{ClientId, Digest, PrimeMessage, Update};
pub use persist::RecoverError;
pub use replica::{ActivityCounters, Prime, PrimeOutput, PrimeTimer};
#[cfg(any(test, feature = "sim"))]
pub use scenario_attacks::register;
pub use threshold_auth::{CombinedShares, ShareCombineError, SimulationAuths, ThresholdKeys};
