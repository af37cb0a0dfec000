//! Who signed what: the bytes each Bracha message's signature covers, and the node's key ring.
//!
//! Every message is signed by its sender with Ed25519 over a domain-separated digest of
//! `(phase, origin, seq, sha256(payload))`, with `stockade-crypto`'s Ed25519 (one verification
//! rule on every node). This is the only module that touches signature primitives, so swapping
//! the signature scheme changes nothing else.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest as _, Sha256};
use stockade_core::NodeId;
use stockade_crypto::ed25519::{self, SigningKey, VerifyingKey};
use stockade_crypto::scheme::{Signer, SimulationKeys, Verifier};
use stockade_crypto::CryptoMode;

use crate::message::{InstanceId, Phase};

/// Bytes in one signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A SHA-256 digest of a payload.
pub type PayloadDigest = [u8; 32];

/// Domain separation: a signature made for this protocol verifies nowhere else.
const SIGNING_DOMAIN: &[u8] = b"stockade/broadcast/bracha/v1";

/// An Ed25519 signature as carried on the wire (not yet checked).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature([u8; SIGNATURE_BYTES]);

impl Signature {
    /// Wrap wire bytes.
    pub fn from_bytes(bytes: [u8; SIGNATURE_BYTES]) -> Signature {
        Signature(bytes)
    }
    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }
}

/// SHA-256 of a payload: what signatures and vote tallies refer to.
pub fn payload_digest(payload: &[u8]) -> PayloadDigest {
    Sha256::digest(payload).into()
}

/// The exact bytes a signature covers.
pub fn signed_bytes(phase: Phase, instance: InstanceId, digest: &PayloadDigest) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + 1 + 4 + 8 + 32);
    out.extend_from_slice(SIGNING_DOMAIN);
    out.push(phase.tag());
    out.extend_from_slice(&instance.origin.0.to_le_bytes());
    out.extend_from_slice(&instance.seq.to_le_bytes());
    out.extend_from_slice(digest);
    out
}

/// Why a key ring could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    /// A public key is not a valid Ed25519 point.
    #[error("public key of node {node} is not a valid Ed25519 key; regenerate it with `stockade keygen`")]
    BadPublicKey {
        /// Whose key.
        node: NodeId,
    },
    /// This node's id is not among the committee's.
    #[error("node {me} is not in the committee of {n} nodes; check the node id in the config")]
    NotAMember {
        /// This node.
        me: NodeId,
        /// Committee size.
        n: usize,
    },
    /// This node's secret key does not match its public key in the committee.
    #[error("the secret key of node {me} does not match its public key in the committee list")]
    KeyMismatch {
        /// This node.
        me: NodeId,
    },
}

/// One node's signing key and every committee member's public key (node `i`'s key at index `i`).
#[derive(Clone)]
pub struct KeyRing {
    me: NodeId,
    signer: Signer,
    committee: Vec<Verifier>,
}

impl KeyRing {
    /// A key ring from this node's signing key and the committee's public keys in node-id order.
    pub fn new(
        me: NodeId,
        signing: SigningKey,
        committee: Vec<VerifyingKey>,
    ) -> Result<KeyRing, KeyRingError> {
        let mine = committee.get(me.index()).ok_or(KeyRingError::NotAMember {
            me,
            n: committee.len(),
        })?;
        if mine.to_bytes() != signing.verifying_key().to_bytes() {
            return Err(KeyRingError::KeyMismatch { me });
        }
        Ok(KeyRing {
            me,
            signer: Signer::Real(signing),
            committee: committee.into_iter().map(Verifier::Real).collect(),
        })
    }

