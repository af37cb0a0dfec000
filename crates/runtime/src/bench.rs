//! Link benchmarks: Noise-over-UDP throughput between two processes on loopback, and the cost of
//! a handshake and of sealing one message (for `stockade bench noise`).
//!
//! # Two processes
//! The parent ([`bench_noise_two_processes`]) generates both keypairs, binds its socket, and
//! starts the receiver as a child process (`exe child_args...`, which must end up calling
//! [`receiver_child_main`]). Over the child's stdin it sends one line:
//! `<receiver private key hex> <sender public key hex> <sender address> <messages> <datagram payload bytes>`;
//! the child answers `LISTENING <address>` on stdout, receives, and ends with
//! `REPORT <messages> <bytes> <elapsed ns> <datagrams>`. Every datagram is sealed and
//! authenticated as in production; small messages to one peer share datagrams (the link's
//! normal batching). The receiver acknowledges progress every [`ACK_EVERY_MESSAGES`] so the
//! sender keeps at most `window_messages` in flight instead of overrunning the socket buffer.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stockade_core::{NodeId, Time};
use thiserror::Error;
use tokio::net::UdpSocket;

use crate::config::{LinkConfig, Peer};
use crate::driver::{enlarge_socket_buffers, RECV_BUFFER_BYTES};
use crate::keys::{PublicKey, StaticKeypair};
use crate::link::{Link, LinkIo};
use crate::noise::{noise_params, NOISE_PROLOGUE};

/// The receiver acknowledges after this many messages.
pub const ACK_EVERY_MESSAGES: u64 = 256;

/// The receiver gives up after this long without a message.
pub const RECEIVER_IDLE_TIMEOUT_MS: u64 = 2_000;

/// The sender assumes loss (and stops waiting for acknowledgements) after this long.
pub const SENDER_STALL_TIMEOUT_MS: u64 = 200;

const SENDER: NodeId = NodeId(0);
const RECEIVER: NodeId = NodeId(1);

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseBenchParams {
    /// Messages sent.
    pub messages: u64,
    /// Bytes per message.
    pub message_bytes: usize,
    /// UDP payload size (messages share datagrams up to this size).
    pub datagram_payload_bytes_max: usize,
    /// Messages in flight before the sender waits for an acknowledgement.
    pub window_messages: u64,
}

impl Default for NoiseBenchParams {
    fn default() -> Self {
        NoiseBenchParams {
            messages: 500_000,
            message_bytes: 1024,
            datagram_payload_bytes_max: 16 * 1024,
            window_messages: 2048,
        }
    }
}

/// The throughput figures.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseBenchReport {
    /// Messages the receiver got and authenticated.
    pub messages_received: u64,
    /// Messages the sender sent.
    pub messages_sent: u64,
    /// Message bytes received.
    pub bytes_received: u64,
    /// Datagrams the receiver got.
    pub datagrams_received: u64,
    /// From the receiver's first message to its last.
    pub elapsed: Duration,
    /// Message payload throughput.
    pub gbit_per_s: f64,
    /// Messages per second.
    pub messages_per_s: f64,
}

/// Why a benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// Spawning or talking to the child failed.
    #[error("benchmark child process: {0}")]
    Child(String),
    /// A socket operation failed.
    #[error("benchmark socket: {0}")]
    Socket(#[from] std::io::Error),
    /// Keys or the link could not be set up.
    #[error("benchmark setup: {0}")]
    Setup(String),
    /// The child's instructions were not understood.
    #[error("bad receiver instructions: {0}")]
    Instructions(String),
}

fn setup_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn bench_link(
    me: NodeId,
    keypair: StaticKeypair,
    peer: Peer,
    datagram_payload_bytes_max: usize,
) -> Result<Link, BenchError> {
    let config = LinkConfig {
        datagram_payload_bytes_max,
        pending_messages_per_peer_max: 1 << 20,
        ..LinkConfig::default()
    };
    let seed = [me.0 as u8 + 1; 32];
    Link::new(me, keypair, vec![peer], config, 1, seed).map_err(setup_error)
}

