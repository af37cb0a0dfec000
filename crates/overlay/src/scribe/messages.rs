//! What Scribe nodes send: requests routed toward a topic id, and direct tree traffic.

use stockade_core::wire::{put_bytes, DecodeError, Reader, Wire};

use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::PastryMessage;

/// Largest multicast or anycast payload, bytes.
pub const SCRIBE_DATA_BYTES_MAX: usize = 16 * 1024;
/// Most topics one heartbeat lists.
pub const HEARTBEAT_TOPICS_MAX: usize = 1_024;
/// Most tree nodes an anycast's depth-first search visits before giving up.
pub const ANYCAST_VISITED_MAX: usize = 256;
/// Longest label a member advertises (anycast predicates match on label prefixes), bytes.
pub const LABEL_BYTES_MAX: usize = 256;

/// A Scribe request routed toward a topic id inside a Pastry message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScribeRouted {
    /// `child` asks to join the topic's tree; each node on the route adopts the previous one.
    Subscribe {
        /// The topic.
        topic: OverlayId,
        /// The node asking to be a child.
        child: NodeHandle,
    },
    /// Data for every member, sent to the topic's root first.
    Publish {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// Data for one member whose label starts with `label_prefix`.
    Anycast {
        /// The requester's number for this anycast, carried back in its answer.
        request: u64,
        /// The topic.
        topic: OverlayId,
        /// Who asked.
        requester: NodeHandle,
        /// The predicate: a label prefix.
        label_prefix: Vec<u8>,
        /// The data.
        data: Vec<u8>,
    },
}

/// The state an anycast's depth-first search carries from tree node to tree node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnycastSearch {
    /// The requester's number for this anycast, carried back in its answer.
    pub request: u64,
    /// The topic.
    pub topic: OverlayId,
    /// Who asked.
    pub requester: NodeHandle,
    /// The predicate: members whose label starts with this match.
    pub label_prefix: Vec<u8>,
    /// The data.
    pub data: Vec<u8>,
    /// Tree nodes already visited.
    pub visited: Vec<OverlayId>,
    /// The path back (the search's stack).
    pub trail: Vec<NodeHandle>,
}

impl Wire for AnycastSearch {
    fn encode(&self, out: &mut Vec<u8>) {
        self.request.encode(out);
        self.topic.encode(out);
        self.requester.encode(out);
        put_bytes(out, &self.label_prefix);
        put_bytes(out, &self.data);
        self.visited.encode(out);
        self.trail.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AnycastSearch {
            request: u64::decode(r)?,
            topic: OverlayId::decode(r)?,
            requester: NodeHandle::decode(r)?,
            label_prefix: label(r)?,
            data: data(r)?,
            visited: r.vec_of("anycast visited", ANYCAST_VISITED_MAX)?,
            trail: r.vec_of("anycast trail", ANYCAST_VISITED_MAX)?,
        })
    }
}

/// A Scribe message sent directly between tree neighbours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScribeDirect {
    /// The sender leaves the topic's tree (it has no members below it any more).
    Unsubscribe {
        /// The topic.
        topic: OverlayId,
    },
    /// Data travelling down the tree.
    Multicast {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// A parent tells a child it is alive, for these topics.
    Heartbeat {
        /// Topics for which the sender is the receiver's parent.
        topics: Vec<OverlayId>,
    },
    /// One step of an anycast's depth-first search of the tree.
    AnycastVisit(AnycastSearch),
    /// The anycast reached a member that matched.
    AnycastAnswered {
        /// The requester's number for the anycast.
        request: u64,
        /// The topic.
        topic: OverlayId,
        /// The member.
        by: NodeHandle,
    },
    /// No member matched.
    AnycastFailed {
        /// The requester's number for the anycast.
        request: u64,
        /// The topic.
        topic: OverlayId,
    },
}

/// Everything a Scribe node sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScribeMessage {
    /// Pastry's messages (routed Scribe requests ride inside them).
    Overlay(PastryMessage),
    /// Direct tree traffic.
    Tree(ScribeDirect),
}

fn data(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    r.byte_vec("scribe data", SCRIBE_DATA_BYTES_MAX)
}

fn label(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    r.byte_vec("anycast label", LABEL_BYTES_MAX)
}

