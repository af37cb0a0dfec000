//! Ed25519 signatures with one verification rule on every node.
//!
//! # Why ed25519-consensus
//!
//! Ed25519 implementations disagree on edge cases (non-canonical points, small-order components,
//! cofactored versus cofactorless equations), and in most of them a batch check can accept a
//! signature that the single check rejects or the other way round. In a replicated protocol that
//! is a safety bug: one correct replica accepts a message another rejects, and a Byzantine signer
//! can split them on purpose. `ed25519-consensus` implements the ZIP-215 rules: the cofactored
//! equation, any encoding of a point accepted as long as it decodes, and a batch verification that
//! accepts exactly the batches whose every item the single check accepts. Every stockade node uses
//! this crate for both checks, so the answer never depends on which check ran (DESIGN.md section 5).
//! ed25519-dalek stays in the workspace for its own users, never for protocol verification.
//!
//! Costs to charge (`stockade_core::CostKind`): `Ed25519Sign` per [`SigningKey::sign`],
//! `Ed25519Verify` per [`VerifyingKey::verify`], `Ed25519BatchVerifyItem` per item of
//! [`verify_batch`]. The [`crate::scheme`] wrappers charge them for you.

use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use stockade_core::wire::{DecodeError, Reader, Wire};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::hash::hash_parts;
use crate::key_text::fixed_from_hex;
pub use crate::key_text::KeyParseError;

/// Bytes in a secret signing key (the RFC 8032 seed).
pub const SIGNING_KEY_BYTES: usize = 32;
/// Bytes in a public verifying key.
pub const VERIFYING_KEY_BYTES: usize = 32;
/// Bytes in a signature.
pub const SIGNATURE_BYTES: usize = 64;
/// The most signatures one [`verify_batch`] call accepts; callers split larger sets.
pub const BATCH_ITEMS_MAX: usize = 4096;

/// A signature did not verify: wrong key, wrong message, or a tampered signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[error("signature does not verify (wrong key, wrong message, or tampered signature)")]
pub struct InvalidSignature;

/// A secret Ed25519 key. `Debug` never prints the secret.
#[derive(Clone)]
pub struct SigningKey(ed25519_consensus::SigningKey);

impl SigningKey {
    /// The key whose RFC 8032 seed is `seed` (deterministic: simulations and tests).
    pub fn from_bytes(seed: [u8; SIGNING_KEY_BYTES]) -> SigningKey {
        SigningKey(ed25519_consensus::SigningKey::from(seed))
    }

    /// A fresh key from a cryptographically secure RNG (`stockade keygen` passes `OsRng`).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> SigningKey {
        SigningKey(ed25519_consensus::SigningKey::new(rng))
    }

    /// The key of `node` in the simulation run seeded by `run_seed`: distinct per node and per run,
    /// identical every time the same run is replayed.
    pub fn for_simulation(run_seed: u64, node: u32) -> SigningKey {
        let seed = hash_parts(
            b"stockade/ed25519/simulation-key",
            &[&run_seed.to_le_bytes(), &node.to_le_bytes()],
        );
        SigningKey::from_bytes(seed.0)
    }

    /// The secret seed, for writing a key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SIGNING_KEY_BYTES]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The secret seed as hex, for writing a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.to_bytes()))
    }

    /// Read a key written by [`SigningKey::to_hex`] (surrounding whitespace is ignored).
    pub fn from_hex(text: &str) -> Result<SigningKey, KeyParseError> {
        Ok(SigningKey::from_bytes(
            *fixed_from_hex::<SIGNING_KEY_BYTES>(text)?,
        ))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verification_key())
    }

    /// Sign `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {:?})", self.verifying_key())
    }
}

/// A public Ed25519 key. Decoding checks that the bytes are a curve point, so a held
/// `VerifyingKey` is always usable.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(ed25519_consensus::VerificationKey);

impl VerifyingKey {
    /// Read a public key; fails if the bytes are not a valid point encoding.
    pub fn from_bytes(bytes: [u8; VERIFYING_KEY_BYTES]) -> Result<VerifyingKey, KeyParseError> {
        ed25519_consensus::VerificationKey::try_from(bytes)
            .map(VerifyingKey)
            .map_err(|_| KeyParseError::NotAPublicKey("ed25519"))
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; VERIFYING_KEY_BYTES] {
        self.0.to_bytes()
    }

    /// The key as 64 hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Read a key written by [`VerifyingKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<VerifyingKey, KeyParseError> {
        VerifyingKey::from_bytes(*fixed_from_hex::<VERIFYING_KEY_BYTES>(text)?)
    }

    /// Check `signature` on `message` (ZIP-215 rules; agrees with [`verify_batch`]).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), InvalidSignature> {
        self.0
            .verify(&ed25519_consensus::Signature::from(signature.0), message)
            .map_err(|_| InvalidSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(&self.to_bytes()[..4]))
    }
}

