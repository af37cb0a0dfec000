//! [`Reply`]: what a command answers, independent of the RESP version it is sent in, and its
//! deterministic binary encoding so replies can travel inside replication messages.
//!
//! The voting proxy compares the replies of several servers: two correct servers produce the same
//! `Reply` for the same ordered command, so their encodings are byte-for-byte equal.

use stockade_core::wire::{put_bytes, put_varint, varint_len};
use stockade_core::{DecodeError, Reader, Wire};

use crate::error::KvError;

/// One reply. RESP2 renders [`Reply::Nil`] as a null bulk and [`Reply::Map`] as a flat array;
/// RESP3 has native types for both.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reply {
    /// A status line such as `OK` or `PONG` (no CR or LF inside).
    Simple(String),
    /// An error line; the text starts with its code (`ERR`, `WRONGTYPE`, ...).
    Error(String),
    /// A signed 64-bit integer.
    Integer(i64),
    /// A binary-safe string.
    Bulk(Vec<u8>),
    /// The absent value.
    Nil,
    /// An ordered list of replies.
    Array(Vec<Reply>),
    /// Ordered key-value pairs (HGETALL, HELLO).
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_string())
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(bytes.as_ref().to_vec())
    }

    /// True for [`Reply::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl From<KvError> for Reply {
    fn from(e: KvError) -> Reply {
        // Error lines cannot hold CR or LF (a client-supplied name could carry them).
        Reply::Error(e.to_string().replace(['\r', '\n'], " "))
    }
}

impl From<Result<Reply, KvError>> for Reply {
    fn from(r: Result<Reply, KvError>) -> Reply {
        r.unwrap_or_else(Reply::from)
    }
}

/// Most elements of one decoded array or map: replies can be as long as a KEYS listing, so the
/// real bound is the decode budget; this only keeps a single length prefix honest.
pub const REPLY_ELEMENTS_MAX: usize = 16 * 1024 * 1024;

/// Longest status or error line a decoder accepts.
pub const REPLY_LINE_BYTES_MAX: usize = 64 * 1024;

const TAG_SIMPLE: u8 = 0;
const TAG_ERROR: u8 = 1;
const TAG_INTEGER: u8 = 2;
const TAG_BULK: u8 = 3;
const TAG_NIL: u8 = 4;
const TAG_ARRAY: u8 = 5;
const TAG_MAP: u8 = 6;

fn decode_line(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let bytes = r.byte_vec("reply line", REPLY_LINE_BYTES_MAX)?;
    let line = String::from_utf8(bytes).map_err(|_| DecodeError::Invalid("reply line utf-8"))?;
    if line.contains(['\r', '\n']) {
        return Err(DecodeError::Invalid("reply line with CR or LF"));
    }
    Ok(line)
}

