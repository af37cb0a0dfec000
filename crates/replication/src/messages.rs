//! Every Prime message and its bounded wire encoding.
//!
//! Names follow PRIME.md. Each body that a participant signs implements [`SignedBody`] with its own
//! domain; the wire form of a signed message is [`Signed`]. Every vector and byte string has a named
//! upper bound checked while decoding, before anything is allocated.

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::NodeId;

pub use crate::auth::Digest;
use crate::auth::{AuthTag, Signed, SignedBody};
use crate::config::{ParticipantId, PARTICIPANTS_MAX};

/// Largest operation inside one client update.
pub const UPDATE_OP_BYTES_MAX: usize = 16 * 1024;
/// Largest result inside one reply.
pub const REPLY_RESULT_BYTES_MAX: usize = 16 * 1024;
/// Most updates in one PO-REQUEST on the wire.
pub const UPDATES_PER_PO_REQUEST_WIRE_MAX: usize = 1024;
/// Most ack parts in one PO-ACK on the wire.
pub const ACK_PARTS_WIRE_MAX: usize = 1024;
/// Most items named in one CATCHUP-REQUEST on the wire.
pub const CATCHUP_ITEMS_WIRE_MAX: usize = 256;

/// Writes a struct's `Wire` impl: fields encoded in order, each decoded by the given function so
/// that vectors carry their own bound.
macro_rules! impl_wire {
    ($name:ident { $($field:ident : $decode:expr),* $(,)? }) => {
        impl Wire for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                $( self.$field.encode(out); )*
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.enter()?;
                let value = $name {
                    $( $field: {
                        let decode_field: fn(&mut Reader<'_>) -> Result<_, DecodeError> = $decode;
                        decode_field(r)?
                    }, )*
                };
                r.leave();
                Ok(value)
            }
            fn wire_len(&self) -> usize {
                0 $( + self.$field.wire_len() )*
            }
        }
    };
}

macro_rules! signed_body {
    ($($name:ident => $domain:literal),* $(,)?) => {
        $( impl SignedBody for $name { const DOMAIN: &'static [u8] = $domain; } )*
    };
}

/// A client, as the application names it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ClientId(pub u64);

impl Wire for ClientId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ClientId(u64::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        8
    }
}

/// One client update (PRIME.md step 1). `(incarnation, seq)` orders a client's updates: a client
/// that restarts takes a higher incarnation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Update {
    /// Who sent it.
    pub client: ClientId,
    /// The client's incarnation.
    pub incarnation: u64,
    /// The client's sequence number within the incarnation.
    pub seq: u64,
    /// Where every server sends its signed reply, if the client wants replies as messages.
    pub reply_to: Option<NodeId>,
    /// The operation, opaque to Prime.
    pub op: Vec<u8>,
}
impl_wire!(Update {
    client: Wire::decode,
    incarnation: Wire::decode,
    seq: Wire::decode,
    reply_to: Wire::decode,
    op: |r| r.byte_vec("update op", UPDATE_OP_BYTES_MAX),
});

/// PO-REQUEST: an originator's batch of its clients' updates, in its slot `po_seq` (step 2).
/// The originator is the signer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PoRequest {
    /// The originator's pre-order sequence number, from 1.
    pub po_seq: u64,
    /// The updates, executed in this order.
    pub updates: Vec<Update>,
}
impl_wire!(PoRequest {
    po_seq: Wire::decode,
    updates: |r| r.vec_of("po-request updates", UPDATES_PER_PO_REQUEST_WIRE_MAX),
});

/// One acknowledgement inside a PO-ACK (step 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AckPart {
    /// Whose PO-REQUEST.
    pub originator: ParticipantId,
    /// Its slot.
    pub po_seq: u64,
    /// The digest of the signed PO-REQUEST acknowledged.
    pub digest: Digest,
}
impl_wire!(AckPart {
    originator: Wire::decode,
    po_seq: Wire::decode,
    digest: Wire::decode
});

