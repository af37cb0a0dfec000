//! Tests of the Pastry protocol: exact effects of single handlers, then whole overlays on the
//! test network (joins, routing to the root, failures with repair, graceful departure).

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};

use super::testnet::TestNet;
use super::*;
use crate::handle::test_handle;
use crate::route::NextHop;

fn run<F: FnOnce(&mut Pastry, &mut Context<'_, Pastry>)>(
    p: &mut Pastry,
    now: Time,
    f: F,
) -> Vec<Effect<Pastry>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let mut cx = Context::new(now, p.handle().addr, &mut rng, &mut tokens, Vec::new());
    f(p, &mut cx);
    cx.into_effects()
}

/// Where the sends among `effects` whose message `is_kind` go, in order.
fn destinations(
    effects: &[Effect<Pastry>],
    is_kind: impl Fn(&PastryMessage) -> bool,
) -> Vec<NodeId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message, .. } if is_kind(message) => Some(*to),
            _ => None,
        })
        .collect()
}

fn count_pings(effects: &[Effect<Pastry>]) -> usize {
    destinations(effects, |m| matches!(m, PastryMessage::Ping { .. })).len()
}

/// `peer` announces itself to `p` and answers its probe at once: a measured, admitted peer.
fn admit(p: &mut Pastry, peer: NodeHandle) {
    run(p, Time::ZERO, |p, cx| {
        p.on_message(cx, peer.addr, PastryMessage::Announce { node: peer });
        p.on_message(
            cx,
            peer.addr,
            PastryMessage::Pong {
                sent_nanos: 0,
                certificate: None,
            },
        );
    });
}

fn first_node(id: u128) -> Pastry {
    let mut p = Pastry::new(PastryConfig::default(), test_handle(id), None);
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    p
}

#[test]
fn the_first_node_is_joined_at_once_and_starts_maintenance() {
    let mut p = Pastry::new(PastryConfig::default(), test_handle(5), None);
    let effects = run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    assert_eq!(effects.len(), 2);
    assert!(
        matches!(effects[0], Effect::SetTimer { timer: PastryTimer::Maintenance, at } if at == Time::from_millis(1000))
    );
    assert!(matches!(
        effects[1],
        Effect::Deliver(PastryOutput::Joined {
            leaf_set_len: 0,
            table_entries: 0
        })
    ));
    assert_eq!(p.phase(), Phase::Joined);
}

#[test]
fn a_joining_node_sends_join_to_its_bootstrap_and_arms_a_retry() {
    let me = test_handle(7);
    let mut p = Pastry::new(PastryConfig::default(), me, Some(NodeId(1)));
    let effects = run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    assert_eq!(effects.len(), 2);
    match &effects[0] {
        Effect::Send { to, message, .. } => {
            assert_eq!(*to, NodeId(1));
            assert_eq!(
                *message,
                PastryMessage::JoinRequest {
                    joiner: me,
                    hops: 0
                }
            );
        }
        other => panic!("expected the JOIN, got {other:?}"),
    }
    assert!(matches!(
        effects[1],
        Effect::SetTimer {
            timer: PastryTimer::JoinRetry,
            ..
        }
    ));
    assert_eq!(p.phase(), Phase::Joining { attempts: 1 });
    let refused = run(&mut p, Time::ZERO, |p, cx| {
        p.on_request(
            cx,
            PastryRequest::Route {
                key: OverlayId(1),
                payload: vec![],
            },
        )
    });
    assert!(matches!(
        refused[..],
        [Effect::Deliver(PastryOutput::RouteRefused(
            RouteRefused::NotJoined
        ))]
    ));
}

#[test]
fn join_retries_are_bounded() {
    let config = PastryConfig {
        join_attempts_max: 2,
        ..PastryConfig::default()
    };
    let mut p = Pastry::new(config, test_handle(7), Some(NodeId(1)));
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    let retry = run(&mut p, Time::from_secs(5), |p, cx| {
        p.on_timer(cx, PastryTimer::JoinRetry)
    });
    assert!(matches!(
        &retry[0],
        Effect::Send {
            message: PastryMessage::JoinRequest { .. },
            ..
        }
    ));
    let gave_up = run(&mut p, Time::from_secs(10), |p, cx| {
        p.on_timer(cx, PastryTimer::JoinRetry)
    });
    assert!(matches!(
        gave_up[..],
        [Effect::Deliver(PastryOutput::JoinFailed { attempts: 2 })]
    ));
    assert_eq!(p.phase(), Phase::JoinFailed);
}

