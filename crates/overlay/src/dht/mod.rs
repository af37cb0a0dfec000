//! A PAST-style DHT over Pastry (paper 002, "Sharing state: Distributed hash tables").
//!
//! - Storage invariant: an object's replicas live on the k nodes whose ids are numerically closest
//!   to its key ("DHT: Replication"). An insert is routed to the key's root, which stores it and
//!   pushes it to the rest of its replica set; each replica acknowledges to the client.
//! - Lookups are routed toward the key and answered by the first node on the route that holds the
//!   object, stored or cached ("usually locates replica nearest client"); the nodes the lookup
//!   passed get a copy for their caches ("DHT: Dynamic caching"). Caches keep immutable objects
//!   only, so an update or removal of a public-key object is seen by every later lookup.
//! - Replica maintenance: periodically each node re-derives the replica set of every object it
//!   holds from its leaf set, pushes to new members, and demotes objects it is no longer
//!   responsible for to its cache.
//! - Data is self-certifying ([`object`]); per-node quotas and object size limits give clear
//!   errors ([`store`]).
//!
//! [`Past`] is a parent protocol that owns a [`Pastry`] child (core's composition).

pub mod messages;
pub mod object;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use stockade_core::wire::{DecodeLimits, Wire};
use stockade_core::{Context, CostKind, CpuWork, InvariantViolation, NodeId, Protocol};

pub use messages::{DhtDirect, DhtRouted, PastMessage, Refusal};
pub use object::{Certification, ObjectError, StoredObject, OBJECT_BYTES_MAX};
pub use store::{ObjectCache, ObjectStore, StoreError};

use crate::certificate::NodeCertificate;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::{
    ForwardVerdict, KbrApplication, Pastry, PastryConfig, PastryOutput, PastryRequest, PastryTimer,
    Phase,
};
use messages::LOOKUP_PATH_LEN_MAX;

/// Tunables of a DHT node.
#[derive(Clone, Debug)]
pub struct PastConfig {
    /// The overlay's tunables.
    pub pastry: PastryConfig,
    /// Replicas per object, k (at most L/2 + 1).
    pub replicas: usize,
    /// This node's storage quota for replicas, bytes.
    pub store_bytes_max: usize,
    /// This node's cache, bytes.
    pub cache_bytes_max: usize,
    /// A put or get without a complete answer by then is reported, ms.
    pub request_timeout_ms: u64,
    /// Client requests awaiting answers at once.
    pub requests_pending_max: usize,
    /// Period of replica maintenance, ms.
    pub replica_check_interval_ms: u64,
    /// Objects examined per maintenance period.
    pub replica_checks_per_tick_max: usize,
}

impl Default for PastConfig {
    fn default() -> Self {
        PastConfig {
            pastry: PastryConfig::default(),
            replicas: 4,
            store_bytes_max: 64 << 20,
            cache_bytes_max: 16 << 20,
            request_timeout_ms: 5_000,
            requests_pending_max: 1_024,
            replica_check_interval_ms: 2_000,
            replica_checks_per_tick_max: 256,
        }
    }
}

/// The forward upcall of a DHT node: it holds the store and cache so that a lookup passing a node
/// that has the object stops there, and it records the lookup's path.
pub struct PastHook {
    me: NodeHandle,
    store: ObjectStore,
    cache: ObjectCache,
    /// Objects seen on insert routes, to verify (and charge) and cache after the overlay call.
    seen_on_route: Vec<StoredObject>,
}

/// Objects an insert route leaves to cache per overlay call (one call forwards one message).
const SEEN_ON_ROUTE_MAX: usize = 4;

