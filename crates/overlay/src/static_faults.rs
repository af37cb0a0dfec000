//! Routing over a [`StaticOverlay`] when nodes have failed or are malicious: the Pastry paper's
//! failure experiment (routes before any repair) and the secure-routing experiment of paper 002
//! ("Secure routing primitive", Castro et al. OSDI'02): plain routing versus redundant routing to
//! the replica set, over proximity-chosen versus constrained routing tables.
//!
//! Both are pure functions over the tables, like the hop-count experiment.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::id::OverlayId;
use crate::route::{next_hop, progress_candidates, NextHop, RoutingView};
use crate::static_overlay::{StaticOverlay, ROUTE_HOPS_MAX};

/// Results of routing around failed nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureStats {
    /// Lookups routed (from live sources).
    pub lookups: u64,
    /// Lookups that ended at the live node numerically closest to the key.
    pub delivered_correctly: u64,
    /// Total hops over all lookups.
    pub hops_total: u64,
    /// Next hops found dead (each costs a timeout before rerouting), over all lookups.
    pub timeouts: u64,
    /// Nodes failed.
    pub failed_nodes: u64,
    /// `hop_histogram[h]` lookups took h hops.
    pub hop_histogram: Vec<u64>,
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

impl FailureStats {
    /// Fraction of lookups delivered at the right node.
    pub fn success_rate(&self) -> f64 {
        ratio(self.delivered_correctly, self.lookups)
    }
    /// Mean hops per lookup.
    pub fn mean_hops(&self) -> f64 {
        ratio(self.hops_total, self.lookups)
    }
    /// Mean timeouts per lookup.
    pub fn mean_timeouts(&self) -> f64 {
        ratio(self.timeouts, self.lookups)
    }
}

/// Results of routing among malicious nodes that drop what they should forward.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaliciousStats {
    /// Lookups from honest sources.
    pub lookups: u64,
    /// Plain routes that met no malicious node (the root included).
    pub plain_success: u64,
    /// Redundant routes where at least one path reached an honest replica-set member through
    /// honest nodes only.
    pub redundant_success: u64,
    /// Malicious nodes.
    pub malicious_nodes: u64,
    /// Routing-table entries that point at malicious nodes, over all entries.
    pub malicious_entry_fraction: f64,
}

impl MaliciousStats {
    /// Fraction of plain routes that succeed.
    pub fn plain_rate(&self) -> f64 {
        ratio(self.plain_success, self.lookups)
    }
    /// Fraction of redundant routes that succeed.
    pub fn redundant_rate(&self) -> f64 {
        ratio(self.redundant_success, self.lookups)
    }
}

impl StaticOverlay {
    /// The live node numerically closest to `key`.
    pub fn live_root_of(&self, key: OverlayId, dead: &[bool]) -> Option<u32> {
        let n = self.len();
        let start = self.root_of(key) as usize;
        let mut best: Option<u32> = None;
        // Walk outward from the overall root; the first live node on each side is a candidate.
        for step in [1usize, n - 1] {
            let mut rank = start;
            for _ in 0..n {
                if !dead[rank] {
                    let candidate = rank as u32;
                    let better = best.is_none_or(|b| key.prefers(self.id(candidate), self.id(b)));
                    if better {
                        best = Some(candidate);
                    }
                    break;
                }
                rank = (rank + step) % n;
            }
        }
        best
    }

    /// Route `key` from `source`, skipping next hops in `dead` as Pastry does after a timeout: the
    /// next best known live node that makes progress is tried instead. Returns the node where the
    /// route ended, the hops, and the timeouts.
    pub fn route_around(&self, source: u32, key: OverlayId, dead: &[bool]) -> (u32, usize, usize) {
        let (mut here, mut hops, mut timeouts) = (source, 0usize, 0usize);
        while hops < ROUTE_HOPS_MAX {
            let view = self.view(here);
            let next = match next_hop(&view, key) {
                NextHop::Deliver => return (here, hops, timeouts),
                NextHop::Forward { peer, .. } if !dead[peer as usize] => Some(peer),
                NextHop::Forward { .. } => {
                    timeouts += 1;
                    self.live_alternative(here, key, dead)
                }
            };
            match next {
                Some(peer) => {
                    here = peer;
                    hops += 1;
                }
                None => return (here, hops, timeouts),
            }
        }
        (here, hops, timeouts)
    }