#[test]
fn a_lone_node_answers_a_join_with_its_state_and_its_leaf_set() {
    let mut p = first_node(1000);
    let joiner = test_handle(2000);
    let effects = run(&mut p, Time::from_millis(1), |p, cx| {
        p.on_message(
            cx,
            joiner.addr,
            PastryMessage::JoinRequest { joiner, hops: 0 },
        )
    });
    assert_eq!(effects.len(), 2);
    assert!(
        matches!(&effects[0], Effect::Send { to, message: PastryMessage::JoinState { sender, known }, .. }
        if *to == joiner.addr && *sender == p.handle() && known.is_empty())
    );
    assert!(
        matches!(&effects[1], Effect::Send { to, message: PastryMessage::JoinReply { root, leaves }, .. }
        if *to == joiner.addr && *root == p.handle() && leaves.is_empty())
    );
}

#[test]
fn join_state_from_someone_else_is_ignored() {
    let mut p = Pastry::new(PastryConfig::default(), test_handle(7), Some(NodeId(1)));
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    let forged = PastryMessage::JoinReply {
        root: test_handle(9),
        leaves: vec![test_handle(11)],
    };
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, NodeId(3), forged)
    });
    assert!(effects.is_empty());
    assert!(matches!(p.phase(), Phase::Joining { .. }));
}

#[test]
fn a_join_reply_completes_the_join_and_announces_the_node() {
    let mut p = Pastry::new(PastryConfig::default(), test_handle(7), Some(NodeId(1)));
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    let root = test_handle(1);
    let reply = PastryMessage::JoinReply {
        root,
        leaves: vec![test_handle(11)],
    };
    let effects = run(&mut p, Time::from_millis(3), |p, cx| {
        p.on_message(cx, root.addr, reply)
    });
    assert_eq!(p.phase(), Phase::Joined);
    let pings = count_pings(&effects);
    let announces = destinations(&effects, |m| matches!(m, PastryMessage::Announce { .. }));
    assert_eq!(pings, 2, "both new peers are probed for proximity");
    assert_eq!(announces, vec![NodeId(1), NodeId(11)]);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Deliver(PastryOutput::Joined {
            leaf_set_len: 2,
            ..
        })
    )));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::CancelTimer {
            timer: PastryTimer::JoinRetry
        }
    )));
}

#[test]
fn pong_measures_proximity_and_silence_means_failure_with_eager_repair() {
    let mut p = first_node(1000);
    for id in [900, 1100, 1200] {
        let peer = test_handle(id);
        run(&mut p, Time::ZERO, |p, cx| {
            p.on_message(cx, peer.addr, PastryMessage::Announce { node: peer })
        });
    }
    // 1100 answers its probe after 4 ms; 1200 and 900 stay silent.
    let pong = PastryMessage::Pong {
        sent_nanos: 0,
        certificate: None,
    };
    run(&mut p, Time::from_millis(4), |p, cx| {
        p.on_message(cx, NodeId(1100), pong)
    });
    let entry = p
        .routing_table()
        .entries()
        .find(|e| e.peer.id == OverlayId(1100))
        .copied();
    assert_eq!(entry.map(|e| e.proximity_us), Some(4_000));
    assert!(p.probe_pending_since(NodeId(900)).is_some());
    let effects = run(&mut p, Time::from_millis(3_500), |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    assert!(!p.leaf_set().contains(OverlayId(1200)));
    assert!(!p.leaf_set().contains(OverlayId(900)));
    assert!(p.leaf_set().contains(OverlayId(1100)));
    let failed: Vec<OverlayId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(PastryOutput::PeerFailed { id, was_leaf: true }) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![OverlayId(900), OverlayId(1200)]);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Send {
                to: NodeId(1100),
                message: PastryMessage::LeafSetRequest,
                ..
            }
        )),
        "repair asks the farthest live leaf"
    );
    // The repair is counted: one leaf-set request per failed leaf (gossip is not counted).
    let requests = effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Send {
                    message: PastryMessage::LeafSetRequest,
                    ..
                }
            )
        })
        .count();
    let tally = p.repair_tally();
    assert_eq!(tally.leaf_set_requests, 2);
    assert_eq!(requests, 3, "two repairs and one gossip request");
    // The answer is a repair reply, and the probes it causes are repair probes.
    let reply = PastryMessage::LeafSetReply {
        sender: test_handle(1100),
        leaves: vec![test_handle(1300), test_handle(800)],
    };
    let effects = run(&mut p, Time::from_millis(3_600), |p, cx| {
        p.on_message(cx, NodeId(1100), reply)
    });
    let tally = p.repair_tally();
    assert_eq!(tally.replies, 1);
    assert_eq!(tally.probes as usize, count_pings(&effects));
    assert!(tally.probes >= 2, "the two new nodes are probed");
    assert_eq!(tally.messages(), 2 + 1 + 2 * tally.probes);
}

