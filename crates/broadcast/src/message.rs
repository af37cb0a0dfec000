//! The three Bracha messages (INITIAL, ECHO, READY) and their bounded wire encoding.
//!
//! Every message names its signer and carries the signer's Ed25519 signature over
//! [`signed_bytes`](crate::signing::signed_bytes); all three carry the full payload, as in Bracha's
//! original protocol, so a node that missed the INITIAL can still send READY and deliver.

use stockade_core::wire::{put_bytes, varint_len};
use stockade_core::{DecodeError, NodeId, Reader, Wire};

use crate::signing::{Signature, SIGNATURE_BYTES};

/// Largest payload one broadcast may carry, in bytes: a whole message stays under the runtime's
/// 64 KiB datagram reassembly limit.
pub const PAYLOAD_BYTES_MAX: usize = 60 * 1024;

/// Which step of Bracha's protocol a message is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Phase {
    /// The origin's proposal: `(initial, v)`.
    Initial,
    /// "I saw the origin propose v": `(echo, v)`.
    Echo,
    /// "Enough nodes saw v that every correct node will deliver it": `(ready, v)`.
    Ready,
}

impl Phase {
    /// The phase's wire tag (also bound into the signature, so a signature on one phase cannot be
    /// replayed as another).
    pub fn tag(self) -> u8 {
        match self {
            Phase::Initial => 0,
            Phase::Echo => 1,
            Phase::Ready => 2,
        }
    }

    fn from_tag(tag: u8) -> Result<Phase, DecodeError> {
        match tag {
            0 => Ok(Phase::Initial),
            1 => Ok(Phase::Echo),
            2 => Ok(Phase::Ready),
            t => Err(DecodeError::UnknownTag {
                what: "broadcast phase",
                tag: t as u64,
            }),
        }
    }
}

/// Names one broadcast: the origin that proposed it and the origin's sequence number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct InstanceId {
    /// The node that broadcast.
    pub origin: NodeId,
    /// The origin's sequence number, starting at 0.
    pub seq: u64,
}

/// One signed Bracha message.
#[derive(Clone, PartialEq, Eq)]
pub struct BroadcastMessage {
    /// INITIAL, ECHO or READY.
    pub phase: Phase,
    /// Which broadcast this message is about.
    pub instance: InstanceId,
    /// Who signed (and must have sent) this message.
    pub signer: NodeId,
    /// The broadcast payload.
    pub payload: Vec<u8>,
    /// The signer's signature over `signed_bytes(phase, instance, sha256(payload))`.
    pub signature: Signature,
}

impl std::fmt::Debug for BroadcastMessage {
    // Payloads can be 60 KiB: a debug line shows their length, not their bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}({}#{} by {}, {} bytes)",
            self.phase,
            self.instance.origin,
            self.instance.seq,
            self.signer,
            self.payload.len()
        )
    }
}

impl Wire for BroadcastMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.phase.tag());
        self.instance.origin.encode(out);
        self.instance.seq.encode(out);
        self.signer.encode(out);
        put_bytes(out, &self.payload);
        out.extend_from_slice(self.signature.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let phase = Phase::from_tag(r.u8()?)?;
        let origin = NodeId::decode(r)?;
        let seq = u64::decode(r)?;
        let signer = NodeId::decode(r)?;
        let payload = r.byte_vec("broadcast payload", PAYLOAD_BYTES_MAX)?;
        let signature = Signature::from_bytes(r.array::<SIGNATURE_BYTES>()?);
        Ok(BroadcastMessage {
            phase,
            instance: InstanceId { origin, seq },
            signer,
            payload,
            signature,
        })
    }

    fn wire_len(&self) -> usize {
        1 + 4 + 8 + 4 + varint_len(self.payload.len() as u64) + self.payload.len() + SIGNATURE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::DecodeLimits;

    fn sample(payload: Vec<u8>) -> BroadcastMessage {
        BroadcastMessage {
            phase: Phase::Ready,
            instance: InstanceId {
                origin: NodeId(2),
                seq: 77,
            },
            signer: NodeId(1),
            payload,
            signature: Signature::from_bytes([7; SIGNATURE_BYTES]),
        }
    }

    #[test]
    fn roundtrips_with_exact_wire_len() {
        let m = sample(b"hello".to_vec());
        let bytes = m.to_bytes();
        assert_eq!(bytes.len(), m.wire_len());
        assert_eq!(
            BroadcastMessage::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Ok(m)
        );
    }

    #[test]
    fn largest_payload_fits_one_message_and_larger_is_rejected() {
        let m = sample(vec![0; PAYLOAD_BYTES_MAX]);
        assert!(m.wire_len() <= DecodeLimits::MESSAGE.input_bytes_max);
        assert!(BroadcastMessage::from_bytes(&m.to_bytes(), DecodeLimits::MESSAGE).is_ok());
        let too_big = sample(vec![0; PAYLOAD_BYTES_MAX + 1]);
        assert!(matches!(
            BroadcastMessage::from_bytes(&too_big.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "broadcast payload",
                ..
            })
        ));
    }

    #[test]
    fn unknown_phase_is_rejected() {
        let mut bytes = sample(vec![]).to_bytes();
        bytes[0] = 3;
        assert_eq!(
            BroadcastMessage::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::UnknownTag {
                what: "broadcast phase",
                tag: 3
            })
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = BroadcastMessage::from_bytes(&bytes, DecodeLimits::MESSAGE);
        }
    }
}
