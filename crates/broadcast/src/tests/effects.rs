//! Exact effects of one input at a time, for each of Bracha's four rules and each rejection.

use std::time::Duration;

use stockade_core::{CostKind, CpuWork, Effect, NodeId, Protocol, Time};

use super::{committee_keys, deliveries, node, sends, signed, to_all_others, Driver};
use crate::{
    BroadcastConfig, BroadcastOutput, BroadcastRequest, BroadcastTimer, InstanceId, Phase,
};

fn config() -> BroadcastConfig {
    BroadcastConfig::for_faults(1)
}

fn charge(kind: CostKind, count: u32, bytes: u64) -> CpuWork {
    CpuWork::Op { kind, count, bytes }
}

#[test]
fn rule_1_origin_sends_initial_then_echoes_its_own() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 0));
    let effects = d.call(|n, cx| {
        n.on_request(
            cx,
            BroadcastRequest {
                payload: b"v".to_vec(),
            },
        )
    });

    let mut it = effects.iter();
    assert!(matches!(it.next(), Some(Effect::Charge(w)) if *w == charge(CostKind::Sha256, 1, 1)));
    assert!(
        matches!(it.next(), Some(Effect::Charge(w)) if *w == charge(CostKind::Ed25519Sign, 1, 0))
    );
    for to in 1..4 {
        match it.next() {
            Some(Effect::Send {
                to: dest,
                message,
                after: None,
            }) => {
                assert_eq!(
                    (dest.0, message.phase, message.signer),
                    (to, Phase::Initial, NodeId(0))
                );
                assert_eq!(
                    message.instance,
                    InstanceId {
                        origin: NodeId(0),
                        seq: 0
                    }
                );
                assert_eq!(message.payload, b"v");
            }
            other => panic!("expected INITIAL to n{to}, got {other:?}"),
        }
    }
    assert!(matches!(
        it.next(),
        Some(Effect::SetTimer { timer: BroadcastTimer::Retransmit, at }) if *at == Time::ZERO + Duration::from_millis(200)
    ));
    // Rule 2 applies to the origin too: it echoes its own INITIAL.
    assert!(
        matches!(it.next(), Some(Effect::Charge(w)) if *w == charge(CostKind::Ed25519Sign, 1, 0))
    );
    assert_eq!(sends(it.by_ref().take(3)), to_all_others(4, Phase::Echo, 0));
    assert!(
        it.next().is_none(),
        "nothing else: no READY before a quorum of ECHOs"
    );
    assert_eq!(d.node.stats().broadcasts_started, 1);
}

#[test]
fn rule_2_first_initial_from_origin_is_echoed_once() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 1));
    let initial = signed(&keys[0], Phase::Initial, 0, 0, b"v");
    let effects = d.message(0, initial.clone());
    assert!(matches!(effects[0], Effect::Charge(w) if w == charge(CostKind::Sha256, 1, 1)));
    assert!(matches!(effects[1], Effect::Charge(w) if w == charge(CostKind::Ed25519Verify, 1, 0)));
    assert!(matches!(
        effects[2],
        Effect::SetTimer {
            timer: BroadcastTimer::Retransmit,
            ..
        }
    ));
    assert!(matches!(effects[3], Effect::Charge(w) if w == charge(CostKind::Ed25519Sign, 1, 0)));
    assert_eq!(sends(&effects), to_all_others(4, Phase::Echo, 1));
    assert_eq!(effects.len(), 7);

    // The same INITIAL again (a retransmission) changes nothing but the hash and verify charges.
    let again = d.message(0, initial);
    assert_eq!(sends(&again), vec![]);
    assert_eq!(again.len(), 2);
}

#[test]
fn rule_2_a_second_different_initial_is_equivocation_and_not_echoed() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 1));
    d.vote(&keys, 0, Phase::Initial, 0, 0, b"a");
    let effects = d.vote(&keys, 0, Phase::Initial, 0, 0, b"b");
    assert_eq!(sends(&effects), vec![], "echo only the first INITIAL");
    assert_eq!(d.node.stats().equivocations_detected, 1);
}

#[test]
fn rule_3_quorum_of_echoes_sends_ready_once() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 3));
    // Echoes from n0 and n1 reach 2 < 2f+1 = 3: nothing.
    assert_eq!(sends(&d.vote(&keys, 0, Phase::Echo, 0, 0, b"v")), vec![]);
    assert_eq!(sends(&d.vote(&keys, 1, Phase::Echo, 0, 0, b"v")), vec![]);
    // The third echo makes the quorum: READY to all (this node never saw the INITIAL, so no echo).
    let effects = d.vote(&keys, 2, Phase::Echo, 0, 0, b"v");
    assert_eq!(sends(&effects), to_all_others(4, Phase::Ready, 3));
    assert_eq!(deliveries(&effects), vec![]);
    // A late INITIAL: ECHO now, but no second READY.
    let effects = d.vote(&keys, 0, Phase::Initial, 0, 0, b"v");
    assert_eq!(sends(&effects), to_all_others(4, Phase::Echo, 3));
}

