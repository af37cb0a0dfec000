//! [`VotingClient`]: the client side of the replicated service, as a sans-IO protocol
//! (DESIGN.md section 7; paper 004, section 5: a client accepts a result only when f+1 servers
//! vouch for it, since at most f of them lie).
//!
//! # How it works
//! - Each command is sent as a Prime client update ([`PrimeMessage::ClientUpdate`]) to one
//!   server, with `reply_to` set to this client's node: every server that executes it sends its
//!   own signed [`PrimeMessage::Reply`] here (PRIME.md step 11).
//! - A reply counts only if its signature verifies under the signer's public key and it names
//!   the update. The first result (with its global slot) that f+1 distinct servers sent is the
//!   answer: at least one of them is correct, and correct servers agree.
//! - A server whose signed result differs from the answer lied (or diverged): it is counted in
//!   [`VotingStats::lies`] and reported as [`VotingOutput::ServerLied`], also for replies that
//!   arrive after the answer.
//! - No answer within `retry_timeout`: the same update is sent again through the next server
//!   (Prime executes an update once, whoever admitted it), at most `retries_max` times; then the
//!   command fails with [`VotingOutput::Failed`]. The lane's later commands go through the server
//!   it moved to.
//! - Each lane starts at the configured home server ([`VotingConfig::home_server`]) or, without
//!   one, lanes are spread over the servers.
//! - Concurrency comes from lanes: each lane is a Prime client of its own with one update in
//!   flight, so its sequence numbers execute in order even when retries go through different
//!   servers (Prime drops an update whose sequence number is not above the last executed one).
//!   `lanes` bounds the commands in flight; one more is refused with [`VotingOutput::Busy`].
//!
//! Reads are ordered like writes: Prime has no unordered read path yet (see the crate report),
//! so the fast path of 2f+1 matching unordered replies is not implemented.

use std::collections::BTreeMap;
use std::time::Duration;

use stockade_core::wire::Wire;
use stockade_core::{Context, DecodeLimits, InvariantViolation, NodeId, Protocol};
use stockade_replication::auth::{MessageAuth, Signed};
use stockade_replication::messages::Reply as PrimeReply;
use stockade_replication::{ClientId, ParticipantId, PrimeMessage, Update};

use crate::command::Command;
use crate::reply::Reply;

/// Default time to wait for f+1 matching replies before re-sending through another server.
pub const RETRY_TIMEOUT_DEFAULT: Duration = Duration::from_millis(500);
/// Default re-sends of one command before it fails.
pub const RETRIES_MAX_DEFAULT: u32 = 6;
/// Default commands in flight (lanes) per voting client: enough that a proxy serving a few
/// hundred closed-loop clients keeps their commands in Prime's batches instead of queued in
/// front of the lanes (a lane costs a client record on each server and one retry timer).
pub const LANES_DEFAULT: usize = 256;

/// The parameters of one voting client.
#[derive(Clone, Debug)]
pub struct VotingConfig {
    /// The servers, in participant order: `servers[i]` is Prime participant i.
    pub servers: Vec<NodeId>,
    /// Faulty servers tolerated: an answer needs f+1 matching signed replies.
    pub f: usize,
    /// The Prime client id of lane 0; lane i is `first_client + i`. Every voting client of a
    /// cluster needs its own range.
    pub first_client: u64,
    /// Must increase every time this client restarts (a restarted client's sequence numbers begin
    /// again at 1); the proxy uses its start time in milliseconds.
    pub incarnation: u64,
    /// Commands in flight at once (one per lane).
    pub lanes: usize,
    /// Wait this long for an answer before re-sending through the next server.
    pub retry_timeout: Duration,
    /// Re-sends of one command before it fails.
    pub retries_max: u32,
    /// `Some(i)`: every lane starts out sending through server i; `None`: lane j starts with
    /// server `(first_client + j) mod N`. One home server lets its pre-ordering put the
    /// client's concurrent commands into few PO-REQUESTs (PRIME.md step 2), so fewer requests,
    /// acknowledgements and signatures are spent per command; retries still move each lane on.
    pub home_server: Option<usize>,
}

impl VotingConfig {
    /// Defaults for `servers` tolerating `f` faults.
    pub fn new(servers: Vec<NodeId>, f: usize, first_client: u64, incarnation: u64) -> Self {
        VotingConfig {
            servers,
            f,
            first_client,
            incarnation,
            lanes: LANES_DEFAULT,
            retry_timeout: RETRY_TIMEOUT_DEFAULT,
            retries_max: RETRIES_MAX_DEFAULT,
            home_server: None,
        }
    }
}

/// A command to run, with the caller's tag to match the answer.
#[derive(Clone, Debug)]
pub struct VoteRequest {
    /// Returned with the answer.
    pub tag: u64,
    /// The command (not connection-local).
    pub command: Command,
}

/// Why a command failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FailReason {
    /// No f+1 matching replies after `retries_max` re-sends.
    RetriesExhausted,
}

