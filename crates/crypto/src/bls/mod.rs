//! BLS signatures on BLS12-381 (blst, "min_pk": 48-byte public keys in G1, 96-byte signatures in
//! G2) with the proof-of-possession ciphersuite of the IETF BLS draft.
//!
//! Many signatures on ONE message aggregate into one signature checked against the sum of the
//! signers' keys ([`multisig`]); LA-groups use this for compact membership transcripts (paper 000,
//! "multisignatures ... aggregated multiplying signatures ... compact representation"). Summing
//! keys is only safe when no key was chosen as a function of the others (rogue-key attack), so
//! aggregate verification accepts only [`VerifiedPublicKey`]s, which exist only after
//! [`BlsPublicKey::verify_possession`] checked the owner's proof of possession.
//!
//! Costs to charge: `BlsSign` per sign or proof, `BlsVerify` per verification (single, aggregate
//! or proof), `BlsAggregateSignature` per signature summed, `BlsAggregatePublicKey` per key summed.

pub mod bitmap;
pub mod multisig;

use std::fmt;

use blst::min_pk;
use blst::BLST_ERROR;
use rand_core::{CryptoRng, RngCore};
use stockade_core::wire::{DecodeError, Reader, Wire};
use thiserror::Error;
use zeroize::Zeroizing;

pub use bitmap::{SignerBitmap, SIGNER_BITMAP_MEMBERS_MAX};
pub use multisig::{verify_multi, MultiSignature};

use crate::hash::hash_parts;
use crate::key_text::{fixed_from_hex, KeyParseError};

/// Bytes in a compressed public key (G1).
pub const BLS_PUBLIC_KEY_BYTES: usize = 48;
/// Bytes in a compressed signature (G2).
pub const BLS_SIGNATURE_BYTES: usize = 96;
/// Bytes in a secret key (a scalar, big-endian).
pub const BLS_SECRET_KEY_BYTES: usize = 32;

/// Domain separation tag for signatures: the IETF proof-of-possession ciphersuite, min_pk variant.
/// The threshold scheme uses the same tag, so a combined threshold signature is a standard
/// signature under the group key.
pub const SIGNATURE_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag for proofs of possession (distinct from signatures, per the draft).
pub const POSSESSION_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Why a BLS operation failed.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum BlsError {
    /// A signature (single, aggregate or partial) does not verify.
    #[error("BLS signature does not verify (wrong key set, wrong message, or tampered signature)")]
    InvalidSignature,
    /// A proof of possession does not verify: the key must not be aggregated.
    #[error("proof of possession does not verify: refuse this public key for aggregation")]
    InvalidPossessionProof,
    /// The bitmap covers a different number of members than the key list given.
    #[error("signer bitmap covers {bitmap_members} members but {keys} keys were given")]
    MembershipMismatch {
        /// Members in the bitmap.
        bitmap_members: usize,
        /// Keys given.
        keys: usize,
    },
    /// An aggregate must have at least one signer.
    #[error("an aggregate needs at least one signer")]
    NoSigners,
    /// A signer position is not in the membership.
    #[error("signer position {index} is outside the membership of {members}")]
    SignerOutOfRange {
        /// The position given.
        index: usize,
        /// Membership size.
        members: usize,
    },
    /// The same signer was given twice.
    #[error("signer position {index} was given twice")]
    DuplicateSigner {
        /// The repeated position.
        index: usize,
    },
    /// The membership is larger than a bitmap can carry.
    #[error("membership of {members} exceeds the limit of {max}")]
    TooManyMembers {
        /// Membership size.
        members: usize,
        /// The limit.
        max: usize,
    },
}

fn check(result: BLST_ERROR, error: BlsError) -> Result<(), BlsError> {
    match result {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        _ => Err(error),
    }
}

/// A secret BLS key. `Debug` never prints the secret; the key is zeroized when dropped.
#[derive(Clone)]
pub struct BlsSecretKey(min_pk::SecretKey);

impl BlsSecretKey {
    /// The key derived from 32 bytes of seed material (IETF KeyGen; deterministic).
    pub fn from_seed(seed: &[u8; 32]) -> BlsSecretKey {
        // key_gen fails only for input keying material shorter than 32 bytes.
        match min_pk::SecretKey::key_gen(seed, b"stockade/bls") {
            Ok(key) => BlsSecretKey(key),
            Err(e) => unreachable!("32-byte IKM is always accepted by blst key_gen: {e:?}"),
        }
    }

    /// The key of `node` in the simulation run seeded by `run_seed`.
    pub fn for_simulation(run_seed: u64, node: u32) -> BlsSecretKey {
        let seed = hash_parts(
            b"stockade/bls/simulation-key",
            &[&run_seed.to_le_bytes(), &node.to_le_bytes()],
        );
        BlsSecretKey::from_seed(&seed.0)
    }

