//! Keyed MACs (HMAC-SHA256) and the derivation of pairwise keys.
//!
//! Paper 004, section 2: each dependable forwarder "shares a symmetric key with each other DF and
//! with each local server for computing message authentication codes"; DESIGN.md section 7 lets
//! the voting proxy accept MACed results. Tags are compared in constant time (`subtle`).
//!
//! Cost to charge: `Mac` with `bytes` = the message length, per tag computed or checked.

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::key_text::{fixed_from_hex, KeyParseError};

/// Bytes in a MAC key.
pub const MAC_KEY_BYTES: usize = 32;
/// Bytes in a MAC tag.
pub const MAC_TAG_BYTES: usize = 32;

/// A tag did not match: wrong key, wrong message, or a tampered tag.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[error("MAC tag does not match (wrong key, wrong message, or tampered tag)")]
pub struct InvalidTag;

/// A secret MAC key. `Debug` never prints it; it is zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MacKey([u8; MAC_KEY_BYTES]);

impl MacKey {
    /// A key from its bytes (a key file, a derivation).
    pub fn from_bytes(bytes: [u8; MAC_KEY_BYTES]) -> MacKey {
        MacKey(bytes)
    }

    /// The key's bytes, for a key file.
    pub fn as_bytes(&self) -> &[u8; MAC_KEY_BYTES] {
        &self.0
    }

    /// Read a key written as hex.
    pub fn from_hex(text: &str) -> Result<MacKey, KeyParseError> {
        Ok(MacKey(*fixed_from_hex::<MAC_KEY_BYTES>(text)?))
    }

    /// A fresh key from a cryptographically secure RNG.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> MacKey {
        let mut key = MacKey([0; MAC_KEY_BYTES]);
        rng.fill_bytes(&mut key.0);
        key
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; a 32-byte key cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(e) => unreachable!("HMAC-SHA256 takes any key length: {e}"),
        }
    }

    /// The tag of `message`.
    pub fn tag(&self, message: &[u8]) -> MacTag {
        self.tag_parts(&[message])
    }

    /// The tag of the concatenation of `parts` (no copy; the caller fixes the framing).
    pub fn tag_parts(&self, parts: &[&[u8]]) -> MacTag {
        let mut mac = self.hmac();
        for part in parts {
            mac.update(part);
        }
        MacTag(mac.finalize().into_bytes().into())
    }

    /// Check `tag` on `message` in constant time.
    pub fn verify(&self, message: &[u8], tag: &MacTag) -> Result<(), InvalidTag> {
        match bool::from(self.tag(message).0.ct_eq(&tag.0)) {
            true => Ok(()),
            false => Err(InvalidTag),
        }
    }

    /// The key two parties `a` and `b` share, derived from this master key for `purpose`.
    /// Symmetric: `derive_pairwise(x, a, b) == derive_pairwise(x, b, a)`. Keys for different
    /// purposes or pairs are independent (HMAC as a PRF over a length-framed label).
    pub fn derive_pairwise(&self, purpose: &[u8], a: u64, b: u64) -> MacKey {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let label = b"stockade/mac/pairwise";
        MacKey(
            self.tag_parts(&[
                label,
                &(purpose.len() as u64).to_le_bytes(),
                purpose,
                &low.to_le_bytes(),
                &high.to_le_bytes(),
            ])
            .0,
        )
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// An HMAC-SHA256 tag. Equality on tags is not constant time: compare with [`MacKey::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacTag(pub [u8; MAC_TAG_BYTES]);

short_hex_debug!(MacTag, "mac");

fixed_bytes_wire!(MacTag, MAC_TAG_BYTES);

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_core::{DecodeLimits, Wire};

    #[test]
    fn rfc_4231_test_case_2() {
        // Key "Jefe" is shorter than 32 bytes; check the primitive through the HMAC crate directly.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("any key length");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tags_verify_and_fail_on_wrong_key_message_or_tag() {
        let key = MacKey::from_bytes([7; 32]);
        let tag = key.tag(b"m");
        assert_eq!(key.verify(b"m", &tag), Ok(()));
        assert_eq!(key.verify(b"n", &tag), Err(InvalidTag));
        assert_eq!(
            MacKey::from_bytes([8; 32]).verify(b"m", &tag),
            Err(InvalidTag)
        );
        let mut tampered = tag;
        tampered.0[31] ^= 1;
        assert_eq!(key.verify(b"m", &tampered), Err(InvalidTag));
        assert_eq!(key.tag_parts(&[b"a", b"bc"]), key.tag(b"abc"));
    }

    #[test]
    fn pairwise_keys_are_symmetric_and_independent() {
        let master = MacKey::from_bytes([1; 32]);
        let ab = master.derive_pairwise(b"df-link", 3, 9);
        assert_eq!(ab, master.derive_pairwise(b"df-link", 9, 3));
        assert_ne!(ab, master.derive_pairwise(b"df-link", 3, 10));
        assert_ne!(ab, master.derive_pairwise(b"proxy", 3, 9));
        assert_ne!(
            ab,
            MacKey::from_bytes([2; 32]).derive_pairwise(b"df-link", 3, 9)
        );
        assert_eq!(format!("{ab:?}"), "MacKey(..)");
    }

    #[test]
    fn key_hex_and_tag_wire() {
        let key = MacKey::from_hex(&"ab".repeat(32)).expect("hex");
        assert_eq!(key.as_bytes(), &[0xab; 32]);
        assert!(matches!(
            MacKey::from_hex("abab"),
            Err(KeyParseError::WrongLength { .. })
        ));
        let tag = key.tag(b"x");
        assert_eq!(
            MacTag::from_bytes(&tag.to_bytes(), DecodeLimits::MESSAGE),
            Ok(tag)
        );
    }
}