impl KbrApplication for PastHook {
    fn forward(
        &mut self,
        _key: OverlayId,
        payload: &mut Vec<u8>,
        _next: NodeHandle,
    ) -> ForwardVerdict {
        let (request, client, key, mut path) =
            match DhtRouted::from_bytes(payload, DecodeLimits::MESSAGE) {
                Ok(DhtRouted::Lookup {
                    request,
                    client,
                    key,
                    path,
                }) => (request, client, key, path),
                Ok(DhtRouted::Insert { object, .. }) => {
                    // paper 002, "DHT: Dynamic caching": files are cached along insert routes too.
                    if object.is_cacheable() && self.seen_on_route.len() < SEEN_ON_ROUTE_MAX {
                        self.seen_on_route.push(object);
                    }
                    return ForwardVerdict::Continue;
                }
                Err(_) => return ForwardVerdict::Continue,
            };
        if self.store.get(key).is_some() || self.cache.contains(key) {
            return ForwardVerdict::Stop;
        }
        if path.len() < LOOKUP_PATH_LEN_MAX {
            path.push(self.me);
            *payload = DhtRouted::Lookup {
                request,
                client,
                key,
                path,
            }
            .to_bytes();
        }
        ForwardVerdict::Continue
    }
}

/// DHT timers.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PastTimer {
    /// The overlay's timers.
    Overlay(PastryTimer),
    /// A client request's deadline.
    RequestDeadline(u64),
    /// Replica maintenance.
    ReplicaCheck,
}

/// What the local application asks of the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastRequest {
    /// Store an object (a signed tombstone removes a public-key object).
    Put(StoredObject),
    /// Fetch the object under a key.
    Get(OverlayId),
    /// Pass a request to the overlay (route, leave).
    Overlay(PastryRequest),
}

/// Why a put failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// The object is malformed or does not certify its key.
    #[error("object refused: {0}")]
    Invalid(ObjectError),
    /// The key's root refused it.
    #[error("the key's root refused the object: {0:?}")]
    Refused(Refusal),
    /// No replica acknowledged in time.
    #[error("no replica acknowledged before the deadline; the overlay may be partitioned or the root failed, retry")]
    TimedOut,
    /// This node is not part of the overlay.
    #[error("this node has not joined the overlay yet")]
    NotJoined,
    /// Too many requests are pending.
    #[error("too many requests pending on this node; wait for answers before sending more")]
    Busy,
}

/// What the DHT tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PastOutput {
    /// `replicas` nodes acknowledged storing the object (`complete` when all k did).
    PutStored {
        /// The client's request id.
        request: u64,
        /// The key.
        key: OverlayId,
        /// Replicas acknowledged.
        replicas: usize,
        /// Whether k replicas acknowledged.
        complete: bool,
    },
    /// The put failed.
    PutFailed {
        /// The client's request id.
        request: u64,
        /// The key.
        key: OverlayId,
        /// Why.
        error: PutError,
    },
    /// A get finished: the verified object, or `None` when the root has none (or on timeout).
    GetDone {
        /// The client's request id.
        request: u64,
        /// The key.
        key: OverlayId,
        /// The object.
        object: Option<StoredObject>,
    },
    /// An overlay event (joined, failures, routed messages that are not DHT traffic).
    Overlay(PastryOutput),
}

#[derive(Clone, Debug)]
enum Pending {
    Put {
        key: OverlayId,
        acks: BTreeSet<OverlayId>,
    },
    Get {
        key: OverlayId,
    },
}

/// One DHT node: a Pastry node plus replicas, a cache and client requests.
///
/// # How to drive it
/// Like [`Pastry`]: build with [`Past::new`], call `on_start`, then feed messages, timers and
/// [`PastRequest`]s. The node's n-th put or get (counting from 0) has request id n, and yields
/// exactly one `PutStored`, `PutFailed` or `GetDone` carrying that id.
pub struct Past {
    config: PastConfig,
    pastry: Pastry<PastHook>,
    next_request: u64,
    pending: BTreeMap<u64, Pending>,
    /// For each held object, the replica set it was last pushed to.
    pushed: BTreeMap<OverlayId, Vec<OverlayId>>,
    check_cursor: usize,
}

