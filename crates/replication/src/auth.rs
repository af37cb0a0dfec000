//! Authentication of a participant's messages, behind one small trait.
//!
//! PRIME.md "Participants and quorums": every message is signed by its sender; one signature may
//! cover a batch of messages through a Merkle root. Paper 004 section 3.1: a site's messages carry
//! the site's threshold signature. Prime only asks [`MessageAuth`] to tag digests and check tags, so
//! the same protocol code runs with per-server Ed25519 + Merkle batching (local Prime) and with a
//! site's threshold signature (global Prime).
//!
//! The same trait holds the participants' shared threshold key (PRIME.md "View change" step 3:
//! VC-PARTIAL-SIG shares combine into one VC-PROOF); its types live in [`crate::threshold_auth`].

use sha2::{Digest as _, Sha256};
use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{CostKind, CpuWork, DecodeLimits};
use stockade_crypto::ed25519::Signature;
use stockade_crypto::merkle::BatchProof;
use stockade_crypto::scheme::{Signer, Verifier};

use crate::config::ParticipantId;
use crate::threshold_auth::{CombinedShares, ShareCombineError, ThresholdKeys};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The largest authentication tag accepted on the wire (a signature plus a Merkle path of up to
/// 16 siblings, or a threshold signature).
pub const AUTH_TAG_BYTES_MAX: usize = 1024;

/// SHA-256 over a domain separator and parts, each part length-prefixed so that no two different
/// part lists hash alike.
pub fn hash_parts(domain: &[u8], parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    h.update((domain.len() as u64).to_le_bytes());
    h.update(domain);
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The bytes that prove who sent a message: a signature with its Merkle path, or a threshold
/// signature. Opaque to Prime.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AuthTag(pub Vec<u8>);

impl Wire for AuthTag {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuthTag(r.byte_vec("auth tag", AUTH_TAG_BYTES_MAX)?))
    }
    fn wire_len(&self) -> usize {
        self.0.wire_len()
    }
}

/// Signs this participant's messages and checks other participants' messages.
///
/// Prime hands over digests, never whole messages, and asks for a batch of tags at once so that an
/// implementation can sign one Merkle root for the batch (PRIME.md: sign when 64 are pending).
pub trait MessageAuth: Send {
    /// Tags for `digests`, one per digest, in order, each proving that this participant sent it.
    fn sign_batch(&mut self, digests: &[Digest]) -> Vec<AuthTag>;
    /// Whether `tag` proves that `signer` sent `digest`.
    fn verify(&self, signer: ParticipantId, digest: &Digest, tag: &AuthTag) -> bool;
    /// The CPU work of signing a batch of `count` digests (charged to the virtual CPU).
    fn sign_cost(&self, count: usize) -> CpuWork;
    /// The CPU work of one verification.
    fn verify_cost(&self) -> CpuWork;

    /// This participant's share of the participants' threshold key, if it holds one (a server
    /// does; a client, which only checks replies, does not). The threshold methods below work
    /// through it unless an implementation overrides them.
    fn threshold_keys(&self) -> Option<&ThresholdKeys> {
        None
    }