impl Wire for Reply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => {
                out.push(TAG_SIMPLE);
                put_bytes(out, s.as_bytes());
            }
            Reply::Error(s) => {
                out.push(TAG_ERROR);
                put_bytes(out, s.as_bytes());
            }
            Reply::Integer(i) => {
                out.push(TAG_INTEGER);
                i.encode(out);
            }
            Reply::Bulk(b) => {
                out.push(TAG_BULK);
                put_bytes(out, b);
            }
            Reply::Nil => out.push(TAG_NIL),
            Reply::Array(items) => {
                out.push(TAG_ARRAY);
                put_varint(out, items.len() as u64);
                for item in items {
                    item.encode(out);
                }
            }
            Reply::Map(pairs) => {
                out.push(TAG_MAP);
                put_varint(out, pairs.len() as u64);
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            TAG_SIMPLE => Ok(Reply::Simple(decode_line(r)?)),
            TAG_ERROR => Ok(Reply::Error(decode_line(r)?)),
            TAG_INTEGER => Ok(Reply::Integer(i64::decode(r)?)),
            TAG_BULK => Ok(Reply::Bulk(r.byte_vec("bulk reply", usize::MAX)?)),
            TAG_NIL => Ok(Reply::Nil),
            TAG_ARRAY => {
                let n = r.len("reply array", REPLY_ELEMENTS_MAX)?;
                r.reserve(n.saturating_mul(std::mem::size_of::<Reply>()))?;
                r.enter()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(Reply::decode(r)?);
                }
                r.leave();
                Ok(Reply::Array(items))
            }
            TAG_MAP => {
                let n = r.len("reply map", REPLY_ELEMENTS_MAX)?;
                r.reserve(n.saturating_mul(2 * std::mem::size_of::<Reply>()))?;
                r.enter()?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = Reply::decode(r)?;
                    let v = Reply::decode(r)?;
                    pairs.push((k, v));
                }
                r.leave();
                Ok(Reply::Map(pairs))
            }
            tag => Err(DecodeError::UnknownTag {
                what: "reply",
                tag: tag as u64,
            }),
        }
    }

    fn wire_len(&self) -> usize {
        1 + match self {
            Reply::Simple(s) | Reply::Error(s) => varint_len(s.len() as u64) + s.len(),
            Reply::Integer(_) => 8,
            Reply::Bulk(b) => varint_len(b.len() as u64) + b.len(),
            Reply::Nil => 0,
            Reply::Array(items) => {
                varint_len(items.len() as u64) + items.iter().map(Wire::wire_len).sum::<usize>()
            }
            Reply::Map(pairs) => {
                varint_len(pairs.len() as u64)
                    + pairs
                        .iter()
                        .map(|(k, v)| k.wire_len() + v.wire_len())
                        .sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_core::DecodeLimits;

    fn sample() -> Reply {
        Reply::Array(vec![
            Reply::ok(),
            Reply::Error("ERR syntax error".into()),
            Reply::Integer(-7),
            Reply::bulk(b"\x00\xffbin"),
            Reply::Nil,
            Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))]),
        ])
    }

    #[test]
    fn replies_roundtrip_with_exact_length() {
        let r = sample();
        let bytes = r.to_bytes();
        assert_eq!(bytes.len(), r.wire_len());
        assert_eq!(Reply::from_bytes(&bytes, DecodeLimits::MESSAGE), Ok(r));
    }

    #[test]
    fn error_lines_never_carry_newlines() {
        let e = KvError::UnknownCommand {
            name: "a\r\nb".into(),
            args_preview: String::new(),
        };
        assert_eq!(
            Reply::from(e),
            Reply::Error("ERR unknown command 'a  b', with args beginning with: ".into())
        );
        let mut forged = Vec::new();
        forged.push(TAG_ERROR);
        put_bytes(&mut forged, b"ERR x\r\n+OK");
        assert_eq!(
            Reply::from_bytes(&forged, DecodeLimits::MESSAGE),
            Err(DecodeError::Invalid("reply line with CR or LF"))
        );
    }

    #[test]
    fn reply_lines_are_bounded() {
        let fits = Reply::Simple("x".repeat(REPLY_LINE_BYTES_MAX));
        let limits = DecodeLimits {
            input_bytes_max: 1 << 20,
            alloc_bytes_max: 1 << 20,
            depth_max: 4,
        };
        assert_eq!(Reply::from_bytes(&fits.to_bytes(), limits), Ok(fits));
        let over = Reply::Error("x".repeat(REPLY_LINE_BYTES_MAX + 1));
        assert!(matches!(
            Reply::from_bytes(&over.to_bytes(), limits),
            Err(DecodeError::TooLong {
                what: "reply line",
                ..
            })
        ));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut deep = Reply::Nil;
        for _ in 0..40 {
            deep = Reply::Array(vec![deep]);
        }
        let bytes = deep.to_bytes();
        assert_eq!(
            Reply::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Err(DecodeError::Invalid("nesting depth"))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Reply::from_bytes(&bytes, DecodeLimits::MESSAGE);
        }
    }
}
