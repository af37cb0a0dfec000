//! The simulation scenarios this binary adds to the simulator's own, and the registry `stockade
//! sim` runs.

pub mod broadcast;
pub mod checkers;

use stockade_sim::Registry;

/// Every scenario `stockade sim` knows: the simulator's built-in ones and the protocols'.
pub fn registry() -> Registry {
    let mut registry = Registry::with_builtin();
    registry.register(broadcast::BroadcastScenario { byzantine: false });
    registry.register(broadcast::BroadcastScenario { byzantine: true });
    stockade_replication::register(&mut registry);
    stockade_attest::scenarios::register(&mut registry);
    stockade_overlay::scenarios::register(&mut registry);
    registry
}
