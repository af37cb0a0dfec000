//! BLS threshold signatures, (f+1)-of-(3f+1), with verifiable partial signatures.
//!
//! A site signs wide-area messages as one logical machine (paper 004, section 2: "an (f+1, 3f+1)
//! threshold digital signature scheme ... each server within a site is given a secret share that
//! can be used to generate partial signatures"). Section 3 asks for partials that are *verifiable*
//! so that a server submitting a bad one is detected and blacklisted: here a partial is a plain BLS
//! signature under the participant's public key share, so it is checked like any signature.
//!
//! The dealer picks a random polynomial of degree `threshold - 1` over the BLS12-381 scalar field
//! (blstrs scalars, Shamir); participant `i` (1-based) holds the polynomial at `i`, the group
//! secret is its value at 0. Combining multiplies each partial by its Lagrange coefficient at 0 and
//! sums them (blst multi-scalar multiplication). Partials and the combined signature use the same
//! hash-to-curve tag as [`crate::bls`] ([`crate::bls::SIGNATURE_DST`]), so the result is a standard
//! BLS signature under the group key, which any BLS verifier (blst, blstrs) accepts.
//!
//! Costs to charge: `ThresholdPartialSign` per partial made, `ThresholdPartialVerify` per partial
//! checked singly, `ThresholdCombineShare` per partial combined, `ThresholdVerify` per combined
//! signature checked ([`PublicKeySet::combine`] verifies once, and each partial singly only when
//! that fails; [`CombinedSignature::partials_verified`] says how many).

use std::fmt;

mod combine;
mod dealer;
mod text;

pub(crate) use combine::check_partial_set;
pub use combine::{CombinedSignature, PublicKeySet};
pub use dealer::{deal, DealtKeys};

use blst::min_pk;
use stockade_core::wire::{DecodeError, Reader, Wire};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::bls::{BlsError, BlsPublicKey, BlsSignature, SIGNATURE_DST};

/// The most participants a threshold key may have.
pub const THRESHOLD_PARTICIPANTS_MAX: usize = 256;

/// Why a threshold operation failed.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum ThresholdError {
    /// The parameters are not 1 <= threshold <= participants <= the maximum.
    #[error("threshold {threshold} of {participants} participants is invalid: need 1 <= threshold <= participants <= {max}", max = THRESHOLD_PARTICIPANTS_MAX)]
    BadParameters {
        /// Signatures needed.
        threshold: usize,
        /// Participants.
        participants: usize,
    },
    /// Fewer partials than the threshold were given.
    #[error("{have} partial signatures given, {needed} needed")]
    NotEnoughPartials {
        /// Partials given.
        have: usize,
        /// The threshold.
        needed: usize,
    },
    /// After discarding invalid partials, too few valid ones remain.
    #[error("only {valid} valid partial signatures, {needed} needed; invalid from participants {invalid:?}")]
    NotEnoughValidPartials {
        /// Valid partials found.
        valid: usize,
        /// The threshold.
        needed: usize,
        /// Participants whose partials were invalid (blame them).
        invalid: Vec<ShareIndex>,
    },
    /// A partial names a participant that does not exist.
    #[error("participant {index} does not exist (participants are 1..={participants})")]
    UnknownParticipant {
        /// The index given.
        index: ShareIndex,
        /// Participants.
        participants: usize,
    },
    /// Two partials from the same participant.
    #[error("two partial signatures from participant {0}")]
    DuplicateParticipant(ShareIndex),
    /// A partial signature does not verify under its participant's key share.
    #[error("partial signature of participant {0} does not verify")]
    InvalidPartial(ShareIndex),
    /// The combined signature does not verify under the group key.
    #[error("threshold signature does not verify under the group key")]
    InvalidSignature,
}

/// A participant's position, 1-based (the Shamir evaluation point).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareIndex(pub u16);

impl fmt::Debug for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Wire for ShareIndex {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let index = u16::decode(r)?;
        if index == 0 || index as usize > THRESHOLD_PARTICIPANTS_MAX {
            return Err(DecodeError::Invalid("threshold share index"));
        }
        Ok(ShareIndex(index))
    }
    fn wire_len(&self) -> usize {
        2
    }
}

/// How many partials make a signature, out of how many participants.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ThresholdParameters {
    threshold: u16,
    participants: u16,
}

