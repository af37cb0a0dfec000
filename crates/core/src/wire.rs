//! The wire codec: a small hand-written binary format with bounded decoding.
//!
//! Every message that crosses a network implements [`Wire`]. Decoding never trusts a length: each
//! length prefix is checked against the bytes that remain and against an allocation budget
//! ([`DecodeLimits`]), so a hostile datagram cannot make a node allocate more than the limit or
//! panic. Integers are fixed-width little-endian except lengths and tags, which are canonical
//! LEB128 varints (a non-minimal encoding is rejected, so every value has exactly one encoding).
//!
//! A framed message ([`encode_frame`], [`decode_frame`]) is a version byte followed by the message;
//! trailing bytes are an error.

use thiserror::Error;

/// The wire format version this build speaks.
pub const WIRE_VERSION: u8 = 1;

/// Why a message could not be decoded. Drivers count these and drop the input.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("truncated input: needed {needed} more bytes")]
    Truncated {
        /// How many more bytes were needed.
        needed: usize,
    },
    /// A length prefix exceeds what the input or the limits allow.
    #[error("length {len} of {what} exceeds limit {limit}")]
    TooLong {
        /// What was being decoded.
        what: &'static str,
        /// The claimed length.
        len: u64,
        /// The limit it broke.
        limit: u64,
    },
    /// Decoding would allocate more than the budget allows.
    #[error("allocation budget exceeded")]
    BudgetExceeded,
    /// An enum tag that no variant has.
    #[error("unknown tag {tag} for {what}")]
    UnknownTag {
        /// What was being decoded.
        what: &'static str,
        /// The tag found.
        tag: u64,
    },
    /// A varint that is overlong or overflows.
    #[error("malformed varint")]
    BadVarint,
    /// Bytes remained after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The frame's version byte is not one this build speaks.
    #[error("unsupported wire version {0}")]
    BadVersion(u8),
    /// A field's value is out of its allowed range.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Bounds on one decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest input accepted, in bytes.
    pub input_bytes_max: usize,
    /// Largest total of heap bytes decoding may allocate.
    pub alloc_bytes_max: usize,
    /// Deepest nesting of containers.
    pub depth_max: u32,
}

impl DecodeLimits {
    /// Limits for one network message of up to 64 KiB (the runtime's reassembly limit).
    pub const MESSAGE: DecodeLimits = DecodeLimits {
        input_bytes_max: 64 * 1024,
        alloc_bytes_max: 4 * 64 * 1024,
        depth_max: 16,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::MESSAGE
    }
}

