//! Scribe multicast trees at scale over a [`StaticOverlay`]: the Scribe evaluation's delay
//! penalty and link stress (Castro et al., "Scribe", IEEE JSAC 2002; paper 002, "Scribe multicast:
//! Results": 100,000 nodes, Zipf-like group sizes, 1,500 topics).
//!
//! A group's tree is what Scribe's join builds (paper 002, "Scribe: Tree-based group
//! management"): each member routes a join toward the topic id, every node on the route becomes a
//! forwarder with the previous hop as a child, and the join stops at the first node already in
//! the tree. One message is then multicast from the root (the rendezvous point) down the tree.
//!
//! - Relative delay penalty (RDP): a member's delay along the tree over the direct unicast delay
//!   from the root. In the latency model the direct delay is also what IP multicast achieves
//!   (a shortest-path tree delivers at unicast delay), so this is the paper's delay penalty
//!   relative to IP multicast. Per group we also give the paper's RAD (mean tree delay over mean
//!   unicast delay) and RMD (max over max).
//! - Link stress: the latency plane has no physical links, so a [`RouterGrid`] is laid over it:
//!   the plane is cut into `side x side` cells, each with a router; a node hangs off its cell's
//!   router by an access link; routers link to their four grid neighbours, and a unicast follows
//!   X-then-Y routing between cells. Every tree edge is one unicast over that grid; IP multicast
//!   sends one copy per link of the union of the root-to-member routes.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::id::OverlayId;
use crate::latency::{LatencyModel, PLANE_SIDE_MS};
use crate::static_overlay::{StaticOverlay, NO_ENTRY};

/// The exponent of the Zipf-like group sizes the Scribe evaluation used (from memory of Castro
/// et al. 2002: the group of rank r has `floor(N * r^-1.25 + 0.5)` members).
pub const ZIPF_EXPONENT_DEFAULT: f64 = 1.25;
/// Routers per side of the default [`RouterGrid`] (2,500 routers: 40 nodes each at N = 100,000).
pub const ROUTER_GRID_SIDE_DEFAULT: usize = 50;
/// The largest router grid side accepted (the grid's links are counted in a `u32` array).
pub const ROUTER_GRID_SIDE_MAX: usize = 2_000;

/// Why the Scribe model cannot run as asked.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StaticScribeError {
    /// The router grid needs plane coordinates.
    #[error(
        "link stress needs the plane latency model (a router grid is laid over the plane), not {0}"
    )]
    NotPlane(&'static str),
    /// The grid side is out of range.
    #[error("router grid side {0} must be between 1 and {ROUTER_GRID_SIDE_MAX}")]
    BadGridSide(usize),
}

/// Group sizes by rank, Zipf-like: rank `r` (from 1) gets `floor(nodes * r^-exponent + 0.5)`
/// members, at least 1 and at most `nodes`.
pub fn zipf_group_sizes(nodes: usize, groups: usize, exponent: f64) -> Vec<usize> {
    (1..=groups)
        .map(|rank| {
            let size = (nodes as f64 * (rank as f64).powf(-exponent) + 0.5).floor();
            (size as usize).clamp(1, nodes.max(1))
        })
        .collect()
}

/// A physical network under the latency plane: a grid of routers with access links (see the
/// module doc). Links are undirected: a message counts on a link whichever way it crosses.
pub struct RouterGrid {
    side: usize,
    /// `cell[node]`: the index `y * side + x` of the node's router.
    cell: Vec<u32>,
}

impl RouterGrid {
    /// Lay a `side x side` grid over `overlay`'s plane.
    pub fn over(overlay: &StaticOverlay, side: usize) -> Result<RouterGrid, StaticScribeError> {
        if !matches!(overlay.latency_model(), LatencyModel::Plane) {
            return Err(StaticScribeError::NotPlane(overlay.latency_model().name()));
        }
        if !(1..=ROUTER_GRID_SIDE_MAX).contains(&side) {
            return Err(StaticScribeError::BadGridSide(side));
        }
        let to_cell =
            |v: f32| ((f64::from(v) / PLANE_SIDE_MS * side as f64) as usize).min(side - 1);
        let cell = (0..overlay.len() as u32)
            .map(|node| {
                let (x, y) = overlay.position(node).plane_xy();
                (to_cell(y) * side + to_cell(x)) as u32
            })
            .collect();
        Ok(RouterGrid { side, cell })
    }