impl ThresholdParameters {
    /// `threshold` of `participants`.
    pub fn new(
        threshold: usize,
        participants: usize,
    ) -> Result<ThresholdParameters, ThresholdError> {
        if threshold == 0 || threshold > participants || participants > THRESHOLD_PARTICIPANTS_MAX {
            return Err(ThresholdError::BadParameters {
                threshold,
                participants,
            });
        }
        Ok(ThresholdParameters {
            threshold: threshold as u16,
            participants: participants as u16,
        })
    }

    /// The (f+1)-of-(3f+1) parameters of a site tolerating `f` faults (paper 004, section 2).
    pub fn for_faults(f: usize) -> Result<ThresholdParameters, ThresholdError> {
        ThresholdParameters::new(f + 1, 3 * f + 1)
    }

    /// Partials needed.
    pub fn threshold(&self) -> usize {
        self.threshold as usize
    }

    /// Participants.
    pub fn participants(&self) -> usize {
        self.participants as usize
    }
}

impl Wire for ThresholdParameters {
    fn encode(&self, out: &mut Vec<u8>) {
        self.threshold.encode(out);
        self.participants.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (threshold, participants) = (u16::decode(r)?, u16::decode(r)?);
        ThresholdParameters::new(threshold as usize, participants as usize)
            .map_err(|_| DecodeError::Invalid("threshold parameters"))
    }
    fn wire_len(&self) -> usize {
        4
    }
}

/// One participant's secret share. `Debug` never prints the secret.
#[derive(Clone)]
pub struct SecretKeyShare {
    index: ShareIndex,
    key: min_pk::SecretKey,
}

impl SecretKeyShare {
    /// Whose share this is.
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The public key share others check this participant's partials with.
    pub fn public_share(&self) -> PublicKeyShare {
        PublicKeyShare {
            index: self.index,
            key: BlsPublicKey::from_raw(self.key.sk_to_pk()),
        }
    }

    /// Sign `message` with this share.
    pub fn sign_partial(&self, message: &[u8]) -> PartialSignature {
        PartialSignature {
            index: self.index,
            signature: BlsSignature::from_raw(self.key.sign(message, SIGNATURE_DST, &[])),
        }
    }
}

impl fmt::Debug for SecretKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKeyShare({:?})", self.index)
    }
}

/// The secret share's wire form is for key files and the dealer's output, never for the network.
impl Wire for SecretKeyShare {
    fn encode(&self, out: &mut Vec<u8>) {
        self.index.encode(out);
        out.extend_from_slice(&*Zeroizing::new(self.key.to_bytes()));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let index = ShareIndex::decode(r)?;
        let bytes = Zeroizing::new(r.array::<32>()?);
        let key = min_pk::SecretKey::from_bytes(&*bytes)
            .map_err(|_| DecodeError::Invalid("threshold secret share"))?;
        Ok(SecretKeyShare { index, key })
    }
    fn wire_len(&self) -> usize {
        2 + 32
    }
}

/// One participant's public key share.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKeyShare {
    /// Whose share.
    pub index: ShareIndex,
    /// The share's public key.
    pub key: BlsPublicKey,
}

impl Wire for PublicKeyShare {
    fn encode(&self, out: &mut Vec<u8>) {
        self.index.encode(out);
        self.key.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PublicKeyShare {
            index: ShareIndex::decode(r)?,
            key: BlsPublicKey::decode(r)?,
        })
    }
    fn wire_len(&self) -> usize {
        2 + self.key.wire_len()
    }
}

/// A participant's signature share on a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartialSignature {
    /// Who made it.
    pub index: ShareIndex,
    /// A BLS signature under that participant's public key share.
    pub signature: BlsSignature,
}

impl Wire for PartialSignature {
    fn encode(&self, out: &mut Vec<u8>) {
        self.index.encode(out);
        self.signature.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PartialSignature {
            index: ShareIndex::decode(r)?,
            signature: BlsSignature::decode(r)?,
        })
    }
    fn wire_len(&self) -> usize {
        2 + self.signature.wire_len()
    }
}

/// The group's public key: a threshold signature is a standard BLS signature under it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GroupPublicKey(pub BlsPublicKey);

impl GroupPublicKey {
    /// Check a combined threshold signature.
    pub fn verify(&self, message: &[u8], signature: &BlsSignature) -> Result<(), ThresholdError> {
        self.0
            .verify(message, signature)
            .map_err(|_: BlsError| ThresholdError::InvalidSignature)
    }
}

