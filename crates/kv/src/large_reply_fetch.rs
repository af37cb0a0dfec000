//! The voting proxy's side of large replies ([`crate::large_reply`]): once f+1 servers agreed on
//! a [`LargeReplyRef`], fetch the reply from the servers' RESP ports one after another and keep
//! the first copy that hashes to the agreed digest.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::large_reply::{LargeReplyRef, FETCH_COMMAND};
use crate::reply::Reply;

/// How long one server may take to hand over a large reply before the next one is asked.
pub const FETCH_TIMEOUT_MS: u64 = 5_000;
/// Longest reply header line read from a server (`$<length>`).
const HEADER_BYTES_MAX: u64 = 32;

/// The reply a client gets when no server handed over an agreed large reply.
pub fn unavailable_error(reference: &LargeReplyRef, servers: usize) -> Reply {
    Reply::Error(format!(
        "ERR f+1 servers agreed on a reply of {} bytes but none of the {servers} servers in proxy.server_resp handed it over; retry",
        reference.len
    ))
}

/// Fetch the reply `reference` stands for from `servers` (starting at `first`), checking each
/// copy against the digest.
pub async fn fetch_large_reply(
    reference: LargeReplyRef,
    servers: &[SocketAddr],
    first: usize,
) -> Reply {
    let timeout = Duration::from_millis(FETCH_TIMEOUT_MS);
    for k in 0..servers.len() {
        let server = servers[(first + k) % servers.len()];
        match tokio::time::timeout(timeout, fetch_from(server, &reference)).await {
            Ok(Ok(reply)) => return reply,
            Ok(Err(why)) => {
                tracing::warn!(%server, why, "a server did not hand over an agreed large reply")
            }
            Err(_) => tracing::warn!(%server, "timed out fetching an agreed large reply"),
        }
    }
    unavailable_error(&reference, servers.len())
}

async fn fetch_from(server: SocketAddr, reference: &LargeReplyRef) -> Result<Reply, String> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream = BufReader::new(stream);
    let digest = hex::encode(reference.digest);
    let request = format!(
        "*2\r\n${}\r\n{FETCH_COMMAND}\r\n${}\r\n{digest}\r\n",
        FETCH_COMMAND.len(),
        digest.len()
    );
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut header = String::new();
    (&mut stream)
        .take(HEADER_BYTES_MAX)
        .read_line(&mut header)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|h| h.trim_end().parse().ok())
        .ok_or_else(|| format!("answered {header:?}"))?;
    if len != reference.len {
        return Err(format!(
            "offered {len} bytes, not the agreed {}",
            reference.len
        ));
    }
    let mut body = vec![0u8; len + 2];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("read: {e}"))?;
    body.truncate(len);
    reference.decode(&body).map_err(|e| e.to_string())
}
