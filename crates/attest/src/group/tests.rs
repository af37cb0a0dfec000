//! The LA-group protocol: exact effects of single handlers, and small multi-node runs.

use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockade_core::Effect;

use super::*;
use crate::keys::test_only::{node_keys, pair_mac_key};
use crate::monitor::{LivenessMonitor, Observation, VotingMonitor};
use crate::test_net::TestNet;
use crate::transcript::{CompactTranscript, TranscriptError};

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn views(net: &TestNet, group: GroupId) -> Vec<BTreeSet<NodeId>> {
    net.nodes
        .iter()
        .map(|p| p.view(group, net.now).unwrap_or_default())
        .collect()
}

/// Node 0 creates a group; nodes 1..count join through node `i - 1` one after another.
fn chain(count: u32, config: GroupConfig) -> (TestNet, GroupId) {
    chain_of(count, count, config)
}

/// Like [`chain`], in a network of `total` nodes of which the last ones stay out.
fn chain_of(total: u32, count: u32, config: GroupConfig) -> (TestNet, GroupId) {
    let mut net = TestNet::new(total, config);
    net.request(n(0), GroupRequest::Create);
    let group = net.created_group(n(0)).expect("created");
    for i in 1..count {
        net.join_through(n(i), group, n(i - 1));
    }
    (net, group)
}

#[test]
fn create_draws_a_random_id_and_arms_refresh_and_sweep() {
    let keys = node_keys(1);
    let mut p = LaGroups::new(n(0), GroupConfig::default(), Box::new(keys[0].clone()));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let mut cx = Context::new(Time::from_secs(1), n(0), &mut rng, &mut tokens, Vec::new());
    p.on_request(&mut cx, GroupRequest::Create);
    let effects = cx.into_effects();
    let mut expected_id = [0u8; GROUP_ID_BYTES];
    ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut expected_id);
    let group = GroupId(expected_id);
    assert!(
        matches!(&effects[0], Effect::SetTimer { timer: GroupTimer::Refresh(g), at } if *g == group && *at == Time::from_secs(11))
    );
    assert!(
        matches!(&effects[1], Effect::SetTimer { timer: GroupTimer::Sweep(g), at } if *g == group && *at == Time::from_secs(2))
    );
    assert!(
        matches!(&effects[2], Effect::Deliver(GroupOutput::Created { group: g }) if *g == group)
    );
    assert_eq!(effects.len(), 3);
    assert_eq!(p.groups(), vec![group]);
    assert_eq!(
        p.view(group, Time::from_secs(1)),
        Some(BTreeSet::from([n(0)]))
    );
}

#[test]
fn join_request_sends_the_joiners_attestation_to_each_contact() {
    let keys = node_keys(3);
    let mut p = LaGroups::new(n(2), GroupConfig::default(), Box::new(keys[2].clone()));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let group = GroupId([4; GROUP_ID_BYTES]);
    let mut cx = Context::new(Time::ZERO, n(2), &mut rng, &mut tokens, Vec::new());
    p.on_request(
        &mut cx,
        GroupRequest::Join {
            group,
            contacts: vec![n(0), n(1), n(2)],
        },
    );
    let sends: Vec<(NodeId, NodeId, NodeId)> = cx
        .effects()
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message: GroupMessage::JoinRequest { attestation, .. },
                ..
            } => Some((
                *to,
                attestation.attestation.attester,
                attestation.attestation.attestee,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends,
        vec![(n(0), n(2), n(0)), (n(1), n(2), n(1))],
        "itself is not a contact"
    );
    assert!(cx.effects().iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: GroupTimer::JoinTimeout(_),
            ..
        }
    )));
    assert!(p.groups().is_empty(), "not a member until attested");
    assert_eq!(p.attesting(group), vec![n(0), n(1)]);
}

