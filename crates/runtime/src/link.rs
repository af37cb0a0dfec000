//! The link layer as a sans-IO state machine: authenticated, encrypted datagram links to a fixed
//! set of peers (paper 003, "Security": secure tunnels between daemons, so the cost of security
//! is paid once per pair of daemons and every message between them is authenticated).
//!
//! # How to drive it
//! Inputs: [`Link::on_datagram`] for every UDP datagram received, [`Link::send`] for every framed
//! protocol message to a peer, [`Link::flush`] after a batch of sends (messages queued since the
//! last flush share datagrams), and [`Link::tick`] periodically (every [`TICK_MS`]) for
//! retries, rekeying and expiry. Outputs land in a [`LinkIo`]: datagrams to put on the socket and
//! authenticated messages to hand to the protocol. Time comes in as an argument and must not go
//! backwards; the link reads no clock and owns no socket, so tests drive it datagram by datagram.
//!
//! # Rules it enforces
//! - Only configured peers: a handshake whose static key is unknown is dropped, and a data
//!   datagram is accepted only on a session such a handshake created, before any protocol byte
//!   is parsed.
//! - Each datagram is sealed with an explicit 64-bit nonce and accepted at most once (replay
//!   window of [`crate::replay::REPLAY_WINDOW_NONCES`]).
//! - Sessions are replaced by a new handshake after `rekey_after_messages` datagrams or
//!   `rekey_after_ms`, and refused after `reject_after_ms`.
//! - Under load (more than `handshake_inits_per_second_max` initiations in a second) an
//!   initiation is answered with a cookie reply unless its `mac2` proves it can receive at its
//!   source address (WireGuard's defence against handshake floods).
//! - Messages up to `message_bytes_max` are fragmented and reassembled within bounds.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use stockade_core::{NodeId, Time};
use thiserror::Error;

use crate::config::{LinkConfig, Peer};
use crate::keys::{PublicKey, StaticKeypair, KEY_LEN};
use crate::noise::{self, Mac16, COOKIE_NONCE_LEN, MAC_LEN, NOISE_PROLOGUE};
use crate::packet::{
    self, CookieReply, DataHeader, HandshakeMacs, Init, Response, DATA_OVERHEAD_LEN,
    INIT_NOISE_LEN, INIT_PAYLOAD_LEN, RESPONSE_NOISE_LEN,
};
use crate::records::{Reassembler, ReassemblyDrop, Record, RecordPacker, RecordReader};
use crate::session::{OpenError, PendingHandshake, Session, SESSION_MESSAGES_MAX};
use crate::stats::LinkStats;

/// How often the driver should call [`Link::tick`].
pub const TICK_MS: u64 = 100;

/// Tries to draw an unused random session index before probing sequentially.
const INDEX_DRAWS_MAX: usize = 64;

/// What the link asks its driver to do.
#[derive(Default, Debug)]
pub struct LinkIo {
    /// Datagrams to send, in order.
    pub datagrams: Vec<(SocketAddr, Vec<u8>)>,
    /// Authenticated messages from peers, in order of arrival.
    pub messages: Vec<(NodeId, Vec<u8>)>,
}

impl LinkIo {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty() && self.messages.is_empty()
    }
}

/// Why a message was not accepted for sending.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
pub enum SendError {
    /// The destination is not a configured peer.
    #[error("{0} is not a configured peer")]
    NoSuchPeer(NodeId),
    /// The message exceeds the link's message limit.
    #[error(
        "message of {len} bytes exceeds the link limit of {max} bytes; chunk it in the protocol"
    )]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many messages wait for this peer (its handshake has not completed).
    #[error("{0}'s send queue is full; the peer has not completed a handshake")]
    QueueFull(NodeId),
}

/// Why a link could not be built.
#[derive(Debug, Error)]
pub enum LinkError {
    /// The link config is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A peer has this node's own id or key.
    #[error("peer {0} has this node's own id or public key")]
    SelfAsPeer(NodeId),
    /// Two peers share a public key.
    #[error("peers share the public key {0}")]
    DuplicateKey(PublicKey),
}

