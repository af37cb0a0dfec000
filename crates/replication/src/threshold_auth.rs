//! The participants' shared threshold key, as [`crate::MessageAuth`] uses it for the view change's
//! VC-PROOF (PRIME.md "View change" step 3: every server sends a threshold-signature share over the
//! agreed replay; 2f+k+1 shares combine into one signature, which the REPLAY carries).
//!
//! Participant `p` holds share `p + 1` of a (2f+k+1)-of-N key ([`threshold_parameters`]). A share
//! on the wire is the bare 96-byte partial BLS signature: whose share it is comes from the signed
//! VC-PARTIAL-SIG that carries it, so a bad share is blamed on its signer and nobody else (paper
//! 004 section 3: verifiable partials let correct servers detect and blacklist whoever sends a bad
//! one). The same API is served by the simulation's stand-in ([`stockade_crypto::CryptoMode`]),
//! which charges the real cost, and by real BLS threshold keys from a dealer (`stockade cluster up`
//! for a local cluster). For the global Prime among sites, a participant is a whole site and this
//! key would be the sites' key; nothing here names a server.

use stockade_core::CpuWork;
use stockade_crypto::bls::{BlsSignature, BLS_SIGNATURE_BYTES};
use stockade_crypto::scheme::{SimulationKeys, ThresholdSigner, ThresholdVerifier};
use stockade_crypto::threshold::{
    PartialSignature, ShareIndex, ThresholdError, ThresholdParameters,
};
use thiserror::Error;

use crate::auth::{AuthTag, Digest, Ed25519MerkleAuth};
use crate::config::{ParticipantId, Quorums};

/// Which of a simulated run's threshold groups is the Prime participants' key.
pub const SIMULATION_THRESHOLD_GROUP: u32 = 0;

/// A combined threshold proof, and the participants whose shares were invalid on the way.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CombinedShares {
    /// The combined signature, already verified.
    pub proof: AuthTag,
    /// Participants that signed a bad share (to be blamed and ignored).
    pub invalid: Vec<ParticipantId>,
}

/// Why shares did not combine.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum ShareCombineError {
    /// The authenticator has no threshold key.
    #[error(
        "no threshold key: give the server's authenticator its threshold share \
         (Ed25519MerkleAuth::with_threshold)"
    )]
    NoThresholdKey,
    /// Too few valid shares remain after the invalid ones are set aside.
    #[error("only {valid} valid shares, {needed} needed; invalid shares from {invalid:?}")]
    NotEnoughValid {
        /// Valid shares found.
        valid: usize,
        /// Shares needed.
        needed: usize,
        /// Participants whose shares were invalid (to be blamed).
        invalid: Vec<ParticipantId>,
    },
    /// The share set itself is refused (a participant twice, or one outside the key).
    #[error("share set refused: {0}")]
    Refused(ThresholdError),
}

/// The (2f+k+1)-of-N parameters of Prime's VC-PROOF key.
pub fn threshold_parameters(quorums: Quorums) -> Result<ThresholdParameters, ThresholdError> {
    ThresholdParameters::new(quorums.certificate(), quorums.n())
}

fn share_index(p: ParticipantId) -> ShareIndex {
    ShareIndex(p.0 + 1)
}

fn participant(index: ShareIndex) -> ParticipantId {
    ParticipantId(index.0.saturating_sub(1))
}

fn signature_of(tag: &AuthTag) -> Option<BlsSignature> {
    <[u8; BLS_SIGNATURE_BYTES]>::try_from(tag.0.as_slice())
        .ok()
        .map(BlsSignature)
}

/// One participant's share of the threshold key and the key's public side.
#[derive(Clone, Debug)]
pub struct ThresholdKeys {
    signer: ThresholdSigner,
    verifier: ThresholdVerifier,
}

impl ThresholdKeys {
    /// `signer` is this participant's share (participant p holds share index p + 1); `verifier`
    /// is the key's public side, the same at every participant.
    pub fn new(signer: ThresholdSigner, verifier: ThresholdVerifier) -> ThresholdKeys {
        ThresholdKeys { signer, verifier }
    }

    pub(crate) fn shares_needed(&self) -> usize {
        self.verifier.parameters().threshold()
    }

    pub(crate) fn sign_share(&self, digest: &Digest, charge: &mut dyn FnMut(CpuWork)) -> AuthTag {
        let partial = self.signer.sign_partial(digest, &mut |w| charge(w));
        AuthTag(partial.signature.0.to_vec())
    }

