//! The cryptographic pieces of a link besides the Noise library itself: the Noise parameters, the
//! WireGuard-style `mac1`/`mac2` fields of handshake packets and the encrypted cookie reply.
//!
//! `mac1` (keyed by the receiver's public key) lets a node drop handshake packets from anyone who
//! does not even know its public key without doing any Diffie-Hellman work. `mac2` (keyed by a
//! cookie bound to the sender's address) is demanded only under load: it proves the initiator
//! can receive at the address it claims, so a flood from spoofed addresses costs the responder a
//! MAC per packet, not a DH.

use std::net::SocketAddr;

use blake2::digest::consts::U16;
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::keys::{PublicKey, KEY_LEN};

/// The Noise protocol every link speaks. IK: the initiator knows the responder's static key in
/// advance (peers are configured), and the handshake takes one round trip.
pub const NOISE_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// Bound into every handshake hash, so a stockade handshake never verifies as another protocol's.
pub const NOISE_PROLOGUE: &[u8] = b"stockade link v1";

/// Length of `mac1`, `mac2` and a cookie.
pub const MAC_LEN: usize = 16;

/// Length of the random nonce of a cookie reply.
pub const COOKIE_NONCE_LEN: usize = 24;

/// Length of the AEAD tag.
pub const AEAD_TAG_LEN: usize = 16;

/// A MAC tag or a cookie.
pub type Mac16 = [u8; MAC_LEN];

/// The parsed Noise parameters for [`NOISE_PATTERN`].
pub fn noise_params() -> snow::params::NoiseParams {
    NOISE_PATTERN
        .parse()
        .expect("NOISE_PATTERN is a valid Noise protocol name")
}

fn labelled_hash(label: &[u8; 8], public: &PublicKey) -> [u8; KEY_LEN] {
    let mut hash = Blake2s256::new();
    hash.update(label);
    hash.update(public.0);
    hash.finalize().into()
}

/// The key of `mac1` on packets sent to the holder of `receiver`.
pub fn mac1_key(receiver: &PublicKey) -> [u8; KEY_LEN] {
    labelled_hash(b"mac1----", receiver)
}

/// The key that encrypts cookie replies sent by the holder of `responder`.
pub fn cookie_reply_key(responder: &PublicKey) -> [u8; KEY_LEN] {
    labelled_hash(b"cookie--", responder)
}

/// A 16-byte keyed BLAKE2s MAC of `parts`.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> Mac16 {
    let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(key)
        .expect("BLAKE2s accepts keys of up to 32 bytes; every key here is 16 or 32");
    for part in parts {
        Mac::update(&mut m, part);
    }
    m.finalize().into_bytes().into()
}

/// Compare two tags in constant time.
pub fn mac_eq(a: &Mac16, b: &Mac16) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The cookie for `source` under `secret`: what an initiator at that address must MAC its
/// handshake with while the responder is under load.
pub fn cookie_for(secret: &[u8; KEY_LEN], source: SocketAddr) -> Mac16 {
    let port = source.port().to_le_bytes();
    match source.ip() {
        std::net::IpAddr::V4(ip) => mac(secret, &[&ip.octets(), &port]),
        std::net::IpAddr::V6(ip) => mac(secret, &[&ip.octets(), &port]),
    }
}

/// Encrypt `cookie` for the initiator, bound to the `mac1` of the packet it answers.
pub fn seal_cookie(
    key: &[u8; KEY_LEN],
    nonce: &[u8; COOKIE_NONCE_LEN],
    cookie: &Mac16,
    mac1: &Mac16,
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: cookie,
                aad: mac1,
            },
        )
        .expect("sealing 16 bytes cannot exceed the AEAD's length limit")
}

/// Decrypt a cookie reply; `None` when it was not sealed for the packet whose `mac1` is given.
pub fn open_cookie(
    key: &[u8; KEY_LEN],
    nonce: &[u8; COOKIE_NONCE_LEN],
    sealed: &[u8],
    mac1: &Mac16,
) -> Option<Mac16> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: mac1,
            },
        )
        .ok()?;
    plain.as_slice().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_bind_to_the_address_and_replies_to_the_mac1() {
        let secret = [7u8; KEY_LEN];
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("literal address");
        let b: SocketAddr = "127.0.0.1:4001".parse().expect("literal address");
        assert_ne!(cookie_for(&secret, a), cookie_for(&secret, b));
        let key = cookie_reply_key(&PublicKey([1; KEY_LEN]));
        let nonce = [3u8; COOKIE_NONCE_LEN];
        let cookie = cookie_for(&secret, a);
        let sealed = seal_cookie(&key, &nonce, &cookie, &[9; MAC_LEN]);
        assert_eq!(
            open_cookie(&key, &nonce, &sealed, &[9; MAC_LEN]),
            Some(cookie)
        );
        assert_eq!(
            open_cookie(&key, &nonce, &sealed, &[8; MAC_LEN]),
            None,
            "bound to the mac1"
        );
    }

    #[test]
    fn mac_eq_compares_every_byte() {
        let a = mac(&[1; 32], &[b"x"]);
        let mut b = a;
        assert!(mac_eq(&a, &b));
        b[15] ^= 1;
        assert!(!mac_eq(&a, &b));
    }
}
