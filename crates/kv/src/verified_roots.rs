//! [`RootCachingAuth`]: the servers' Ed25519 + Merkle batch authentication
//! ([`Ed25519MerkleAuth`]) with each batch signature checked once.
//!
//! PRIME.md "Participants and quorums": one signature covers a batch of messages through a Merkle
//! root, and each message carries its sibling digests. A receiver that has already verified the
//! signature over a root learns nothing new from checking it again: for the next message of that
//! batch it recomputes the root from the message's digest and siblings (hashes only) and accepts
//! when that root and signature are among the verified ones. The voting proxy profits most: the
//! replies a server sends it for one global slot share one batch (PRIME.md step 11), so it checks
//! one signature per server and slot instead of one per reply. Authenticity is unchanged: a
//! message is accepted only if it hashes up to a root whose signature by the claimed signer was
//! verified.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use stockade_core::{CpuWork, DecodeLimits, Wire};
use stockade_crypto::ed25519::Signature;
use stockade_crypto::merkle::BatchProof;
use stockade_crypto::scheme::{Signer, Verifier};
use stockade_replication::auth::{AuthTag, Digest, MessageAuth};
use stockade_replication::{Ed25519MerkleAuth, ParticipantId, ThresholdKeys};

/// Verified batch signatures remembered; the oldest is forgotten first.
pub const VERIFIED_ROOTS_MAX: usize = 4096;

/// One verified batch signature: its signer, the digest it signs, the signature.
type RootKey = (ParticipantId, [u8; 32], [u8; 64]);

/// The verified batch signatures, bounded, oldest first out.
struct VerifiedRoots {
    known: HashSet<RootKey>,
    order: VecDeque<RootKey>,
    len_max: usize,
}

impl VerifiedRoots {
    fn contains(&self, key: &RootKey) -> bool {
        self.known.contains(key)
    }

    fn insert(&mut self, key: RootKey) {
        if !self.known.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.len_max {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
    }
}

/// See the module documentation.
pub struct RootCachingAuth {
    signing: Ed25519MerkleAuth,
    verifiers: Vec<Verifier>,
    verified: Mutex<VerifiedRoots>,
    /// Signature checks actually run (the rest were answered from the verified roots).
    checks: AtomicU64,
}

impl RootCachingAuth {
    /// Sign with `signer`; check participant i's messages with `verifiers[i]`, remembering at
    /// most `roots_max` verified batch signatures.
    pub fn new(signer: Signer, verifiers: Vec<Verifier>, roots_max: usize) -> RootCachingAuth {
        RootCachingAuth {
            signing: Ed25519MerkleAuth::new(signer, verifiers.clone()),
            verifiers,
            verified: Mutex::new(VerifiedRoots {
                known: HashSet::new(),
                order: VecDeque::new(),
                len_max: roots_max.max(1),
            }),
            checks: AtomicU64::new(0),
        }
    }

    /// The same, holding this server's share of the servers' threshold key (view changes).
    pub fn with_threshold(mut self, keys: ThresholdKeys) -> RootCachingAuth {
        self.signing = self.signing.with_threshold(keys);
        self
    }

