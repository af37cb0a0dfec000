//! Overlay identifiers: 128-bit node ids and keys on a circular id space, read as digits of b bits.
//!
//! Paper 002, "Pastry: Identifier space" and "Prefix-based routing": ids are uniform on a ring,
//! a key belongs to the live node with the numerically closest id, and routing fixes one digit of
//! base 2^b per hop.

use std::fmt;

use stockade_core::wire::{DecodeError, Reader, Wire};
use thiserror::Error;

/// Bits in an overlay id.
pub const ID_BITS: u32 = 128;

/// A point on the 128-bit identifier ring: a node id or a key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OverlayId(pub u128);

impl OverlayId {
    /// The id built from the first 16 bytes of `bytes` (big-endian), e.g. a SHA-256 digest.
    pub fn from_digest_prefix(bytes: &[u8; 32]) -> OverlayId {
        let mut first = [0u8; 16];
        first.copy_from_slice(&bytes[..16]);
        OverlayId(u128::from_be_bytes(first))
    }

    /// Distance going clockwise (increasing ids, wrapping) from `self` to `other`.
    pub fn clockwise_to(self, other: OverlayId) -> u128 {
        other.0.wrapping_sub(self.0)
    }

    /// The shorter way around the ring between the two ids.
    pub fn ring_distance(self, other: OverlayId) -> u128 {
        let cw = self.clockwise_to(other);
        let ccw = other.clockwise_to(self);
        cw.min(ccw)
    }

    /// Orders `a` and `b` by closeness to `self` (as a key), closest first, with the tie rule of
    /// [`OverlayId::prefers`].
    pub fn closeness_order(self, a: OverlayId, b: OverlayId) -> std::cmp::Ordering {
        self.ring_distance(a)
            .cmp(&self.ring_distance(b))
            .then(a.0.cmp(&b.0))
    }

    /// Whether `a` is strictly closer to `self` (as a key) than `b` is. Ties go to the numerically
    /// smaller id, so that every node agrees on one root for every key.
    pub fn prefers(self, a: OverlayId, b: OverlayId) -> bool {
        let (da, db) = (self.ring_distance(a), self.ring_distance(b));
        da < db || (da == db && a.0 < b.0)
    }
}

impl fmt::Debug for OverlayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 hex digits are enough to tell ids apart in logs.
        write!(f, "<{:08x}..>", (self.0 >> 96) as u32)
    }
}

impl fmt::Display for OverlayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Wire for OverlayId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OverlayId(u128::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        16
    }
}

/// A digit width b that Pastry cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("digit width b={0} is not supported: choose 1, 2, 4 or 8 bits (a divisor of 128 up to 8)")]
pub struct BadDigitBits(pub u32);

/// How ids are split into digits: b bits per digit, most significant digit first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigitBits {
    bits: u32,
}

impl DigitBits {
    /// Pastry's usual b = 4 (hexadecimal digits, 16 columns per routing-table row).
    pub const HEX: DigitBits = DigitBits { bits: 4 };

    /// Digits of `bits` bits; must divide 128 and be at most 8 (a row has 2^b columns).
    pub fn new(bits: u32) -> Result<DigitBits, BadDigitBits> {
        match bits {
            1 | 2 | 4 | 8 => Ok(DigitBits { bits }),
            other => Err(BadDigitBits(other)),
        }
    }

    /// b.
    pub fn bits(self) -> u32 {
        self.bits
    }

    /// Digits in an id: the routing table's largest possible row count.
    pub fn digit_count(self) -> usize {
        (ID_BITS / self.bits) as usize
    }

    /// Values one digit takes: the routing table's column count, 2^b.
    pub fn radix(self) -> usize {
        1 << self.bits
    }

    /// Digit `index` of `id` (0 is the most significant).
    pub fn digit(self, id: OverlayId, index: usize) -> usize {
        debug_assert!(index < self.digit_count());
        let shift = ID_BITS - self.bits * (index as u32 + 1);
        ((id.0 >> shift) & ((1u128 << self.bits) - 1)) as usize
    }

    /// How many leading digits `a` and `b` share.
    pub fn shared_prefix_len(self, a: OverlayId, b: OverlayId) -> usize {
        ((a.0 ^ b.0).leading_zeros() / self.bits) as usize
    }

    /// The first `len` digits of `id` as a number (`len` may be 0..=digit_count).
    pub fn prefix(self, id: OverlayId, len: usize) -> u128 {
        let bits = self.bits * len as u32;
        if bits == 0 {
            0
        } else {
            id.0 >> (ID_BITS - bits)
        }
    }
}

impl Default for DigitBits {
    fn default() -> Self {
        DigitBits::HEX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: OverlayId = OverlayId(0x65a1_fc00_0000_0000_0000_0000_0000_0000);

    #[test]
    fn hex_digits_read_most_significant_first() {
        let b = DigitBits::HEX;
        assert_eq!(b.digit(A, 0), 6);
        assert_eq!(b.digit(A, 1), 5);
        assert_eq!(b.digit(A, 2), 0xa);
        assert_eq!(b.digit(A, 3), 1);
        assert_eq!(b.digit(A, 31), 0);
        assert_eq!(b.digit_count(), 32);
        assert_eq!(b.radix(), 16);
    }

    #[test]
    fn shared_prefix_counts_whole_digits() {
        let b = DigitBits::HEX;
        let other = OverlayId(0x65a2_0000_0000_0000_0000_0000_0000_0000);
        assert_eq!(b.shared_prefix_len(A, other), 3);
        assert_eq!(b.shared_prefix_len(A, A), 32);
        let bin = DigitBits::new(1).expect("b=1 is valid");
        assert_eq!(bin.shared_prefix_len(A, other), 14);
        assert_eq!(b.prefix(A, 2), 0x65);
        assert_eq!(b.prefix(A, 0), 0);
        assert_eq!(b.prefix(A, 32), A.0);
    }

    #[test]
    fn unsupported_digit_widths_are_refused() {
        assert_eq!(DigitBits::new(3), Err(BadDigitBits(3)));
        assert_eq!(DigitBits::new(16), Err(BadDigitBits(16)));
        assert!(DigitBits::new(8).is_ok());
    }

    #[test]
    fn ring_distance_wraps_around_zero() {
        let near_top = OverlayId(u128::MAX - 4);
        let near_zero = OverlayId(5);
        assert_eq!(near_top.ring_distance(near_zero), 10);
        assert_eq!(near_zero.clockwise_to(near_top), u128::MAX - 9);
        assert!(OverlayId(0).prefers(near_zero, OverlayId(100)));
        // Equal distance: the smaller id wins, from either side.
        assert!(OverlayId(10).prefers(OverlayId(8), OverlayId(12)));
        assert!(!OverlayId(10).prefers(OverlayId(12), OverlayId(8)));
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_bounded(a: u128, b: u128) {
            let (a, b) = (OverlayId(a), OverlayId(b));
            prop_assert_eq!(a.ring_distance(b), b.ring_distance(a));
            prop_assert!(a.ring_distance(b) <= 1u128 << 127);
        }

        #[test]
        fn shared_prefix_matches_digits(a: u128, b: u128) {
            let d = DigitBits::HEX;
            let (a, b) = (OverlayId(a), OverlayId(b));
            let l = d.shared_prefix_len(a, b);
            for i in 0..l {
                prop_assert_eq!(d.digit(a, i), d.digit(b, i));
            }
            if l < d.digit_count() {
                prop_assert_ne!(d.digit(a, l), d.digit(b, l));
            }
        }
    }
}
