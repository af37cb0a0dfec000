//! `pastry-churn`: nodes crash and rejoin while lookups run; after churn stops and the overlay
//! repairs itself, every lookup must reach the numerically closest live node.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{RunOptions, Scenario, ScenarioError, ScenarioOutcome, SimConfig};

use super::world::OverlayWorld;
use super::{count_arg, finish_world, fraction_arg};
use crate::id::OverlayId;
use crate::protocol::{Pastry, PastryConfig, PastryOutput, PastryRequest};

/// Time the overlay gets to repair after churn stops, before the final lookups.
const SETTLE: Duration = Duration::from_secs(15);

/// `pastry-churn`.
pub struct ChurnScenario;

/// Lookups in flight: id -> (key, expected root at sending).
pub(super) type Issued = BTreeMap<u64, (OverlayId, usize)>;

/// Lookups issued, delivered, delivered at the right root, and their hops.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) issued: u64,
    pub(super) delivered: u64,
    pub(super) correct: u64,
    pub(super) hops: u64,
}

impl Tally {
    /// Fraction of issued lookups delivered at the right root.
    pub(super) fn correct_rate(&self) -> f64 {
        self.correct as f64 / self.issued.max(1) as f64
    }
}

/// Route `count` random keys from random joined nodes.
pub(super) fn issue(
    overlay: &mut OverlayWorld<Pastry>,
    rng: &mut ChaCha8Rng,
    count: usize,
    next_id: &mut u64,
    issued: &mut Issued,
    tally: &mut Tally,
) {
    let joined = overlay.joined_nodes();
    if joined.is_empty() {
        return;
    }
    for _ in 0..count {
        let source = joined[rng.gen_range(0..joined.len())];
        let key = OverlayId(rng.gen());
        let Some(root) = overlay.root_of(key) else {
            return;
        };
        let payload = next_id.to_le_bytes().to_vec();
        issued.insert(*next_id, (key, root));
        *next_id += 1;
        tally.issued += 1;
        overlay
            .world
            .request(NodeId(source as u32), PastryRequest::Route { key, payload });
    }
}

/// Match deliveries to the lookups issued.
pub(super) fn collect(overlay: &mut OverlayWorld<Pastry>, issued: &mut Issued, tally: &mut Tally) {
    for delivery in overlay.world.take_outputs() {
        if let PastryOutput::Delivered {
            key, hops, payload, ..
        } = delivery.output
        {
            let Ok(bytes) = <[u8; 8]>::try_from(payload.as_slice()) else {
                continue;
            };
            let Some((expected_key, root)) = issued.remove(&u64::from_le_bytes(bytes)) else {
                continue;
            };
            tally.delivered += 1;
            tally.hops += u64::from(hops);
            // The root may have changed while the lookup was in flight; either answer is right.
            let now_root = overlay.root_of(key);
            if key == expected_key
                && (delivery.node.index() == root || Some(delivery.node.index()) == now_root)
            {
                tally.correct += 1;
            }
        }
    }
}

impl Scenario for ChurnScenario {
    fn name(&self) -> &'static str {
        "pastry-churn"
    }
    fn description(&self) -> &'static str {
        "Pastry nodes crash and rejoin while lookups run, then the overlay repairs \
         [--nodes 300 --seconds 60 --churn 0.2 (fraction replaced per minute) --lookups-per-sec 20]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["nodes", "seconds", "churn", "lookups-per-sec"])?;
        let nodes = super::world_nodes_arg(options, 300)?;
        let seconds = count_arg(options, "seconds", 60, 1, 3_600)?;
        let churn = fraction_arg(options, "churn", 0.2, 1.0)?;
        let per_sec = count_arg(options, "lookups-per-sec", 20, 1, 10_000)?;
        let mut config = SimConfig::new(self.name(), options.seed);
        config.repro_command = super::repro(self.name(), options)
            .replace(&format!("--seed {}", options.seed), "--seed {seed}");
        let pastry = PastryConfig::default();
        let mut overlay = OverlayWorld::grow(config, nodes, move |me, bootstrap| {
            Pastry::new(pastry.clone(), me, bootstrap)
        })?;
        let grown = overlay.joined_nodes().len();
        overlay.world.take_outputs();

        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0xc4u64);
        let (mut next_id, mut issued) = (0u64, Issued::new());
        let mut during = Tally::default();
        let replace_per_sec = churn * nodes as f64 / 60.0;
        let mut crashed: Vec<usize> = Vec::new();
        let (mut crashes, mut rejoins) = (0u64, 0u64);
        for _ in 0..seconds {
            if rng.gen_bool(replace_per_sec.min(1.0)) {
                let joined = overlay.joined_nodes();
                let victim = joined[rng.gen_range(0..joined.len())];
                overlay.sim(|w| w.crash(NodeId(victim as u32)))?;
                crashed.push(victim);
                crashes += 1;
                overlay.refresh_joined();
            }
            if crashed.len() > 1 && rng.gen_bool(replace_per_sec.min(1.0)) {
                let back = crashed.remove(0);
                overlay.sim(|w| w.restart(NodeId(back as u32)))?;
                rejoins += 1;
            }
            issue(
                &mut overlay,
                &mut rng,
                per_sec,
                &mut next_id,
                &mut issued,
                &mut during,
            );
            overlay.sim(|w| w.run_for(Duration::from_secs(1)))?;
            overlay.refresh_joined();
            collect(&mut overlay, &mut issued, &mut during);
        }
        overlay.sim(|w| w.run_for(SETTLE))?;
        overlay.refresh_joined();
        collect(&mut overlay, &mut issued, &mut during);
        issued.clear();
        let mut after = Tally::default();
        issue(
            &mut overlay,
            &mut rng,
            per_sec * 10,
            &mut next_id,
            &mut issued,
            &mut after,
        );
        overlay.sim(|w| w.run_for(Duration::from_secs(5)))?;
        collect(&mut overlay, &mut issued, &mut after);

        let figures = json!({
            "nodes_joined_initially": grown,
            "crashes": crashes,
            "rejoins": rejoins,
            "lookups_during_churn": during.issued,
            "delivered_during_churn": during.delivered,
            "correct_during_churn": during.correct_rate(),
            "mean_hops": during.hops as f64 / during.delivered.max(1) as f64,
            "lookups_after_repair": after.issued,
            "correct_after_repair": after.correct_rate(),
        });
        let failure = if grown < nodes {
            Some(format!("only {grown} of {nodes} nodes joined"))
        } else if after.correct < after.issued {
            Some(format!(
                "{} of {} lookups after repair missed their root",
                after.issued - after.correct,
                after.issued
            ))
        } else {
            None
        };
        finish_world(&overlay.world, self.name(), options, figures, failure)
    }
}
