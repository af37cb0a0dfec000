//! Datagram layouts of the link protocol (WireGuard's message shapes over Noise IK), with exact
//! lengths so a datagram is checked for size before any cryptography touches it.
//!
//! All integers little-endian. `sender`/`receiver` are random 32-bit session indices chosen by
//! each side, so a datagram finds its session without trial decryption.
//! - initiation (141 bytes): `1, sender: u32, noise IK message 1 (104), mac1 (16), mac2 (16)`
//! - response (89 bytes): `2, sender: u32, receiver: u32, noise IK message 2 (48), mac1, mac2`
//! - cookie reply (61 bytes): `3, receiver: u32, nonce (24), sealed cookie (32)`
//! - data (29 bytes or more): `4, receiver: u32, nonce: u64, sealed records (+16-byte tag)`

use crate::noise::{Mac16, AEAD_TAG_LEN, COOKIE_NONCE_LEN, MAC_LEN};

/// First byte of a handshake initiation.
pub const TYPE_INIT: u8 = 1;
/// First byte of a handshake response.
pub const TYPE_RESPONSE: u8 = 2;
/// First byte of a cookie reply.
pub const TYPE_COOKIE: u8 = 3;
/// First byte of a data datagram.
pub const TYPE_DATA: u8 = 4;

/// Bytes of the initiator's handshake payload: its wall-clock timestamp in nanoseconds, which
/// must grow between initiations so a replayed initiation is refused.
pub const INIT_PAYLOAD_LEN: usize = 8;
/// Noise IK message 1: ephemeral key, encrypted static key, encrypted payload.
pub const INIT_NOISE_LEN: usize = 32 + (32 + AEAD_TAG_LEN) + (INIT_PAYLOAD_LEN + AEAD_TAG_LEN);
/// Noise IK message 2: ephemeral key and an encrypted empty payload.
pub const RESPONSE_NOISE_LEN: usize = 32 + AEAD_TAG_LEN;

/// Length of an initiation.
pub const INIT_LEN: usize = 1 + 4 + INIT_NOISE_LEN + 2 * MAC_LEN;
/// Length of a response.
pub const RESPONSE_LEN: usize = 1 + 4 + 4 + RESPONSE_NOISE_LEN + 2 * MAC_LEN;
/// Length of a cookie reply.
pub const COOKIE_LEN: usize = 1 + 4 + COOKIE_NONCE_LEN + MAC_LEN + AEAD_TAG_LEN;
/// Bytes of a data datagram before the ciphertext.
pub const DATA_HEADER_LEN: usize = 1 + 4 + 8;
/// Bytes a data datagram adds to its plaintext.
pub const DATA_OVERHEAD_LEN: usize = DATA_HEADER_LEN + AEAD_TAG_LEN;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn mac_at(bytes: &[u8], at: usize) -> Mac16 {
    let mut m = [0u8; MAC_LEN];
    m.copy_from_slice(&bytes[at..at + MAC_LEN]);
    m
}

/// The MAC fields at the end of a handshake packet.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeMacs {
    /// Offset of `mac1`: it covers `packet[..mac1_at]`.
    pub mac1_at: usize,
    /// The `mac1` field.
    pub mac1: Mac16,
    /// The `mac2` field: covers `packet[..mac1_at + MAC_LEN]`.
    pub mac2: Mac16,
}

impl HandshakeMacs {
    /// The MAC fields of a handshake packet of exactly `len` bytes.
    pub fn of(packet: &[u8]) -> HandshakeMacs {
        let mac1_at = packet.len() - 2 * MAC_LEN;
        HandshakeMacs {
            mac1_at,
            mac1: mac_at(packet, mac1_at),
            mac2: mac_at(packet, mac1_at + MAC_LEN),
        }
    }
}

/// A length-checked initiation.
pub struct Init<'a> {
    /// The initiator's session index.
    pub sender: u32,
    /// The Noise message.
    pub noise: &'a [u8],
}

impl<'a> Init<'a> {
    /// Parse an initiation of exactly [`INIT_LEN`] bytes.
    pub fn parse(packet: &'a [u8]) -> Option<Init<'a>> {
        (packet.len() == INIT_LEN).then(|| Init {
            sender: u32_at(packet, 1),
            noise: &packet[5..5 + INIT_NOISE_LEN],
        })
    }

    /// An initiation with zeroed MAC fields (the caller fills them).
    pub fn build(sender: u32, noise: &[u8]) -> Vec<u8> {
        debug_assert_eq!(noise.len(), INIT_NOISE_LEN);
        let mut out = Vec::with_capacity(INIT_LEN);
        out.push(TYPE_INIT);
        out.extend_from_slice(&sender.to_le_bytes());
        out.extend_from_slice(noise);
        out.resize(INIT_LEN, 0);
        out
    }
}

/// A length-checked response.
pub struct Response<'a> {
    /// The responder's session index.
    pub sender: u32,
    /// The initiator's session index, echoed.
    pub receiver: u32,
    /// The Noise message.
    pub noise: &'a [u8],
}

