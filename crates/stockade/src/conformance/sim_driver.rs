//! The conformance suite's simulator driver: a `World` of Bracha nodes on a full mesh of 5 ms
//! links; loss is link loss, and the Byzantine node is the simulator's `Byzantine` wrapper
//! replaying [`crate::attack`].

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use stockade_broadcast::{
    BrachaBroadcast, BroadcastConfig, BroadcastMessage, BroadcastOutput, BroadcastRequest, KeyRing,
};
use stockade_core::NodeId;
use stockade_crypto::CryptoMode;
use stockade_sim::{Byzantine, LinkSpec, SimConfig, Topology, World};

use crate::cluster::node::broadcast_stats_json;

use super::{Committee, CommitteeSpec, ConformanceDriver, Deliveries};

/// Simulated time between two looks at the deliveries.
const STEP: Duration = Duration::from_millis(10);

/// Runs conformance cases in the deterministic simulator with this seed.
pub struct SimDriver {
    /// The run's seed.
    pub seed: u64,
}

struct SimCommittee {
    world: World<BrachaBroadcast>,
    deliveries: Deliveries,
}

impl ConformanceDriver for SimDriver {
    fn start(&self, spec: &CommitteeSpec) -> anyhow::Result<Box<dyn Committee>> {
        let n = 3 * spec.f + 1;
        let config = BroadcastConfig::for_faults(spec.f);
        config.validate()?;
        let keys = KeyRing::for_simulation(n, self.seed, CryptoMode::Real);
        let mut sim = SimConfig::new("conformance", self.seed);
        sim.crypto_mode = CryptoMode::Real.describe().to_string();
        let topology = Topology::full_mesh(
            n as u32,
            LinkSpec::ideal(Duration::from_millis(5)).with_loss(spec.loss),
        );
        let factory_keys = keys.clone();
        let mut world = World::new(sim, topology, move |id, _| {
            BrachaBroadcast::new(config.clone(), factory_keys[id.index()].clone())
                .expect("validated above")
        })
        .context("building the simulated committee")?;
        if let Some(bad) = spec.byzantine {
            let bad_keys = keys[bad.index()].clone();
            let attack = Byzantine::new().equivocate(move |to, m: &BroadcastMessage, _| {
                crate::attack::equivocate(&bad_keys, to, m)
            });
            world.set_adversary(bad, attack)?;
        }
        Ok(Box::new(SimCommittee {
            world,
            deliveries: Deliveries::new(),
        }))
    }
}

impl Committee for SimCommittee {
    fn broadcast(&mut self, origin: NodeId, payload: Vec<u8>) -> anyhow::Result<()> {
        self.world.request(origin, BroadcastRequest { payload });
        Ok(())
    }

    fn run_until(
        &mut self,
        timeout: Duration,
        done: &dyn Fn(&Deliveries) -> bool,
    ) -> anyhow::Result<bool> {
        let deadline = self.world.now() + timeout;
        loop {
            for delivery in self.world.take_outputs() {
                if let BroadcastOutput::Delivered { instance, payload } = delivery.output {
                    self.deliveries
                        .entry(delivery.node)
                        .or_default()
                        .insert(instance, payload);
                }
            }
            if done(&self.deliveries) {
                return Ok(true);
            }
            if self.world.now() >= deadline {
                return Ok(false);
            }
            self.world.run_for(STEP)?;
        }
    }

    fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    fn finish(&mut self) -> anyhow::Result<BTreeMap<NodeId, serde_json::Value>> {
        let n = self.world.node_count() as u32;
        Ok((0..n)
            .filter_map(|i| {
                self.world
                    .protocol(NodeId(i))
                    .map(|p| (NodeId(i), broadcast_stats_json(&p.stats())))
            })
            .collect())
    }
}