#[test]
fn join_completes_and_every_view_converges() {
    let (net, group) = chain(4, GroupConfig::default());
    for i in 1..4 {
        assert!(
            net.outputs_of(n(i)).contains(&GroupOutput::JoinResult {
                group,
                joined: true
            }),
            "node {i} joined"
        );
    }
    assert!(net
        .outputs_of(n(0))
        .contains(&GroupOutput::JoinRequested { group, node: n(1) }));
    let all: BTreeSet<NodeId> = (0..4).map(n).collect();
    assert_eq!(views(&net, group), vec![all.clone(); 4]);
    // Node 0 learned 3 -> 2 only through flooding across two hops.
    assert_eq!(
        net.nodes[0].attestations_about(group, n(2), net.now).len(),
        2,
        "1 -> 2 and 3 -> 2"
    );
    assert_eq!(net.nodes[3].groups(), vec![group]);
}

#[test]
fn joining_through_a_non_member_times_out() {
    let mut net = TestNet::new(2, GroupConfig::default());
    let group = GroupId([9; GROUP_ID_BYTES]);
    net.request(
        n(1),
        GroupRequest::Join {
            group,
            contacts: vec![n(0)],
        },
    );
    net.run_for(Duration::from_secs(11));
    assert_eq!(
        net.outputs_of(n(1)),
        vec![GroupOutput::JoinResult {
            group,
            joined: false
        }]
    );
    assert_eq!(net.nodes[0].stats().messages_for_unknown_groups, 1);
    assert!(
        net.nodes[1].view(group, net.now).is_none(),
        "the failed join left no state"
    );
}

#[test]
fn refresh_keeps_links_alive_and_withdrawal_lapses_elsewhere() {
    let (mut net, group) = chain(3, GroupConfig::default());
    net.run_for(Duration::from_secs(90));
    let all: BTreeSet<NodeId> = (0..3).map(n).collect();
    assert_eq!(
        views(&net, group),
        vec![all.clone(); 3],
        "refreshes outlived three validity periods"
    );
    net.request(n(2), GroupRequest::StopAttesting { group, node: n(1) });
    net.request(n(1), GroupRequest::StopAttesting { group, node: n(2) });
    let withdrawn = net.now;
    net.run_for(Duration::from_secs(31));
    let lost = GroupOutput::AttestationLost {
        group,
        attester: n(1),
        attestee: n(2),
    };
    let at = net.outputs[0]
        .iter()
        .find(|(_, o)| *o == lost)
        .map(|(t, _)| *t)
        .expect("node 0 was told");
    assert!(
        at - withdrawn <= Duration::from_secs(31),
        "lapsed within one validity period plus a sweep"
    );
    assert_eq!(
        net.nodes[0].view(group, net.now),
        Some(BTreeSet::from([n(0), n(1)]))
    );
    assert!(net.outputs_of(n(0)).contains(&GroupOutput::ViewChanged {
        group,
        view: BTreeSet::from([n(0), n(1)])
    }));
}

#[test]
fn snapshot_gives_a_joiner_the_whole_view_at_once() {
    let (mut net, group) = chain_of(5, 4, GroupConfig::default());
    let before = net.nodes[3].stats().snapshots_sent;
    let keys = node_keys(5);
    let mut joiner = LaGroups::new(n(4), GroupConfig::default(), Box::new(keys[4].clone()));
    // Deliver node 3's snapshot by hand: run node 3's join handling and pick its announcements.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut tokens = 0;
    let mut cx = Context::new(net.now, n(4), &mut rng, &mut tokens, Vec::new());
    joiner.on_request(
        &mut cx,
        GroupRequest::Join {
            group,
            contacts: vec![n(3)],
        },
    );
    let request = cx.into_effects().into_iter().find_map(|e| match e {
        Effect::Send { message, .. } => Some(message),
        _ => None,
    });
    let mut cx = Context::new(net.now, n(3), &mut rng, &mut tokens, Vec::new());
    net.nodes[3].on_message(&mut cx, n(4), request.expect("a join request"));
    let snapshot: Vec<GroupMessage> = cx
        .into_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message:
                    m @ GroupMessage::Announce {
                        kind: AnnounceKind::Snapshot,
                        ..
                    },
                ..
            } if to == n(4) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(net.nodes[3].stats().snapshots_sent, before + 1);
    let mut cx = Context::new(net.now, n(4), &mut rng, &mut tokens, Vec::new());
    for m in snapshot {
        joiner.on_message(&mut cx, n(3), m);
    }
    let effects = cx.into_effects();
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Deliver(GroupOutput::JoinResult { joined: true, .. })
    )));
    let all: BTreeSet<NodeId> = (0..5).map(n).collect();
    assert_eq!(
        joiner.view(group, net.now),
        Some(all),
        "one message carried the whole graph"
    );
}