    /// Routers in the grid.
    pub fn routers(&self) -> usize {
        self.side * self.side
    }

    /// Links: router-to-router grid links plus one access link per node.
    pub fn link_count(&self) -> usize {
        self.grid_links() + self.cell.len()
    }

    fn grid_links(&self) -> usize {
        2 * self.side * (self.side - 1)
    }

    /// Calls `visit` with the index of every link a unicast from node `a` to node `b` crosses:
    /// `a`'s access link, the X-then-Y route between their routers, `b`'s access link.
    pub fn for_each_link(&self, a: u32, b: u32, visit: &mut impl FnMut(usize)) {
        let side = self.side;
        let (from, to) = (
            self.cell[a as usize] as usize,
            self.cell[b as usize] as usize,
        );
        let (x0, y0) = (from % side, from / side);
        let (x1, y1) = (to % side, to / side);
        visit(self.grid_links() + a as usize);
        // Horizontal link (x, y)-(x + 1, y) is `y * (side - 1) + x`; vertical link (x, y)-(x, y + 1)
        // follows all horizontal ones as `side * (side - 1) + x * (side - 1) + y`.
        let mut x = x0;
        while x != x1 {
            let next = if x1 > x { x + 1 } else { x - 1 };
            visit(y0 * (side - 1) + x.min(next));
            x = next;
        }
        let mut y = y0;
        while y != y1 {
            let next = if y1 > y { y + 1 } else { y - 1 };
            visit(side * (side - 1) + x1 * (side - 1) + y.min(next));
            y = next;
        }
        visit(self.grid_links() + b as usize);
    }
}

/// Stress over the links of a [`RouterGrid`]: messages per link for one multicast per group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkStress {
    /// `messages[link]`, summed over the groups.
    pub messages: Vec<u32>,
}

impl LinkStress {
    /// Mean messages over the links that carried at least one.
    pub fn mean_over_used(&self) -> f64 {
        let used = self.messages.iter().filter(|m| **m > 0).count();
        self.total() as f64 / used.max(1) as f64
    }
    /// Mean messages over every link of the network (how the Scribe paper's 2.4 versus 0.7 is
    /// averaged, as we read it: IP multicast's mean is below 1 only if idle links count).
    pub fn mean_over_all(&self) -> f64 {
        self.total() as f64 / self.messages.len().max(1) as f64
    }
    /// The most messages on one link.
    pub fn max(&self) -> u32 {
        self.messages.iter().copied().max().unwrap_or(0)
    }
    /// Links that carried at least one message.
    pub fn used_links(&self) -> usize {
        self.messages.iter().filter(|m| **m > 0).count()
    }
    fn total(&self) -> u64 {
        self.messages.iter().map(|m| u64::from(*m)).sum()
    }
}

/// What the trees of every group measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScribeTreeStats {
    /// Group sizes (members), by rank.
    pub group_sizes: Vec<usize>,
    /// Nodes in some tree (members and forwarders), summed over groups.
    pub tree_nodes: u64,
    /// Tree edges (parent-to-child messages of one multicast), summed over groups.
    pub tree_edges: u64,
    /// Per member other than the root: tree delay over direct unicast delay.
    pub member_rdp: Vec<f32>,
    /// Per group: mean tree delay over mean unicast delay (RAD).
    pub group_rad: Vec<f64>,
    /// Per group: max tree delay over max unicast delay (RMD).
    pub group_rmd: Vec<f64>,
    /// The deepest member, in tree edges from the root.
    pub depth_max: usize,
    /// Members whose join never reached the tree (0 on a consistent overlay).
    pub members_unreached: u64,
    /// Children-table entries per node, summed over groups (node stress).
    pub children_per_node: Vec<u32>,
    /// Link stress of Scribe's trees, when a router grid was given.
    pub scribe_stress: Option<LinkStress>,
    /// Link stress of IP multicast from the same roots, when a router grid was given.
    pub ip_stress: Option<LinkStress>,
}

