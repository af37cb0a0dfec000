//! Reed-Solomon erasure coding for the erasure-coded logical link (paper 004, section 4.1): a
//! message becomes `data` message parts plus `parity` redundant parts, and any `data` of them
//! recover it (MDS(3f+1, f+1) in the paper: `data = f + 1`, `parity = 2f`).
//!
//! Layout: the message's length (u32 little-endian), the message, then zero padding up to a
//! multiple of `data`, cut into `data` equal parts. Decoding checks the length field and that the
//! padding is zero, so a decoded message has exactly one encoding: section 4.1.1's blacklisting
//! re-encodes a decoded message and compares parts to find which sender lied. Parts are not
//! individually verifiable; a wrong part yields a wrong message, caught by the message's threshold
//! signature.
//!
//! Costs to charge: `ErasureEncode` with `bytes` = message length per encode, `ErasureDecode` with
//! `bytes` = message length per decode.

use reed_solomon_erasure::galois_8::ReedSolomon;
use thiserror::Error;

/// The most parts (data + parity) a code may have (DESIGN.md section 5: n <= 64).
pub const SHARDS_MAX: usize = 64;
/// The largest message one encode accepts (bigger transfers are chunked by the protocol).
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;
/// Bytes of the length field in front of the message.
const LENGTH_PREFIX_BYTES: usize = 4;

