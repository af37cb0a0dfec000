//! Scribe: topic-based multicast and anycast over Pastry (paper 002, "Coordination: Cooperative
//! group communication", "Scribe multicast", "Scribe: Anycast").
//!
//! - A topic's root is the node numerically closest to the topic id.
//! - Join: a SUBSCRIBE is routed toward the topic id; every node on the route adopts the previous
//!   hop as a child, and the route stops at the first node already in the tree. The tree is the
//!   union of the reverse routes.
//! - Multicast: data goes to the root (routed), then down the tree to every member.
//! - Anycast: routed toward the topic id until the first tree node, then a depth-first search of
//!   the tree delivers to one member that satisfies the predicate (a label prefix; paper 002: "can
//!   add predicate during DFS"). The requester numbers each anycast and its one answer (a member
//!   took it, or none matched) carries the number back, so concurrent anycasts are told apart.
//! - Repair: parents send children heartbeats; a child that misses them, or whose parent Pastry
//!   declares failed, subscribes again, and Pastry routes the new SUBSCRIBE around the failure.
//!
//! [`Scribe`] is a parent protocol that owns a [`Pastry`] child.

pub mod messages;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use stockade_core::wire::{DecodeLimits, Wire};
use stockade_core::{Context, InvariantViolation, NodeId, Protocol, Time};
use thiserror::Error;

pub use messages::{AnycastSearch, ScribeDirect, ScribeMessage, ScribeRouted};

use crate::certificate::NodeCertificate;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::{
    ForwardVerdict, KbrApplication, Pastry, PastryConfig, PastryOutput, PastryRequest, PastryTimer,
    Phase,
};
use messages::{ANYCAST_VISITED_MAX, HEARTBEAT_TOPICS_MAX, LABEL_BYTES_MAX, SCRIBE_DATA_BYTES_MAX};

/// Tunables of a Scribe node.
#[derive(Clone, Debug)]
pub struct ScribeConfig {
    /// The overlay's tunables.
    pub pastry: PastryConfig,
    /// Period of heartbeats from parents to children, ms.
    pub heartbeat_interval_ms: u64,
    /// A child that has not heard its parent for this long subscribes again, ms.
    pub parent_timeout_ms: u64,
    /// Topics this node takes part in (as member or forwarder).
    pub topics_max: usize,
    /// Children per topic; a full node stops adopting, and the refused child retries later.
    pub children_max: usize,
}

impl Default for ScribeConfig {
    fn default() -> Self {
        ScribeConfig {
            pastry: PastryConfig::default(),
            heartbeat_interval_ms: 1_000,
            parent_timeout_ms: 3_500,
            topics_max: HEARTBEAT_TOPICS_MAX,
            children_max: 64,
        }
    }
}

/// This node's part in one topic's tree.
#[derive(Clone, Debug, Default)]
pub struct TopicState {
    /// The local application subscribed.
    pub member: bool,
    /// The label anycast predicates match.
    pub label: Vec<u8>,
    /// Children in the tree.
    pub children: Vec<NodeHandle>,
    /// Parent in the tree (`None` at the root, or while re-subscribing).
    pub parent: Option<NodeHandle>,
    /// When the parent was last heard (`None`: not yet since it was set).
    parent_heard: Option<Time>,
    /// This node is the topic's root.
    pub root: bool,
}

/// The forward upcall of a Scribe node: it builds the tree as SUBSCRIBEs pass through.
pub struct ScribeHook {
    me: NodeHandle,
    topics: BTreeMap<OverlayId, TopicState>,
    topics_max: usize,
    children_max: usize,
}

impl ScribeHook {
    /// Adopt `child` for `topic`; false when the node is full.
    fn adopt(&mut self, topic: OverlayId, child: NodeHandle) -> bool {
        if !self.topics.contains_key(&topic) && self.topics.len() >= self.topics_max {
            return false;
        }
        let state = self.topics.entry(topic).or_default();
        if state.children.iter().any(|c| c.id == child.id) {
            return true;
        }
        if state.children.len() >= self.children_max {
            return false;
        }
        state.children.push(child);
        true
    }
}