struct PeerState {
    peer: Peer,
    mac1_key: [u8; KEY_LEN],
    cookie_reply_key: [u8; KEY_LEN],
    current: Option<Session>,
    previous: Option<Session>,
    /// A session this node responded to; it becomes current when the initiator first uses it.
    next: Option<Session>,
    handshake: Option<PendingHandshake>,
    last_init_timestamp: u64,
    cookie: Option<(Mac16, Time)>,
    queue: VecDeque<Vec<u8>>,
    reassembly: Reassembler,
    next_message_id: u32,
}

/// Everything of a link except its peers, so a peer and the shared state can be borrowed at once.
struct Shared {
    me: NodeId,
    keypair: StaticKeypair,
    mac1_key: [u8; KEY_LEN],
    cookie_reply_key: [u8; KEY_LEN],
    config: LinkConfig,
    indices: HashMap<u32, NodeId>,
    rng: ChaCha20Rng,
    wall_epoch_nanos: u64,
    last_init_timestamp_sent: u64,
    cookie_secret: [u8; KEY_LEN],
    cookie_secret_born: Time,
    load_window_start: Time,
    inits_in_window: u32,
    stats: LinkStats,
}

/// The links of one node to all its peers.
pub struct Link {
    shared: Shared,
    peers: HashMap<NodeId, PeerState>,
    by_key: HashMap<PublicKey, NodeId>,
}