/// What the voting client tells its application.
#[derive(Clone, PartialEq, Debug)]
pub enum VotingOutput {
    /// f+1 servers agree on this reply.
    Answer {
        /// The request's tag.
        tag: u64,
        /// The agreed reply.
        reply: Reply,
    },
    /// Every lane is busy: retry when an answer arrives.
    Busy {
        /// The request's tag.
        tag: u64,
    },
    /// The command got no agreed answer.
    Failed {
        /// The request's tag.
        tag: u64,
        /// Why.
        reason: FailReason,
    },
    /// A server signed a result that differs from the agreed one.
    ServerLied {
        /// The server.
        server: ParticipantId,
        /// The lane's Prime client.
        client: ClientId,
        /// The update's sequence number.
        seq: u64,
    },
}

/// The voting client's timers: one retry deadline per lane.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum VotingTimer {
    /// Lane `0`'s command has waited `retry_timeout`.
    Retry(usize),
}

/// Counters for metrics and tests.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct VotingStats {
    /// Commands answered.
    pub answered: u64,
    /// Commands refused because every lane was busy.
    pub busy: u64,
    /// Commands failed after `retries_max` re-sends.
    pub failed: u64,
    /// Re-sends through another server.
    pub resends: u64,
    /// Signed replies whose result differs from the agreed one.
    pub lies: u64,
    /// Replies dropped: bad signature, unknown signer, or not naming a command in flight.
    pub rejected_replies: u64,
    /// Replies with an empty result (a recovering server that skipped the slot): not votes.
    pub abstentions: u64,
}

/// A command in flight on a lane.
#[derive(Debug)]
struct InFlight {
    tag: u64,
    update: Update,
    /// Re-sends so far.
    resends: u32,
    /// The server it was last sent through.
    via: usize,
    /// Each server's vote: (global slot, result). At most one per server.
    votes: BTreeMap<ParticipantId, (u64, Vec<u8>)>,
}

/// The last answer of a lane, to judge replies that arrive after it.
#[derive(Debug)]
struct Answered {
    seq: u64,
    vote: (u64, Vec<u8>),
}

#[derive(Debug, Default)]
struct Lane {
    next_seq: u64,
    /// The server the lane's next command goes through: where its last command was last sent,
    /// so a lane that moved away from a silent server stays away.
    preferred: Option<usize>,
    in_flight: Option<InFlight>,
    last_answer: Option<Answered>,
}

/// The voting client. See the module documentation.
pub struct VotingClient {
    cfg: VotingConfig,
    auth: Box<dyn MessageAuth + Send>,
    lanes: Vec<Lane>,
    stats: VotingStats,
}

