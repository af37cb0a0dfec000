//! The overlay service a real daemon runs (`stockade overlay run`): a PAST-style DHT and Scribe
//! on one node, behind one request/output interface that carries the caller's tickets, plus a
//! status request (the daemon cannot read its protocol's state otherwise: the runtime's task owns
//! it).
//!
//! The DHT ([`Past`]) and Scribe ([`Scribe`]) each own their Pastry child, so a service node takes
//! part in two Pastry overlays with the same node id and the same transport address: every
//! message is tagged with the overlay it belongs to ([`ServiceMessage`]). Both join through the
//! same bootstrap node (paper 002, "Pastry: Node addition"), so both overlays hold the same
//! members; the cost is a second set of keep-alives.
//!
//! Anycasts ([`anycast`]) get a deadline here: Scribe answers each one once, unless a tree node
//! on the search's path fails, and the daemon's caller must not wait for ever.

pub mod anycast;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{Context, InvariantViolation, NodeId, Protocol};

use crate::certificate::NodeCertificate;
use crate::dht::StoredObject;
use crate::dht::{Past, PastConfig, PastMessage, PastOutput, PastRequest, PastTimer, PutError};
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::Phase;
use crate::scribe::{
    Scribe, ScribeConfig, ScribeError, ScribeMessage, ScribeOutput, ScribeRequest, ScribeTimer,
};
use anycast::PendingAnycasts;
pub use anycast::{AnycastError, AnycastOutcome};

/// Tunables of a service node: the DHT's and Scribe's (each with its Pastry tunables), and the
/// service's own for anycasts.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The DHT.
    pub dht: PastConfig,
    /// Scribe.
    pub multicast: ScribeConfig,
    /// An anycast without an answer by then is reported as timed out, ms.
    pub anycast_timeout_ms: u64,
    /// Anycasts awaiting answers at once; more are refused as busy.
    pub anycasts_pending_max: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            dht: PastConfig::default(),
            multicast: ScribeConfig::default(),
            anycast_timeout_ms: 10_000,
            anycasts_pending_max: 256,
        }
    }
}

impl ServiceConfig {
    /// Both overlays check peers' certificates against `authority` (paper 002, "Secure nodeId
    /// assignment").
    pub fn with_certificate_authority(mut self, authority: [u8; 32]) -> ServiceConfig {
        self.dht.pastry.certificate_authority = Some(authority);
        self.multicast.pastry.certificate_authority = Some(authority);
        self
    }
}

/// Everything a service node sends: traffic of its DHT overlay or of its Scribe overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceMessage {
    /// The DHT and its Pastry overlay.
    Dht(PastMessage),
    /// Scribe and its Pastry overlay.
    Multicast(ScribeMessage),
}

impl Wire for ServiceMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ServiceMessage::Dht(m) => {
                out.push(0);
                m.encode(out);
            }
            ServiceMessage::Multicast(m) => {
                out.push(1);
                m.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ServiceMessage::Dht(PastMessage::decode(r)?),
            1 => ServiceMessage::Multicast(ScribeMessage::decode(r)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ServiceMessage",
                    tag: u64::from(tag),
                })
            }
        })
    }
}

/// A service node's timers.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ServiceTimer {
    /// The DHT's.
    Dht(PastTimer),
    /// Scribe's.
    Multicast(ScribeTimer),
    /// The deadline of the anycast with this Scribe request number.
    AnycastDeadline(u64),
}

/// What the daemon asks of its node. `ticket` is the caller's number for the request; the one
/// output answering it carries it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceRequest {
    /// Store an object in the DHT.
    Put {
        /// The caller's ticket.
        ticket: u64,
        /// The object (self-certifying).
        object: StoredObject,
    },
    /// Fetch the object under a key.
    Get {
        /// The caller's ticket.
        ticket: u64,
        /// The key.
        key: OverlayId,
    },
    /// Multicast `data` to every subscriber of `topic`.
    Publish {
        /// The caller's ticket.
        ticket: u64,
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// Join `topic`'s tree: its multicasts become [`ServiceOutput::Received`].
    Subscribe {
        /// The caller's ticket.
        ticket: u64,
        /// The topic.
        topic: OverlayId,
    },
    /// Send `data` to one member of `topic`: any member accepts (see [`anycast`]).
    Anycast {
        /// The caller's ticket.
        ticket: u64,
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// Leave `topic`'s tree.
    Unsubscribe {
        /// The topic.
        topic: OverlayId,
    },
    /// Report the node's state.
    Status {
        /// The caller's ticket.
        ticket: u64,
    },
}

/// How a put ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// `replicas` nodes acknowledged storing it (`complete` when all k did).
    Stored {
        /// Replicas acknowledged.
        replicas: usize,
        /// Whether k replicas acknowledged.
        complete: bool,
    },
    /// It failed.
    Failed(PutError),
}

