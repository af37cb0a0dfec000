//! What Pastry nodes send each other, and its bounded wire encoding.

use stockade_core::wire::{put_bytes, put_vec, DecodeError, Reader, Wire};

use crate::certificate::NodeCertificate;
use crate::handle::NodeHandle;
use crate::id::OverlayId;

/// Most node handles in one message (a leaf set, a routing-table row plus a neighbourhood set, or
/// the rows a join hop returns: 32 rows of 16 at b = 4 fit; at b = 8 a join hop sends fewer rows).
pub const HANDLES_PER_MESSAGE_MAX: usize = 640;
/// Largest application payload a routed message carries, bytes.
pub const ROUTE_PAYLOAD_BYTES_MAX: usize = 32 * 1024;

/// A Pastry message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastryMessage {
    /// A join for `joiner`, routed toward its id (paper 002, "Pastry: Node addition").
    JoinRequest {
        /// The joining node.
        joiner: NodeHandle,
        /// Overlay hops taken so far.
        hops: u8,
    },
    /// A join hop's state for the joiner: its routing-table rows up to the prefix it shares with
    /// the joiner, plus (from the first hop, which is near the joiner) its neighbourhood set.
    JoinState {
        /// The hop.
        sender: NodeHandle,
        /// The nodes it offers.
        known: Vec<NodeHandle>,
    },
    /// The join's last hop, numerically closest to the joiner's id, hands over its leaf set.
    JoinReply {
        /// The root of the joiner's id.
        root: NodeHandle,
        /// The root's leaf set.
        leaves: Vec<NodeHandle>,
    },
    /// A node that finished joining tells the nodes in its tables that it exists.
    Announce {
        /// The new node.
        node: NodeHandle,
    },
    /// Liveness and proximity probe; `sent_nanos` is echoed to measure the round trip.
    Ping {
        /// Who is asking, once it has joined (a joining node cannot route yet, so nobody may
        /// learn of it before its join completes). A node keeps its leaf-set members alive with
        /// pings, so a ping from an unknown node that belongs in the receiver's leaf set tells
        /// the receiver about it.
        sender: Option<NodeHandle>,
        /// The sender's clock at sending.
        sent_nanos: u64,
    },
    /// Answer to a [`PastryMessage::Ping`], with the sender's certificate when ids are certified.
    Pong {
        /// Echoed from the ping.
        sent_nanos: u64,
        /// The sender's certified identity.
        certificate: Option<NodeCertificate>,
    },
    /// Eager leaf-set repair: asks a leaf for its leaf set.
    LeafSetRequest,
    /// The requested leaf set.
    LeafSetReply {
        /// The answering node.
        sender: NodeHandle,
        /// Its leaf set.
        leaves: Vec<NodeHandle>,
    },
    /// Lazy routing-table repair: asks for one row of the receiver's routing table.
    RowRequest {
        /// The row wanted.
        row: u8,
    },
    /// The requested row's entries.
    RowReply {
        /// The entries.
        entries: Vec<NodeHandle>,
    },
    /// An application message routed toward `key` (the KBR API's `route`).
    Route {
        /// The destination key.
        key: OverlayId,
        /// Who called `route`.
        origin: NodeHandle,
        /// Overlay hops taken so far.
        hops: u8,
        /// The sender's number for this hop, echoed in [`PastryMessage::RouteAck`].
        seq: u64,
        /// The application's bytes.
        payload: Vec<u8>,
    },
    /// The next hop received a routed message (the sender stops watching for its failure).
    RouteAck {
        /// The hop's number.
        seq: u64,
    },
    /// Graceful departure: the sender is leaving the overlay.
    Leaving {
        /// The leaving node.
        node: NodeHandle,
    },
}

impl PastryMessage {
    fn tag(&self) -> u8 {
        match self {
            PastryMessage::JoinRequest { .. } => 0,
            PastryMessage::JoinState { .. } => 1,
            PastryMessage::JoinReply { .. } => 2,
            PastryMessage::Announce { .. } => 3,
            PastryMessage::Ping { .. } => 4,
            PastryMessage::Pong { .. } => 5,
            PastryMessage::LeafSetRequest => 6,
            PastryMessage::LeafSetReply { .. } => 7,
            PastryMessage::RowRequest { .. } => 8,
            PastryMessage::RowReply { .. } => 9,
            PastryMessage::Route { .. } => 10,
            PastryMessage::Leaving { .. } => 11,
            PastryMessage::RouteAck { .. } => 12,
        }
    }
}

fn handles(r: &mut Reader<'_>) -> Result<Vec<NodeHandle>, DecodeError> {
    r.vec_of("node handles", HANDLES_PER_MESSAGE_MAX)
}

