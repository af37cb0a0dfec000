//! An overlay on the simulator's [`World`]: nodes at random points on a latency plane (links
//! rounded to whole milliseconds), joined one at a time, each through the joined node nearest to
//! it, as Pastry assumes of a bootstrap.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stockade_core::{NodeId, Protocol};
use stockade_sim::{LinkSpec, SimConfig, Topology, World};

use super::ScenarioError;
use crate::dht::Past;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::latency::{LatencyModel, Position};
use crate::protocol::{KbrApplication, Pastry, Phase};
use crate::scribe::Scribe;

/// The most nodes an event-driven overlay scenario simulates (a full mesh of links).
pub const WORLD_NODES_MAX: usize = 2_000;
/// Time between two joins while the overlay grows.
pub const JOIN_GAP: Duration = Duration::from_millis(300);

/// A protocol with a Pastry node inside.
pub trait OverlayMember: Protocol {
    /// The node's handle.
    fn member_handle(&self) -> NodeHandle;
    /// Whether it finished joining.
    fn member_joined(&self) -> bool;
}

impl<A: KbrApplication> OverlayMember for Pastry<A> {
    fn member_handle(&self) -> NodeHandle {
        self.handle()
    }
    fn member_joined(&self) -> bool {
        self.phase() == Phase::Joined
    }
}

impl OverlayMember for Past {
    fn member_handle(&self) -> NodeHandle {
        self.pastry().handle()
    }
    fn member_joined(&self) -> bool {
        self.pastry().phase() == Phase::Joined
    }
}

impl OverlayMember for Scribe {
    fn member_handle(&self) -> NodeHandle {
        self.pastry().handle()
    }
    fn member_joined(&self) -> bool {
        self.pastry().phase() == Phase::Joined
    }
}

/// A simulated overlay and what the scenario needs to know about it.
pub struct OverlayWorld<P: OverlayMember> {
    /// The simulation.
    pub world: World<P>,
    /// Node i's handle (its id stays the same across restarts).
    pub handles: Vec<NodeHandle>,
    positions: Vec<Position>,
    /// Which nodes are joined, as the factory sees it when picking a bootstrap.
    joined: Rc<RefCell<Vec<bool>>>,
}

