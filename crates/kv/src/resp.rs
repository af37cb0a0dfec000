//! The server side of RESP2/RESP3: requests in (multibulk or inline), replies out.
//!
//! Hand-written rather than built on `redis-protocol`: a server only ever decodes one shape (an
//! array of bulk strings, or an inline line) and must bound each part of it separately, which is
//! a few dozen lines here. Bounds: [`RespLimits`]. A malformed or oversized request yields a
//! [`ProtocolError`] whose reply (`-ERR Protocol error: ...`) the server sends before closing the
//! connection, as Redis does. Requests are decoded one at a time from a buffer that may hold many
//! (pipelining) or part of one.

use bytes::{Buf, BytesMut};
use thiserror::Error;

use crate::command::Bytes;
use crate::limits::{ARGS_MAX, COMMAND_BYTES_MAX, VALUE_BYTES_MAX};
use crate::reply::Reply;

/// The RESP version a connection speaks (HELLO switches it).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum RespVersion {
    /// RESP2, every connection's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// Bounds on one decoded request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RespLimits {
    /// Largest bulk string.
    pub bulk_bytes_max: usize,
    /// Most elements in a multibulk request.
    pub array_len_max: usize,
    /// Longest inline request or header line (Redis's PROTO_INLINE_MAX_SIZE is 64 KiB).
    pub inline_bytes_max: usize,
    /// Most bytes one request may occupy in the buffer, headers included.
    pub request_bytes_max: usize,
}

impl RespLimits {
    /// Bounds that admit every command [`crate::Limits::DEFAULT`] admits.
    pub const DEFAULT: RespLimits = RespLimits {
        bulk_bytes_max: VALUE_BYTES_MAX,
        array_len_max: ARGS_MAX,
        inline_bytes_max: 64 * 1024,
        // Each argument adds at most "$" + 20 digits + 4 bytes of CRLF to its bytes.
        request_bytes_max: COMMAND_BYTES_MAX + 32 * ARGS_MAX,
    };
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits::DEFAULT
    }
}

/// A request that breaks the protocol; the connection answers [`ProtocolError::reply`] and closes.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("ERR Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(what: impl Into<String>) -> ProtocolError {
        ProtocolError(what.into())
    }

    /// The error reply to send before closing.
    pub fn reply(&self) -> Reply {
        Reply::Error(self.to_string())
    }
}

/// What one parse attempt found at the front of the buffer.
enum Parsed {
    /// A request and the bytes it took.
    Request(Vec<Bytes>, usize),
    /// An empty request (blank inline line, `*0`, `*-1`) to skip.
    Empty(usize),
    /// Not all there yet: no point trying again before the buffer holds this many bytes.
    Incomplete(usize),
}

/// Decodes requests from a connection's input buffer.
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    limits: RespLimits,
    /// The buffer length below which the request at the front cannot be complete.
    complete_len_min: usize,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: RespLimits) -> RequestDecoder {
        RequestDecoder {
            limits,
            complete_len_min: 1,
        }
    }

    /// Take the next complete request (`[name, arg, ...]`) off the front of `buf`; `Ok(None)` if
    /// `buf` holds no complete request yet. Empty requests are skipped.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if buf.len() < self.complete_len_min {
                return self.check_pending(buf).map(|_| None);
            }
            match parse(buf, &self.limits)? {
                Parsed::Request(args, used) => {
                    buf.advance(used);
                    self.complete_len_min = 1;
                    return Ok(Some(args));
                }
                Parsed::Empty(used) => {
                    buf.advance(used);
                    self.complete_len_min = 1;
                }
                Parsed::Incomplete(len_min) => {
                    self.complete_len_min = len_min;
                    return self.check_pending(buf).map(|_| None);
                }
            }
        }
    }

    fn check_pending(&self, buf: &BytesMut) -> Result<(), ProtocolError> {
        if buf.len() > self.limits.request_bytes_max {
            return Err(ProtocolError::new("too big request"));
        }
        Ok(())
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// A header's number: Redis's `string2ll` rules, negative values allowed.
fn header_number(line: &[u8]) -> Option<i64> {
    crate::number::parse_i64(line)
}

fn parse(buf: &[u8], limits: &RespLimits) -> Result<Parsed, ProtocolError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete(1)),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