#[test]
fn rule_3_f_plus_one_readies_amplify() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 3));
    assert_eq!(
        sends(&d.vote(&keys, 0, Phase::Ready, 0, 0, b"v")),
        vec![],
        "f readies prove nothing"
    );
    let effects = d.vote(&keys, 1, Phase::Ready, 0, 0, b"v");
    assert_eq!(sends(&effects), to_all_others(4, Phase::Ready, 3));
    // With its own READY the node has 3 = 2f+1 readies: rule 4 delivers in the same call.
    assert_eq!(
        deliveries(&effects),
        vec![BroadcastOutput::Delivered {
            instance: InstanceId {
                origin: NodeId(0),
                seq: 0
            },
            payload: b"v".to_vec()
        }]
    );
}

#[test]
fn rule_4_quorum_of_readies_delivers_exactly_once() {
    let keys = committee_keys(7);
    let config = BroadcastConfig::for_faults(2);
    let mut d = Driver::new(node(&config, &keys, 6));
    for from in 0..3 {
        let effects = d.vote(&keys, from, Phase::Ready, 2, 0, b"v");
        assert_eq!(
            deliveries(&effects),
            vec![],
            "below 2f+1 = 5 readies after n{from}'s"
        );
    }
    // n6 sent its own READY at f+1 = 3 readies, so the 4th peer READY is the 5th overall.
    let effects = d.vote(&keys, 3, Phase::Ready, 2, 0, b"v");
    assert_eq!(
        deliveries(&effects),
        vec![BroadcastOutput::Delivered {
            instance: InstanceId {
                origin: NodeId(2),
                seq: 0
            },
            payload: b"v".to_vec()
        }]
    );
    assert_eq!(d.node.stats().delivered, 1);
    assert_eq!(d.node.delivered_below(NodeId(2)), 1);
    assert_eq!(
        d.node.undelivered_instances(),
        0,
        "the tally is dropped at delivery"
    );
    // A first READY after delivery is the normal flow: recorded, not answered, never delivered.
    let effects = d.vote(&keys, 4, Phase::Ready, 2, 0, b"v");
    assert_eq!(deliveries(&effects), vec![]);
    assert_eq!(sends(&effects), vec![]);
    // The same READY again is a retransmission: n4 has not delivered, so it gets n6's READY.
    let effects = d.vote(&keys, 4, Phase::Ready, 2, 0, b"v");
    assert_eq!(deliveries(&effects), vec![]);
    assert_eq!(sends(&effects), vec![(4, Phase::Ready, 6)]);
    assert_eq!(d.node.stats().catch_up_replies, 1);
    // Once per peer per interval, even when this node runs no retransmission rounds (it is idle).
    assert_eq!(sends(&d.vote(&keys, 4, Phase::Ready, 2, 0, b"v")), vec![]);
    d.now += config.retransmit_interval;
    assert_eq!(
        sends(&d.vote(&keys, 4, Phase::Ready, 2, 0, b"v")),
        vec![(4, Phase::Ready, 6)]
    );
}

#[test]
fn conflicting_readies_from_one_signer_count_once() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 3));
    d.vote(&keys, 0, Phase::Ready, 0, 0, b"a");
    let effects = d.vote(&keys, 0, Phase::Ready, 0, 0, b"b");
    assert_eq!(sends(&effects), vec![]);
    assert_eq!(d.node.stats().equivocations_detected, 1);
    // n0's two READYs do not make f+1 = 2 for either payload.
    assert_eq!(d.node.stats().delivered, 0);
}

#[test]
fn votes_for_another_payload_than_the_initial_are_counted_as_conflicting() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 1));
    d.vote(&keys, 0, Phase::Initial, 0, 0, b"a");
    d.vote(&keys, 2, Phase::Echo, 0, 0, b"b");
    assert_eq!(d.node.stats().conflicting_votes, 1);
}

#[test]
fn invalid_signature_is_dropped_after_verification() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 1));
    let mut forged = signed(&keys[0], Phase::Initial, 0, 0, b"v");
    forged.payload = b"w".to_vec();
    let effects = d.message(0, forged);
    assert_eq!(
        effects.len(),
        2,
        "only the hash and verify charges: {effects:?}"
    );
    assert_eq!(d.node.stats().invalid_signatures, 1);
    assert_eq!(
        d.node.undelivered_instances(),
        0,
        "no state for a forged message"
    );
}