impl KbrApplication for ScribeHook {
    fn forward(
        &mut self,
        _key: OverlayId,
        payload: &mut Vec<u8>,
        next: NodeHandle,
    ) -> ForwardVerdict {
        match ScribeRouted::from_bytes(payload, DecodeLimits::MESSAGE) {
            Ok(ScribeRouted::Subscribe { topic, child }) if child.id == self.me.id => {
                // Our own subscription leaves through `next`: it becomes our parent.
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.parent = Some(next);
                    state.parent_heard = None;
                    state.root = false;
                }
                ForwardVerdict::Continue
            }
            Ok(ScribeRouted::Subscribe { topic, child }) => {
                let already_in_tree = self.topics.contains_key(&topic);
                if !self.adopt(topic, child) {
                    // Full: drop the request; the child times out and tries again.
                    return ForwardVerdict::Stop;
                }
                if already_in_tree {
                    return ForwardVerdict::Stop;
                }
                // Newly a forwarder: subscribe ourselves further up (paper 002, Scribe join).
                if let Some(state) = self.topics.get_mut(&topic) {
                    state.parent = Some(next);
                    state.parent_heard = None;
                }
                *payload = ScribeRouted::Subscribe {
                    topic,
                    child: self.me,
                }
                .to_bytes();
                ForwardVerdict::Continue
            }
            Ok(ScribeRouted::Anycast { topic, .. }) if self.topics.contains_key(&topic) => {
                ForwardVerdict::Stop
            }
            _ => ForwardVerdict::Continue,
        }
    }
}

/// Scribe timers.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ScribeTimer {
    /// The overlay's timers.
    Overlay(PastryTimer),
    /// Heartbeats to children and parent checks.
    Heartbeat,
}

/// What the local application asks of Scribe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScribeRequest {
    /// Subscribe to `topic`, advertising `label` to anycast predicates.
    Join {
        /// The topic.
        topic: OverlayId,
        /// The label.
        label: Vec<u8>,
    },
    /// Unsubscribe from `topic`.
    Leave {
        /// The topic.
        topic: OverlayId,
    },
    /// Send `data` to every member of `topic`.
    Multicast {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// Send `data` to one member of `topic` whose label starts with `label_prefix`.
    Anycast {
        /// The caller's number for this anycast; its one answer (`AnycastAnswered` or
        /// `AnycastFailed`) carries it back.
        request: u64,
        /// The topic.
        topic: OverlayId,
        /// The predicate.
        label_prefix: Vec<u8>,
        /// The data.
        data: Vec<u8>,
    },
    /// Pass a request to the overlay.
    Overlay(PastryRequest),
}

/// Why a Scribe request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ScribeError {
    /// Data over the limit.
    #[error(
        "multicast or anycast data of {bytes} bytes exceeds the {SCRIBE_DATA_BYTES_MAX}-byte limit"
    )]
    DataTooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Label or predicate over the limit.
    #[error("label of {bytes} bytes exceeds the {LABEL_BYTES_MAX}-byte limit")]
    LabelTooLarge {
        /// Its size.
        bytes: usize,
    },
    /// This node takes part in too many topics.
    #[error("this node already takes part in {0} topics, its limit; leave one first")]
    TooManyTopics(usize),
    /// Not part of the overlay.
    #[error("this node has not joined the overlay yet")]
    NotJoined,
}

/// What Scribe tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScribeOutput {
    /// Multicast data for a topic this node is a member of.
    Received {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// An anycast chose this node.
    AnycastReceived {
        /// The topic.
        topic: OverlayId,
        /// Who sent it.
        requester: NodeHandle,
        /// The data.
        data: Vec<u8>,
    },
    /// Our anycast reached member `by`.
    AnycastAnswered {
        /// The caller's number for the anycast.
        request: u64,
        /// The topic.
        topic: OverlayId,
        /// The member.
        by: NodeHandle,
    },
    /// Our anycast found no matching member.
    AnycastFailed {
        /// The caller's number for the anycast.
        request: u64,
        /// The topic.
        topic: OverlayId,
    },
    /// A request was refused.
    Refused(ScribeError),
    /// This node lost its parent for `topic` and subscribed again (tree repair).
    Resubscribed {
        /// The topic.
        topic: OverlayId,
    },
    /// An overlay event.
    Overlay(PastryOutput),
}

