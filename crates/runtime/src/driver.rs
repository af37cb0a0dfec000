//! The node driver: one tokio task that owns a protocol, its UDP socket and links, its timers,
//! its storage writer and its application channels, and carries out the protocol's effects.
//!
//! # The turn
//! The task waits for the first of: shutdown, a persist batch becoming durable, a datagram, an
//! application request, or the earliest timer/link tick. It handles that event (for a datagram,
//! every datagram already queued on the socket, up to [`RECV_BATCH_MAX`]), calling the protocol
//! one input at a time and carrying out each call's effects in order; then it runs messages the
//! node sent to itself, and flushes the link so all sends of the turn to one peer share datagrams.
//!
//! # Effects
//! - `Send`: framed with [`encode_frame`]; a send to the node itself is delivered locally as a
//!   message from itself. With `after: Some(token)` the send waits until that batch is durable.
//! - `SetTimer`/`CancelTimer`: named timers, one deadline each ([`TimerSet`]).
//! - `Deliver`: onto the bounded output channel (the task waits when it is full).
//! - `Persist`: onto the bounded queue of the storage thread; when the batch is durable, held
//!   sends are released and then `on_persisted` is called.
//! - `Charge`: ignored (the CPU is real).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use stockade_core::wire::{decode_frame, encode_frame};
use stockade_core::{Context, DecodeLimits, Effect, NodeId, PersistToken, Protocol, Time};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConfigError, LinkConfig, NodeConfig, Peer};
use crate::keys::{KeyError, StaticKeypair};
use crate::link::{Link, LinkError, LinkIo, TICK_MS};
use crate::stats::{DriverStats, LinkStats};
use crate::storage::{spawn_writer, PersistJob, PersistReport, RedbStore, StorageError};
use crate::timers::TimerSet;

/// Datagrams taken from the socket in one turn before the link is flushed.
pub const RECV_BATCH_MAX: usize = 256;

/// The largest datagram the socket reads.
pub const RECV_BUFFER_BYTES: usize = 65_536;

/// Kernel send and receive buffer requested for a node's socket, so bursts are queued rather
/// than dropped (Linux caps it at `net.core.rmem_max`/`wmem_max`).
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Ask for [`SOCKET_BUFFER_BYTES`] of kernel buffering; a refusal only costs burst tolerance.
pub fn enlarge_socket_buffers(socket: &UdpSocket) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock
        .set_recv_buffer_size(SOCKET_BUFFER_BYTES)
        .and_then(|()| sock.set_send_buffer_size(SOCKET_BUFFER_BYTES))
    {
        tracing::debug!(error = %e, "could not enlarge the UDP socket buffers");
    }
}

/// Bounds of a node's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Application requests waiting for the node.
    pub requests_len_max: usize,
    /// Outputs waiting for the application (the node pauses when it is full).
    pub outputs_len_max: usize,
    /// Persist batches waiting for the storage thread (the node pauses when it is full).
    pub persist_batches_len_max: usize,
    /// Sends held for durability; beyond this, held sends are dropped and logged.
    pub held_sends_max: usize,
    /// Messages to itself a node handles in one turn (the rest wait for the next turn).
    pub local_messages_per_turn_max: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            requests_len_max: 1024,
            outputs_len_max: 4096,
            persist_batches_len_max: 1024,
            held_sends_max: 65_536,
            local_messages_per_turn_max: 4096,
        }
    }
}

/// Where the node's UDP socket comes from.
#[derive(Debug)]
pub enum Listen {
    /// Bind this address.
    Addr(SocketAddr),
    /// Use an already bound socket (tests bind port 0 first to learn every node's address).
    Bound(std::net::UdpSocket),
}

/// Everything a node needs besides its protocol.
#[derive(Debug)]
pub struct NodeSetup {
    /// This node's id.
    pub id: NodeId,
    /// Its static keypair.
    pub keypair: StaticKeypair,
    /// Every other node.
    pub peers: Vec<Peer>,
    /// Its UDP socket.
    pub listen: Listen,
    /// Directory of its redb database.
    pub data_dir: PathBuf,
    /// Link limits.
    pub link: LinkConfig,
    /// Queue bounds.
    pub queues: QueueLimits,
    /// Seed of the protocol's RNG and the link's; `None` draws one from the OS.
    pub rng_seed: Option<[u8; 32]>,
}