    pub(crate) fn verify_share(
        &self,
        signer: ParticipantId,
        digest: &Digest,
        share: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        let Some(signature) = signature_of(share) else {
            return false;
        };
        let partial = PartialSignature {
            index: share_index(signer),
            signature,
        };
        self.verifier
            .verify_partial(digest, &partial, &mut |w| charge(w))
            .is_ok()
    }

    pub(crate) fn combine(
        &self,
        digest: &Digest,
        shares: &[(ParticipantId, AuthTag)],
        charge: &mut dyn FnMut(CpuWork),
    ) -> Result<CombinedShares, ShareCombineError> {
        // A share of the wrong size is invalid without any cryptographic work.
        let mut malformed = Vec::new();
        let mut partials = Vec::with_capacity(shares.len());
        for (p, tag) in shares {
            match signature_of(tag) {
                Some(signature) => partials.push(PartialSignature {
                    index: share_index(*p),
                    signature,
                }),
                None => malformed.push(*p),
            }
        }
        let blame = |invalid: Vec<ShareIndex>| {
            let mut all = malformed.clone();
            all.extend(invalid.into_iter().map(participant));
            all
        };
        match self.verifier.combine(digest, &partials, &mut |w| charge(w)) {
            Ok(combined) => Ok(CombinedShares {
                proof: AuthTag(combined.signature.0.to_vec()),
                invalid: blame(combined.invalid),
            }),
            Err(ThresholdError::NotEnoughValidPartials {
                valid,
                needed,
                invalid,
            }) => Err(ShareCombineError::NotEnoughValid {
                valid,
                needed,
                invalid: blame(invalid),
            }),
            Err(ThresholdError::NotEnoughPartials { have, needed }) => {
                Err(ShareCombineError::NotEnoughValid {
                    valid: have,
                    needed,
                    invalid: blame(Vec::new()),
                })
            }
            Err(other) => Err(ShareCombineError::Refused(other)),
        }
    }

    pub(crate) fn verify_combined(
        &self,
        digest: &Digest,
        proof: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        signature_of(proof).is_some_and(|signature| {
            self.verifier
                .verify(digest, &signature, &mut |w| charge(w))
                .is_ok()
        })
    }
}

/// Every participant's authenticator in a simulated run, from one deal: each participant's Ed25519
/// signer, everyone's verifiers, and its share of the run's (2f+k+1)-of-N threshold key (the run's
/// seed plays the dealer). Cheap to clone; a world's node factory calls [`SimulationAuths::auth`]
/// on every (re)start.
#[derive(Clone, Debug)]
pub struct SimulationAuths {
    keys: SimulationKeys,
    threshold: Vec<ThresholdKeys>,
}

impl SimulationAuths {
    /// Deal the threshold key for `quorums` from `keys`.
    pub fn deal(
        keys: &SimulationKeys,
        quorums: Quorums,
    ) -> Result<SimulationAuths, ThresholdError> {
        let parameters = threshold_parameters(quorums)?;
        let (verifier, signers) = keys.threshold_group(SIMULATION_THRESHOLD_GROUP, parameters)?;
        let threshold = signers
            .into_iter()
            .map(|signer| ThresholdKeys::new(signer, verifier.clone()))
            .collect();
        Ok(SimulationAuths {
            keys: keys.clone(),
            threshold,
        })
    }