/// One Scribe node: a Pastry node plus its part in topic trees.
///
/// # How to drive it
/// Like [`Pastry`]: build with [`Scribe::new`], call `on_start`, then feed messages, timers and
/// [`ScribeRequest`]s; it emits sends, timers and [`ScribeOutput`]s and never persists.
pub struct Scribe {
    config: ScribeConfig,
    pastry: Pastry<ScribeHook>,
}

impl Scribe {
    /// A Scribe node with handle `me`, joining through `bootstrap` (none for the first node).
    pub fn new(config: ScribeConfig, me: NodeHandle, bootstrap: Option<NodeId>) -> Scribe {
        let hook = ScribeHook {
            me,
            topics: BTreeMap::new(),
            topics_max: config.topics_max,
            children_max: config.children_max,
        };
        let pastry = Pastry::with_application(config.pastry.clone(), me, bootstrap, hook);
        Scribe { config, pastry }
    }

    /// This node's certificate, sent in every probe answer (needed when the overlay certifies ids).
    pub fn with_certificate(mut self, certificate: NodeCertificate) -> Scribe {
        self.pastry = self.pastry.with_certificate(certificate);
        self
    }

    /// Topics the local application subscribed to.
    pub fn subscribed_topics(&self) -> usize {
        self.pastry
            .application()
            .topics
            .values()
            .filter(|t| t.member)
            .count()
    }

    /// The overlay node underneath.
    pub fn pastry(&self) -> &Pastry<ScribeHook> {
        &self.pastry
    }

    /// This node's part in `topic`'s tree.
    pub fn topic(&self, topic: OverlayId) -> Option<&TopicState> {
        self.pastry.application().topics.get(&topic)
    }

    fn topics_mut(&mut self) -> &mut BTreeMap<OverlayId, TopicState> {
        &mut self.pastry.application_mut().topics
    }

    fn me(&self) -> NodeHandle {
        self.pastry.handle()
    }

    fn overlay(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut Pastry<ScribeHook>, &mut Context<'_, Pastry<ScribeHook>>),
    ) {
        let pastry = &mut self.pastry;
        let outputs = cx.child(ScribeMessage::Overlay, ScribeTimer::Overlay, |c| {
            run(pastry, c)
        });
        for output in outputs {
            match output {
                PastryOutput::Delivered { payload, .. } => {
                    if let Ok(routed) = ScribeRouted::from_bytes(&payload, DecodeLimits::MESSAGE) {
                        self.on_routed_at_root(cx, routed);
                    }
                }
                PastryOutput::Consumed { payload, .. } => {
                    if let Ok(ScribeRouted::Anycast {
                        request,
                        topic,
                        requester,
                        label_prefix,
                        data,
                    }) = ScribeRouted::from_bytes(&payload, DecodeLimits::MESSAGE)
                    {
                        self.start_anycast(cx, request, topic, requester, label_prefix, data);
                    }
                }
                PastryOutput::PeerFailed { id, was_leaf } => {
                    self.on_peer_failed(cx, id);
                    cx.deliver(ScribeOutput::Overlay(PastryOutput::PeerFailed {
                        id,
                        was_leaf,
                    }));
                }
                other => cx.deliver(ScribeOutput::Overlay(other)),
            }
        }
    }

    fn route(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId, routed: ScribeRouted) {
        let payload = routed.to_bytes();
        self.overlay(cx, |p, c| {
            p.on_request(
                c,
                PastryRequest::Route {
                    key: topic,
                    payload,
                },
            )
        });
    }

    fn subscribe(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId) {
        let child = self.me();
        self.route(cx, topic, ScribeRouted::Subscribe { topic, child });
    }