    /// Valid shares that combine into one threshold proof (2f+k+1 for Prime's VC-PROOF), or
    /// `None` when this authenticator holds no threshold key (a client's, which only checks
    /// replies). [`crate::Prime::new`] refuses a server whose authenticator says `None`.
    fn shares_needed(&self) -> Option<usize> {
        self.threshold_keys().map(ThresholdKeys::shares_needed)
    }
    /// This participant's share (partial threshold signature) of `digest`; empty without a key.
    /// Charges the real cost to `charge`.
    fn sign_share(&mut self, digest: &Digest, charge: &mut dyn FnMut(CpuWork)) -> AuthTag {
        self.threshold_keys()
            .map_or_else(AuthTag::default, |keys| keys.sign_share(digest, charge))
    }
    /// Whether `share` is `signer`'s valid share of `digest`.
    fn verify_share(
        &self,
        signer: ParticipantId,
        digest: &Digest,
        share: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        self.threshold_keys()
            .is_some_and(|keys| keys.verify_share(signer, digest, share, charge))
    }
    /// Combine the shares of distinct participants into one proof of `digest`. Invalid shares are
    /// named (their senders signed them, so they are to blame) and left out; the proof is made
    /// from `shares_needed` valid ones.
    fn combine_shares(
        &self,
        digest: &Digest,
        shares: &[(ParticipantId, AuthTag)],
        charge: &mut dyn FnMut(CpuWork),
    ) -> Result<CombinedShares, ShareCombineError> {
        match self.threshold_keys() {
            Some(keys) => keys.combine(digest, shares, charge),
            None => Err(ShareCombineError::NoThresholdKey),
        }
    }
    /// Whether `proof` is a combined threshold proof of `digest`.
    fn verify_combined(
        &self,
        digest: &Digest,
        proof: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        self.threshold_keys()
            .is_some_and(|keys| keys.verify_combined(digest, proof, charge))
    }
}

/// A message body that can be signed: its domain separates its digests from every other kind's.
pub trait SignedBody: Wire + Clone + std::fmt::Debug + PartialEq {
    /// Domain separator of this kind's digests.
    const DOMAIN: &'static [u8];
}

/// A message body with its signer and tag. Forwarded whole (a re-flooded pre-prepare, a PO-REQUEST
/// sent by reconciliation, the summaries inside a pre-prepare) so that any receiver can check it.
#[derive(Clone, PartialEq, Debug)]
pub struct Signed<T> {
    /// Who sent it.
    pub signer: ParticipantId,
    /// What was said.
    pub body: T,
    /// The proof.
    pub tag: AuthTag,
}

impl<T: SignedBody> Signed<T> {
    /// The digest the tag covers: the body bound to its kind and signer.
    pub fn digest(&self) -> Digest {
        body_digest(self.signer, &self.body)
    }

    /// Whether the tag is valid for the signer.
    pub fn verify(&self, auth: &dyn MessageAuth) -> bool {
        auth.verify(self.signer, &self.digest(), &self.tag)
    }
}

/// The digest a signer's tag covers for `body`.
pub fn body_digest<T: SignedBody>(signer: ParticipantId, body: &T) -> Digest {
    hash_parts(T::DOMAIN, &[&signer.0.to_le_bytes(), &body.to_bytes()])
}

impl<T: SignedBody> Wire for Signed<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.signer.encode(out);
        self.body.encode(out);
        self.tag.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.enter()?;
        let signer = ParticipantId::decode(r)?;
        let body = T::decode(r)?;
        let tag = AuthTag::decode(r)?;
        r.leave();
        Ok(Signed { signer, body, tag })
    }
    fn wire_len(&self) -> usize {
        self.signer.wire_len() + self.body.wire_len() + self.tag.wire_len()
    }
}

/// Per-participant Ed25519 signatures over Merkle batches (PRIME.md "Participants and quorums"):
/// one signature covers every digest of a `sign_batch` call, and each tag carries the batch
/// signature with the digest's sibling path. Works with real keys or the simulation's stand-in
/// ([`stockade_crypto::CryptoMode`]). A server's authenticator also holds its share of the
/// participants' threshold key ([`Ed25519MerkleAuth::with_threshold`]); a client's does not.
pub struct Ed25519MerkleAuth {
    signer: Signer,
    verifiers: Vec<Verifier>,
    threshold: Option<ThresholdKeys>,
}

impl Ed25519MerkleAuth {
    /// Sign with `signer`; `verifiers[i]` checks participant i's tags. No threshold key: enough
    /// for a client checking replies; a server adds one with [`Ed25519MerkleAuth::with_threshold`].
    pub fn new(signer: Signer, verifiers: Vec<Verifier>) -> Ed25519MerkleAuth {
        Ed25519MerkleAuth {
            signer,
            verifiers,
            threshold: None,
        }
    }

