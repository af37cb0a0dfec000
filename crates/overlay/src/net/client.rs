//! A blocking client of the control interface (what `stockade overlay put|get|remove|publish|
//! anycast|subscribe|status` and the tests use): one connection, one request line, one reply line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::control::{ControlRequest, CONTROL_LINE_BYTES_MAX};

/// Longest reply line read, bytes (a value escaped as JSON, and the reply's other fields).
pub const REPLY_LINE_BYTES_MAX: usize = CONTROL_LINE_BYTES_MAX + 4096;

/// Why a control request did not get an answer.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No daemon answered at the address.
    #[error("cannot reach the overlay daemon's control interface at {addr}: {source}; is `stockade overlay run` running there?")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The connection failed or timed out.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon closed the connection without answering.
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// The reply is not a JSON line within the bound.
    #[error("malformed reply from the daemon: {0}")]
    BadReply(String),
    /// The daemon refused or failed the request, saying why.
    #[error("{0}")]
    Refused(String),
}

/// One connection to a daemon's control interface.
pub struct ControlClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl ControlClient {
    /// Connect to `addr`, waiting at most `timeout` for the connection and for each reply.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<ControlClient, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        Ok(ControlClient {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Wait at most `timeout` (forever with `None`) for each line from now on.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.writer.set_read_timeout(timeout)?;
        Ok(())
    }

    /// Send `request` and return its reply; a reply with `"ok": false` is [`ClientError::Refused`].
    pub fn request(&mut self, request: &ControlRequest) -> Result<Value, ClientError> {
        let line = serde_json::to_string(request)
            .map_err(|e| ClientError::BadReply(format!("encoding the request: {e}")))?;
        self.writer.write_all(format!("{line}\n").as_bytes())?;
        self.writer.flush()?;
        self.next_line()?.ok_or(ClientError::Closed)
    }

    /// The next line from the daemon (a reply, or a multicast or anycast on a subscribed
    /// connection);
    /// `None` when the daemon closed the connection.
    pub fn next_line(&mut self) -> Result<Option<Value>, ClientError> {
        let mut line = Vec::new();
        let limit = REPLY_LINE_BYTES_MAX as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && line.len() > REPLY_LINE_BYTES_MAX {
            return Err(ClientError::BadReply(format!(
                "a line longer than {REPLY_LINE_BYTES_MAX} bytes"
            )));
        }
        let value: Value = serde_json::from_slice(&line)
            .map_err(|e| ClientError::BadReply(format!("not JSON: {e}")))?;
        if value["ok"] == Value::Bool(false) {
            let error = value["error"].as_str().unwrap_or("(no reason given)");
            return Err(ClientError::Refused(error.to_string()));
        }
        Ok(Some(value))
    }
}
