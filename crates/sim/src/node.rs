//! One simulated node: its protocol instance, durable store, persists in flight, held sends,
//! named timers, inbox, virtual CPU and clock. The world's event loop drives it.

use std::collections::VecDeque;

use stockade_core::{Effect, MemStore, NodeId, PersistToken, Protocol, StoreOp, Time};

use crate::byzantine::{Adversary, OutgoingSend};
use crate::clock::ClockSpec;
use crate::timers::TimerTable;

/// Whether a node runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeStatus {
    /// Processing inputs.
    Up,
    /// Stopped but alive: inputs queue in its inbox and timers fire late, when it resumes.
    Paused,
    /// Down: its protocol state is gone; only what it persisted survives a restart.
    Crashed,
}

/// An input waiting for the node (paused, or its CPU busy).
pub(crate) enum Input<P: Protocol> {
    Start,
    Message { from: NodeId, message: P::Message },
    Timer { timer: P::Timer, generation: u64 },
    Persisted(PersistToken),
    Request(P::Request),
}

impl<P: Protocol> std::fmt::Debug for Input<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Start => f.write_str("start"),
            Input::Message { from, message } => write!(f, "message from {from}: {message:?}"),
            Input::Timer { timer, generation } => {
                write!(f, "timer {timer:?} (generation {generation})")
            }
            Input::Persisted(token) => write!(f, "persisted {token:?}"),
            Input::Request(request) => write!(f, "request {request:?}"),
        }
    }
}

impl<P: Protocol> Input<P> {
    /// Kind code for the event digest.
    pub(crate) fn is_message(&self) -> bool {
        matches!(self, Input::Message { .. })
    }
}

/// Field order is by heat (`repr(C)` keeps it): every input touches the first group, so on a
/// 100,000-node run one node costs two or three cache misses, not five.
#[repr(C)]
pub(crate) struct Node<P: Protocol> {
    pub status: NodeStatus,
    pub wake_scheduled: bool,
    /// Bumped at each crash, so events addressed to an earlier life are recognised and ignored.
    pub incarnation: u32,
    /// True time until which the virtual CPU is busy with the last handler's work.
    pub cpu_busy_until: Time,
    pub clock: ClockSpec,
    /// The latest local time the protocol saw: keeps its time monotonic if the drift changes.
    pub last_local: Time,
    /// The persist-token counter, kept across restarts so tokens stay unique for the run.
    pub next_token: u64,
    pub inbox: VecDeque<Input<P>>,
    pub adversary: Option<Box<dyn Adversary<P>>>,
    /// Armed timers and the generation of their current deadline.
    pub timers: TimerTable<P::Timer>,
    pub timer_generation: u64,
    pub protocol: Option<P>,
    /// What became durable.
    pub store: MemStore,
    /// Allocated on first use: most nodes of a big traffic run never persist or charge CPU.
    pub cold: Option<Box<NodeCold<P>>>,
}

/// The parts of a node only persists, held sends and CPU charges touch.
pub(crate) struct NodeCold<P: Protocol> {
    /// Effects of the last handler, released when its CPU work is done.
    pub pending_effects: Vec<Effect<P>>,
    /// Persist batches started, not yet durable, in completion order.
    pub persists_in_flight: VecDeque<(PersistToken, Vec<StoreOp>)>,
    /// When the last started persist completes: batches complete in the order they started.
    pub persist_done_last: Time,
    /// Sends waiting for a persist to complete.
    pub held_sends: Vec<(PersistToken, OutgoingSend<P::Message>)>,
}

impl<P: Protocol> Default for NodeCold<P> {
    fn default() -> Self {
        NodeCold {
            pending_effects: Vec::new(),
            persists_in_flight: VecDeque::new(),
            persist_done_last: Time::ZERO,
            held_sends: Vec::new(),
        }
    }
}

impl<P: Protocol> Node<P> {
    pub fn new(protocol: P) -> Self {
        Node {
            protocol: Some(protocol),
            status: NodeStatus::Up,
            incarnation: 0,
            next_token: 0,
            store: MemStore::new(),
            cold: None,
            timers: TimerTable::default(),
            timer_generation: 0,
            inbox: VecDeque::new(),
            cpu_busy_until: Time::ZERO,
            wake_scheduled: false,
            clock: ClockSpec::EXACT,
            last_local: Time::ZERO,
            adversary: None,
        }
    }

    /// The time the protocol reads at true time `now`.
    #[inline]
    pub fn local_now(&mut self, now: Time) -> Time {
        let local = self.clock.local(now).max(self.last_local);
        self.last_local = local;
        local
    }

    /// Lose everything volatile; returns `(persists lost, held sends lost)`.
    pub fn crash(&mut self, now: Time) -> (u64, u64) {
        let lost = self.cold.take().map_or((0, 0), |c| {
            (c.persists_in_flight.len() as u64, c.held_sends.len() as u64)
        });
        self.protocol = None;
        self.status = NodeStatus::Crashed;
        self.incarnation = self.incarnation.wrapping_add(1);
        self.timers.clear();
        self.inbox.clear();
        self.wake_scheduled = false;
        self.cpu_busy_until = now;
        lost
    }

    /// The cold part, allocated on first use.
    pub fn cold_mut(&mut self) -> &mut NodeCold<P> {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Whether a finished handler's effects wait for its CPU work.
    pub fn has_pending_effects(&self) -> bool {
        self.cold
            .as_ref()
            .is_some_and(|c| !c.pending_effects.is_empty())
    }

    /// Whether persist batch `token` is still on its way to durability.
    pub fn persist_in_flight(&self, token: PersistToken) -> bool {
        self.cold
            .as_ref()
            .is_some_and(|c| c.persists_in_flight.iter().any(|(t, _)| *t == token))
    }

    /// Whether the node can take an input right now (up, CPU idle, nothing queued ahead).
    #[inline]
    pub fn ready(&self, now: Time) -> bool {
        self.status == NodeStatus::Up
            && self.cpu_busy_until <= now
            && self.inbox.is_empty()
            && !self.wake_scheduled
    }
}

/// A read-only look at a node for checkers and scenario code.
pub struct NodeView<'a, P: Protocol> {
    pub(crate) id: NodeId,
    pub(crate) node: &'a Node<P>,
}

impl<'a, P: Protocol> NodeView<'a, P> {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// Up, paused or crashed.
    pub fn status(&self) -> NodeStatus {
        self.node.status
    }
    /// The protocol state (`None` while crashed).
    pub fn protocol(&self) -> Option<&'a P> {
        self.node.protocol.as_ref()
    }
    /// What the node has made durable.
    pub fn store(&self) -> &'a MemStore {
        &self.node.store
    }
    /// Whether an adversary controls the node.
    pub fn is_byzantine(&self) -> bool {
        self.node.adversary.is_some()
    }
    /// Inputs waiting in the inbox.
    pub fn inbox_len(&self) -> usize {
        self.node.inbox.len()
    }
}
