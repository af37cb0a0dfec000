//! The static scale model: a consistent Pastry overlay of N nodes built directly from global
//! knowledge, and lookups routed over it as a pure function of the tables.
//!
//! This is how the Pastry paper's own evaluation measured hop counts (its simulator built the
//! overlay and routed over the tables, without a message-level network). The tables are what the
//! join protocol converges to when it works: a leaf set of the L/2 numerically nearest ids on each
//! side, and for every routing-table slot a node with the right prefix chosen by proximity
//! neighbour selection. Exact nearest-by-latency selection over a slot with thousands of
//! candidates costs O(N^2) for the top rows, so a slot picks the closest of at most
//! `pns_samples_max` candidates drawn at random (all of them when fewer): an approximation of
//! the proximity invariant, like the one the real join protocol achieves. The neighbourhood set
//! plays no part in routing decisions here and is not built. The event-driven protocol
//! ([`crate::Pastry`]) is what runs joins, churn and failures.
//!
//! Memory: nodes are sorted by id so a node's index is its rank; tables hold `u32` indices
//! (`NO_ENTRY` for an empty slot) and leaf sets are implicit (the L/2 neighbouring ranks).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::id::{DigitBits, OverlayId};
use crate::latency::{LatencyModel, Position};
use crate::leaf_set::LEAF_SET_SIZE_DEFAULT;
use crate::route::{next_hop, HopRule, NextHop, RoutingView};

/// An empty routing-table slot in the flat table.
pub const NO_ENTRY: u32 = u32::MAX;
/// Default bound on candidates examined per routing-table slot (proximity neighbour selection).
pub const PNS_SAMPLES_MAX_DEFAULT: usize = 64;
/// The most nodes a static overlay may have (indices are `u32`, and `NO_ENTRY` is reserved).
pub const STATIC_NODES_MAX: usize = 50_000_000;
/// A route longer than this is a routing loop (an overlay bug), reported rather than followed.
pub const ROUTE_HOPS_MAX: usize = 256;

/// Parameters of a static overlay.
#[derive(Clone, Debug)]
pub struct StaticConfig {
    /// Number of nodes N.
    pub nodes: usize,
    /// Digit width b.
    pub digits: DigitBits,
    /// Leaf-set size L.
    pub leaf_set_size: usize,
    /// Candidates examined per routing-table slot.
    pub pns_samples_max: usize,
    /// Where nodes sit and how far apart.
    pub latency: LatencyModel,
    /// Seeds ids, positions and sampling.
    pub seed: u64,
    /// How routing-table slots are filled.
    pub table_rule: TableRule,
    /// Fraction of nodes that are malicious: they claim zero latency to every prober (to attract
    /// routes under proximity selection) and drop what they should forward.
    pub malicious_fraction: f64,
}

/// How a routing-table slot is chosen among the nodes with the right prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableRule {
    /// Proximity neighbour selection: the nearest by (claimed) latency.
    Proximity,
    /// The constrained table of secure routing (Castro et al., OSDI'02; paper 002, "Secure routing
    /// primitive"): the node whose id is closest to the point that has this node's id with digit
    /// `row` replaced by the column. Attackers cannot bias it by lying about latency.
    Constrained,
}

impl StaticConfig {
    /// The Pastry paper's setting (b = 4, L = 16) on a plane, for `nodes` nodes.
    pub fn paper(nodes: usize, seed: u64) -> StaticConfig {
        StaticConfig {
            nodes,
            digits: DigitBits::HEX,
            leaf_set_size: LEAF_SET_SIZE_DEFAULT,
            pns_samples_max: PNS_SAMPLES_MAX_DEFAULT,
            latency: LatencyModel::Plane,
            seed,
            table_rule: TableRule::Proximity,
            malicious_fraction: 0.0,
        }
    }
}

/// Why a static overlay could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StaticBuildError {
    /// The node count is out of range.
    #[error("a static overlay needs 1..={STATIC_NODES_MAX} nodes, not {0}")]
    BadNodeCount(usize),
    /// L is too small.
    #[error("leaf-set size {0} is too small: use at least 2 (Pastry uses 16 or 32)")]
    BadLeafSetSize(usize),
    /// No candidates would be examined.
    #[error("pns_samples_max must be at least 1")]
    NoPnsSamples,
    /// The malicious fraction is not a probability.
    #[error("malicious fraction {0} must be in 0..1")]
    BadMaliciousFraction(String),
}