#[test]
fn a_node_suspected_by_mistake_is_learnt_again_once_the_failure_memory_expires() {
    let mut p = first_node(1000);
    let slow = test_handle(1100);
    run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, slow.addr, PastryMessage::Announce { node: slow })
    });
    // 1100 does not answer in time (a busy machine): it is taken for failed.
    run(&mut p, Time::from_millis(3_500), |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    assert!(!p.leaf_set().contains(OverlayId(1100)));
    let gossip = |sender| PastryMessage::LeafSetReply {
        sender: test_handle(sender),
        leaves: vec![slow],
    };
    // Within the failure memory, gossip naming it does not bring it back.
    run(&mut p, Time::from_millis(4_000), |p, cx| {
        p.on_message(cx, NodeId(1300), gossip(1300))
    });
    assert!(!p.leaf_set().contains(OverlayId(1100)));
    // After it (the next maintenance tick forgets), gossip naming it does.
    let later = Time::from_millis(3_500 + PastryConfig::default().failed_memory_ms);
    run(&mut p, later, |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    run(&mut p, later, |p, cx| {
        p.on_message(cx, NodeId(1300), gossip(1300))
    });
    assert!(p.leaf_set().contains(OverlayId(1100)), "learnt again");
}

#[test]
fn an_unanswered_ping_is_sent_again_even_while_the_peer_talks_to_us() {
    let mut p = first_node(1000);
    let peer = test_handle(1100);
    run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, peer.addr, PastryMessage::Announce { node: peer })
    });
    // The pong is lost; the peer's own keep-alives keep arriving and restart its failure clock.
    let its_ping = PastryMessage::Ping {
        sender: Some(peer),
        sent_nanos: 0,
    };
    run(&mut p, Time::from_millis(900), |p, cx| {
        p.on_message(cx, peer.addr, its_ping.clone())
    });
    let pings_to_peer = |effects: &[Effect<Pastry>]| {
        effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Send { to, message: PastryMessage::Ping { .. }, .. } if *to == peer.addr)
            })
            .count()
    };
    let tick = run(&mut p, Time::from_millis(1_000), |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    assert_eq!(
        pings_to_peer(&tick),
        1,
        "asked again after a keep-alive period"
    );
    assert_eq!(
        p.probe_pending_since(peer.addr),
        Some(Time::from_millis(900))
    );
    // Within the period it is not asked twice.
    let early = run(&mut p, Time::from_millis(1_500), |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    assert_eq!(pings_to_peer(&early), 0);
}

#[test]
fn a_ping_from_an_unknown_joined_node_that_belongs_in_the_leaf_set_makes_it_known() {
    let config = PastryConfig {
        leaf_set_size: 2,
        ..PastryConfig::default()
    };
    let mut p = Pastry::new(config, test_handle(1000), None);
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    for id in [900, 1100] {
        admit(&mut p, test_handle(id));
    }
    let ping = |sender: Option<NodeHandle>| PastryMessage::Ping {
        sender,
        sent_nanos: 0,
    };
    // Farther than both leaves: answered, not learnt.
    let far = test_handle(1300);
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, far.addr, ping(Some(far)))
    });
    assert_eq!(count_pings(&effects), 0);
    // A node still joining does not name itself: answered, not learnt.
    let joining = test_handle(1050);
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, joining.addr, ping(None))
    });
    assert_eq!(count_pings(&effects), 0);
    assert!(!p.leaf_set().contains(joining.id));
    // A joined node nearer than the clockwise leaf: probed and taken into the leaf set.
    let near = test_handle(1050);
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, near.addr, ping(Some(near)))
    });
    assert_eq!(count_pings(&effects), 1, "the newcomer is probed");
    assert!(matches!(
        effects.last(),
        Some(Effect::Send {
            message: PastryMessage::Pong { .. },
            ..
        })
    ));
    assert_eq!(p.leaf_set().clockwise(), &[near]);
}