impl Link {
    /// Links for node `me` with `keypair` to `peers`. `wall_epoch_nanos` is the wall-clock time
    /// (Unix nanoseconds) at `Time::ZERO`: handshake timestamps must grow across restarts.
    /// `seed` seeds session indices, cookie secrets and cookie nonces.
    pub fn new(
        me: NodeId,
        keypair: StaticKeypair,
        peers: Vec<Peer>,
        config: LinkConfig,
        wall_epoch_nanos: u64,
        seed: [u8; 32],
    ) -> Result<Link, LinkError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut cookie_secret = [0u8; KEY_LEN];
        rng.fill_bytes(&mut cookie_secret);
        let mut by_key = HashMap::new();
        let mut states = HashMap::new();
        for peer in peers {
            if peer.id == me || peer.public_key == keypair.public() {
                return Err(LinkError::SelfAsPeer(peer.id));
            }
            if by_key.insert(peer.public_key, peer.id).is_some() {
                return Err(LinkError::DuplicateKey(peer.public_key));
            }
            states.insert(peer.id, PeerState::new(peer, &config));
        }
        let shared = Shared {
            me,
            mac1_key: noise::mac1_key(&keypair.public()),
            cookie_reply_key: noise::cookie_reply_key(&keypair.public()),
            keypair,
            config,
            indices: HashMap::new(),
            rng,
            wall_epoch_nanos,
            last_init_timestamp_sent: 0,
            cookie_secret,
            cookie_secret_born: Time::ZERO,
            load_window_start: Time::ZERO,
            inits_in_window: 0,
            stats: LinkStats::default(),
        };
        Ok(Link {
            shared,
            peers: states,
            by_key,
        })
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.shared.me
    }

    /// The counters so far.
    pub fn stats(&self) -> &LinkStats {
        &self.shared.stats
    }

    /// The link's limits.
    pub fn config(&self) -> &LinkConfig {
        &self.shared.config
    }

    /// Whether a session with `peer` is established and usable for sending.
    pub fn has_session(&self, peer: NodeId, now: Time) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.usable_session(now, &self.shared.config))
    }

    /// Queue `frame` for `to`; it leaves at the next [`flush`](Self::flush).
    pub fn send(&mut self, to: NodeId, frame: Vec<u8>) -> Result<(), SendError> {
        let stats = &mut self.shared.stats;
        let Some(peer) = self.peers.get_mut(&to) else {
            stats.dropped_no_such_peer += 1;
            return Err(SendError::NoSuchPeer(to));
        };
        let max = self.shared.config.message_bytes_max;
        if frame.len() > max {
            stats.dropped_too_large += 1;
            return Err(SendError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        if peer.queue.len() >= self.shared.config.pending_messages_per_peer_max {
            stats.dropped_queue_full += 1;
            return Err(SendError::QueueFull(to));
        }
        stats.messages_out += 1;
        peer.queue.push_back(frame);
        Ok(())
    }

    /// Seal every queued message into datagrams (starting handshakes where no session exists).
    pub fn flush(&mut self, now: Time, io: &mut LinkIo) {
        for peer in self.peers.values_mut() {
            if !peer.queue.is_empty() {
                peer.flush(&mut self.shared, now, io);
            }
        }
    }

    /// Start a handshake with every peer that has no session and none under way. A node calls
    /// this when it (re)starts: its peers still hold sessions from before the restart, which it
    /// can no longer read, and a completed handshake replaces them at once instead of at the
    /// peer's next rekey.
    pub fn connect_all(&mut self, now: Time, io: &mut LinkIo) {
        for peer in self.peers.values_mut() {
            let config = &self.shared.config;
            if !peer.usable_session(now, config) && !peer.handshake_in_progress(now, config) {
                peer.start_handshake(&mut self.shared, now, 1, io);
            }
        }
    }

    /// Periodic work: handshake retries, time-based rekeying, expiry of sessions, partial
    /// messages and cookie secrets.
    pub fn tick(&mut self, now: Time, io: &mut LinkIo) {
        let lifetime = Duration::from_millis(self.shared.config.cookie_secret_lifetime_ms);
        if now.since(self.shared.cookie_secret_born) >= lifetime {
            self.shared.rng.fill_bytes(&mut self.shared.cookie_secret);
            self.shared.cookie_secret_born = now;
        }
        for peer in self.peers.values_mut() {
            peer.tick(&mut self.shared, now, io);
        }
    }

    /// One datagram from `source`.
    pub fn on_datagram(&mut self, now: Time, source: SocketAddr, datagram: &[u8], io: &mut LinkIo) {
        let stats = &mut self.shared.stats;
        stats.datagrams_in += 1;
        stats.bytes_in += datagram.len() as u64;
        match datagram.first() {
            None => stats.dropped_truncated += 1,
            Some(&packet::TYPE_INIT) => self.on_init(now, source, datagram, io),
            Some(&packet::TYPE_RESPONSE) => self.on_response(now, datagram, io),
            Some(&packet::TYPE_COOKIE) => self.on_cookie_reply(now, datagram, io),
            Some(&packet::TYPE_DATA) => self.on_data(now, datagram, io),
            Some(_) => stats.dropped_malformed += 1,
        }
    }

    /// The peer a session index belongs to, with the shared state; counts an unknown index.
    fn peer_for_index(&mut self, index: u32) -> Option<(&mut Shared, &mut PeerState)> {
        let s = &mut self.shared;
        match s.indices.get(&index).and_then(|id| self.peers.get_mut(id)) {
            Some(peer) => Some((s, peer)),
            None => {
                s.stats.dropped_unknown_session += 1;
                None
            }
        }
    }

    fn mac1_ok(&mut self, packet: &[u8], macs: &HandshakeMacs) -> bool {
        let expected = noise::mac(&self.shared.mac1_key, &[&packet[..macs.mac1_at]]);
        let ok = noise::mac_eq(&expected, &macs.mac1);
        if !ok {
            self.shared.stats.dropped_bad_mac += 1;
        }
        ok
    }

    /// Counts initiations per one-second window; true when over the configured rate.
    fn under_load(&mut self, now: Time) -> bool {
        let s = &mut self.shared;
        if now.since(s.load_window_start) >= Duration::from_secs(1) {
            s.load_window_start = now;
            s.inits_in_window = 0;
        }
        s.inits_in_window = s.inits_in_window.saturating_add(1);
        s.inits_in_window > s.config.handshake_inits_per_second_max
    }

    fn on_init(&mut self, now: Time, source: SocketAddr, datagram: &[u8], io: &mut LinkIo) {
        let Some(init) = Init::parse(datagram) else {
            self.shared.stats.dropped_truncated += 1;
            return;
        };
        let macs = HandshakeMacs::of(datagram);
        if !self.mac1_ok(datagram, &macs) {
            return;
        }
        if self.under_load(now) {
            let cookie = noise::cookie_for(&self.shared.cookie_secret, source);
            let expected = noise::mac(&cookie, &[&datagram[..macs.mac1_at + MAC_LEN]]);
            if !noise::mac_eq(&expected, &macs.mac2) {
                self.send_cookie_reply(source, init.sender, &cookie, &macs.mac1, io);
                return;
            }
            self.shared.stats.handshakes_with_cookie += 1;
        }
        let s = &mut self.shared;
        let mut state = match handshake_builder(&s.keypair, None).and_then(|b| b.build_responder())
        {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(node = %s.me, error = %e, "cannot build a Noise responder");
                return;
            }
        };
        let mut payload = [0u8; INIT_PAYLOAD_LEN + 16];
        let payload_len = match state.read_message(init.noise, &mut payload) {
            Ok(len) => len,
            Err(_) => {
                s.stats.dropped_handshake_failed += 1;
                return;
            }
        };
        let Some(peer_id) = state.get_remote_static().and_then(|k| {
            let key = PublicKey(k.try_into().ok()?);
            self.by_key.get(&key).copied()
        }) else {
            s.stats.dropped_unknown_key += 1;
            return;
        };
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return;
        };
        if payload_len != INIT_PAYLOAD_LEN {
            s.stats.dropped_handshake_failed += 1;
            return;
        }
        let mut stamp = [0u8; INIT_PAYLOAD_LEN];
        stamp.copy_from_slice(&payload[..INIT_PAYLOAD_LEN]);
        let timestamp = u64::from_le_bytes(stamp);
        if timestamp <= peer.last_init_timestamp {
            s.stats.dropped_replay += 1;
            return;
        }
        let mut noise_out = [0u8; RESPONSE_NOISE_LEN];
        let transport = state
            .write_message(&[], &mut noise_out)
            .and_then(|_| state.into_stateless_transport_mode());
        let transport = match transport {
            Ok(t) => t,
            Err(_) => {
                s.stats.dropped_handshake_failed += 1;
                return;
            }
        };
        peer.last_init_timestamp = timestamp;
        let index = s.fresh_index(peer_id);
        let mut response = Response::build(index, init.sender, &noise_out);
        let mac1 = noise::mac(&peer.mac1_key, &[&response[..response.len() - 2 * MAC_LEN]]);
        packet::set_macs(&mut response, &mac1, &[0; MAC_LEN]);
        if let Some(old) =
            peer.next
                .replace(Session::new(transport, index, init.sender, now, false))
        {
            s.indices.remove(&old.local_index);
        }
        s.stats.handshakes_completed += 1;
        tracing::debug!(node = %s.me, peer = %peer_id, "handshake answered");
        s.emit(io, source, response);
    }

    fn send_cookie_reply(
        &mut self,
        source: SocketAddr,
        receiver: u32,
        cookie: &Mac16,
        mac1: &Mac16,
        io: &mut LinkIo,
    ) {
        let s = &mut self.shared;
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        s.rng.fill_bytes(&mut nonce);
        let sealed = noise::seal_cookie(&s.cookie_reply_key, &nonce, cookie, mac1);
        s.stats.cookie_replies_sent += 1;
        s.emit(io, source, CookieReply::build(receiver, &nonce, &sealed));
    }

    fn on_response(&mut self, now: Time, datagram: &[u8], io: &mut LinkIo) {
        let Some(response) = Response::parse(datagram) else {
            self.shared.stats.dropped_truncated += 1;
            return;
        };
        let macs = HandshakeMacs::of(datagram);
        if !self.mac1_ok(datagram, &macs) {
            return;
        }
        let Some((s, peer)) = self.peer_for_index(response.receiver) else {
            return;
        };
        let Some(mut pending) = peer
            .handshake
            .take_if(|h| h.local_index == response.receiver)
        else {
            s.stats.dropped_unknown_session += 1;
            return;
        };
        let mut payload = [0u8; 16];
        let transport = pending
            .state
            .read_message(response.noise, &mut payload)
            .and_then(|_| pending.state.into_stateless_transport_mode());
        let transport = match transport {
            Ok(t) => t,
            Err(_) => {
                // The handshake state is spent; the next tick or flush starts a fresh one.
                s.indices.remove(&pending.local_index);
                s.stats.dropped_handshake_failed += 1;
                return;
            }
        };
        let session = Session::new(transport, pending.local_index, response.sender, now, true);
        peer.install_current(s, session);
        s.stats.handshakes_completed += 1;
        tracing::debug!(node = %s.me, peer = %peer.peer.id, "handshake completed");
        if peer.queue.is_empty() {
            // A keepalive confirms the session to the responder, who waits for it before sending.
            peer.seal_and_emit(s, &[], io);
        } else {
            peer.flush(s, now, io);
        }
    }

    fn on_cookie_reply(&mut self, now: Time, datagram: &[u8], io: &mut LinkIo) {
        let Some(reply) = CookieReply::parse(datagram) else {
            self.shared.stats.dropped_truncated += 1;
            return;
        };
        let Some((s, peer)) = self.peer_for_index(reply.receiver) else {
            return;
        };
        let Some(pending) = peer
            .handshake
            .as_mut()
            .filter(|h| h.local_index == reply.receiver)
        else {
            s.stats.dropped_unknown_session += 1;
            return;
        };
        let Some(cookie) = noise::open_cookie(
            &peer.cookie_reply_key,
            &reply.nonce,
            reply.sealed,
            &pending.mac1,
        ) else {
            s.stats.dropped_bad_auth += 1;
            return;
        };
        s.stats.cookies_received += 1;
        peer.cookie = Some((cookie, now));
        // The initiation was never processed, so the same one, now with mac2, is still valid.
        let mac2 = noise::mac(
            &cookie,
            &[&pending.packet[..pending.packet.len() - MAC_LEN]],
        );
        let mac1 = pending.mac1;
        packet::set_macs(&mut pending.packet, &mac1, &mac2);
        pending.sent_at = now;
        let resend = pending.packet.clone();
        s.emit(io, peer.peer.addr, resend);
    }

    fn on_data(&mut self, now: Time, datagram: &[u8], io: &mut LinkIo) {
        let Some(header) = DataHeader::parse(datagram) else {
            self.shared.stats.dropped_truncated += 1;
            return;
        };
        let Some((s, peer)) = self.peer_for_index(header.receiver) else {
            return;
        };
        let reject_after = Duration::from_millis(s.config.reject_after_ms);
        let Some((session, is_next)) = peer.session_for(header.receiver) else {
            s.stats.dropped_unknown_session += 1;
            return;
        };
        if now.since(session.born) >= reject_after {
            s.stats.dropped_unknown_session += 1;
            return;
        }
        let plaintext = match session.open(&header) {
            Ok(p) => p,
            Err(OpenError::Replayed) => return s.stats.dropped_replay += 1,
            Err(OpenError::TooOld) => return s.stats.dropped_too_old += 1,
            Err(OpenError::BadAuth) => return s.stats.dropped_bad_auth += 1,
        };
        if is_next {
            if let Some(confirmed) = peer.next.take() {
                peer.install_current(s, confirmed);
            }
        }
        peer.receive_records(s, now, &plaintext, io);
        if !peer.queue.is_empty() {
            // Messages queued while this node waited for the initiator's confirmation.
            peer.flush(s, now, io);
        }
    }
}

