//! Membership transcripts: proofs of group membership a non-member checks with no third party.
//!
//! Paper 000, section "Attestations and membership transcripts": nodes "demonstrate attestations
//! to non-members with membership transcripts"; a transcript is made of attestations, and
//! checking one means checking that the signatures are valid and the attestations not expired.
//! Section "Compact signature representation": with multi-signatures the members' signatures
//! aggregate into one "of length equal to a single signature", verified once against the
//! aggregate of the signers' public keys.
//!
//! Three forms:
//! - [`PathTranscript`]: the attestations along one path from a node the verifier trusts (the
//!   anchor) to the subject;
//! - [`AttestationListTranscript`]: every attestation of a view, one signature each (the naive
//!   form the paper's compact representation improves on);
//! - [`CompactTranscript`]: one multi-signature by the members over a common statement
//!   `(group, epoch, digest of the view)`, with bitmaps naming the view's members and the signers
//!   as positions in a [`MemberDirectory`] the verifier already holds.

use std::collections::BTreeSet;

use sha2::{Digest as _, Sha256};
use stockade_core::wire::{put_bytes, DecodeError, Reader, Wire};
use stockade_core::{NodeId, Time};
use thiserror::Error;

use crate::attestation::{GroupId, SignedAttestation};
use crate::graph::AttestationGraph;
use crate::keys::NodeKeys;

/// The most attestations a path transcript holds.
pub const PATH_LEN_MAX: usize = 64;
/// The most attestations a list transcript holds.
pub const LIST_LEN_MAX: usize = 4096;
/// The most nodes a member directory (and so a bitmap) covers.
pub const DIRECTORY_NODES_MAX: usize = 4096;
/// Bytes in one aggregate view signature (a BLS12-381 G2 signature).
pub const VIEW_SIGNATURE_BYTES: usize = 96;
/// Domain separation for the view statement members sign.
const VIEW_DOMAIN: &[u8] = b"stockade-attest/view/v1";

/// Why a transcript does not prove membership.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TranscriptError {
    /// A path transcript with no attestation.
    #[error("the transcript holds no attestation")]
    Empty,
    /// An attestation is about another group.
    #[error("an attestation is about {found}, not {expected}")]
    WrongGroup {
        /// The group asked about.
        expected: GroupId,
        /// The group found.
        found: GroupId,
    },
    /// An attestation expired.
    #[error("the attestation {attester} -> {attestee} expired")]
    Expired {
        /// Attester.
        attester: NodeId,
        /// Attestee.
        attestee: NodeId,
    },
    /// A signature does not verify.
    #[error("the signature of {attester} on its attestation of {attestee} does not verify")]
    BadSignature {
        /// Attester.
        attester: NodeId,
        /// Attestee.
        attestee: NodeId,
    },
    /// The path does not start at the anchor, is broken, revisits a node, or misses the subject.
    #[error("the attestations do not form a path from {anchor} to {subject}")]
    NotAPath {
        /// Where the path must start.
        anchor: NodeId,
        /// Where it must end.
        subject: NodeId,
    },
    /// The subject is not among the view's members.
    #[error("{0} is not a member of the view the transcript proves")]
    NotAMember(NodeId),
    /// A bitmap does not match the verifier's directory, or names a signer outside the view.
    #[error(
        "the transcript's bitmaps do not fit the verifier's directory of {directory_nodes} nodes"
    )]
    BadBitmap {
        /// Nodes in the verifier's directory.
        directory_nodes: usize,
    },
    /// Fewer members signed than the verifier requires.
    #[error("{signers} members signed, the verifier requires {required}")]
    TooFewSigners {
        /// How many signed.
        signers: usize,
        /// How many are required.
        required: usize,
    },
    /// The aggregate signature does not verify under the signers' keys.
    #[error("the aggregate signature does not verify under the {0} signers' keys")]
    BadAggregate(usize),
    /// No signatures were given to aggregate, or the scheme refused them.
    #[error("cannot aggregate: {0}")]
    Aggregation(String),
}

/// Check one attestation of a transcript: group, expiry, signature.
fn check_attestation(
    signed: &SignedAttestation,
    group: GroupId,
    now: Time,
    keys: &dyn NodeKeys,
) -> Result<(), TranscriptError> {
    let a = &signed.attestation;
    let (attester, attestee) = (a.attester, a.attestee);
    if a.group != group {
        return Err(TranscriptError::WrongGroup {
            expected: group,
            found: a.group,
        });
    }
    if !a.is_live(now) {
        return Err(TranscriptError::Expired { attester, attestee });
    }
    if !signed.signature_valid(keys) {
        return Err(TranscriptError::BadSignature { attester, attestee });
    }
    Ok(())
}

/// The attestations along one path from an anchor to the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTranscript {
    /// Hop by hop: the first is by the anchor, each next one by the previous attestee, the last
    /// about the subject.
    pub attestations: Vec<SignedAttestation>,
}

