//! Scribe tests on the test network: tree building, multicast to exactly the members, anycast
//! with a predicate, leaving, and tree repair after a forwarder crashes.

use std::time::Duration;

use stockade_core::NodeId;

use super::*;
use crate::protocol::testnet::{OverlayNode, TestNet};

impl OverlayNode for Scribe {
    fn overlay_handle(&self) -> NodeHandle {
        self.pastry().handle()
    }
    fn is_joined(&self) -> bool {
        self.pastry().phase() == Phase::Joined
    }
    fn is_join_message(message: &ScribeMessage) -> bool {
        matches!(message, ScribeMessage::Overlay(m) if <Pastry as OverlayNode>::is_join_message(m))
    }
}

const TOPIC: OverlayId = OverlayId(0x5c81_be00_0000_0000_0000_0000_0000_0000);

fn scribe_net(n: usize, seed: u64) -> TestNet<Scribe> {
    let config = ScribeConfig::default();
    let mut net = TestNet::with_factory(
        seed,
        Box::new(move |me, bootstrap| Scribe::new(config.clone(), me, bootstrap)),
    );
    net.grow(n);
    net
}

fn received(net: &TestNet<Scribe>, node: NodeId, data: &[u8]) -> usize {
    net.outputs[node.index()]
        .iter()
        .filter(|o| matches!(o, ScribeOutput::Received { topic, data: d } if *topic == TOPIC && d == data))
        .count()
}

fn members(n: u32) -> Vec<NodeId> {
    (0..n).filter(|i| i % 4 == 1).map(NodeId).collect()
}

fn join_members(net: &mut TestNet<Scribe>, members: &[NodeId]) {
    for (k, m) in members.iter().enumerate() {
        let label = if k == 3 {
            b"gpu:big".to_vec()
        } else {
            b"cpu".to_vec()
        };
        net.request(
            *m,
            ScribeRequest::Join {
                topic: TOPIC,
                label,
            },
        );
    }
    net.run_for(Duration::from_secs(2));
}

fn multicast_reaches_exactly(
    net: &mut TestNet<Scribe>,
    from: NodeId,
    members: &[NodeId],
    data: &[u8],
) {
    net.request(
        from,
        ScribeRequest::Multicast {
            topic: TOPIC,
            data: data.to_vec(),
        },
    );
    net.run_for(Duration::from_secs(2));
    for i in 0..net.nodes.len() {
        let node = NodeId(i as u32);
        if net.nodes[i].is_none() {
            continue;
        }
        let expected = usize::from(members.contains(&node));
        assert_eq!(
            received(net, node, data),
            expected,
            "node {node:?} got the multicast {expected} time(s)"
        );
    }
}

#[test]
fn multicast_reaches_every_member_once_along_a_tree_rooted_at_the_topic_root() {
    let mut net = scribe_net(60, 8);
    let members = members(60);
    join_members(&mut net, &members);
    let root = net.root_of(TOPIC);
    let root_state = net.nodes[root.addr.index()]
        .as_ref()
        .and_then(|s| s.topic(TOPIC))
        .cloned();
    assert!(
        root_state.is_some_and(|s| s.root && !s.children.is_empty()),
        "the numerically closest node is the root"
    );
    let forwarders = net
        .nodes
        .iter()
        .flatten()
        .filter(|s| s.topic(TOPIC).is_some_and(|t| !t.member && !t.root))
        .count();
    assert!(
        forwarders > 0,
        "non-members on join routes forward for the tree"
    );
    multicast_reaches_exactly(&mut net, NodeId(2), &members, b"news 1");
}

