//! Service tests on the test network: tickets come back on exactly one output each, a put through
//! one node is found through another, a publish reaches exactly the subscribers, refusals are
//! reported against their ticket, and the message codec round-trips.

use std::time::Duration;

use stockade_core::wire::DecodeLimits;
use stockade_core::NodeId;

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
    let config = ServiceConfig::default();
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
            | ServiceOutput::Status { ticket, .. } => *ticket == wanted,
            ServiceOutput::Received { .. } => false,
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
