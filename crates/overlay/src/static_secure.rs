//! The whole secure routing primitive of paper 002 ("Secure routing primitive"; Castro et al.,
//! OSDI'02, section 5) over two [`StaticOverlay`]s with the same nodes: one with proximity-chosen
//! tables for efficient routing, one with constrained tables for secure routing.
//!
//! A secure lookup first routes plainly over the proximity tables. The node that answers (the
//! root, or the first malicious node on the path, which forges the answer) returns a replica set.
//! The sender applies the routing failure test: the mean id spacing of the returned set against
//! the mean spacing of its own leaf set; a set spaced more than `gamma` times wider fails. The
//! attacker's best forgery is the colluders nearest to the key (any honest member it included
//! would receive the message), and colluders are a fraction f of the ids, so their spacing is
//! about 1/f times wider. On a failed test the sender falls back to redundant routing over the
//! constrained tables ([`StaticOverlay::redundant_route_succeeds`]). A lookup succeeds when the
//! message reaches an honest replica: the plain route met only honest nodes, or the test caught
//! the forgery and redundant routing got through.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::id::OverlayId;
use crate::static_faults::ratio;
use crate::static_overlay::StaticOverlay;

/// The routing failure test's default threshold on the spacing ratio (our choice: honest sets
/// of 32 ids rarely exceed it, forged ones at f <= 0.3 are over 3 times wider).
pub const FAILURE_TEST_GAMMA_DEFAULT: f64 = 1.7;

/// The two overlays do not hold the same nodes.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("secure routing needs two tables over the same nodes: build both overlays from one seed and malicious fraction")]
pub struct DifferentNodes;

/// Results of secure lookups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecureRoutingStats {
    /// Lookups from honest sources.
    pub lookups: u64,
    /// Plain routes over the proximity tables that met only honest nodes.
    pub plain_success: u64,
    /// Plain routes intercepted by a malicious node (which forged a replica set).
    pub intercepted: u64,
    /// Intercepted lookups the routing failure test caught.
    pub detected: u64,
    /// Lookups whose root's true replica set would fail the test (a false positive costs a
    /// redundant route, not correctness), counted for every lookup.
    pub false_positives: u64,
    /// Redundant routes run (after a failed test).
    pub redundant_runs: u64,
    /// Lookups that reached an honest replica.
    pub secure_success: u64,
}

impl SecureRoutingStats {
    /// Fraction of secure lookups that reached an honest replica.
    pub fn success_rate(&self) -> f64 {
        ratio(self.secure_success, self.lookups)
    }
    /// Fraction of plain routes that met only honest nodes.
    pub fn plain_rate(&self) -> f64 {
        ratio(self.plain_success, self.lookups)
    }
    /// Fraction of forgeries the routing failure test caught.
    pub fn detection_rate(&self) -> f64 {
        ratio(self.detected, self.intercepted)
    }
    /// Fraction of true replica sets the test would fail.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.false_positives, self.lookups)
    }
}

/// Mean spacing between the ids of a set that sits near `reference` (well within half the ring):
/// the span of their signed offsets from `reference` over the gaps between them.
fn mean_spacing(reference: OverlayId, ids: impl Iterator<Item = OverlayId>) -> f64 {
    let (mut low, mut high, mut count) = (i128::MAX, i128::MIN, 0usize);
    for id in ids {
        let offset = reference.clockwise_to(id) as i128;
        low = low.min(offset);
        high = high.max(offset);
        count += 1;
    }
    if count < 2 {
        return 0.0;
    }
    (high - low) as f64 / (count - 1) as f64
}

impl StaticOverlay {
    fn same_nodes_as(&self, other: &StaticOverlay) -> bool {
        self.len() == other.len()
            && (0..self.len() as u32)
                .all(|i| self.id(i) == other.id(i) && self.is_malicious(i) == other.is_malicious(i))
    }

    /// The `count` malicious nodes numerically closest to `key`: the forged replica set.
    fn colluders_near(&self, key: OverlayId, count: usize) -> Vec<OverlayId> {
        let n = self.len();
        let root = self.root_of(key) as usize;
        let mut found: Vec<OverlayId> = Vec::with_capacity(2 * count);
        for step in [1usize, n - 1] {
            let (mut rank, mut side) = (root, 0);
            for _ in 0..n {
                if side == count {
                    break;
                }
                if self.is_malicious(rank as u32) {
                    found.push(self.id(rank as u32));
                    side += 1;
                }
                rank = (rank + step) % n;
            }
        }
        found.sort_by(|a, b| key.closeness_order(*a, *b));
        found.dedup();
        found.truncate(count);
        found
    }

