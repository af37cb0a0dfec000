//! What LA-group nodes send each other, and its bounded wire encoding.
//!
//! Paper 000, section "Views and link-state announcements" and Fig. 2: a joining node sends an
//! attestation to an existing member; members disseminate attestations with link-state
//! announcements; a new member receives a snapshot of the whole view. Probes are the liveness pings
//! of the simplest monitor (section "Discussion: stateful monitoring": "the simplest type of
//! attestation expresses reachability: the node continues to respond to application-level pings").

use stockade_core::wire::{put_vec, DecodeError, Reader, Wire};

use crate::attestation::{GroupId, SignedAttestation};
use crate::keys::MacTag;
use stockade_crypto::bls::BlsSignature;

/// The most attestations one announcement carries; larger sets are split across messages. One
/// signed attestation encodes to at most 365 bytes (with [`crate::attestation::INFO_BYTES_MAX`] of
/// info), so a full announcement stays under the 64 KiB message limit.
pub const ANNOUNCE_ITEMS_MAX: usize = 128;

/// Whether an announcement carries only changes or the sender's whole view.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AnnounceKind {
    /// Attestations that changed since the last announcement (paper 000: link-state updates).
    Changes,
    /// Every live attestation the sender holds, for a node that just joined (paper 000, section
    /// 2.2: new nodes "immediately receive a snapshot of the attestation graph").
    Snapshot,
}

/// One message between LA-group nodes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GroupMessage {
    /// A node asks a member to let it join: it already attests the member (paper 000, Fig. 2b).
    JoinRequest {
        /// The group to join.
        group: GroupId,
        /// The joiner's attestation of the member it asks.
        attestation: SignedAttestation,
    },
    /// Link-state announcement.
    Announce {
        /// The group.
        group: GroupId,
        /// Changes or a snapshot.
        kind: AnnounceKind,
        /// The attestations, each signed by its attester (at most [`ANNOUNCE_ITEMS_MAX`]).
        attestations: Vec<SignedAttestation>,
        /// The sender's MAC over [`announce_mac_bytes`] when it negotiated a key with the receiver.
        mac: Option<MacTag>,
    },
    /// A monitor's liveness probe.
    Probe {
        /// The group the monitoring is for.
        group: GroupId,
        /// Echoed in the reply.
        nonce: u64,
    },
    /// The answer to a probe.
    ProbeReply {
        /// The group of the probe.
        group: GroupId,
        /// The probe's nonce.
        nonce: u64,
    },
    /// A member collecting a compact transcript asks the others to sign "in `group` at `epoch`
    /// the view has digest `view_digest`" (section "Compact signature representation").
    ViewSignRequest {
        /// The group.
        group: GroupId,
        /// The epoch of the statement.
        epoch: u64,
        /// The digest of the collector's view.
        view_digest: [u8; 32],
    },
    /// A member's signature over the statement of a [`GroupMessage::ViewSignRequest`], sent only
    /// when its own view has the same digest.
    ViewSignShare {
        /// The group.
        group: GroupId,
        /// The epoch of the statement.
        epoch: u64,
        /// The digest signed.
        view_digest: [u8; 32],
        /// The member's signature.
        signature: BlsSignature,
    },
}

/// The bytes an announcement's MAC covers: everything but the MAC.
pub fn announce_mac_bytes(
    group: &GroupId,
    kind: AnnounceKind,
    attestations: &[SignedAttestation],
) -> Vec<u8> {
    let mut out = b"stockade-attest/announce/v1".to_vec();
    group.encode(&mut out);
    out.push(kind_tag(kind));
    put_vec(&mut out, attestations);
    out
}

fn kind_tag(kind: AnnounceKind) -> u8 {
    match kind {
        AnnounceKind::Changes => 0,
        AnnounceKind::Snapshot => 1,
    }
}

const TAG_JOIN: u8 = 0;
const TAG_ANNOUNCE: u8 = 1;
const TAG_PROBE: u8 = 2;
const TAG_PROBE_REPLY: u8 = 3;
const TAG_VIEW_SIGN_REQUEST: u8 = 4;
const TAG_VIEW_SIGN_SHARE: u8 = 5;