#[test]
fn table_repair_probes_only_entries_that_fill_an_empty_slot() {
    // Ids with distinct first hex digits: each is a row-0 entry of its own column.
    let digit = |d: u128, low: u128| (d << 124) | low;
    let mut p = first_node(digit(0, 1));
    let kept = test_handle(digit(1, 2));
    let failing = test_handle(digit(2, 3));
    for peer in [kept, failing] {
        admit(&mut p, peer);
    }
    assert_eq!(p.routing_table().len(), 2);
    // `failing` leaves: its slot (0, 2) is now empty, and row 0 is asked of `kept`.
    let effects = run(&mut p, Time::from_millis(10), |p, cx| {
        p.on_message(cx, failing.addr, PastryMessage::Leaving { node: failing })
    });
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Send { to, message: PastryMessage::RowRequest { row: 0 }, .. } if *to == kept.addr
    )));
    // The answer names a replacement for (0, 2), another node for the filled (0, 1), and one
    // for the empty (0, 3): only the two that fill empty slots are probed.
    let replacement = test_handle(digit(2, 7));
    let rival = test_handle(digit(1, 8));
    let filler = test_handle(digit(3, 9));
    let effects = run(&mut p, Time::from_millis(20), |p, cx| {
        p.on_message(
            cx,
            kept.addr,
            PastryMessage::RowReply {
                entries: vec![replacement, rival, filler],
            },
        )
    });
    let probed = destinations(&effects, |m| matches!(m, PastryMessage::Ping { .. }));
    assert_eq!(probed, vec![replacement.addr, filler.addr]);
    let tally = p.repair_tally();
    assert_eq!((tally.row_requests, tally.replies, tally.probes), (1, 1, 2));
}

#[test]
fn probes_outstanding_are_bounded() {
    let config = PastryConfig {
        probes_outstanding_max: 3,
        ..PastryConfig::default()
    };
    let mut p = Pastry::new(config, test_handle(1), None);
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    let known: Vec<NodeHandle> = (2..10).map(|i| test_handle((i << 100) | i)).collect();
    let sender = test_handle((99 << 100) | 99);
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_message(cx, sender.addr, PastryMessage::JoinState { sender, known })
    });
    let pings = count_pings(&effects);
    assert_eq!(pings, 3);
    assert!(p.check_invariants().is_ok());
}

#[test]
fn oversized_route_requests_are_refused_with_the_limit() {
    let mut p = first_node(1);
    let payload = vec![0u8; messages::ROUTE_PAYLOAD_BYTES_MAX + 1];
    let effects = run(&mut p, Time::ZERO, |p, cx| {
        p.on_request(
            cx,
            PastryRequest::Route {
                key: OverlayId(5),
                payload,
            },
        )
    });
    assert!(matches!(
        effects[..],
        [Effect::Deliver(PastryOutput::RouteRefused(RouteRefused::PayloadTooLarge { bytes })) ] if bytes == messages::ROUTE_PAYLOAD_BYTES_MAX + 1
    ));
}

