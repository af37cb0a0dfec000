//! DHT tests: request handling by exact effects, then whole DHTs on the test network (the storage
//! invariant, lookups, caching, updates and removal, quotas, replica maintenance after failures).

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};
use stockade_crypto::ed25519::SigningKey;

use super::*;
use crate::handle::test_handle;
use crate::protocol::testnet::{OverlayNode, TestNet};
use crate::protocol::PastryMessage;

impl OverlayNode for Past {
    fn overlay_handle(&self) -> NodeHandle {
        self.pastry().handle()
    }
    fn is_joined(&self) -> bool {
        self.pastry().phase() == Phase::Joined
    }
    fn is_join_message(message: &PastMessage) -> bool {
        matches!(message, PastMessage::Overlay(m) if <Pastry as OverlayNode>::is_join_message(m))
    }
}

fn run(p: &mut Past, f: impl FnOnce(&mut Past, &mut Context<'_, Past>)) -> Vec<Effect<Past>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let mut cx = Context::new(
        Time::ZERO,
        p.pastry().handle().addr,
        &mut rng,
        &mut tokens,
        Vec::new(),
    );
    f(p, &mut cx);
    cx.into_effects()
}

fn outputs(effects: &[Effect<Past>]) -> Vec<&PastOutput> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Deliver(o) = e {
                Some(o)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn puts_before_joining_or_of_bad_objects_fail_with_their_reason() {
    let mut joining = Past::new(PastConfig::default(), test_handle(1), Some(NodeId(9)));
    run(&mut joining, |p, cx| p.on_start(cx));
    let object = StoredObject::content_hashed(b"x".to_vec());
    let key = object.key;
    let effects = run(&mut joining, |p, cx| {
        p.on_request(cx, PastRequest::Put(object.clone()))
    });
    assert_eq!(
        outputs(&effects),
        vec![&PastOutput::PutFailed {
            request: 0,
            key,
            error: PutError::NotJoined
        }]
    );

    let mut alone = Past::new(PastConfig::default(), test_handle(2), None);
    run(&mut alone, |p, cx| p.on_start(cx));
    let mut forged = object;
    forged.data = b"y".to_vec();
    let effects = run(&mut alone, |p, cx| {
        p.on_request(cx, PastRequest::Put(forged))
    });
    let failed = PastOutput::PutFailed {
        request: 0,
        key,
        error: PutError::Invalid(ObjectError::ContentHashMismatch),
    };
    assert!(outputs(&effects).contains(&&failed));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Charge(_))),
        "verification is charged"
    );
}

fn lone_node_with_one_replica() -> Past {
    let config = PastConfig {
        replicas: 1,
        ..PastConfig::default()
    };
    let mut alone = Past::new(config, test_handle(2), None);
    run(&mut alone, |p, cx| p.on_start(cx));
    alone
}

#[test]
fn a_lone_node_stores_and_finds_its_own_objects() {
    let mut alone = lone_node_with_one_replica();
    let object = StoredObject::content_hashed(b"hello".to_vec());
    let key = object.key;
    let effects = run(&mut alone, |p, cx| {
        p.on_request(cx, PastRequest::Put(object.clone()))
    });
    assert!(outputs(&effects).contains(&&PastOutput::PutStored {
        request: 0,
        key,
        replicas: 1,
        complete: true
    }));
    assert_eq!(alone.store().len(), 1);
    let effects = run(&mut alone, |p, cx| p.on_request(cx, PastRequest::Get(key)));
    assert!(outputs(&effects).contains(&&PastOutput::GetDone {
        request: 1,
        key,
        object: Some(object)
    }));
}

#[test]
fn a_forged_lookup_answer_is_ignored() {
    let mut alone = Past::new(PastConfig::default(), test_handle(2), None);
    run(&mut alone, |p, cx| p.on_start(cx));
    let wanted = StoredObject::content_hashed(b"real".to_vec());
    let key = wanted.key;
    // No local copy: the get waits for an answer (the lone node is the root, so it answers
    // NotFound at once; start a second get by hand to observe a pending one).
    alone.pending.insert(7, Pending::Get { key });
    let mut forged = wanted.clone();
    forged.data = b"fake".to_vec();
    let effects = run(&mut alone, |p, cx| {
        p.on_message(
            cx,
            NodeId(5),
            PastMessage::Dht(DhtDirect::Found {
                request: 7,
                object: forged,
            }),
        )
    });
    assert!(
        outputs(&effects).is_empty(),
        "a forged object completes nothing"
    );
    let effects = run(&mut alone, |p, cx| {
        p.on_message(
            cx,
            NodeId(5),
            PastMessage::Dht(DhtDirect::Found {
                request: 7,
                object: wanted.clone(),
            }),
        )
    });
    assert_eq!(
        outputs(&effects),
        vec![&PastOutput::GetDone {
            request: 7,
            key,
            object: Some(wanted)
        }]
    );
}