    fn on_join(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId, label: Vec<u8>) {
        if label.len() > LABEL_BYTES_MAX {
            return cx.deliver(ScribeOutput::Refused(ScribeError::LabelTooLarge {
                bytes: label.len(),
            }));
        }
        let count = self.pastry.application().topics.len();
        if !self.pastry.application().topics.contains_key(&topic) && count >= self.config.topics_max
        {
            return cx.deliver(ScribeOutput::Refused(ScribeError::TooManyTopics(count)));
        }
        let state = self.topics_mut().entry(topic).or_default();
        state.member = true;
        state.label = label;
        let in_tree = state.parent.is_some() || state.root;
        if !in_tree {
            self.subscribe(cx, topic);
        }
    }

    /// Leave the tree for `topic` if nothing here needs it any more.
    fn prune(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId) {
        let Some(state) = self.topic(topic) else {
            return;
        };
        if state.member || !state.children.is_empty() {
            return;
        }
        if let Some(parent) = state.parent {
            cx.send(
                parent.addr,
                ScribeMessage::Tree(ScribeDirect::Unsubscribe { topic }),
            );
        }
        self.topics_mut().remove(&topic);
    }

    fn on_routed_at_root(&mut self, cx: &mut Context<'_, Self>, routed: ScribeRouted) {
        match routed {
            ScribeRouted::Subscribe { topic, child } => {
                let me = self.me();
                let hook = self.pastry.application_mut();
                if child.id != me.id && !hook.adopt(topic, child) {
                    return;
                }
                if let Some(state) = hook.topics.get_mut(&topic) {
                    state.root = true;
                    state.parent = None;
                }
            }
            ScribeRouted::Publish { topic, data } => {
                if self.topic(topic).is_some() {
                    self.disseminate(cx, topic, data);
                }
            }
            ScribeRouted::Anycast {
                request,
                topic,
                requester,
                label_prefix,
                data,
            } => self.start_anycast(cx, request, topic, requester, label_prefix, data),
        }
    }

    /// Deliver here if a member, and pass down to every child.
    fn disseminate(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId, data: Vec<u8>) {
        let Some(state) = self.topic(topic) else {
            return;
        };
        let children = state.children.clone();
        if state.member {
            cx.deliver(ScribeOutput::Received {
                topic,
                data: data.clone(),
            });
        }
        for child in children {
            cx.send(
                child.addr,
                ScribeMessage::Tree(ScribeDirect::Multicast {
                    topic,
                    data: data.clone(),
                }),
            );
        }
    }

    /// Send `message` to `to`, or handle it here when `to` is this node.
    fn tell(&mut self, cx: &mut Context<'_, Self>, to: NodeHandle, message: ScribeDirect) {
        if to.addr == self.me().addr {
            self.on_tree_message(cx, to.addr, message);
        } else {
            cx.send(to.addr, ScribeMessage::Tree(message));
        }
    }

    /// Begin an anycast's depth-first search here, or report failure when this node is not in
    /// the topic's tree (the group is empty).
    fn start_anycast(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: u64,
        topic: OverlayId,
        requester: NodeHandle,
        label_prefix: Vec<u8>,
        data: Vec<u8>,
    ) {
        if self.topic(topic).is_none() {
            return self.tell(
                cx,
                requester,
                ScribeDirect::AnycastFailed { request, topic },
            );
        }
        let search = AnycastSearch {
            request,
            topic,
            requester,
            label_prefix,
            data,
            visited: Vec::new(),
            trail: Vec::new(),
        };
        self.anycast_step(cx, search);
    }

    /// One step of an anycast's depth-first search, at this node.
    fn anycast_step(&mut self, cx: &mut Context<'_, Self>, mut search: AnycastSearch) {
        let me = self.me();
        let (request, topic) = (search.request, search.topic);
        let (matches, neighbours) = match self.topic(topic) {
            Some(state) => {
                let matches = state.member && state.label.starts_with(&search.label_prefix);
                let neighbours: Vec<NodeHandle> =
                    state.children.iter().copied().chain(state.parent).collect();
                (matches, neighbours)
            }
            None => (false, Vec::new()),
        };
        if !search.visited.contains(&me.id) {
            search.visited.push(me.id);
        }
        if matches {
            cx.deliver(ScribeOutput::AnycastReceived {
                topic,
                requester: search.requester,
                data: search.data,
            });
            return self.tell(
                cx,
                search.requester,
                ScribeDirect::AnycastAnswered {
                    request,
                    topic,
                    by: me,
                },
            );
        }
        let next = neighbours
            .into_iter()
            .find(|n| !search.visited.contains(&n.id));
        let next = match next {
            Some(n)
                if search.visited.len() < ANYCAST_VISITED_MAX
                    && search.trail.len() < ANYCAST_VISITED_MAX =>
            {
                search.trail.push(me);
                Some(n)
            }
            _ => search.trail.pop(),
        };
        let Some(next) = next else {
            return self.tell(
                cx,
                search.requester,
                ScribeDirect::AnycastFailed { request, topic },
            );
        };
        let visit = ScribeDirect::AnycastVisit(search);
        self.tell(cx, next, visit);
    }