#[test]
fn forged_and_replayed_attestations_are_rejected_and_not_flooded() {
    let (mut net, group) = chain(3, GroupConfig::default());
    let genuine = net.nodes[2]
        .attestations_about(group, n(1), net.now)
        .pop()
        .expect("2 attests 1");
    let mut forged = genuine.clone();
    forged.attestation.issued = net.now;
    forged.attestation.info = b"lies".to_vec();
    let sent_before = net.nodes[0].stats().announcements_sent;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut tokens = 0;
    let mut cx = Context::new(net.now, n(0), &mut rng, &mut tokens, Vec::new());
    let forged_msg = GroupMessage::Announce {
        group,
        kind: AnnounceKind::Changes,
        attestations: vec![forged],
        mac: None,
    };
    net.nodes[0].on_message(&mut cx, n(1), forged_msg);
    let mut older = genuine.attestation.clone();
    older.issued = Time::ZERO;
    older.expires = Time::from_secs(30);
    let replay = GroupMessage::Announce {
        group,
        kind: AnnounceKind::Changes,
        attestations: vec![older.sign(&node_keys(3)[2])],
        mac: None,
    };
    net.nodes[0].on_message(&mut cx, n(1), replay);
    assert!(!cx.effects().iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: GroupTimer::Flush(_),
            ..
        }
    )));
    let stats = net.nodes[0].stats();
    assert_eq!((stats.rejected_forged, stats.rejected_replayed), (1, 1));
    assert_eq!(stats.announcements_sent, sent_before);
    assert_eq!(
        net.nodes[0].attestations_about(group, n(1), net.now).len(),
        2,
        "0 -> 1 and the genuine 2 -> 1"
    );
}

/// Keys for a chain 0 - 1 - 2 whose direct neighbours negotiated MAC keys.
fn chain_keys_with_macs() -> Vec<crate::keys::SchemeKeys> {
    node_keys(3)
        .into_iter()
        .enumerate()
        .map(|(i, k)| match i {
            0 => k.with_mac_key(n(1), pair_mac_key(n(0), n(1))),
            1 => k
                .with_mac_key(n(0), pair_mac_key(n(0), n(1)))
                .with_mac_key(n(2), pair_mac_key(n(1), n(2))),
            _ => k.with_mac_key(n(1), pair_mac_key(n(1), n(2))),
        })
        .collect()
}

#[test]
fn mac_vouched_announcements_skip_signature_checks() {
    let keys = chain_keys_with_macs();
    let mut net = TestNet::with_keys(keys, GroupConfig::default());
    net.request(n(0), GroupRequest::Create);
    let group = net.created_group(n(0)).expect("created");
    net.join_through(n(1), group, n(0));
    net.join_through(n(2), group, n(1));
    let all: BTreeSet<NodeId> = (0..3).map(n).collect();
    assert_eq!(views(&net, group), vec![all; 3]);
    for i in 0..3 {
        let s = net.nodes[i].stats();
        assert!(
            s.mac_vouched_announcements > 0,
            "node {i} received MACed announcements"
        );
    }
    // A neighbour's own attestations ride on the MAC; what it relays from others is verified.
    // Node 0 checks the join request of 1 and 2's attestation of 1 relayed by 1; node 2 checks
    // only 0's attestation of 1, relayed by 1.
    assert_eq!(net.nodes[0].stats().signatures_verified, 2);
    assert_eq!(net.nodes[2].stats().signatures_verified, 1);
}