    /// A fresh key from a cryptographically secure RNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> BlsSecretKey {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *seed);
        BlsSecretKey::from_seed(&seed)
    }

    /// The secret scalar (big-endian), for a key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; BLS_SECRET_KEY_BYTES]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Read a secret scalar written by [`BlsSecretKey::to_bytes`]; fails for zero or out of range.
    pub fn from_bytes(bytes: &[u8; BLS_SECRET_KEY_BYTES]) -> Result<BlsSecretKey, KeyParseError> {
        min_pk::SecretKey::from_bytes(bytes)
            .map(BlsSecretKey)
            .map_err(|_| KeyParseError::NotASecretKey("BLS"))
    }

    /// The secret as hex, for a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.to_bytes()))
    }

    /// Read a key written by [`BlsSecretKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<BlsSecretKey, KeyParseError> {
        BlsSecretKey::from_bytes(&*fixed_from_hex::<BLS_SECRET_KEY_BYTES>(text)?)
    }

    /// The public key.
    pub fn public_key(&self) -> BlsPublicKey {
        BlsPublicKey(self.0.sk_to_pk())
    }

    /// This key's own public key, marked verified: holding the secret is what a proof of
    /// possession proves, so the holder (a dealer, a simulation, the node itself) needs no proof.
    pub fn verified_public_key(&self) -> VerifiedPublicKey {
        VerifiedPublicKey(self.public_key())
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> BlsSignature {
        BlsSignature::from_raw(self.0.sign(message, SIGNATURE_DST, &[]))
    }

    /// Prove possession of this key: a signature on the public key under the PoP tag. Publish it
    /// with the public key; others call [`BlsPublicKey::verify_possession`] once.
    pub fn prove_possession(&self) -> ProofOfPossession {
        let key_bytes = self.public_key().to_bytes();
        ProofOfPossession(BlsSignature::from_raw(self.0.sign(
            &key_bytes,
            POSSESSION_DST,
            &[],
        )))
    }
}

impl fmt::Debug for BlsSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlsSecretKey(public {:?})", self.public_key())
    }
}

/// A BLS public key as received: a valid G1 point of the prime-order subgroup, not the identity
/// (checked on decode), but not yet proven possessed. Single signatures may be verified with it;
/// aggregation needs a [`VerifiedPublicKey`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlsPublicKey(min_pk::PublicKey);

impl BlsPublicKey {
    /// Read a compressed key, checking the point, its subgroup, and that it is not the identity.
    pub fn from_bytes(bytes: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Result<BlsPublicKey, KeyParseError> {
        min_pk::PublicKey::key_validate(bytes)
            .map(BlsPublicKey)
            .map_err(|_| KeyParseError::NotAPublicKey("BLS"))
    }

    /// The compressed key.
    pub fn to_bytes(&self) -> [u8; BLS_PUBLIC_KEY_BYTES] {
        self.0.compress()
    }

    /// The key as hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Read a key written by [`BlsPublicKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<BlsPublicKey, KeyParseError> {
        BlsPublicKey::from_bytes(&*fixed_from_hex::<BLS_PUBLIC_KEY_BYTES>(text)?)
    }

    /// Check a single signature on `message`.
    pub fn verify(&self, message: &[u8], signature: &BlsSignature) -> Result<(), BlsError> {
        let point = signature.point()?;
        let result = point.verify(true, message, SIGNATURE_DST, &[], &self.0, false);
        check(result, BlsError::InvalidSignature)
    }

    /// Check the owner's proof of possession; on success the key may be aggregated.
    pub fn verify_possession(
        &self,
        proof: &ProofOfPossession,
    ) -> Result<VerifiedPublicKey, BlsError> {
        let point = proof
            .0
            .point()
            .map_err(|_| BlsError::InvalidPossessionProof)?;
        let result = point.verify(true, &self.to_bytes(), POSSESSION_DST, &[], &self.0, false);
        check(result, BlsError::InvalidPossessionProof)?;
        Ok(VerifiedPublicKey(*self))
    }

    pub(crate) fn raw(&self) -> &min_pk::PublicKey {
        &self.0
    }

    pub(crate) fn from_raw(key: min_pk::PublicKey) -> BlsPublicKey {
        BlsPublicKey(key)
    }
}

impl fmt::Debug for BlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bls:{}", hex::encode(&self.to_bytes()[..4]))
    }
}

impl Wire for BlsPublicKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        BlsPublicKey::from_bytes(&r.array()?).map_err(|_| DecodeError::Invalid("BLS public key"))
    }
    fn wire_len(&self) -> usize {
        BLS_PUBLIC_KEY_BYTES
    }
}

/// A public key whose proof of possession verified (or taken from its own secret key with
/// [`BlsSecretKey::verified_public_key`]). There is deliberately no `Wire` decode: a key read from
/// the network must come with its proof.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedPublicKey(BlsPublicKey);

impl VerifiedPublicKey {
    /// The underlying public key.
    pub fn public_key(&self) -> &BlsPublicKey {
        &self.0
    }
}

/// A BLS signature (G2, compressed): 96 bytes as received. Whether they encode a point of the
/// right subgroup is checked when the signature is verified or aggregated, never on decode, so
/// decoding is cheap and the same type carries the simulation stand-in's tags ([`crate::scheme`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlsSignature(pub [u8; BLS_SIGNATURE_BYTES]);

