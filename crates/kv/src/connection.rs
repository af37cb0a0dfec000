//! The RESP front end shared by the replicated server and the voting proxy: accepts TCP
//! connections, decodes pipelines, answers connection-local commands itself, hands the rest to a
//! [`Backend`], and writes the replies in request order.
//!
//! Pipelining: every complete request already received is submitted before the first reply is
//! awaited (at most `pipeline_commands_max` at a time), so a pipeline of N commands costs about
//! one round of ordering, not N.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use stockade_core::Wire;
use stockade_replication::messages::UPDATE_OP_BYTES_MAX;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};

use crate::command::{Bytes, Command};
use crate::limits::Limits;
use crate::reply::Reply;
use crate::resp::{encode_reply, RequestDecoder, RespLimits, RespVersion};
use crate::session::Session;
use crate::unreplicated::MAX_CLIENTS_REPLY;

/// Bounds of the RESP front end.
#[derive(Clone, Copy, Debug)]
pub struct FrontEndLimits {
    /// Limits of the command parser (every replica of a cluster uses the same).
    pub limits: Limits,
    /// Limits of the RESP decoder.
    pub resp_limits: RespLimits,
    /// Connections served at once; more are refused as Redis refuses them.
    pub connections_max: usize,
    /// Commands of one pipeline submitted before their replies are awaited.
    pub pipeline_commands_max: usize,
    /// Bytes requested from the socket per read.
    pub read_chunk_bytes: usize,
    /// A replicated command not answered within this gets [`REPLY_TIMEOUT_ERROR`] (its outcome
    /// is then unknown, as with any timed-out request).
    pub reply_timeout_ms: u64,
}

impl Default for FrontEndLimits {
    fn default() -> Self {
        FrontEndLimits {
            limits: Limits::DEFAULT,
            resp_limits: RespLimits::DEFAULT,
            connections_max: 10_000,
            pipeline_commands_max: 1024,
            read_chunk_bytes: 16 * 1024,
            reply_timeout_ms: 30_000,
        }
    }
}

/// The reply to a command that is still being executed.
pub type PendingReply = oneshot::Receiver<Reply>;

/// The reply told to a client whose command was lost inside the server (it shut down).
pub const LOST_REPLY_ERROR: &str = "ERR the command's outcome is unknown: the node stopped";

/// The reply to a command not answered within `reply_timeout_ms`.
pub const REPLY_TIMEOUT_ERROR: &str =
    "ERR timed out waiting for the replicated result; the command may or may not have executed";

/// Executes replicated commands for the front end.
pub trait Backend: Send + Sync + 'static {
    /// Per-connection state (a Prime client id and sequence number, for instance).
    type Connection: Send;
    /// State for connection number `id`.
    fn connect(&self, id: u64) -> Self::Connection;
    /// The reply to a request the backend answers itself before any parsing (a server answers
    /// the proxy's large-reply fetches, [`crate::large_reply::FETCH_COMMAND`]); `None` for the
    /// others.
    fn answer_own_command(&self, _args: &[Bytes]) -> Option<Reply> {
        None
    }
    /// Start executing `command` (already checked to fit one Prime update). Calls come in the
    /// connection's request order.
    fn submit(
        &self,
        connection: &mut Self::Connection,
        command: Command,
    ) -> impl Future<Output = PendingReply> + Send;
}

/// A reply already known, as a pending one.
pub fn ready(reply: Reply) -> PendingReply {
    let (tx, rx) = oneshot::channel();
    // The receiver is alive: it is returned below.
    let _ = tx.send(reply);
    rx
}

/// Accept and serve connections on `listener` until it fails.
pub async fn serve_resp<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    limits: FrontEndLimits,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let next_id = AtomicU64::new(1);
    loop {
        let (mut stream, _) = listener.accept().await?;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(async move {
                // Best effort: the peer may already be gone.
                let _ = stream.write_all(MAX_CLIENTS_REPLY).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let backend = Arc::clone(&backend);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // A connection ends on EOF, QUIT, a protocol error or an I/O error.
            let _ = serve_connection(stream, backend.as_ref(), limits, id).await;
            drop(slot);
        });
    }
}

/// One request of a pipeline: its reply (pending or known), and the RESP version to encode it in.
struct Answer {
    reply: PendingReply,
    version: RespVersion,
    close: bool,
}

