//! `dht`: PAST-style storage over a simulated Pastry overlay: objects are stored on k replicas,
//! a fraction of nodes crashes, replica maintenance restores the storage invariant, and every
//! object must still be found.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{RunOptions, Scenario, ScenarioError, ScenarioOutcome, SimConfig};

use super::world::OverlayWorld;
use super::{count_arg, finish_world, fraction_arg};
use crate::dht::{Past, PastConfig, PastOutput, PastRequest, StoredObject};

/// Bytes of each object the scenario stores.
const OBJECT_BYTES: usize = 512;

/// `dht`.
pub struct DhtScenario;

impl Scenario for DhtScenario {
    fn name(&self) -> &'static str {
        "dht"
    }
    fn description(&self) -> &'static str {
        "PAST-style DHT on Pastry: store objects on k replicas, crash a fraction of nodes, \
         check every object is found [--nodes 200 --objects 100 --fail 0.1]"
    }
    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["nodes", "objects", "fail"])?;
        let nodes = super::world_nodes_arg(options, 200)?;
        let objects = count_arg(options, "objects", 100, 1, 100_000)?;
        let fail = fraction_arg(options, "fail", 0.1, 0.5)?;
        let config = SimConfig::new(self.name(), options.seed);
        let past = PastConfig::default();
        let replicas = past.replicas;
        let mut overlay = OverlayWorld::grow(config, nodes, move |me, bootstrap| {
            Past::new(past.clone(), me, bootstrap)
        })?;
        overlay.world.take_outputs();
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0xd47);

        let stored: Vec<StoredObject> = (0..objects)
            .map(|_| {
                StoredObject::content_hashed((0..OBJECT_BYTES).map(|_| rng.gen::<u8>()).collect())
            })
            .collect();
        let joined = overlay.joined_nodes();
        for object in &stored {
            let client = joined[rng.gen_range(0..joined.len())];
            overlay
                .world
                .request(NodeId(client as u32), PastRequest::Put(object.clone()));
        }
        overlay.sim(|w| w.run_for(Duration::from_secs(10)))?;
        let puts_complete = overlay
            .world
            .take_outputs()
            .iter()
            .filter(|d| matches!(d.output, PastOutput::PutStored { complete: true, .. }))
            .count();

        let holders_before: Vec<Vec<usize>> = stored
            .iter()
            .map(|o| {
                joined
                    .iter()
                    .copied()
                    .filter(|n| {
                        overlay
                            .world
                            .protocol(NodeId(*n as u32))
                            .is_some_and(|p| p.store().get(o.key).is_some())
                    })
                    .collect()
            })
            .collect();
        let victims = overlay.crash_some(&joined, fail, &mut rng)?;
        // An object whose every replica crashed at once is lost by design (k replicas tolerate
        // k - 1 simultaneous failures); the check covers the others.
        let recoverable: Vec<bool> = holders_before
            .iter()
            .map(|h| h.iter().any(|n| !victims.contains(n)))
            .collect();
        // Failure detection (3 s), leaf-set repair, then replica maintenance (every 2 s).
        overlay.sim(|w| w.run_for(Duration::from_secs(20)))?;
        overlay.refresh_joined();
        let invariant_held = stored
            .iter()
            .filter(|o| {
                overlay.closest(o.key, replicas).iter().all(|n| {
                    overlay
                        .world
                        .protocol(NodeId(*n as u32))
                        .is_some_and(|p| p.store().get(o.key).is_some())
                })
            })
            .count();

        let live = overlay.joined_nodes();
        for object in &stored {
            let reader = live[rng.gen_range(0..live.len())];
            overlay
                .world
                .request(NodeId(reader as u32), PastRequest::Get(object.key));
        }
        overlay.sim(|w| w.run_for(Duration::from_secs(10)))?;
        let answers = overlay.world.take_outputs();
        let found_key = |key| {
            answers.iter().any(|d| {
                matches!(&d.output, PastOutput::GetDone { object: Some(o), key: k, .. } if *k == key && o.key == key)
            })
        };
        let found = stored.iter().filter(|o| found_key(o.key)).count();
        let recoverable_count = recoverable.iter().filter(|r| **r).count();
        let recoverable_found = stored
            .iter()
            .zip(&recoverable)
            .filter(|(o, r)| **r && found_key(o.key))
            .count();
        let cached_nodes = live
            .iter()
            .filter(|n| {
                overlay
                    .world
                    .protocol(NodeId(**n as u32))
                    .is_some_and(|p| p.cache().used_bytes() > 0)
            })
            .count();
        let figures = json!({
            "objects": objects,
            "replicas": replicas,
            "puts_complete": puts_complete,
            "crashed": victims.len(),
            "storage_invariant_held": invariant_held,
            "gets_found": found,
            "objects_with_a_surviving_replica": recoverable_count,
            "recoverable_found": recoverable_found,
            "nodes_caching": cached_nodes,
        });
        let failure = if recoverable_found < recoverable_count {
            Some(format!(
                "{} of {recoverable_count} objects with a surviving replica were not found after {} crashes",
                recoverable_count - recoverable_found,
                victims.len()
            ))
        } else if puts_complete < objects {
            Some(format!(
                "only {puts_complete} of {objects} puts reached all {replicas} replicas"
            ))
        } else {
            None
        };
        finish_world(&overlay.world, self.name(), options, figures, failure)
    }
}
