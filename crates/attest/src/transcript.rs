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
//!   as positions in a [`MemberDirectory`] the verifier already holds (BLS with proof of
//!   possession, through `stockade-crypto`'s `Membership`, real or the simulation stand-in).

use std::collections::BTreeSet;

use sha2::{Digest as _, Sha256};
use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{CpuWork, NodeId, Time};
use stockade_crypto::bls::{BlsSignature, MultiSignature, SignerBitmap};
use stockade_crypto::scheme::Membership;
use thiserror::Error;

use crate::attestation::{GroupId, SignedAttestation};
use crate::graph::AttestationGraph;
use crate::keys::NodeKeys;

/// The most attestations a path transcript holds.
pub const PATH_LEN_MAX: usize = 64;
/// The most attestations a list transcript holds.
pub const LIST_LEN_MAX: usize = 4096;
/// The most nodes a member directory (and so a bitmap) covers.
pub const DIRECTORY_NODES_MAX: usize = stockade_crypto::bls::SIGNER_BITMAP_MEMBERS_MAX;
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
    /// A directory's node list and key list differ in length, or it is too large.
    #[error("a directory needs one key per node and at most {DIRECTORY_NODES_MAX} nodes; got {nodes} nodes and {keys} keys")]
    BadDirectory {
        /// Distinct nodes given.
        nodes: usize,
        /// Keys given.
        keys: usize,
    },
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

/// The nodes whose BLS keys (each with a checked proof of possession) a verifier holds, in
/// increasing id order: bitmap positions index it.
#[derive(Clone, Debug)]
pub struct MemberDirectory {
    nodes: Vec<NodeId>,
    keys: Membership,
    /// A bitmap over the directory with no bit set, made once the size is known to fit.
    empty_bitmap: SignerBitmap,
}

impl MemberDirectory {
    /// A directory of `nodes` with `keys`, key `i` belonging to the `i`-th node in increasing id
    /// order.
    pub fn new(
        nodes: impl IntoIterator<Item = NodeId>,
        keys: Membership,
    ) -> Result<MemberDirectory, TranscriptError> {
        let nodes: Vec<NodeId> = nodes
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let bad = TranscriptError::BadDirectory {
            nodes: nodes.len(),
            keys: keys.len(),
        };
        if nodes.len() != keys.len() {
            return Err(bad);
        }
        let empty_bitmap = SignerBitmap::new(nodes.len()).ok_or(bad)?;
        Ok(MemberDirectory {
            nodes,
            keys,
            empty_bitmap,
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

    /// The position of `node`.
    pub fn position(&self, node: NodeId) -> Option<usize> {
        self.nodes.binary_search(&node).ok()
    }

    /// The keys, in position order.
    pub fn keys(&self) -> &Membership {
        &self.keys
    }

    /// The bitmap of `nodes` (those not in the directory are left out).
    pub fn bitmap(&self, nodes: &BTreeSet<NodeId>) -> SignerBitmap {
        let mut bits = self.empty_bitmap.clone();
        for node in nodes {
            if let Some(i) = self.position(*node) {
                bits.insert(i);
            }
        }
        bits
    }

    /// The nodes `bitmap` names; `None` if it ranges over another number of nodes.
    pub fn nodes_of(&self, bitmap: &SignerBitmap) -> Option<BTreeSet<NodeId>> {
        if bitmap.len() != self.nodes.len() {
            return None;
        }
        bitmap.iter().map(|i| self.nodes.get(i).copied()).collect()
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

/// The compact membership transcript: one aggregate signature over a view statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactTranscript {
    /// The group.
    pub group: GroupId,
    /// The epoch of the statement.
    pub epoch: u64,
    /// The view's members, as directory positions.
    pub members: SignerBitmap,
    /// The signers (as directory positions) and the aggregate of their signatures.
    pub multi: MultiSignature,
}

impl CompactTranscript {
    /// Aggregate members' `signatures` over `statement` into a transcript indexed by `directory`.
    /// Signatures of nodes outside the view or the directory, and repeats, are left out.
    pub fn build(
        statement: &ViewStatement,
        signatures: &[(NodeId, BlsSignature)],
        directory: &MemberDirectory,
        charge: &mut dyn FnMut(CpuWork),
    ) -> Result<CompactTranscript, TranscriptError> {
        let mut seen = BTreeSet::new();
        let mut parts: Vec<(usize, &BlsSignature)> = Vec::new();
        for (node, sig) in signatures {
            if !statement.members.contains(node) || !seen.insert(*node) {
                continue;
            }
            if let Some(i) = directory.position(*node) {
                parts.push((i, sig));
            }
        }
        let multi = directory
            .keys
            .aggregate(&parts, &mut |w| charge(w))
            .map_err(|e| TranscriptError::Aggregation(e.to_string()))?;
        Ok(CompactTranscript {
            group: statement.group,
            epoch: statement.epoch,
            members: directory.bitmap(&statement.members),
            multi,
        })
    }

    /// Check that at least `signers_min` members of the view signed it, that `subject` is a
    /// member, and that the aggregate verifies. Returns the proven statement.
    pub fn verify(
        &self,
        subject: NodeId,
        signers_min: usize,
        directory: &MemberDirectory,
        charge: &mut dyn FnMut(CpuWork),
    ) -> Result<ViewStatement, TranscriptError> {
        let bad_bitmap = TranscriptError::BadBitmap {
            directory_nodes: directory.len(),
        };
        let members = directory
            .nodes_of(&self.members)
            .ok_or(bad_bitmap.clone())?;
        let signers = directory
            .nodes_of(&self.multi.signers)
            .ok_or(bad_bitmap.clone())?;
        if !signers.is_subset(&members) {
            return Err(bad_bitmap);
        }
        if !members.contains(&subject) {
            return Err(TranscriptError::NotAMember(subject));
        }
        let required = signers_min.max(1);
        if signers.len() < required {
            return Err(TranscriptError::TooFewSigners {
                signers: signers.len(),
                required,
            });
        }
        let statement = ViewStatement {
            group: self.group,
            epoch: self.epoch,
            members,
        };
        directory
            .keys
            .verify(&statement.signing_bytes(), &self.multi, &mut |w| charge(w))
            .map_err(|_| TranscriptError::BadAggregate(signers.len()))?;
        Ok(statement)
    }
}

impl Wire for CompactTranscript {
    fn encode(&self, out: &mut Vec<u8>) {
        self.group.encode(out);
        self.epoch.encode(out);
        self.members.encode(out);
        self.multi.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CompactTranscript {
            group: GroupId::decode(r)?,
            epoch: u64::decode(r)?,
            members: SignerBitmap::decode(r)?,
            multi: MultiSignature::decode(r)?,
        })
    }
}

mod bench;

pub use bench::{bench_transcript, TranscriptBench, BENCH_ITERATIONS};

#[cfg(test)]
mod tests;