/// PO-ACK: the PO-REQUESTs a server received since its last PO-ACK (step 4). Each part is
/// signed on its own (one Merkle batch signature for the whole PO-ACK, each part carrying its
/// path), so that parts can be forwarded inside PO certificates.
#[derive(Clone, PartialEq, Debug)]
pub struct PoAck {
    /// The acknowledgements.
    pub parts: Vec<Signed<AckPart>>,
}
impl_wire!(PoAck {
    parts: |r| r.vec_of("po-ack parts", ACK_PARTS_WIRE_MAX)
});

/// PO-SUMMARY: the sender's cumulative pre-ordered vector (step 6).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PoSummary {
    /// Increases with every summary the sender issues.
    pub counter: u64,
    /// `cum_aru[i]`: every PO-REQUEST of originator i up to this is pre-ordered at the sender.
    pub cum_aru: Vec<u64>,
}
impl_wire!(PoSummary {
    counter: Wire::decode,
    cum_aru: |r| r.vec_of("po-summary vector", PARTICIPANTS_MAX),
});

/// A PO certificate (step 5): a PO-REQUEST and 2f+k+1 matching signed ack parts. Sent by
/// reconciliation and catch-up so that the receiver executes the certified request, never another
/// version an equivocating originator showed it.
#[derive(Clone, PartialEq, Debug)]
pub struct PoCertificate {
    /// The request.
    pub request: Signed<PoRequest>,
    /// Matching acks from distinct participants.
    pub acks: Vec<Signed<AckPart>>,
}
impl_wire!(PoCertificate {
    request: Wire::decode,
    acks: |r| r.vec_of("po certificate acks", PARTICIPANTS_MAX),
});

/// One signed summary per participant, `None` where none is known (steps 7 and 8).
pub type SummaryRow = Vec<Option<Signed<PoSummary>>>;

fn decode_summary_row(r: &mut Reader<'_>) -> Result<SummaryRow, DecodeError> {
    r.vec_of("summary matrix", PARTICIPANTS_MAX)
}

/// SUMMARY-MATRIX: the latest summary a non-leader holds from every participant, sent to the leader
/// (step 7). Not signed itself: each summary inside is.
#[derive(Clone, PartialEq, Debug)]
pub struct SummaryMatrix {
    /// Indexed by participant.
    pub summaries: SummaryRow,
}
impl_wire!(SummaryMatrix {
    summaries: decode_summary_row
});

/// PRE-PREPARE: the leader's proposal for global slot `seq` (step 8). `last_executed` of PRIME.md
/// is not carried: every server derives it as the previous slot's `made_eligible` (step 9), which it
/// must hold anyway to execute in order.
#[derive(Clone, PartialEq, Debug)]
pub struct PrePrepare {
    /// The view.
    pub view: u64,
    /// The global slot, from 1.
    pub seq: u64,
    /// The leader's clock in milliseconds: the agreed timestamp handed to the application (made
    /// non-decreasing at execution).
    pub timestamp_ms: u64,
    /// The summary matrix.
    pub matrix: SummaryRow,
}
impl_wire!(PrePrepare {
    view: Wire::decode,
    seq: Wire::decode,
    timestamp_ms: Wire::decode,
    matrix: decode_summary_row,
});

/// PREPARE or COMMIT vote on a pre-prepare (step 10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Vote {
    /// The view.
    pub view: u64,
    /// The global slot.
    pub seq: u64,
    /// Digest of the whole signed pre-prepare.
    pub digest: Digest,
}
impl_wire!(Vote {
    view: Wire::decode,
    seq: Wire::decode,
    digest: Wire::decode
});

/// PREPARE (step 10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Prepare(pub Vote);
/// COMMIT (step 10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Commit(pub Vote);

impl Wire for Prepare {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Prepare(Vote::decode(r)?))
    }
}
impl Wire for Commit {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Commit(Vote::decode(r)?))
    }
}

