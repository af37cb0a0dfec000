//! Merkle-tree batch signing: one signature covers a batch of messages through a Merkle root,
//! and each message can then be verified alone with its sibling path.
//!
//! Paper 004, section 5: "each server makes use of a Merkle Tree ... to sign multiple messages at
//! once", for both local and global protocol messages; PRIME.md: "One signature covers a batch of
//! pending outgoing messages through a Merkle root ... each message carries its sibling digests."
//!
//! Construction (own SHA-256 tree, every hash domain-separated):
//! - leaf `i` = `hash_parts("stockade/merkle/leaf", [message_i])`;
//! - inner node = `hash_parts("stockade/merkle/node", [left, right])`, so no leaf equals a node;
//! - a level of odd width promotes its last node unchanged to the next level (no duplication, so
//!   `[a, b, c]` and `[a, b, c, c]` have different shapes and roots);
//! - the signed digest is `hash_parts("stockade/merkle/root", [leaf_count, root])`: binding the
//!   leaf count fixes the tree's shape, so `(leaf_index, leaf_count)` determines exactly which
//!   levels have a sibling, and a proof with a path of any other length is refused.
//!
//! Costs to charge: `MerkleLeaf` per message batched or verified, plus one signature (or one
//! verification, unless the caller caches verified batch digests from [`BatchProof::signed_digest`]).

use stockade_core::wire::{DecodeError, Reader, Wire};
use thiserror::Error;

use crate::ed25519::{Signature, SigningKey, VerifyingKey};
use crate::hash::{hash_parts, Digest};

/// The most messages one batch may hold.
pub const BATCH_LEAVES_MAX: usize = 1 << 16;
/// The longest sibling path (the depth of a tree of [`BATCH_LEAVES_MAX`] leaves).
pub const PATH_LEN_MAX: usize = 16;

/// Why a batch could not be signed or a message could not be verified in its batch.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum MerkleError {
    /// A batch needs at least one message.
    #[error("cannot sign an empty batch")]
    EmptyBatch,
    /// The batch has more messages than a proof can address.
    #[error("batch of {len} messages exceeds the limit of {max}; split it")]
    BatchTooLarge {
        /// Messages given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The proof's leaf index is not inside its batch.
    #[error("leaf index {index} is outside a batch of {count}")]
    IndexOutOfRange {
        /// The index claimed.
        index: u32,
        /// The batch size claimed.
        count: u32,
    },
    /// The sibling path does not have the length the batch's shape requires.
    #[error("sibling path has {found} digests, the batch shape requires {expected}")]
    PathLengthMismatch {
        /// Digests the shape requires.
        expected: usize,
        /// Digests given.
        found: usize,
    },
    /// The root signature does not verify for this message and path.
    #[error("batch signature does not verify for this message and path")]
    InvalidSignature,
}

fn leaf_hash(message: &[u8]) -> Digest {
    hash_parts(b"stockade/merkle/leaf", &[message])
}

fn node_hash(left: &Digest, right: &Digest) -> Digest {
    hash_parts(b"stockade/merkle/node", &[&left.0, &right.0])
}

fn signed_root(leaf_count: u32, root: &Digest) -> Digest {
    hash_parts(
        b"stockade/merkle/root",
        &[&leaf_count.to_le_bytes(), &root.0],
    )
}

