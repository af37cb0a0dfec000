//! Service tests on the test network: tickets come back on exactly one output each, a put through
//! one node is found through another, a publish reaches exactly the subscribers, an anycast
//! reaches exactly one, refusals, the anycast bound and deadline are reported against their
//! ticket, and the message codec round-trips. One lone node is driven by exact effects.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::wire::DecodeLimits;
use stockade_core::{Effect, NodeId, Time};

use super::*;
use crate::protocol::testnet::{OverlayNode, TestNet};
use crate::protocol::{Pastry, PastryMessage};

impl OverlayNode for OverlayService {
    fn overlay_handle(&self) -> NodeHandle {
        self.dht().pastry().handle()
    }
    fn is_joined(&self) -> bool {
        let status = self.status();
        status.dht_phase == Phase::Joined && status.multicast_phase == Phase::Joined
    }
    fn is_join_message(message: &ServiceMessage) -> bool {
        let is_join = <Pastry as OverlayNode>::is_join_message;
        match message {
            ServiceMessage::Dht(PastMessage::Overlay(m)) => is_join(m),
            ServiceMessage::Multicast(ScribeMessage::Overlay(m)) => is_join(m),
            _ => false,
        }
    }
}

fn service_net(n: usize, seed: u64) -> TestNet<OverlayService> {
    service_net_with(n, seed, ServiceConfig::default())
}

fn service_net_with(n: usize, seed: u64, config: ServiceConfig) -> TestNet<OverlayService> {
    let mut net = TestNet::with_factory(
        seed,
        Box::new(move |me, bootstrap| OverlayService::new(config.clone(), me, bootstrap, None)),
    );
    net.grow(n);
    net
}

fn outputs_with_ticket(
    net: &TestNet<OverlayService>,
    node: NodeId,
    wanted: u64,
) -> Vec<ServiceOutput> {
    net.outputs[node.index()]
        .iter()
        .filter(|o| match o {
            ServiceOutput::Put { ticket, .. }
            | ServiceOutput::Get { ticket, .. }
            | ServiceOutput::Accepted { ticket, .. }
            | ServiceOutput::Anycast { ticket, .. }
            | ServiceOutput::Status { ticket, .. } => *ticket == wanted,
            ServiceOutput::Received { .. } | ServiceOutput::AnycastReceived { .. } => false,
        })
        .cloned()
        .collect()
}

#[test]
fn a_put_through_one_node_is_found_through_another_under_the_callers_tickets() {
    let mut net = service_net(12, 7);
    let object = StoredObject::content_hashed(b"stockade overlay value".to_vec());
    let key = object.key;
    net.request(
        NodeId(3),
        ServiceRequest::Put {
            ticket: 40,
            object: object.clone(),
        },
    );
    net.run_for(Duration::from_secs(2));
    let put = outputs_with_ticket(&net, NodeId(3), 40);
    assert_eq!(put.len(), 1, "one answer per ticket: {put:?}");
    assert!(
        matches!(put[0], ServiceOutput::Put { key: k, outcome: PutOutcome::Stored { replicas: 4, complete: true }, .. } if k == key),
        "{put:?}"
    );
    // A second put and a get on another node: tickets are the callers', not the DHT's ids.
    net.request(NodeId(8), ServiceRequest::Get { ticket: 7, key });
    net.request(
        NodeId(8),
        ServiceRequest::Get {
            ticket: 9,
            key: OverlayId(12345),
        },
    );
    net.run_for(Duration::from_secs(2));
    let found = outputs_with_ticket(&net, NodeId(8), 7);
    assert_eq!(
        found,
        vec![ServiceOutput::Get {
            ticket: 7,
            key,
            object: Some(object)
        }]
    );
    let missing = outputs_with_ticket(&net, NodeId(8), 9);
    assert!(
        matches!(
            missing.as_slice(),
            [ServiceOutput::Get { object: None, .. }]
        ),
        "{missing:?}"
    );
    let replicas: usize = net
        .nodes
        .iter()
        .flatten()
        .filter(|n| n.dht().store().get(key).is_some())
        .count();
    assert_eq!(replicas, 4, "k replicas hold the object");
}