/// A cursor over untrusted input with an allocation budget.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    alloc_left: usize,
    depth_left: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` with `limits`. Fails if `buf` is longer than the input limit.
    pub fn new(buf: &'a [u8], limits: DecodeLimits) -> Result<Self, DecodeError> {
        if buf.len() > limits.input_bytes_max {
            return Err(DecodeError::TooLong {
                what: "input",
                len: buf.len() as u64,
                limit: limits.input_bytes_max as u64,
            });
        }
        Ok(Reader {
            buf,
            pos: 0,
            alloc_left: limits.alloc_bytes_max,
            depth_left: limits.depth_max,
        })
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fail unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Take `n` bytes without copying.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Take a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    /// A canonical LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = (byte & 0x7f) as u64;
            if i == 9 && bits > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // Minimal: the last byte of a multi-byte varint is never zero.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::BadVarint);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// A length prefix for `what`: at most `max`, and at most the bytes left (each item takes one or more).
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len,
                limit: max as u64,
            });
        }
        // Every item takes at least one byte, so a length beyond the input is a lie.
        if len > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                needed: len as usize - self.remaining(),
            });
        }
        Ok(len as usize)
    }

    /// Charge `bytes` of heap allocation against the budget.
    pub fn reserve(&mut self, bytes: usize) -> Result<(), DecodeError> {
        self.alloc_left = self
            .alloc_left
            .checked_sub(bytes)
            .ok_or(DecodeError::BudgetExceeded)?;
        Ok(())
    }

    /// Enter a nested container; pair with [`Reader::leave`].
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth_left = self
            .depth_left
            .checked_sub(1)
            .ok_or(DecodeError::Invalid("nesting depth"))?;
        Ok(())
    }

    /// Leave a nested container.
    pub fn leave(&mut self) {
        self.depth_left += 1;
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn byte_vec(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let n = self.len(what, max)?;
        self.reserve(n)?;
        Ok(self.bytes(n)?.to_vec())
    }

    /// A vector of at most `max` items, each decoded by `T::decode`.
    pub fn vec_of<T: Wire>(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.len(what, max)?;
        self.reserve(n.saturating_mul(std::mem::size_of::<T>()))?;
        self.enter()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::decode(self)?);
        }
        self.leave();
        Ok(out)
    }
}

/// Write a canonical LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes a varint of `v` takes.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.max(1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Write a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Write a length-prefixed vector.
pub fn put_vec<T: Wire>(out: &mut Vec<u8>, items: &[T]) {
    put_varint(out, items.len() as u64);
    for item in items {
        item.encode(out);
    }
}

/// A value with a wire encoding. `decode(encode(x)) == x`, and decode never panics.
pub trait Wire: Sized {
    /// Append the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decode one value from `r`, within its limits.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The encoded length. Override when it can be computed without encoding: the simulator calls
    /// it for every message to charge link bandwidth.
    fn wire_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.len()
    }
    /// The encoding as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out);
        out
    }
    /// Decode a whole buffer with `limits`; trailing bytes are an error.
    fn from_bytes(bytes: &[u8], limits: DecodeLimits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, limits)?;
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Encode a framed message: the version byte, then the message.
pub fn encode_frame<M: Wire>(message: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.wire_len());
    out.push(WIRE_VERSION);
    message.encode(&mut out);
    out
}

/// Decode a framed message, checking the version byte and that nothing trails it.
pub fn decode_frame<M: Wire>(bytes: &[u8], limits: DecodeLimits) -> Result<M, DecodeError> {
    let mut r = Reader::new(bytes, limits)?;
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    let m = M::decode(&mut r)?;
    r.finish()?;
    Ok(m)
}

macro_rules! fixed_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
            fn wire_len(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
    )*};
}
fixed_int!(u16, u32, u64, u128, i64);

// `u8` deliberately does not implement `Wire`, so that `Vec<u8>` can be a length-prefixed byte
// string instead of a vector of one-byte items. Use `Reader::u8` and `out.push` for single bytes.

impl Wire for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(DecodeError::UnknownTag {
                what: "bool",
                tag: t as u64,
            }),
        }
    }
    fn wire_len(&self) -> usize {
        1
    }
}

impl<const N: usize> Wire for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array()
    }
    fn wire_len(&self) -> usize {
        N
    }
}

/// The largest byte string or vector a generic decode accepts; protocols with tighter limits
/// decode with [`Reader::byte_vec`] and [`Reader::vec_of`] directly.
pub const GENERIC_LEN_MAX: usize = 64 * 1024;

impl Wire for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.byte_vec("bytes", GENERIC_LEN_MAX)
    }
    fn wire_len(&self) -> usize {
        varint_len(self.len() as u64) + self.len()
    }
}

impl Wire for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.byte_vec("string", GENERIC_LEN_MAX)?;
        String::from_utf8(bytes).map_err(|_| DecodeError::Invalid("utf-8 string"))
    }
    fn wire_len(&self) -> usize {
        varint_len(self.len() as u64) + self.len()
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_vec(out, self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.vec_of("vector", GENERIC_LEN_MAX)
    }
    fn wire_len(&self) -> usize {
        varint_len(self.len() as u64) + self.iter().map(Wire::wire_len).sum::<usize>()
    }
}

impl<T: Wire> Wire for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            t => Err(DecodeError::UnknownTag {
                what: "option",
                tag: t as u64,
            }),
        }
    }
    fn wire_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Wire::wire_len)
    }
}

impl<A: Wire, B: Wire> Wire for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(r)?, B::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        self.0.wire_len() + self.1.wire_len()
    }
}

impl<A: Wire, B: Wire, C: Wire> Wire for (A, B, C) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
        self.2.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(r)?, B::decode(r)?, C::decode(r)?))
    }
    fn wire_len(&self) -> usize {
        self.0.wire_len() + self.1.wire_len() + self.2.wire_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip<T: Wire + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes();
        assert_eq!(
            bytes.len(),
            v.wire_len(),
            "wire_len matches encoding of {v:?}"
        );
        let back = T::from_bytes(&bytes, DecodeLimits::MESSAGE).expect("decodes");
        assert_eq!(back, v);
    }

    #[test]
    fn primitives_roundtrip() {
        roundtrip(7u16);
        roundtrip(u64::MAX);
        roundtrip(-5i64);
        roundtrip(true);
        roundtrip([9u8; 32]);
        roundtrip(vec![1u8, 2, 3]);
        roundtrip("stockade".to_string());
        roundtrip(Some(vec![1u32, 2]));
        roundtrip((3u32, vec![vec![1u8]], None::<u64>));
    }

    #[test]
    fn varints_are_canonical() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = Reader::new(&out, DecodeLimits::MESSAGE).expect("reader");
            assert_eq!(r.varint(), Ok(v));
        }
        // 1 encoded in two bytes is overlong.
        let mut r = Reader::new(&[0x81, 0x00], DecodeLimits::MESSAGE).expect("reader");
        assert_eq!(r.varint(), Err(DecodeError::BadVarint));
        // Eleven continuation bytes overflow.
        let mut r = Reader::new(&[0xff; 11], DecodeLimits::MESSAGE).expect("reader");
        assert_eq!(r.varint(), Err(DecodeError::BadVarint));
    }

    #[test]
    fn lying_lengths_are_rejected_before_allocating() {
        // A vector claiming 2^40 items in a 6-byte input.
        let mut bytes = Vec::new();
        put_varint(&mut bytes, 1 << 40);
        assert!(matches!(
            Vec::<u64>::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong { .. })
        ));
        // A byte string longer than the input.
        let mut bytes = Vec::new();
        put_varint(&mut bytes, 100);
        bytes.extend_from_slice(&[0; 10]);
        assert!(matches!(
            Vec::<u8>::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn allocation_budget_is_enforced() {
        let v: Vec<Vec<u8>> = (0..100).map(|_| vec![0u8; 100]).collect();
        let bytes = v.to_bytes();
        let tight = DecodeLimits {
            input_bytes_max: 1 << 20,
            alloc_bytes_max: 5_000,
            depth_max: 8,
        };
        assert_eq!(
            Vec::<Vec<u8>>::from_bytes(&bytes, tight),
            Err(DecodeError::BudgetExceeded)
        );
        assert!(Vec::<Vec<u8>>::from_bytes(&bytes, DecodeLimits::MESSAGE).is_ok());
    }

    #[test]
    fn nesting_depth_is_enforced() {
        type Deep = Vec<Vec<Vec<Vec<u32>>>>;
        let v: Deep = vec![vec![vec![vec![1]]]];
        let bytes = v.to_bytes();
        let shallow = DecodeLimits {
            depth_max: 2,
            ..DecodeLimits::MESSAGE
        };
        assert_eq!(
            Deep::from_bytes(&bytes, shallow),
            Err(DecodeError::Invalid("nesting depth"))
        );
        assert!(Deep::from_bytes(&bytes, DecodeLimits::MESSAGE).is_ok());
    }

    #[test]
    fn frames_check_version_and_trailing_bytes() {
        let mut f = encode_frame(&42u32);
        assert_eq!(decode_frame::<u32>(&f, DecodeLimits::MESSAGE), Ok(42));
        f.push(0);
        assert_eq!(
            decode_frame::<u32>(&f, DecodeLimits::MESSAGE),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut g = encode_frame(&42u32);
        g[0] = 99;
        assert_eq!(
            decode_frame::<u32>(&g, DecodeLimits::MESSAGE),
            Err(DecodeError::BadVersion(99))
        );
        let over = vec![0u8; DecodeLimits::MESSAGE.input_bytes_max + 1];
        assert!(matches!(
            decode_frame::<Vec<u8>>(&over, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong { what: "input", .. })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame::<Vec<(u64, Option<Vec<u8>>, String)>>(&bytes, DecodeLimits::MESSAGE);
        }

        #[test]
        fn nested_roundtrip(v in proptest::collection::vec((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
            roundtrip(v);
        }
    }
}