fn parse_multibulk(buf: &[u8], limits: &RespLimits) -> Result<Parsed, ProtocolError> {
    let Some(end) = find_crlf(buf, 1) else {
        if buf.len() > limits.inline_bytes_max {
            return Err(ProtocolError::new("too big mbulk count string"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    let count = match header_number(&buf[1..end]) {
        Some(n) if n <= 0 => return Ok(Parsed::Empty(end + 2)),
        Some(n) if n as u64 <= limits.array_len_max as u64 => n as usize,
        _ => return Err(ProtocolError::new("invalid multibulk length")),
    };
    // Never trust the count for an allocation: grow as arguments actually arrive.
    let mut args = Vec::with_capacity(count.min(64));
    let mut pos = end + 2;
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(Parsed::Incomplete(pos + 1)),
            Some(b'$') => {}
            Some(&other) => {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    other as char
                )));
            }
        }
        let Some(line_end) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > limits.inline_bytes_max {
                return Err(ProtocolError::new("too big bulk count string"));
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        let len = match header_number(&buf[pos + 1..line_end]) {
            Some(n) if n >= 0 && n as u64 <= limits.bulk_bytes_max as u64 => n as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        let start = line_end + 2;
        let stop = start + len;
        if buf.len() < stop + 2 {
            return Ok(Parsed::Incomplete(stop + 2));
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Err(ProtocolError::new("expected CRLF after bulk string"));
        }
        args.push(buf[start..stop].to_vec());
        pos = stop + 2;
        if pos > limits.request_bytes_max {
            return Err(ProtocolError::new("too big request"));
        }
    }
    Ok(Parsed::Request(args, pos))
}

fn parse_inline(buf: &[u8], limits: &RespLimits) -> Result<Parsed, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.inline_bytes_max {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    if newline > limits.inline_bytes_max {
        return Err(ProtocolError::new("too big inline request"));
    }
    let line = buf[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..newline]);
    let args =
        split_inline(line).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
    if args.len() > limits.array_len_max {
        return Err(ProtocolError::new("invalid multibulk length"));
    }
    Ok(if args.is_empty() {
        Parsed::Empty(newline + 1)
    } else {
        Parsed::Request(args, newline + 1)
    })
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Split an inline request into words, with redis-cli's quoting: `"..."` with backslash escapes
/// (`\n \r \t \b \a \\ \" \xHH`) and `'...'` with `\'`. `None` on unbalanced quotes.
fn split_inline(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let b = *line.get(i)?;
                    if b == quote {
                        i += 1;
                        // A closing quote must end the word.
                        if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        break;
                    }
                    if b == b'\\' && quote == b'"' {
                        let (byte, used) = match line.get(i + 1..) {
                            Some([b'x', h, l, ..])
                                if hex_value(*h).is_some() && hex_value(*l).is_some() =>
                            {
                                (hex_value(*h)? * 16 + hex_value(*l)?, 4)
                            }
                            Some([c, ..]) => {
                                let unescaped = match c {
                                    b'n' => b'\n',
                                    b'r' => b'\r',
                                    b't' => b'\t',
                                    b'b' => 8,
                                    b'a' => 7,
                                    other => *other,
                                };
                                (unescaped, 2)
                            }
                            _ => return None,
                        };
                        word.push(byte);
                        i += used;
                    } else if b == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        word.push(b'\'');
                        i += 2;
                    } else {
                        word.push(b);
                        i += 1;
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        words.push(word);
    }
    Some(words)
}

