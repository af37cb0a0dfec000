//! The cryptography every stockade protocol uses (DESIGN.md sections 1 and 5).
//!
//! - [`hash`]: SHA-256 digests and domain-separated hashing.
//! - [`ed25519`]: per-node signatures with one verification rule (single and batch always agree).
//! - [`bls`]: BLS multi-signatures with proof of possession (LA-groups' membership transcripts).
//! - [`threshold`]: (f+1)-of-(3f+1) BLS threshold signatures with verifiable partials (paper 004).
//! - [`merkle`]: one signature over a batch of messages through a Merkle root (paper 004, section 5).
//! - [`mac`]: HMAC-SHA256 and pairwise key derivation.
//! - [`erasure`]: Reed-Solomon coding for the erasure-coded logical link (paper 004, section 4.1).
//! - [`scheme`]: one signing API over real crypto or the simulation's fast stand-in ([`CryptoMode`]).
//! - [`calibrate`]: measure every `CostKind` on this machine for the simulator's virtual CPU.
//!
//! Nothing here reads a clock or OS randomness except [`calibrate`] (which times operations) and
//! key generation functions that take a caller's RNG. The crate does not depend on the simulator:
//! operations document (or, in [`scheme`], report) the `stockade_core::CpuWork` to charge.

pub mod bls;
pub mod calibrate;
pub mod ed25519;
pub mod erasure;
pub mod hash;
pub mod mac;
pub mod merkle;
pub mod scheme;
pub mod threshold;

pub use hash::{hash_parts, Digest};
pub use scheme::CryptoMode;
