//! Every bound of the broadcast, reached: the per-origin window, the request queue, the payload
//! size, the delivered cache and the per-round retransmission budget.

use stockade_core::{NodeId, Protocol};

use super::{committee_keys, deliveries, node, sends, signed, Driver};
use crate::{BroadcastConfig, BroadcastOutput, BroadcastRequest, Phase, RefusedReason};

#[test]
fn window_per_origin_bounds_undelivered_instances() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        window_per_origin: 3,
        ..BroadcastConfig::for_faults(1)
    };
    let mut d = Driver::new(node(&config, &keys, 1));
    // A (possibly Byzantine) origin floods INITIALs: seqs 0..3 fit, seq 3 is beyond the window.
    for seq in 0..3 {
        assert_eq!(
            sends(&d.vote(&keys, 0, Phase::Initial, 0, seq, b"v")).len(),
            3
        );
    }
    let effects = d.vote(&keys, 0, Phase::Initial, 0, 3, b"v");
    assert!(
        effects.is_empty(),
        "beyond the window: dropped before hashing"
    );
    assert_eq!(d.node.stats().outside_window, 1);
    assert_eq!(d.node.undelivered_instances(), 3);
    // Other origins have windows of their own.
    assert_eq!(
        sends(&d.vote(&keys, 2, Phase::Initial, 2, 0, b"v")).len(),
        3
    );
    // Delivering seq 0 slides origin n0's window: seq 3 now fits.
    d.vote(&keys, 2, Phase::Ready, 0, 0, b"v");
    d.vote(&keys, 3, Phase::Ready, 0, 0, b"v");
    assert_eq!(d.node.delivered_below(NodeId(0)), 1);
    assert_eq!(
        sends(&d.vote(&keys, 0, Phase::Initial, 0, 3, b"v")).len(),
        3
    );
}

#[test]
fn own_window_full_queues_requests_then_refuses_and_delivery_drains_the_queue() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        window_per_origin: 2,
        request_queue_len_max: 2,
        ..BroadcastConfig::for_faults(1)
    };
    let mut d = Driver::new(node(&config, &keys, 0));
    for i in 0..4u8 {
        let effects = d.call(|n, cx| n.on_request(cx, BroadcastRequest { payload: vec![i] }));
        let initials = sends(&effects)
            .iter()
            .filter(|s| s.1 == Phase::Initial)
            .count();
        assert_eq!(initials, if i < 2 { 3 } else { 0 }, "request {i}");
    }
    assert_eq!(d.node.queued_requests(), 2);
    let effects = d.call(|n, cx| n.on_request(cx, BroadcastRequest { payload: vec![9] }));
    assert_eq!(
        deliveries(&effects),
        vec![BroadcastOutput::Refused {
            payload_len: 1,
            reason: RefusedReason::QueueFull {
                request_queue_len_max: 2
            }
        }]
    );
    assert!(sends(&effects).is_empty());
    assert_eq!(d.node.stats().requests_refused, 1);
    // Seq 0 delivers: the queue's head becomes seq 2.
    d.vote(&keys, 1, Phase::Ready, 0, 0, &[0]);
    let effects = d.vote(&keys, 2, Phase::Ready, 0, 0, &[0]);
    assert!(deliveries(&effects)
        .iter()
        .any(|o| matches!(o, BroadcastOutput::Delivered { .. })));
    let started: Vec<_> = sends(&effects)
        .into_iter()
        .filter(|s| s.1 == Phase::Initial)
        .collect();
    assert_eq!(
        started.len(),
        3,
        "the queued request started when the window slid"
    );
    assert_eq!(d.node.queued_requests(), 1);
    assert_eq!(d.node.stats().broadcasts_started, 3);
}

#[test]
fn payload_over_the_limit_is_refused_locally_and_dropped_from_peers() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        payload_bytes_max: 4,
        ..BroadcastConfig::for_faults(1)
    };
    let mut d = Driver::new(node(&config, &keys, 0));
    let effects = d.call(|n, cx| {
        n.on_request(
            cx,
            BroadcastRequest {
                payload: vec![0; 5],
            },
        )
    });
    assert_eq!(
        deliveries(&effects),
        vec![BroadcastOutput::Refused {
            payload_len: 5,
            reason: RefusedReason::PayloadTooLarge {
                payload_bytes_max: 4
            }
        }]
    );
    assert!(d
        .message(1, signed(&keys[1], Phase::Initial, 1, 0, &[0; 5]))
        .is_empty());
    assert_eq!(d.node.stats().malformed, 1);
    assert_eq!(
        sends(&d.vote(&keys, 1, Phase::Initial, 1, 0, &[0; 4])).len(),
        3
    );
}

#[test]
fn delivered_cache_evicts_the_oldest_and_forgets_it() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        delivered_cache_len_max: 2,
        ..BroadcastConfig::for_faults(1)
    };
    let mut d = Driver::new(node(&config, &keys, 3));
    for seq in 0..3 {
        d.vote(&keys, 0, Phase::Ready, 0, seq, b"v");
        d.vote(&keys, 1, Phase::Ready, 0, seq, b"v");
    }
    assert_eq!(d.node.stats().delivered, 3);
    assert_eq!(d.node.delivered.len(), 2);
    // Seq 0 was evicted: a message about it is no longer answered.
    assert!(d
        .message(2, signed(&keys[2], Phase::Ready, 0, 0, b"v"))
        .is_empty());
    assert_eq!(d.node.stats().outside_window, 1);
    // Seq 2 is still cached: a repeated READY (the peer is stuck) is answered.
    assert!(sends(&d.vote(&keys, 2, Phase::Ready, 0, 2, b"v")).is_empty());
    assert_eq!(
        sends(&d.vote(&keys, 2, Phase::Ready, 0, 2, b"v")),
        vec![(2, Phase::Ready, 3)]
    );
}

#[test]
fn retransmission_round_stops_at_its_message_budget() {
    let keys = committee_keys(4);
    let config = BroadcastConfig {
        retransmit_messages_per_round_max: 5,
        ..BroadcastConfig::for_faults(1)
    };
    let mut d = Driver::new(node(&config, &keys, 0));
    for i in 0..3u8 {
        d.call(|n, cx| n.on_request(cx, BroadcastRequest { payload: vec![i] }));
    }
    let effects = d.retransmit_round();
    assert_eq!(
        sends(&effects).len(),
        5,
        "3 instances x 3 peers x 2 messages would be 18"
    );
    assert_eq!(d.node.stats().retransmit_rounds_truncated, 1);
    assert!(d.node.check_invariants().is_ok());
}