impl Past {
    /// A DHT node with handle `me`, joining through `bootstrap` (none for the first node).
    pub fn new(config: PastConfig, me: NodeHandle, bootstrap: Option<NodeId>) -> Past {
        let hook = PastHook {
            me,
            store: ObjectStore::new(config.store_bytes_max),
            cache: ObjectCache::new(config.cache_bytes_max),
            seen_on_route: Vec::new(),
        };
        let pastry = Pastry::with_application(config.pastry.clone(), me, bootstrap, hook);
        Past {
            config,
            pastry,
            next_request: 0,
            pending: BTreeMap::new(),
            pushed: BTreeMap::new(),
            check_cursor: 0,
        }
    }

    /// This node's certificate, sent in every probe answer (needed when the overlay certifies ids).
    pub fn with_certificate(mut self, certificate: NodeCertificate) -> Past {
        self.pastry = self.pastry.with_certificate(certificate);
        self
    }

    /// The overlay node underneath.
    pub fn pastry(&self) -> &Pastry<PastHook> {
        &self.pastry
    }

    /// Replicas held.
    pub fn store(&self) -> &ObjectStore {
        &self.pastry.application().store
    }

    /// Cached objects.
    pub fn cache(&self) -> &ObjectCache {
        &self.pastry.application().cache
    }

    fn me(&self) -> NodeHandle {
        self.pastry.handle()
    }

    /// Run the overlay child and handle what it delivers.
    fn overlay(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut Pastry<PastHook>, &mut Context<'_, Pastry<PastHook>>),
    ) {
        let pastry = &mut self.pastry;
        let outputs = cx.child(PastMessage::Overlay, PastTimer::Overlay, |c| run(pastry, c));
        for object in std::mem::take(&mut self.pastry.application_mut().seen_on_route) {
            if Past::verify(cx, &object).is_ok() {
                self.pastry.application_mut().cache.insert(object);
            }
        }
        for output in outputs {
            match output {
                PastryOutput::Delivered { payload, .. } => {
                    // Routed payloads that are not DHT requests are someone's garbage: drop them.
                    if let Ok(routed) = DhtRouted::from_bytes(&payload, DecodeLimits::MESSAGE) {
                        self.on_routed_at_root(cx, routed);
                    }
                }
                PastryOutput::Consumed { payload, .. } => {
                    if let Ok(DhtRouted::Lookup {
                        request,
                        client,
                        key,
                        path,
                    }) = DhtRouted::from_bytes(&payload, DecodeLimits::MESSAGE)
                    {
                        self.answer_lookup(cx, request, client, key, &path);
                    }
                }
                other => cx.deliver(PastOutput::Overlay(other)),
            }
        }
    }

    fn route(&mut self, cx: &mut Context<'_, Self>, key: OverlayId, routed: DhtRouted) {
        let payload = routed.to_bytes();
        self.overlay(cx, |p, c| {
            p.on_request(c, PastryRequest::Route { key, payload })
        });
    }

    /// Send `message` to `to`, or handle it here when `to` is this node.
    fn send_direct(&mut self, cx: &mut Context<'_, Self>, to: NodeHandle, message: DhtDirect) {
        if to.addr == self.me().addr {
            self.on_direct(cx, to.addr, message);
        } else {
            cx.send(to.addr, PastMessage::Dht(message));
        }
    }

    fn verify(cx: &mut Context<'_, Self>, object: &StoredObject) -> Result<(), ObjectError> {
        cx.charge(CpuWork::bytes(CostKind::Sha256, object.data.len()));
        if object.is_signed() {
            cx.charge(CpuWork::ops(CostKind::Ed25519Verify, 1));
        }
        object.verify()
    }

