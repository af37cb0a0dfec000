//! Node identifiers: the transport address of one protocol instance in a simulation or deployment.
//!
//! A `NodeId` says where to send; protocols that need richer identities (a Pastry id, a site, a
//! replica number) keep them in their own state and map them to `NodeId`s.

use std::fmt;

use crate::wire::{DecodeError, Reader, Wire};

/// The address of one node. Dense small integers, so drivers can index arrays by them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The id as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl From<u32> for NodeId {
    fn from(v: u32) -> Self {
        NodeId(v)
    }
}

impl Wire for NodeId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeId(u32::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        self.0.wire_len()
    }
}