impl NodeSetup {
    /// The setup a config file describes (loads the key file).
    pub fn from_config(config: &NodeConfig) -> Result<NodeSetup, NodeError> {
        config.validate()?;
        Ok(NodeSetup {
            id: config.node_id(),
            keypair: StaticKeypair::load(&config.key_file)?,
            peers: config.parsed_peers()?,
            listen: Listen::Addr(config.listen),
            data_dir: config.data_dir.clone(),
            link: config.link.clone(),
            queues: QueueLimits::default(),
            rng_seed: None,
        })
    }
}

/// Why a node could not start or stopped.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The links could not be set up.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Storage failed; the node stopped rather than break a durability promise.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The UDP socket could not be bound or used.
    #[error("UDP socket {addr}: {source}; is another process using the port?")]
    Socket {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The storage thread could not be started or ended unexpectedly.
    #[error("the storage thread stopped: {0}")]
    StorageThread(String),
    /// The node's task panicked or was aborted.
    #[error("the node task ended abnormally: {0}")]
    Task(String),
}

/// Counters of a running node.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct NodeStats {
    /// Its links.
    pub link: LinkStats,
    /// Its driver.
    pub driver: DriverStats,
}

/// The application's side of a running node.
pub struct NodeHandle<P: Protocol> {
    /// Requests to the protocol (bounded: `send` waits when the node is behind).
    pub requests: mpsc::Sender<P::Request>,
    /// The protocol's outputs, in order.
    pub outputs: mpsc::Receiver<P::Output>,
    local_addr: SocketAddr,
    stats: Arc<Mutex<NodeStats>>,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<P, NodeError>>,
}