impl ScribeTreeStats {
    /// Mean per-member RDP.
    pub fn rdp_mean(&self) -> f64 {
        let sum: f64 = self.member_rdp.iter().map(|r| f64::from(*r)).sum();
        sum / self.member_rdp.len().max(1) as f64
    }
    /// Per-member RDP at quantile `q` (0..=1).
    pub fn rdp_quantile(&self, q: f64) -> f64 {
        let mut sorted = self.member_rdp.clone();
        sorted.sort_by(f32::total_cmp);
        match sorted.len() {
            0 => 0.0,
            len => f64::from(sorted[((len - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]),
        }
    }
    /// The largest per-member RDP.
    pub fn rdp_max(&self) -> f64 {
        self.member_rdp
            .iter()
            .copied()
            .fold(0.0f32, f32::max)
            .into()
    }
    /// Node stress: mean children-table entries over nodes that have any, and the max.
    pub fn node_stress(&self) -> (f64, u32) {
        let busy: Vec<u32> = self
            .children_per_node
            .iter()
            .copied()
            .filter(|c| *c > 0)
            .collect();
        let sum: u64 = busy.iter().map(|c| u64::from(*c)).sum();
        let max = busy.iter().copied().max().unwrap_or(0);
        (sum as f64 / busy.len().max(1) as f64, max)
    }
}

/// Mean of a slice (0 when empty).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Per-group scratch arrays, reused across groups by stamping entries with the group number.
struct TreeScratch {
    in_tree: Vec<u32>,
    parent: Vec<u32>,
    delay_known: Vec<u32>,
    delay_ms: Vec<f64>,
    depth: Vec<u32>,
    link_mark: Vec<u32>,
    tree_nodes: Vec<u32>,
    path: Vec<u32>,
    chain: Vec<u32>,
}

impl StaticOverlay {
    /// Build one Scribe tree per entry of `group_sizes` (members drawn uniformly at random, topic
    /// ids random), multicast one message from each root, and measure delay penalty and (with a
    /// `grid`) link stress against IP multicast.
    pub fn measure_scribe(
        &self,
        group_sizes: &[usize],
        grid: Option<&RouterGrid>,
        seed: u64,
    ) -> ScribeTreeStats {
        let n = self.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5c81be);
        let links = grid.map_or(0, RouterGrid::link_count);
        let mut scratch = TreeScratch {
            in_tree: vec![0; n],
            parent: vec![NO_ENTRY; n],
            delay_known: vec![0; n],
            delay_ms: vec![0.0; n],
            depth: vec![0; n],
            link_mark: vec![0; links],
            tree_nodes: Vec::new(),
            path: Vec::new(),
            chain: Vec::new(),
        };
        let mut stats = ScribeTreeStats {
            group_sizes: group_sizes.to_vec(),
            children_per_node: vec![0; n],
            scribe_stress: grid.map(|_| LinkStress {
                messages: vec![0; links],
            }),
            ip_stress: grid.map(|_| LinkStress {
                messages: vec![0; links],
            }),
            ..ScribeTreeStats::default()
        };
        let mut everyone: Vec<u32> = (0..n as u32).collect();
        for (g, size) in group_sizes.iter().enumerate() {
            let stamp = g as u32 + 1;
            let (members, _) = everyone.partial_shuffle(&mut rng, (*size).min(n));
            let members = members.to_vec();
            let topic = OverlayId(rng.gen());
            let root = self.build_tree(topic, &members, stamp, &mut scratch);
            stats.tree_nodes += scratch.tree_nodes.len() as u64;
            stats.tree_edges += scratch.tree_nodes.len().saturating_sub(1) as u64;
            for v in &scratch.tree_nodes {
                let parent = scratch.parent[*v as usize];
                if parent != NO_ENTRY {
                    stats.children_per_node[parent as usize] += 1;
                }
            }
            self.record_delays(root, &members, stamp, &mut scratch, &mut stats);
            if let (Some(grid), Some(scribe), Some(ip)) =
                (grid, &mut stats.scribe_stress, &mut stats.ip_stress)
            {
                for v in &scratch.tree_nodes {
                    let parent = scratch.parent[*v as usize];
                    if parent != NO_ENTRY {
                        grid.for_each_link(parent, *v, &mut |l| scribe.messages[l] += 1);
                    }
                }
                for m in members.iter().filter(|m| **m != root) {
                    grid.for_each_link(root, *m, &mut |l| {
                        if scratch.link_mark[l] != stamp {
                            scratch.link_mark[l] = stamp;
                            ip.messages[l] += 1;
                        }
                    });
                }
            }
        }
        stats
    }

    /// Scribe's joins for `members` toward `topic` (paper 002, "Scribe: Tree-based group
    /// management"): each route stops at the first node already in the tree. Leaves the tree in
    /// `scratch` (`in_tree == stamp`, `parent`, `tree_nodes`) and returns the root.
    fn build_tree(
        &self,
        topic: OverlayId,
        members: &[u32],
        stamp: u32,
        scratch: &mut TreeScratch,
    ) -> u32 {
        let root = self.root_of(topic);
        scratch.tree_nodes.clear();
        scratch.in_tree[root as usize] = stamp;
        scratch.parent[root as usize] = NO_ENTRY;
        scratch.tree_nodes.push(root);
        for m in members {
            if scratch.in_tree[*m as usize] == stamp {
                continue;
            }
            self.route(*m, topic, &mut scratch.path);
            scratch.in_tree[*m as usize] = stamp;
            scratch.tree_nodes.push(*m);
            let mut child = *m;
            // A consistent static overlay routes every key to its root, so the walk ends at a
            // node in the tree (the root at the latest).
            scratch.parent[child as usize] = NO_ENTRY;
            for next in &scratch.path {
                scratch.parent[child as usize] = *next;
                if scratch.in_tree[*next as usize] == stamp {
                    break;
                }
                scratch.in_tree[*next as usize] = stamp;
                scratch.tree_nodes.push(*next);
                child = *next;
            }
        }
        root
    }

    /// The delay from the root to every member along the tree, against the direct latency.
    fn record_delays(
        &self,
        root: u32,
        members: &[u32],
        stamp: u32,
        scratch: &mut TreeScratch,
        stats: &mut ScribeTreeStats,
    ) {
        scratch.delay_known[root as usize] = stamp;
        scratch.delay_ms[root as usize] = 0.0;
        scratch.depth[root as usize] = 0;
        let (mut tree_sum, mut direct_sum, mut tree_max, mut direct_max) =
            (0.0, 0.0, 0.0f64, 0.0f64);
        for m in members.iter().copied().filter(|m| *m != root) {
            // Climb to the nearest node whose delay is known, then fill the chain back down.
            scratch.chain.clear();
            let mut v = m;
            while scratch.delay_known[v as usize] != stamp && v != NO_ENTRY {
                scratch.chain.push(v);
                v = scratch.parent[v as usize];
            }
            if v == NO_ENTRY {
                stats.members_unreached += 1;
                continue;
            }
            for w in scratch.chain.iter().rev() {
                let p = scratch.parent[*w as usize] as usize;
                scratch.delay_ms[*w as usize] = scratch.delay_ms[p] + self.latency_ms(p as u32, *w);
                scratch.depth[*w as usize] = scratch.depth[p] + 1;
                scratch.delay_known[*w as usize] = stamp;
            }
            let tree = scratch.delay_ms[m as usize];
            let direct = self.latency_ms(root, m);
            stats.depth_max = stats.depth_max.max(scratch.depth[m as usize] as usize);
            tree_sum += tree;
            direct_sum += direct;
            tree_max = tree_max.max(tree);
            direct_max = direct_max.max(direct);
            // Two nodes at one point have no direct delay to compare with.
            if direct > 0.0 {
                stats.member_rdp.push((tree / direct) as f32);
            }
        }
        if direct_sum > 0.0 {
            stats.group_rad.push(tree_sum / direct_sum);
            stats.group_rmd.push(tree_max / direct_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_overlay::StaticConfig;

    fn overlay(nodes: usize) -> StaticOverlay {
        StaticOverlay::build(&StaticConfig::paper(nodes, 11)).expect("valid config")
    }

    #[test]
    fn zipf_sizes_follow_the_rank_rule() {
        let sizes = zipf_group_sizes(100_000, 1_500, ZIPF_EXPONENT_DEFAULT);
        assert_eq!(sizes[0], 100_000);
        assert_eq!(sizes[1], 42_045); // 100000 * 2^-1.25 = 42044.8
        assert_eq!(*sizes.last().expect("1500 groups"), 11);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(zipf_group_sizes(10, 3, 1.0), vec![10, 5, 3]);
    }

    #[test]
    fn grid_routes_cross_access_links_and_the_manhattan_distance() {
        let o = overlay(500);
        let grid = RouterGrid::over(&o, 10).expect("plane");
        assert_eq!(grid.link_count(), 2 * 10 * 9 + 500);
        for (a, b) in [(0u32, 1u32), (7, 300), (499, 42)] {
            let mut seen = Vec::new();
            grid.for_each_link(a, b, &mut |l| seen.push(l));
            let (ca, cb) = (
                grid.cell[a as usize] as usize,
                grid.cell[b as usize] as usize,
            );
            let manhattan = (ca % 10).abs_diff(cb % 10) + (ca / 10).abs_diff(cb / 10);
            assert_eq!(seen.len(), manhattan + 2, "{a}->{b}");
            assert!(seen.iter().all(|l| *l < grid.link_count()));
            let mut unique = seen.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), seen.len(), "no link twice on one route");
        }
        assert!(RouterGrid::over(&o, 0).is_err());
    }

    #[test]
    fn trees_reach_every_member_with_penalty_at_least_one_and_share_links() {
        let o = overlay(3000);
        let grid = RouterGrid::over(&o, 20).expect("plane");
        let sizes = zipf_group_sizes(3000, 30, ZIPF_EXPONENT_DEFAULT);
        let stats = o.measure_scribe(&sizes, Some(&grid), 3);
        let members: usize = sizes.iter().sum();
        // Every member other than a root got a delay (ties at one point are vanishingly rare).
        assert!(stats.member_rdp.len() + sizes.len() >= members);
        // The triangle inequality: a tree path is never shorter than the direct route.
        assert!(stats.member_rdp.iter().all(|r| *r >= 0.999), "RDP below 1");
        assert!(stats.rdp_mean() > 1.0 && stats.rdp_mean() < 4.0);
        assert!(stats.rdp_max() >= stats.rdp_quantile(0.9));
        assert_eq!(stats.group_rad.len(), sizes.len());
        // A tree holds at least its members; its edges connect them.
        assert!(stats.tree_nodes >= members as u64);
        assert!(stats.depth_max >= 1);
        let scribe = stats.scribe_stress.as_ref().expect("grid given");
        let ip = stats.ip_stress.as_ref().expect("grid given");
        // IP multicast sends one copy per link per group; Scribe's overlay edges reuse links.
        assert!(ip.max() <= sizes.len() as u32);
        assert!(scribe.mean_over_used() >= ip.mean_over_used());
        assert!(scribe.max() > ip.max());
        let (node_mean, node_max) = stats.node_stress();
        assert!(node_mean >= 1.0 && node_max as f64 >= node_mean);
    }
}