impl BlsSignature {
    /// The compressed signature.
    pub fn to_bytes(&self) -> [u8; BLS_SIGNATURE_BYTES] {
        self.0
    }

    /// Decompress to a curve point (subgroup not yet checked).
    pub(crate) fn point(&self) -> Result<min_pk::Signature, BlsError> {
        min_pk::Signature::from_bytes(&self.0).map_err(|_| BlsError::InvalidSignature)
    }

    pub(crate) fn from_raw(signature: min_pk::Signature) -> BlsSignature {
        BlsSignature(signature.compress())
    }
}

short_hex_debug!(BlsSignature, "blssig");

fixed_bytes_wire!(BlsSignature, BLS_SIGNATURE_BYTES);

/// A proof that the holder of a public key knows its secret (a signature on the key under
/// [`POSSESSION_DST`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProofOfPossession(BlsSignature);

impl Wire for ProofOfPossession {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProofOfPossession(BlsSignature::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        BLS_SIGNATURE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use stockade_core::DecodeLimits;

    fn key(n: u32) -> BlsSecretKey {
        BlsSecretKey::for_simulation(1, n)
    }

    #[test]
    fn sign_verify_and_failures() {
        let (k, other) = (key(1), key(2));
        let sig = k.sign(b"m");
        assert_eq!(k.public_key().verify(b"m", &sig), Ok(()));
        assert_eq!(
            other.public_key().verify(b"m", &sig),
            Err(BlsError::InvalidSignature)
        );
        assert_eq!(
            k.public_key().verify(b"n", &sig),
            Err(BlsError::InvalidSignature)
        );
        assert_eq!(
            k.public_key().verify(b"m", &other.sign(b"m")),
            Err(BlsError::InvalidSignature)
        );
    }

    #[test]
    fn possession_proofs_bind_the_key() {
        let (k, other) = (key(1), key(2));
        let proof = k.prove_possession();
        let verified = k
            .public_key()
            .verify_possession(&proof)
            .expect("own proof verifies");
        assert_eq!(verified.public_key(), &k.public_key());
        assert_eq!(verified, k.verified_public_key());
        assert_eq!(
            other.public_key().verify_possession(&proof),
            Err(BlsError::InvalidPossessionProof)
        );
        // A signature on the key's bytes under the signature tag is not a proof (tags differ).
        let wrong_tag = ProofOfPossession(k.sign(&k.public_key().to_bytes()));
        assert_eq!(
            k.public_key().verify_possession(&wrong_tag),
            Err(BlsError::InvalidPossessionProof)
        );
    }

    #[test]
    fn keys_roundtrip_and_invalid_bytes_are_rejected() {
        let k = key(3);
        assert_eq!(
            BlsSecretKey::from_hex(&k.to_hex())
                .expect("hex")
                .public_key(),
            k.public_key()
        );
        let pk = k.public_key();
        assert_eq!(BlsPublicKey::from_hex(&pk.to_hex()), Ok(pk));
        assert_eq!(
            <BlsPublicKey as Wire>::from_bytes(&pk.to_bytes(), DecodeLimits::MESSAGE),
            Ok(pk)
        );
        assert!(
            BlsPublicKey::from_bytes(&[0u8; 48]).is_err(),
            "not a compressed point"
        );
        let mut identity = [0u8; 48];
        identity[0] = 0xc0; // compressed point at infinity
        assert!(
            BlsPublicKey::from_bytes(&identity).is_err(),
            "identity key is refused"
        );
        assert!(
            BlsSecretKey::from_bytes(&[0u8; 32]).is_err(),
            "zero secret is refused"
        );
        assert!(!format!("{k:?}").contains(k.to_hex().as_str()));
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        assert_ne!(
            BlsSecretKey::generate(&mut rng).public_key(),
            BlsSecretKey::generate(&mut rng).public_key()
        );
    }

    #[test]
    fn signature_wire_roundtrip_and_garbage() {
        let sig = key(4).sign(b"x");
        let bytes = sig.to_bytes();
        assert_eq!(
            <BlsSignature as Wire>::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Ok(sig)
        );
        // Garbage decodes (96 bytes are 96 bytes) but never verifies.
        let garbage = <BlsSignature as Wire>::from_bytes(&[0xffu8; 96], DecodeLimits::MESSAGE)
            .expect("96 bytes");
        assert_eq!(
            key(4).public_key().verify(b"x", &garbage),
            Err(BlsError::InvalidSignature)
        );
        let proof_garbage = ProofOfPossession(garbage);
        assert_eq!(
            key(4).public_key().verify_possession(&proof_garbage),
            Err(BlsError::InvalidPossessionProof)
        );
        let proof = key(4).prove_possession();
        assert_eq!(
            ProofOfPossession::from_bytes(&proof.to_bytes(), DecodeLimits::MESSAGE),
            Ok(proof)
        );
    }
}