#[test]
fn wrong_sender_and_initial_not_from_origin_are_dropped_before_any_work() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 1));
    // Signed by n0 but arriving from n2: the transport sender must be the signer.
    assert!(d
        .message(2, signed(&keys[0], Phase::Echo, 0, 0, b"v"))
        .is_empty());
    // An INITIAL for origin n0 signed by n2.
    assert!(d
        .message(2, signed(&keys[2], Phase::Initial, 0, 0, b"v"))
        .is_empty());
    // Unknown origin.
    assert!(d
        .message(2, signed(&keys[2], Phase::Echo, 9, 0, b"v"))
        .is_empty());
    assert_eq!(d.node.stats().malformed, 3);
}

#[test]
fn retransmission_after_delivery_pushes_ready_to_peers_not_heard_from_then_stops() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        retransmit_rounds_after_delivery_max: 2,
        ..config()
    };
    let mut d = Driver::new(node(&config, &keys, 3));
    d.vote(&keys, 0, Phase::Ready, 0, 0, b"v");
    d.vote(&keys, 1, Phase::Ready, 0, 0, b"v");
    assert_eq!(d.node.stats().delivered, 1);
    for round in 0..2 {
        let effects = d.retransmit_round();
        assert_eq!(
            sends(&effects),
            vec![(2, Phase::Ready, 3)],
            "round {round}: only n2 has not shown a READY"
        );
    }
    let effects = d.retransmit_round();
    assert!(
        effects.is_empty(),
        "rounds exhausted, timer not re-armed: {effects:?}"
    );
    assert!(d.node.is_idle());
}

#[test]
fn retransmission_of_undelivered_sends_own_messages_and_only_ready_to_ready_peers() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 0));
    d.call(|n, cx| {
        n.on_request(
            cx,
            BroadcastRequest {
                payload: b"v".to_vec(),
            },
        )
    });
    d.vote(&keys, 1, Phase::Echo, 0, 0, b"v");
    d.vote(&keys, 2, Phase::Ready, 0, 0, b"v");
    // Two echoes (n0, n1) and one READY (n2) reach neither rule 3 threshold: n0 holds its INITIAL
    // and its ECHO, no READY.
    let effects = d.retransmit_round();
    assert_eq!(
        sends(&effects),
        vec![(1, Phase::Initial, 0), (1, Phase::Echo, 0), (3, Phase::Initial, 0), (3, Phase::Echo, 0)],
        "n2 showed a READY, so it has the payload and needs no INITIAL or ECHO; n0 has no READY yet"
    );
    assert!(matches!(
        effects.last(),
        Some(Effect::SetTimer {
            timer: BroadcastTimer::Retransmit,
            ..
        })
    ));
    assert_eq!(d.node.stats().retransmissions, 4);
}

#[test]
fn echo_after_delivery_is_answered_only_once_the_push_rounds_are_over() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        retransmit_rounds_after_delivery_max: 1,
        ..config()
    };
    let mut d = Driver::new(node(&config, &keys, 3));
    d.vote(&keys, 0, Phase::Ready, 0, 0, b"v");
    d.vote(&keys, 1, Phase::Ready, 0, 0, b"v");
    // n2 is still echoing: the push rounds will reach it, no reply needed yet.
    assert!(sends(&d.vote(&keys, 2, Phase::Echo, 0, 0, b"v")).is_empty());
    let round = d.retransmit_round();
    assert_eq!(sends(&round), vec![(2, Phase::Ready, 3)]);
    // Push rounds exhausted: an ECHO from n2 now gets an answer.
    assert_eq!(
        sends(&d.vote(&keys, 2, Phase::Echo, 0, 0, b"v")),
        vec![(2, Phase::Ready, 3)]
    );
    assert_eq!(d.node.stats().catch_up_replies, 1);
}

#[test]
fn retransmission_skips_broadcasts_that_sent_within_the_last_interval() {
    let keys = committee_keys(4);
    let mut d = Driver::new(node(&config(), &keys, 0));
    d.now = Time::from_millis(150);
    d.call(|n, cx| {
        n.on_request(
            cx,
            BroadcastRequest {
                payload: b"v".to_vec(),
            },
        )
    });
    // The timer armed at 150 ms fires at 350 ms: exactly one interval later, so it re-sends.
    d.now = Time::from_millis(349);
    let early = d.call(|n, cx| n.on_timer(cx, BroadcastTimer::Retransmit));
    assert!(sends(&early).is_empty(), "sent 199 ms ago: still in flight");
    assert!(
        matches!(early.last(), Some(Effect::SetTimer { .. })),
        "re-armed: the broadcast is undelivered"
    );
    d.now = Time::from_millis(350);
    let due = d.call(|n, cx| n.on_timer(cx, BroadcastTimer::Retransmit));
    assert_eq!(sends(&due).len(), 6, "INITIAL and ECHO to each of 3 peers");
}