    /// The same, holding this participant's share of the participants' threshold key.
    pub fn with_threshold(mut self, keys: ThresholdKeys) -> Ed25519MerkleAuth {
        self.threshold = Some(keys);
        self
    }
}

impl MessageAuth for Ed25519MerkleAuth {
    fn sign_batch(&mut self, digests: &[Digest]) -> Vec<AuthTag> {
        // The driver charges through `sign_cost`; the crypto crate's own charge is not needed.
        match self.signer.sign_batch(digests, &mut |_| {}) {
            Ok(proofs) => proofs.iter().map(|p| AuthTag(p.to_bytes())).collect(),
            // Only an empty or oversized batch fails; Prime never asks for one. An empty tag
            // simply fails verification everywhere.
            Err(_) => vec![AuthTag::default(); digests.len()],
        }
    }

    fn verify(&self, signer: ParticipantId, digest: &Digest, tag: &AuthTag) -> bool {
        let Some(verifier) = self.verifiers.get(signer.index()) else {
            return false;
        };
        let Ok(proof) = BatchProof::<Signature>::from_bytes(&tag.0, DecodeLimits::MESSAGE) else {
            return false;
        };
        verifier
            .verify_in_batch(digest, &proof, &mut |_| {})
            .is_ok()
    }

    fn sign_cost(&self, count: usize) -> CpuWork {
        // One signature per batch; the Merkle leaves are charged as part of it.
        let _ = count;
        CpuWork::ops(CostKind::Ed25519Sign, 1)
    }

    fn verify_cost(&self) -> CpuWork {
        CpuWork::ops(CostKind::Ed25519Verify, 1)
    }

    fn threshold_keys(&self) -> Option<&ThresholdKeys> {
        self.threshold.as_ref()
    }
}

/// A stand-in authenticator for unit tests only: its tags are a hash of the signer and digest, so
/// anyone can forge them. It lets tests exercise every verification path (a tag for the wrong signer
/// or the wrong content is rejected) before the real Ed25519 + Merkle implementation is wired in.
/// Its threshold shares are hashes too, and any [`InsecureTestAuth::SHARES_NEEDED`] valid ones
/// combine into a hash of the digest.
#[cfg(test)]
#[derive(Clone, Debug)]
pub struct InsecureTestAuth {
    /// Whose messages this instance signs.
    pub me: ParticipantId,
}

#[cfg(test)]
impl InsecureTestAuth {
    /// Shares a combined proof needs: the f = 1, k = 0 quorum every unit test runs with.
    pub const SHARES_NEEDED: usize = 3;

    fn tag_for(signer: ParticipantId, digest: &Digest) -> AuthTag {
        AuthTag(hash_parts(b"insecure-test-auth", &[&signer.0.to_le_bytes(), digest]).to_vec())
    }

    /// `signer`'s threshold share of `digest`.
    pub fn share_for(signer: ParticipantId, digest: &Digest) -> AuthTag {
        AuthTag(hash_parts(b"insecure-test-share", &[&signer.0.to_le_bytes(), digest]).to_vec())
    }

    /// The combined proof of `digest`.
    pub fn combined_for(digest: &Digest) -> AuthTag {
        AuthTag(hash_parts(b"insecure-test-combined", &[digest]).to_vec())
    }
}