async fn put_on_wire(socket: &UdpSocket, io: &mut LinkIo) -> Result<(), BenchError> {
    for (to, datagram) in io.datagrams.drain(..) {
        socket.send_to(&datagram, to).await?;
    }
    Ok(())
}

/// The receiver child's entry point: read instructions from stdin, receive, report on stdout.
pub fn receiver_child_main() -> Result<(), BenchError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [private_hex, sender_public_hex, sender_addr, messages, datagram_bytes] = fields[..] else {
        return Err(BenchError::Instructions(format!(
            "expected 5 fields, got {}",
            fields.len()
        )));
    };
    let bad = |what: &str| BenchError::Instructions(format!("unparsable {what}"));
    let private: [u8; 32] = hex::decode(private_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("private key"))?;
    let sender_public: PublicKey = sender_public_hex.parse().map_err(|_| bad("public key"))?;
    let sender_addr: SocketAddr = sender_addr.parse().map_err(|_| bad("address"))?;
    let messages: u64 = messages.parse().map_err(|_| bad("message count"))?;
    let datagram_bytes: usize = datagram_bytes.parse().map_err(|_| bad("datagram size"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (received, bytes, elapsed, datagrams) = runtime.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        enlarge_socket_buffers(&socket);
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "LISTENING {}", socket.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        let peer = Peer {
            id: SENDER,
            addr: sender_addr,
            public_key: sender_public,
        };
        let link = bench_link(
            RECEIVER,
            StaticKeypair::from_private(private),
            peer,
            datagram_bytes,
        )?;
        receive(link, &socket, messages).await
    })?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "REPORT {received} {bytes} {} {datagrams}",
        elapsed.as_nanos()
    )?;
    Ok(())
}

/// Receive until `messages` arrived or the sender went quiet; returns
/// (messages, bytes, time from first to last message, datagrams).
async fn receive(
    mut link: Link,
    socket: &UdpSocket,
    messages: u64,
) -> Result<(u64, u64, Duration, u64), BenchError> {
    let started = Instant::now();
    let now = || Time::from_nanos(started.elapsed().as_nanos() as u64);
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut io = LinkIo::default();
    let (mut received, mut bytes, mut datagrams) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let idle = Duration::from_millis(RECEIVER_IDLE_TIMEOUT_MS);
    while received < messages {
        let Ok(result) = tokio::time::timeout(idle, socket.recv_from(&mut buf)).await else {
            break;
        };
        let (len, source) = result?;
        datagrams += 1;
        link.on_datagram(now(), source, &buf[..len], &mut io);
        let before = received;
        for (_, message) in io.messages.drain(..) {
            received += 1;
            bytes += message.len() as u64;
        }
        if received > before {
            last = Instant::now();
            first.get_or_insert(last);
            if received / ACK_EVERY_MESSAGES > before / ACK_EVERY_MESSAGES || received >= messages {
                link.send(SENDER, received.to_le_bytes().to_vec())
                    .map_err(setup_error)?;
            }
        }
        link.flush(now(), &mut io);
        put_on_wire(socket, &mut io).await?;
    }
    let elapsed = first.map_or(Duration::ZERO, |f| last - f);
    Ok((received, bytes, elapsed, datagrams))
}