fn handshake_builder<'a>(
    keypair: &'a StaticKeypair,
    remote: Option<&'a PublicKey>,
) -> Result<snow::Builder<'a>, snow::Error> {
    let builder = snow::Builder::new(noise::noise_params())
        .local_private_key(keypair.private_bytes())?
        .prologue(NOISE_PROLOGUE)?;
    match remote {
        Some(key) => builder.remote_public_key(&key.0),
        None => Ok(builder),
    }
}

impl Shared {
    fn emit(&mut self, io: &mut LinkIo, to: SocketAddr, datagram: Vec<u8>) {
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += datagram.len() as u64;
        io.datagrams.push((to, datagram));
    }

    /// An unused random session index, registered to `peer`.
    fn fresh_index(&mut self, peer: NodeId) -> u32 {
        let mut index = self.rng.next_u32();
        for _ in 0..INDEX_DRAWS_MAX {
            if !self.indices.contains_key(&index) {
                break;
            }
            index = self.rng.next_u32();
        }
        // Sequential probing finds a free index within indices.len() + 1 steps.
        for _ in 0..=self.indices.len() {
            if !self.indices.contains_key(&index) {
                break;
            }
            index = index.wrapping_add(1);
        }
        self.indices.insert(index, peer);
        index
    }

    /// Strictly increasing wall-clock handshake timestamps, so a responder refuses replays.
    fn init_timestamp(&mut self, now: Time) -> u64 {
        let wall = self.wall_epoch_nanos.saturating_add(now.as_nanos());
        self.last_init_timestamp_sent = wall.max(self.last_init_timestamp_sent + 1);
        self.last_init_timestamp_sent
    }
}