impl Wire for GroupMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            GroupMessage::JoinRequest { group, attestation } => {
                out.push(TAG_JOIN);
                group.encode(out);
                attestation.encode(out);
            }
            GroupMessage::Announce {
                group,
                kind,
                attestations,
                mac,
            } => {
                out.push(TAG_ANNOUNCE);
                group.encode(out);
                out.push(kind_tag(*kind));
                put_vec(out, attestations);
                mac.encode(out);
            }
            GroupMessage::Probe { group, nonce } => {
                out.push(TAG_PROBE);
                group.encode(out);
                nonce.encode(out);
            }
            GroupMessage::ProbeReply { group, nonce } => {
                out.push(TAG_PROBE_REPLY);
                group.encode(out);
                nonce.encode(out);
            }
            GroupMessage::ViewSignRequest {
                group,
                epoch,
                view_digest,
            } => {
                out.push(TAG_VIEW_SIGN_REQUEST);
                group.encode(out);
                epoch.encode(out);
                view_digest.encode(out);
            }
            GroupMessage::ViewSignShare {
                group,
                epoch,
                view_digest,
                signature,
            } => {
                out.push(TAG_VIEW_SIGN_SHARE);
                group.encode(out);
                epoch.encode(out);
                view_digest.encode(out);
                signature.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            TAG_JOIN => Ok(GroupMessage::JoinRequest {
                group: GroupId::decode(r)?,
                attestation: SignedAttestation::decode(r)?,
            }),
            TAG_ANNOUNCE => {
                let group = GroupId::decode(r)?;
                let kind = match r.u8()? {
                    0 => AnnounceKind::Changes,
                    1 => AnnounceKind::Snapshot,
                    t => {
                        return Err(DecodeError::UnknownTag {
                            what: "AnnounceKind",
                            tag: t as u64,
                        })
                    }
                };
                let attestations = r.vec_of("announced attestations", ANNOUNCE_ITEMS_MAX)?;
                let mac = Option::<MacTag>::decode(r)?;
                Ok(GroupMessage::Announce {
                    group,
                    kind,
                    attestations,
                    mac,
                })
            }
            TAG_PROBE => Ok(GroupMessage::Probe {
                group: GroupId::decode(r)?,
                nonce: u64::decode(r)?,
            }),
            TAG_PROBE_REPLY => Ok(GroupMessage::ProbeReply {
                group: GroupId::decode(r)?,
                nonce: u64::decode(r)?,
            }),
            TAG_VIEW_SIGN_REQUEST => Ok(GroupMessage::ViewSignRequest {
                group: GroupId::decode(r)?,
                epoch: u64::decode(r)?,
                view_digest: r.array()?,
            }),
            TAG_VIEW_SIGN_SHARE => Ok(GroupMessage::ViewSignShare {
                group: GroupId::decode(r)?,
                epoch: u64::decode(r)?,
                view_digest: r.array()?,
                signature: BlsSignature::decode(r)?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "GroupMessage",
                tag: t as u64,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::{Attestation, GROUP_ID_BYTES};
    use crate::keys::Signature;
    use stockade_core::{DecodeLimits, NodeId, Time};

    fn sample(i: u32) -> SignedAttestation {
        SignedAttestation {
            attestation: Attestation {
                group: GroupId([1; GROUP_ID_BYTES]),
                attester: NodeId(i),
                attestee: NodeId(i + 1),
                info: vec![],
                issued: Time::ZERO,
                expires: Time::from_secs(1),
            },
            signature: Signature([i as u8; 64]),
        }
    }

    #[test]
    fn every_message_roundtrips() {
        let group = GroupId([3; GROUP_ID_BYTES]);
        let all = [
            GroupMessage::JoinRequest {
                group,
                attestation: sample(1),
            },
            GroupMessage::Announce {
                group,
                kind: AnnounceKind::Snapshot,
                attestations: vec![sample(1), sample(2)],
                mac: Some(MacTag([5; 32])),
            },
            GroupMessage::Announce {
                group,
                kind: AnnounceKind::Changes,
                attestations: vec![],
                mac: None,
            },
            GroupMessage::Probe { group, nonce: 9 },
            GroupMessage::ProbeReply { group, nonce: 9 },
            GroupMessage::ViewSignRequest {
                group,
                epoch: 4,
                view_digest: [6; 32],
            },
            GroupMessage::ViewSignShare {
                group,
                epoch: 4,
                view_digest: [6; 32],
                signature: BlsSignature([8; 96]),
            },
        ];
        for m in all {
            assert_eq!(
                GroupMessage::from_bytes(&m.to_bytes(), DecodeLimits::MESSAGE),
                Ok(m)
            );
        }
    }

    #[test]
    fn announcement_item_bound_is_enforced() {
        let group = GroupId([3; GROUP_ID_BYTES]);
        let attestations = (0..ANNOUNCE_ITEMS_MAX as u32 + 1).map(sample).collect();
        let m = GroupMessage::Announce {
            group,
            kind: AnnounceKind::Changes,
            attestations,
            mac: None,
        };
        let limits = DecodeLimits {
            input_bytes_max: 1 << 20,
            alloc_bytes_max: 1 << 24,
            depth_max: 8,
        };
        assert!(matches!(
            GroupMessage::from_bytes(&m.to_bytes(), limits),
            Err(DecodeError::TooLong {
                what: "announced attestations",
                ..
            })
        ));
        assert!(matches!(
            GroupMessage::from_bytes(&[7], limits),
            Err(DecodeError::UnknownTag { .. })
        ));
    }
}

#[cfg(test)]
mod decode_fuzz_tests {
    //! Every wire type of the crate decodes arbitrary bytes without panicking (DESIGN.md section 8).

    use proptest::prelude::*;
    use stockade_core::{DecodeLimits, Wire};

    use super::GroupMessage;
    use crate::transcript::{AttestationListTranscript, CompactTranscript, PathTranscript};

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let limits = DecodeLimits::MESSAGE;
            let _ = GroupMessage::from_bytes(&bytes, limits);
            let _ = PathTranscript::from_bytes(&bytes, limits);
            let _ = AttestationListTranscript::from_bytes(&bytes, limits);
            let _ = CompactTranscript::from_bytes(&bytes, limits);
        }

        #[test]
        fn announcements_decode_after_any_single_byte_change(flip in 0usize..400, value in any::<u8>()) {
            let keys = crate::keys::test_only::node_keys(2);
            let attestation = crate::attestation::Attestation {
                group: crate::attestation::GroupId([1; 20]),
                attester: stockade_core::NodeId(0),
                attestee: stockade_core::NodeId(1),
                info: vec![7; 9],
                issued: stockade_core::Time::ZERO,
                expires: stockade_core::Time::from_secs(1),
            }
            .sign(&keys[0]);
            let message = GroupMessage::Announce {
                group: crate::attestation::GroupId([1; 20]),
                kind: super::AnnounceKind::Changes,
                attestations: vec![attestation.clone(), attestation],
                mac: None,
            };
            let mut bytes = message.to_bytes();
            let at = flip % bytes.len();
            bytes[at] = value;
            let _ = GroupMessage::from_bytes(&bytes, DecodeLimits::MESSAGE);
        }
    }
}