#[test]
fn anycast_finds_a_member_matching_the_predicate_by_depth_first_search() {
    let mut net = scribe_net(60, 9);
    let members = members(60);
    join_members(&mut net, &members);
    let gpu_member = members[3];
    net.request(
        NodeId(4),
        ScribeRequest::Anycast {
            request: 1,
            topic: TOPIC,
            label_prefix: b"gpu".to_vec(),
            data: b"job".to_vec(),
        },
    );
    // The search walks the tree one network hop per step.
    net.run_for(Duration::from_secs(10));
    let chosen: Vec<NodeId> = (0..60u32)
        .map(NodeId)
        .filter(|n| {
            net.outputs[n.index()]
                .iter()
                .any(|o| matches!(o, ScribeOutput::AnycastReceived { .. }))
        })
        .collect();
    assert_eq!(chosen, vec![gpu_member]);
    let answered = net.outputs[4]
        .iter()
        .any(|o| matches!(o, ScribeOutput::AnycastAnswered { request: 1, by, .. } if by.addr == gpu_member));
    assert!(answered);
    net.request(
        NodeId(6),
        ScribeRequest::Anycast {
            request: 2,
            topic: TOPIC,
            label_prefix: b"tpu".to_vec(),
            data: vec![],
        },
    );
    // A failing search walks the whole tree, one network hop per step.
    net.run_for(Duration::from_secs(10));
    assert!(net.outputs[6].contains(&ScribeOutput::AnycastFailed {
        request: 2,
        topic: TOPIC
    }));
    let empty_topic = OverlayId(42);
    net.request(
        NodeId(6),
        ScribeRequest::Anycast {
            request: 3,
            topic: empty_topic,
            label_prefix: vec![],
            data: vec![],
        },
    );
    net.run_for(Duration::from_secs(2));
    assert!(net.outputs[6].contains(&ScribeOutput::AnycastFailed {
        request: 3,
        topic: empty_topic
    }));
}

#[test]
fn a_member_that_leaves_gets_nothing_more_and_its_branch_is_pruned() {
    let mut net = scribe_net(40, 10);
    let mut members = members(40);
    join_members(&mut net, &members);
    let leaving = members.remove(0);
    net.request(leaving, ScribeRequest::Leave { topic: TOPIC });
    net.run_for(Duration::from_secs(1));
    let state = net.nodes[leaving.index()]
        .as_ref()
        .and_then(|s| s.topic(TOPIC))
        .cloned();
    assert!(
        state.is_none_or(|s| !s.children.is_empty()),
        "a leaf that left dropped out of the tree"
    );
    multicast_reaches_exactly(&mut net, NodeId(0), &members, b"after leave");
}

#[test]
fn the_tree_is_repaired_after_an_interior_node_crashes() {
    let mut net = scribe_net(60, 12);
    let members = members(60);
    join_members(&mut net, &members);
    // Crash a forwarder that is not a member and not the root, so members below it are cut off.
    let victim = (0..60usize)
        .find(|i| {
            net.nodes[*i]
                .as_ref()
                .and_then(|s| s.topic(TOPIC))
                .is_some_and(|t| !t.member && !t.root && !t.children.is_empty())
        })
        .map(|i| NodeId(i as u32))
        .expect("a pure forwarder exists");
    net.crash(victim);
    net.run_for(Duration::from_secs(12));
    let repaired = net
        .outputs
        .iter()
        .flatten()
        .any(|o| matches!(o, ScribeOutput::Resubscribed { topic } if *topic == TOPIC));
    assert!(
        repaired,
        "children of the crashed forwarder subscribed again"
    );
    multicast_reaches_exactly(&mut net, NodeId(0), &members, b"after repair");
}

#[test]
fn oversized_data_and_requests_before_joining_are_refused() {
    let mut net = scribe_net(3, 13);
    net.request(
        NodeId(0),
        ScribeRequest::Multicast {
            topic: TOPIC,
            data: vec![0; SCRIBE_DATA_BYTES_MAX + 1],
        },
    );
    let refused = ScribeOutput::Refused(ScribeError::DataTooLarge {
        bytes: SCRIBE_DATA_BYTES_MAX + 1,
    });
    assert!(net.outputs[0].contains(&refused));
    net.request(
        NodeId(1),
        ScribeRequest::Join {
            topic: TOPIC,
            label: vec![0; LABEL_BYTES_MAX + 1],
        },
    );
    assert!(
        net.outputs[1].contains(&ScribeOutput::Refused(ScribeError::LabelTooLarge {
            bytes: LABEL_BYTES_MAX + 1
        }))
    );
}

#[test]
fn the_topic_bound_is_enforced() {
    let config = ScribeConfig {
        topics_max: 2,
        ..ScribeConfig::default()
    };
    let mut net = TestNet::with_factory(
        14,
        Box::new(move |me, bootstrap| Scribe::new(config.clone(), me, bootstrap)),
    );
    net.grow(1);
    for t in 0..3u128 {
        net.request(
            NodeId(0),
            ScribeRequest::Join {
                topic: OverlayId(t),
                label: vec![],
            },
        );
    }
    assert!(net.outputs[0].contains(&ScribeOutput::Refused(ScribeError::TooManyTopics(2))));
}