impl Wire for VerifyingKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        VerifyingKey::from_bytes(r.array()?).map_err(|_| DecodeError::Invalid("ed25519 public key"))
    }
    fn wire_len(&self) -> usize {
        VERIFYING_KEY_BYTES
    }
}

/// An Ed25519 signature: 64 bytes, checked only when verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_BYTES]);

short_hex_debug!(Signature, "sig");

fixed_bytes_wire!(Signature, SIGNATURE_BYTES);

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// Who claims to have signed.
    pub key: &'a VerifyingKey,
    /// What was signed.
    pub message: &'a [u8],
    /// The claimed signature.
    pub signature: &'a Signature,
}

/// Why a batch did not verify.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum BatchVerifyError {
    /// The batch is larger than [`BATCH_ITEMS_MAX`]; split it.
    #[error("batch of {len} signatures exceeds the limit of {max}; split it")]
    TooMany {
        /// Items given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// These items (indices into the batch) do not verify; every other item does.
    #[error("signatures at batch positions {invalid:?} do not verify")]
    Invalid {
        /// Positions of the bad items, ascending.
        invalid: Vec<usize>,
    },
}

/// Check many signatures at once (about half the cost of checking them one by one).
///
/// `rng` supplies the random coefficients that make batch verification sound; it may be the
/// protocol's seeded `Context::rng`: 32 bytes drawn from it are hashed with the batch's signatures
/// to seed a ChaCha20 stream, so a signer who cannot predict this node's RNG cannot aim a forgery at
/// the coefficients. On failure every item is checked singly (same rule, so the same answer) and
/// the bad positions are reported, so the caller can keep the good ones and blame the bad senders.
pub fn verify_batch(
    items: &[BatchItem<'_>],
    rng: &mut dyn RngCore,
) -> Result<(), BatchVerifyError> {
    if items.len() > BATCH_ITEMS_MAX {
        return Err(BatchVerifyError::TooMany {
            len: items.len(),
            max: BATCH_ITEMS_MAX,
        });
    }
    let mut entropy = [0u8; 32];
    rng.fill_bytes(&mut entropy);
    let signatures: Vec<&[u8]> = items.iter().map(|i| &i.signature.0[..]).collect();
    let seed = hash_parts(
        b"stockade/ed25519/batch-coefficients",
        &[&entropy, &signatures.concat()],
    );
    let mut verifier = ed25519_consensus::batch::Verifier::new();
    for item in items {
        verifier.queue((
            ed25519_consensus::VerificationKeyBytes::from(item.key.to_bytes()),
            ed25519_consensus::Signature::from(item.signature.0),
            item.message,
        ));
    }
    if verifier.verify(ChaCha20Rng::from_seed(seed.0)).is_ok() {
        return Ok(());
    }
    let invalid: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.key.verify(item.message, item.signature).is_err())
        .map(|(i, _)| i)
        .collect();
    Err(BatchVerifyError::Invalid { invalid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use stockade_core::DecodeLimits;

    fn key(n: u32) -> SigningKey {
        SigningKey::for_simulation(7, n)
    }

    #[test]
    fn sign_verify_and_the_three_ways_to_fail() {
        let (k, other) = (key(1), key(2));
        let sig = k.sign(b"hello");
        assert_eq!(k.verifying_key().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            other.verifying_key().verify(b"hello", &sig),
            Err(InvalidSignature)
        );
        assert_eq!(
            k.verifying_key().verify(b"hellO", &sig),
            Err(InvalidSignature)
        );
        let mut tampered = sig;
        tampered.0[10] ^= 1;
        assert_eq!(
            k.verifying_key().verify(b"hello", &tampered),
            Err(InvalidSignature)
        );
    }

    #[test]
    fn simulation_keys_are_deterministic_and_distinct() {
        assert_eq!(key(1).verifying_key(), key(1).verifying_key());
        assert_ne!(key(1).verifying_key(), key(2).verifying_key());
        assert_ne!(
            SigningKey::for_simulation(8, 1).verifying_key(),
            key(1).verifying_key()
        );
    }

    #[test]
    fn generated_keys_differ() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = SigningKey::generate(&mut rng);
        let b = SigningKey::generate(&mut rng);
        assert_ne!(a.verifying_key(), b.verifying_key());
    }

    #[test]
    fn keys_roundtrip_through_bytes_and_hex() {
        let k = key(3);
        let back = SigningKey::from_hex(&format!("  {}\n", k.to_hex().as_str())).expect("hex key");
        assert_eq!(back.verifying_key(), k.verifying_key());
        assert_eq!(
            SigningKey::from_bytes(*k.to_bytes()).verifying_key(),
            k.verifying_key()
        );
        let pk = k.verifying_key();
        assert_eq!(VerifyingKey::from_hex(&pk.to_hex()), Ok(pk));
        assert_eq!(VerifyingKey::from_bytes(pk.to_bytes()), Ok(pk));
        assert!(
            !format!("{k:?}").contains(k.to_hex().as_str()),
            "Debug must not leak the secret"
        );
    }

    #[test]
    fn bad_key_text_is_rejected_with_a_reason() {
        assert!(matches!(
            SigningKey::from_hex("zz"),
            Err(KeyParseError::BadHex(_))
        ));
        assert_eq!(
            VerifyingKey::from_hex("abcd").map(|_| ()),
            Err(KeyParseError::WrongLength {
                expected: 32,
                found: 2
            })
        );
    }

    #[test]
    fn wire_roundtrip_and_invalid_point_rejected() {
        let pk = key(4).verifying_key();
        assert_eq!(VerifyingKey::from_bytes_wire(&pk.to_bytes()), Ok(pk));
        // y = 2 is not the y-coordinate of any curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            VerifyingKey::from_bytes_wire(&not_a_point),
            Err(DecodeError::Invalid("ed25519 public key"))
        );
        let sig = key(4).sign(b"m");
        assert_eq!(
            Signature::from_bytes(&sig.to_bytes(), DecodeLimits::MESSAGE),
            Ok(sig)
        );
        assert_eq!(sig.wire_len(), 64);
    }

    impl VerifyingKey {
        fn from_bytes_wire(bytes: &[u8]) -> Result<VerifyingKey, DecodeError> {
            <VerifyingKey as Wire>::from_bytes(bytes, DecodeLimits::MESSAGE)
        }
    }

    fn signed(n: usize) -> (Vec<VerifyingKey>, Vec<Vec<u8>>, Vec<Signature>) {
        let keys: Vec<SigningKey> = (0..n as u32).map(key).collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let sigs = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        (
            keys.iter().map(SigningKey::verifying_key).collect(),
            messages,
            sigs,
        )
    }

    fn items<'a>(
        pks: &'a [VerifyingKey],
        msgs: &'a [Vec<u8>],
        sigs: &'a [Signature],
    ) -> Vec<BatchItem<'a>> {
        (0..pks.len())
            .map(|i| BatchItem {
                key: &pks[i],
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect()
    }

    #[test]
    fn batch_accepts_good_and_names_the_bad() {
        let (pks, msgs, mut sigs) = signed(16);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(verify_batch(&items(&pks, &msgs, &sigs), &mut rng), Ok(()));
        assert_eq!(verify_batch(&[], &mut rng), Ok(()));
        sigs[3].0[0] ^= 1;
        sigs[11] = sigs[12];
        assert_eq!(
            verify_batch(&items(&pks, &msgs, &sigs), &mut rng),
            Err(BatchVerifyError::Invalid {
                invalid: vec![3, 11]
            })
        );
    }

    #[test]
    fn oversized_batch_is_refused() {
        let (pks, msgs, sigs) = signed(1);
        let one = items(&pks, &msgs, &sigs)[0];
        let too_many = vec![one; BATCH_ITEMS_MAX + 1];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(
            verify_batch(&too_many, &mut rng),
            Err(BatchVerifyError::TooMany {
                len: BATCH_ITEMS_MAX + 1,
                max: BATCH_ITEMS_MAX
            })
        );
        assert_eq!(verify_batch(&too_many[..BATCH_ITEMS_MAX], &mut rng), Ok(()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn batch_and_single_checks_agree(flip in proptest::collection::vec(any::<bool>(), 6), byte in 0usize..64) {
            let (pks, msgs, mut sigs) = signed(6);
            for (i, f) in flip.iter().enumerate() {
                if *f { sigs[i].0[byte] ^= 0x40; }
            }
            let single: Vec<usize> = (0..6).filter(|&i| pks[i].verify(&msgs[i], &sigs[i]).is_err()).collect();
            let batch = verify_batch(&items(&pks, &msgs, &sigs), &mut ChaCha8Rng::seed_from_u64(9));
            if single.is_empty() {
                prop_assert_eq!(batch, Ok(()));
            } else {
                prop_assert_eq!(batch, Err(BatchVerifyError::Invalid { invalid: single }));
            }
        }
    }
}