/// Send `params.messages` messages to the receiver at `to`; returns how many were sent.
async fn send(
    mut link: Link,
    socket: &UdpSocket,
    params: &NoiseBenchParams,
) -> Result<u64, BenchError> {
    let started = Instant::now();
    let now = || Time::from_nanos(started.elapsed().as_nanos() as u64);
    let payload = vec![0x5a; params.message_bytes];
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut io = LinkIo::default();
    let (mut sent, mut acked) = (0u64, 0u64);
    let stall = Duration::from_millis(SENDER_STALL_TIMEOUT_MS);
    // The first message triggers the handshake; wait for the session before streaming.
    link.send(RECEIVER, payload.clone()).map_err(setup_error)?;
    sent += 1;
    link.flush(now(), &mut io);
    put_on_wire(socket, &mut io).await?;
    while acked < params.messages {
        let window_open = sent < params.messages && sent - acked < params.window_messages;
        if window_open && link.has_session(RECEIVER, now()) {
            let room = (params.window_messages - (sent - acked)).min(params.messages - sent);
            for _ in 0..room {
                link.send(RECEIVER, payload.clone()).map_err(setup_error)?;
            }
            sent += room;
            link.flush(now(), &mut io);
            put_on_wire(socket, &mut io).await?;
        }
        let received = match tokio::time::timeout(stall, socket.recv_from(&mut buf)).await {
            Ok(result) => result?,
            Err(_) if sent >= params.messages => break,
            Err(_) => {
                // Something was lost: stop waiting for it, keep streaming.
                acked = sent;
                link.tick(now(), &mut io);
                put_on_wire(socket, &mut io).await?;
                continue;
            }
        };
        link.on_datagram(now(), received.1, &buf[..received.0], &mut io);
        for (_, ack) in io.messages.drain(..) {
            if let Ok(count) = <[u8; 8]>::try_from(ack.as_slice()) {
                acked = acked.max(u64::from_le_bytes(count));
            }
        }
        link.flush(now(), &mut io);
        put_on_wire(socket, &mut io).await?;
    }
    Ok(sent)
}