    /// Register a client request under the next id, with its deadline; `None` when too many
    /// requests are pending.
    fn start_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: u64,
        pending: Pending,
    ) -> bool {
        if self.pending.len() >= self.config.requests_pending_max {
            return false;
        }
        self.pending.insert(request, pending);
        cx.set_timer(
            PastTimer::RequestDeadline(request),
            Duration::from_millis(self.config.request_timeout_ms),
        );
        true
    }

    fn next_request_id(&mut self) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        request
    }

    fn finish(&mut self, cx: &mut Context<'_, Self>, request: u64, output: PastOutput) {
        self.pending.remove(&request);
        cx.cancel_timer(PastTimer::RequestDeadline(request));
        cx.deliver(output);
    }

    fn finish_get(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: u64,
        key: OverlayId,
        object: Option<StoredObject>,
    ) {
        self.finish(
            cx,
            request,
            PastOutput::GetDone {
                request,
                key,
                object,
            },
        );
    }

    fn on_put(&mut self, cx: &mut Context<'_, Self>, object: StoredObject) {
        let key = object.key;
        let request = self.next_request_id();
        let refuse = |error| PastOutput::PutFailed {
            request,
            key,
            error,
        };
        if self.pastry.phase() != Phase::Joined {
            return cx.deliver(refuse(PutError::NotJoined));
        }
        if let Err(e) = Past::verify(cx, &object) {
            return cx.deliver(refuse(PutError::Invalid(e)));
        }
        if !self.start_request(
            cx,
            request,
            Pending::Put {
                key,
                acks: BTreeSet::new(),
            },
        ) {
            return cx.deliver(refuse(PutError::Busy));
        }
        let client = self.me();
        self.route(
            cx,
            key,
            DhtRouted::Insert {
                request,
                client,
                object,
            },
        );
    }

    fn on_get(&mut self, cx: &mut Context<'_, Self>, key: OverlayId) {
        let request = self.next_request_id();
        if self.pastry.phase() != Phase::Joined
            || !self.start_request(cx, request, Pending::Get { key })
        {
            return cx.deliver(PastOutput::GetDone {
                request,
                key,
                object: None,
            });
        }
        let client = self.me();
        if self.local_copy(key).is_some() {
            return self.answer_lookup(cx, request, client, key, &[]);
        }
        self.route(
            cx,
            key,
            DhtRouted::Lookup {
                request,
                client,
                key,
                path: Vec::new(),
            },
        );
    }

    fn local_copy(&mut self, key: OverlayId) -> Option<StoredObject> {
        let hook = self.pastry.application_mut();
        hook.store
            .get(key)
            .cloned()
            .or_else(|| hook.cache.get(key).cloned())
    }

    /// A routed DHT request reached the key's root.
    fn on_routed_at_root(&mut self, cx: &mut Context<'_, Self>, routed: DhtRouted) {
        match routed {
            DhtRouted::Insert {
                request,
                client,
                object,
            } => {
                let key = object.key;
                let refuse = |reason| DhtDirect::Refused {
                    request,
                    key,
                    reason,
                };
                if Past::verify(cx, &object).is_err() {
                    return self.send_direct(cx, client, refuse(Refusal::BadObject));
                }
                if let Err(e) = self.pastry.application_mut().store.insert(object.clone()) {
                    return self.send_direct(cx, client, refuse(refusal_of(e)));
                }
                let me = self.me();
                self.send_direct(
                    cx,
                    client,
                    DhtDirect::Stored {
                        request,
                        key,
                        by: me,
                    },
                );
                // paper 002, "DHT: Replication": replicas on the k nodes closest to the key.
                let replicas = self.pastry.replica_set(key, self.config.replicas);
                for peer in replicas.iter().filter(|p| p.id != me.id) {
                    let ack = Some((client, request));
                    cx.send(
                        peer.addr,
                        PastMessage::Dht(DhtDirect::Replicate {
                            object: object.clone(),
                            ack,
                        }),
                    );
                }
                self.pushed
                    .insert(key, replicas.iter().map(|p| p.id).collect());
            }
            DhtRouted::Lookup {
                request,
                client,
                key,
                path,
            } => self.answer_lookup(cx, request, client, key, &path),
        }
    }

    /// Answer a lookup from what this node holds, and give the nodes it passed a copy to cache.
    fn answer_lookup(
        &mut self,
        cx: &mut Context<'_, Self>,
        request: u64,
        client: NodeHandle,
        key: OverlayId,
        path: &[NodeHandle],
    ) {
        match self.local_copy(key) {
            Some(object) => {
                let hops_to_cache = if object.is_cacheable() { path } else { &[] };
                for hop in hops_to_cache
                    .iter()
                    .filter(|h| h.addr != self.me().addr && h.addr != client.addr)
                {
                    cx.send(
                        hop.addr,
                        PastMessage::Dht(DhtDirect::CacheCopy {
                            object: object.clone(),
                        }),
                    );
                }
                self.send_direct(cx, client, DhtDirect::Found { request, object });
            }
            None => self.send_direct(cx, client, DhtDirect::NotFound { request, key }),
        }
    }

    fn on_direct(&mut self, cx: &mut Context<'_, Self>, _from: NodeId, message: DhtDirect) {
        match message {
            DhtDirect::Replicate { object, ack } => self.on_replicate(cx, object, ack),
            DhtDirect::Stored { request, key, by } => {
                let k = self.config.replicas;
                let Some(Pending::Put { key: wanted, acks }) = self.pending.get_mut(&request)
                else {
                    return;
                };
                if *wanted != key {
                    return;
                }
                acks.insert(by.id);
                let replicas = acks.len();
                if replicas >= k {
                    self.finish(
                        cx,
                        request,
                        PastOutput::PutStored {
                            request,
                            key,
                            replicas,
                            complete: true,
                        },
                    );
                }
            }
            DhtDirect::Refused {
                request,
                key,
                reason,
            } => {
                if matches!(self.pending.get(&request), Some(Pending::Put { key: k, .. }) if *k == key)
                {
                    let error = PutError::Refused(reason);
                    self.finish(
                        cx,
                        request,
                        PastOutput::PutFailed {
                            request,
                            key,
                            error,
                        },
                    );
                }
            }
            DhtDirect::Found { request, object } => {
                let Some(Pending::Get { key }) = self.pending.get(&request) else {
                    return;
                };
                let key = *key;
                // The answer is untrusted: it must certify itself and be what we asked for.
                if object.key == key && Past::verify(cx, &object).is_ok() {
                    self.finish_get(cx, request, key, Some(object));
                }
            }
            DhtDirect::NotFound { request, key } => {
                if matches!(self.pending.get(&request), Some(Pending::Get { key: k }) if *k == key)
                {
                    self.finish_get(cx, request, key, None);
                }
            }
            DhtDirect::CacheCopy { object } => {
                if Past::verify(cx, &object).is_ok() {
                    self.pastry.application_mut().cache.insert(object);
                }
            }
        }
    }

    fn on_replicate(
        &mut self,
        cx: &mut Context<'_, Self>,
        object: StoredObject,
        ack: Option<(NodeHandle, u64)>,
    ) {
        let key = object.key;
        if Past::verify(cx, &object).is_err() {
            if let Some((client, request)) = ack {
                cx.send(
                    client.addr,
                    PastMessage::Dht(DhtDirect::Refused {
                        request,
                        key,
                        reason: Refusal::BadObject,
                    }),
                );
            }
            return;
        }
        let me = self.me();
        let responsible = self
            .pastry
            .replica_set(key, self.config.replicas)
            .iter()
            .any(|p| p.id == me.id);
        if !responsible {
            self.pastry.application_mut().cache.insert(object);
            return;
        }
        let result = self.pastry.application_mut().store.insert(object);
        if let Some((client, request)) = ack {
            let reply = match result {
                Ok(()) => DhtDirect::Stored {
                    request,
                    key,
                    by: me,
                },
                Err(e) => DhtDirect::Refused {
                    request,
                    key,
                    reason: refusal_of(e),
                },
            };
            self.send_direct(cx, client, reply);
        }
    }

    /// Replica maintenance: keep every held object on its current replica set.
    fn on_replica_check(&mut self, cx: &mut Context<'_, Self>) {
        cx.set_timer(
            PastTimer::ReplicaCheck,
            Duration::from_millis(self.config.replica_check_interval_ms),
        );
        if self.pastry.phase() != Phase::Joined {
            return;
        }
        let keys = self.store().keys();
        if keys.is_empty() {
            return;
        }
        let me = self.me();
        let count = self.config.replica_checks_per_tick_max.min(keys.len());
        for k in 0..count {
            let key = keys[(self.check_cursor + k) % keys.len()];
            let replicas = self.pastry.replica_set(key, self.config.replicas);
            let ids: Vec<OverlayId> = replicas.iter().map(|p| p.id).collect();
            if !ids.contains(&me.id) {
                // No longer responsible (closer nodes joined): keep it as a cache entry.
                if let Some(object) = self.pastry.application_mut().store.take(key) {
                    self.pastry.application_mut().cache.insert(object);
                }
                self.pushed.remove(&key);
                continue;
            }
            let before = self.pushed.get(&key).cloned().unwrap_or_default();
            let Some(object) = self.store().get(key).cloned() else {
                continue;
            };
            for peer in replicas
                .iter()
                .filter(|p| p.id != me.id && !before.contains(&p.id))
            {
                cx.send(
                    peer.addr,
                    PastMessage::Dht(DhtDirect::Replicate {
                        object: object.clone(),
                        ack: None,
                    }),
                );
            }
            self.pushed.insert(key, ids);
        }
        self.check_cursor = (self.check_cursor + count) % keys.len();
    }
}