impl PeerState {
    fn new(peer: Peer, config: &LinkConfig) -> PeerState {
        PeerState {
            mac1_key: noise::mac1_key(&peer.public_key),
            cookie_reply_key: noise::cookie_reply_key(&peer.public_key),
            peer,
            current: None,
            previous: None,
            next: None,
            handshake: None,
            last_init_timestamp: 0,
            cookie: None,
            queue: VecDeque::new(),
            reassembly: Reassembler::new(
                config.reassembly_partials_per_peer_max,
                config.message_bytes_max,
                config.reassembly_timeout(),
            ),
            next_message_id: 0,
        }
    }

    fn usable_session(&self, now: Time, config: &LinkConfig) -> bool {
        self.current.as_ref().is_some_and(|s| {
            now.since(s.born) < Duration::from_millis(config.reject_after_ms)
                && s.send_nonce < SESSION_MESSAGES_MAX
        })
    }

    fn session_for(&mut self, index: u32) -> Option<(&mut Session, bool)> {
        if let Some(s) = self.current.as_mut().filter(|s| s.local_index == index) {
            return Some((s, false));
        }
        if let Some(s) = self.previous.as_mut().filter(|s| s.local_index == index) {
            return Some((s, false));
        }
        self.next
            .as_mut()
            .filter(|s| s.local_index == index)
            .map(|s| (s, true))
    }

