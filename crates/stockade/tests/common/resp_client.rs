//! A minimal blocking RESP2 client for tests that must see the exact bytes a server answers:
//! it sends argument vectors (or raw bytes) and parses one reply at a time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One parsed RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$...`; `None` for the null bulk.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` for the null array.
    Array(Option<Vec<Value>>),
}

impl Value {
    /// A bulk reply holding `text`.
    pub fn bulk(text: impl AsRef<[u8]>) -> Value {
        Value::Bulk(Some(text.as_ref().to_vec()))
    }
}

/// Largest reply this client accepts (the tests' largest replies are a few MiB).
pub const REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A connection to a RESP server.
pub struct RespClient {
    stream: TcpStream,
    input: Vec<u8>,
}

impl RespClient {
    /// Connect, retrying while refused for up to 10 s; replies are awaited for up to `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> RespClient {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(addr) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => panic!("connecting to {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        RespClient {
            stream,
            input: Vec::new(),
        }
    }

    /// Send bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Send one command without waiting for its reply.
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Send one command and read its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.send(args)?;
        self.read_reply()
    }

    /// Read the next reply; `UnexpectedEof` when the server closed first.
    pub fn read_reply(&mut self) -> io::Result<Value> {
        loop {
            if let Some((value, used)) = parse(&self.input)? {
                self.input.drain(..used);
                return Ok(value);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed the connection (reads EOF or a reset within the read timeout).
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// `args` as a RESP multibulk request.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One reply from the front of `buf` and the bytes it took, `None` if incomplete.
fn parse(buf: &[u8]) -> io::Result<Option<(Value, usize)>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..end].split_first() else {
        return Err(invalid("empty reply line"));
    };
    let text = String::from_utf8_lossy(line).into_owned();
    let number = || -> io::Result<i64> { text.parse().map_err(|_| invalid("bad number")) };
    let mut used = end + 2;
    let value = match kind {
        b'+' => Value::Simple(text),
        b'-' => Value::Error(text),
        b':' => Value::Integer(number()?),
        b'$' => match number()? {
            -1 => Value::Bulk(None),
            len if len < 0 || len as usize > REPLY_BYTES_MAX => {
                return Err(invalid("bad bulk length"))
            }
            len => {
                let stop = used + len as usize;
                if buf.len() < stop + 2 {
                    return Ok(None);
                }
                let bytes = buf[used..stop].to_vec();
                used = stop + 2;
                Value::Bulk(Some(bytes))
            }
        },
        b'*' => match number()? {
            -1 => Value::Array(None),
            len if len < 0 || len as usize > REPLY_BYTES_MAX => {
                return Err(invalid("bad array length"))
            }
            len => {
                let mut items = Vec::new();
                for _ in 0..len {
                    match parse(&buf[used..])? {
                        Some((item, n)) => {
                            items.push(item);
                            used += n;
                        }
                        None => return Ok(None),
                    }
                }
                Value::Array(Some(items))
            }
        },
        _ => return Err(invalid("unknown reply type")),
    };
    Ok(Some((value, used)))
}