#[test]
fn a_publish_reaches_exactly_the_subscribers() {
    let mut net = service_net(12, 11);
    let topic = OverlayId(0x77 << 120);
    for (ticket, node) in [(1, 2), (2, 5), (3, 10)] {
        net.request(NodeId(node), ServiceRequest::Subscribe { ticket, topic });
    }
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        outputs_with_ticket(&net, NodeId(5), 2),
        vec![ServiceOutput::Accepted {
            ticket: 2,
            result: Ok(())
        }]
    );
    net.request(
        NodeId(7),
        ServiceRequest::Publish {
            ticket: 4,
            topic,
            data: b"hello".to_vec(),
        },
    );
    net.run_for(Duration::from_secs(2));
    for node in 0..12u32 {
        let got = net.outputs[node as usize]
            .iter()
            .filter(|o| matches!(o, ServiceOutput::Received { topic: t, data } if *t == topic && data == b"hello"))
            .count();
        let subscriber = [2, 5, 10].contains(&node);
        assert_eq!(got, usize::from(subscriber), "node {node}");
    }
    net.request(NodeId(5), ServiceRequest::Status { ticket: 99 });
    net.run_for(Duration::from_millis(10));
    let status = outputs_with_ticket(&net, NodeId(5), 99);
    let [ServiceOutput::Status { status, .. }] = status.as_slice() else {
        panic!("one status answer: {status:?}");
    };
    assert_eq!(status.subscribed_topics, 1);
    assert_eq!(
        status.dht_leaf_set_len, 11,
        "every other node in a 12-node overlay"
    );
    assert_eq!(status.multicast_leaf_set_len, 11);
    assert_eq!(status.leaf_set_size, 16);
}

#[test]
fn refusals_come_back_against_their_ticket() {
    let mut net = service_net(3, 3);
    let too_big = vec![0u8; crate::scribe::messages::SCRIBE_DATA_BYTES_MAX + 1];
    net.request(
        NodeId(1),
        ServiceRequest::Publish {
            ticket: 5,
            topic: OverlayId(1),
            data: too_big,
        },
    );
    let bad = StoredObject {
        data: b"not what the key says".to_vec(),
        ..StoredObject::content_hashed(b"original".to_vec())
    };
    net.request(
        NodeId(1),
        ServiceRequest::Put {
            ticket: 6,
            object: bad,
        },
    );
    net.run_for(Duration::from_millis(10));
    assert!(matches!(
        outputs_with_ticket(&net, NodeId(1), 5).as_slice(),
        [ServiceOutput::Accepted {
            result: Err(ScribeError::DataTooLarge { .. }),
            ..
        }]
    ));
    assert!(matches!(
        outputs_with_ticket(&net, NodeId(1), 6).as_slice(),
        [ServiceOutput::Put {
            outcome: PutOutcome::Failed(PutError::Invalid(_)),
            ..
        }]
    ));
}

#[test]
fn service_messages_round_trip_and_unknown_tags_are_refused() {
    let messages = [
        ServiceMessage::Dht(PastMessage::Overlay(PastryMessage::Ping {
            sender: Some(crate::handle::test_handle(9)),
            sent_nanos: 5,
        })),
        ServiceMessage::Multicast(ScribeMessage::Overlay(PastryMessage::LeafSetRequest)),
    ];
    for message in messages {
        let bytes = message.to_bytes();
        assert_eq!(
            ServiceMessage::from_bytes(&bytes, DecodeLimits::MESSAGE),
            Ok(message)
        );
    }
    assert!(matches!(
        ServiceMessage::from_bytes(&[9, 0], DecodeLimits::MESSAGE),
        Err(DecodeError::UnknownTag {
            what: "ServiceMessage",
            tag: 9
        })
    ));
}

const ANYCAST_TOPIC: OverlayId = OverlayId(0x5a << 120);