/// Grow an overlay of `n` nodes, each joining through the live node nearest to it.
fn grow(n: usize, seed: u64) -> TestNet<Pastry> {
    let mut net = TestNet::new(seed, PastryConfig::default());
    net.grow(n);
    net
}

/// Route one message per node to a random key and check each is delivered at the true root.
fn assert_routes_reach_roots(net: &mut TestNet<Pastry>, seed: u64) -> (usize, f64) {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let live = net.live_sorted();
    let mut expected = Vec::new();
    for (k, h) in live.iter().enumerate() {
        let key = OverlayId(rng.gen());
        let payload = (k as u32).to_le_bytes().to_vec();
        net.request(
            h.addr,
            PastryRequest::Route {
                key,
                payload: payload.clone(),
            },
        );
        expected.push((key, payload, net.root_of(key)));
    }
    net.run_for(Duration::from_secs(2));
    let mut hops_total = 0usize;
    for (key, payload, root) in &expected {
        let delivered = net.outputs[root.addr.index()].iter().find_map(|o| match o {
            PastryOutput::Delivered {
                key: k,
                payload: p,
                hops,
                ..
            } if k == key && p == payload => Some(*hops),
            _ => None,
        });
        let hops = delivered
            .unwrap_or_else(|| panic!("key {key:?} was not delivered at its root {root:?}"));
        hops_total += usize::from(hops);
    }
    (expected.len(), hops_total as f64 / expected.len() as f64)
}

#[test]
fn an_overlay_grown_by_joins_has_exact_leaf_sets_and_routes_to_roots() {
    let mut net = grow(80, 11);
    let live = net.live_sorted();
    assert_eq!(live.len(), 80, "every node joined");
    for (rank, h) in live.iter().enumerate() {
        let node = net.nodes[h.addr.index()].as_ref().expect("live");
        let cw: Vec<OverlayId> = node.leaf_set().clockwise().iter().map(|p| p.id).collect();
        let expected: Vec<OverlayId> = (1..=8).map(|k| live[(rank + k) % live.len()].id).collect();
        assert_eq!(cw, expected, "clockwise leaves of rank {rank}");
        assert!(
            node.routing_table().len() >= 15,
            "row 0 is nearly full at 80 nodes"
        );
    }
    let (routed, mean_hops) = assert_routes_reach_roots(&mut net, 5);
    assert_eq!(routed, 80);
    assert!(mean_hops < 2.5, "mean hops {mean_hops}");
    // Join cost: the Pastry paper quotes about 3 x 2^b = 48 messages per join; here JOIN hops,
    // their state, the reply and the joiner's announcements to every node it knows.
    let per_join = net.join_messages_sent as f64 / 80.0;
    eprintln!("80-node overlay: {per_join:.1} join messages per node, mean {mean_hops:.2} hops");
    assert!(
        per_join > 10.0 && per_join < 3.0 * 48.0,
        "{per_join} join messages per node"
    );
}

#[test]
fn crashed_nodes_are_detected_and_leaf_sets_repaired() {
    let mut net = grow(60, 21);
    let victims: Vec<NodeId> = net
        .live_sorted()
        .iter()
        .step_by(7)
        .map(|h| h.addr)
        .collect();
    for v in &victims {
        net.crash(*v);
    }
    net.run_for(Duration::from_secs(10));
    let live = net.live_sorted();
    assert_eq!(live.len(), 60 - victims.len());
    let mut failures_seen = 0;
    for (rank, h) in live.iter().enumerate() {
        let node = net.nodes[h.addr.index()].as_ref().expect("live");
        let cw: Vec<OverlayId> = node.leaf_set().clockwise().iter().map(|p| p.id).collect();
        let expected: Vec<OverlayId> = (1..=8).map(|k| live[(rank + k) % live.len()].id).collect();
        assert_eq!(cw, expected, "repaired clockwise leaves of rank {rank}");
        failures_seen += net.outputs[h.addr.index()]
            .iter()
            .filter(|o| matches!(o, PastryOutput::PeerFailed { .. }))
            .count();
    }
    assert!(
        failures_seen >= victims.len() * 8,
        "failures were detected by keep-alives ({failures_seen})"
    );
    assert_routes_reach_roots(&mut net, 9);
}

