//! A node as another node knows it: its overlay id and its transport address.

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::NodeId;

use crate::id::OverlayId;

/// A peer: where it sits on the ring and where to send to reach it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeHandle {
    /// Its place on the ring.
    pub id: OverlayId,
    /// Its transport address.
    pub addr: NodeId,
}

impl Wire for NodeHandle {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.addr.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeHandle {
            id: OverlayId::decode(r)?,
            addr: NodeId::decode(r)?,
        })
    }
    fn wire_len(&self) -> usize {
        20
    }
}

/// A handle whose address is the low bits of its id, for tests.
#[cfg(test)]
pub(crate) fn test_handle(id: u128) -> NodeHandle {
    NodeHandle {
        id: OverlayId(id),
        addr: NodeId(id as u32),
    }
}
