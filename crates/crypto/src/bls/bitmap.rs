//! A compact, bounded set of signer positions, carried beside an aggregate signature.
//!
//! Bit `i` says whether member `i` of an ordered membership list signed. The wire form is the
//! member count (varint) then `ceil(count / 8)` bytes, least significant bit first; bits past the
//! count must be zero, so every set has exactly one encoding.

use std::fmt;

use stockade_core::wire::{put_varint, varint_len, DecodeError, Reader, Wire};

/// The largest membership a bitmap (and so one multi-signature) covers.
pub const SIGNER_BITMAP_MEMBERS_MAX: usize = 4096;

/// Which members of an ordered membership of `len()` signed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SignerBitmap {
    members: u16,
    bits: Vec<u8>,
}

impl SignerBitmap {
    /// An empty set over `members` members; `None` above [`SIGNER_BITMAP_MEMBERS_MAX`].
    pub fn new(members: usize) -> Option<SignerBitmap> {
        if members > SIGNER_BITMAP_MEMBERS_MAX {
            return None;
        }
        Some(SignerBitmap {
            members: members as u16,
            bits: vec![0; members.div_ceil(8)],
        })
    }

    /// The membership size this bitmap ranges over.
    pub fn len(&self) -> usize {
        self.members as usize
    }

    /// True when the membership is empty.
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// Mark member `index`; returns false (and changes nothing) when `index` is out of range.
    pub fn insert(&mut self, index: usize) -> bool {
        if index >= self.len() {
            return false;
        }
        self.bits[index / 8] |= 1 << (index % 8);
        true
    }

    /// Whether member `index` is marked (false out of range).
    pub fn contains(&self, index: usize) -> bool {
        index < self.len() && self.bits[index / 8] & (1 << (index % 8)) != 0
    }

    /// How many members are marked.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The marked positions, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.contains(i))
    }
}

impl fmt::Debug for SignerBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerBitmap({}/{}: ", self.count(), self.len())?;
        f.debug_list().entries(self.iter()).finish()?;
        f.write_str(")")
    }
}

impl Wire for SignerBitmap {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.members as u64);
        out.extend_from_slice(&self.bits);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let members = r.varint()?;
        if members > SIGNER_BITMAP_MEMBERS_MAX as u64 {
            return Err(DecodeError::TooLong {
                what: "signer bitmap",
                len: members,
                limit: SIGNER_BITMAP_MEMBERS_MAX as u64,
            });
        }
        let members = members as usize;
        let byte_count = members.div_ceil(8);
        r.reserve(byte_count)?;
        let bits = r.bytes(byte_count)?.to_vec();
        let bits_in_last_byte = members % 8;
        if bits_in_last_byte > 0 && bits[byte_count - 1] >> bits_in_last_byte != 0 {
            return Err(DecodeError::Invalid(
                "signer bitmap bits past the member count",
            ));
        }
        Ok(SignerBitmap {
            members: members as u16,
            bits,
        })
    }
    fn wire_len(&self) -> usize {
        varint_len(self.members as u64) + self.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::DecodeLimits;

    #[test]
    fn insert_contains_count_and_bounds() {
        let mut b = SignerBitmap::new(10).expect("small");
        assert!(b.insert(0) && b.insert(9) && b.insert(9));
        assert!(!b.insert(10), "out of range is refused");
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 9]);
        assert!(!b.contains(10) && !b.contains(5));
        assert!(SignerBitmap::new(SIGNER_BITMAP_MEMBERS_MAX).is_some());
        assert!(SignerBitmap::new(SIGNER_BITMAP_MEMBERS_MAX + 1).is_none());
    }

    #[test]
    fn sixty_four_members_take_nine_bytes() {
        let mut b = SignerBitmap::new(64).expect("small");
        (0..64).for_each(|i| {
            b.insert(i);
        });
        assert_eq!(b.to_bytes().len(), 9);
        assert_eq!(b.wire_len(), 9);
    }

    #[test]
    fn decode_rejects_stray_bits_and_oversize() {
        let mut b = SignerBitmap::new(3).expect("small");
        b.insert(2);
        let mut bytes = b.to_bytes();
        assert_eq!(
            SignerBitmap::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Ok(b)
        );
        bytes[1] |= 0x08; // member 3 of a 3-member set
        assert_eq!(
            SignerBitmap::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::Invalid(
                "signer bitmap bits past the member count"
            ))
        );
        let mut huge = Vec::new();
        put_varint(&mut huge, SIGNER_BITMAP_MEMBERS_MAX as u64 + 1);
        huge.extend_from_slice(&[0; 600]);
        assert!(matches!(
            SignerBitmap::from_bytes(&huge, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn roundtrip(members in 0usize..300, picks in proptest::collection::vec(any::<u16>(), 0..40)) {
            let mut b = SignerBitmap::new(members).expect("small");
            for p in picks { b.insert(p as usize % members.max(1)); }
            let bytes = b.to_bytes();
            prop_assert_eq!(bytes.len(), b.wire_len());
            prop_assert_eq!(SignerBitmap::from_bytes(&bytes, DecodeLimits::MESSAGE), Ok(b));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = SignerBitmap::from_bytes(&bytes, DecodeLimits::MESSAGE);
        }
    }
}