/// A consistent overlay built in one pass.
pub struct StaticOverlay {
    digits: DigitBits,
    leaf_half: usize,
    latency: LatencyModel,
    ids: Vec<OverlayId>,
    positions: Vec<Position>,
    /// `malicious[i]`: node i is malicious (empty when none are).
    malicious: Vec<bool>,
    /// `table[row_start[i]..row_start[i + 1]]` is node i's rows, 2^b slots each.
    table: Vec<u32>,
    row_start: Vec<u32>,
}

impl StaticOverlay {
    /// Build the overlay: random distinct ids, random positions, leaf sets by rank, and routing
    /// tables by proximity neighbour selection.
    pub fn build(config: &StaticConfig) -> Result<StaticOverlay, StaticBuildError> {
        let n = config.nodes;
        if n == 0 || n > STATIC_NODES_MAX {
            return Err(StaticBuildError::BadNodeCount(n));
        }
        if config.leaf_set_size < 2 {
            return Err(StaticBuildError::BadLeafSetSize(config.leaf_set_size));
        }
        if config.pns_samples_max == 0 {
            return Err(StaticBuildError::NoPnsSamples);
        }
        if !(0.0..1.0).contains(&config.malicious_fraction) {
            return Err(StaticBuildError::BadMaliciousFraction(
                config.malicious_fraction.to_string(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut ids: Vec<OverlayId> = (0..n).map(|_| OverlayId(rng.gen())).collect();
        ids.sort_unstable();
        ids.dedup();
        // A 128-bit collision among 10^8 ids has odds near 10^-23; refill to be exact anyway.
        while ids.len() < n {
            ids.push(OverlayId(rng.gen()));
            ids.sort_unstable();
            ids.dedup();
        }
        let positions: Vec<Position> = (0..n).map(|_| config.latency.place(&mut rng)).collect();
        let malicious: Vec<bool> = if config.malicious_fraction > 0.0 {
            (0..n)
                .map(|_| rng.gen_bool(config.malicious_fraction))
                .collect()
        } else {
            Vec::new()
        };
        let mut overlay = StaticOverlay {
            digits: config.digits,
            leaf_half: config.leaf_set_size / 2,
            latency: config.latency.clone(),
            ids,
            positions,
            malicious,
            table: Vec::new(),
            row_start: Vec::with_capacity(n + 1),
        };
        overlay.fill_tables(config.table_rule, config.pns_samples_max, &mut rng);
        Ok(overlay)
    }

    fn fill_tables(&mut self, rule: TableRule, samples_max: usize, rng: &mut ChaCha8Rng) {
        let n = self.ids.len();
        let radix = self.digits.radix();
        let mut table: Vec<u32> = Vec::with_capacity(n * 6 * radix);
        let mut row_start: Vec<u32> = Vec::with_capacity(n + 1);
        for node in 0..n {
            row_start.push(table.len() as u32);
            let me = self.ids[node];
            // The nodes sharing `row` digits with me form the contiguous rank range [lo, hi).
            let (mut lo, mut hi) = (0usize, n);
            let mut row = 0;
            while hi - lo > 1 && row < self.digits.digit_count() {
                let my_digit = self.digits.digit(me, row);
                let group = &self.ids[lo..hi];
                let mut column_start = lo;
                let mut next_group = (lo, hi);
                for column in 0..radix {
                    let column_end =
                        lo + group.partition_point(|id| self.digits.digit(*id, row) <= column);
                    if column == my_digit {
                        next_group = (column_start, column_end);
                        table.push(NO_ENTRY);
                    } else if column_start == column_end {
                        table.push(NO_ENTRY);
                    } else {
                        let candidates = column_start..column_end;
                        table.push(match rule {
                            TableRule::Proximity => {
                                self.nearest_of(node, candidates, samples_max, rng)
                            }
                            TableRule::Constrained => {
                                self.closest_to_point(node, row, column, candidates)
                            }
                        });
                    }
                    column_start = column_end;
                }
                (lo, hi) = next_group;
                row += 1;
            }
            // Drop trailing rows that hold nothing (every other node shared that digit with me).
            let start = *row_start.last().unwrap_or(&0) as usize;
            while table.len() > start && table[table.len() - radix..].iter().all(|e| *e == NO_ENTRY)
            {
                table.truncate(table.len() - radix);
            }
        }
        row_start.push(table.len() as u32);
        table.shrink_to_fit();
        self.table = table;
        self.row_start = row_start;
    }

    /// The candidate in `ranks` nearest to `node` by claimed latency, from at most
    /// `samples_max`. Malicious candidates claim zero latency.
    fn nearest_of(
        &self,
        node: usize,
        ranks: std::ops::Range<usize>,
        samples_max: usize,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let here = self.positions[node];
        let mut best = (f64::INFINITY, NO_ENTRY);
        let mut consider = |candidate: usize| {
            let d = if self.is_malicious(candidate as u32) {
                0.0
            } else {
                self.latency.latency_ms(here, self.positions[candidate])
            };
            if d < best.0 {
                best = (d, candidate as u32);
            }
        };
        if ranks.len() <= samples_max {
            ranks.for_each(&mut consider);
        } else {
            (0..samples_max).for_each(|_| consider(rng.gen_range(ranks.clone())));
        }
        best.1
    }

    /// The candidate in `ranks` whose id is closest to the point that has `node`'s id with digit
    /// `row` replaced by `column` (the constrained routing table).
    fn closest_to_point(
        &self,
        node: usize,
        row: usize,
        column: usize,
        ranks: std::ops::Range<usize>,
    ) -> u32 {
        let bits = self.digits.bits();
        let shift = crate::id::ID_BITS - bits * (row as u32 + 1);
        let mask = ((1u128 << bits) - 1) << shift;
        let point = OverlayId((self.ids[node].0 & !mask) | ((column as u128) << shift));
        let slice = &self.ids[ranks.clone()];
        let at = slice.partition_point(|id| *id < point);
        let below = at.checked_sub(1);
        let above = (at < slice.len()).then_some(at);
        let pick = match (below, above) {
            (Some(b), Some(a)) if point.prefers(slice[b], slice[a]) => b,
            (_, Some(a)) => a,
            (Some(b), None) => b,
            (None, None) => return NO_ENTRY,
        };
        (ranks.start + pick) as u32
    }

    /// Whether node `node` is malicious.
    pub fn is_malicious(&self, node: u32) -> bool {
        self.malicious.get(node as usize).copied().unwrap_or(false)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the overlay is empty (never: `build` refuses zero nodes).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the node at rank `node`.
    pub fn id(&self, node: u32) -> OverlayId {
        self.ids[node as usize]
    }

    /// The view the routing rule sees at node `node`.
    pub fn view(&self, node: u32) -> StaticNodeView<'_> {
        StaticNodeView {
            overlay: self,
            node,
        }
    }

    fn rows_of(&self, node: u32) -> &[u32] {
        let i = node as usize;
        &self.table[self.row_start[i] as usize..self.row_start[i + 1] as usize]
    }

    /// Present routing-table entries of node `node`.
    pub fn table_entries(&self, node: u32) -> usize {
        self.rows_of(node)
            .iter()
            .filter(|e| **e != NO_ENTRY)
            .count()
    }

    /// Mean present routing-table entries per node (the paper: about 75 at N = 100,000, b = 4).
    pub fn mean_table_entries(&self) -> f64 {
        let present = self.table.iter().filter(|e| **e != NO_ENTRY).count();
        present as f64 / self.ids.len() as f64
    }

    /// Bytes held by ids, positions and tables.
    pub fn memory_bytes(&self) -> usize {
        self.ids.len() * std::mem::size_of::<OverlayId>()
            + self.positions.len() * std::mem::size_of::<Position>()
            + self.table.len() * 4
            + self.row_start.len() * 4
    }

    /// The node numerically closest to `key`: the root a correct route must reach.
    pub fn root_of(&self, key: OverlayId) -> u32 {
        let n = self.ids.len();
        let above = self.ids.partition_point(|id| *id < key) % n;
        let below = (above + n - 1) % n;
        if key.prefers(self.ids[below], self.ids[above]) {
            below as u32
        } else {
            above as u32
        }
    }

    /// Where node `node` sits in the latency model.
    pub fn position(&self, node: u32) -> Position {
        self.positions[node as usize]
    }

    /// The latency model the overlay was built on.
    pub fn latency_model(&self) -> &LatencyModel {
        &self.latency
    }

    /// One-way latency between two nodes, ms.
    pub fn latency_ms(&self, a: u32, b: u32) -> f64 {
        self.latency
            .latency_ms(self.positions[a as usize], self.positions[b as usize])
    }

    /// Route `key` from `source`, appending every node visited after the source to `path`.
    pub fn route(&self, source: u32, key: OverlayId, path: &mut Vec<u32>) -> RouteOutcome {
        path.clear();
        let mut here = source;
        let mut latency_ms = 0.0;
        let mut rare_hops = 0;
        loop {
            match next_hop(&self.view(here), key) {
                NextHop::Deliver => {
                    return RouteOutcome {
                        root: here,
                        hops: path.len(),
                        latency_ms,
                        rare_hops,
                        looped: false,
                    };
                }
                NextHop::Forward { peer, rule } => {
                    latency_ms += self.latency_ms(here, peer);
                    if rule == HopRule::RareCase {
                        rare_hops += 1;
                    }
                    path.push(peer);
                    here = peer;
                    if path.len() > ROUTE_HOPS_MAX {
                        return RouteOutcome {
                            root: here,
                            hops: path.len(),
                            latency_ms,
                            rare_hops,
                            looped: true,
                        };
                    }
                }
            }
        }
    }

    /// Route `lookups` random keys from random sources and gather hop and delay statistics.
    pub fn measure_lookups(&self, lookups: usize, seed: u64) -> LookupStats {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_100c_u64);
        let mut stats = LookupStats::default();
        let mut path = Vec::with_capacity(16);
        let n = self.ids.len() as u32;
        for _ in 0..lookups {
            let source = rng.gen_range(0..n);
            let key = OverlayId(rng.gen());
            let outcome = self.route(source, key, &mut path);
            stats.record(self, source, key, &outcome);
        }
        stats
    }
}

/// The result of routing one key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RouteOutcome {
    /// Where the route ended.
    pub root: u32,
    /// Overlay hops taken.
    pub hops: usize,
    /// Sum of the hops' latencies, ms.
    pub latency_ms: f64,
    /// Hops taken by the rare-case rule.
    pub rare_hops: usize,
    /// The route exceeded [`ROUTE_HOPS_MAX`] hops.
    pub looped: bool,
}

/// Statistics over many lookups.
#[derive(Clone, Debug, Default)]
pub struct LookupStats {
    /// `hop_histogram[h]` lookups took h hops.
    pub hop_histogram: Vec<u64>,
    /// Lookups routed.
    pub lookups: u64,
    /// Lookups that ended somewhere other than the numerically closest node.
    pub misdelivered: u64,
    /// Lookups that looped.
    pub looped: u64,
    /// Hops taken by the rare-case rule, over all lookups.
    pub rare_hops: u64,
    /// Lookups whose root is not the source (the ones with a delay stretch).
    pub remote_lookups: u64,
    /// Sum over remote lookups of overlay path latency / direct latency.
    pub stretch_sum: f64,
    /// Sum over remote lookups of overlay path latency, ms.
    pub path_latency_sum_ms: f64,
    /// Sum over remote lookups of direct source-to-root latency, ms.
    pub direct_latency_sum_ms: f64,
}

impl LookupStats {
    fn record(
        &mut self,
        overlay: &StaticOverlay,
        source: u32,
        key: OverlayId,
        outcome: &RouteOutcome,
    ) {
        self.lookups += 1;
        if self.hop_histogram.len() <= outcome.hops {
            self.hop_histogram.resize(outcome.hops + 1, 0);
        }
        self.hop_histogram[outcome.hops] += 1;
        self.rare_hops += outcome.rare_hops as u64;
        if outcome.looped {
            self.looped += 1;
        }
        if outcome.root != overlay.root_of(key) {
            self.misdelivered += 1;
        }
        let direct = overlay.latency_ms(source, outcome.root);
        // Two nodes at one matrix point have zero latency; their ratio is undefined.
        if outcome.root != source && direct > 0.0 {
            self.remote_lookups += 1;
            self.stretch_sum += outcome.latency_ms / direct;
            self.path_latency_sum_ms += outcome.latency_ms;
            self.direct_latency_sum_ms += direct;
        }
    }

    /// Mean hops per lookup.
    pub fn mean_hops(&self) -> f64 {
        let total: u64 = self
            .hop_histogram
            .iter()
            .enumerate()
            .map(|(h, c)| h as u64 * c)
            .sum();
        total as f64 / self.lookups.max(1) as f64
    }

    /// The longest route, in hops.
    pub fn max_hops(&self) -> usize {
        self.hop_histogram.iter().rposition(|c| *c > 0).unwrap_or(0)
    }

    /// Mean of per-lookup delay stretch (path latency / direct latency).
    pub fn mean_stretch(&self) -> f64 {
        self.stretch_sum / self.remote_lookups.max(1) as f64
    }

    /// Total path latency over total direct latency (the Pastry paper's "relative distance").
    pub fn aggregate_stretch(&self) -> f64 {
        self.path_latency_sum_ms / self.direct_latency_sum_ms.max(f64::MIN_POSITIVE)
    }

    /// Fraction of lookups that took `hops` hops.
    pub fn fraction_at(&self, hops: usize) -> f64 {
        self.hop_histogram.get(hops).copied().unwrap_or(0) as f64 / self.lookups.max(1) as f64
    }
}

/// The routing state of one node of a [`StaticOverlay`].
pub struct StaticNodeView<'a> {
    overlay: &'a StaticOverlay,
    node: u32,
}

impl StaticNodeView<'_> {
    fn leaf_window(&self) -> (usize, usize) {
        let n = self.overlay.ids.len();
        let half = self.overlay.leaf_half.min((n - 1) / 2);
        (half, (n - 1).min(2 * self.overlay.leaf_half))
    }