impl PathTranscript {
    /// The transcript for `path` (anchor first, subject last), taking each hop's attestation from
    /// `held`; `None` when a hop has no attestation or the path is too long.
    pub fn for_path(held: &[SignedAttestation], path: &[NodeId]) -> Option<PathTranscript> {
        if path.len() < 2 || path.len() > PATH_LEN_MAX + 1 {
            return None;
        }
        let attestations = path
            .windows(2)
            .map(|hop| held.iter().find(|s| s.link() == (hop[0], hop[1])).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(PathTranscript { attestations })
    }

    /// Check that this is a live, validly signed attestation path from `anchor` to `subject` in
    /// `group`.
    pub fn verify(
        &self,
        group: GroupId,
        anchor: NodeId,
        subject: NodeId,
        now: Time,
        keys: &dyn NodeKeys,
    ) -> Result<(), TranscriptError> {
        let not_a_path = TranscriptError::NotAPath { anchor, subject };
        if self.attestations.is_empty() {
            return Err(TranscriptError::Empty);
        }
        if self.attestations.len() > PATH_LEN_MAX {
            return Err(not_a_path);
        }
        // Structure first: it is cheap, and a broken chain needs no signature checks.
        let mut at = anchor;
        let mut visited = BTreeSet::from([anchor]);
        for s in &self.attestations {
            let (attester, attestee) = s.link();
            if attester != at || !visited.insert(attestee) {
                return Err(not_a_path);
            }
            at = attestee;
        }
        if at != subject {
            return Err(not_a_path);
        }
        for s in &self.attestations {
            check_attestation(s, group, now, keys)?;
        }
        Ok(())
    }
}

impl Wire for PathTranscript {
    fn encode(&self, out: &mut Vec<u8>) {
        self.attestations.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathTranscript {
            attestations: r.vec_of("path transcript", PATH_LEN_MAX)?,
        })
    }
}

/// Every attestation of a view, each with its own signature (the naive transcript).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationListTranscript {
    /// The attestations.
    pub attestations: Vec<SignedAttestation>,
}

impl AttestationListTranscript {
    /// Check every attestation, then that `subject` is reachable from `anchor` along them.
    /// Returns the view of `anchor` the transcript proves.
    pub fn verify(
        &self,
        group: GroupId,
        anchor: NodeId,
        subject: NodeId,
        now: Time,
        keys: &dyn NodeKeys,
    ) -> Result<BTreeSet<NodeId>, TranscriptError> {
        for s in &self.attestations {
            check_attestation(s, group, now, keys)?;
        }
        let mut graph = AttestationGraph::from_edges(self.attestations.iter().map(|s| {
            let (a, b) = s.link();
            (a, b, crate::graph::UNIT_COST)
        }));
        graph.add_node(anchor);
        let view = graph.reachable_from(anchor);
        if !view.contains(&subject) {
            return Err(TranscriptError::NotAMember(subject));
        }
        Ok(view)
    }
}

impl Wire for AttestationListTranscript {
    fn encode(&self, out: &mut Vec<u8>) {
        self.attestations.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AttestationListTranscript {
            attestations: r.vec_of("attestation list", LIST_LEN_MAX)?,
        })
    }
}

/// The nodes whose view-signing keys a verifier knows, in a fixed order both sides share (for
/// example, the ids in increasing order): bitmap positions index it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDirectory {
    nodes: Vec<NodeId>,
}

impl MemberDirectory {
    /// A directory of `nodes` in increasing id order (duplicates dropped); `None` above
    /// [`DIRECTORY_NODES_MAX`].
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> Option<MemberDirectory> {
        let set: BTreeSet<NodeId> = nodes.into_iter().collect();
        (set.len() <= DIRECTORY_NODES_MAX).then(|| MemberDirectory {
            nodes: set.into_iter().collect(),
        })
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The bitmap of `nodes` (those not in the directory are left out).
    pub fn bitmap(&self, nodes: &BTreeSet<NodeId>) -> NodeBitmap {
        let mut bits = vec![0u8; self.nodes.len().div_ceil(8)];
        for (i, id) in self.nodes.iter().enumerate() {
            if nodes.contains(id) {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        NodeBitmap(bits)
    }

    /// The nodes `bitmap` names; `None` if its length does not fit the directory or it sets a bit
    /// past the last node.
    pub fn nodes_of(&self, bitmap: &NodeBitmap) -> Option<BTreeSet<NodeId>> {
        if bitmap.0.len() != self.nodes.len().div_ceil(8) {
            return None;
        }
        let mut out = BTreeSet::new();
        for (byte_index, byte) in bitmap.0.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    out.insert(*self.nodes.get(byte_index * 8 + bit)?);
                }
            }
        }
        Some(out)
    }
}

/// A set of positions in a [`MemberDirectory`], one bit each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeBitmap(pub Vec<u8>);

impl Wire for NodeBitmap {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, &self.0)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeBitmap(r.byte_vec(
            "node bitmap",
            DIRECTORY_NODES_MAX.div_ceil(8),
        )?))
    }
}