#[test]
fn a_mac_neighbour_cannot_vouch_for_a_forged_third_party_attestation() {
    let keys = chain_keys_with_macs();
    let byzantine_keys = keys[1].clone();
    let mut net = TestNet::with_keys(keys, GroupConfig::default());
    net.request(n(0), GroupRequest::Create);
    let group = net.created_group(n(0)).expect("created");
    net.join_through(n(1), group, n(0));
    net.join_through(n(2), group, n(1));
    let outsider = n(9);
    assert!(!net.nodes[0]
        .view(group, net.now)
        .expect("member")
        .contains(&outsider));

    // Node 1 is Byzantine: it claims that node 2 attests an outsider, signs the claim itself
    // (it cannot sign as 2), and MACs the announcement with its genuine key shared with node 0.
    let claim = Attestation {
        group,
        attester: n(2),
        attestee: outsider,
        info: Vec::new(),
        issued: net.now,
        expires: net.now + Duration::from_secs(30),
    };
    let forged = claim.sign(&byzantine_keys);
    let attestations = vec![forged];
    let bytes = announce_mac_bytes(&group, AnnounceKind::Changes, &attestations);
    let mac = byzantine_keys.mac(n(0), &bytes);
    assert!(mac.is_some(), "node 1 really shares a MAC key with node 0");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut tokens = 0;
    let mut cx = Context::new(net.now, n(0), &mut rng, &mut tokens, Vec::new());
    let vouched_before = net.nodes[0].stats().mac_vouched_announcements;
    net.nodes[0].on_message(
        &mut cx,
        n(1),
        GroupMessage::Announce {
            group,
            kind: AnnounceKind::Changes,
            attestations,
            mac,
        },
    );
    let stats = net.nodes[0].stats();
    assert_eq!(
        stats.mac_vouched_announcements,
        vouched_before + 1,
        "the MAC itself was genuine"
    );
    assert_eq!(
        stats.rejected_forged, 1,
        "the relayed claim was checked and refused"
    );
    assert!(
        !net.nodes[0]
            .view(group, net.now)
            .expect("member")
            .contains(&outsider),
        "no real attestation chain reaches the outsider"
    );
}

#[test]
fn changes_to_one_link_before_a_flush_are_sent_once() {
    let (mut net, group) = chain(2, GroupConfig::default());
    let sent = net.messages_sent;
    net.request(
        n(0),
        GroupRequest::Attest {
            group,
            node: n(1),
            info: b"a".to_vec(),
        },
    );
    net.request(
        n(0),
        GroupRequest::Attest {
            group,
            node: n(1),
            info: b"b".to_vec(),
        },
    );
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        net.messages_sent - sent,
        1,
        "one announcement carried the latest of two changes"
    );
    let held = net.nodes[1].attestations_about(group, n(1), net.now);
    assert_eq!(
        held.iter()
            .map(|a| a.attestation.info.clone())
            .collect::<Vec<_>>(),
        vec![b"b".to_vec()]
    );
}