/// A snapshot of one service node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The node's handle.
    pub me: NodeHandle,
    /// Where the DHT's overlay node is in its life.
    pub dht_phase: Phase,
    /// Where Scribe's overlay node is in its life.
    pub multicast_phase: Phase,
    /// Leaf-set members of the DHT's overlay node.
    pub dht_leaf_set_len: usize,
    /// Leaf-set members of Scribe's overlay node.
    pub multicast_leaf_set_len: usize,
    /// The DHT overlay's leaf-set members.
    pub dht_leaf_set: Vec<OverlayId>,
    /// Scribe overlay's leaf-set members.
    pub multicast_leaf_set: Vec<OverlayId>,
    /// The leaf-set size L both are configured with.
    pub leaf_set_size: usize,
    /// Routing-table entries of the DHT's overlay node.
    pub routing_table_len: usize,
    /// Replicas this node holds.
    pub stored_objects: usize,
    /// Bytes of those replicas.
    pub stored_bytes: usize,
    /// Bytes of cached objects.
    pub cached_bytes: usize,
    /// Topics this node subscribed to.
    pub subscribed_topics: usize,
}

/// What a service node tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceOutput {
    /// A put finished.
    Put {
        /// The caller's ticket.
        ticket: u64,
        /// The key.
        key: OverlayId,
        /// How it ended.
        outcome: PutOutcome,
    },
    /// A get finished: the verified object, or `None` when nobody had it (or on timeout).
    Get {
        /// The caller's ticket.
        ticket: u64,
        /// The key.
        key: OverlayId,
        /// The object.
        object: Option<StoredObject>,
    },
    /// A publish or subscribe was handed to Scribe, or refused.
    Accepted {
        /// The caller's ticket.
        ticket: u64,
        /// `Err` when Scribe refused it.
        result: Result<(), ScribeError>,
    },
    /// Multicast data for a topic this node subscribed to.
    Received {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// An anycast finished.
    Anycast {
        /// The caller's ticket.
        ticket: u64,
        /// The topic.
        topic: OverlayId,
        /// How it ended.
        outcome: AnycastOutcome,
    },
    /// An anycast to a topic this node subscribed to chose this node: the data is for one of
    /// its subscribers.
    AnycastReceived {
        /// The topic.
        topic: OverlayId,
        /// The data.
        data: Vec<u8>,
    },
    /// The node's state.
    Status {
        /// The caller's ticket.
        ticket: u64,
        /// The snapshot.
        status: Box<ServiceStatus>,
    },
}

/// One service node: a DHT node and a Scribe node with the same handle.
///
/// # How to drive it
/// Build with [`OverlayService::new`], call `on_start`, then feed messages, timers and
/// [`ServiceRequest`]s. Every `Put`, `Get`, `Publish`, `Subscribe`, `Anycast` and `Status`
/// yields exactly one output carrying its ticket; `Unsubscribe` yields none.
pub struct OverlayService {
    dht: Past,
    multicast: Scribe,
    /// The DHT's request id of each put or get in flight, to its caller's ticket. Bounded by the
    /// DHT's `requests_pending_max`: the DHT answers every put and get, by its deadline at the
    /// latest, and refuses at once beyond its bound.
    tickets: BTreeMap<u64, u64>,
    /// The request id the DHT gives its next put or get (it numbers them 0, 1, 2, ...).
    next_dht_request: u64,
    /// Anycasts awaiting Scribe's answer.
    anycasts: PendingAnycasts,
    anycast_timeout_ms: u64,
}

impl OverlayService {
    /// A node with handle `me`, joining through `bootstrap` (none for the first node), proving
    /// its id with `certificate` when the overlay certifies ids.
    pub fn new(
        config: ServiceConfig,
        me: NodeHandle,
        bootstrap: Option<NodeId>,
        certificate: Option<NodeCertificate>,
    ) -> OverlayService {
        let anycasts = PendingAnycasts::new(config.anycasts_pending_max);
        let anycast_timeout_ms = config.anycast_timeout_ms;
        let mut dht = Past::new(config.dht, me, bootstrap);
        let mut multicast = Scribe::new(config.multicast, me, bootstrap);
        if let Some(certificate) = certificate {
            dht = dht.with_certificate(certificate.clone());
            multicast = multicast.with_certificate(certificate);
        }
        OverlayService {
            dht,
            multicast,
            tickets: BTreeMap::new(),
            next_dht_request: 0,
            anycasts,
            anycast_timeout_ms,
        }
    }

