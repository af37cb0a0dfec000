//! One API for the signature schemes protocols use, over real cryptography or the simulation's
//! fast stand-in (DESIGN.md section 3: "Large runs may use a fast stand-in crypto that is still
//! unforgeable inside the simulation (a forged tag is rejected) and charges the real cost; every
//! report says which mode ran").
//!
//! Protocol code holds a [`Signer`] / [`Verifier`] (Ed25519 and Merkle batches), a [`MultiSigner`] /
//! [`Membership`] (BLS multi-signatures) and a [`ThresholdSigner`] / [`ThresholdVerifier`] (BLS
//! threshold), and never asks which [`CryptoMode`] it runs in. Every operation takes
//! `charge: &mut impl FnMut(CpuWork)` and reports the work of the REAL operation (the same in both
//! modes), so a protocol passes `&mut |w| cx.charge(w)` and the simulator's virtual CPU sees real
//! costs while the host does almost nothing.
//!
//! # The stand-in (`SimFast`)
//!
//! Tags are HMAC-SHA256 under per-signer keys that a [`SimFastKeyRegistry`] derives from a secret
//! drawn from the run seed, padded with a fixed marker to the real wire size (64 bytes for Ed25519,
//! 96 for BLS), so messages are byte-for-byte as large as in a real run. The registry's secret and
//! the derived keys live in private fields with no accessor: code inside the simulation (a
//! Byzantine node included) can make a tag only through a signer object it was handed, so it
//! cannot forge another node's tag, and a forged or altered tag is rejected. BLS multi-signature
//! tags aggregate by XOR (like BLS, an aggregate reveals nothing beyond its parts); threshold
//! partials are per-share tags and the group tag is released only by combining `threshold` valid
//! partials. This is unforgeable only against code that respects Rust's privacy, which is exactly
//! the simulation's adversary; it is no cryptography, and [`CryptoMode::SimFast`] must never
//! protect real traffic.

mod multisig;
mod registry;
mod signature;
mod threshold;

pub use multisig::{Membership, MultiSigner, SimFastMembership, SimFastMultiSigner};
pub use registry::{SimFastKeyRegistry, SimulationKeys};
pub use signature::{SchemeBatchItem, Signer, SimFastSigner, SimFastVerifier, Verifier};
pub use threshold::{
    SimFastShareSigner, SimFastThresholdGroup, ThresholdSigner, ThresholdVerifier,
};

use std::fmt;

/// Which cryptography a run uses. Every simulation report prints [`CryptoMode::describe`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CryptoMode {
    /// Real Ed25519, BLS and threshold BLS.
    Real,
    /// The simulation's keyed-hash stand-in: unforgeable inside the simulation, real costs charged.
    SimFast,
}

impl CryptoMode {
    /// A one-line description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            CryptoMode::Real => "real crypto (Ed25519, BLS, threshold BLS)",
            CryptoMode::SimFast => {
                "sim-fast stand-in crypto (keyed-hash tags of real size, real costs charged)"
            }
        }
    }
}

impl fmt::Display for CryptoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoMode::Real => "real",
            CryptoMode::SimFast => "sim-fast",
        })
    }
}