impl Wire for PastryMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            PastryMessage::JoinRequest { joiner, hops } => {
                joiner.encode(out);
                out.push(*hops);
            }
            PastryMessage::JoinState { sender, known } => {
                sender.encode(out);
                put_vec(out, known);
            }
            PastryMessage::JoinReply { root, leaves } => {
                root.encode(out);
                put_vec(out, leaves);
            }
            PastryMessage::Announce { node } | PastryMessage::Leaving { node } => node.encode(out),
            PastryMessage::Ping { sender, sent_nanos } => {
                sender.encode(out);
                sent_nanos.encode(out);
            }
            PastryMessage::Pong {
                sent_nanos,
                certificate,
            } => {
                sent_nanos.encode(out);
                certificate.encode(out);
            }
            PastryMessage::LeafSetRequest => {}
            PastryMessage::LeafSetReply { sender, leaves } => {
                sender.encode(out);
                put_vec(out, leaves);
            }
            PastryMessage::RowRequest { row } => out.push(*row),
            PastryMessage::RowReply { entries } => put_vec(out, entries),
            PastryMessage::Route {
                key,
                origin,
                hops,
                seq,
                payload,
            } => {
                key.encode(out);
                origin.encode(out);
                out.push(*hops);
                seq.encode(out);
                put_bytes(out, payload);
            }
            PastryMessage::RouteAck { seq } => seq.encode(out),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => PastryMessage::JoinRequest {
                joiner: NodeHandle::decode(r)?,
                hops: r.u8()?,
            },
            1 => PastryMessage::JoinState {
                sender: NodeHandle::decode(r)?,
                known: handles(r)?,
            },
            2 => PastryMessage::JoinReply {
                root: NodeHandle::decode(r)?,
                leaves: handles(r)?,
            },
            3 => PastryMessage::Announce {
                node: NodeHandle::decode(r)?,
            },
            4 => PastryMessage::Ping {
                sender: Option::decode(r)?,
                sent_nanos: u64::decode(r)?,
            },
            5 => PastryMessage::Pong {
                sent_nanos: u64::decode(r)?,
                certificate: Option::decode(r)?,
            },
            6 => PastryMessage::LeafSetRequest,
            7 => PastryMessage::LeafSetReply {
                sender: NodeHandle::decode(r)?,
                leaves: handles(r)?,
            },
            8 => PastryMessage::RowRequest { row: r.u8()? },
            9 => PastryMessage::RowReply {
                entries: handles(r)?,
            },
            10 => PastryMessage::Route {
                key: OverlayId::decode(r)?,
                origin: NodeHandle::decode(r)?,
                hops: r.u8()?,
                seq: u64::decode(r)?,
                payload: r.byte_vec("route payload", ROUTE_PAYLOAD_BYTES_MAX)?,
            },
            12 => PastryMessage::RouteAck {
                seq: u64::decode(r)?,
            },
            11 => PastryMessage::Leaving {
                node: NodeHandle::decode(r)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "PastryMessage",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::test_handle;
    use stockade_core::wire::{decode_frame, encode_frame, DecodeLimits};

    fn samples() -> Vec<PastryMessage> {
        let h = test_handle(0xabc);
        vec![
            PastryMessage::JoinRequest { joiner: h, hops: 3 },
            PastryMessage::JoinState {
                sender: h,
                known: vec![test_handle(1), test_handle(2)],
            },
            PastryMessage::JoinReply {
                root: h,
                leaves: vec![test_handle(5)],
            },
            PastryMessage::Announce { node: h },
            PastryMessage::Ping {
                sender: Some(test_handle(3)),
                sent_nanos: 77,
            },
            PastryMessage::Pong {
                sent_nanos: 77,
                certificate: None,
            },
            PastryMessage::LeafSetRequest,
            PastryMessage::LeafSetReply {
                sender: h,
                leaves: vec![],
            },
            PastryMessage::RowRequest { row: 4 },
            PastryMessage::RowReply { entries: vec![h] },
            PastryMessage::Route {
                key: OverlayId(9),
                origin: h,
                hops: 1,
                seq: 3,
                payload: b"hello".to_vec(),
            },
            PastryMessage::Leaving { node: h },
            PastryMessage::RouteAck { seq: 3 },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            let bytes = encode_frame(&m);
            assert_eq!(
                decode_frame::<PastryMessage>(&bytes, DecodeLimits::MESSAGE),
                Ok(m)
            );
        }
    }

    #[test]
    fn oversized_lists_and_payloads_are_refused() {
        let h = test_handle(1);
        let too_many = PastryMessage::RowReply {
            entries: vec![h; HANDLES_PER_MESSAGE_MAX + 1],
        };
        let limits = DecodeLimits {
            input_bytes_max: 1 << 20,
            alloc_bytes_max: 1 << 22,
            depth_max: 4,
        };
        assert!(matches!(
            PastryMessage::from_bytes(&too_many.to_bytes(), limits),
            Err(DecodeError::TooLong {
                what: "node handles",
                ..
            })
        ));
        let big = PastryMessage::Route {
            key: OverlayId(1),
            origin: h,
            hops: 0,
            seq: 3,
            payload: vec![0; ROUTE_PAYLOAD_BYTES_MAX + 1],
        };
        assert!(matches!(
            PastryMessage::from_bytes(&big.to_bytes(), limits),
            Err(DecodeError::TooLong {
                what: "route payload",
                ..
            })
        ));
        assert!(matches!(
            PastryMessage::from_bytes(&[200], limits),
            Err(DecodeError::UnknownTag {
                what: "PastryMessage",
                tag: 200
            })
        ));
    }
}