/// Subscribe `nodes` to [`ANYCAST_TOPIC`] and let their SUBSCRIBE routes build the tree.
fn subscribe_all(net: &mut TestNet<OverlayService>, nodes: &[u32]) {
    for (ticket, node) in nodes.iter().enumerate() {
        let ticket = 1_000 + ticket as u64;
        let topic = ANYCAST_TOPIC;
        net.request(NodeId(*node), ServiceRequest::Subscribe { ticket, topic });
    }
    net.run_for(Duration::from_secs(2));
}

fn anycast(net: &mut TestNet<OverlayService>, from: u32, ticket: u64, data: &[u8]) {
    let request = ServiceRequest::Anycast {
        ticket,
        topic: ANYCAST_TOPIC,
        data: data.to_vec(),
    };
    net.request(NodeId(from), request);
}

/// The nodes that got `data` as an anycast.
fn anycast_receivers(net: &TestNet<OverlayService>, data: &[u8]) -> Vec<u32> {
    (0..net.outputs.len() as u32)
        .filter(|n| {
            net.outputs[*n as usize].iter().any(|o| {
                matches!(o, ServiceOutput::AnycastReceived { topic, data: d } if *topic == ANYCAST_TOPIC && d == data)
            })
        })
        .collect()
}

#[test]
fn an_anycast_reaches_exactly_one_subscriber_and_its_sender_learns_which() {
    let mut net = service_net(12, 21);
    let subscribers = [2, 5, 10];
    subscribe_all(&mut net, &subscribers);
    anycast(&mut net, 7, 30, b"job");
    net.run_for(Duration::from_secs(2));
    let receivers = anycast_receivers(&net, b"job");
    assert_eq!(
        receivers.len(),
        1,
        "exactly one node took it: {receivers:?}"
    );
    assert!(subscribers.contains(&receivers[0]), "{receivers:?}");
    let answer = outputs_with_ticket(&net, NodeId(7), 30);
    assert_eq!(
        answer,
        vec![ServiceOutput::Anycast {
            ticket: 30,
            topic: ANYCAST_TOPIC,
            outcome: AnycastOutcome::Accepted {
                by: net.nodes[receivers[0] as usize]
                    .as_ref()
                    .expect("live")
                    .status()
                    .me
            }
        }]
    );
    let multicasts = net
        .outputs
        .iter()
        .flatten()
        .filter(|o| matches!(o, ServiceOutput::Received { .. }))
        .count();
    assert_eq!(multicasts, 0, "an anycast is not delivered as a multicast");
}

#[test]
fn an_anycast_without_subscribers_or_too_large_is_answered_with_why() {
    let mut net = service_net(8, 22);
    anycast(&mut net, 3, 40, b"nobody listens");
    let too_big = vec![0u8; crate::scribe::messages::SCRIBE_DATA_BYTES_MAX + 1];
    anycast(&mut net, 3, 41, &too_big);
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        outputs_with_ticket(&net, NodeId(3), 40),
        vec![ServiceOutput::Anycast {
            ticket: 40,
            topic: ANYCAST_TOPIC,
            outcome: AnycastOutcome::NoSubscriber
        }]
    );
    assert_eq!(
        outputs_with_ticket(&net, NodeId(3), 41),
        vec![ServiceOutput::Anycast {
            ticket: 41,
            topic: ANYCAST_TOPIC,
            outcome: AnycastOutcome::Failed(AnycastError::Refused(ScribeError::DataTooLarge {
                bytes: crate::scribe::messages::SCRIBE_DATA_BYTES_MAX + 1
            }))
        }]
    );
    assert!(anycast_receivers(&net, b"nobody listens").is_empty());
}