#[test]
fn bad_requests_are_answered_with_actionable_errors() {
    let config = GroupConfig {
        groups_max: 1,
        join_contacts_max: 2,
        ..GroupConfig::default()
    };
    let mut net = TestNet::new(2, config);
    net.request(n(0), GroupRequest::Create);
    let group = net.created_group(n(0)).expect("created");
    let other = GroupId([1; GROUP_ID_BYTES]);
    net.request(n(0), GroupRequest::Create);
    net.request(
        n(0),
        GroupRequest::Attest {
            group,
            node: n(1),
            info: vec![0; INFO_BYTES_MAX + 1],
        },
    );
    net.request(
        n(0),
        GroupRequest::Attest {
            group,
            node: n(0),
            info: vec![],
        },
    );
    net.request(
        n(0),
        GroupRequest::Attest {
            group: other,
            node: n(1),
            info: vec![],
        },
    );
    net.request(
        n(1),
        GroupRequest::Join {
            group,
            contacts: vec![],
        },
    );
    net.request(
        n(1),
        GroupRequest::Join {
            group,
            contacts: vec![n(0), n(2), n(3)],
        },
    );
    net.request(
        n(0),
        GroupRequest::Join {
            group,
            contacts: vec![n(1)],
        },
    );
    let failures: Vec<GroupError> = net
        .outputs_of(n(0))
        .into_iter()
        .chain(net.outputs_of(n(1)))
        .filter_map(|o| match o {
            GroupOutput::RequestFailed(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            GroupError::TooManyGroups(1),
            GroupError::InfoTooLong(INFO_BYTES_MAX + 1),
            GroupError::SelfAttestation,
            GroupError::UnknownGroup(other),
            GroupError::AlreadyInGroup(group),
            GroupError::BadContacts { got: 0, max: 2 },
            GroupError::BadContacts { got: 3, max: 2 },
        ]
    );
}

#[test]
fn the_link_bound_stops_a_group_from_growing_past_it() {
    let config = GroupConfig {
        links_max: 2,
        ..GroupConfig::default()
    };
    let (mut net, group) = chain(3, config);
    // Links 1 -> 0 and 0 -> 1 fill node 1's store, so node 2's join request finds no room.
    assert_eq!(net.nodes[1].attestations(group, net.now).len(), 2);
    assert_eq!(
        net.nodes[1].stats().rejected_other,
        1,
        "the full store rejected 2 -> 1"
    );
    net.run_for(Duration::from_secs(11));
    assert!(net.outputs_of(n(2)).contains(&GroupOutput::JoinResult {
        group,
        joined: false
    }));
}

#[test]
fn a_liveness_monitor_withdraws_from_a_crashed_node_and_every_view_drops_it() {
    let (mut net, group) = chain(4, GroupConfig::default());
    net.request(
        n(2),
        GroupRequest::Monitor {
            group,
            node: n(3),
            monitor: Box::new(LivenessMonitor::new(2)),
        },
    );
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.nodes[2].attesting(group),
        vec![n(1), n(3)],
        "3 answers probes"
    );
    net.crashed.insert(n(3));
    let crashed_at = net.now;
    net.run_for(Duration::from_secs(4));
    assert_eq!(
        net.nodes[2].attesting(group),
        vec![n(1)],
        "two missed probes withdrew the attestation"
    );
    assert!(net
        .outputs_of(n(2))
        .contains(&GroupOutput::AttestationLost {
            group,
            attester: n(2),
            attestee: n(3)
        }));
    net.run_for(Duration::from_secs(32));
    let survivors: BTreeSet<NodeId> = (0..3).map(n).collect();
    for i in 0..3 {
        assert_eq!(
            net.nodes[i].view(group, net.now),
            Some(survivors.clone()),
            "node {i}"
        );
    }
    let lost = GroupOutput::AttestationLost {
        group,
        attester: n(2),
        attestee: n(3),
    };
    let told = net.outputs[0]
        .iter()
        .find(|(_, o)| *o == lost)
        .map(|(t, _)| *t)
        .expect("node 0 was told");
    assert!(
        told - crashed_at <= Duration::from_secs(3 + 30 + 1),
        "probe misses, validity, one sweep"
    );
}