/// Run the two-process throughput benchmark: spawn `exe child_args...` as the receiver (it must
/// call [`receiver_child_main`]) and send to it from this process.
pub async fn bench_noise_two_processes(
    exe: &Path,
    child_args: &[&str],
    params: &NoiseBenchParams,
) -> Result<NoiseBenchReport, BenchError> {
    let sender_keys = StaticKeypair::generate().map_err(setup_error)?;
    let receiver_keys = StaticKeypair::generate().map_err(setup_error)?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    enlarge_socket_buffers(&socket);
    let mut child = Command::new(exe)
        .args(child_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::Child(format!("cannot start {}: {e}", exe.display())))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(BenchError::Child("no pipes to the child".into()));
    };
    writeln!(
        stdin,
        "{} {} {} {} {}",
        hex::encode(receiver_keys.private_bytes()),
        sender_keys.public(),
        socket.local_addr()?,
        params.messages,
        params.datagram_payload_bytes_max
    )?;
    drop(stdin);
    let mut lines = BufReader::new(stdout).lines();
    let mut next_line = move || -> Result<String, BenchError> {
        lines
            .next()
            .transpose()?
            .ok_or_else(|| BenchError::Child("the child exited early".into()))
    };
    let listening = next_line()?;
    let receiver_addr: SocketAddr = listening
        .strip_prefix("LISTENING ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| BenchError::Child(format!("unexpected child output {listening:?}")))?;
    let peer = Peer {
        id: RECEIVER,
        addr: receiver_addr,
        public_key: receiver_keys.public(),
    };
    let link = bench_link(SENDER, sender_keys, peer, params.datagram_payload_bytes_max)?;
    let messages_sent = send(link, &socket, params).await?;
    let report = tokio::task::spawn_blocking(next_line)
        .await
        .map_err(|e| BenchError::Child(e.to_string()))??;
    let _ = child.wait();
    let fields: Vec<u64> = report
        .strip_prefix("REPORT ")
        .map(|r| {
            r.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [messages_received, bytes_received, elapsed_ns, datagrams_received] = fields[..] else {
        return Err(BenchError::Child(format!(
            "unexpected child report {report:?}"
        )));
    };
    let elapsed = Duration::from_nanos(elapsed_ns);
    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(NoiseBenchReport {
        messages_received,
        messages_sent,
        bytes_received,
        datagrams_received,
        elapsed,
        gbit_per_s: bytes_received as f64 * 8.0 / secs / 1e9,
        messages_per_s: messages_received as f64 / secs,
    })
}

/// Costs of the cryptography alone, in one thread.
#[derive(Clone, Debug, PartialEq)]
pub struct CryptoBenchReport {
    /// One complete Noise IK handshake, both sides (initiator write, responder read and write,
    /// initiator read, both switching to transport mode).
    pub handshake: Duration,
    /// Sealing one message of `message_bytes` with the stateless transport.
    pub seal: Duration,
    /// Opening one such message.
    pub open: Duration,
    /// The message size measured.
    pub message_bytes: usize,
}

/// Measure the handshake and the per-message seal/open cost over `iterations` rounds.
pub fn bench_noise_crypto(
    iterations: u32,
    message_bytes: usize,
) -> Result<CryptoBenchReport, BenchError> {
    let iterations = iterations.max(1);
    let a = StaticKeypair::generate().map_err(setup_error)?;
    let b = StaticKeypair::generate().map_err(setup_error)?;
    let handshake_once = || -> Result<(snow::StatelessTransportState, snow::StatelessTransportState), snow::Error> {
        let mut initiator = snow::Builder::new(noise_params())
            .local_private_key(a.private_bytes())?
            .remote_public_key(&b.public().0)?
            .prologue(NOISE_PROLOGUE)?
            .build_initiator()?;
        let mut responder = snow::Builder::new(noise_params())
            .local_private_key(b.private_bytes())?
            .prologue(NOISE_PROLOGUE)?
            .build_responder()?;
        let (mut m1, mut m2, mut payload) = ([0u8; 256], [0u8; 256], [0u8; 256]);
        let n1 = initiator.write_message(&[0; 8], &mut m1)?;
        responder.read_message(&m1[..n1], &mut payload)?;
        let n2 = responder.write_message(&[], &mut m2)?;
        initiator.read_message(&m2[..n2], &mut payload)?;
        Ok((initiator.into_stateless_transport_mode()?, responder.into_stateless_transport_mode()?))
    };
    let started = Instant::now();
    for _ in 0..iterations {
        handshake_once().map_err(setup_error)?;
    }
    let handshake = started.elapsed() / iterations;
    let (initiator, responder) = handshake_once().map_err(setup_error)?;
    let plaintext = vec![0x5a; message_bytes];
    let mut sealed = vec![0u8; message_bytes + 16];
    let mut opened = vec![0u8; message_bytes + 16];
    let started = Instant::now();
    for nonce in 0..iterations as u64 {
        initiator
            .write_message(nonce, &plaintext, &mut sealed)
            .map_err(setup_error)?;
    }
    let seal = started.elapsed() / iterations;
    let started = Instant::now();
    for _ in 0..iterations {
        responder
            .read_message(iterations as u64 - 1, &sealed, &mut opened)
            .map_err(setup_error)?;
    }
    let open = started.elapsed() / iterations;
    Ok(CryptoBenchReport {
        handshake,
        seal,
        open,
        message_bytes,
    })
}

/// The headline figures as one JSON object (what `stockade bench noise` prints last).
pub fn figures_json(report: &NoiseBenchReport, crypto: &CryptoBenchReport) -> String {
    format!(
        "{{\"gbit_per_s\":{:.3},\"messages_per_s\":{:.0},\"messages_received\":{},\"messages_sent\":{},\"datagrams_received\":{},\"handshake_ms\":{:.4},\"seal_us\":{:.3},\"open_us\":{:.3},\"message_bytes\":{}}}",
        report.gbit_per_s,
        report.messages_per_s,
        report.messages_received,
        report.messages_sent,
        report.datagrams_received,
        crypto.handshake.as_secs_f64() * 1e3,
        crypto.seal.as_secs_f64() * 1e6,
        crypto.open.as_secs_f64() * 1e6,
        crypto.message_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crypto_benchmark_runs_real_handshakes_and_reports_json() -> Result<(), BenchError> {
        let crypto = bench_noise_crypto(3, 1024)?;
        assert!(crypto.handshake > Duration::ZERO && crypto.seal > Duration::ZERO);
        let report = NoiseBenchReport {
            messages_received: 1,
            messages_sent: 1,
            bytes_received: 1024,
            datagrams_received: 1,
            elapsed: Duration::from_millis(1),
            gbit_per_s: 0.008,
            messages_per_s: 1000.0,
        };
        let json = figures_json(&report, &crypto);
        assert!(
            json.starts_with("{\"gbit_per_s\":0.008,") && json.ends_with("\"message_bytes\":1024}")
        );
        Ok(())
    }
}