/// How many siblings the path of leaf `index` in a batch of `count` has (odd last nodes have none).
fn path_len(mut index: usize, mut width: usize) -> usize {
    let mut len = 0;
    while width > 1 {
        if !(index == width - 1 && width % 2 == 1) {
            len += 1;
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    len
}

/// A Merkle tree over a batch's leaf digests, every level kept so paths can be read off.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves; the last level is the root alone.
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Build the tree over `messages` (1 to [`BATCH_LEAVES_MAX`] of them).
    pub fn build<M: AsRef<[u8]>>(messages: &[M]) -> Result<MerkleTree, MerkleError> {
        if messages.is_empty() {
            return Err(MerkleError::EmptyBatch);
        }
        if messages.len() > BATCH_LEAVES_MAX {
            return Err(MerkleError::BatchTooLarge {
                len: messages.len(),
                max: BATCH_LEAVES_MAX,
            });
        }
        let mut levels = vec![messages
            .iter()
            .map(|m| leaf_hash(m.as_ref()))
            .collect::<Vec<_>>()];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [promoted] => *promoted,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(next);
        }
        Ok(MerkleTree { levels })
    }

    /// Messages in the batch.
    pub fn leaf_count(&self) -> u32 {
        self.levels[0].len() as u32
    }

    /// The tree's root.
    pub fn root(&self) -> Digest {
        self.levels[self.levels.len() - 1][0]
    }

    /// The digest a batch signature signs: the root bound to the leaf count.
    pub fn signed_digest(&self) -> Digest {
        signed_root(self.leaf_count(), &self.root())
    }

    /// The sibling path of leaf `index`, bottom up (`None` out of range).
    pub fn path(&self, index: usize) -> Option<Vec<Digest>> {
        if index >= self.levels[0].len() {
            return None;
        }
        let mut siblings = Vec::with_capacity(PATH_LEN_MAX);
        let mut position = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(position ^ 1) {
                siblings.push(*sibling);
            }
            position /= 2;
        }
        Some(siblings)
    }
}

/// What travels with one message of a signed batch: the batch signature, the message's position
/// and the sibling digests from its leaf to the root.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BatchProof<S = Signature> {
    /// The signature over the batch's [`MerkleTree::signed_digest`].
    pub signature: S,
    /// The message's position in the batch.
    pub leaf_index: u32,
    /// Messages in the batch.
    pub leaf_count: u32,
    /// Sibling digests, bottom up.
    pub siblings: Vec<Digest>,
}

impl<S> BatchProof<S> {
    /// Recompute the digest the batch signature must cover, if `message` sits where the proof
    /// says. Callers that verify many messages of one batch cache the verified digests and skip
    /// the signature check for the rest.
    pub fn signed_digest(&self, message: &[u8]) -> Result<Digest, MerkleError> {
        let (index, count) = (self.leaf_index as usize, self.leaf_count as usize);
        if count == 0 || count > BATCH_LEAVES_MAX || index >= count {
            return Err(MerkleError::IndexOutOfRange {
                index: self.leaf_index,
                count: self.leaf_count,
            });
        }
        let expected = path_len(index, count);
        if self.siblings.len() != expected {
            return Err(MerkleError::PathLengthMismatch {
                expected,
                found: self.siblings.len(),
            });
        }
        let (mut node, mut position, mut width) = (leaf_hash(message), index, count);
        let mut siblings = self.siblings.iter();
        while width > 1 {
            let promoted = position == width - 1 && width % 2 == 1;
            if !promoted {
                let sibling = siblings.next().ok_or(MerkleError::PathLengthMismatch {
                    expected,
                    found: self.siblings.len(),
                })?;
                node = if position % 2 == 0 {
                    node_hash(&node, sibling)
                } else {
                    node_hash(sibling, &node)
                };
            }
            position /= 2;
            width = width.div_ceil(2);
        }
        Ok(signed_root(self.leaf_count, &node))
    }
}

/// Build the tree over `messages`, sign its digest once with `sign`, and return one proof per
/// message (in order). The scheme-independent core of [`sign_batch`].
pub fn sign_batch_with<M: AsRef<[u8]>, S: Clone>(
    messages: &[M],
    sign: impl FnOnce(&Digest) -> S,
) -> Result<Vec<BatchProof<S>>, MerkleError> {
    let tree = MerkleTree::build(messages)?;
    let signature = sign(&tree.signed_digest());
    Ok((0..messages.len())
        .map(|i| BatchProof {
            signature: signature.clone(),
            leaf_index: i as u32,
            leaf_count: tree.leaf_count(),
            siblings: tree.path(i).unwrap_or_default(),
        })
        .collect())
}