    /// The DHT node.
    pub fn dht(&self) -> &Past {
        &self.dht
    }

    /// The Scribe node.
    pub fn multicast(&self) -> &Scribe {
        &self.multicast
    }

    /// The node's state.
    pub fn status(&self) -> ServiceStatus {
        let dht_overlay = self.dht.pastry();
        let multicast_overlay = self.multicast.pastry();
        ServiceStatus {
            me: dht_overlay.handle(),
            dht_phase: dht_overlay.phase(),
            multicast_phase: multicast_overlay.phase(),
            dht_leaf_set_len: dht_overlay.leaf_set().len(),
            multicast_leaf_set_len: multicast_overlay.leaf_set().len(),
            dht_leaf_set: dht_overlay
                .leaf_set()
                .members()
                .iter()
                .map(|p| p.id)
                .collect(),
            multicast_leaf_set: multicast_overlay
                .leaf_set()
                .members()
                .iter()
                .map(|p| p.id)
                .collect(),
            leaf_set_size: 2 * dht_overlay.leaf_set().half_len_max(),
            routing_table_len: dht_overlay.routing_table().len(),
            stored_objects: self.dht.store().len(),
            stored_bytes: self.dht.store().used_bytes(),
            cached_bytes: self.dht.cache().used_bytes(),
            subscribed_topics: self.multicast.subscribed_topics(),
        }
    }

    fn run_dht(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut Past, &mut Context<'_, Past>),
    ) {
        let dht = &mut self.dht;
        let outputs = cx.child(ServiceMessage::Dht, ServiceTimer::Dht, |c| run(dht, c));
        for output in outputs {
            match output {
                PastOutput::PutStored {
                    request,
                    key,
                    replicas,
                    complete,
                } => {
                    if let Some(ticket) = self.tickets.remove(&request) {
                        let outcome = PutOutcome::Stored { replicas, complete };
                        cx.deliver(ServiceOutput::Put {
                            ticket,
                            key,
                            outcome,
                        });
                    }
                }
                PastOutput::PutFailed {
                    request,
                    key,
                    error,
                } => {
                    if let Some(ticket) = self.tickets.remove(&request) {
                        let outcome = PutOutcome::Failed(error);
                        cx.deliver(ServiceOutput::Put {
                            ticket,
                            key,
                            outcome,
                        });
                    }
                }
                PastOutput::GetDone {
                    request,
                    key,
                    object,
                } => {
                    if let Some(ticket) = self.tickets.remove(&request) {
                        cx.deliver(ServiceOutput::Get {
                            ticket,
                            key,
                            object,
                        });
                    }
                }
                // Joins, failures and routing events are visible through the status request.
                PastOutput::Overlay(_) => {}
            }
        }
    }

    /// Run Scribe; returns the refusal among its outputs, if any (a request is refused at once).
    fn run_multicast(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut Scribe, &mut Context<'_, Scribe>),
    ) -> Result<(), ScribeError> {
        let multicast = &mut self.multicast;
        let outputs = cx.child(ServiceMessage::Multicast, ServiceTimer::Multicast, |c| {
            run(multicast, c)
        });
        let mut result = Ok(());
        for output in outputs {
            match output {
                ScribeOutput::Received { topic, data } => {
                    cx.deliver(ServiceOutput::Received { topic, data })
                }
                ScribeOutput::AnycastReceived { topic, data, .. } => {
                    cx.deliver(ServiceOutput::AnycastReceived { topic, data })
                }
                ScribeOutput::AnycastAnswered { request, by, .. } => {
                    self.finish_anycast(cx, request, AnycastOutcome::Accepted { by })
                }
                ScribeOutput::AnycastFailed { request, .. } => {
                    self.finish_anycast(cx, request, AnycastOutcome::NoSubscriber)
                }
                ScribeOutput::Refused(e) => result = Err(e),
                // Tree repair and overlay events are visible through the status request.
                ScribeOutput::Resubscribed { .. } | ScribeOutput::Overlay(_) => {}
            }
        }
        result
    }