#[test]
fn probes_are_answered_only_within_a_group() {
    let (mut net, group) = chain(2, GroupConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut tokens = 0;
    let mut cx = Context::new(net.now, n(1), &mut rng, &mut tokens, Vec::new());
    net.nodes[1].on_message(&mut cx, n(0), GroupMessage::Probe { group, nonce: 42 });
    let other = GroupId([8; GROUP_ID_BYTES]);
    net.nodes[1].on_message(
        &mut cx,
        n(0),
        GroupMessage::Probe {
            group: other,
            nonce: 43,
        },
    );
    let effects = cx.into_effects();
    assert_eq!(effects.len(), 1);
    assert!(matches!(
        &effects[0],
        Effect::Send { to, message: GroupMessage::ProbeReply { group: g, nonce: 42 }, .. } if *to == n(0) && *g == group
    ));
}

#[test]
fn voting_observations_make_the_protocol_withdraw() {
    let (mut net, group) = chain(3, GroupConfig::default());
    net.request(
        n(1),
        GroupRequest::Monitor {
            group,
            node: n(2),
            monitor: Box::new(VotingMonitor::new(0, 4)),
        },
    );
    net.run_for(Duration::from_millis(100));
    let (good, bad) = ([1u8; 32], [2u8; 32]);
    let answers = |two| vec![(n(0), good), (n(1), good), (n(2), two)];
    net.request(
        n(1),
        GroupRequest::Observe {
            group,
            observation: Observation::Responses {
                answers: answers(good),
            },
        },
    );
    assert_eq!(net.nodes[1].attesting(group), vec![n(0), n(2)]);
    net.request(
        n(1),
        GroupRequest::Observe {
            group,
            observation: Observation::Responses {
                answers: answers(bad),
            },
        },
    );
    assert_eq!(
        net.nodes[1].attesting(group),
        vec![n(0)],
        "a wrong answer withdrew the attestation"
    );
}

#[test]
fn the_monitor_bound_is_enforced() {
    let config = GroupConfig {
        monitors_max: 1,
        ..GroupConfig::default()
    };
    let (mut net, group) = chain(3, config);
    net.request(
        n(1),
        GroupRequest::Monitor {
            group,
            node: n(0),
            monitor: Box::new(LivenessMonitor::new(1)),
        },
    );
    net.request(
        n(1),
        GroupRequest::Monitor {
            group,
            node: n(0),
            monitor: Box::new(LivenessMonitor::new(3)),
        },
    );
    net.request(
        n(1),
        GroupRequest::Monitor {
            group,
            node: n(2),
            monitor: Box::new(LivenessMonitor::new(1)),
        },
    );
    let failures: Vec<GroupOutput> = net
        .outputs_of(n(1))
        .into_iter()
        .filter(|o| matches!(o, GroupOutput::RequestFailed(_)))
        .collect();
    assert_eq!(
        failures,
        vec![GroupOutput::RequestFailed(GroupError::TooManyMonitors(1))],
        "replacing one is fine"
    );
}

/// When every member's view first holds `node`, or `None` if some never did.
fn converged_at(net: &TestNet, group: GroupId, node: NodeId, members: &[NodeId]) -> Option<Time> {
    members
        .iter()
        .map(|m| {
            net.outputs[m.index()].iter().find_map(|(t, o)| match o {
                GroupOutput::ViewChanged { group: g, view }
                    if *g == group && view.contains(&node) =>
                {
                    Some(*t)
                }
                _ => None,
            })
        })
        .try_fold(Time::ZERO, |latest, t| t.map(|t| latest.max(t)))
}

#[test]
fn a_join_reaches_every_view_within_diameter_hops_of_latency_and_aggregation() {
    // A chain of 8 members has diameter 7; the 9th node joins at the far end.
    let config = GroupConfig::default();
    let (mut net, group) = chain_of(9, 8, config.clone());
    net.run_for(Duration::from_secs(1));
    let start = net.now;
    net.join_through(n(8), group, n(7));
    net.run_for(Duration::from_secs(1));
    let members: Vec<NodeId> = (0..8).map(n).collect();
    let done = converged_at(&net, group, n(8), &members).expect("every member saw the joiner");
    // The join request and the attestation back take one latency each; then each of the 7 hops
    // to node 0 costs one latency plus one announce delay.
    let hop = net.latency + config.announce_delay;
    let bound = net.latency * 2 + hop * 7;
    assert!(
        done - start <= bound,
        "converged after {:?}, bound {:?}",
        done - start,
        bound
    );
    assert!(
        done - start >= net.latency * 8,
        "node 0 is 8 links from the joiner"
    );
}

fn transcript_of(
    net: &TestNet,
    node: NodeId,
) -> Option<Result<CompactTranscript, TranscriptError>> {
    net.outputs_of(node).into_iter().find_map(|o| match o {
        GroupOutput::Transcript { result, .. } => Some(result),
        _ => None,
    })
}

#[test]
fn a_compact_transcript_is_collected_from_every_member_and_verifies() {
    let (mut net, group) = chain(4, GroupConfig::default());
    let directory = TestNet::directory(4);
    net.request(
        n(0),
        GroupRequest::BuildTranscript {
            group,
            directory: directory.clone(),
        },
    );
    net.run_for(Duration::from_millis(100));
    let transcript = transcript_of(&net, n(0))
        .expect("collected")
        .expect("aggregated");
    let statement = transcript
        .verify(n(3), 4, &directory, &mut |_| {})
        .expect("all four signed");
    assert_eq!(statement.members, (0..4).map(n).collect());
}

#[test]
fn a_silent_member_leaves_a_transcript_with_fewer_signers_at_the_timeout() {
    let (mut net, group) = chain(4, GroupConfig::default());
    net.crashed.insert(n(3));
    let directory = TestNet::directory(4);
    net.request(
        n(1),
        GroupRequest::BuildTranscript {
            group,
            directory: directory.clone(),
        },
    );
    net.request(
        n(1),
        GroupRequest::BuildTranscript {
            group,
            directory: directory.clone(),
        },
    );
    net.run_for(Duration::from_millis(500));
    assert_eq!(transcript_of(&net, n(1)), None, "still waiting for node 3");
    net.run_for(Duration::from_secs(1));
    let transcript = transcript_of(&net, n(1))
        .expect("timed out")
        .expect("aggregated");
    assert!(
        transcript.verify(n(3), 3, &directory, &mut |_| {}).is_ok(),
        "3 of 4 signed; 3 is still in the view"
    );
    assert_eq!(
        transcript.verify(n(3), 4, &directory, &mut |_| {}),
        Err(TranscriptError::TooFewSigners {
            signers: 3,
            required: 4
        })
    );
    assert!(net.outputs_of(n(1)).contains(&GroupOutput::RequestFailed(
        GroupError::TranscriptInProgress(group)
    )));
}

#[test]
fn path_transcripts_follow_a_shortest_attestation_path() {
    let (net, group) = chain(4, GroupConfig::default());
    let t = net.nodes[2]
        .path_transcript(group, n(0), n(3), net.now)
        .expect("0 reaches 3");
    assert_eq!(t.attestations.len(), 3);
    assert_eq!(
        t.verify(group, n(0), n(3), net.now, &node_keys(4)[0]),
        Ok(())
    );
    let list = net.nodes[2].list_transcript(group, net.now);
    assert_eq!(list.attestations.len(), 6);
}

#[test]
fn a_node_without_a_view_key_cannot_collect_transcripts() {
    let keys = node_keys(1);
    let mut p = LaGroups::new(n(0), GroupConfig::default(), Box::new(keys[0].clone()));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let mut cx = Context::new(Time::ZERO, n(0), &mut rng, &mut tokens, Vec::new());
    p.on_request(&mut cx, GroupRequest::Create);
    let group = p.groups()[0];
    let directory = TestNet::directory(1);
    p.on_request(&mut cx, GroupRequest::BuildTranscript { group, directory });
    assert!(matches!(
        cx.effects().last(),
        Some(Effect::Deliver(GroupOutput::RequestFailed(
            GroupError::NoViewSigningKey
        )))
    ));
}

#[test]
fn config_validation_names_the_problem() {
    assert_eq!(GroupConfig::default().validate(), Ok(()));
    let late = GroupConfig {
        refresh_interval: Duration::from_secs(30),
        ..GroupConfig::default()
    };
    assert!(matches!(
        late.validate(),
        Err(ConfigError::RefreshNotBeforeExpiry { .. })
    ));
    let no_links = GroupConfig {
        links_max: 0,
        ..GroupConfig::default()
    };
    assert_eq!(no_links.validate(), Err(ConfigError::Zero("links_max")));
    let no_probe = GroupConfig {
        probe_interval: Duration::ZERO,
        ..GroupConfig::default()
    };
    assert_eq!(
        no_probe.validate(),
        Err(ConfigError::Zero("probe_interval"))
    );
}

#[test]
fn robust_membership_of_a_live_group() {
    let (net, group) = chain(4, GroupConfig::default());
    // A chain where neighbours attest each other: the ends have one attester, the middle two.
    let one = net.nodes[0].robust_members(group, crate::robust::Threshold::Static(1), net.now);
    assert_eq!(one, Some((0..4).map(n).collect()));
    let two = net.nodes[0].robust_members(group, crate::robust::Threshold::Static(2), net.now);
    assert_eq!(
        two,
        Some(BTreeSet::new()),
        "peeling the ends leaves the middle with one attester each"
    );
}

#[test]
fn a_member_whose_view_differs_does_not_sign_the_statement() {
    let (mut net, group) = chain(3, GroupConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut tokens = 0;
    let mut cx = Context::new(net.now, n(1), &mut rng, &mut tokens, Vec::new());
    let epoch = net.now.as_nanos() / 10_000_000_000;
    let members: BTreeSet<NodeId> = (0..3).map(n).collect();
    let agreed = crate::transcript::ViewStatement {
        group,
        epoch,
        members: members.clone(),
    };
    let request = |digest| GroupMessage::ViewSignRequest {
        group,
        epoch,
        view_digest: digest,
    };
    net.nodes[1].on_message(&mut cx, n(0), request(agreed.view_digest()));
    let other = crate::transcript::ViewStatement {
        group,
        epoch,
        members: (0..2).map(n).collect(),
    };
    net.nodes[1].on_message(&mut cx, n(0), request(other.view_digest()));
    let far_epoch = GroupMessage::ViewSignRequest {
        group,
        epoch: epoch + 5,
        view_digest: agreed.view_digest(),
    };
    net.nodes[1].on_message(&mut cx, n(0), far_epoch);
    let shares: Vec<[u8; 32]> = cx
        .effects()
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: GroupMessage::ViewSignShare { view_digest, .. },
                ..
            } => Some(*view_digest),
            _ => None,
        })
        .collect();
    assert_eq!(
        shares,
        vec![agreed.view_digest()],
        "only the statement matching its own view, in its epoch"
    );
}