async fn request_answer<B: Backend>(
    backend: &B,
    connection: &mut B::Connection,
    session: &mut Session,
    limits: &Limits,
    args: &[Bytes],
) -> Answer {
    if let Some(reply) = backend.answer_own_command(args) {
        return Answer {
            reply: ready(reply),
            version: session.protocol(),
            close: false,
        };
    }
    let (reply, close) = match Command::parse(args, limits) {
        Err(e) => (ready(Reply::from(e)), false),
        Ok(Command::Local(local)) => {
            let answer = session.answer(&local);
            (ready(answer.reply), answer.close)
        }
        Ok(command) => {
            let len = command.wire_len();
            if len > UPDATE_OP_BYTES_MAX {
                let error = format!(
                    "ERR command of {len} bytes exceeds the replicated update limit of {UPDATE_OP_BYTES_MAX} bytes"
                );
                (ready(Reply::Error(error)), false)
            } else {
                (backend.submit(connection, command).await, false)
            }
        }
    };
    Answer {
        reply,
        version: session.protocol(),
        close,
    }
}

async fn serve_connection<B: Backend>(
    mut stream: TcpStream,
    backend: &B,
    limits: FrontEndLimits,
    id: u64,
) -> io::Result<()> {
    let mut session = Session::new(id);
    let mut connection = backend.connect(id);
    let mut decoder = RequestDecoder::new(limits.resp_limits);
    let mut input = BytesMut::with_capacity(limits.read_chunk_bytes);
    let mut output = Vec::new();
    loop {
        // Submit every complete request received (up to the pipeline bound), then answer in order.
        let mut answers = Vec::new();
        let mut protocol_error = None;
        while answers.len() < limits.pipeline_commands_max {
            match decoder.decode(&mut input) {
                Ok(Some(args)) => {
                    let answer = request_answer(
                        backend,
                        &mut connection,
                        &mut session,
                        &limits.limits,
                        &args,
                    )
                    .await;
                    let close = answer.close;
                    answers.push(answer);
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let more_buffered = answers.len() == limits.pipeline_commands_max;
        let timeout = std::time::Duration::from_millis(limits.reply_timeout_ms);
        for answer in answers {
            let reply = match tokio::time::timeout(timeout, answer.reply).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Reply::Error(LOST_REPLY_ERROR.into()),
                Err(_) => Reply::Error(REPLY_TIMEOUT_ERROR.into()),
            };
            encode_reply(&reply, answer.version, &mut output);
            if answer.close {
                stream.write_all(&output).await?;
                return stream.shutdown().await;
            }
        }
        if let Some(e) = protocol_error {
            // As Redis: answer the protocol error, then close.
            encode_reply(&e.reply(), session.protocol(), &mut output);
            stream.write_all(&output).await?;
            return stream.shutdown().await;
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if more_buffered {
            continue;
        }
        input.reserve(limits.read_chunk_bytes);
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// Commands submitted to a node and not yet answered, by key, each with the slot it holds (a
/// proxy lane). Bounded: beyond `len_max` a command is refused at once.
pub struct Waiting<K> {
    map: std::sync::Mutex<std::collections::HashMap<K, Waiter>>,
    len_max: usize,
}

struct Waiter {
    reply: oneshot::Sender<Reply>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The reply to a command refused because `len_max` commands are waiting already.
pub const WAITING_FULL_ERROR: &str = "ERR too many commands waiting for replication; retry";

impl<K: std::hash::Hash + Eq> Waiting<K> {
    /// An empty table holding at most `len_max` commands.
    pub fn new(len_max: usize) -> Waiting<K> {
        Waiting {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
            len_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, Waiter>> {
        // Nothing panics while holding the lock, so a poisoned map is still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait for the reply to `key`, holding `slot` until it comes; refused when full.
    pub fn wait(
        &self,
        key: K,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<PendingReply, Reply> {
        let mut map = self.lock();
        if map.len() >= self.len_max {
            return Err(Reply::Error(WAITING_FULL_ERROR.into()));
        }
        let (tx, rx) = oneshot::channel();
        map.insert(
            key,
            Waiter {
                reply: tx,
                _slot: slot,
            },
        );
        Ok(rx)
    }

    /// Hand `reply` to whoever waits for `key` (nobody, if the connection closed).
    pub fn answer(&self, key: &K, reply: Reply) {
        if let Some(waiter) = self.lock().remove(key) {
            let _ = waiter.reply.send(reply);
        }
    }

    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every waiter: their connections answer [`LOST_REPLY_ERROR`].
    pub fn abandon_all(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests;