    /// A key ring from raw key bytes: this node's 32-byte Ed25519 secret seed and the committee's
    /// 32-byte public keys in node-id order.
    pub fn from_bytes(
        me: NodeId,
        secret: &[u8; 32],
        committee: &[[u8; 32]],
    ) -> Result<KeyRing, KeyRingError> {
        let committee = committee
            .iter()
            .enumerate()
            .map(|(i, k)| {
                VerifyingKey::from_bytes(*k).map_err(|_| KeyRingError::BadPublicKey {
                    node: NodeId(i as u32),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        KeyRing::new(me, SigningKey::from_bytes(*secret), committee)
    }

    /// Fresh key rings for a committee of `n` nodes, from `rng` (tests and local clusters).
    pub fn generate_committee(n: usize, rng: &mut (impl RngCore + CryptoRng)) -> Vec<KeyRing> {
        let secrets: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate(rng)).collect();
        KeyRing::committee_from(secrets)
    }

    /// The key rings of a simulated committee of `n`: the same for every replay of `run_seed`.
    /// `CryptoMode::SimFast` uses the crypto crate's keyed-hash stand-in (unforgeable inside the
    /// simulation, about 30 times cheaper to run; the simulator still charges Ed25519's cost).
    pub fn for_simulation(n: usize, run_seed: u64, mode: CryptoMode) -> Vec<KeyRing> {
        let keys = SimulationKeys::new(mode, run_seed);
        let committee: Vec<Verifier> = (0..n as u32).map(|i| keys.verifier(i)).collect();
        (0..n as u32)
            .map(|i| KeyRing {
                me: NodeId(i),
                signer: keys.signer(i),
                committee: committee.clone(),
            })
            .collect()
    }

    fn committee_from(secrets: Vec<SigningKey>) -> Vec<KeyRing> {
        let committee: Vec<Verifier> = secrets
            .iter()
            .map(|k| Verifier::Real(k.verifying_key()))
            .collect();
        secrets
            .into_iter()
            .enumerate()
            .map(|(i, signing)| KeyRing {
                me: NodeId(i as u32),
                signer: Signer::Real(signing),
                committee: committee.clone(),
            })
            .collect()
    }

    /// Real Ed25519, or the simulation's stand-in.
    pub fn mode(&self) -> CryptoMode {
        self.signer.mode()
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Committee size n.
    pub fn committee_len(&self) -> usize {
        self.committee.len()
    }

    /// Sign one message's content as this node.
    pub fn sign(&self, phase: Phase, instance: InstanceId, digest: &PayloadDigest) -> Signature {
        // The protocol charges signing and verification itself, where it does them.
        Signature(
            self.signer
                .sign(&signed_bytes(phase, instance, digest), &mut |_| {})
                .0,
        )
    }

    /// True when `signature` is `signer`'s valid signature on this content. The crypto crate's one
    /// verification rule (ZIP-215) makes every correct node accept exactly the same signatures.
    pub fn verify(
        &self,
        signer: NodeId,
        phase: Phase,
        instance: InstanceId,
        digest: &PayloadDigest,
        signature: &Signature,
    ) -> bool {
        let Some(key) = self.committee.get(signer.index()) else {
            return false;
        };
        let sig = ed25519::Signature(*signature.as_bytes());
        key.verify(&signed_bytes(phase, instance, digest), &sig, &mut |_| {})
            .is_ok()
    }
}

impl crate::message::BroadcastMessage {
    /// A message of `phase` about `instance`, signed by the key ring's node.
    pub fn signed(keys: &KeyRing, phase: Phase, instance: InstanceId, payload: Vec<u8>) -> Self {
        let signature = keys.sign(phase, instance, &payload_digest(&payload));
        crate::message::BroadcastMessage {
            phase,
            instance,
            signer: keys.me(),
            payload,
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn rings() -> Vec<KeyRing> {
        KeyRing::generate_committee(4, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9))
    }

    #[test]
    fn signature_binds_signer_phase_instance_and_payload() {
        let rings = rings();
        let inst = InstanceId {
            origin: NodeId(0),
            seq: 3,
        };
        let d = payload_digest(b"v");
        let sig = rings[1].sign(Phase::Echo, inst, &d);
        assert!(rings[2].verify(NodeId(1), Phase::Echo, inst, &d, &sig));
        assert!(
            !rings[2].verify(NodeId(3), Phase::Echo, inst, &d, &sig),
            "other signer"
        );
        assert!(
            !rings[2].verify(NodeId(1), Phase::Ready, inst, &d, &sig),
            "other phase"
        );
        let other = InstanceId {
            origin: NodeId(0),
            seq: 4,
        };
        assert!(
            !rings[2].verify(NodeId(1), Phase::Echo, other, &d, &sig),
            "other seq"
        );
        assert!(
            !rings[2].verify(NodeId(1), Phase::Echo, inst, &payload_digest(b"w"), &sig),
            "other payload"
        );
        assert!(
            !rings[2].verify(NodeId(9), Phase::Echo, inst, &d, &sig),
            "unknown signer"
        );
    }

    #[test]
    fn key_ring_from_bytes_checks_membership_and_key_match() {
        let a = SigningKey::from_bytes([1; 32]);
        let b = SigningKey::from_bytes([2; 32]);
        let committee = [a.verifying_key().to_bytes(), b.verifying_key().to_bytes()];
        assert!(KeyRing::from_bytes(NodeId(1), &[2; 32], &committee).is_ok());
        assert_eq!(
            KeyRing::from_bytes(NodeId(0), &[2; 32], &committee).err(),
            Some(KeyRingError::KeyMismatch { me: NodeId(0) })
        );
        assert_eq!(
            KeyRing::from_bytes(NodeId(2), &[2; 32], &committee).err(),
            Some(KeyRingError::NotAMember {
                me: NodeId(2),
                n: 2
            })
        );
    }

    #[test]
    fn simulation_stand_in_signs_and_rejects_forgeries_like_the_real_scheme() {
        let rings = KeyRing::for_simulation(4, 7, CryptoMode::SimFast);
        assert_eq!(rings[0].mode(), CryptoMode::SimFast);
        let inst = InstanceId {
            origin: NodeId(0),
            seq: 1,
        };
        let d = payload_digest(b"v");
        let sig = rings[2].sign(Phase::Ready, inst, &d);
        assert!(rings[0].verify(NodeId(2), Phase::Ready, inst, &d, &sig));
        assert!(
            !rings[0].verify(NodeId(1), Phase::Ready, inst, &d, &sig),
            "not n1's tag"
        );
        assert!(
            !rings[0].verify(NodeId(2), Phase::Echo, inst, &d, &sig),
            "other phase"
        );
        let other_run = KeyRing::for_simulation(4, 8, CryptoMode::SimFast);
        assert!(
            !other_run[0].verify(NodeId(2), Phase::Ready, inst, &d, &sig),
            "keys differ per run"
        );
        let real = KeyRing::for_simulation(4, 7, CryptoMode::Real);
        assert_eq!(real[0].mode(), CryptoMode::Real);
        assert!(real[1].verify(
            NodeId(3),
            Phase::Echo,
            inst,
            &d,
            &real[3].sign(Phase::Echo, inst, &d)
        ));
    }
}
