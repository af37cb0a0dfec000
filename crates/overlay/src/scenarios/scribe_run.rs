//! `scribe`: many groups over a simulated Pastry overlay; every member must receive each
//! multicast exactly once, before and after a fraction of nodes crashes and trees repair.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{RunOptions, Scenario, ScenarioError, ScenarioOutcome, SimConfig};

use super::failures::{model_arg, Model};
use super::world::OverlayWorld;
use super::{count_arg, finish_world, fraction_arg};
use crate::id::OverlayId;
use crate::scribe::{Scribe, ScribeConfig, ScribeOutput, ScribeRequest};
use crate::static_scribe::mean;

/// `scribe`.
pub struct ScribeScenario;

/// What one multicast per group achieved.
#[derive(Default)]
struct Round {
    /// Live members.
    expected: u64,
    /// Live members that received the message exactly once.
    exactly_once: u64,
    /// Extra copies received.
    duplicates: u64,
    /// Per receiving member other than the sender: delay from the multicast call to delivery
    /// (through the root and down the tree) over the direct link's delay.
    rdp: Vec<f64>,
}

/// Multicast once per group from a random live node and count, per group, members that
/// received exactly once, and their delay penalty.
fn multicast_round(
    overlay: &mut OverlayWorld<Scribe>,
    rng: &mut ChaCha8Rng,
    groups: &[(OverlayId, Vec<usize>)],
    round: u8,
) -> Result<Round, ScenarioError> {
    overlay.world.take_outputs();
    let live = overlay.joined_nodes();
    let sent_at = overlay.world.now();
    let mut senders = Vec::with_capacity(groups.len());
    for (topic, _) in groups {
        let sender = live[rng.gen_range(0..live.len())];
        senders.push(sender);
        overlay.world.request(
            NodeId(sender as u32),
            ScribeRequest::Multicast {
                topic: *topic,
                data: vec![round],
            },
        );
    }
    overlay.sim(|w| w.run_for(Duration::from_secs(5)))?;
    let outputs = overlay.world.take_outputs();
    let mut result = Round::default();
    for ((topic, members), sender) in groups.iter().zip(&senders) {
        for m in members.iter().filter(|m| overlay.is_joined(**m)) {
            result.expected += 1;
            let mut got = outputs
                .iter()
                .filter(|d| d.node.index() == *m)
                .filter(|d| matches!(&d.output, ScribeOutput::Received { topic: t, data } if t == topic && data == &[round]));
            let Some(first) = got.next() else {
                continue;
            };
            let extra = got.count() as u64;
            result.exactly_once += u64::from(extra == 0);
            result.duplicates += extra;
            if m != sender {
                let delay_ms = (first.at - sent_at).as_secs_f64() * 1e3;
                result
                    .rdp
                    .push(delay_ms / overlay.link_latency_ms(*sender, *m) as f64);
            }
        }
    }
    Ok(result)
}

impl Scenario for ScribeScenario {
    fn name(&self) -> &'static str {
        "scribe"
    }
    fn description(&self) -> &'static str {
        "Scribe multicast trees over Pastry. Events (up to 2,000 nodes): G groups, members join, \
         multicast before and after a fraction of nodes crashes [--nodes 300 --groups 10 \
         --members 0.1 --fail 0.05]. Static (above 2,000 nodes or --model static): delay penalty \
         and link stress against IP multicast [--nodes 100000 --groups 1500 --zipf 1.25 --grid-side 50]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        let nodes = options.u64_arg("nodes", 300)?;
        if model_arg(options, nodes, true)? == Model::Static {
            return super::scribe_static::run_static(self.name(), options);
        }
        options.reject_unknown(&["nodes", "groups", "members", "fail", "model"])?;
        let nodes = super::world_nodes_arg(options, 300)?;
        let group_count = count_arg(options, "groups", 10, 1, 1_000)?;
        let member_fraction = fraction_arg(options, "members", 0.1, 1.0)?;
        let fail = fraction_arg(options, "fail", 0.05, 0.5)?;
        let config = SimConfig::new(self.name(), options.seed);
        let scribe = ScribeConfig::default();
        let mut overlay = OverlayWorld::grow(config, nodes, move |me, bootstrap| {
            Scribe::new(scribe.clone(), me, bootstrap)
        })?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5c1b);
        let joined = overlay.joined_nodes();
        let groups: Vec<(OverlayId, Vec<usize>)> = (0..group_count)
            .map(|_| {
                let members: Vec<usize> = joined
                    .iter()
                    .copied()
                    .filter(|_| rng.gen_bool(member_fraction))
                    .collect();
                (OverlayId(rng.gen()), members)
            })
            .collect();
        for (topic, members) in &groups {
            for m in members {
                overlay.world.request(
                    NodeId(*m as u32),
                    ScribeRequest::Join {
                        topic: *topic,
                        label: b"member".to_vec(),
                    },
                );
            }
        }
        overlay.sim(|w| w.run_for(Duration::from_secs(5)))?;
        let tree_nodes: usize = groups
            .iter()
            .map(|(topic, _)| {
                joined
                    .iter()
                    .filter(|n| {
                        overlay
                            .world
                            .protocol(NodeId(**n as u32))
                            .is_some_and(|p| p.topic(*topic).is_some())
                    })
                    .count()
            })
            .sum();
        let members_total: usize = groups.iter().map(|(_, m)| m.len()).sum();
        let before = multicast_round(&mut overlay, &mut rng, &groups, 1)?;

        let victims = overlay.crash_some(&joined, fail, &mut rng)?;
        overlay.sim(|w| w.run_for(Duration::from_secs(15)))?;
        overlay.refresh_joined();
        let after = multicast_round(&mut overlay, &mut rng, &groups, 2)?;

        let figures = json!({
            "groups": group_count,
            "members": members_total,
            "tree_nodes": tree_nodes,
            "delivered_before": before.exactly_once,
            "expected_before": before.expected,
            "rdp_mean": mean(&before.rdp),
            "rdp_max": before.rdp.iter().copied().fold(0.0, f64::max),
            "rdp_definition": "delay from the multicast call at a random live node (routed to the root, then down the tree) over the direct link's delay, before failures",
            "crashed": victims.len(),
            "delivered_after_repair": after.exactly_once,
            "expected_after_repair": after.expected,
            "duplicates": before.duplicates + after.duplicates,
        });
        let failure = if before.exactly_once < before.expected {
            Some(format!(
                "{} of {} members missed a multicast before failures",
                before.expected - before.exactly_once,
                before.expected
            ))
        } else if after.exactly_once < after.expected {
            Some(format!(
                "{} of {} members missed a multicast after tree repair",
                after.expected - after.exactly_once,
                after.expected
            ))
        } else {
            None
        };
        finish_world(&overlay.world, self.name(), options, figures, failure)
    }
}