impl Wire for ScribeRouted {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ScribeRouted::Subscribe { topic, child } => {
                out.push(0);
                topic.encode(out);
                child.encode(out);
            }
            ScribeRouted::Publish { topic, data } => {
                out.push(1);
                topic.encode(out);
                put_bytes(out, data);
            }
            ScribeRouted::Anycast {
                request,
                topic,
                requester,
                label_prefix,
                data,
            } => {
                out.push(2);
                request.encode(out);
                topic.encode(out);
                requester.encode(out);
                put_bytes(out, label_prefix);
                put_bytes(out, data);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ScribeRouted::Subscribe {
                topic: OverlayId::decode(r)?,
                child: NodeHandle::decode(r)?,
            },
            1 => ScribeRouted::Publish {
                topic: OverlayId::decode(r)?,
                data: data(r)?,
            },
            2 => ScribeRouted::Anycast {
                request: u64::decode(r)?,
                topic: OverlayId::decode(r)?,
                requester: NodeHandle::decode(r)?,
                label_prefix: label(r)?,
                data: data(r)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ScribeRouted",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

impl Wire for ScribeDirect {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ScribeDirect::Unsubscribe { topic } => {
                out.push(0);
                topic.encode(out);
            }
            ScribeDirect::Multicast { topic, data } => {
                out.push(1);
                topic.encode(out);
                put_bytes(out, data);
            }
            ScribeDirect::Heartbeat { topics } => {
                out.push(2);
                topics.encode(out);
            }
            ScribeDirect::AnycastVisit(search) => {
                out.push(3);
                search.encode(out);
            }
            ScribeDirect::AnycastAnswered { request, topic, by } => {
                out.push(4);
                request.encode(out);
                topic.encode(out);
                by.encode(out);
            }
            ScribeDirect::AnycastFailed { request, topic } => {
                out.push(5);
                request.encode(out);
                topic.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ScribeDirect::Unsubscribe {
                topic: OverlayId::decode(r)?,
            },
            1 => ScribeDirect::Multicast {
                topic: OverlayId::decode(r)?,
                data: data(r)?,
            },
            2 => ScribeDirect::Heartbeat {
                topics: r.vec_of("heartbeat topics", HEARTBEAT_TOPICS_MAX)?,
            },
            3 => ScribeDirect::AnycastVisit(AnycastSearch::decode(r)?),
            4 => ScribeDirect::AnycastAnswered {
                request: u64::decode(r)?,
                topic: OverlayId::decode(r)?,
                by: NodeHandle::decode(r)?,
            },
            5 => ScribeDirect::AnycastFailed {
                request: u64::decode(r)?,
                topic: OverlayId::decode(r)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ScribeDirect",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

impl Wire for ScribeMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ScribeMessage::Overlay(m) => {
                out.push(0);
                m.encode(out);
            }
            ScribeMessage::Tree(m) => {
                out.push(1);
                m.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ScribeMessage::Overlay(PastryMessage::decode(r)?),
            1 => ScribeMessage::Tree(ScribeDirect::decode(r)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ScribeMessage",
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
    use stockade_core::wire::DecodeLimits;

    #[test]
    fn scribe_messages_round_trip_and_bound_their_lists() {
        let h = test_handle(4);
        let topic = OverlayId(77);
        let all = [
            ScribeMessage::Tree(ScribeDirect::Unsubscribe { topic }),
            ScribeMessage::Tree(ScribeDirect::Multicast {
                topic,
                data: b"d".to_vec(),
            }),
            ScribeMessage::Tree(ScribeDirect::Heartbeat {
                topics: vec![topic],
            }),
            ScribeMessage::Tree(ScribeDirect::AnycastVisit(AnycastSearch {
                request: 8,
                topic,
                requester: h,
                label_prefix: b"gpu".to_vec(),
                data: vec![],
                visited: vec![h.id],
                trail: vec![h],
            })),
            ScribeMessage::Tree(ScribeDirect::AnycastAnswered {
                request: 8,
                topic,
                by: h,
            }),
            ScribeMessage::Tree(ScribeDirect::AnycastFailed { request: 9, topic }),
        ];
        for m in all {
            assert_eq!(
                ScribeMessage::from_bytes(&m.to_bytes(), DecodeLimits::MESSAGE),
                Ok(m)
            );
        }
        let routed = ScribeRouted::Anycast {
            request: 3,
            topic,
            requester: h,
            label_prefix: vec![1],
            data: vec![2],
        };
        assert_eq!(
            ScribeRouted::from_bytes(&routed.to_bytes(), DecodeLimits::MESSAGE),
            Ok(routed)
        );
        let too_long = ScribeDirect::AnycastVisit(AnycastSearch {
            request: 0,
            topic,
            requester: h,
            label_prefix: vec![0; LABEL_BYTES_MAX + 1],
            data: vec![],
            visited: vec![],
            trail: vec![],
        });
        assert!(matches!(
            ScribeDirect::from_bytes(&too_long.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "anycast label",
                ..
            })
        ));
    }
}