impl<P: Protocol> NodeHandle<P> {
    /// The node's UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node's counters as of its last turn.
    pub fn stats(&self) -> NodeStats {
        *self
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stop the node after its current turn: persist batches already queued become durable,
    /// then the protocol is returned (tests inspect it; a server drops it).
    pub async fn shutdown(self) -> Result<P, NodeError> {
        // The task may already have ended; its result says why.
        let _ = self.shutdown.send(());
        self.task
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?
    }

    /// Stop the node at once, as `kill -9` would: nothing queued is flushed (batches the storage
    /// thread already holds may still commit, as a disk write in flight would).
    pub fn abort(self) {
        self.task.abort();
    }

    /// Wait until the node stops by itself (a storage failure), without asking it to.
    pub async fn join(self) -> Result<P, NodeError> {
        let NodeHandle { task, shutdown, .. } = self;
        let result = task.await.map_err(|e| NodeError::Task(e.to_string()))?;
        drop(shutdown);
        result
    }
}

/// A protocol a node task can own: it, and everything it exchanges with the task, can move
/// between the runtime's threads.
pub trait NodeProtocol:
    Protocol<Message: Send, Timer: Send, Request: Send, Output: Send> + Send + 'static
{
}

impl<P> NodeProtocol for P where
    P: Protocol<Message: Send, Timer: Send, Request: Send, Output: Send> + Send + 'static
{
}

/// Start a node: open its storage, build its protocol from what is durable there with `build`,
/// bind its socket and spawn its task on the current tokio runtime.
pub async fn spawn_node<P, F>(setup: NodeSetup, build: F) -> Result<NodeHandle<P>, NodeError>
where
    P: NodeProtocol,
    F: FnOnce(&RedbStore) -> P,
{
    let store = RedbStore::open(&setup.data_dir)?;
    let protocol = build(&store);
    let socket = match setup.listen {
        Listen::Addr(addr) => UdpSocket::bind(addr)
            .await
            .map_err(|source| NodeError::Socket {
                addr: addr.to_string(),
                source,
            })?,
        Listen::Bound(std_socket) => {
            let addr = format!("{:?}", std_socket.local_addr());
            std_socket
                .set_nonblocking(true)
                .and_then(|()| UdpSocket::from_std(std_socket))
                .map_err(|source| NodeError::Socket { addr, source })?
        }
    };
    enlarge_socket_buffers(&socket);
    let local_addr = socket.local_addr().map_err(|source| NodeError::Socket {
        addr: "(bound socket)".into(),
        source,
    })?;
    let mut rng = match setup.rng_seed {
        Some(seed) => ChaCha20Rng::from_seed(seed),
        None => ChaCha20Rng::from_entropy(),
    };
    let mut link_seed = [0u8; 32];
    rng.fill_bytes(&mut link_seed);
    let wall_epoch_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let link = Link::new(
        setup.id,
        setup.keypair,
        setup.peers,
        setup.link,
        wall_epoch_nanos,
        link_seed,
    )?;

    let (persist_tx, persist_rx) = mpsc::channel(setup.queues.persist_batches_len_max);
    // Unbounded but bounded in fact: one report per commit of batches taken from `persist_rx`.
    // A bounded channel here could deadlock with the node waiting on a full `persist_tx`.
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let writer = spawn_writer(store, persist_rx, report_tx)
        .map_err(|e| NodeError::StorageThread(e.to_string()))?;
    let (requests_tx, requests_rx) = mpsc::channel(setup.queues.requests_len_max);
    let (outputs_tx, outputs_rx) = mpsc::channel(setup.queues.outputs_len_max);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let stats = Arc::new(Mutex::new(NodeStats::default()));

    let node = NodeTask {
        me: setup.id,
        protocol,
        link,
        link_io: LinkIo::default(),
        socket,
        timers: TimerSet::new(),
        rng,
        next_token: 0,
        started: Instant::now(),
        persist_tx: Some(persist_tx),
        persist_reports: report_rx,
        writer: Some(writer),
        held: BTreeMap::new(),
        held_len: 0,
        durable_through: None,
        local_inbox: VecDeque::new(),
        outputs: outputs_tx,
        requests: requests_rx,
        requests_open: true,
        queues: setup.queues,
        stats: DriverStats::default(),
        shared_stats: Arc::clone(&stats),
    };
    let task = tokio::spawn(node.run(shutdown_rx));
    Ok(NodeHandle {
        requests: requests_tx,
        outputs: outputs_rx,
        local_addr,
        stats,
        shutdown: shutdown_tx,
        task,
    })
}

struct NodeTask<P: Protocol> {
    me: NodeId,
    protocol: P,
    link: Link,
    link_io: LinkIo,
    socket: UdpSocket,
    timers: TimerSet<P::Timer>,
    rng: ChaCha20Rng,
    next_token: u64,
    started: Instant,
    persist_tx: Option<mpsc::Sender<PersistJob>>,
    persist_reports: mpsc::UnboundedReceiver<PersistReport>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Sends waiting for a persist batch, by token.
    held: BTreeMap<PersistToken, Vec<(NodeId, P::Message)>>,
    held_len: usize,
    /// Batches complete in token order, so everything up to this token is durable.
    durable_through: Option<PersistToken>,
    local_inbox: VecDeque<P::Message>,
    outputs: mpsc::Sender<P::Output>,
    requests: mpsc::Receiver<P::Request>,
    requests_open: bool,
    queues: QueueLimits,
    stats: DriverStats,
    shared_stats: Arc<Mutex<NodeStats>>,
}

/// What woke the node.
enum Wake<R> {
    Shutdown,
    Durable(Option<PersistReport>),
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Request(Option<R>),
    Deadline,
}

impl<P: NodeProtocol> NodeTask<P> {
    fn now(&self) -> Time {
        Time::from_nanos(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, t: Time) -> Instant {
        self.started + Duration::from_nanos(t.as_nanos())
    }

    async fn run(mut self, mut shutdown: oneshot::Receiver<()>) -> Result<P, NodeError> {
        tracing::info!(node = %self.me, addr = ?self.socket.local_addr().ok(), "node started");
        let result = self.serve(&mut shutdown).await;
        self.stop_storage().await?;
        self.publish();
        match result {
            Ok(()) => {
                tracing::info!(node = %self.me, "node stopped");
                Ok(self.protocol)
            }
            Err(e) => {
                tracing::error!(node = %self.me, error = %e, "node failed");
                Err(e)
            }
        }
    }

    async fn serve(&mut self, shutdown: &mut oneshot::Receiver<()>) -> Result<(), NodeError> {
        let effects = self.call(|p, cx| p.on_start(cx));
        self.apply(effects).await?;
        let now = self.now();
        self.link.connect_all(now, &mut self.link_io);
        self.finish_turn().await?;
        let mut next_tick = self.now() + Duration::from_millis(TICK_MS);
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        loop {
            // Due timers run every turn, so a busy socket cannot starve them.
            self.run_deadlines(&mut next_tick).await?;
            let wake_at = if self.local_inbox.is_empty() {
                self.timers
                    .next_deadline()
                    .map_or(next_tick, |t| t.min(next_tick))
            } else {
                self.now()
            };
            let sleep = tokio::time::sleep_until(self.instant_of(wake_at).into());
            // Unbiased: tokio polls the branches in random order, so no source starves another.
            let wake = tokio::select! {
                _ = &mut *shutdown => Wake::Shutdown,
                report = self.persist_reports.recv() => Wake::Durable(report),
                received = self.socket.recv_from(&mut buf) => Wake::Datagram(received),
                request = self.requests.recv(), if self.requests_open => Wake::Request(request),
                () = sleep => Wake::Deadline,
            };
            match wake {
                Wake::Shutdown => return Ok(()),
                Wake::Durable(Some(Ok(batches))) => self.on_durable(batches).await?,
                Wake::Durable(Some(Err(e))) => return Err(e.into()),
                Wake::Durable(None) => {
                    return Err(NodeError::StorageThread("it exited early".into()))
                }
                Wake::Datagram(received) => self.on_datagrams(received, &mut buf).await?,
                Wake::Request(Some(request)) => {
                    self.stats.requests += 1;
                    let effects = self.call(|p, cx| p.on_request(cx, request));
                    self.apply(effects).await?;
                }
                Wake::Request(None) => self.requests_open = false,
                Wake::Deadline => self.run_deadlines(&mut next_tick).await?,
            }
            self.finish_turn().await?;
        }
    }

    /// Fire the timers due now, and the link's tick when `next_tick` passed.
    async fn run_deadlines(&mut self, next_tick: &mut Time) -> Result<(), NodeError> {
        let now = self.now();
        while let Some(timer) = self.timers.pop_due(now) {
            self.stats.timers_fired += 1;
            let effects = self.call(|p, cx| p.on_timer(cx, timer));
            self.apply(effects).await?;
        }
        if now >= *next_tick {
            self.link.tick(now, &mut self.link_io);
            *next_tick = now + Duration::from_millis(TICK_MS);
            self.publish();
        }
        Ok(())
    }

    /// Handle `first` and whatever else the socket holds right now.
    async fn on_datagrams(
        &mut self,
        first: std::io::Result<(usize, SocketAddr)>,
        buf: &mut [u8],
    ) -> Result<(), NodeError> {
        let mut received = first;
        for _ in 0..RECV_BATCH_MAX {
            match received {
                Ok((len, source)) => {
                    let now = self.now();
                    self.link
                        .on_datagram(now, source, &buf[..len], &mut self.link_io);
                    self.deliver_link_messages().await?;
                }
                // ICMP errors surface here on some systems; the socket stays usable.
                Err(e) => tracing::debug!(node = %self.me, error = %e, "receive failed"),
            }
            received = match self.socket.try_recv_from(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                other => other,
            };
        }
        Ok(())
    }

    async fn deliver_link_messages(&mut self) -> Result<(), NodeError> {
        let messages = std::mem::take(&mut self.link_io.messages);
        for (from, frame) in messages {
            match decode_frame::<P::Message>(&frame, DecodeLimits::MESSAGE) {
                Ok(message) => {
                    self.stats.messages_delivered += 1;
                    let effects = self.call(|p, cx| p.on_message(cx, from, message));
                    self.apply(effects).await?;
                }
                Err(e) => {
                    self.stats.messages_malformed += 1;
                    tracing::debug!(node = %self.me, peer = %from, error = %e, "malformed message dropped");
                }
            }
        }
        Ok(())
    }

    async fn on_durable(&mut self, batches: Vec<(PersistToken, usize)>) -> Result<(), NodeError> {
        for (token, bytes) in batches {
            self.stats.persists += 1;
            self.stats.persist_bytes += bytes as u64;
            self.durable_through = Some(token);
            let still_held = self
                .held
                .split_off(&PersistToken(token.0.saturating_add(1)));
            let released = std::mem::replace(&mut self.held, still_held);
            for (_, sends) in released {
                self.held_len -= sends.len();
                for (to, message) in sends {
                    self.send_now(to, message);
                }
            }
            let effects = self.call(|p, cx| p.on_persisted(cx, token));
            self.apply(effects).await?;
        }
        Ok(())
    }

    /// Messages to self, then the link's datagrams, then the counters.
    async fn finish_turn(&mut self) -> Result<(), NodeError> {
        for _ in 0..self.queues.local_messages_per_turn_max {
            let Some(message) = self.local_inbox.pop_front() else {
                break;
            };
            self.stats.messages_delivered += 1;
            let me = self.me;
            let effects = self.call(|p, cx| p.on_message(cx, me, message));
            self.apply(effects).await?;
        }
        if !self.local_inbox.is_empty() {
            // The rest waits for the next turn, which starts at once (see `serve`).
            self.stats.local_messages_deferred += 1;
        }
        let now = self.now();
        self.link.flush(now, &mut self.link_io);
        for (to, datagram) in self.link_io.datagrams.drain(..) {
            if let Err(e) = self.socket.send_to(&datagram, to).await {
                tracing::debug!(node = %self.me, %to, error = %e, "send failed");
            }
        }
        self.share_stats();
        Ok(())
    }

    fn share_stats(&self) {
        let mut shared = self
            .shared_stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *shared = NodeStats {
            link: *self.link.stats(),
            driver: self.stats,
        };
    }

    fn publish(&self) {
        self.link.stats().publish(self.me);
        self.stats.publish(self.me);
    }

    fn call(&mut self, input: impl FnOnce(&mut P, &mut Context<'_, P>)) -> Vec<Effect<P>> {
        let now = self.now();
        let mut cx = Context::new(
            now,
            self.me,
            &mut self.rng,
            &mut self.next_token,
            Vec::new(),
        );
        input(&mut self.protocol, &mut cx);
        cx.into_effects()
    }

    async fn apply(&mut self, effects: Vec<Effect<P>>) -> Result<(), NodeError> {
        for effect in effects {
            match effect {
                Effect::Send {
                    to,
                    message,
                    after: None,
                } => self.send_now(to, message),
                Effect::Send {
                    to,
                    message,
                    after: Some(token),
                } => {
                    if self.durable_through.is_some_and(|d| d >= token) {
                        self.send_now(to, message);
                    } else if self.held_len >= self.queues.held_sends_max {
                        self.stats.sends_dropped_held_full += 1;
                        tracing::warn!(node = %self.me, %to, "held-send bound reached; message dropped");
                    } else {
                        self.stats.sends_held += 1;
                        self.held_len += 1;
                        self.held.entry(token).or_default().push((to, message));
                    }
                }
                Effect::SetTimer { timer, at } => {
                    self.stats.timers_set += 1;
                    self.timers.set(timer, at);
                }
                Effect::CancelTimer { timer } => self.timers.cancel(&timer),
                Effect::Deliver(output) => {
                    self.stats.outputs += 1;
                    // Counters an application reads after an output include what led to it.
                    self.share_stats();
                    // A dropped receiver means the application stopped listening; the node goes on.
                    let _ = self.outputs.send(output).await;
                }
                Effect::Persist { token, ops } => {
                    let Some(persist) = self.persist_tx.as_ref() else {
                        return Err(NodeError::StorageThread("persist after shutdown".into()));
                    };
                    if persist.send(PersistJob { token, ops }).await.is_err() {
                        return Err(self.writer_failure().await);
                    }
                }
                Effect::Charge(_) => {}
            }
        }
        Ok(())
    }

    /// The error the storage thread reported before it exited.
    async fn writer_failure(&mut self) -> NodeError {
        match self.persist_reports.recv().await {
            Some(Err(e)) => e.into(),
            _ => NodeError::StorageThread("it exited early".into()),
        }
    }

    fn send_now(&mut self, to: NodeId, message: P::Message) {
        self.stats.messages_sent += 1;
        if to == self.me {
            self.local_inbox.push_back(message);
            return;
        }
        if let Err(e) = self.link.send(to, encode_frame(&message)) {
            tracing::warn!(node = %self.me, %to, error = %e, "message not sent");
        }
    }

    /// Close the writer's queue and wait until it committed everything queued.
    async fn stop_storage(&mut self) -> Result<(), NodeError> {
        self.persist_tx = None;
        if let Some(writer) = self.writer.take() {
            tokio::task::spawn_blocking(move || writer.join())
                .await
                .map_err(|e| NodeError::StorageThread(e.to_string()))?
                .map_err(|_| NodeError::StorageThread("it panicked".into()))?;
        }
        while let Ok(report) = self.persist_reports.try_recv() {
            let batches = report?;
            self.stats.persists += batches.len() as u64;
        }
        Ok(())
    }
}