    fn on_tree_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: ScribeDirect) {
        match message {
            ScribeDirect::Unsubscribe { topic } => {
                if let Some(state) = self.topics_mut().get_mut(&topic) {
                    state.children.retain(|c| c.addr != from);
                }
                self.prune(cx, topic);
            }
            ScribeDirect::Multicast { topic, data } => {
                // Only the current parent feeds us: duplicates after a repair, or data injected by
                // a stranger, stop here.
                if self
                    .topic(topic)
                    .and_then(|s| s.parent)
                    .is_some_and(|p| p.addr == from)
                {
                    self.disseminate(cx, topic, data);
                }
            }
            ScribeDirect::Heartbeat { topics } => {
                let now = cx.now();
                for topic in topics {
                    let ours = self
                        .topics_mut()
                        .get_mut(&topic)
                        .filter(|s| s.parent.is_some_and(|p| p.addr == from));
                    match ours {
                        Some(state) => state.parent_heard = Some(now),
                        // The sender thinks we are its child, but we moved on: tell it.
                        None => cx.send(
                            from,
                            ScribeMessage::Tree(ScribeDirect::Unsubscribe { topic }),
                        ),
                    }
                }
            }
            ScribeDirect::AnycastVisit(search) => self.anycast_step(cx, search),
            ScribeDirect::AnycastAnswered { request, topic, by } => {
                cx.deliver(ScribeOutput::AnycastAnswered { request, topic, by })
            }
            ScribeDirect::AnycastFailed { request, topic } => {
                cx.deliver(ScribeOutput::AnycastFailed { request, topic })
            }
        }
    }

    /// Heartbeats to children; re-subscription where the parent went quiet.
    fn on_heartbeat(&mut self, cx: &mut Context<'_, Self>) {
        cx.set_timer(
            ScribeTimer::Heartbeat,
            Duration::from_millis(self.config.heartbeat_interval_ms),
        );
        if self.pastry.phase() != Phase::Joined {
            return;
        }
        let now = cx.now();
        let timeout = Duration::from_millis(self.config.parent_timeout_ms);
        let mut per_child: BTreeMap<NodeId, Vec<OverlayId>> = BTreeMap::new();
        let mut orphaned = Vec::new();
        for (topic, state) in self.topics_mut().iter_mut() {
            for child in &state.children {
                per_child.entry(child.addr).or_default().push(*topic);
            }
            if state.parent.is_some() {
                match state.parent_heard {
                    None => state.parent_heard = Some(now),
                    Some(heard) if now - heard >= timeout => orphaned.push(*topic),
                    Some(_) => {}
                }
            }
        }
        for (child, topics) in per_child {
            cx.send(
                child,
                ScribeMessage::Tree(ScribeDirect::Heartbeat { topics }),
            );
        }
        for topic in orphaned {
            self.resubscribe(cx, topic);
        }
    }

    fn resubscribe(&mut self, cx: &mut Context<'_, Self>, topic: OverlayId) {
        if let Some(state) = self.topics_mut().get_mut(&topic) {
            state.parent = None;
            state.parent_heard = None;
        }
        cx.deliver(ScribeOutput::Resubscribed { topic });
        self.subscribe(cx, topic);
    }

    /// Pastry found `id` failed: repair every tree it was our parent in, drop it as a child.
    fn on_peer_failed(&mut self, cx: &mut Context<'_, Self>, id: OverlayId) {
        let mut orphaned = Vec::new();
        let mut emptied = Vec::new();
        for (topic, state) in self.topics_mut().iter_mut() {
            if state.parent.is_some_and(|p| p.id == id) {
                orphaned.push(*topic);
            }
            let before = state.children.len();
            state.children.retain(|c| c.id != id);
            if state.children.len() != before {
                emptied.push(*topic);
            }
        }
        for topic in orphaned {
            self.resubscribe(cx, topic);
        }
        for topic in emptied {
            self.prune(cx, topic);
        }
    }

    fn check_data(data: &[u8]) -> Result<(), ScribeError> {
        if data.len() > SCRIBE_DATA_BYTES_MAX {
            return Err(ScribeError::DataTooLarge { bytes: data.len() });
        }
        Ok(())
    }
}