fn refusal_of(e: StoreError) -> Refusal {
    match e {
        StoreError::QuotaExceeded { needed, free, .. } => Refusal::QuotaExceeded {
            needed: needed as u64,
            free: free as u64,
        },
        StoreError::NotNewer => Refusal::NotNewer,
    }
}

impl Protocol for Past {
    type Message = PastMessage;
    type Timer = PastTimer;
    type Request = PastRequest;
    type Output = PastOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.overlay(cx, |p, c| p.on_start(c));
        cx.set_timer(
            PastTimer::ReplicaCheck,
            Duration::from_millis(self.config.replica_check_interval_ms),
        );
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: PastMessage) {
        match message {
            PastMessage::Overlay(m) => self.overlay(cx, |p, c| p.on_message(c, from, m)),
            PastMessage::Dht(m) => self.on_direct(cx, from, m),
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: PastTimer) {
        match timer {
            PastTimer::Overlay(t) => self.overlay(cx, |p, c| p.on_timer(c, t)),
            PastTimer::ReplicaCheck => self.on_replica_check(cx),
            PastTimer::RequestDeadline(request) => match self.pending.remove(&request) {
                Some(Pending::Put { key, acks }) if acks.is_empty() => {
                    cx.deliver(PastOutput::PutFailed {
                        request,
                        key,
                        error: PutError::TimedOut,
                    });
                }
                Some(Pending::Put { key, acks }) => {
                    cx.deliver(PastOutput::PutStored {
                        request,
                        key,
                        replicas: acks.len(),
                        complete: false,
                    });
                }
                Some(Pending::Get { key }) => cx.deliver(PastOutput::GetDone {
                    request,
                    key,
                    object: None,
                }),
                None => {}
            },
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: PastRequest) {
        match request {
            PastRequest::Put(object) => self.on_put(cx, object),
            PastRequest::Get(key) => self.on_get(cx, key),
            PastRequest::Overlay(r) => self.overlay(cx, |p, c| p.on_request(c, r)),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.pastry.check_invariants()?;
        if self.store().used_bytes() > self.config.store_bytes_max {
            return Err(InvariantViolation(format!(
                "store holds {} bytes over its {}-byte quota",
                self.store().used_bytes(),
                self.config.store_bytes_max
            )));
        }
        if self.pending.len() > self.config.requests_pending_max {
            return Err(InvariantViolation(format!(
                "{} requests pending",
                self.pending.len()
            )));
        }
        Ok(())
    }
}