    /// Signature checks run so far.
    pub fn signature_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Batch signatures remembered now.
    pub fn verified_roots(&self) -> usize {
        self.lock().order.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VerifiedRoots> {
        // Nothing panics while holding the lock, so a poisoned set is still consistent.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MessageAuth for RootCachingAuth {
    fn sign_batch(&mut self, digests: &[Digest]) -> Vec<AuthTag> {
        self.signing.sign_batch(digests)
    }

    fn verify(&self, signer: ParticipantId, digest: &Digest, tag: &AuthTag) -> bool {
        let Some(verifier) = self.verifiers.get(signer.index()) else {
            return false;
        };
        let Ok(proof) = BatchProof::<Signature>::from_bytes(&tag.0, DecodeLimits::MESSAGE) else {
            return false;
        };
        let Ok(root) = proof.signed_digest(digest) else {
            return false;
        };
        let key = (signer, root.0, proof.signature.0);
        if self.lock().contains(&key) {
            return true;
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        if verifier
            .verify(&root.0, &proof.signature, &mut |_| {})
            .is_err()
        {
            return false;
        }
        self.lock().insert(key);
        true
    }

    fn sign_cost(&self, count: usize) -> CpuWork {
        self.signing.sign_cost(count)
    }

    fn verify_cost(&self) -> CpuWork {
        self.signing.verify_cost()
    }

    // Threshold shares are rare (view changes only): no caching, the inner authenticator's key
    // checks them.
    fn threshold_keys(&self) -> Option<&ThresholdKeys> {
        self.signing.threshold_keys()
    }
}

#[cfg(test)]
mod tests {
    use stockade_crypto::scheme::SimulationKeys;
    use stockade_crypto::CryptoMode;
    use stockade_replication::auth::hash_parts;

    use super::*;

    fn auth(keys: &SimulationKeys, me: u32, roots_max: usize) -> RootCachingAuth {
        RootCachingAuth::new(
            keys.signer(me),
            (0..4).map(|i| keys.verifier(i)).collect(),
            roots_max,
        )
    }

    fn digests(n: u8) -> Vec<Digest> {
        (0..n).map(|i| hash_parts(b"test", &[&[i]])).collect()
    }

    #[test]
    fn one_signature_check_per_batch_and_forgeries_still_fail() {
        let keys = SimulationKeys::new(CryptoMode::Real, 5);
        let mut alice = auth(&keys, 1, 16);
        let bob = auth(&keys, 2, 16);
        let batch = digests(8);
        let tags = alice.sign_batch(&batch);
        for (d, t) in batch.iter().zip(&tags) {
            assert!(bob.verify(ParticipantId(1), d, t));
        }
        assert_eq!(bob.signature_checks(), 1, "the root is checked once");
        // A verified root does not vouch for another digest, nor for another signer.
        let stranger = hash_parts(b"test", &[b"not in the batch"]);
        assert!(!bob.verify(ParticipantId(1), &stranger, &tags[0]));
        assert!(!bob.verify(ParticipantId(2), &batch[0], &tags[0]));
        assert!(!bob.verify(ParticipantId(9), &batch[0], &tags[0]));
        assert!(!bob.verify(ParticipantId(1), &batch[0], &AuthTag(vec![1, 2, 3])));
        // A forged signature over a fresh root is checked, and fails.
        let mallory = auth(&keys, 3, 16).sign_batch(&batch[..1]).remove(0);
        assert!(!bob.verify(ParticipantId(1), &batch[0], &mallory));
    }

    #[test]
    fn the_verified_roots_are_bounded_and_a_forgotten_root_is_checked_again() {
        let keys = SimulationKeys::new(CryptoMode::SimFast, 6);
        let mut alice = auth(&keys, 0, 2);
        let bob = auth(&keys, 1, 2);
        let batches: Vec<(Vec<Digest>, Vec<AuthTag>)> = (0..3u8)
            .map(|i| {
                let batch = vec![hash_parts(b"batch", &[&[i]])];
                let tags = alice.sign_batch(&batch);
                (batch, tags)
            })
            .collect();
        for (batch, tags) in &batches {
            assert!(bob.verify(ParticipantId(0), &batch[0], &tags[0]));
        }
        assert_eq!(bob.verified_roots(), 2, "the bound holds");
        assert_eq!(bob.signature_checks(), 3);
        // The first root was forgotten: checked again (and still valid).
        assert!(bob.verify(ParticipantId(0), &batches[0].0[0], &batches[0].1[0]));
        assert_eq!(bob.signature_checks(), 4);
        // The newest is remembered.
        assert!(bob.verify(ParticipantId(0), &batches[0].0[0], &batches[0].1[0]));
        assert_eq!(bob.signature_checks(), 4);
    }
}