/// Append `reply` to `out` as `version` frames it.
pub fn encode_reply(reply: &Reply, version: RespVersion, out: &mut Vec<u8>) {
    match reply {
        Reply::Simple(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(s) => line(out, b'-', s.as_bytes()),
        Reply::Integer(i) => line(out, b':', i.to_string().as_bytes()),
        Reply::Bulk(b) => {
            line(out, b'$', b.len().to_string().as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Nil => match version {
            RespVersion::Resp2 => out.extend_from_slice(b"$-1\r\n"),
            RespVersion::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::Array(items) => {
            line(out, b'*', items.len().to_string().as_bytes());
            for item in items {
                encode_reply(item, version, out);
            }
        }
        Reply::Map(pairs) => {
            match version {
                RespVersion::Resp2 => line(out, b'*', (2 * pairs.len()).to_string().as_bytes()),
                RespVersion::Resp3 => line(out, b'%', pairs.len().to_string().as_bytes()),
            }
            for (k, v) in pairs {
                encode_reply(k, version, out);
                encode_reply(v, version, out);
            }
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(input: &[u8], limits: RespLimits) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = RequestDecoder::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = d.decode(&mut buf)? {
            out.push(req);
        }
        Ok(out)
    }

    fn words(ws: &[&str]) -> Vec<Bytes> {
        ws.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pipelined_multibulk_and_inline() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
        assert_eq!(
            decode_all(input, RespLimits::DEFAULT),
            Ok(vec![
                words(&["GET", "k"]),
                words(&["PING"]),
                words(&["SET", "k", ""])
            ])
        );
    }

    #[test]
    fn byte_at_a_time_arrival() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\nset \"a b\" 'c'\r\n";
        let mut d = RequestDecoder::new(RespLimits::DEFAULT);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(req) = d.decode(&mut buf).expect("valid") {
                out.push(req);
            }
        }
        assert_eq!(
            out,
            vec![
                words(&["SET", "key", "va\r\nl"]),
                words(&["set", "a b", "c"])
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn inline_quoting() {
        assert_eq!(
            split_inline(b"set k \"a\\x41\\n\""),
            Some(words(&["set", "k", "aA\n"]))
        );
        assert_eq!(
            split_inline(b"  echo   'it\\'s'  "),
            Some(words(&["echo", "it's"]))
        );
        assert_eq!(split_inline(b"echo \"open"), None);
        assert_eq!(split_inline(b"echo \"a\"b"), None);
    }

    #[test]
    fn malformed_input_gets_redis_protocol_errors() {
        let e = |input: &[u8]| {
            decode_all(input, RespLimits::DEFAULT)
                .expect_err("malformed")
                .to_string()
        };
        assert_eq!(
            e(b"*abc\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            e(b"*1\r\n+GET\r\n"),
            "ERR Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            e(b"*1\r\n$-5\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"*1\r\n$x\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"*1\r\n$3\r\nGETxx"),
            "ERR Protocol error: expected CRLF after bulk string"
        );
        assert_eq!(
            e(b"echo \"x\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn every_bound_is_reached() {
        let tight = RespLimits {
            bulk_bytes_max: 4,
            array_len_max: 2,
            inline_bytes_max: 16,
            request_bytes_max: 40,
        };
        let e = |input: &[u8]| {
            decode_all(input, tight)
                .expect_err("over a bound")
                .to_string()
        };
        assert!(decode_all(b"*2\r\n$4\r\nabcd\r\n$1\r\nx\r\n", tight).is_ok());
        assert_eq!(
            e(b"*1\r\n$5\r\nabcde\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(e(b"*3\r\n"), "ERR Protocol error: invalid multibulk length");
        assert_eq!(e(&[b'x'; 17]), "ERR Protocol error: too big inline request");
        assert_eq!(
            e(b"a b c\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            e(&[b'*'; 17]),
            "ERR Protocol error: too big mbulk count string"
        );
        let mut long_header = b"*1\r\n$".to_vec();
        long_header.extend([b'1'; 17]);
        assert_eq!(
            e(&long_header),
            "ERR Protocol error: too big bulk count string"
        );
        // A request may not sit incomplete in the buffer beyond request_bytes_max.
        let roomy = RespLimits {
            bulk_bytes_max: 100,
            request_bytes_max: 40,
            ..tight
        };
        let mut partial = b"*1\r\n$100\r\n".to_vec();
        partial.extend([b'x'; 40]);
        assert_eq!(
            decode_all(&partial, roomy)
                .expect_err("too big")
                .to_string(),
            "ERR Protocol error: too big request"
        );
        // A huge claimed count allocates nothing up front.
        let mut d = RequestDecoder::new(RespLimits::DEFAULT);
        let mut buf = BytesMut::from(&b"*65536\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn replies_in_both_versions() {
        let reply = Reply::Array(vec![
            Reply::ok(),
            Reply::Error("ERR x".into()),
            Reply::Integer(-3),
            Reply::bulk("ab"),
            Reply::Nil,
            Reply::Map(vec![(Reply::bulk("f"), Reply::Integer(1))]),
        ]);
        let mut two = Vec::new();
        encode_reply(&reply, RespVersion::Resp2, &mut two);
        assert_eq!(
            two,
            b"*6\r\n+OK\r\n-ERR x\r\n:-3\r\n$2\r\nab\r\n$-1\r\n*2\r\n$1\r\nf\r\n:1\r\n".to_vec()
        );
        let mut three = Vec::new();
        encode_reply(&reply, RespVersion::Resp3, &mut three);
        assert_eq!(
            three,
            b"*6\r\n+OK\r\n-ERR x\r\n:-3\r\n$2\r\nab\r\n_\r\n%1\r\n$1\r\nf\r\n:1\r\n".to_vec()
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_all(&bytes, RespLimits::DEFAULT);
        }

        #[test]
        fn encoded_requests_decode_back(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..8)) {
            let mut wire = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                wire.extend(format!("${}\r\n", a.len()).into_bytes());
                wire.extend(a);
                wire.extend(b"\r\n");
            }
            prop_assert_eq!(decode_all(&wire, RespLimits::DEFAULT), Ok(vec![args]));
        }
    }
}
