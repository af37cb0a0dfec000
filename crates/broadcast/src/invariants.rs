//! Local safety invariants of one node's broadcast state, checked by the simulator after every
//! event: windows hold what they should, tallies are consistent with this node's own votes, and
//! every bound holds.

use stockade_core::{InvariantViolation, NodeId};

use crate::config::BroadcastConfig;
use crate::message::Phase;
use crate::node::BrachaBroadcast;

fn violation(text: String) -> Result<(), InvariantViolation> {
    Err(InvariantViolation(text))
}

/// Check every invariant of `node`.
pub(crate) fn check(
    node: &BrachaBroadcast,
    config: &BroadcastConfig,
    queued_requests: usize,
    me: NodeId,
) -> Result<(), InvariantViolation> {
    if queued_requests > config.request_queue_len_max {
        return violation(format!(
            "{queued_requests} queued requests exceed request_queue_len_max"
        ));
    }
    if node.delivered.len() > node.delivered.len_max() {
        return violation(format!(
            "{} delivered entries exceed delivered_cache_len_max",
            node.delivered.len()
        ));
    }
    for (origin, window) in node.origins.iter().enumerate() {
        let end = window.low.saturating_add(config.window_per_origin);
        if window.delivered_above_low.contains(&window.low) {
            return violation(format!(
                "origin n{origin}: low {} is delivered but low did not advance",
                window.low
            ));
        }
        for seq in window
            .active
            .keys()
            .chain(window.delivered_above_low.iter())
        {
            if *seq < window.low || *seq >= end {
                return violation(format!(
                    "origin n{origin}: seq {seq} held outside window [{}, {end})",
                    window.low
                ));
            }
        }
        for (seq, instance) in &window.active {
            if window.delivered_above_low.contains(seq) {
                return violation(format!(
                    "origin n{origin} seq {seq}: delivered yet still tallied"
                ));
            }
            if instance.payloads_held() > 2 * config.n + 1 {
                return violation(format!(
                    "origin n{origin} seq {seq}: {} payloads held",
                    instance.payloads_held()
                ));
            }
            let own = [
                (Phase::Echo, &instance.my_echo, &instance.echoes),
                (Phase::Ready, &instance.my_ready, &instance.readies),
            ];
            for (phase, message, tally) in own {
                if let Some(message) = message {
                    let recorded = tally[me.index()];
                    if recorded != Some(crate::signing::payload_digest(&message.payload)) {
                        return violation(format!(
                            "origin n{origin} seq {seq}: own {phase:?} not in the tally"
                        ));
                    }
                }
            }
        }
    }
    for (id, entry) in node.delivered.iter() {
        let window = &node.origins[id.origin.index()];
        if id.seq >= window.low && !window.delivered_above_low.contains(&id.seq) {
            return violation(format!(
                "{id:?} cached as delivered but its window says undelivered"
            ));
        }
        // Rules 3 and 4: a node delivers v only with 2f+1 READYs for v, of which f+1 come from
        // correct nodes, so with at most f faults its own READY is for v too.
        if crate::signing::payload_digest(&entry.my_ready.payload) != entry.digest {
            return violation(format!(
                "{id:?}: delivered a payload other than the one this node readied"
            ));
        }
    }
    Ok(())
}