impl<P: OverlayMember + 'static> OverlayWorld<P> {
    /// Build `nodes` nodes with `make(handle, bootstrap)` and grow the overlay one join per
    /// [`JOIN_GAP`]. `config` names the scenario and seed.
    pub fn grow(
        config: SimConfig,
        nodes: usize,
        make: impl Fn(NodeHandle, Option<NodeId>) -> P + 'static,
    ) -> Result<OverlayWorld<P>, ScenarioError> {
        if !(2..=WORLD_NODES_MAX).contains(&nodes) {
            return Err(super::out_of_range(
                "nodes",
                &format!("between 2 and {WORLD_NODES_MAX}"),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0e7_1a7);
        let handles: Vec<NodeHandle> = (0..nodes)
            .map(|i| NodeHandle {
                id: OverlayId(rng.gen()),
                addr: NodeId(i as u32),
            })
            .collect();
        let positions: Vec<Position> = (0..nodes)
            .map(|_| LatencyModel::Plane.place(&mut rng))
            .collect();
        let mut topology =
            Topology::full_mesh(nodes as u32, LinkSpec::ideal(Duration::from_millis(50)));
        for a in 0..nodes {
            for b in a + 1..nodes {
                let ms = link_ms(&positions, a, b);
                topology
                    .set_link_pair(
                        NodeId(a as u32),
                        NodeId(b as u32),
                        LinkSpec::ideal(Duration::from_millis(ms)),
                    )
                    .map_err(|e| ScenarioError::Setup(e.to_string()))?;
            }
        }
        let joined = Rc::new(RefCell::new(vec![false; nodes]));
        let factory_joined = joined.clone();
        let factory_handles = handles.clone();
        let factory_positions = positions.clone();
        let world = World::new(config, topology, move |id, _store| {
            let me = factory_handles[id.index()];
            let bootstrap = nearest(&factory_positions, &factory_joined.borrow(), id.index());
            make(me, bootstrap)
        })
        .map_err(|e| ScenarioError::Setup(e.to_string()))?;
        let mut overlay = OverlayWorld {
            world,
            handles,
            positions,
            joined,
        };
        for i in 1..nodes {
            overlay.sim(|w| w.crash(NodeId(i as u32)))?;
        }
        overlay.sim(|w| w.run_for(JOIN_GAP))?;
        overlay.refresh_joined();
        for i in 1..nodes {
            overlay.sim(|w| w.restart(NodeId(i as u32)))?;
            overlay.sim(|w| w.run_for(JOIN_GAP))?;
            overlay.refresh_joined();
        }
        overlay.sim(|w| w.run_for(Duration::from_secs(5)))?;
        overlay.refresh_joined();
        Ok(overlay)
    }

    /// Run a simulator call, turning its error into a scenario error.
    pub fn sim<T>(
        &mut self,
        call: impl FnOnce(&mut World<P>) -> Result<T, stockade_sim::SimError>,
    ) -> Result<T, ScenarioError> {
        call(&mut self.world).map_err(|e| ScenarioError::Setup(e.to_string()))
    }

    /// Record which nodes are joined (the factory picks bootstraps among them).
    pub fn refresh_joined(&mut self) {
        let mut joined = self.joined.borrow_mut();
        for (i, flag) in joined.iter_mut().enumerate() {
            *flag = self
                .world
                .protocol(NodeId(i as u32))
                .is_some_and(|p| p.member_joined());
        }
    }

    /// Whether node `i` is up and joined (as of the last refresh).
    pub fn is_joined(&self, i: usize) -> bool {
        self.joined.borrow()[i]
    }

    /// Joined nodes.
    pub fn joined_nodes(&self) -> Vec<usize> {
        (0..self.handles.len())
            .filter(|i| self.is_joined(*i))
            .collect()
    }

    /// The joined node numerically closest to `key`.
    pub fn root_of(&self, key: OverlayId) -> Option<usize> {
        self.joined_nodes()
            .into_iter()
            .min_by(|a, b| key.closeness_order(self.handles[*a].id, self.handles[*b].id))
    }

    /// The `k` joined nodes numerically closest to `key`.
    pub fn closest(&self, key: OverlayId, k: usize) -> Vec<usize> {
        let mut nodes = self.joined_nodes();
        nodes.sort_by(|a, b| key.closeness_order(self.handles[*a].id, self.handles[*b].id));
        nodes.truncate(k);
        nodes
    }

    /// Crash each of `among` with probability `fraction`; returns the crashed nodes.
    pub fn crash_some(
        &mut self,
        among: &[usize],
        fraction: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<usize>, ScenarioError> {
        let victims: Vec<usize> = among
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(fraction))
            .collect();
        for v in &victims {
            self.sim(|w| w.crash(NodeId(*v as u32)))?;
        }
        Ok(victims)
    }

    /// One-way latency between two nodes, ms.
    pub fn latency_ms(&self, a: usize, b: usize) -> f64 {
        LatencyModel::Plane.latency_ms(self.positions[a], self.positions[b])
    }

    /// The simulated link's latency between two nodes, whole ms.
    pub fn link_latency_ms(&self, a: usize, b: usize) -> u64 {
        link_ms(&self.positions, a, b)
    }
}

/// The link latency between nodes `a` and `b`: their plane distance rounded to whole ms, at least 1.
fn link_ms(positions: &[Position], a: usize, b: usize) -> u64 {
    LatencyModel::Plane
        .latency_ms(positions[a], positions[b])
        .round()
        .max(1.0) as u64
}

/// The joined node nearest to node `me` by latency.
fn nearest(positions: &[Position], joined: &[bool], me: usize) -> Option<NodeId> {
    (0..positions.len())
        .filter(|j| *j != me && joined[*j])
        .min_by(|a, b| {
            let da = LatencyModel::Plane.latency_ms(positions[me], positions[*a]);
            let db = LatencyModel::Plane.latency_ms(positions[me], positions[*b]);
            da.total_cmp(&db)
        })
        .map(|j| NodeId(j as u32))
}