impl VotingClient {
    /// A client with `cfg`, checking server signatures with `auth` (it never signs).
    pub fn new(cfg: VotingConfig, auth: Box<dyn MessageAuth + Send>) -> VotingClient {
        let lanes = (0..cfg.lanes).map(|_| Lane::default()).collect();
        VotingClient {
            cfg,
            auth,
            lanes,
            stats: VotingStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &VotingStats {
        &self.stats
    }

    /// Commands in flight.
    pub fn in_flight(&self) -> usize {
        self.lanes.iter().filter(|l| l.in_flight.is_some()).count()
    }

    fn client_of(&self, lane: usize) -> ClientId {
        ClientId(self.cfg.first_client + lane as u64)
    }

    fn lane_of(&self, client: ClientId) -> Option<usize> {
        let lane = client.0.checked_sub(self.cfg.first_client)?;
        (lane < self.lanes.len() as u64).then_some(lane as usize)
    }

    fn send_via(&self, cx: &mut Context<'_, Self>, server: usize, update: &Update) {
        if let Some(node) = self.cfg.servers.get(server) {
            cx.send(*node, PrimeMessage::ClientUpdate(update.clone()));
        }
    }

    /// Verify a reply and return its lane, or count it as rejected.
    fn accept_reply(&mut self, reply: &Signed<PrimeReply>) -> Option<usize> {
        let known_signer = reply.signer.index() < self.cfg.servers.len();
        let lane = self
            .lane_of(reply.body.client)
            .filter(|_| reply.body.incarnation == self.cfg.incarnation);
        match lane {
            Some(lane) if known_signer && reply.verify(self.auth.as_ref()) => Some(lane),
            _ => {
                self.stats.rejected_replies += 1;
                None
            }
        }
    }

    fn record_lie(
        &mut self,
        cx: &mut Context<'_, Self>,
        server: ParticipantId,
        lane: usize,
        seq: u64,
    ) {
        self.stats.lies += 1;
        cx.deliver(VotingOutput::ServerLied {
            server,
            client: self.client_of(lane),
            seq,
        });
    }

    fn on_reply(&mut self, cx: &mut Context<'_, Self>, reply: Signed<PrimeReply>) {
        let Some(lane_index) = self.accept_reply(&reply) else {
            return;
        };
        let server = reply.signer;
        let PrimeReply {
            seq,
            global_seq,
            result,
            ..
        } = reply.body;
        if result.is_empty() {
            self.stats.abstentions += 1;
            return;
        }
        let vote = (global_seq, result);
        let lane = &mut self.lanes[lane_index];
        // A reply to an answered command: the server lied if it disagrees with the answer.
        if let Some(answered) = &lane.last_answer {
            if answered.seq == seq {
                if answered.vote != vote {
                    self.record_lie(cx, server, lane_index, seq);
                }
                return;
            }
        }
        let Some(flight) = lane.in_flight.as_mut().filter(|f| f.update.seq == seq) else {
            self.stats.rejected_replies += 1;
            return;
        };
        if let Some(earlier) = flight.votes.get(&server) {
            if *earlier != vote {
                // Two different signed results for one update from one server.
                self.record_lie(cx, server, lane_index, seq);
            }
            return;
        }
        flight.votes.insert(server, vote.clone());
        let matching = flight.votes.values().filter(|v| **v == vote).count();
        if matching < self.cfg.f + 1 {
            return;
        }
        // paper 004, section 5: f+1 matching replies include a correct server's.
        let Some(flight) = lane.in_flight.take() else {
            return;
        };
        let liars: Vec<ParticipantId> = flight
            .votes
            .iter()
            .filter(|(_, v)| **v != vote)
            .map(|(p, _)| *p)
            .collect();
        lane.last_answer = Some(Answered {
            seq,
            vote: vote.clone(),
        });
        cx.cancel_timer(VotingTimer::Retry(lane_index));
        for liar in liars {
            self.record_lie(cx, liar, lane_index, seq);
        }
        self.stats.answered += 1;
        let reply = Reply::from_bytes(&vote.1, DecodeLimits::MESSAGE)
            .unwrap_or_else(|_| Reply::Error("ERR servers agreed on an undecodable reply".into()));
        cx.deliver(VotingOutput::Answer {
            tag: flight.tag,
            reply,
        });
    }

    fn on_retry(&mut self, cx: &mut Context<'_, Self>, lane_index: usize) {
        let servers = self.cfg.servers.len().max(1);
        let retries_max = self.cfg.retries_max;
        let Some(lane) = self.lanes.get_mut(lane_index) else {
            return;
        };
        let Some(flight) = lane.in_flight.as_mut() else {
            return;
        };
        if flight.resends >= retries_max {
            let tag = flight.tag;
            lane.in_flight = None;
            self.stats.failed += 1;
            cx.deliver(VotingOutput::Failed {
                tag,
                reason: FailReason::RetriesExhausted,
            });
            return;
        }
        flight.resends += 1;
        flight.via = (flight.via + 1) % servers;
        let (via, update) = (flight.via, flight.update.clone());
        lane.preferred = Some(via);
        self.stats.resends += 1;
        self.send_via(cx, via, &update);
        cx.set_timer(VotingTimer::Retry(lane_index), self.cfg.retry_timeout);
    }
}

impl Protocol for VotingClient {
    type Message = PrimeMessage;
    type Timer = VotingTimer;
    type Request = VoteRequest;
    type Output = VotingOutput;

    fn on_start(&mut self, _cx: &mut Context<'_, Self>) {}

    fn on_message(&mut self, cx: &mut Context<'_, Self>, _from: NodeId, message: PrimeMessage) {
        // The signature, not the transport sender, says which server vouches for a reply.
        match message {
            PrimeMessage::Reply(reply) => self.on_reply(cx, reply),
            _ => self.stats.rejected_replies += 1,
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: VotingTimer) {
        let VotingTimer::Retry(lane) = timer;
        self.on_retry(cx, lane);
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: VoteRequest) {
        let Some(lane_index) = self.lanes.iter().position(|l| l.in_flight.is_none()) else {
            self.stats.busy += 1;
            cx.deliver(VotingOutput::Busy { tag: request.tag });
            return;
        };
        let client = self.client_of(lane_index);
        let servers = self.cfg.servers.len().max(1);
        let lane = &mut self.lanes[lane_index];
        lane.next_seq += 1;
        let update = Update {
            client,
            incarnation: self.cfg.incarnation,
            seq: lane.next_seq,
            reply_to: Some(cx.me()),
            op: request.command.to_bytes(),
        };
        // Start at the home server, or spread lanes over the servers; retries move on from there.
        let start = match self.cfg.home_server {
            Some(home) => home % servers,
            None => (client.0 % servers as u64) as usize,
        };
        let via = *lane.preferred.get_or_insert(start);
        lane.in_flight = Some(InFlight {
            tag: request.tag,
            update: update.clone(),
            resends: 0,
            via,
            votes: BTreeMap::new(),
        });
        self.send_via(cx, via, &update);
        cx.set_timer(VotingTimer::Retry(lane_index), self.cfg.retry_timeout);
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(flight) = &lane.in_flight {
                if flight.votes.len() > self.cfg.servers.len() {
                    return Err(InvariantViolation(format!(
                        "lane {i} holds {} votes from {} servers",
                        flight.votes.len(),
                        self.cfg.servers.len()
                    )));
                }
                if flight.resends > self.cfg.retries_max {
                    return Err(InvariantViolation(format!(
                        "lane {i} re-sent {} times, over retries_max",
                        flight.resends
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