#[test]
fn pending_requests_are_bounded() {
    let config = PastConfig {
        requests_pending_max: 1,
        ..PastConfig::default()
    };
    let mut p = Past::new(config, test_handle(2), None);
    run(&mut p, |p, cx| p.on_start(cx));
    p.pending.insert(100, Pending::Get { key: OverlayId(1) });
    let object = StoredObject::content_hashed(b"z".to_vec());
    let key = object.key;
    let effects = run(&mut p, |p, cx| p.on_request(cx, PastRequest::Put(object)));
    assert_eq!(
        outputs(&effects),
        vec![&PastOutput::PutFailed {
            request: 0,
            key,
            error: PutError::Busy
        }]
    );
}

fn dht(n: usize, seed: u64, config: PastConfig) -> TestNet<Past> {
    let mut net = TestNet::with_factory(
        seed,
        Box::new(move |me, bootstrap| Past::new(config.clone(), me, bootstrap)),
    );
    net.grow(n);
    net
}

fn request_and_wait(net: &mut TestNet<Past>, at: NodeId, request: PastRequest) -> PastOutput {
    let before = net.outputs[at.index()].len();
    net.request(at, request);
    net.run_for(Duration::from_secs(6));
    net.outputs[at.index()][before..]
        .iter()
        .find(|o| {
            matches!(
                o,
                PastOutput::PutStored { .. }
                    | PastOutput::PutFailed { .. }
                    | PastOutput::GetDone { .. }
            )
        })
        .cloned()
        .expect("every request is answered by its deadline")
}

fn holders(net: &TestNet<Past>, key: OverlayId) -> Vec<OverlayId> {
    let mut ids: Vec<OverlayId> = net
        .nodes
        .iter()
        .flatten()
        .filter(|p| p.store().get(key).is_some())
        .map(|p| p.pastry().handle().id)
        .collect();
    ids.sort();
    ids
}