    /// Make `session` current; the old current stays receivable as previous for in-flight data.
    fn install_current(&mut self, shared: &mut Shared, session: Session) {
        if let Some(old) = self.previous.take() {
            shared.indices.remove(&old.local_index);
        }
        self.previous = self.current.replace(session);
    }

    fn start_handshake(&mut self, shared: &mut Shared, now: Time, attempts: u32, io: &mut LinkIo) {
        if let Some(old) = self.handshake.take() {
            shared.indices.remove(&old.local_index);
        }
        let mut state = match handshake_builder(&shared.keypair, Some(&self.peer.public_key))
            .and_then(|b| b.build_initiator())
        {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(node = %shared.me, error = %e, "cannot build a Noise initiator");
                return;
            }
        };
        let timestamp = shared.init_timestamp(now);
        let mut noise_out = [0u8; INIT_NOISE_LEN];
        if let Err(e) = state.write_message(&timestamp.to_le_bytes(), &mut noise_out) {
            tracing::error!(node = %shared.me, error = %e, "cannot write a Noise initiation");
            return;
        }
        let local_index = shared.fresh_index(self.peer.id);
        let mut packet = Init::build(local_index, &noise_out);
        let mac1 = noise::mac(&self.mac1_key, &[&packet[..packet.len() - 2 * MAC_LEN]]);
        let cookie_lifetime = Duration::from_millis(shared.config.cookie_secret_lifetime_ms);
        let mac2 = match self.cookie {
            Some((cookie, got)) if now.since(got) < cookie_lifetime => {
                noise::mac(&cookie, &[&packet[..packet.len() - MAC_LEN]])
            }
            _ => [0; MAC_LEN],
        };
        packet::set_macs(&mut packet, &mac1, &mac2);
        shared.stats.handshakes_initiated += 1;
        shared.emit(io, self.peer.addr, packet.clone());
        self.handshake = Some(PendingHandshake {
            state,
            local_index,
            packet,
            mac1,
            sent_at: now,
            attempts,
        });
    }

    /// Whether a handshake is under way, either ours or one we answered and await confirmation of.
    fn handshake_in_progress(&self, now: Time, config: &LinkConfig) -> bool {
        let retry = Duration::from_millis(config.handshake_retry_ms);
        self.handshake.is_some()
            || self
                .next
                .as_ref()
                .is_some_and(|n| now.since(n.born) < retry)
    }

    fn flush(&mut self, shared: &mut Shared, now: Time, io: &mut LinkIo) {
        if !self.usable_session(now, &shared.config) {
            if !self.handshake_in_progress(now, &shared.config) {
                self.start_handshake(shared, now, 1, io);
            }
            return;
        }
        let plaintext_max = shared.config.datagram_payload_bytes_max - DATA_OVERHEAD_LEN;
        let mut packer = RecordPacker::new(plaintext_max);
        for frame in self.queue.drain(..) {
            packer.push(&frame, self.next_message_id);
            self.next_message_id = self.next_message_id.wrapping_add(1);
        }
        for plaintext in packer.finish() {
            self.seal_and_emit(shared, &plaintext, io);
        }
        let needs_rekey = self
            .current
            .as_ref()
            .is_some_and(|s| s.send_nonce >= shared.config.rekey_after_messages);
        if needs_rekey && self.handshake.is_none() {
            shared.stats.rekeys += 1;
            self.start_handshake(shared, now, 1, io);
        }
    }

    fn seal_and_emit(&mut self, shared: &mut Shared, plaintext: &[u8], io: &mut LinkIo) {
        let Some(session) = self.current.as_mut() else {
            return;
        };
        match session.seal(plaintext) {
            Ok(datagram) => shared.emit(io, self.peer.addr, datagram),
            Err(e) => {
                tracing::error!(node = %shared.me, peer = %self.peer.id, error = %e, "sealing failed")
            }
        }
    }

    fn receive_records(
        &mut self,
        shared: &mut Shared,
        now: Time,
        plaintext: &[u8],
        io: &mut LinkIo,
    ) {
        for record in RecordReader::new(plaintext) {
            match record {
                Ok(Record::Whole(message)) => {
                    if message.len() > shared.config.message_bytes_max {
                        shared.stats.dropped_reassembly_invalid += 1;
                        continue;
                    }
                    shared.stats.messages_in += 1;
                    io.messages.push((self.peer.id, message.to_vec()));
                }
                Ok(Record::Fragment(fragment)) => match self.reassembly.on_fragment(now, &fragment)
                {
                    Ok(Some(message)) => {
                        shared.stats.messages_in += 1;
                        io.messages.push((self.peer.id, message));
                    }
                    Ok(None) => {}
                    Err(ReassemblyDrop::Overflow) => shared.stats.dropped_reassembly_overflow += 1,
                    Err(ReassemblyDrop::TooLarge | ReassemblyDrop::Inconsistent) => {
                        shared.stats.dropped_reassembly_invalid += 1
                    }
                },
                Err(e) => {
                    tracing::debug!(node = %shared.me, peer = %self.peer.id, error = %e, "malformed record");
                    shared.stats.dropped_malformed += 1;
                }
            }
        }
    }

    fn tick(&mut self, shared: &mut Shared, now: Time, io: &mut LinkIo) {
        shared.stats.dropped_reassembly_timeout += self.reassembly.expire(now) as u64;
        let config = &shared.config;
        let reject_after = Duration::from_millis(config.reject_after_ms);
        for slot in [&mut self.current, &mut self.previous, &mut self.next] {
            if slot
                .as_ref()
                .is_some_and(|s| now.since(s.born) >= reject_after)
            {
                if let Some(old) = slot.take() {
                    shared.indices.remove(&old.local_index);
                }
            }
        }
        let retry = Duration::from_millis(shared.config.handshake_retry_ms);
        if let Some((sent_at, attempts)) = self.handshake.as_ref().map(|h| (h.sent_at, h.attempts))
        {
            if now.since(sent_at) >= retry {
                if attempts >= shared.config.handshake_attempts_max {
                    if let Some(old) = self.handshake.take() {
                        shared.indices.remove(&old.local_index);
                    }
                    shared.stats.dropped_handshake_timeout += self.queue.len() as u64;
                    self.queue.clear();
                    tracing::warn!(node = %shared.me, peer = %self.peer.id, "handshake timed out");
                } else {
                    self.start_handshake(shared, now, attempts + 1, io);
                }
            }
            return;
        }
        let rekey_after = Duration::from_millis(shared.config.rekey_after_ms);
        let stale = self
            .current
            .as_ref()
            .is_some_and(|s| s.initiator && now.since(s.born) >= rekey_after);
        if stale {
            shared.stats.rekeys += 1;
            self.start_handshake(shared, now, 1, io);
        } else if !self.queue.is_empty() {
            self.flush(shared, now, io);
        }
    }
}

#[cfg(test)]
mod tests;
