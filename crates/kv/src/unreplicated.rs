//! `UnreplicatedServer`: a single-node RESP server that executes commands directly against one
//! [`StateMachine`], in memory, with no replication and no persistence.
//!
//! It exists as the baseline of paper 001's comparison (EVE: a replicated server within 25% of an
//! unreplicated one): the same command parsing, state machine and RESP codec as the replicated
//! product, minus ordering. It is NOT the product: a crash loses everything, and one machine is
//! trusted with all of it.
//!
//! The server is a driver, not protocol code, so it may read the wall clock: each command runs at
//! the current Unix time in milliseconds.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::command::{Bytes, Command};
use crate::limits::Limits;
use crate::reply::Reply;
use crate::resp::{encode_reply, RequestDecoder, RespLimits};
use crate::session::{LocalAnswer, Session};
use crate::state::StateMachine;

/// What a refused connection is told, exactly as Redis words it.
pub const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Bounds of the unreplicated server.
#[derive(Clone, Copy, Debug)]
pub struct UnreplicatedConfig {
    /// Limits of the state machine and command parser.
    pub limits: Limits,
    /// Limits of the RESP decoder.
    pub resp_limits: RespLimits,
    /// Most connections served at once; more are refused with [`MAX_CLIENTS_REPLY`].
    pub connections_max: usize,
    /// Replies buffered for one connection before they are written out mid-pipeline.
    pub output_bytes_max: usize,
    /// Bytes requested from the socket per read.
    pub read_chunk_bytes: usize,
}

impl Default for UnreplicatedConfig {
    fn default() -> Self {
        UnreplicatedConfig {
            limits: Limits::DEFAULT,
            resp_limits: RespLimits::DEFAULT,
            connections_max: 10_000,
            output_bytes_max: 64 * 1024,
            read_chunk_bytes: 16 * 1024,
        }
    }
}

/// The single-node baseline server. See the module documentation.
pub struct UnreplicatedServer {
    listener: TcpListener,
    state: Arc<Mutex<StateMachine>>,
    config: UnreplicatedConfig,
}

impl UnreplicatedServer {
    /// Listen on `addr` (tests and benchmarks use 127.0.0.1).
    pub async fn bind(
        addr: SocketAddr,
        config: UnreplicatedConfig,
    ) -> io::Result<UnreplicatedServer> {
        let listener = TcpListener::bind(addr).await?;
        let state = StateMachine::new(config.limits).without_change_tracking();
        Ok(UnreplicatedServer {
            listener,
            state: Arc::new(Mutex::new(state)),
            config,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The state, shared with the connections (tests inspect it).
    pub fn state(&self) -> Arc<Mutex<StateMachine>> {
        Arc::clone(&self.state)
    }

    /// Accept and serve connections until the listener fails.
    pub async fn run(self) -> io::Result<()> {
        let slots = Arc::new(Semaphore::new(self.config.connections_max));
        let next_id = AtomicU64::new(1);
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tokio::spawn(async move {
                    // The refusal is best effort: the peer may already be gone.
                    let _ = stream.write_all(MAX_CLIENTS_REPLY).await;
                });
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = Arc::clone(&self.state);
            let config = self.config;
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                // A connection ends on EOF, QUIT, a protocol error or an I/O error; none of them
                // concerns the other connections.
                let _ = serve(stream, state, config, id).await;
                drop(slot);
            });
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Execute one request: local commands by the session, the rest by the state machine.
fn execute(
    state: &Mutex<StateMachine>,
    session: &mut Session,
    limits: &Limits,
    args: &[Bytes],
) -> LocalAnswer {
    match Command::parse(args, limits) {
        Err(e) => LocalAnswer::from(Reply::from(e)),
        Ok(Command::Local(local)) => session.answer(&local),
        Ok(command) => {
            // Execution never panics on input, so a poisoned lock still holds a consistent state.
            let mut sm = state.lock().unwrap_or_else(PoisonError::into_inner);
            LocalAnswer::from(sm.exec(now_ms(), &command))
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<StateMachine>>,
    config: UnreplicatedConfig,
    id: u64,
) -> io::Result<()> {
    let mut session = Session::new(id);
    let mut decoder = RequestDecoder::new(config.resp_limits);
    let mut input = BytesMut::with_capacity(config.read_chunk_bytes);
    let mut output = Vec::with_capacity(config.output_bytes_max);
    loop {
        // Answer every complete request in the buffer (a pipeline), writing as the output fills.
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(args)) => {
                    let answer = execute(&state, &mut session, &config.limits, &args);
                    encode_reply(&answer.reply, session.protocol(), &mut output);
                    if answer.close {
                        stream.write_all(&output).await?;
                        return stream.shutdown().await;
                    }
                    if output.len() >= config.output_bytes_max {
                        stream.write_all(&output).await?;
                        output.clear();
                    }
                }
                Ok(None) => break,
                Err(protocol_error) => {
                    // As Redis: answer the protocol error, then close.
                    encode_reply(&protocol_error.reply(), session.protocol(), &mut output);
                    stream.write_all(&output).await?;
                    return stream.shutdown().await;
                }
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        input.reserve(config.read_chunk_bytes);
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}