fn sorted_ids(handles: Vec<NodeHandle>) -> Vec<OverlayId> {
    let mut ids: Vec<OverlayId> = handles.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

#[test]
fn objects_live_on_the_k_closest_nodes_and_lookups_find_and_cache_them() {
    let mut net = dht(40, 3, PastConfig::default());
    let object = StoredObject::content_hashed(b"a shared file".to_vec());
    let key = object.key;
    let put = request_and_wait(&mut net, NodeId(5), PastRequest::Put(object.clone()));
    assert_eq!(
        put,
        PastOutput::PutStored {
            request: 0,
            key,
            replicas: 4,
            complete: true
        }
    );
    // paper 002, "DHT: Replication": the storage invariant.
    assert_eq!(holders(&net, key), sorted_ids(net.closest_live(key, 4)));
    let mut cached_somewhere = false;
    for reader in (0..40u32).step_by(3) {
        let got = request_and_wait(&mut net, NodeId(reader), PastRequest::Get(key));
        assert!(matches!(got, PastOutput::GetDone { object: Some(ref o), .. } if *o == object));
        cached_somewhere |= net.nodes.iter().flatten().any(|p| p.cache().contains(key));
    }
    assert!(
        cached_somewhere,
        "nodes on insert or lookup routes cached the object"
    );
    let missing = StoredObject::content_hashed(b"never stored".to_vec()).key;
    let got = request_and_wait(&mut net, NodeId(3), PastRequest::Get(missing));
    assert!(matches!(got, PastOutput::GetDone { object: None, key, .. } if key == missing));
}

#[test]
fn signed_objects_update_refuse_stale_versions_and_remove_by_tombstone() {
    let mut net = dht(25, 4, PastConfig::default());
    let owner = SigningKey::from_bytes([9; 32]);
    let v1 = StoredObject::signed(&owner, 1, b"v1".to_vec());
    let v2 = StoredObject::signed(&owner, 2, b"v2".to_vec());
    let key = v1.key;
    assert!(matches!(
        request_and_wait(&mut net, NodeId(2), PastRequest::Put(v1.clone())),
        PastOutput::PutStored { complete: true, .. }
    ));
    assert!(matches!(
        request_and_wait(&mut net, NodeId(3), PastRequest::Put(v2.clone())),
        PastOutput::PutStored { complete: true, .. }
    ));
    let stale = request_and_wait(&mut net, NodeId(4), PastRequest::Put(v1));
    assert!(matches!(
        stale,
        PastOutput::PutFailed {
            error: PutError::Refused(Refusal::NotNewer),
            ..
        }
    ));
    let got = request_and_wait(&mut net, NodeId(6), PastRequest::Get(key));
    assert!(matches!(got, PastOutput::GetDone { object: Some(ref o), .. } if *o == v2));
    let tomb = StoredObject::tombstone(&owner, 3);
    assert!(matches!(
        request_and_wait(&mut net, NodeId(2), PastRequest::Put(tomb)),
        PastOutput::PutStored { .. }
    ));
    // Every reader sees the removal, the writers too: a node on an insert or lookup route of an
    // older version has no cached copy of it to answer with.
    for reader in [7, 2, 3, 4, 6] {
        let got = request_and_wait(&mut net, NodeId(reader), PastRequest::Get(key));
        assert!(
            matches!(got, PastOutput::GetDone { object: Some(ref o), .. } if o.is_tombstone()),
            "reader {reader}: {got:?}"
        );
    }
    assert!(
        net.nodes.iter().flatten().all(|p| !p.cache().contains(key)),
        "no node caches a public-key object"
    );
}

#[test]
fn a_full_node_refuses_with_the_quota_figures() {
    let config = PastConfig {
        store_bytes_max: 1_000,
        ..PastConfig::default()
    };
    let mut net = dht(10, 5, config);
    let big = StoredObject::content_hashed(vec![1; 2_000]);
    let got = request_and_wait(&mut net, NodeId(1), PastRequest::Put(big));
    assert!(
        matches!(
            got,
            PastOutput::PutFailed {
                error: PutError::Refused(Refusal::QuotaExceeded { free: 1_000, .. }),
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn replicas_are_restored_after_a_replica_fails() {
    let mut net = dht(30, 6, PastConfig::default());
    let object = StoredObject::content_hashed(b"precious".to_vec());
    let key = object.key;
    request_and_wait(&mut net, NodeId(8), PastRequest::Put(object));
    let before = net.closest_live(key, 4);
    let victim = before[0];
    net.crash(victim.addr);
    net.run_for(Duration::from_secs(15));
    let after = sorted_ids(net.closest_live(key, 4));
    assert!(!after.contains(&victim.id));
    assert_eq!(
        holders(&net, key),
        after,
        "the new k closest nodes hold the object"
    );
    let newcomer = after.iter().find(|id| !before.iter().any(|b| b.id == **id));
    assert!(
        newcomer.is_some(),
        "a node that was not a replica became one"
    );
}

#[test]
fn dht_joins_are_counted_as_join_traffic() {
    assert!(<Past as OverlayNode>::is_join_message(
        &PastMessage::Overlay(PastryMessage::Announce {
            node: test_handle(1)
        })
    ));
    assert!(!<Past as OverlayNode>::is_join_message(&PastMessage::Dht(
        DhtDirect::CacheCopy {
            object: StoredObject::content_hashed(vec![])
        }
    )));
}

#[test]
fn a_lookup_answer_sends_cache_copies_to_the_nodes_it_passed() {
    let mut holder = lone_node_with_one_replica();
    let object = StoredObject::content_hashed(b"popular".to_vec());
    run(&mut holder, |p, cx| {
        p.on_request(cx, PastRequest::Put(object.clone()))
    });
    let (client, a, b) = (test_handle(10), test_handle(11), test_handle(12));
    let lookup = DhtRouted::Lookup {
        request: 3,
        client,
        key: object.key,
        path: vec![client, a, b],
    };
    let effects = run(&mut holder, |p, cx| p.on_routed_at_root(cx, lookup));
    let sends: Vec<(NodeId, &PastMessage)> = effects
        .iter()
        .filter_map(|e| {
            if let Effect::Send { to, message, .. } = e {
                Some((*to, message))
            } else {
                None
            }
        })
        .collect();
    let copy = PastMessage::Dht(DhtDirect::CacheCopy {
        object: object.clone(),
    });
    let found = PastMessage::Dht(DhtDirect::Found { request: 3, object });
    assert_eq!(
        sends,
        vec![(a.addr, &copy), (b.addr, &copy), (client.addr, &found)]
    );
}

#[test]
fn a_lookup_answer_for_a_public_key_object_sends_no_cache_copies() {
    let mut holder = lone_node_with_one_replica();
    let object = StoredObject::signed(&SigningKey::from_bytes([5; 32]), 1, b"mutable".to_vec());
    run(&mut holder, |p, cx| {
        p.on_request(cx, PastRequest::Put(object.clone()))
    });
    let (client, a) = (test_handle(10), test_handle(11));
    let lookup = DhtRouted::Lookup {
        request: 4,
        client,
        key: object.key,
        path: vec![client, a],
    };
    let effects = run(&mut holder, |p, cx| p.on_routed_at_root(cx, lookup));
    let sends: Vec<(NodeId, &PastMessage)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message, .. } => Some((*to, message)),
            _ => None,
        })
        .collect();
    let found = PastMessage::Dht(DhtDirect::Found { request: 4, object });
    assert_eq!(sends, vec![(client.addr, &found)], "the answer only");
}