#[test]
fn a_graceful_departure_is_repaired_without_waiting_for_timeouts() {
    let mut net = grow(30, 31);
    let leaving = net.live_sorted()[10];
    net.request(leaving.addr, PastryRequest::Leave);
    assert!(net.outputs[leaving.addr.index()].contains(&PastryOutput::Left));
    // Well under the failure timeout: the others learn from the Leaving message.
    net.run_for(Duration::from_millis(500));
    let live: Vec<NodeHandle> = net.live_sorted();
    assert_eq!(live.len(), 29);
    for h in &live {
        let node = net.nodes[h.addr.index()].as_ref().expect("live");
        assert!(!node.leaf_set().contains(leaving.id));
        assert!(!node.routing_table().contains(leaving.id));
    }
    assert_routes_reach_roots(&mut net, 4);
}

#[test]
fn kbr_local_calls_answer_from_the_leaf_set() {
    let net = grow(40, 41);
    let live = net.live_sorted();
    let h = live[20];
    let node = net.nodes[h.addr.index()].as_ref().expect("live");
    assert_eq!(node.neighbor_set().len(), 16);
    // replica_set for our own id starts with ourselves, then the nearest leaves.
    let replicas = node.replica_set(h.id, 3);
    assert_eq!(replicas[0], h);
    let mut by_distance: Vec<OverlayId> =
        live.iter().map(|l| l.id).filter(|id| *id != h.id).collect();
    by_distance.sort_by_key(|id| h.id.ring_distance(*id));
    let got: Vec<OverlayId> = replicas[1..].iter().map(|r| r.id).collect();
    assert_eq!(got, by_distance[..2].to_vec());
    // range(me, 1): the keys we are root of lie between the midpoints to our ring neighbours.
    let (low, high) = node.range(h.id, 1).expect("known");
    assert!(low.clockwise_to(h.id) <= low.clockwise_to(high));
    assert!(live[19].id.clockwise_to(low) < live[19].id.clockwise_to(h.id));
    assert!(h.id.clockwise_to(high) < h.id.clockwise_to(live[21].id));
    assert_eq!(node.range(h.id, 9), None, "beyond the leaf set");
    // local_lookup: the first candidate is the routing decision.
    let key = live[3].id;
    let hops = node.local_lookup(key, 3);
    assert!(!hops.is_empty() && hops.len() <= 3);
    assert!(
        matches!(crate::route::next_hop(node, key), NextHop::Forward { peer, .. } if peer == hops[0])
    );
}

fn authority() -> crate::certificate::CertificateAuthority {
    crate::certificate::CertificateAuthority::new(stockade_crypto::ed25519::SigningKey::from_bytes(
        [7; 32],
    ))
}

fn certified_config(ca: &crate::certificate::CertificateAuthority) -> PastryConfig {
    PastryConfig {
        certificate_authority: Some(ca.public_key()),
        ..PastryConfig::default()
    }
}

