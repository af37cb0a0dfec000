//! The demo's Redis client: blocking RESP2 over TCP, just what the workload needs (SET, GET, MGET),
//! with every reply read under named bounds so a misbehaving peer cannot make it read for ever.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use thiserror::Error;

/// Longest status, error or length line of a reply, in bytes.
pub const REPLY_LINE_BYTES_MAX: u64 = 1024;
/// Longest bulk string accepted, in bytes.
pub const BULK_BYTES_MAX: usize = 1024 * 1024;
/// Most elements of an array reply (an MGET of the demo's batches).
pub const ARRAY_LEN_MAX: usize = 10_000;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespReply {
    /// `+OK` and other status lines.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` followed by n bytes; `None` for the nil bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` followed by n replies.
    Array(Vec<RespReply>),
}

/// Why an exchange with the server failed.
#[derive(Debug, Error)]
pub enum RespClientError {
    /// The connection failed or timed out.
    #[error("connection to {addr}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// What happened.
        source: std::io::Error,
    },
    /// The server sent something that is not RESP2, or beyond this client's bounds.
    #[error("reply from {addr} is not valid RESP: {reason}")]
    Malformed {
        /// The server.
        addr: SocketAddr,
        /// What is wrong.
        reason: String,
    },
}

/// A connection to one RESP server.
pub struct RespClient {
    addr: SocketAddr,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RespClient {
    /// Connect to `addr`; each reply must arrive within `reply_timeout`.
    pub fn connect(
        addr: SocketAddr,
        reply_timeout: Duration,
    ) -> Result<RespClient, RespClientError> {
        let io = |source| RespClientError::Io { addr, source };
        let stream = TcpStream::connect_timeout(&addr, reply_timeout).map_err(io)?;
        stream.set_read_timeout(Some(reply_timeout)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(RespClient {
            addr,
            writer,
            reader: BufReader::new(stream),
        })
    }

    /// Send one command (an array of bulk strings) and read its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<RespReply, RespClientError> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        let addr = self.addr;
        self.writer
            .write_all(&out)
            .map_err(|source| RespClientError::Io { addr, source })?;
        self.read_reply(0)
    }

    fn malformed(&self, reason: impl Into<String>) -> RespClientError {
        RespClientError::Malformed {
            addr: self.addr,
            reason: reason.into(),
        }
    }

    fn read_line(&mut self) -> Result<String, RespClientError> {
        let mut line = Vec::new();
        let addr = self.addr;
        (&mut self.reader)
            .take(REPLY_LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)
            .map_err(|source| RespClientError::Io { addr, source })?;
        if !line.ends_with(b"\r\n") {
            return Err(self.malformed(format!(
                "a line of more than {REPLY_LINE_BYTES_MAX} bytes, or the connection closed"
            )));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| self.malformed("a line that is not UTF-8"))
    }

    fn read_reply(&mut self, depth: usize) -> Result<RespReply, RespClientError> {
        // The demo's replies are flat arrays; deeper nesting is refused rather than recursed into.
        if depth > 1 {
            return Err(self.malformed("arrays nested more than one level"));
        }
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = |this: &Self| {
            rest.parse::<i64>()
                .map_err(|_| this.malformed(format!("{rest:?} is not a number")))
        };
        match kind {
            "+" => Ok(RespReply::Status(rest.to_string())),
            "-" => Ok(RespReply::Error(rest.to_string())),
            ":" => Ok(RespReply::Integer(number(self)?)),
            "$" => {
                let len = number(self)?;
                if len < 0 {
                    return Ok(RespReply::Bulk(None));
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= BULK_BYTES_MAX)
                    .ok_or_else(|| self.malformed(format!("bulk of {len} bytes")))?;
                let mut bytes = vec![0; len + 2];
                let addr = self.addr;
                self.reader
                    .read_exact(&mut bytes)
                    .map_err(|source| RespClientError::Io { addr, source })?;
                if !bytes.ends_with(b"\r\n") {
                    return Err(self.malformed("a bulk string not ended by CRLF"));
                }
                bytes.truncate(len);
                Ok(RespReply::Bulk(Some(bytes)))
            }
            "*" => {
                let len = number(self)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= ARRAY_LEN_MAX)
                    .ok_or_else(|| self.malformed(format!("array of {len} elements")))?;
                (0..len)
                    .map(|_| self.read_reply(depth + 1))
                    .collect::<Result<_, _>>()
                    .map(RespReply::Array)
            }
            _ => Err(self.malformed(format!("unknown reply type in {line:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that answers every read with `script`.
    fn client_reading(script: &'static [u8]) -> RespClient {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(script);
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            }
        });
        RespClient::connect(addr, Duration::from_secs(5)).expect("connect")
    }

    #[test]
    fn reads_each_reply_type_of_the_workload() {
        let mut client = client_reading(
            b"+OK\r\n$4\r\npear\r\n$-1\r\n*2\r\n$1\r\na\r\n$-1\r\n:7\r\n-ERR no\r\n",
        );
        let mut next = || client.command(&[b"PING"]).expect("a reply");
        assert_eq!(next(), RespReply::Status("OK".into()));
        assert_eq!(next(), RespReply::Bulk(Some(b"pear".to_vec())));
        assert_eq!(next(), RespReply::Bulk(None));
        assert_eq!(
            next(),
            RespReply::Array(vec![
                RespReply::Bulk(Some(b"a".to_vec())),
                RespReply::Bulk(None)
            ])
        );
        assert_eq!(next(), RespReply::Integer(7));
        assert_eq!(next(), RespReply::Error("ERR no".into()));
    }

    #[test]
    fn refuses_replies_beyond_its_bounds() {
        let mut long = client_reading(b"$1048577\r\n");
        assert!(matches!(
            long.command(&[b"GET", b"k"]),
            Err(RespClientError::Malformed { .. })
        ));
        let mut nested = client_reading(b"*1\r\n*1\r\n*1\r\n:1\r\n");
        assert!(matches!(
            nested.command(&[b"GET", b"k"]),
            Err(RespClientError::Malformed { .. })
        ));
        let mut wide = client_reading(b"*10001\r\n");
        assert!(matches!(
            wide.command(&[b"GET", b"k"]),
            Err(RespClientError::Malformed { .. })
        ));
        let line: &'static [u8] = Box::leak(
            [
                vec![b'+'; REPLY_LINE_BYTES_MAX as usize + 10],
                b"\r\n".to_vec(),
            ]
            .concat()
            .into_boxed_slice(),
        );
        let mut endless = client_reading(line);
        assert!(matches!(
            endless.command(&[b"GET", b"k"]),
            Err(RespClientError::Malformed { .. })
        ));
    }
}