#[cfg(test)]
impl MessageAuth for InsecureTestAuth {
    fn sign_batch(&mut self, digests: &[Digest]) -> Vec<AuthTag> {
        digests.iter().map(|d| Self::tag_for(self.me, d)).collect()
    }
    fn verify(&self, signer: ParticipantId, digest: &Digest, tag: &AuthTag) -> bool {
        Self::tag_for(signer, digest) == *tag
    }
    fn sign_cost(&self, count: usize) -> CpuWork {
        CpuWork::ops(CostKind::Ed25519Sign, count as u32)
    }
    fn verify_cost(&self) -> CpuWork {
        CpuWork::ops(CostKind::Ed25519Verify, 1)
    }
    fn shares_needed(&self) -> Option<usize> {
        Some(Self::SHARES_NEEDED)
    }
    fn sign_share(&mut self, digest: &Digest, charge: &mut dyn FnMut(CpuWork)) -> AuthTag {
        charge(CpuWork::ops(CostKind::ThresholdPartialSign, 1));
        Self::share_for(self.me, digest)
    }
    fn verify_share(
        &self,
        signer: ParticipantId,
        digest: &Digest,
        share: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        charge(CpuWork::ops(CostKind::ThresholdPartialVerify, 1));
        Self::share_for(signer, digest) == *share
    }
    fn combine_shares(
        &self,
        digest: &Digest,
        shares: &[(ParticipantId, AuthTag)],
        charge: &mut dyn FnMut(CpuWork),
    ) -> Result<CombinedShares, ShareCombineError> {
        charge(CpuWork::ops(
            CostKind::ThresholdCombineShare,
            shares.len() as u32,
        ));
        let invalid: Vec<ParticipantId> = shares
            .iter()
            .filter(|(p, share)| Self::share_for(*p, digest) != *share)
            .map(|(p, _)| *p)
            .collect();
        let valid = shares.len() - invalid.len();
        if valid < Self::SHARES_NEEDED {
            return Err(ShareCombineError::NotEnoughValid {
                valid,
                needed: Self::SHARES_NEEDED,
                invalid,
            });
        }
        Ok(CombinedShares {
            proof: Self::combined_for(digest),
            invalid,
        })
    }
    fn verify_combined(
        &self,
        digest: &Digest,
        proof: &AuthTag,
        charge: &mut dyn FnMut(CpuWork),
    ) -> bool {
        charge(CpuWork::ops(CostKind::ThresholdVerify, 1));
        Self::combined_for(digest) == *proof
    }
}

#[cfg(test)]
mod tests {
    use stockade_crypto::scheme::SimulationKeys;
    use stockade_crypto::CryptoMode;

    use super::*;

    fn auth(keys: &SimulationKeys, me: u32) -> Ed25519MerkleAuth {
        Ed25519MerkleAuth::new(keys.signer(me), (0..4).map(|i| keys.verifier(i)).collect())
    }

    #[test]
    fn merkle_batched_tags_verify_for_their_signer_and_digest_only() {
        for mode in [CryptoMode::Real, CryptoMode::SimFast] {
            let keys = SimulationKeys::new(mode, 9);
            let mut alice = auth(&keys, 1);
            let bob = auth(&keys, 2);
            let digests: Vec<Digest> = (0..5u8).map(|i| hash_parts(b"t", &[&[i]])).collect();
            let tags = alice.sign_batch(&digests);
            assert_eq!(tags.len(), 5);
            for (d, t) in digests.iter().zip(&tags) {
                assert!(bob.verify(ParticipantId(1), d, t), "{mode}");
                assert!(
                    !bob.verify(ParticipantId(2), d, t),
                    "wrong signer rejected ({mode})"
                );
            }
            assert!(
                !bob.verify(ParticipantId(1), &digests[0], &tags[1]),
                "wrong leaf rejected"
            );
            assert!(
                !bob.verify(ParticipantId(1), &digests[0], &AuthTag(vec![1, 2, 3])),
                "garbage rejected"
            );
            assert!(
                !bob.verify(ParticipantId(7), &digests[0], &tags[0]),
                "unknown signer rejected"
            );
        }
    }
}

#[cfg(test)]
mod send_tests {
    use crate::scenarios::LedgerApp;
    use crate::Prime;

    fn assert_send<T: Send>() {}

    /// `Prime` runs inside the runtime's `spawn_node`, which moves it to another thread.
    #[test]
    fn prime_is_send_when_its_application_is() {
        assert_send::<Box<dyn super::MessageAuth>>();
        assert_send::<Prime<LedgerApp>>();
    }
}