/// A server's answer to one executed update (step 11).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reply {
    /// The client.
    pub client: ClientId,
    /// The update's incarnation.
    pub incarnation: u64,
    /// The update's sequence number.
    pub seq: u64,
    /// The global slot that executed it.
    pub global_seq: u64,
    /// The application's result.
    pub result: Vec<u8>,
}
impl_wire!(Reply {
    client: Wire::decode,
    incarnation: Wire::decode,
    seq: Wire::decode,
    global_seq: Wire::decode,
    result: |r| r.byte_vec("reply result", REPLY_RESULT_BYTES_MAX),
});

/// Suspect-leader ping; the pinged server answers with a [`Pong`] of the same nonce.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ping {
    /// Echoed in the pong.
    pub nonce: u64,
}
impl_wire!(Ping {
    nonce: Wire::decode
});

/// Answer to a [`Ping`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
}
impl_wire!(Pong {
    nonce: Wire::decode
});

/// The round-trip time a pinger measured to the receiver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RttMeasure {
    /// Nanoseconds.
    pub rtt_ns: u64,
}
impl_wire!(RttMeasure {
    rtt_ns: Wire::decode
});

/// TAT-UB: the sender's alpha, its bound on an acceptable turnaround time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TatUb {
    /// Nanoseconds.
    pub alpha_ns: u64,
}
impl_wire!(TatUb {
    alpha_ns: Wire::decode
});

/// TAT-MEASURE: the largest turnaround time the sender measured for the leader of `view`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TatMeasure {
    /// The view measured.
    pub view: u64,
    /// Nanoseconds.
    pub max_tat_ns: u64,
}
impl_wire!(TatMeasure {
    view: Wire::decode,
    max_tat_ns: Wire::decode
});

/// NEW-LEADER: the sender suspects the leader and asks for `view`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NewLeader {
    /// The view asked for.
    pub view: u64,
}
impl_wire!(NewLeader { view: Wire::decode });

/// 2f+k+1 NEW-LEADER messages for one view: proof that the view must change.
#[derive(Clone, PartialEq, Debug)]
pub struct NewLeaderProof {
    /// The view all of them ask for.
    pub view: u64,
    /// The signed requests, from distinct participants.
    pub votes: Vec<Signed<NewLeader>>,
}
impl_wire!(NewLeaderProof {
    view: Wire::decode,
    votes: |r| r.vec_of("new-leader votes", PARTICIPANTS_MAX),
});

/// CATCHUP-REQUEST: what the sender lacks to execute.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CatchupRequest {
    /// The sender's last executed global slot.
    pub executed_seq: u64,
    /// PO-REQUESTs it needs, as (originator, slot).
    pub missing_po: Vec<(ParticipantId, u64)>,
}
impl_wire!(CatchupRequest {
    executed_seq: Wire::decode,
    missing_po: |r| r.vec_of("catch-up items", CATCHUP_ITEMS_WIRE_MAX),
});

/// An ordering certificate: a pre-prepare and 2f+k+1 matching commits (catch-up).
#[derive(Clone, PartialEq, Debug)]
pub struct OrderCertificate {
    /// The proposal.
    pub pre_prepare: Signed<PrePrepare>,
    /// Matching commits from distinct participants.
    pub commits: Vec<Signed<Commit>>,
}
impl_wire!(OrderCertificate {
    pre_prepare: Wire::decode,
    commits: |r| r.vec_of("certificate commits", PARTICIPANTS_MAX),
});

/// Most prepare certificates one view-change report names on the wire.
pub const REPORT_CERTIFICATES_WIRE_MAX: usize = 1024;

/// A prepare certificate: a pre-prepare and 2f+k matching prepares from non-leaders (step 10).
/// Self-verifying: anyone may forward it.
#[derive(Clone, PartialEq, Debug)]
pub struct PrepareCertificate {
    /// The proposal.
    pub pre_prepare: Signed<PrePrepare>,
    /// Matching prepares from distinct non-leaders.
    pub prepares: Vec<Signed<Prepare>>,
}
impl_wire!(PrepareCertificate {
    pre_prepare: Wire::decode,
    prepares: |r| r.vec_of("certificate prepares", PARTICIPANTS_MAX),
});