    /// Hand an anycast to Scribe under a fresh request number, with a deadline.
    fn anycast(
        &mut self,
        cx: &mut Context<'_, Self>,
        ticket: u64,
        topic: OverlayId,
        data: Vec<u8>,
    ) {
        let request = match self.anycasts.start(ticket, topic, cx.rng()) {
            Ok(request) => request,
            Err(busy) => {
                let outcome = AnycastOutcome::Failed(busy);
                return cx.deliver(ServiceOutput::Anycast {
                    ticket,
                    topic,
                    outcome,
                });
            }
        };
        cx.set_timer(
            ServiceTimer::AnycastDeadline(request),
            Duration::from_millis(self.anycast_timeout_ms),
        );
        // The empty prefix: every member's (empty) label matches, see [`anycast`].
        let request_to_scribe = ScribeRequest::Anycast {
            request,
            topic,
            label_prefix: Vec::new(),
            data,
        };
        if let Err(e) = self.run_multicast(cx, |p, c| p.on_request(c, request_to_scribe)) {
            let outcome = AnycastOutcome::Failed(AnycastError::Refused(e));
            self.finish_anycast(cx, request, outcome);
        }
    }

    /// Answer the anycast numbered `request`, unless it already ended.
    fn finish_anycast(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: u64,
        outcome: AnycastOutcome,
    ) {
        if let Some(pending) = self.anycasts.finish(request) {
            cx.cancel_timer(ServiceTimer::AnycastDeadline(request));
            cx.deliver(ServiceOutput::Anycast {
                ticket: pending.ticket,
                topic: pending.topic,
                outcome,
            });
        }
    }

    /// Hand a put or get to the DHT under the next request id, remembering the caller's ticket.
    fn dht_request(&mut self, cx: &mut Context<'_, Self>, ticket: u64, request: PastRequest) {
        // The DHT numbers its puts and gets 0, 1, 2, ... in the order it receives them.
        let request_id = self.next_dht_request;
        self.next_dht_request += 1;
        self.tickets.insert(request_id, ticket);
        self.run_dht(cx, |p, c| p.on_request(c, request));
    }
}

impl Protocol for OverlayService {
    type Message = ServiceMessage;
    type Timer = ServiceTimer;
    type Request = ServiceRequest;
    type Output = ServiceOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.run_dht(cx, |p, c| p.on_start(c));
        // Scribe reports no refusal on start.
        let _ = self.run_multicast(cx, |p, c| p.on_start(c));
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: ServiceMessage) {
        match message {
            ServiceMessage::Dht(m) => self.run_dht(cx, |p, c| p.on_message(c, from, m)),
            ServiceMessage::Multicast(m) => {
                let _ = self.run_multicast(cx, |p, c| p.on_message(c, from, m));
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: ServiceTimer) {
        match timer {
            ServiceTimer::Dht(t) => self.run_dht(cx, |p, c| p.on_timer(c, t)),
            ServiceTimer::Multicast(t) => {
                let _ = self.run_multicast(cx, |p, c| p.on_timer(c, t));
            }
            ServiceTimer::AnycastDeadline(request) => {
                if let Some(pending) = self.anycasts.finish(request) {
                    let timed_out = AnycastError::TimedOut {
                        timeout_ms: self.anycast_timeout_ms,
                    };
                    cx.deliver(ServiceOutput::Anycast {
                        ticket: pending.ticket,
                        topic: pending.topic,
                        outcome: AnycastOutcome::Failed(timed_out),
                    });
                }
            }
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: ServiceRequest) {
        match request {
            ServiceRequest::Put { ticket, object } => {
                self.dht_request(cx, ticket, PastRequest::Put(object))
            }
            ServiceRequest::Get { ticket, key } => {
                self.dht_request(cx, ticket, PastRequest::Get(key))
            }
            ServiceRequest::Publish {
                ticket,
                topic,
                data,
            } => {
                let request = ScribeRequest::Multicast { topic, data };
                let result = self.run_multicast(cx, |p, c| p.on_request(c, request));
                cx.deliver(ServiceOutput::Accepted { ticket, result });
            }
            ServiceRequest::Subscribe { ticket, topic } => {
                let request = ScribeRequest::Join {
                    topic,
                    label: Vec::new(),
                };
                let result = self.run_multicast(cx, |p, c| p.on_request(c, request));
                cx.deliver(ServiceOutput::Accepted { ticket, result });
            }
            ServiceRequest::Anycast {
                ticket,
                topic,
                data,
            } => self.anycast(cx, ticket, topic, data),
            ServiceRequest::Unsubscribe { topic } => {
                let request = ScribeRequest::Leave { topic };
                let _ = self.run_multicast(cx, |p, c| p.on_request(c, request));
            }
            ServiceRequest::Status { ticket } => {
                let status = Box::new(self.status());
                cx.deliver(ServiceOutput::Status { ticket, status });
            }
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.dht.check_invariants()?;
        self.multicast.check_invariants()?;
        if self.anycasts.len() > self.anycasts.pending_max() {
            return Err(InvariantViolation(format!(
                "{} anycasts pending, bound {}",
                self.anycasts.len(),
                self.anycasts.pending_max()
            )));
        }
        Ok(())
    }
}