impl Protocol for Scribe {
    type Message = ScribeMessage;
    type Timer = ScribeTimer;
    type Request = ScribeRequest;
    type Output = ScribeOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.overlay(cx, |p, c| p.on_start(c));
        cx.set_timer(
            ScribeTimer::Heartbeat,
            Duration::from_millis(self.config.heartbeat_interval_ms),
        );
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: ScribeMessage) {
        match message {
            ScribeMessage::Overlay(m) => self.overlay(cx, |p, c| p.on_message(c, from, m)),
            ScribeMessage::Tree(m) => {
                if self.pastry.phase() == Phase::Joined {
                    self.on_tree_message(cx, from, m);
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: ScribeTimer) {
        match timer {
            ScribeTimer::Overlay(t) => self.overlay(cx, |p, c| p.on_timer(c, t)),
            ScribeTimer::Heartbeat => self.on_heartbeat(cx),
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: ScribeRequest) {
        if !matches!(request, ScribeRequest::Overlay(_)) && self.pastry.phase() != Phase::Joined {
            return cx.deliver(ScribeOutput::Refused(ScribeError::NotJoined));
        }
        match request {
            ScribeRequest::Join { topic, label } => self.on_join(cx, topic, label),
            ScribeRequest::Leave { topic } => {
                if let Some(state) = self.topics_mut().get_mut(&topic) {
                    state.member = false;
                }
                self.prune(cx, topic);
            }
            ScribeRequest::Multicast { topic, data } => match Scribe::check_data(&data) {
                Ok(()) => self.route(cx, topic, ScribeRouted::Publish { topic, data }),
                Err(e) => cx.deliver(ScribeOutput::Refused(e)),
            },
            ScribeRequest::Anycast {
                request,
                topic,
                label_prefix,
                data,
            } => {
                if let Err(e) = Scribe::check_data(&data) {
                    return cx.deliver(ScribeOutput::Refused(e));
                }
                if label_prefix.len() > LABEL_BYTES_MAX {
                    return cx.deliver(ScribeOutput::Refused(ScribeError::LabelTooLarge {
                        bytes: label_prefix.len(),
                    }));
                }
                let requester = self.me();
                if self.topic(topic).is_some() {
                    self.start_anycast(cx, request, topic, requester, label_prefix, data);
                } else {
                    self.route(
                        cx,
                        topic,
                        ScribeRouted::Anycast {
                            request,
                            topic,
                            requester,
                            label_prefix,
                            data,
                        },
                    );
                }
            }
            ScribeRequest::Overlay(r) => self.overlay(cx, |p, c| p.on_request(c, r)),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.pastry.check_invariants()?;
        let topics = &self.pastry.application().topics;
        if topics.len() > self.config.topics_max {
            return Err(InvariantViolation(format!(
                "{} topics, bound {}",
                topics.len(),
                self.config.topics_max
            )));
        }
        for (topic, state) in topics {
            if state.children.len() > self.config.children_max {
                return Err(InvariantViolation(format!(
                    "topic {topic:?} has {} children",
                    state.children.len()
                )));
            }
            if state.root && state.parent.is_some() {
                return Err(InvariantViolation(format!(
                    "root of {topic:?} has a parent"
                )));
            }
        }
        Ok(())
    }
}