/// REPORT (view change step 1): the sender's executed ARU and the prepare certificates it holds
/// above it, named by (slot, digest of the signed pre-prepare) so that the certificates themselves
/// can travel separately and be checked against the report.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VcReport {
    /// The view being installed.
    pub view: u64,
    /// The sender's last executed slot.
    pub executed_seq: u64,
    /// Its prepare certificates above `executed_seq`.
    pub certificates: Vec<(u64, Digest)>,
}
impl_wire!(VcReport {
    view: Wire::decode,
    executed_seq: Wire::decode,
    certificates: |r| r.vec_of("report certificates", REPORT_CERTIFICATES_WIRE_MAX),
});

/// A reliable-broadcast step (Bracha echo or ready) on a participant's signed REPORT. Both carry the
/// report itself, so a server that missed the originator's send still learns the content.
#[derive(Clone, PartialEq, Debug)]
pub struct VcRelay {
    /// False for echo, true for ready.
    pub ready: bool,
    /// The report relayed.
    pub report: Signed<VcReport>,
}
impl_wire!(VcRelay {
    ready: Wire::decode,
    report: Wire::decode
});

/// VC-LIST (view change step 2): the participants whose complete state the sender holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VcList {
    /// The view being installed.
    pub view: u64,
    /// Bit i set: participant i is in the list.
    pub members: u64,
}
impl_wire!(VcList {
    view: Wire::decode,
    members: Wire::decode
});

/// What a VC-PROOF proves (view change steps 3-4): replay from `start_seq` the state of the
/// listed participants.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct VcAgreement {
    /// The view being installed.
    pub view: u64,
    /// The list agreed on.
    pub members: u64,
    /// The first slot the replay covers: one past the highest executed ARU among the members.
    pub start_seq: u64,
}
impl_wire!(VcAgreement {
    view: Wire::decode,
    members: Wire::decode,
    start_seq: Wire::decode
});

impl VcAgreement {
    /// The digest every participant's threshold share signs: the same at every signer, so that
    /// 2f+k+1 shares combine into one signature.
    pub fn proof_digest(&self) -> Digest {
        crate::auth::hash_parts(b"prime/vc-proof", &[&self.to_bytes()])
    }
}

/// VC-PARTIAL-SIG (view change step 3): the sender agrees to `agreed` and sends its threshold
/// share of [`VcAgreement::proof_digest`]. The message is signed too, so a bad share is provably
/// its sender's.
#[derive(Clone, PartialEq, Debug)]
pub struct VcPartialSig {
    /// What the sender agrees to.
    pub agreed: VcAgreement,
    /// The sender's threshold-signature share.
    pub share: AuthTag,
}
impl_wire!(VcPartialSig {
    agreed: Wire::decode,
    share: Wire::decode
});

/// REPLAY (view change step 4), sent by the new leader: the agreed list and start, proven by the
/// threshold signature that 2f+k+1 VC-PARTIAL-SIG shares combine into (the VC-PROOF).
#[derive(Clone, PartialEq, Debug)]
pub struct Replay {
    /// What was agreed.
    pub agreed: VcAgreement,
    /// The combined threshold signature on `agreed.proof_digest()`.
    pub proof: AuthTag,
}
impl_wire!(Replay {
    agreed: Wire::decode,
    proof: Wire::decode,
});

impl PrePrepare {
    /// What the slot orders, independent of the view and leader that proposed it: a slot replayed
    /// in a later view keeps this digest.
    pub fn content_digest(&self) -> Digest {
        let mut matrix = Vec::new();
        self.matrix.encode(&mut matrix);
        crate::auth::hash_parts(
            b"prime/slot-content",
            &[&self.timestamp_ms.to_le_bytes(), &matrix],
        )
    }
}

