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
//! - [`mod@calibrate`]: measure every `CostKind` on this machine for the simulator's virtual CPU.
//!
//! Nothing here reads a clock or OS randomness except [`mod@calibrate`] (which times operations) and
//! key generation functions that take a caller's RNG. The crate does not depend on the simulator:
//! operations document (or, in [`scheme`], report) the `stockade_core::CpuWork` to charge.

/// `Wire` for a newtype over `[u8; N]` (field 0): the bytes as they are, decoded without checks.
macro_rules! fixed_bytes_wire {
    ($type:ident, $len:expr) => {
        impl stockade_core::Wire for $type {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            fn decode(
                r: &mut stockade_core::Reader<'_>,
            ) -> Result<Self, stockade_core::DecodeError> {
                Ok($type(r.array()?))
            }
            fn wire_len(&self) -> usize {
                $len
            }
        }
    };
}

/// `Debug` as a prefix and the first four bytes in hex (enough to tell values apart in logs).
macro_rules! short_hex_debug {
    ($type:ident, $prefix:literal) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, ":{}"), hex::encode(&self.0[..4]))
            }
        }
    };
}

pub mod bls;
pub mod calibrate;
pub mod ed25519;
pub mod erasure;
pub mod hash;
pub mod key_text;
pub mod mac;
pub mod merkle;
pub mod scheme;
pub mod threshold;

pub use calibrate::{bench_report, calibrate, BenchLine};
pub use hash::{hash_parts, Digest};
pub use key_text::KeyParseError;
pub use scheme::CryptoMode;

#[cfg(test)]
mod wire_fuzz_tests {
    //! Every wire type of the crate decodes arbitrary bytes without panicking (DESIGN.md section 8).

    use proptest::prelude::*;
    use stockade_core::{DecodeLimits, Wire};

    fn decode_all(bytes: &[u8]) {
        let limits = DecodeLimits::MESSAGE;
        let _ = crate::Digest::from_bytes(bytes, limits);
        let _ = <crate::ed25519::VerifyingKey as Wire>::from_bytes(bytes, limits);
        let _ = crate::ed25519::Signature::from_bytes(bytes, limits);
        let _ = <crate::bls::BlsPublicKey as Wire>::from_bytes(bytes, limits);
        let _ = crate::bls::ProofOfPossession::from_bytes(bytes, limits);
        let _ = crate::bls::MultiSignature::from_bytes(bytes, limits);
        let _ = crate::threshold::PartialSignature::from_bytes(bytes, limits);
        let _ = crate::threshold::PublicKeySet::from_bytes(bytes, limits);
        let _ = crate::threshold::SecretKeyShare::from_bytes(bytes, limits);
        let _ = crate::merkle::BatchProof::<crate::ed25519::Signature>::from_bytes(bytes, limits);
        let _ = crate::mac::MacTag::from_bytes(bytes, limits);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            decode_all(&bytes);
        }

        #[test]
        fn decoders_never_panic_on_mutated_valid_input(flip in 0usize..1000, value in any::<u8>()) {
            let keys = crate::scheme::SimulationKeys::new(crate::CryptoMode::Real, 1);
            let proofs = keys.signer(0).sign_batch(&[b"a", b"b", b"c"], &mut |_| {}).unwrap_or_default();
            let mut bytes = proofs[2].to_bytes();
            let at = flip % bytes.len();
            bytes[at] = value;
            decode_all(&bytes);
        }
    }
}