#[test]
fn the_group_protocol_is_send_so_the_runtime_can_run_it() {
    fn assert_send<T: Send>() {}
    assert_send::<LaGroups>();
}

/// Node 1 joins node 0's group when node 1's context clock reads `skew` less than node 0's (its
/// process started later), with each node's `clock_offset` given. Returns node 0 after it handled
/// the join request, and the issue time the joiner's attestation carried.
fn join_with_skewed_clocks(skew: Duration, offsets: [Duration; 2]) -> (LaGroups, Time) {
    let keys = node_keys(2);
    let member = |i: usize| {
        let config = GroupConfig {
            clock_offset: offsets[i],
            ..GroupConfig::default()
        };
        LaGroups::new(n(i as u32), config, Box::new(keys[i].clone()))
    };
    let (mut creator, mut joiner) = (member(0), member(1));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let joiner_now = Time::from_secs(1);
    let creator_now = joiner_now + skew;
    let mut cx = Context::new(creator_now, n(0), &mut rng, &mut tokens, Vec::new());
    creator.on_request(&mut cx, GroupRequest::Create);
    let group = creator.groups()[0];
    let mut cx = Context::new(joiner_now, n(1), &mut rng, &mut tokens, Vec::new());
    joiner.on_request(
        &mut cx,
        GroupRequest::Join {
            group,
            contacts: vec![n(0)],
        },
    );
    let request = cx
        .into_effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::Send { message, .. } => Some(message),
            _ => None,
        })
        .expect("the join request");
    let GroupMessage::JoinRequest { attestation, .. } = &request else {
        panic!("not a join request: {request:?}");
    };
    let issued = attestation.attestation.issued;
    let mut cx = Context::new(creator_now, n(0), &mut rng, &mut tokens, Vec::new());
    creator.on_message(&mut cx, n(1), request);
    (creator, issued)
}

#[test]
fn clock_offsets_let_members_whose_processes_started_apart_accept_each_others_attestations() {
    let skew = GroupConfig::default().attestation_validity * 2;
    let wall_at_creator_start = Duration::from_secs(1_700_000_000);
    let (creator, issued) =
        join_with_skewed_clocks(skew, [wall_at_creator_start, wall_at_creator_start + skew]);
    assert_eq!(
        issued,
        Time::from_secs(1) + wall_at_creator_start + skew,
        "the attestation carries the joiner's group time"
    );
    let group = creator.groups()[0];
    let creator_now = Time::from_secs(1) + skew;
    assert_eq!(
        creator.attestations_about(group, n(0), creator_now).len(),
        1,
        "the joiner's attestation is live at the creator"
    );
    assert_eq!(creator.stats().rejected_expired, 0);
    assert_eq!(
        creator.group_time(creator_now),
        creator_now + wall_at_creator_start
    );

    // Without offsets the same join fails: the creator sees the attestation as long expired.
    let (creator, _) = join_with_skewed_clocks(skew, [Duration::ZERO; 2]);
    assert_eq!(creator.stats().rejected_expired, 1);
    assert!(creator
        .attestations_about(creator.groups()[0], n(0), creator_now)
        .is_empty());
}