    /// Calls `visit` on every routing-table entry.
    pub fn for_each_table_entry(&self, visit: &mut dyn FnMut(u32)) {
        for entry in self.overlay.rows_of(self.node) {
            if *entry != NO_ENTRY {
                visit(*entry);
            }
        }
    }

    /// Calls `visit` on every leaf (counter-clockwise ones first, then clockwise, wrapping).
    pub fn for_each_leaf(&self, visit: &mut dyn FnMut(u32)) {
        let n = self.overlay.ids.len();
        let (below, total) = self.leaf_window();
        let first = (self.node as usize + n - below) % n;
        for k in 0..=total {
            let rank = (first + k) % n;
            if rank != self.node as usize {
                visit(rank as u32);
            }
        }
    }
}

impl RoutingView for StaticNodeView<'_> {
    type Peer = u32;

    fn local_id(&self) -> OverlayId {
        self.overlay.ids[self.node as usize]
    }

    fn id_of(&self, peer: u32) -> OverlayId {
        self.overlay.ids[peer as usize]
    }

    fn digits(&self) -> DigitBits {
        self.overlay.digits
    }

    fn leaf_range_contains(&self, key: OverlayId) -> bool {
        let n = self.overlay.ids.len();
        let half = self.overlay.leaf_half;
        // Same rule as `LeafSet::covers_ring`: fewer than L other nodes means the sides meet.
        if n - 1 < 2 * half {
            return true;
        }
        let i = self.node as usize;
        let low = self.overlay.ids[(i + n - half) % n];
        let high = self.overlay.ids[(i + half) % n];
        low.clockwise_to(key) <= low.clockwise_to(high)
    }

    fn closest_leaf(&self, key: OverlayId) -> Option<u32> {
        let mut best: Option<u32> = None;
        let mut best_id = self.local_id();
        self.for_each_leaf(&mut |rank| {
            let id = self.overlay.ids[rank as usize];
            if key.prefers(id, best_id) {
                best = Some(rank);
                best_id = id;
            }
        });
        best
    }

    fn table_entry(&self, row: usize, column: usize) -> Option<u32> {
        let rows = self.overlay.rows_of(self.node);
        let radix = self.overlay.digits.radix();
        rows.get(row * radix + column)
            .copied()
            .filter(|e| *e != NO_ENTRY)
    }

    fn for_each_known(&self, visit: &mut dyn FnMut(u32)) {
        self.for_each_leaf(visit);
        self.for_each_table_entry(visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(nodes: usize, seed: u64) -> StaticOverlay {
        StaticOverlay::build(&StaticConfig::paper(nodes, seed)).expect("valid config")
    }

    #[test]
    fn bad_configs_are_refused_with_reasons() {
        let mut c = StaticConfig::paper(0, 1);
        assert_eq!(
            StaticOverlay::build(&c).err(),
            Some(StaticBuildError::BadNodeCount(0))
        );
        c.nodes = 10;
        c.leaf_set_size = 1;
        assert_eq!(
            StaticOverlay::build(&c).err(),
            Some(StaticBuildError::BadLeafSetSize(1))
        );
        c.leaf_set_size = 16;
        c.pns_samples_max = 0;
        assert_eq!(
            StaticOverlay::build(&c).err(),
            Some(StaticBuildError::NoPnsSamples)
        );
    }

    #[test]
    fn a_single_node_is_the_root_of_everything() {
        let o = build(1, 1);
        let mut path = Vec::new();
        let out = o.route(0, OverlayId(12345), &mut path);
        assert_eq!((out.root, out.hops), (0, 0));
    }

    #[test]
    fn two_thousand_nodes_route_every_key_to_its_root_in_few_hops() {
        let o = build(2000, 7);
        let stats = o.measure_lookups(20_000, 7);
        assert_eq!(stats.misdelivered, 0);
        assert_eq!(stats.looped, 0);
        // log16(2000) = 2.74; leaf sets shorten the last hop.
        assert!(
            stats.mean_hops() > 1.5 && stats.mean_hops() < 3.2,
            "mean {}",
            stats.mean_hops()
        );
        assert!(stats.max_hops() <= 4, "max {}", stats.max_hops());
        assert!(
            stats.remote_lookups > 19_000,
            "most lookups leave the source"
        );
        assert!(stats.aggregate_stretch() > 1.0);
        let entries = o.mean_table_entries();
        assert!(entries > 20.0 && entries < 60.0, "entries {entries}");
    }

    #[test]
    fn proximity_selection_picks_nearer_entries_than_random() {
        let near = build(3000, 3);
        let mut random_config = StaticConfig::paper(3000, 3);
        random_config.pns_samples_max = 1;
        let random = StaticOverlay::build(&random_config).expect("valid config");
        let near_stats = near.measure_lookups(5000, 1);
        let random_stats = random.measure_lookups(5000, 1);
        assert!(
            near_stats.aggregate_stretch() < 0.8 * random_stats.aggregate_stretch(),
            "pns {} vs random {}",
            near_stats.aggregate_stretch(),
            random_stats.aggregate_stretch()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every hop makes progress (a longer shared prefix with the key, or numerically closer to
        /// it), and every route ends at the numerically closest node.
        #[test]
        fn routes_make_progress_and_reach_the_root(nodes in 1usize..400, seed: u64, keys in proptest::collection::vec(any::<u128>(), 20)) {
            let o = build(nodes, seed);
            let digits = DigitBits::HEX;
            let mut path = Vec::new();
            for (k, key) in keys.into_iter().enumerate() {
                let key = OverlayId(key);
                let source = (k * 7919 % nodes) as u32;
                let out = o.route(source, key, &mut path);
                prop_assert!(!out.looped);
                prop_assert_eq!(out.root, o.root_of(key));
                let mut here = o.id(source);
                for next in &path {
                    let next_id = o.id(*next);
                    let (p_here, p_next) = (digits.shared_prefix_len(here, key), digits.shared_prefix_len(next_id, key));
                    let closer = key.prefers(next_id, here);
                    prop_assert!(closer || p_next > p_here);
                    here = next_id;
                }
            }
        }
    }
}