/// Why a code could not be built, or a message encoded or decoded.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum ErasureError {
    /// The code's parameters are out of range.
    #[error("{data} data + {parity} parity parts is invalid: need data >= 1 and data + parity <= {max}", max = SHARDS_MAX)]
    BadParameters {
        /// Data parts.
        data: usize,
        /// Parity parts.
        parity: usize,
    },
    /// The message is larger than [`MESSAGE_BYTES_MAX`].
    #[error("message of {len} bytes exceeds the limit of {max}; chunk it")]
    MessageTooLarge {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer distinct parts than data parts were given.
    #[error("{have} parts given, {needed} needed to decode")]
    NotEnoughParts {
        /// Distinct parts given.
        have: usize,
        /// Parts needed.
        needed: usize,
    },
    /// A part's index is not one of this code's parts.
    #[error("part index {index} is outside 0..{parts}")]
    PartIndexOutOfRange {
        /// The index given.
        index: usize,
        /// Parts of this code.
        parts: usize,
    },
    /// The same part index was given twice.
    #[error("part {0} given twice")]
    DuplicatePart(usize),
    /// Parts differ in length, or are longer than any encoding of an allowed message.
    #[error("part {index} has {len} bytes, expected {expected}")]
    BadPartLength {
        /// The part.
        index: usize,
        /// Its length.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// The recovered bytes are not an encoding (bad length field or nonzero padding): some part
    /// was wrong or the sender encoded garbage.
    #[error("decoded bytes are not a valid encoding: {0}")]
    Malformed(&'static str),
}

/// A Reed-Solomon code with `data` message parts and `parity` redundant parts.
#[derive(Debug)]
pub struct ErasureCode {
    data: usize,
    parity: usize,
    /// `None` when there is no parity (a 1-server site): parts are then plain slices.
    codec: Option<ReedSolomon>,
}

impl ErasureCode {
    /// A code of `data` message parts and `parity` redundant parts.
    pub fn new(data: usize, parity: usize) -> Result<ErasureCode, ErasureError> {
        if data == 0 || data + parity > SHARDS_MAX {
            return Err(ErasureError::BadParameters { data, parity });
        }
        let codec = match parity {
            0 => None,
            _ => Some(
                ReedSolomon::new(data, parity)
                    .map_err(|_| ErasureError::BadParameters { data, parity })?,
            ),
        };
        Ok(ErasureCode {
            data,
            parity,
            codec,
        })
    }

    /// The MDS(3f+1, f+1) code of paper 004, section 4.1.
    pub fn for_faults(f: usize) -> Result<ErasureCode, ErasureError> {
        ErasureCode::new(f + 1, 2 * f)
    }

    /// Parts needed to decode.
    pub fn data_parts(&self) -> usize {
        self.data
    }

    /// All parts (data + parity).
    pub fn total_parts(&self) -> usize {
        self.data + self.parity
    }

    /// Bytes in each part of a `message_len`-byte message.
    pub fn part_len(&self, message_len: usize) -> usize {
        (LENGTH_PREFIX_BYTES + message_len).div_ceil(self.data)
    }

    /// Encode `message` into [`ErasureCode::total_parts`] parts of equal length.
    pub fn encode(&self, message: &[u8]) -> Result<Vec<Vec<u8>>, ErasureError> {
        if message.len() > MESSAGE_BYTES_MAX {
            return Err(ErasureError::MessageTooLarge {
                len: message.len(),
                max: MESSAGE_BYTES_MAX,
            });
        }
        let part_len = self.part_len(message.len());
        let mut padded = Vec::with_capacity(part_len * self.data);
        padded.extend_from_slice(&(message.len() as u32).to_le_bytes());
        padded.extend_from_slice(message);
        padded.resize(part_len * self.data, 0);
        let mut parts: Vec<Vec<u8>> = padded.chunks(part_len).map(<[u8]>::to_vec).collect();
        parts.resize(self.total_parts(), vec![0; part_len]);
        if let Some(codec) = &self.codec {
            // Parts are equal-length and counted to the code's size: encode cannot fail.
            codec
                .encode(&mut parts)
                .map_err(|_| ErasureError::BadParameters {
                    data: self.data,
                    parity: self.parity,
                })?;
        }
        Ok(parts)
    }

    /// Recover the message from `(part index, part bytes)` pairs; any `data_parts()` distinct
    /// parts suffice and extra parts are used as given (they must be consistent).
    pub fn decode(&self, parts: &[(usize, &[u8])]) -> Result<Vec<u8>, ErasureError> {
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; self.total_parts()];
        let part_len_max = self.part_len(MESSAGE_BYTES_MAX);
        let expected = parts.first().map_or(0, |(_, bytes)| bytes.len());
        for &(index, bytes) in parts {
            let slot = slots
                .get_mut(index)
                .ok_or(ErasureError::PartIndexOutOfRange {
                    index,
                    parts: self.total_parts(),
                })?;
            if bytes.len() != expected || bytes.is_empty() || bytes.len() > part_len_max {
                return Err(ErasureError::BadPartLength {
                    index,
                    len: bytes.len(),
                    expected: expected.min(part_len_max),
                });
            }
            if slot.replace(bytes.to_vec()).is_some() {
                return Err(ErasureError::DuplicatePart(index));
            }
        }
        let have = slots.iter().filter(|s| s.is_some()).count();
        if have < self.data {
            return Err(ErasureError::NotEnoughParts {
                have,
                needed: self.data,
            });
        }
        if let Some(codec) = &self.codec {
            codec
                .reconstruct_data(&mut slots)
                .map_err(|_| ErasureError::NotEnoughParts {
                    have,
                    needed: self.data,
                })?;
        }
        let mut padded = Vec::with_capacity(expected * self.data);
        for part in slots.iter().take(self.data).flatten() {
            padded.extend_from_slice(part);
        }
        let (prefix, rest) = padded.split_at(LENGTH_PREFIX_BYTES.min(padded.len()));
        let length = <[u8; LENGTH_PREFIX_BYTES]>::try_from(prefix)
            .map(|b| u32::from_le_bytes(b) as usize)
            .map_err(|_| ErasureError::Malformed("shorter than the length field"))?;
        if length > rest.len() {
            return Err(ErasureError::Malformed(
                "length field exceeds the decoded bytes",
            ));
        }
        if self.part_len(length) != expected {
            return Err(ErasureError::Malformed(
                "part length does not match the message length",
            ));
        }
        let (message, padding) = rest.split_at(length);
        if padding.iter().any(|&b| b != 0) {
            return Err(ErasureError::Malformed("nonzero padding"));
        }
        Ok(message.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pick<'a>(parts: &'a [Vec<u8>], which: &[usize]) -> Vec<(usize, &'a [u8])> {
        which.iter().map(|&i| (i, &parts[i][..])).collect()
    }

    #[test]
    fn any_f_plus_one_parts_decode() {
        let code = ErasureCode::for_faults(2).expect("3 + 4");
        let message = b"threshold-signed wide-area message".to_vec();
        let parts = code.encode(&message).expect("encodes");
        assert_eq!(parts.len(), 7);
        assert!(parts
            .iter()
            .all(|p| p.len() == code.part_len(message.len())));
        for which in [[0, 1, 2], [4, 5, 6], [0, 3, 6], [6, 1, 4]] {
            assert_eq!(code.decode(&pick(&parts, &which)), Ok(message.clone()));
        }
        assert_eq!(
            code.decode(&pick(&parts, &[0, 1, 2, 3, 4, 5, 6])),
            Ok(message)
        );
    }

    #[test]
    fn empty_message_and_no_parity_work() {
        let code = ErasureCode::new(3, 2).expect("code");
        let parts = code.encode(b"").expect("encodes");
        assert_eq!(code.decode(&pick(&parts, &[1, 3, 4])), Ok(vec![]));
        let single = ErasureCode::for_faults(0).expect("1 + 0");
        let parts = single.encode(b"abc").expect("encodes");
        assert_eq!(single.decode(&pick(&parts, &[0])), Ok(b"abc".to_vec()));
    }

    #[test]
    fn refuses_bad_inputs() {
        assert_eq!(
            ErasureCode::new(0, 3).map(|_| ()),
            Err(ErasureError::BadParameters { data: 0, parity: 3 })
        );
        assert!(ErasureCode::new(40, 25).is_err());
        assert!(ErasureCode::new(40, 24).is_ok());
        let code = ErasureCode::new(2, 2).expect("code");
        assert_eq!(
            code.encode(&vec![0; MESSAGE_BYTES_MAX + 1]).map(|_| ()),
            Err(ErasureError::MessageTooLarge {
                len: MESSAGE_BYTES_MAX + 1,
                max: MESSAGE_BYTES_MAX
            })
        );
        let parts = code.encode(b"hello world").expect("encodes");
        assert_eq!(
            code.decode(&pick(&parts, &[3])),
            Err(ErasureError::NotEnoughParts { have: 1, needed: 2 })
        );
        assert_eq!(
            code.decode(&pick(&parts, &[3, 3])),
            Err(ErasureError::DuplicatePart(3))
        );
        assert_eq!(
            code.decode(&[(4, &parts[0][..]), (1, &parts[1][..])]),
            Err(ErasureError::PartIndexOutOfRange { index: 4, parts: 4 })
        );
        let short = &parts[1][..parts[1].len() - 1];
        assert!(matches!(
            code.decode(&[(0, &parts[0][..]), (1, short)]),
            Err(ErasureError::BadPartLength { index: 1, .. })
        ));
        let huge = vec![0u8; code.part_len(MESSAGE_BYTES_MAX) + 1];
        assert!(matches!(
            code.decode(&[(0, &huge[..]), (1, &huge[..])]),
            Err(ErasureError::BadPartLength { .. })
        ));
    }

    #[test]
    fn a_corrupted_part_is_detected_or_changes_the_message() {
        let code = ErasureCode::for_faults(1).expect("2 + 2");
        let message = vec![0x5a; 100];
        let mut parts = code.encode(&message).expect("encodes");
        parts[0][0] ^= 0xff; // corrupt the length field
        assert!(matches!(
            code.decode(&pick(&parts, &[0, 1])),
            Err(ErasureError::Malformed(_))
        ));
        let mut parts = code.encode(&message).expect("encodes");
        parts[3][10] ^= 1;
        assert_ne!(code.decode(&pick(&parts, &[2, 3])), Ok(message.clone()));
        // Section 4.1.1: given the original message, re-encoding it names the lying part.
        let correct = code.encode(&message).expect("encodes");
        let liars: Vec<usize> = (0..4).filter(|&i| correct[i] != parts[i]).collect();
        assert_eq!(liars, vec![3]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn roundtrip_from_any_data_subset(
            message in proptest::collection::vec(any::<u8>(), 0..600),
            data in 1usize..6, parity in 0usize..5, rotate in 0usize..16,
        ) {
            let code = ErasureCode::new(data, parity).expect("code");
            let parts = code.encode(&message).expect("encodes");
            let n = code.total_parts();
            let which: Vec<usize> = (0..data).map(|i| (i + rotate) % n).collect();
            prop_assert_eq!(code.decode(&pick(&parts, &which)), Ok(message));
        }

        #[test]
        fn decoding_garbage_never_panics(a in proptest::collection::vec(any::<u8>(), 1..40), b in proptest::collection::vec(any::<u8>(), 1..40)) {
            let code = ErasureCode::new(2, 1).expect("code");
            let _ = code.decode(&[(0, &a[..]), (2, &b[..])]);
        }
    }
}