#[test]
fn with_certified_ids_a_peer_enters_the_tables_only_after_proving_its_id() {
    let ca = authority();
    let me = test_handle(1000);
    let mut p = Pastry::new(certified_config(&ca), me, None)
        .with_certificate(ca.certify(me.id, me.addr, [1; 32]));
    run(&mut p, Time::ZERO, |p, cx| p.on_start(cx));
    let honest = test_handle(1100);
    let liar = test_handle(1200);
    for peer in [honest, liar] {
        let effects = run(&mut p, Time::ZERO, |p, cx| {
            p.on_message(cx, peer.addr, PastryMessage::Announce { node: peer })
        });
        assert_eq!(count_pings(&effects), 1, "the newcomer is probed");
    }
    assert!(
        p.leaf_set().is_empty(),
        "nobody is admitted before proving its id"
    );
    let good = Some(ca.certify(honest.id, honest.addr, [2; 32]));
    let effects = run(&mut p, Time::from_millis(2), |p, cx| {
        p.on_message(
            cx,
            honest.addr,
            PastryMessage::Pong {
                sent_nanos: 0,
                certificate: good,
            },
        )
    });
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Charge(_))),
        "verification is charged"
    );
    assert!(p.leaf_set().contains(honest.id));
    // The liar shows a valid certificate, but for another id.
    let stolen = Some(ca.certify(OverlayId(1250), liar.addr, [3; 32]));
    let effects = run(&mut p, Time::from_millis(2), |p, cx| {
        p.on_message(
            cx,
            liar.addr,
            PastryMessage::Pong {
                sent_nanos: 0,
                certificate: stolen,
            },
        )
    });
    assert!(matches!(
        effects[..],
        [
            Effect::Charge(_),
            Effect::Deliver(PastryOutput::PeerRejected {
                reason: crate::certificate::CertificateError::WrongIdentity,
                ..
            })
        ]
    ));
    assert!(!p.leaf_set().contains(liar.id));
    // Answering a probe carries our own certificate.
    let effects = run(&mut p, Time::from_millis(3), |p, cx| {
        p.on_message(
            cx,
            honest.addr,
            PastryMessage::Ping {
                sender: Some(honest),
                sent_nanos: 5,
            },
        )
    });
    assert!(
        matches!(&effects[..], [Effect::Send { message: PastryMessage::Pong { certificate: Some(c), .. }, .. }] if c.id == me.id)
    );
}

/// The leaf sets of every live node are exactly the L/2 nearest on each side.
fn assert_exact_leaf_sets(net: &TestNet<Pastry>, what: &str) {
    let live = net.live_sorted();
    let n = live.len();
    for (rank, h) in live.iter().enumerate() {
        let node = net.nodes[h.addr.index()].as_ref().expect("live");
        let cw: Vec<OverlayId> = node.leaf_set().clockwise().iter().map(|p| p.id).collect();
        let ccw: Vec<OverlayId> = node
            .leaf_set()
            .counter_clockwise()
            .iter()
            .map(|p| p.id)
            .collect();
        let expected_cw: Vec<OverlayId> = (1..=8).map(|k| live[(rank + k) % n].id).collect();
        let expected_ccw: Vec<OverlayId> = (1..=8).map(|k| live[(rank + n - k) % n].id).collect();
        assert_eq!(cw, expected_cw, "{what}: clockwise leaves of rank {rank}");
        assert_eq!(
            ccw, expected_ccw,
            "{what}: counter-clockwise leaves of rank {rank}"
        );
    }
}

#[test]
fn a_certified_overlay_converges_to_exact_leaf_sets_despite_lost_messages() {
    // UDP loses datagrams. A lost pong must not leave a peer unverified for good (with certified
    // ids only a pong admits a peer), and a node that missed an announcement must still learn of
    // the new leaf. Both happened to the real daemons under load (issue 5).
    for seed in 61..71 {
        let ca = authority();
        // A join gives up after `join_attempts_max` attempts; at 5% loss an attempt (three or
        // four messages) fails about one time in seven, so 5 attempts all fail about once in
        // 10^5 joins, and seed 65 has one such join. This test is about leaf sets, not that.
        let config = PastryConfig {
            join_attempts_max: 10,
            ..certified_config(&ca)
        };
        let mut net = TestNet::with_factory(
            seed,
            Box::new(move |me, bootstrap| {
                Pastry::new(config.clone(), me, bootstrap)
                    .with_certificate(ca.certify(me.id, me.addr, [0; 32]))
            }),
        );
        net.loss = 0.05;
        net.grow(40);
        net.run_for(Duration::from_secs(30));
        assert!(net.messages_lost > 100, "{} lost", net.messages_lost);
        assert_eq!(net.live_sorted().len(), 40, "every node joined");
        assert_exact_leaf_sets(&net, &format!("seed {seed} after 5% loss"));
    }
}

