//! SHA-256 digests and domain-separated hashing.
//!
//! Every hash a protocol signs or compares goes through [`hash_parts`], which prefixes a domain and
//! the length of every part, so two different tuples of parts never produce the same input.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// Bytes in a [`Digest`].
pub const DIGEST_BYTES: usize = 32;

/// A SHA-256 digest. `Debug` shows the first four bytes in hex; `Display` shows all of it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; DIGEST_BYTES]);

impl Digest {
    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; DIGEST_BYTES] {
        &self.0
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", hex::encode(&self.0[..4]))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fixed_bytes_wire!(Digest, DIGEST_BYTES);

/// Plain SHA-256 of `bytes`. Prefer [`hash_parts`] for anything that is signed or compared across
/// message types; this is for content addressing of opaque blobs.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest(Sha256::digest(bytes).into())
}

/// SHA-256 over a domain and a tuple of parts, each prefixed by its length (u64 little-endian).
///
/// The domain names the purpose (`b"stockade/prime/po-request"`): digests made for one purpose
/// can never be replayed as digests for another, and the length prefixes make the encoding of the
/// tuple injective (`["ab", "c"]` and `["a", "bc"]` hash differently).
pub fn hash_parts(domain: &[u8], parts: &[&[u8]]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update((domain.len() as u64).to_le_bytes());
    hasher.update(domain);
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Digest(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::wire::{DecodeError, Wire};
    use stockade_core::DecodeLimits;

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parts_are_length_prefixed_and_domains_separate() {
        let a = hash_parts(b"d", &[b"ab", b"c"]);
        let b = hash_parts(b"d", &[b"a", b"bc"]);
        let c = hash_parts(b"e", &[b"ab", b"c"]);
        let d = hash_parts(b"d", &[b"abc"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a, hash_parts(b"d", &[b"ab", b"c"]));
        // The domain is length-prefixed too: moving a byte between domain and part changes it.
        assert_ne!(hash_parts(b"da", &[b"b"]), hash_parts(b"d", &[b"ab"]));
    }

    #[test]
    fn debug_is_short_and_display_is_full() {
        let d = sha256(b"abc");
        assert_eq!(format!("{d:?}"), "#ba7816bf");
        assert_eq!(format!("{d}").len(), 64);
    }

    #[test]
    fn digest_wire_roundtrip_and_truncation() {
        let d = sha256(b"x");
        let bytes = d.to_bytes();
        assert_eq!(bytes.len(), d.wire_len());
        assert_eq!(Digest::from_bytes(&bytes, DecodeLimits::MESSAGE), Ok(d));
        assert!(matches!(
            Digest::from_bytes(&bytes[..31], DecodeLimits::MESSAGE),
            Err(DecodeError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn splitting_parts_differently_changes_the_digest(
            joined in proptest::collection::vec(any::<u8>(), 1..64), cut in 0usize..64, cut2 in 0usize..64
        ) {
            let (c1, c2) = (cut % joined.len(), cut2 % joined.len());
            prop_assume!(c1 != c2);
            let one = hash_parts(b"p", &[&joined[..c1], &joined[c1..]]);
            let two = hash_parts(b"p", &[&joined[..c2], &joined[c2..]]);
            prop_assert_ne!(one, two);
        }
    }
}