    /// Run `lookups` secure lookups (module doc) from honest sources: plain routing over `self`
    /// (proximity tables), the routing failure test with threshold `gamma` on replica sets of
    /// `replicas` ids, and redundant routing with `redundancy` paths over `constrained`.
    pub fn measure_secure_routing(
        &self,
        constrained: &StaticOverlay,
        lookups: usize,
        replicas: usize,
        redundancy: usize,
        gamma: f64,
        seed: u64,
    ) -> Result<SecureRoutingStats, DifferentNodes> {
        if !self.same_nodes_as(constrained) {
            return Err(DifferentNodes);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ec);
        let n = self.len() as u32;
        let mut stats = SecureRoutingStats::default();
        if (0..n).all(|i| self.is_malicious(i)) {
            return Ok(stats);
        }
        let mut path = Vec::new();
        while (stats.lookups as usize) < lookups {
            let source = rng.gen_range(0..n);
            if self.is_malicious(source) {
                continue;
            }
            let key = OverlayId(rng.gen());
            stats.lookups += 1;
            let outcome = self.route(source, key, &mut path);
            let honest = path.iter().all(|node| !self.is_malicious(*node));
            let mut own = Vec::new();
            self.view(source)
                .for_each_leaf(&mut |leaf| own.push(self.id(leaf)));
            own.push(self.id(source));
            let own_spacing = mean_spacing(self.id(source), own.into_iter());
            let fails_test = |answer: Vec<OverlayId>| {
                mean_spacing(key, answer.into_iter()) > gamma * own_spacing
            };
            // The test on the root's true replica set, whoever answered: its false positives.
            let true_set = self
                .closest_ranks(key, replicas)
                .into_iter()
                .map(|r| self.id(r));
            let true_set_fails = fails_test(true_set.collect());
            stats.false_positives += u64::from(true_set_fails);
            if honest {
                stats.plain_success += 1;
                stats.secure_success += 1;
                stats.redundant_runs += u64::from(true_set_fails);
                debug_assert_eq!(outcome.root, self.root_of(key));
                continue;
            }
            let test_failed = fails_test(self.colluders_near(key, replicas));
            stats.intercepted += 1;
            if test_failed {
                stats.detected += 1;
                stats.redundant_runs += 1;
                if constrained.redundant_route_succeeds(source, key, redundancy) {
                    stats.secure_success += 1;
                }
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_overlay::{StaticConfig, TableRule};

    fn pair(nodes: usize, fraction: f64) -> (StaticOverlay, StaticOverlay) {
        let build = |rule| {
            StaticOverlay::build(&StaticConfig {
                table_rule: rule,
                malicious_fraction: fraction,
                leaf_set_size: 32,
                ..StaticConfig::paper(nodes, 9)
            })
            .expect("valid config")
        };
        (build(TableRule::Proximity), build(TableRule::Constrained))
    }

    #[test]
    fn the_failure_test_catches_forgeries_and_redundancy_recovers_them() {
        let (pns, constrained) = pair(3000, 0.25);
        let s = pns
            .measure_secure_routing(&constrained, 2000, 32, 32, FAILURE_TEST_GAMMA_DEFAULT, 4)
            .expect("same nodes");
        assert!(
            s.intercepted > s.lookups / 2,
            "liars attract most plain routes"
        );
        assert!(s.detection_rate() > 0.99, "detected {}", s.detection_rate());
        assert!(
            s.false_positive_rate() < 0.2,
            "fp {}",
            s.false_positive_rate()
        );
        assert!(s.redundant_runs >= s.detected);
        assert!(s.success_rate() > 0.97 && s.success_rate() > s.plain_rate());
    }

    #[test]
    fn without_attackers_every_lookup_succeeds_plainly() {
        let (pns, constrained) = pair(1000, 0.0);
        let s = pns
            .measure_secure_routing(&constrained, 500, 32, 32, FAILURE_TEST_GAMMA_DEFAULT, 4)
            .expect("same nodes");
        assert_eq!(
            (s.plain_success, s.secure_success, s.intercepted),
            (500, 500, 0)
        );
    }

    #[test]
    fn overlays_over_different_nodes_are_refused() {
        let (pns, _) = pair(1000, 0.1);
        let (other, _) = pair(999, 0.1);
        assert_eq!(
            pns.measure_secure_routing(&other, 10, 32, 32, 1.5, 1),
            Err(DifferentNodes)
        );
    }

    #[test]
    fn spacing_spans_the_set_across_the_reference() {
        let ids = [OverlayId(u128::MAX - 9), OverlayId(10), OverlayId(0)];
        assert_eq!(mean_spacing(OverlayId(0), ids.into_iter()), 10.0);
        assert_eq!(mean_spacing(OverlayId(0), [OverlayId(5)].into_iter()), 0.0);
    }
}