impl<'a> Response<'a> {
    /// Parse a response of exactly [`RESPONSE_LEN`] bytes.
    pub fn parse(packet: &'a [u8]) -> Option<Response<'a>> {
        (packet.len() == RESPONSE_LEN).then(|| Response {
            sender: u32_at(packet, 1),
            receiver: u32_at(packet, 5),
            noise: &packet[9..9 + RESPONSE_NOISE_LEN],
        })
    }

    /// A response with zeroed MAC fields.
    pub fn build(sender: u32, receiver: u32, noise: &[u8]) -> Vec<u8> {
        debug_assert_eq!(noise.len(), RESPONSE_NOISE_LEN);
        let mut out = Vec::with_capacity(RESPONSE_LEN);
        out.push(TYPE_RESPONSE);
        out.extend_from_slice(&sender.to_le_bytes());
        out.extend_from_slice(&receiver.to_le_bytes());
        out.extend_from_slice(noise);
        out.resize(RESPONSE_LEN, 0);
        out
    }
}

/// Write `mac1` and `mac2` into a handshake packet built with zeroed MAC fields.
pub fn set_macs(packet: &mut [u8], mac1: &Mac16, mac2: &Mac16) {
    let at = packet.len() - 2 * MAC_LEN;
    packet[at..at + MAC_LEN].copy_from_slice(mac1);
    packet[at + MAC_LEN..].copy_from_slice(mac2);
}

/// A length-checked cookie reply.
pub struct CookieReply<'a> {
    /// The initiator's session index, echoed.
    pub receiver: u32,
    /// The random AEAD nonce.
    pub nonce: [u8; COOKIE_NONCE_LEN],
    /// The sealed cookie.
    pub sealed: &'a [u8],
}

impl<'a> CookieReply<'a> {
    /// Parse a cookie reply of exactly [`COOKIE_LEN`] bytes.
    pub fn parse(packet: &'a [u8]) -> Option<CookieReply<'a>> {
        if packet.len() != COOKIE_LEN {
            return None;
        }
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        nonce.copy_from_slice(&packet[5..5 + COOKIE_NONCE_LEN]);
        Some(CookieReply {
            receiver: u32_at(packet, 1),
            nonce,
            sealed: &packet[5 + COOKIE_NONCE_LEN..],
        })
    }

    /// A cookie reply.
    pub fn build(receiver: u32, nonce: &[u8; COOKIE_NONCE_LEN], sealed: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(COOKIE_LEN);
        out.push(TYPE_COOKIE);
        out.extend_from_slice(&receiver.to_le_bytes());
        out.extend_from_slice(nonce);
        out.extend_from_slice(sealed);
        out
    }
}

/// A data datagram's header, checked for the minimum length.
pub struct DataHeader<'a> {
    /// The receiver's session index.
    pub receiver: u32,
    /// The explicit AEAD nonce.
    pub nonce: u64,
    /// The sealed records.
    pub ciphertext: &'a [u8],
}

impl<'a> DataHeader<'a> {
    /// Parse a data datagram of at least [`DATA_OVERHEAD_LEN`] bytes.
    pub fn parse(packet: &'a [u8]) -> Option<DataHeader<'a>> {
        if packet.len() < DATA_OVERHEAD_LEN {
            return None;
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&packet[5..13]);
        Some(DataHeader {
            receiver: u32_at(packet, 1),
            nonce: u64::from_le_bytes(nonce),
            ciphertext: &packet[DATA_HEADER_LEN..],
        })
    }

    /// Write the header of a data datagram into `out[..DATA_HEADER_LEN]`.
    pub fn write(out: &mut [u8], receiver: u32, nonce: u64) {
        out[0] = TYPE_DATA;
        out[1..5].copy_from_slice(&receiver.to_le_bytes());
        out[5..13].copy_from_slice(&nonce.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_documented_layout() {
        assert_eq!(INIT_LEN, 141);
        assert_eq!(RESPONSE_LEN, 89);
        assert_eq!(COOKIE_LEN, 61);
        assert_eq!(DATA_OVERHEAD_LEN, 29);
    }

    #[test]
    fn packets_of_the_wrong_length_do_not_parse() {
        let init = Init::build(7, &[0; INIT_NOISE_LEN]);
        assert_eq!(Init::parse(&init).map(|i| i.sender), Some(7));
        assert!(Init::parse(&init[..INIT_LEN - 1]).is_none());
        let response = Response::build(1, 2, &[0; RESPONSE_NOISE_LEN]);
        assert_eq!(
            Response::parse(&response).map(|r| (r.sender, r.receiver)),
            Some((1, 2))
        );
        assert!(Response::parse(&response[..10]).is_none());
        assert!(DataHeader::parse(&[TYPE_DATA; DATA_OVERHEAD_LEN - 1]).is_none());
        assert!(CookieReply::parse(&[TYPE_COOKIE; COOKIE_LEN + 1]).is_none());
    }
}