    /// The best live known node that makes progress toward `key` from `here`.
    fn live_alternative(&self, here: u32, key: OverlayId, dead: &[bool]) -> Option<u32> {
        let view = self.view(here);
        let digits = view.digits();
        let me = self.id(here);
        let in_leaf_range = view.leaf_range_contains(key);
        let my_prefix = digits.shared_prefix_len(me, key);
        let mut best: Option<(usize, u32)> = None;
        view.for_each_known(&mut |peer| {
            if dead[peer as usize] {
                return;
            }
            let id = self.id(peer);
            let prefix = digits.shared_prefix_len(id, key);
            let progress = key.prefers(id, me) || (!in_leaf_range && prefix > my_prefix);
            if !progress {
                return;
            }
            // Inside the leaf range only closeness counts; outside, prefix first.
            let rank = if in_leaf_range { 0 } else { prefix };
            let better = match best {
                None => true,
                Some((r, b)) => rank > r || (rank == r && key.prefers(id, self.id(b))),
            };
            if better {
                best = Some((rank, peer));
            }
        });
        best.map(|(_, peer)| peer)
    }

    /// Fail a random `fraction` of nodes at once and route `lookups` random keys from live
    /// sources before any repair (the Pastry paper's failure experiment).
    pub fn measure_failures(&self, fraction: f64, lookups: usize, seed: u64) -> FailureStats {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa11);
        let n = self.len();
        let dead: Vec<bool> = (0..n)
            .map(|_| rng.gen_bool(fraction.clamp(0.0, 1.0)))
            .collect();
        let mut stats = FailureStats {
            failed_nodes: dead.iter().filter(|d| **d).count() as u64,
            ..FailureStats::default()
        };
        if stats.failed_nodes as usize == n {
            return stats;
        }
        while (stats.lookups as usize) < lookups {
            let source = rng.gen_range(0..n as u32);
            if dead[source as usize] {
                continue;
            }
            let key = OverlayId(rng.gen());
            let (end, hops, timeouts) = self.route_around(source, key, &dead);
            stats.lookups += 1;
            stats.hops_total += hops as u64;
            if stats.hop_histogram.len() <= hops {
                stats.hop_histogram.resize(hops + 1, 0);
            }
            stats.hop_histogram[hops] += 1;
            stats.timeouts += timeouts as u64;
            if Some(end) == self.live_root_of(key, &dead) {
                stats.delivered_correctly += 1;
            }
        }
        stats
    }

    /// Route `lookups` random keys from honest sources among this overlay's malicious nodes,
    /// plainly and redundantly over `redundancy` diverse first hops to the key's `redundancy`
    /// closest nodes (its replica set).
    pub fn measure_malicious(
        &self,
        lookups: usize,
        redundancy: usize,
        seed: u64,
    ) -> MaliciousStats {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xbad);
        let n = self.len() as u32;
        let malicious_nodes = (0..n).filter(|i| self.is_malicious(*i)).count() as u64;
        let mut stats = MaliciousStats {
            malicious_nodes,
            malicious_entry_fraction: self.malicious_entry_fraction(),
            ..MaliciousStats::default()
        };
        if malicious_nodes == u64::from(n) {
            return stats;
        }
        let mut path = Vec::new();
        while (stats.lookups as usize) < lookups {
            let source = rng.gen_range(0..n);
            if self.is_malicious(source) {
                continue;
            }
            let key = OverlayId(rng.gen());
            stats.lookups += 1;
            self.route(source, key, &mut path);
            if path.iter().all(|node| !self.is_malicious(*node)) {
                stats.plain_success += 1;
            }
            if self.redundant_route_succeeds(source, key, redundancy) {
                stats.redundant_success += 1;
            }
        }
        stats
    }

    /// Whether one of `redundancy` paths, each leaving `source` through a different neighbour
    /// (the next hop, then leaf-set members),
    /// reaches through honest nodes only an honest node whose leaf set covers the key: that node
    /// knows the whole replica set and sends a copy to each member directly, so the message
    /// reaches every honest replica (Castro et al.'s redundant routing, paper 002 "Secure routing
    /// primitive").
    pub(crate) fn redundant_route_succeeds(
        &self,
        source: u32,
        key: OverlayId,
        redundancy: usize,
    ) -> bool {
        let replicas = self.closest_ranks(key, redundancy);
        if replicas.contains(&source) {
            return true;
        }
        // The normal next hop, then leaf-set members: their ids are spread over the ring around
        // the source, so their routes share few nodes until the key's neighbourhood.
        let view = self.view(source);
        let mut first_hops = progress_candidates(&view, key, 1);
        view.for_each_leaf(&mut |leaf| {
            if first_hops.len() < redundancy && !first_hops.contains(&leaf) {
                first_hops.push(leaf);
            }
        });
        first_hops.into_iter().any(|first| {
            let mut here = first;
            for _ in 0..ROUTE_HOPS_MAX {
                if self.is_malicious(here) {
                    return false;
                }
                if replicas.contains(&here) || self.view(here).leaf_range_contains(key) {
                    return replicas.iter().any(|r| !self.is_malicious(*r));
                }
                match next_hop(&self.view(here), key) {
                    NextHop::Forward { peer, .. } => here = peer,
                    NextHop::Deliver => return false,
                }
            }
            false
        })
    }

    /// The ranks of the `count` nodes numerically closest to `key`.
    pub(crate) fn closest_ranks(&self, key: OverlayId, count: usize) -> Vec<u32> {
        let n = self.len();
        let root = self.root_of(key) as usize;
        let half = count.min(n);
        let mut ranks: Vec<u32> = (0..=2 * half)
            .map(|k| ((root + n * 2 + k - half) % n) as u32)
            .collect();
        ranks.sort_by(|a, b| key.closeness_order(self.id(*a), self.id(*b)));
        ranks.dedup();
        ranks.truncate(count.min(n));
        ranks
    }

    fn malicious_entry_fraction(&self) -> f64 {
        let (mut bad, mut all) = (0u64, 0u64);
        for node in 0..self.len() as u32 {
            self.view(node).for_each_table_entry(&mut |peer| {
                all += 1;
                bad += u64::from(self.is_malicious(peer));
            });
        }
        bad as f64 / all.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use crate::static_overlay::{StaticConfig, StaticOverlay, TableRule};

    fn build(nodes: usize, rule: TableRule, malicious_fraction: f64) -> StaticOverlay {
        let config = StaticConfig {
            table_rule: rule,
            malicious_fraction,
            ..StaticConfig::paper(nodes, 5)
        };
        StaticOverlay::build(&config).expect("valid config")
    }

    #[test]
    fn routes_reach_the_live_root_around_failures() {
        let o = build(3000, TableRule::Proximity, 0.0);
        let healthy = o.measure_failures(0.0, 2000, 1);
        assert_eq!(healthy.success_rate(), 1.0);
        assert_eq!(healthy.timeouts, 0);
        let failed = o.measure_failures(0.1, 2000, 1);
        assert!(failed.failed_nodes > 200, "about 10% failed");
        assert!(failed.timeouts > 0, "some next hops were dead");
        assert!(
            failed.success_rate() > 0.97,
            "success {}",
            failed.success_rate()
        );
    }

    #[test]
    fn constrained_tables_resist_proximity_lies_and_redundancy_helps() {
        let pns = build(3000, TableRule::Proximity, 0.2);
        let constrained = build(3000, TableRule::Constrained, 0.2);
        let p = pns.measure_malicious(2000, 16, 2);
        let c = constrained.measure_malicious(2000, 16, 2);
        assert_eq!(
            p.malicious_nodes, c.malicious_nodes,
            "the same nodes are malicious in both"
        );
        assert!(
            p.malicious_entry_fraction > 0.5,
            "lying attracts PNS entries: {}",
            p.malicious_entry_fraction
        );
        assert!(
            c.malicious_entry_fraction < 0.3,
            "constrained entries stay near f: {}",
            c.malicious_entry_fraction
        );
        assert!(c.plain_rate() > p.plain_rate());
        assert!(c.redundant_rate() > c.plain_rate());
        eprintln!(
            "f=0.2: pns plain {:.3} redundant {:.3}; constrained plain {:.3} redundant {:.3}",
            p.plain_rate(),
            p.redundant_rate(),
            c.plain_rate(),
            c.redundant_rate()
        );
        assert!(
            c.redundant_rate() > 0.9,
            "redundant success {}",
            c.redundant_rate()
        );
    }

    #[test]
    fn bad_malicious_fractions_are_refused() {
        let config = StaticConfig {
            malicious_fraction: 1.5,
            ..StaticConfig::paper(10, 1)
        };
        assert!(StaticOverlay::build(&config).is_err());
    }
}