#[test]
fn anycasts_beyond_the_bound_are_refused_and_a_lost_search_times_out() {
    let config = ServiceConfig {
        anycasts_pending_max: 2,
        anycast_timeout_ms: 1_000,
        ..ServiceConfig::default()
    };
    let mut net = service_net_with(12, 23, config);
    let lone_subscriber = 5;
    subscribe_all(&mut net, &[lone_subscriber]);
    // The only member dies; until Pastry notices, the tree still leads every search to it, and
    // the search sent there is lost.
    net.crash(NodeId(lone_subscriber));
    for ticket in [50, 51, 52] {
        anycast(&mut net, 7, ticket, b"into the void");
    }
    assert_eq!(
        outputs_with_ticket(&net, NodeId(7), 52),
        vec![ServiceOutput::Anycast {
            ticket: 52,
            topic: ANYCAST_TOPIC,
            outcome: AnycastOutcome::Failed(AnycastError::Busy { pending_max: 2 })
        }],
        "the third is refused at once"
    );
    net.run_for(Duration::from_millis(1_500));
    for ticket in [50, 51] {
        assert_eq!(
            outputs_with_ticket(&net, NodeId(7), ticket),
            vec![ServiceOutput::Anycast {
                ticket,
                topic: ANYCAST_TOPIC,
                outcome: AnycastOutcome::Failed(AnycastError::TimedOut { timeout_ms: 1_000 })
            }],
            "ticket {ticket}"
        );
    }
    anycast(&mut net, 7, 53, b"room again");
    assert!(
        outputs_with_ticket(&net, NodeId(7), 53).is_empty(),
        "accepted: the table has room again, and the answer is not in yet"
    );
}

/// Run `f` on `node` with a hand-built context; its effects.
fn run(
    node: &mut OverlayService,
    f: impl FnOnce(&mut OverlayService, &mut Context<'_, OverlayService>),
) -> Vec<Effect<OverlayService>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let me = node.status().me.addr;
    let mut cx = Context::new(Time::ZERO, me, &mut rng, &mut tokens, Vec::new());
    f(node, &mut cx);
    cx.into_effects()
}

/// The effects an anycast's bookkeeping shows: its deadline, and outputs.
fn anycast_effects(effects: &[Effect<OverlayService>]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimer {
                timer: timer @ ServiceTimer::AnycastDeadline(_),
                at,
            } => Some(format!("set {timer:?} at {at:?}")),
            Effect::CancelTimer {
                timer: timer @ ServiceTimer::AnycastDeadline(_),
            } => Some(format!("cancel {timer:?}")),
            Effect::Deliver(output) => Some(format!("deliver {output:?}")),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lone_subscriber_takes_its_own_anycast_with_exact_effects() {
    let me = crate::handle::test_handle(3);
    let mut node = OverlayService::new(ServiceConfig::default(), me, None, None);
    run(&mut node, |p, cx| p.on_start(cx));
    let subscribe = ServiceRequest::Subscribe {
        ticket: 1,
        topic: ANYCAST_TOPIC,
    };
    run(&mut node, |p, cx| p.on_request(cx, subscribe));
    let request = ServiceRequest::Anycast {
        ticket: 2,
        topic: ANYCAST_TOPIC,
        data: b"mine".to_vec(),
    };
    let effects = run(&mut node, |p, cx| p.on_request(cx, request));
    // The request number is the first draw of `run`'s seeded generator.
    let number = rand::RngCore::next_u64(&mut ChaCha8Rng::seed_from_u64(1));
    let deadline = Time::ZERO + Duration::from_millis(ServiceConfig::default().anycast_timeout_ms);
    assert_eq!(
        anycast_effects(&effects),
        vec![
            format!(
                "set {:?} at {deadline:?}",
                ServiceTimer::AnycastDeadline(number)
            ),
            format!(
                "deliver {:?}",
                ServiceOutput::AnycastReceived {
                    topic: ANYCAST_TOPIC,
                    data: b"mine".to_vec()
                }
            ),
            format!("cancel {:?}", ServiceTimer::AnycastDeadline(number)),
            format!(
                "deliver {:?}",
                ServiceOutput::Anycast {
                    ticket: 2,
                    topic: ANYCAST_TOPIC,
                    outcome: AnycastOutcome::Accepted { by: me }
                }
            ),
        ]
    );
    // The deadline of an answered anycast is stale: it reports nothing.
    let late = run(&mut node, |p, cx| {
        p.on_timer(cx, ServiceTimer::AnycastDeadline(number))
    });
    assert!(anycast_effects(&late).is_empty(), "{late:?}");
}