#[test]
fn a_certified_overlay_routes_correctly_and_keeps_a_forger_out() {
    let ca = authority();
    let rogue = crate::certificate::CertificateAuthority::new(
        stockade_crypto::ed25519::SigningKey::from_bytes([8; 32]),
    );
    let config = certified_config(&ca);
    let forger = NodeId(17);
    let mut net = TestNet::with_factory(
        51,
        Box::new(move |me, bootstrap| {
            let signer = if me.addr == forger { &rogue } else { &ca };
            Pastry::new(config.clone(), me, bootstrap)
                .with_certificate(signer.certify(me.id, me.addr, [0; 32]))
        }),
    );
    net.grow(30);
    let forger_id = net.nodes[forger.index()].as_ref().expect("up").handle().id;
    for (i, node) in net.nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        if i != forger.index() {
            assert!(
                !node.leaf_set().contains(forger_id) && !node.routing_table().contains(forger_id)
            );
        }
    }
    let rejections = net
        .outputs
        .iter()
        .flatten()
        .filter(|o| matches!(o, PastryOutput::PeerRejected { id, .. } if *id == forger_id))
        .count();
    assert!(
        rejections > 0,
        "honest nodes saw and refused the forged certificate"
    );
    // Route among the honest nodes only.
    net.crash(forger);
    let live = net.live_sorted();
    for (rank, h) in live.iter().enumerate() {
        let node = net.nodes[h.addr.index()].as_ref().expect("live");
        let cw: Vec<OverlayId> = node.leaf_set().clockwise().iter().map(|p| p.id).collect();
        let expected: Vec<OverlayId> = (1..=8).map(|k| live[(rank + k) % live.len()].id).collect();
        assert_eq!(cw, expected, "certified leaf set of rank {rank}");
    }
    assert_routes_reach_roots(&mut net, 8);
}

#[test]
fn a_routed_message_is_acknowledged_and_rerouted_when_its_next_hop_is_silent() {
    let mut p = first_node(1000);
    for id in [1100, 1200] {
        let peer = test_handle(id);
        run(&mut p, Time::ZERO, |p, cx| {
            p.on_message(cx, peer.addr, PastryMessage::Announce { node: peer })
        });
        let pong = PastryMessage::Pong {
            sent_nanos: 0,
            certificate: None,
        };
        run(&mut p, Time::from_millis(1), |p, cx| {
            p.on_message(cx, peer.addr, pong)
        });
    }
    // Receiving a routed message acknowledges the hop before anything else.
    let incoming = PastryMessage::Route {
        key: OverlayId(1001),
        origin: test_handle(5),
        hops: 2,
        seq: 9,
        payload: vec![],
    };
    let effects = run(&mut p, Time::from_millis(2), |p, cx| {
        p.on_message(cx, NodeId(5), incoming)
    });
    assert!(matches!(
        &effects[0],
        Effect::Send {
            to: NodeId(5),
            message: PastryMessage::RouteAck { seq: 9 },
            ..
        }
    ));
    assert!(matches!(
        &effects[1],
        Effect::Deliver(PastryOutput::Delivered { hops: 2, .. })
    ));
    // A message for 1190 goes to 1200, which never acknowledges it.
    let key = OverlayId(1190);
    let effects = run(&mut p, Time::from_millis(3), |p, cx| {
        p.on_request(
            cx,
            PastryRequest::Route {
                key,
                payload: b"m".to_vec(),
            },
        )
    });
    assert!(matches!(
        &effects[..],
        [Effect::Send {
            to: NodeId(1200),
            message: PastryMessage::Route {
                seq: 0,
                hops: 1,
                ..
            },
            ..
        }]
    ));
    // 1100 acknowledges its keep-alives, 1200 stays silent: the message is rerouted to 1100.
    let effects = run(&mut p, Time::from_millis(1_500), |p, cx| {
        p.on_timer(cx, PastryTimer::Maintenance)
    });
    assert!(effects.iter().any(|e| matches!(e, Effect::Deliver(PastryOutput::PeerFailed { id, .. }) if *id == OverlayId(1200))));
    let rerouted = effects.iter().any(|e| {
        matches!(e, Effect::Send { to: NodeId(1100), message: PastryMessage::Route { key: k, hops: 1, .. }, .. } if *k == key)
    });
    assert!(rerouted, "the message went on through the next best node");
    assert!(!p.leaf_set().contains(OverlayId(1200)));
}