signed_body! {
    PoRequest => b"prime/po-request",
    AckPart => b"prime/ack-part",
    PoSummary => b"prime/po-summary",
    PrePrepare => b"prime/pre-prepare",
    Prepare => b"prime/prepare",
    Commit => b"prime/commit",
    Reply => b"prime/reply",
    Ping => b"prime/ping",
    Pong => b"prime/pong",
    RttMeasure => b"prime/rtt-measure",
    TatUb => b"prime/tat-ub",
    TatMeasure => b"prime/tat-measure",
    NewLeader => b"prime/new-leader",
    CatchupRequest => b"prime/catchup-request",
    VcReport => b"prime/vc-report",
    VcRelay => b"prime/vc-relay",
    VcList => b"prime/vc-list",
    VcPartialSig => b"prime/vc-partial-sig",
}

/// Everything Prime nodes and clients send each other.
#[derive(Clone, PartialEq, Debug)]
pub enum PrimeMessage {
    /// A client's update, sent to a server (authenticated by the transport link).
    ClientUpdate(Update),
    /// A server's reply to a client.
    Reply(Signed<Reply>),
    /// Step 2.
    PoRequest(Signed<PoRequest>),
    /// Step 4.
    PoAck(PoAck),
    /// Reconciliation and catch-up: a certified PO-REQUEST.
    PoCertificate(PoCertificate),
    /// Step 6.
    PoSummary(Signed<PoSummary>),
    /// Step 7.
    SummaryMatrix(SummaryMatrix),
    /// Step 8 (sent by the leader, re-flooded by everyone).
    PrePrepare(Signed<PrePrepare>),
    /// Step 10.
    Prepare(Signed<Prepare>),
    /// Step 10.
    Commit(Signed<Commit>),
    /// Suspect-leader.
    Ping(Signed<Ping>),
    /// Suspect-leader.
    Pong(Signed<Pong>),
    /// Suspect-leader.
    RttMeasure(Signed<RttMeasure>),
    /// Suspect-leader.
    TatUb(Signed<TatUb>),
    /// Suspect-leader.
    TatMeasure(Signed<TatMeasure>),
    /// Suspect-leader.
    NewLeader(Signed<NewLeader>),
    /// Suspect-leader.
    NewLeaderProof(NewLeaderProof),
    /// Catch-up.
    CatchupRequest(Signed<CatchupRequest>),
    /// Catch-up.
    OrderCertificate(OrderCertificate),
    /// View change: a participant's own report (reliable broadcast init).
    VcReport(Signed<VcReport>),
    /// View change: reliable broadcast echo or ready.
    VcRelay(Signed<VcRelay>),
    /// View change: a prepare certificate named by a report.
    VcCertificate(PrepareCertificate),
    /// View change.
    VcList(Signed<VcList>),
    /// View change.
    VcPartialSig(Signed<VcPartialSig>),
    /// View change.
    Replay(Replay),
    /// Checkpoint vote.
    Checkpoint(Signed<crate::checkpoint::Checkpoint>),
    /// State transfer to a server too far behind.
    Jump(crate::checkpoint::Jump),
    /// State transfer: chunks of a snapshot asked for.
    SnapshotChunkRequest(crate::state_transfer::SnapshotChunkRequest),
    /// State transfer: one chunk of a snapshot.
    SnapshotChunk(crate::state_transfer::SnapshotChunk),
}

macro_rules! message_codec {
    ($($tag:literal => $variant:ident),* $(,)?) => {
        impl Wire for PrimeMessage {
            fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $( PrimeMessage::$variant(m) => { out.push($tag); m.encode(out); } )*
                }
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match r.u8()? {
                    $( $tag => Ok(PrimeMessage::$variant(Wire::decode(r)?)), )*
                    tag => Err(DecodeError::UnknownTag { what: "PrimeMessage", tag: tag as u64 }),
                }
            }
            fn wire_len(&self) -> usize {
                1 + match self {
                    $( PrimeMessage::$variant(m) => m.wire_len(), )*
                }
            }
        }
    };
}

