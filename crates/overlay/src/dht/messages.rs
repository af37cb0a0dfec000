//! What DHT nodes send: requests routed by key through the overlay, and direct replies.

use stockade_core::wire::{DecodeError, Reader, Wire};

use super::object::StoredObject;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::PastryMessage;

/// Most nodes a lookup records on its route (routes are a handful of hops; a longer path is cut).
pub const LOOKUP_PATH_LEN_MAX: usize = 32;

/// A DHT request carried inside a routed Pastry message toward its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtRouted {
    /// Store `object` on the k nodes closest to its key.
    Insert {
        /// The client's request id, echoed in replies.
        request: u64,
        /// Who asked.
        client: NodeHandle,
        /// The object.
        object: StoredObject,
    },
    /// Find the object under `key`.
    Lookup {
        /// The client's request id, echoed in replies.
        request: u64,
        /// Who asked.
        client: NodeHandle,
        /// The key.
        key: OverlayId,
        /// Nodes the lookup passed (they get a cached copy of the answer).
        path: Vec<NodeHandle>,
    },
}

/// Why a node refused to store an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The object failed verification (bad hash, signature, size).
    BadObject,
    /// The node's quota is used up.
    QuotaExceeded {
        /// Bytes needed.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// A same-or-newer version is stored.
    NotNewer,
}

/// A DHT message sent directly to one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtDirect {
    /// The root asks a replica-set member to store `object`; `ack` says whom to tell.
    Replicate {
        /// The object.
        object: StoredObject,
        /// The client and request to acknowledge, if any.
        ack: Option<(NodeHandle, u64)>,
    },
    /// A node stored a replica for the client's request.
    Stored {
        /// The request.
        request: u64,
        /// The key.
        key: OverlayId,
        /// The storing node.
        by: NodeHandle,
    },
    /// A node refused the client's object.
    Refused {
        /// The request.
        request: u64,
        /// The key.
        key: OverlayId,
        /// Why.
        reason: Refusal,
    },
    /// The answer to a lookup.
    Found {
        /// The request.
        request: u64,
        /// The object.
        object: StoredObject,
    },
    /// The key's root has no object under it.
    NotFound {
        /// The request.
        request: u64,
        /// The key.
        key: OverlayId,
    },
    /// A copy to cache (sent to the nodes a lookup passed).
    CacheCopy {
        /// The object.
        object: StoredObject,
    },
}

/// Everything a DHT node sends: overlay traffic or DHT replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastMessage {
    /// Pastry's own messages (routed DHT requests ride inside them).
    Overlay(PastryMessage),
    /// A direct DHT message.
    Dht(DhtDirect),
}

impl Wire for DhtRouted {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DhtRouted::Insert {
                request,
                client,
                object,
            } => {
                out.push(0);
                request.encode(out);
                client.encode(out);
                object.encode(out);
            }
            DhtRouted::Lookup {
                request,
                client,
                key,
                path,
            } => {
                out.push(1);
                request.encode(out);
                client.encode(out);
                key.encode(out);
                path.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => DhtRouted::Insert {
                request: u64::decode(r)?,
                client: NodeHandle::decode(r)?,
                object: StoredObject::decode(r)?,
            },
            1 => DhtRouted::Lookup {
                request: u64::decode(r)?,
                client: NodeHandle::decode(r)?,
                key: OverlayId::decode(r)?,
                path: r.vec_of("lookup path", LOOKUP_PATH_LEN_MAX)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "DhtRouted",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

impl Wire for Refusal {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Refusal::BadObject => out.push(0),
            Refusal::QuotaExceeded { needed, free } => {
                out.push(1);
                needed.encode(out);
                free.encode(out);
            }
            Refusal::NotNewer => out.push(2),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => Refusal::BadObject,
            1 => Refusal::QuotaExceeded {
                needed: u64::decode(r)?,
                free: u64::decode(r)?,
            },
            2 => Refusal::NotNewer,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "Refusal",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

impl Wire for DhtDirect {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DhtDirect::Replicate { object, ack } => {
                out.push(0);
                object.encode(out);
                ack.encode(out);
            }
            DhtDirect::Stored { request, key, by } => {
                out.push(1);
                request.encode(out);
                key.encode(out);
                by.encode(out);
            }
            DhtDirect::Refused {
                request,
                key,
                reason,
            } => {
                out.push(2);
                request.encode(out);
                key.encode(out);
                reason.encode(out);
            }
            DhtDirect::Found { request, object } => {
                out.push(3);
                request.encode(out);
                object.encode(out);
            }
            DhtDirect::NotFound { request, key } => {
                out.push(4);
                request.encode(out);
                key.encode(out);
            }
            DhtDirect::CacheCopy { object } => {
                out.push(5);
                object.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => DhtDirect::Replicate {
                object: StoredObject::decode(r)?,
                ack: Option::decode(r)?,
            },
            1 => DhtDirect::Stored {
                request: u64::decode(r)?,
                key: OverlayId::decode(r)?,
                by: NodeHandle::decode(r)?,
            },
            2 => DhtDirect::Refused {
                request: u64::decode(r)?,
                key: OverlayId::decode(r)?,
                reason: Refusal::decode(r)?,
            },
            3 => DhtDirect::Found {
                request: u64::decode(r)?,
                object: StoredObject::decode(r)?,
            },
            4 => DhtDirect::NotFound {
                request: u64::decode(r)?,
                key: OverlayId::decode(r)?,
            },
            5 => DhtDirect::CacheCopy {
                object: StoredObject::decode(r)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "DhtDirect",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

impl Wire for PastMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            PastMessage::Overlay(m) => {
                out.push(0);
                m.encode(out);
            }
            PastMessage::Dht(m) => {
                out.push(1);
                m.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => PastMessage::Overlay(PastryMessage::decode(r)?),
            1 => PastMessage::Dht(DhtDirect::decode(r)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "PastMessage",
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
    fn dht_messages_round_trip() {
        let object = StoredObject::content_hashed(b"x".to_vec());
        let h = test_handle(3);
        let routed = DhtRouted::Lookup {
            request: 1,
            client: h,
            key: object.key,
            path: vec![h],
        };
        assert_eq!(
            DhtRouted::from_bytes(&routed.to_bytes(), DecodeLimits::MESSAGE),
            Ok(routed)
        );
        let direct = [
            DhtDirect::Replicate {
                object: object.clone(),
                ack: Some((h, 4)),
            },
            DhtDirect::Stored {
                request: 4,
                key: object.key,
                by: h,
            },
            DhtDirect::Refused {
                request: 4,
                key: object.key,
                reason: Refusal::QuotaExceeded { needed: 9, free: 1 },
            },
            DhtDirect::Found {
                request: 4,
                object: object.clone(),
            },
            DhtDirect::NotFound {
                request: 4,
                key: object.key,
            },
            DhtDirect::CacheCopy { object },
        ];
        for m in direct {
            let wrapped = PastMessage::Dht(m);
            assert_eq!(
                PastMessage::from_bytes(&wrapped.to_bytes(), DecodeLimits::MESSAGE),
                Ok(wrapped)
            );
        }
    }

    #[test]
    fn a_lookup_path_beyond_its_bound_is_refused() {
        let h = test_handle(3);
        let routed = DhtRouted::Lookup {
            request: 1,
            client: h,
            key: OverlayId(1),
            path: vec![h; LOOKUP_PATH_LEN_MAX + 1],
        };
        assert!(matches!(
            DhtRouted::from_bytes(&routed.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "lookup path",
                ..
            })
        ));
    }
}