    /// Participant `me`'s authenticator. A participant outside the deal gets none of the
    /// threshold key, which [`crate::Prime::new`] refuses with a clear error.
    pub fn auth(&self, me: ParticipantId) -> Ed25519MerkleAuth {
        let n = self.threshold.len() as u32;
        let auth = Ed25519MerkleAuth::new(
            self.keys.signer(me.0 as u32),
            (0..n).map(|i| self.keys.verifier(i)).collect(),
        );
        match self.threshold.get(me.index()) {
            Some(keys) => auth.with_threshold(keys.clone()),
            None => auth,
        }
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::CostKind;
    use stockade_crypto::CryptoMode;

    use super::*;
    use crate::auth::{hash_parts, MessageAuth};

    fn auths(mode: CryptoMode) -> Vec<Ed25519MerkleAuth> {
        let keys = SimulationKeys::new(mode, 5);
        let dealt = SimulationAuths::deal(&keys, Quorums::new(1, 0)).expect("dealt");
        (0..4).map(|i| dealt.auth(ParticipantId(i))).collect()
    }

    /// Three of four shares combine; a bad share is named and the rest still combine; two bad
    /// shares leave too few; the proof verifies at every participant and only for its digest.
    #[test]
    fn shares_combine_and_bad_shares_are_named_in_both_modes() {
        for mode in [CryptoMode::Real, CryptoMode::SimFast] {
            let mut auths = auths(mode);
            let digest = hash_parts(b"test", &[b"replay"]);
            let mut ignore = |_| {};
            let mut shares: Vec<(ParticipantId, AuthTag)> = auths
                .iter_mut()
                .enumerate()
                .map(|(i, a)| (ParticipantId(i as u16), a.sign_share(&digest, &mut ignore)))
                .collect();
            assert_eq!(auths[0].shares_needed(), Some(3));
            assert!(auths[1].verify_share(ParticipantId(2), &digest, &shares[2].1, &mut ignore));
            assert!(
                !auths[1].verify_share(ParticipantId(3), &digest, &shares[2].1, &mut ignore),
                "a share counts for its own participant only ({mode})"
            );
            shares[0].1 .0[5] ^= 1;
            let mut charged = Vec::new();
            let combined = auths[1]
                .combine_shares(&digest, &shares, &mut |w| charged.push(w))
                .expect("three valid shares");
            assert_eq!(combined.invalid, vec![ParticipantId(0)], "{mode}");
            assert!(charged.contains(&CpuWork::ops(CostKind::ThresholdPartialVerify, 4)));
            for a in &auths {
                assert!(a.verify_combined(&digest, &combined.proof, &mut ignore));
            }
            let other = hash_parts(b"test", &[b"other"]);
            assert!(!auths[2].verify_combined(&other, &combined.proof, &mut ignore));
            shares[1].1 = AuthTag(vec![1, 2, 3]);
            assert_eq!(
                auths[2].combine_shares(&digest, &shares, &mut ignore),
                Err(ShareCombineError::NotEnoughValid {
                    valid: 2,
                    needed: 3,
                    invalid: vec![ParticipantId(1), ParticipantId(0)],
                }),
                "{mode}"
            );
        }
    }

    #[test]
    fn a_client_authenticator_has_no_threshold_key() {
        let keys = SimulationKeys::new(CryptoMode::SimFast, 5);
        let mut client = Ed25519MerkleAuth::new(keys.signer(9), vec![keys.verifier(0)]);
        let mut ignore = |_| {};
        assert_eq!(client.shares_needed(), None);
        assert_eq!(client.sign_share(&[0; 32], &mut ignore), AuthTag::default());
        assert_eq!(
            client.combine_shares(&[0; 32], &[], &mut ignore),
            Err(ShareCombineError::NoThresholdKey)
        );
    }

    /// A server without a threshold key, or with a key for other quorums, is refused up front
    /// with an error that says what to deal.
    #[test]
    fn prime_refuses_a_missing_or_mismatched_threshold_key() {
        use crate::config::{ConfigError, Membership, PrimeConfig};
        use crate::test_support::LogApp;
        use crate::Prime;
        use stockade_core::NodeId;
        let keys = SimulationKeys::new(CryptoMode::SimFast, 5);
        let build = |cfg: PrimeConfig, auth: Ed25519MerkleAuth| {
            let n = cfg.quorums.n() as u32;
            let membership = Membership::new((0..n).map(NodeId).collect()).expect("membership");
            Prime::new(
                cfg,
                membership,
                ParticipantId(0),
                Box::new(auth),
                LogApp::default(),
            )
            .err()
        };
        let client = Ed25519MerkleAuth::new(keys.signer(0), vec![keys.verifier(0)]);
        let missing = build(PrimeConfig::new(1, 0), client);
        assert_eq!(missing, Some(ConfigError::NoThresholdKey));
        let small = SimulationAuths::deal(&keys, Quorums::new(1, 0)).expect("dealt");
        let mismatch = build(PrimeConfig::new(2, 0), small.auth(ParticipantId(0)));
        assert_eq!(
            mismatch,
            Some(ConfigError::ThresholdMismatch {
                shares: 3,
                needed: 5,
                f: 2,
                k: 0
            })
        );
        assert!(mismatch
            .map(|e| e.to_string())
            .is_some_and(|m| m.contains("deal a key for this membership")));
        assert_eq!(
            build(PrimeConfig::new(1, 0), small.auth(ParticipantId(0))),
            None
        );
    }
}