message_codec! {
    0 => ClientUpdate,
    1 => Reply,
    2 => PoRequest,
    3 => PoAck,
    4 => PoSummary,
    5 => SummaryMatrix,
    6 => PrePrepare,
    7 => Prepare,
    8 => Commit,
    9 => Ping,
    10 => Pong,
    11 => RttMeasure,
    12 => TatUb,
    13 => TatMeasure,
    14 => NewLeader,
    15 => NewLeaderProof,
    16 => CatchupRequest,
    17 => OrderCertificate,
    18 => VcReport,
    19 => VcRelay,
    20 => VcCertificate,
    21 => VcList,
    22 => VcPartialSig,
    23 => Replay,
    24 => PoCertificate,
    25 => Checkpoint,
    26 => Jump,
    27 => SnapshotChunkRequest,
    28 => SnapshotChunk,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::wire::{decode_frame, encode_frame};
    use stockade_core::DecodeLimits;

    fn signed<T>(signer: u16, body: T) -> Signed<T> {
        Signed {
            signer: ParticipantId(signer),
            body,
            tag: AuthTag(vec![7; 64]),
        }
    }

    fn summary(signer: u16) -> Signed<PoSummary> {
        signed(
            signer,
            PoSummary {
                counter: 3,
                cum_aru: vec![1, 2, 3, 4],
            },
        )
    }

    fn samples() -> Vec<PrimeMessage> {
        let update = Update {
            client: ClientId(9),
            incarnation: 1,
            seq: 2,
            reply_to: Some(NodeId(40)),
            op: b"SET k v".to_vec(),
        };
        let vote = Vote {
            view: 1,
            seq: 5,
            digest: [3; 32],
        };
        let pre_prepare = signed(
            1,
            PrePrepare {
                view: 1,
                seq: 5,
                timestamp_ms: 77,
                matrix: vec![Some(summary(0)), None],
            },
        );
        let report = signed(
            2,
            VcReport {
                view: 2,
                executed_seq: 4,
                certificates: vec![(5, [4; 32])],
            },
        );
        let part = AckPart {
            originator: ParticipantId(0),
            po_seq: 1,
            digest: [1; 32],
        };
        let agreed = VcAgreement {
            view: 2,
            members: 0b1011,
            start_seq: 5,
        };
        let partial = VcPartialSig {
            agreed,
            share: AuthTag(vec![9; 96]),
        };
        vec![
            PrimeMessage::ClientUpdate(update.clone()),
            PrimeMessage::Reply(signed(
                2,
                Reply {
                    client: ClientId(9),
                    incarnation: 1,
                    seq: 2,
                    global_seq: 5,
                    result: b"OK".to_vec(),
                },
            )),
            PrimeMessage::PoRequest(signed(
                0,
                PoRequest {
                    po_seq: 1,
                    updates: vec![update],
                },
            )),
            PrimeMessage::PoAck(PoAck {
                parts: vec![signed(3, part)],
            }),
            PrimeMessage::PoCertificate(PoCertificate {
                request: signed(
                    0,
                    PoRequest {
                        po_seq: 1,
                        updates: vec![],
                    },
                ),
                acks: vec![signed(3, part), signed(2, part)],
            }),
            PrimeMessage::PoSummary(summary(2)),
            PrimeMessage::SummaryMatrix(SummaryMatrix {
                summaries: vec![None, Some(summary(1))],
            }),
            PrimeMessage::PrePrepare(pre_prepare.clone()),
            PrimeMessage::Prepare(signed(2, Prepare(vote))),
            PrimeMessage::Commit(signed(2, Commit(vote))),
            PrimeMessage::Ping(signed(0, Ping { nonce: 11 })),
            PrimeMessage::Pong(signed(1, Pong { nonce: 11 })),
            PrimeMessage::RttMeasure(signed(0, RttMeasure { rtt_ns: 8_000_000 })),
            PrimeMessage::TatUb(signed(0, TatUb { alpha_ns: 9 })),
            PrimeMessage::TatMeasure(signed(
                0,
                TatMeasure {
                    view: 1,
                    max_tat_ns: 10,
                },
            )),
            PrimeMessage::NewLeader(signed(0, NewLeader { view: 2 })),
            PrimeMessage::NewLeaderProof(NewLeaderProof {
                view: 2,
                votes: vec![signed(0, NewLeader { view: 2 })],
            }),
            PrimeMessage::CatchupRequest(signed(
                0,
                CatchupRequest {
                    executed_seq: 4,
                    missing_po: vec![(ParticipantId(1), 3)],
                },
            )),
            PrimeMessage::OrderCertificate(OrderCertificate {
                pre_prepare: pre_prepare.clone(),
                commits: vec![signed(2, Commit(vote))],
            }),
            PrimeMessage::VcReport(report.clone()),
            PrimeMessage::VcRelay(signed(
                3,
                VcRelay {
                    ready: true,
                    report,
                },
            )),
            PrimeMessage::VcCertificate(PrepareCertificate {
                pre_prepare,
                prepares: vec![signed(2, Prepare(vote))],
            }),
            PrimeMessage::VcList(signed(
                1,
                VcList {
                    view: 2,
                    members: 0b1011,
                },
            )),
            PrimeMessage::VcPartialSig(signed(1, partial)),
            PrimeMessage::Replay(Replay {
                agreed,
                proof: AuthTag(vec![8; 96]),
            }),
            PrimeMessage::Checkpoint(signed(
                1,
                crate::checkpoint::Checkpoint {
                    seq: 100,
                    digest: [5; 32],
                },
            )),
            PrimeMessage::Jump(crate::checkpoint::Jump {
                proof: vec![signed(
                    1,
                    crate::checkpoint::Checkpoint {
                        seq: 100,
                        digest: [5; 32],
                    },
                )],
                snapshot_bytes: 300_000,
            }),
            PrimeMessage::SnapshotChunkRequest(crate::state_transfer::SnapshotChunkRequest {
                seq: 100,
                indices: vec![0, 3],
            }),
            PrimeMessage::SnapshotChunk(crate::state_transfer::SnapshotChunk {
                seq: 100,
                index: 3,
                bytes: vec![4; 10],
                siblings: vec![
                    stockade_crypto::Digest([1; 32]),
                    stockade_crypto::Digest([2; 32]),
                ],
            }),
        ]
    }

    #[test]
    fn every_message_roundtrips_with_exact_length() {
        for m in samples() {
            let bytes = encode_frame(&m);
            assert_eq!(bytes.len(), 1 + m.wire_len(), "{m:?}");
            assert_eq!(
                decode_frame::<PrimeMessage>(&bytes, DecodeLimits::MESSAGE),
                Ok(m)
            );
        }
    }

    #[test]
    fn oversized_fields_are_rejected() {
        let big = Update {
            client: ClientId(1),
            incarnation: 0,
            seq: 0,
            reply_to: None,
            op: vec![0; UPDATE_OP_BYTES_MAX + 1],
        };
        let bytes = encode_frame(&PrimeMessage::ClientUpdate(big));
        assert!(matches!(
            decode_frame::<PrimeMessage>(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "update op",
                ..
            })
        ));
        let wide = PoSummary {
            counter: 1,
            cum_aru: vec![0; PARTICIPANTS_MAX + 1],
        };
        let bytes = encode_frame(&PrimeMessage::PoSummary(signed(0, wide)));
        assert!(matches!(
            decode_frame::<PrimeMessage>(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "po-summary vector",
                ..
            })
        ));
        let mut bad_signer = encode_frame(&PrimeMessage::Ping(signed(0, Ping { nonce: 1 })));
        bad_signer[2] = PARTICIPANTS_MAX as u8; // the signer's low byte
        assert!(decode_frame::<PrimeMessage>(&bad_signer, DecodeLimits::MESSAGE).is_err());
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_frame::<PrimeMessage>(&bytes, DecodeLimits::MESSAGE);
        }

        #[test]
        fn truncations_of_valid_messages_fail_cleanly(cut in 0usize..200, which in 0usize..29) {
            let samples = samples();
            let bytes = encode_frame(&samples[which % samples.len()]);
            let cut = cut.min(bytes.len().saturating_sub(1));
            prop_assert!(decode_frame::<PrimeMessage>(&bytes[..cut], DecodeLimits::MESSAGE).is_err());
        }
    }
}