/// What the members of a view sign together: "in `group` at `epoch` the view is `members`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewStatement {
    /// The group.
    pub group: GroupId,
    /// A period number every member derives from its loosely synchronized clock.
    pub epoch: u64,
    /// The view's members.
    pub members: BTreeSet<NodeId>,
}

impl ViewStatement {
    /// SHA-256 of the members in increasing id order.
    pub fn view_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((self.members.len() as u64).to_le_bytes());
        for m in &self.members {
            h.update(m.0.to_le_bytes());
        }
        h.finalize().into()
    }

    /// The bytes each member signs: a domain tag, the group, the epoch, the view digest.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = VIEW_DOMAIN.to_vec();
        self.group.encode(&mut out);
        self.epoch.encode(&mut out);
        out.extend_from_slice(&self.view_digest());
        out
    }
}

/// One member's signature over a [`ViewStatement`], or the aggregate of several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewSignature(pub [u8; VIEW_SIGNATURE_BYTES]);

/// A multi-signature scheme for view statements (BLS with proof of possession in production):
/// signing with this node's key, aggregating, and verifying an aggregate against the keys of the
/// named signers.
pub trait ViewMultiSignature {
    /// This node's signature over `message`.
    fn sign(&self, message: &[u8]) -> ViewSignature;
    /// The aggregate of `signatures`, or why not.
    fn aggregate(&self, signatures: &[ViewSignature]) -> Result<ViewSignature, String>;
    /// Whether `aggregate` is the aggregate of every one of `signers`' signatures over `message`.
    fn verify_aggregate(
        &self,
        signers: &BTreeSet<NodeId>,
        message: &[u8],
        aggregate: &ViewSignature,
    ) -> bool;
}

/// The compact membership transcript: one aggregate signature over a view statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactTranscript {
    /// The group.
    pub group: GroupId,
    /// The epoch of the statement.
    pub epoch: u64,
    /// The view's members, as directory positions.
    pub members: NodeBitmap,
    /// The members that signed, as directory positions.
    pub signers: NodeBitmap,
    /// The aggregate of the signers' signatures.
    pub signature: ViewSignature,
}

impl CompactTranscript {
    /// Aggregate `signatures` (by member) over `statement` into a transcript indexed by
    /// `directory`. Signatures of nodes outside the view are ignored.
    pub fn build(
        statement: &ViewStatement,
        signatures: &[(NodeId, ViewSignature)],
        directory: &MemberDirectory,
        scheme: &dyn ViewMultiSignature,
    ) -> Result<CompactTranscript, TranscriptError> {
        let mut signers = BTreeSet::new();
        let mut parts = Vec::new();
        for (node, sig) in signatures {
            if statement.members.contains(node) && signers.insert(*node) {
                parts.push(*sig);
            }
        }
        let signature = scheme
            .aggregate(&parts)
            .map_err(TranscriptError::Aggregation)?;
        Ok(CompactTranscript {
            group: statement.group,
            epoch: statement.epoch,
            members: directory.bitmap(&statement.members),
            signers: directory.bitmap(&signers),
            signature,
        })
    }

    /// Check that at least `signers_min` members of the view signed it, that `subject` is a
    /// member, and that the aggregate verifies. Returns the proven statement.
    pub fn verify(
        &self,
        subject: NodeId,
        signers_min: usize,
        directory: &MemberDirectory,
        scheme: &dyn ViewMultiSignature,
    ) -> Result<ViewStatement, TranscriptError> {
        let bad_bitmap = TranscriptError::BadBitmap {
            directory_nodes: directory.len(),
        };
        let members = directory
            .nodes_of(&self.members)
            .ok_or(bad_bitmap.clone())?;
        let signers = directory
            .nodes_of(&self.signers)
            .ok_or(bad_bitmap.clone())?;
        if !signers.is_subset(&members) {
            return Err(bad_bitmap);
        }
        if !members.contains(&subject) {
            return Err(TranscriptError::NotAMember(subject));
        }
        if signers.len() < signers_min.max(1) {
            return Err(TranscriptError::TooFewSigners {
                signers: signers.len(),
                required: signers_min.max(1),
            });
        }
        let statement = ViewStatement {
            group: self.group,
            epoch: self.epoch,
            members,
        };
        if !scheme.verify_aggregate(&signers, &statement.signing_bytes(), &self.signature) {
            return Err(TranscriptError::BadAggregate(signers.len()));
        }
        Ok(statement)
    }
}

impl Wire for CompactTranscript {
    fn encode(&self, out: &mut Vec<u8>) {
        self.group.encode(out);
        self.epoch.encode(out);
        self.members.encode(out);
        self.signers.encode(out);
        self.signature.0.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CompactTranscript {
            group: GroupId::decode(r)?,
            epoch: u64::decode(r)?,
            members: NodeBitmap::decode(r)?,
            signers: NodeBitmap::decode(r)?,
            signature: ViewSignature(r.array()?),
        })
    }
}

#[cfg(test)]
mod tests;
