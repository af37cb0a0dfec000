//! The signing and MAC operations LA-groups need, behind one small trait.
//!
//! Paper 000, section "LA-groups abstraction": "LA-groups assume nodes use digital signatures to
//! authenticate communication", and symmetric MACs "to authenticate communication between directly
//! connected nodes" as a performance optimization. The protocol only calls [`NodeKeys`]; the key
//! material and the algorithms (Ed25519 signatures, keyed MACs) live behind it, so the protocol
//! code does not change when the key source does (key files in the runtime, seeded keys in the
//! simulator).

use std::fmt;

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::NodeId;

/// Bytes in one signature (an Ed25519 signature).
pub const SIGNATURE_BYTES: usize = 64;
/// Bytes in one MAC tag.
pub const MAC_TAG_BYTES: usize = 32;

/// A signature over an attestation, by its attester.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_BYTES]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl Wire for Signature {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array()?))
    }
    fn wire_len(&self) -> usize {
        SIGNATURE_BYTES
    }
}

/// A MAC tag between two directly connected nodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MacTag(pub [u8; MAC_TAG_BYTES]);

impl Wire for MacTag {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MacTag(r.array()?))
    }
    fn wire_len(&self) -> usize {
        MAC_TAG_BYTES
    }
}

/// The keys one node holds: its own signing key, the verifying keys of the nodes it may hear
/// about, and the MAC keys it negotiated with direct neighbours.
pub trait NodeKeys {
    /// Sign `message` with this node's key.
    fn sign(&self, message: &[u8]) -> Signature;
    /// Whether `signature` is `signer`'s signature over `message` (false for an unknown signer).
    fn verify(&self, signer: NodeId, message: &[u8], signature: &Signature) -> bool;
    /// A MAC over `message` for `peer`, or `None` when no key was negotiated with `peer`.
    fn mac(&self, peer: NodeId, message: &[u8]) -> Option<MacTag>;
    /// Whether `tag` is `peer`'s MAC over `message` (false when no key was negotiated).
    fn verify_mac(&self, peer: NodeId, message: &[u8], tag: &MacTag) -> bool;
}

/// A stand-in for real signatures, for unit tests only: every node's "signature" is a SHA-256 of
/// a per-node secret and the message, and every node knows every secret. Unforgeable only by
/// parties that do not hold the shared secret table, which in a unit test is everyone outside it.
#[cfg(test)]
pub mod test_only {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use sha2::{Digest, Sha256};

    use super::*;

    /// The shared secret table and one node's identity and MAC peers.
    #[derive(Clone, Debug)]
    pub struct TestOnlySharedSecretKeys {
        me: NodeId,
        secrets: Arc<BTreeMap<NodeId, [u8; 32]>>,
        mac_peers: BTreeSet<NodeId>,
    }

    impl TestOnlySharedSecretKeys {
        /// Keys for each of `nodes`, with no MAC keys negotiated.
        pub fn for_nodes(nodes: impl IntoIterator<Item = NodeId>) -> Vec<TestOnlySharedSecretKeys> {
            let ids: Vec<NodeId> = nodes.into_iter().collect();
            let secrets: Arc<BTreeMap<NodeId, [u8; 32]>> = Arc::new(
                ids.iter()
                    .map(|&id| (id, digest(&[b"secret", &id.0.to_le_bytes()])))
                    .collect(),
            );
            ids.iter()
                .map(|&me| TestOnlySharedSecretKeys {
                    me,
                    secrets: secrets.clone(),
                    mac_peers: BTreeSet::new(),
                })
                .collect()
        }

        /// Record that this node negotiated a MAC key with `peer`.
        pub fn with_mac_peer(mut self, peer: NodeId) -> Self {
            self.mac_peers.insert(peer);
            self
        }

        fn secret(&self, node: NodeId) -> Option<&[u8; 32]> {
            self.secrets.get(&node)
        }

        fn pair_key(&self, a: NodeId, b: NodeId) -> Option<[u8; 32]> {
            let (lo, hi) = (a.min(b), a.max(b));
            Some(digest(&[b"mac", self.secret(lo)?, self.secret(hi)?]))
        }
    }

    fn digest(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    fn fake_signature(secret: &[u8; 32], message: &[u8]) -> Signature {
        let a = digest(&[b"sig0", secret, message]);
        let b = digest(&[b"sig1", secret, message]);
        let mut out = [0u8; SIGNATURE_BYTES];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        Signature(out)
    }

    impl NodeKeys for TestOnlySharedSecretKeys {
        fn sign(&self, message: &[u8]) -> Signature {
            let secret = self.secret(self.me).copied().unwrap_or([0; 32]);
            fake_signature(&secret, message)
        }
        fn verify(&self, signer: NodeId, message: &[u8], signature: &Signature) -> bool {
            self.secret(signer)
                .is_some_and(|s| fake_signature(s, message) == *signature)
        }
        fn mac(&self, peer: NodeId, message: &[u8]) -> Option<MacTag> {
            if !self.mac_peers.contains(&peer) {
                return None;
            }
            let key = self.pair_key(self.me, peer)?;
            Some(MacTag(digest(&[b"tag", &key, message])))
        }
        fn verify_mac(&self, peer: NodeId, message: &[u8], tag: &MacTag) -> bool {
            if !self.mac_peers.contains(&peer) {
                return false;
            }
            self.pair_key(self.me, peer)
                .is_some_and(|key| MacTag(digest(&[b"tag", &key, message])) == *tag)
        }
    }

    impl crate::transcript::ViewMultiSignature for TestOnlySharedSecretKeys {
        fn sign(&self, message: &[u8]) -> crate::transcript::ViewSignature {
            let secret = self.secret(self.me).copied().unwrap_or([0; 32]);
            view_part(&secret, message)
        }
        fn aggregate(
            &self,
            signatures: &[crate::transcript::ViewSignature],
        ) -> Result<crate::transcript::ViewSignature, String> {
            let (first, rest) = signatures.split_first().ok_or("no signatures")?;
            let mut sum = first.0;
            for s in rest {
                for (a, b) in sum.iter_mut().zip(s.0.iter()) {
                    *a ^= b;
                }
            }
            Ok(crate::transcript::ViewSignature(sum))
        }
        fn verify_aggregate(
            &self,
            signers: &BTreeSet<NodeId>,
            message: &[u8],
            aggregate: &crate::transcript::ViewSignature,
        ) -> bool {
            let parts: Option<Vec<_>> = signers
                .iter()
                .map(|n| self.secret(*n).map(|s| view_part(s, message)))
                .collect();
            match parts {
                Some(parts) => self.aggregate(&parts).is_ok_and(|sum| sum == *aggregate),
                None => false,
            }
        }
    }

    /// A stand-in "signature" of 96 bytes; aggregation is XOR, so it is only as strong as the
    /// secrecy of the table, which is all a unit test needs.
    fn view_part(secret: &[u8; 32], message: &[u8]) -> crate::transcript::ViewSignature {
        let mut out = [0u8; crate::transcript::VIEW_SIGNATURE_BYTES];
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            chunk.copy_from_slice(&digest(&[b"view", &[i as u8], secret, message]));
        }
        crate::transcript::ViewSignature(out)
    }
}