/// Sign a batch of messages with one Ed25519 signature; one proof per message, in order.
pub fn sign_batch<M: AsRef<[u8]>>(
    key: &SigningKey,
    messages: &[M],
) -> Result<Vec<BatchProof>, MerkleError> {
    sign_batch_with(messages, |digest| key.sign(&digest.0))
}

/// Verify one message of a batch signed by `key`, alone.
pub fn verify_in_batch(
    key: &VerifyingKey,
    message: &[u8],
    proof: &BatchProof,
) -> Result<(), MerkleError> {
    let digest = proof.signed_digest(message)?;
    key.verify(&digest.0, &proof.signature)
        .map_err(|_| MerkleError::InvalidSignature)
}

impl<S: Wire> Wire for BatchProof<S> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.signature.encode(out);
        self.leaf_index.encode(out);
        self.leaf_count.encode(out);
        stockade_core::wire::put_vec(out, &self.siblings);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signature = S::decode(r)?;
        let leaf_index = u32::decode(r)?;
        let leaf_count = u32::decode(r)?;
        if leaf_count == 0 || leaf_count as usize > BATCH_LEAVES_MAX || leaf_index >= leaf_count {
            return Err(DecodeError::Invalid("merkle batch position"));
        }
        let siblings = r.vec_of("merkle sibling path", PATH_LEN_MAX)?;
        Ok(BatchProof {
            signature,
            leaf_index,
            leaf_count,
            siblings,
        })
    }
    fn wire_len(&self) -> usize {
        self.signature.wire_len()
            + 8
            + stockade_core::wire::varint_len(self.siblings.len() as u64)
            + 32 * self.siblings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::DecodeLimits;

    fn messages(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("update {i}").into_bytes()).collect()
    }

    fn key() -> SigningKey {
        SigningKey::for_simulation(4, 0)
    }

    #[test]
    fn every_message_of_every_batch_size_verifies_alone() {
        let pk = key().verifying_key();
        for n in [1, 2, 3, 5, 7, 8, 64, 65] {
            let msgs = messages(n);
            let proofs = sign_batch(&key(), &msgs).expect("signs");
            assert_eq!(proofs.len(), n);
            for (m, p) in msgs.iter().zip(&proofs) {
                assert_eq!(
                    verify_in_batch(&pk, m, p),
                    Ok(()),
                    "batch {n}, leaf {}",
                    p.leaf_index
                );
                assert!(p.siblings.len() <= PATH_LEN_MAX);
            }
        }
    }

    #[test]
    fn wrong_message_key_or_signature_fail() {
        let msgs = messages(5);
        let proofs = sign_batch(&key(), &msgs).expect("signs");
        let pk = key().verifying_key();
        assert_eq!(
            verify_in_batch(&pk, b"update 9", &proofs[0]),
            Err(MerkleError::InvalidSignature)
        );
        assert_eq!(
            verify_in_batch(&pk, &msgs[1], &proofs[0]),
            Err(MerkleError::InvalidSignature)
        );
        let other = SigningKey::for_simulation(4, 1).verifying_key();
        assert_eq!(
            verify_in_batch(&other, &msgs[0], &proofs[0]),
            Err(MerkleError::InvalidSignature)
        );
        let mut tampered = proofs[0].clone();
        tampered.signature.0[0] ^= 1;
        assert_eq!(
            verify_in_batch(&pk, &msgs[0], &tampered),
            Err(MerkleError::InvalidSignature)
        );
    }

    #[test]
    fn tampered_paths_and_positions_fail() {
        let msgs = messages(6);
        let proofs = sign_batch(&key(), &msgs).expect("signs");
        let pk = key().verifying_key();
        let mut flipped = proofs[2].clone();
        flipped.siblings[1].0[0] ^= 1;
        assert_eq!(
            verify_in_batch(&pk, &msgs[2], &flipped),
            Err(MerkleError::InvalidSignature)
        );
        let mut moved = proofs[2].clone();
        moved.leaf_index = 3;
        assert_eq!(
            verify_in_batch(&pk, &msgs[2], &moved),
            Err(MerkleError::InvalidSignature)
        );
        let mut outside = proofs[2].clone();
        outside.leaf_index = 6;
        assert_eq!(
            verify_in_batch(&pk, &msgs[2], &outside),
            Err(MerkleError::IndexOutOfRange { index: 6, count: 6 })
        );
        let mut resized = proofs[2].clone();
        resized.leaf_count = 7;
        assert_eq!(
            verify_in_batch(&pk, &msgs[2], &resized),
            Err(MerkleError::InvalidSignature)
        );
        let mut longer = proofs[2].clone();
        longer.siblings.push(Digest::default());
        assert_eq!(
            verify_in_batch(&pk, &msgs[2], &longer),
            Err(MerkleError::PathLengthMismatch {
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn promoted_node_is_not_confused_with_a_duplicate() {
        let three = MerkleTree::build(&messages(3)).expect("tree");
        let mut four_msgs = messages(3);
        four_msgs.push(four_msgs[2].clone());
        let four = MerkleTree::build(&four_msgs).expect("tree");
        assert_ne!(three.root(), four.root());
        // The last leaf of three has a shorter path than any leaf of four.
        assert_eq!(three.path(2).map(|p| p.len()), Some(1));
        assert_eq!(four.path(3).map(|p| p.len()), Some(2));
        // A single-leaf batch has an empty path.
        assert_eq!(
            MerkleTree::build(&messages(1)).expect("tree").path(0),
            Some(vec![])
        );
    }

    #[test]
    fn batch_size_bounds() {
        let none: Vec<Vec<u8>> = Vec::new();
        assert_eq!(
            sign_batch(&key(), &none).map(|p| p.len()),
            Err(MerkleError::EmptyBatch)
        );
        let too_many = vec![[0u8; 0]; BATCH_LEAVES_MAX + 1];
        assert_eq!(
            MerkleTree::build(&too_many).map(|t| t.leaf_count()),
            Err(MerkleError::BatchTooLarge {
                len: BATCH_LEAVES_MAX + 1,
                max: BATCH_LEAVES_MAX
            })
        );
        let full = MerkleTree::build(&too_many[..BATCH_LEAVES_MAX]).expect("at the limit");
        assert_eq!(
            full.path(BATCH_LEAVES_MAX - 1).map(|p| p.len()),
            Some(PATH_LEN_MAX)
        );
    }

    #[test]
    fn proof_wire_roundtrip_and_bounds() {
        let proofs = sign_batch(&key(), &messages(9)).expect("signs");
        for p in &proofs {
            let bytes = p.to_bytes();
            assert_eq!(bytes.len(), p.wire_len());
            assert_eq!(
                BatchProof::<Signature>::from_bytes(&bytes, DecodeLimits::MESSAGE).as_ref(),
                Ok(p)
            );
        }
        let mut bad = proofs[0].clone();
        bad.leaf_index = 9;
        assert_eq!(
            BatchProof::<Signature>::from_bytes(&bad.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::Invalid("merkle batch position"))
        );
        let mut long = proofs[0].clone();
        long.siblings = vec![Digest::default(); PATH_LEN_MAX + 1];
        assert!(matches!(
            BatchProof::<Signature>::from_bytes(&long.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn proofs_verify_only_their_own_message(n in 1usize..40, pick in any::<usize>(), other in any::<usize>()) {
            let msgs = messages(n);
            let tree = MerkleTree::build(&msgs).expect("tree");
            let proofs = sign_batch_with(&msgs, |d| *d).expect("signs");
            let (i, j) = (pick % n, other % n);
            prop_assert_eq!(proofs[i].signed_digest(&msgs[i]), Ok(tree.signed_digest()));
            prop_assert_eq!(proofs[i].siblings.len(), path_len(i, n));
            if i != j {
                prop_assert_ne!(proofs[i].signed_digest(&msgs[j]), Ok(tree.signed_digest()));
            }
        }
    }
}