impl Wire for GroupPublicKey {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GroupPublicKey(BlsPublicKey::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        self.0.wire_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use stockade_core::DecodeLimits;

    fn dealt(f: usize, seed: u64) -> DealtKeys {
        deal(
            ThresholdParameters::for_faults(f).expect("valid"),
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
        .expect("deal")
    }

    fn partials(keys: &DealtKeys, who: &[usize], message: &[u8]) -> Vec<PartialSignature> {
        who.iter()
            .map(|&i| keys.secret_shares[i].sign_partial(message))
            .collect()
    }

    #[test]
    fn any_f_plus_one_partials_make_the_same_standard_signature() {
        let keys = dealt(2, 1); // 3 of 7
        let a = keys
            .public
            .combine(b"m", &partials(&keys, &[0, 1, 2], b"m"))
            .expect("combines");
        let b = keys
            .public
            .combine(b"m", &partials(&keys, &[6, 3, 5], b"m"))
            .expect("combines");
        assert_eq!(
            a.signature, b.signature,
            "BLS threshold signatures are unique"
        );
        assert!(a.invalid.is_empty() && a.partials_verified == 0);
        assert_eq!(keys.public.group_key().verify(b"m", &a.signature), Ok(()));
        assert_eq!(
            keys.public.group_key().verify(b"x", &a.signature),
            Err(ThresholdError::InvalidSignature)
        );
        // It is a standard BLS signature: the plain blst verifier under the group key accepts it.
        assert_eq!(keys.public.group_key().0.verify(b"m", &a.signature), Ok(()));
    }

    #[test]
    fn blstrs_pairing_agrees_with_the_blst_verifier() {
        // An independent check of the combined signature: e(g1, sig) == e(group_key, H(m)),
        // hashing to G2 with blstrs under the same ciphersuite tag.
        use group::prime::PrimeCurveAffine;
        let keys = dealt(1, 11);
        let ps = partials(&keys, &[3, 1], b"cross-check");
        let signature = keys
            .public
            .combine(b"cross-check", &ps)
            .expect("combines")
            .signature;
        let sig_point = blstrs::G2Affine::from_compressed(&signature.to_bytes()).expect("point");
        let key_bytes = keys.public.group_key().0.to_bytes();
        let key_point = blstrs::G1Affine::from_compressed(&key_bytes).expect("point");
        let hashed = |m: &[u8]| {
            blstrs::G2Affine::from(blstrs::G2Projective::hash_to_curve(m, SIGNATURE_DST, &[]))
        };
        let lhs = blstrs::pairing(&blstrs::G1Affine::generator(), &sig_point);
        assert_eq!(lhs, blstrs::pairing(&key_point, &hashed(b"cross-check")));
        assert_ne!(lhs, blstrs::pairing(&key_point, &hashed(b"other message")));
    }

    #[test]
    fn dealing_is_reproducible_from_the_seed() {
        assert_eq!(dealt(1, 9).public, dealt(1, 9).public);
        assert_ne!(
            dealt(1, 9).public.group_key(),
            dealt(1, 10).public.group_key()
        );
    }

    #[test]
    fn partials_verify_against_their_own_share_only() {
        let keys = dealt(1, 2);
        let p = keys.secret_shares[0].sign_partial(b"m");
        assert_eq!(keys.public.verify_partial(b"m", &p), Ok(()));
        assert_eq!(
            keys.public.verify_partial(b"n", &p),
            Err(ThresholdError::InvalidPartial(ShareIndex(1)))
        );
        let relabelled = PartialSignature {
            index: ShareIndex(2),
            ..p
        };
        assert_eq!(
            keys.public.verify_partial(b"m", &relabelled),
            Err(ThresholdError::InvalidPartial(ShareIndex(2)))
        );
        let unknown = PartialSignature {
            index: ShareIndex(5),
            ..p
        };
        assert_eq!(
            keys.public.verify_partial(b"m", &unknown),
            Err(ThresholdError::UnknownParticipant {
                index: ShareIndex(5),
                participants: 4
            })
        );
    }

    #[test]
    fn bad_partials_are_identified_and_skipped() {
        let keys = dealt(2, 3); // 3 of 7
        let mut ps = partials(&keys, &[0, 1, 2, 3, 4], b"m");
        ps[1] = keys.secret_shares[1].sign_partial(b"evil"); // wrong message
        ps[2].signature = ps[3].signature; // someone else's share
        let combined = keys.public.combine(b"m", &ps).expect("three valid remain");
        assert_eq!(combined.invalid, vec![ShareIndex(2), ShareIndex(3)]);
        assert_eq!(combined.partials_verified, 5);
        assert_eq!(
            keys.public.group_key().verify(b"m", &combined.signature),
            Ok(())
        );
    }

    #[test]
    fn too_few_valid_partials_name_the_culprits() {
        let keys = dealt(2, 4);
        let mut ps = partials(&keys, &[0, 1, 2, 3], b"m");
        ps[0] = keys.secret_shares[0].sign_partial(b"x");
        ps[3] = keys.secret_shares[3].sign_partial(b"y");
        assert_eq!(
            keys.public.combine(b"m", &ps),
            Err(ThresholdError::NotEnoughValidPartials {
                valid: 2,
                needed: 3,
                invalid: vec![ShareIndex(1), ShareIndex(4)]
            })
        );
    }

    #[test]
    fn malformed_partial_sets_are_refused_before_work() {
        let keys = dealt(1, 5); // 2 of 4
        let ps = partials(&keys, &[0, 1], b"m");
        assert_eq!(
            keys.public.combine(b"m", &ps[..1]),
            Err(ThresholdError::NotEnoughPartials { have: 1, needed: 2 })
        );
        assert_eq!(
            keys.public.combine(b"m", &[ps[0], ps[0]]),
            Err(ThresholdError::DuplicateParticipant(ShareIndex(1)))
        );
        let stranger = PartialSignature {
            index: ShareIndex(9),
            signature: ps[0].signature,
        };
        assert_eq!(
            keys.public.combine(b"m", &[ps[0], stranger]),
            Err(ThresholdError::UnknownParticipant {
                index: ShareIndex(9),
                participants: 4
            })
        );
    }

    #[test]
    fn parameters_are_bounded() {
        assert!(ThresholdParameters::new(0, 4).is_err());
        assert!(ThresholdParameters::new(5, 4).is_err());
        assert!(ThresholdParameters::new(1, THRESHOLD_PARTICIPANTS_MAX + 1).is_err());
        assert!(
            ThresholdParameters::new(THRESHOLD_PARTICIPANTS_MAX, THRESHOLD_PARTICIPANTS_MAX)
                .is_ok()
        );
        let p = ThresholdParameters::for_faults(2).expect("valid");
        assert_eq!((p.threshold(), p.participants()), (3, 7));
    }

    #[test]
    fn wire_roundtrips() {
        let keys = dealt(1, 6);
        let limits = DecodeLimits::MESSAGE;
        let set = PublicKeySet::from_bytes(&keys.public.to_bytes(), limits).expect("set");
        assert_eq!(set, keys.public);
        let share =
            SecretKeyShare::from_bytes(&keys.secret_shares[2].to_bytes(), limits).expect("share");
        assert_eq!(share.public_share(), keys.secret_shares[2].public_share());
        let p = share.sign_partial(b"m");
        assert_eq!(PartialSignature::from_bytes(&p.to_bytes(), limits), Ok(p));
        assert_eq!(p.wire_len(), 98);
        let mut zero_index = p.to_bytes();
        zero_index[0] = 0;
        assert_eq!(
            PartialSignature::from_bytes(&zero_index, limits),
            Err(DecodeError::Invalid("threshold share index"))
        );
        assert!(!format!("{share:?}").contains(&hex::encode(share.key.to_bytes())));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn every_threshold_subset_combines(seed in any::<u64>(), mask in 0u8..=0x7f) {
            let keys = dealt(2, seed);
            let who: Vec<usize> = (0..7).filter(|i| mask & (1 << i) != 0).collect();
            let result = keys.public.combine(b"p", &partials(&keys, &who, b"p"));
            if who.len() >= 3 {
                let combined = result.expect("enough partials");
                prop_assert_eq!(keys.public.group_key().verify(b"p", &combined.signature), Ok(()));
            } else {
                prop_assert_eq!(result, Err(ThresholdError::NotEnoughPartials { have: who.len(), needed: 3 }));
            }
        }
    }
}
