//! The live network: per-link serializers and counters, site uplinks, partitions and clogs. It
//! decides, for one packet, whether it is dropped (and why) or when it arrives; it never sees
//! message contents, only sizes.

use stockade_core::{NodeId, Time};

use crate::hash::FxHashMap;
use crate::link::{LinkParams, LinkSpec, Serializer, SiteCap};
use crate::rng::SimRng;
use crate::topology::{Shape, Topology, TopologyError, FULL_MESH_NODES_MAX};

/// Why the network dropped a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// Sender and receiver are in different partitions.
    Partitioned,
    /// A sparse topology has no link between them.
    NoLink,
    /// The link's drop-tail buffer was full.
    LinkBuffer,
    /// The sending site's uplink buffer was full.
    SiteBuffer,
    /// Random loss on the link.
    Loss,
}

/// What happened to one packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transmission {
    /// Dropped before arriving.
    Dropped(DropReason),
    /// Arrives at `arrival`, and a duplicate at `duplicate` if the link duplicated it.
    Sent {
        /// When the receiver gets it.
        arrival: Time,
        /// When the duplicate arrives.
        duplicate: Option<Time>,
    },
}

/// One directed link's live state: 24 bytes, so 1.6 million links take under 40 MB.
#[derive(Clone, Copy, Default)]
struct LinkState {
    serializer: Serializer,
    bytes: u64,
    messages: u32,
    spec: u16,
}

#[derive(Clone, Copy, Default)]
struct SiteState {
    cap: Option<SiteCap>,
    serializer: Serializer,
    bytes: u64,
    messages: u64,
}

/// Traffic counters of one directed link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkStats {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Packets admitted onto the link (saturating at `u32::MAX`).
    pub messages: u32,
    /// Bytes admitted, overhead included.
    pub bytes: u64,
}

/// Traffic through one site's uplink.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SiteStats {
    /// The site.
    pub site: u32,
    /// Packets that left the site through its capped uplink.
    pub messages: u64,
    /// Their bytes, overhead included.
    pub bytes: u64,
}

/// The most distinct link specs one network holds (the per-link index is 16 bits).
pub const LINK_SPECS_MAX: usize = u16::MAX as usize + 1;

/// The live network state of a world.
pub struct Network {
    shape: Shape,
    specs: Vec<LinkSpec>,
    params: Vec<LinkParams>,
    /// Finds a spec's index in `params` when it is set again.
    spec_index: FxHashMap<LinkParams, u16>,
    links: Vec<LinkState>,
    site_of: Vec<u32>,
    sites: Vec<SiteState>,
    partition_of: Vec<u32>,
    /// Clogged paths, keyed by link index (or `from * nodes + to` on a computed topology).
    clogged_until: FxHashMap<usize, Time>,
    /// `(packets, bytes)` per sender, kept only on a computed topology (it has no link state).
    sender_totals: Vec<(u64, u64)>,
}

impl Network {
    /// The network described by `topology`.
    pub fn new(topology: &Topology) -> Result<Network, TopologyError> {
        if let Shape::FullMesh { nodes } = topology.shape {
            if nodes > FULL_MESH_NODES_MAX {
                return Err(TopologyError::MeshTooLarge {
                    nodes,
                    max: FULL_MESH_NODES_MAX,
                });
            }
        }
        let mut net = Network {
            shape: topology.shape.clone(),
            specs: vec![topology.default_spec],
            params: vec![topology.default_spec.compile()],
            links: vec![LinkState::default(); topology.shape.link_slots()],
            site_of: topology.site_of.clone(),
            sites: topology
                .site_caps
                .iter()
                .map(|cap| SiteState {
                    cap: *cap,
                    ..SiteState::default()
                })
                .collect(),
            partition_of: Vec::new(),
            clogged_until: FxHashMap::default(),
            spec_index: [(topology.default_spec.compile(), 0)].into_iter().collect(),
            sender_totals: match &topology.shape {
                Shape::Computed { nodes, .. } => vec![(0, 0); *nodes as usize],
                _ => Vec::new(),
            },
        };
        for &(from, to, spec) in &topology.overrides {
            net.set_link(from, to, spec)?;
        }
        Ok(net)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u32 {
        self.shape.node_count()
    }

    /// Change link `from -> to`'s spec from now on (packets already queued keep their times).
    pub fn set_link(
        &mut self,
        from: NodeId,
        to: NodeId,
        spec: LinkSpec,
    ) -> Result<(), TopologyError> {
        let index = self
            .shape
            .link_index(from, to)
            .ok_or(TopologyError::NoSuchLink { from, to })?;
        let params = spec.compile();
        let spec_index = match self.spec_index.get(&params) {
            Some(&i) => i as usize,
            None if self.specs.len() < LINK_SPECS_MAX => {
                self.specs.push(spec);
                self.params.push(params);
                self.spec_index
                    .insert(params, (self.specs.len() - 1) as u16);
                self.specs.len() - 1
            }
            None => {
                return Err(TopologyError::TooManyLinkSpecs {
                    max: LINK_SPECS_MAX,
                })
            }
        };
        self.links[index].spec = spec_index as u16;
        Ok(())
    }

    /// The spec link `from -> to` currently has.
    pub fn link_spec(&self, from: NodeId, to: NodeId) -> Option<LinkSpec> {
        let index = self.shape.link_index(from, to)?;
        Some(self.specs[self.links[index].spec as usize])
    }

    /// Split the nodes into groups that cannot talk to each other. Nodes in no group form one more
    /// group together. Replaces any earlier partition.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.partition_of = vec![0; self.node_count() as usize];
        for (g, group) in groups.iter().enumerate() {
            for node in group {
                if let Some(slot) = self.partition_of.get_mut(node.index()) {
                    *slot = g as u32 + 1;
                }
            }
        }
    }

    /// Cut `node` off from everyone else.
    pub fn isolate(&mut self, node: NodeId) {
        if self.partition_of.is_empty() {
            self.partition_of = vec![0; self.node_count() as usize];
        }
        let fresh = self.partition_of.iter().copied().max().unwrap_or(0) + 1;
        if let Some(slot) = self.partition_of.get_mut(node.index()) {
            *slot = fresh;
        }
    }

    /// Hold every packet entering link `from -> to` until `until` (it arrives no earlier than
    /// `until + latency`; order on the link is kept).
    pub fn clog(&mut self, from: NodeId, to: NodeId, until: Time) -> Result<(), TopologyError> {
        let key = match &self.shape {
            Shape::Computed { nodes, .. } if from.0 < *nodes && to.0 < *nodes => {
                from.index() * *nodes as usize + to.index()
            }
            shape => shape
                .link_index(from, to)
                .ok_or(TopologyError::NoSuchLink { from, to })?,
        };
        self.clogged_until.insert(key, until);
        Ok(())
    }

    /// Remove every partition and clog. Link specs keep their overrides.
    pub fn heal(&mut self) {
        self.partition_of.clear();
        self.clogged_until.clear();
    }

    /// Whether `from` and `to` are on the same side of the current partition.
    #[inline]
    pub fn can_talk(&self, from: NodeId, to: NodeId) -> bool {
        self.partition_of.is_empty()
            || self.partition_of.get(from.index()) == self.partition_of.get(to.index())
    }

    /// Send a packet of `bytes` (overhead included) from `from` to `to` at `now`.
    #[inline]
    pub fn transmit(
        &mut self,
        now: Time,
        from: NodeId,
        to: NodeId,
        bytes: u64,
        rng: &mut SimRng,
    ) -> Transmission {
        if from == to {
            // Loopback: no wire, no delay.
            return Transmission::Sent {
                arrival: now,
                duplicate: None,
            };
        }
        if !self.can_talk(from, to) {
            return Transmission::Dropped(DropReason::Partitioned);
        }
        let Some(index) = self.shape.link_index(from, to) else {
            return self.transmit_computed(now, from, to, bytes, rng);
        };
        let enter_ns = match self.through_site(now.as_nanos(), from, to, bytes) {
            Ok(t) => t,
            Err(reason) => return Transmission::Dropped(reason),
        };
        let link = &mut self.links[index];
        let params = &self.params[link.spec as usize];
        let Some(departed_ns) =
            link.serializer
                .admit(enter_ns, bytes, params.bandwidth_bps, params.buffer_bytes)
        else {
            return Transmission::Dropped(DropReason::LinkBuffer);
        };
        link.bytes += bytes;
        link.messages = link.messages.saturating_add(1);
        // Loss happens on the wire: the packet already used its bandwidth.
        if rng.chance(params.loss_threshold) {
            return Transmission::Dropped(DropReason::Loss);
        }
        let params = *params;
        let latency_ns = params.latency_ns;
        self.arrivals(index, departed_ns, latency_ns, &params, rng)
    }

    /// A packet on a computed topology: any pair talks, no link queue.
    fn transmit_computed(
        &mut self,
        now: Time,
        from: NodeId,
        to: NodeId,
        bytes: u64,
        rng: &mut SimRng,
    ) -> Transmission {
        let Shape::Computed { nodes, latency } = &self.shape else {
            return Transmission::Dropped(DropReason::NoLink);
        };
        if from.0 >= *nodes || to.0 >= *nodes {
            return Transmission::Dropped(DropReason::NoLink);
        }
        let latency_ns = stockade_core::time::duration_nanos((latency.0)(from, to));
        let key = from.index() * *nodes as usize + to.index();
        let departed_ns = match self.through_site(now.as_nanos(), from, to, bytes) {
            Ok(t) => t,
            Err(reason) => return Transmission::Dropped(reason),
        };
        if let Some(sent) = self.sender_totals.get_mut(from.index()) {
            sent.0 += 1;
            sent.1 += bytes;
        }
        let params = self.params[0];
        if rng.chance(params.loss_threshold) {
            return Transmission::Dropped(DropReason::Loss);
        }
        self.arrivals(key, departed_ns, latency_ns, &params, rng)
    }

    /// Pass the sending site's capped uplink, if the packet leaves a capped site: the time it
    /// leaves the site, or the drop.
    #[inline]
    fn through_site(
        &mut self,
        enter_ns: u64,
        from: NodeId,
        to: NodeId,
        bytes: u64,
    ) -> Result<u64, DropReason> {
        let Some(site_index) = self.site_leaving(from, to) else {
            return Ok(enter_ns);
        };
        let site = &mut self.sites[site_index];
        let Some(cap) = site.cap else {
            return Ok(enter_ns);
        };
        let left_ns = site
            .serializer
            .admit(enter_ns, bytes, cap.bandwidth_bps, cap.buffer_bytes)
            .ok_or(DropReason::SiteBuffer)?;
        site.bytes += bytes;
        site.messages += 1;
        Ok(left_ns)
    }

    /// Arrival (and duplicate) times of a packet that left its last serializer at `departed_ns`
    /// on the path keyed `clog_key`.
    #[inline]
    fn arrivals(
        &self,
        clog_key: usize,
        departed_ns: u64,
        latency_ns: u64,
        params: &LinkParams,
        rng: &mut SimRng,
    ) -> Transmission {
        let mut earliest_ns = departed_ns.saturating_add(latency_ns);
        if !self.clogged_until.is_empty() {
            if let Some(until) = self.clogged_until.get(&clog_key) {
                earliest_ns = earliest_ns.max(until.as_nanos().saturating_add(latency_ns));
            }
        }
        let jitter_ns = params.jitter_ns;
        let arrive = |rng: &mut SimRng| {
            let jitter = if jitter_ns == 0 {
                0
            } else {
                rng.below(jitter_ns + 1)
            };
            Time::from_nanos(earliest_ns.saturating_add(jitter))
        };
        let arrival = arrive(rng);
        let duplicate = rng.chance(params.duplicate_threshold).then(|| arrive(rng));
        Transmission::Sent { arrival, duplicate }
    }

    /// The sending site whose capped uplink a packet `from -> to` passes, if any.
    #[inline]
    fn site_leaving(&self, from: NodeId, to: NodeId) -> Option<usize> {
        if self.sites.is_empty() || self.site_of.is_empty() {
            return None;
        }
        let from_site = *self.site_of.get(from.index())?;
        let to_site = *self.site_of.get(to.index())?;
        (from_site != to_site && (from_site as usize) < self.sites.len())
            .then_some(from_site as usize)
    }

    /// Counters of every link that carried traffic.
    pub fn link_stats(&self) -> impl Iterator<Item = LinkStats> + '_ {
        self.shape.endpoints().filter_map(move |(i, from, to)| {
            let l = &self.links[i];
            (l.messages > 0).then_some(LinkStats {
                from,
                to,
                messages: l.messages,
                bytes: l.bytes,
            })
        })
    }

    /// `(sender, packets, bytes)` for every node that sent, summed over its links.
    pub fn sender_stats(&self) -> Vec<(NodeId, u64, u64)> {
        let mut totals = if self.sender_totals.is_empty() {
            let mut totals = vec![(0u64, 0u64); self.node_count() as usize];
            for l in self.link_stats() {
                if let Some(t) = totals.get_mut(l.from.index()) {
                    t.0 += l.messages as u64;
                    t.1 += l.bytes;
                }
            }
            totals
        } else {
            self.sender_totals.clone()
        };
        totals
            .drain(..)
            .enumerate()
            .filter(|(_, (m, _))| *m > 0)
            .map(|(i, (m, b))| (NodeId(i as u32), m, b))
            .collect()
    }

    /// Whether traffic is counted per sender only (a computed topology has no links to count on).
    pub fn counts_per_sender_only(&self) -> bool {
        !self.sender_totals.is_empty()
    }

    /// Counters of every capped site uplink.
    pub fn site_stats(&self) -> impl Iterator<Item = SiteStats> + '_ {
        self.sites
            .iter()
            .enumerate()
            .filter(|(_, s)| s.cap.is_some())
            .map(|(i, s)| SiteStats {
                site: i as u32,
                messages: s.messages,
                bytes: s.bytes,
            })
    }

    /// Number of link slots (for memory estimates and reports).
    pub fn link_count(&self) -> usize {
        self.links.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sent_at(arrival: Time) -> Transmission {
        Transmission::Sent {
            arrival,
            duplicate: None,
        }
    }

    fn mesh(spec: LinkSpec) -> Network {
        Network::new(&Topology::full_mesh(3, spec)).expect("valid")
    }

    #[test]
    fn arrival_is_serialization_plus_latency() {
        let mut net = mesh(LinkSpec::wan(Duration::from_millis(50), 8_000_000));
        let mut rng = SimRng::new(1);
        // 1000 bytes at one byte per microsecond: 1 ms on the wire, then 50 ms.
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(1), 1000, &mut rng);
        assert_eq!(t, sent_at(Time::from_millis(51)));
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(1), 1000, &mut rng);
        assert_eq!(t, sent_at(Time::from_millis(52)), "FIFO");
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(2), 1000, &mut rng);
        assert_eq!(t, sent_at(Time::from_millis(51)), "own link");
    }

    #[test]
    fn partitions_and_clogs_heal() {
        let mut net = mesh(LinkSpec::ideal(Duration::from_millis(10)));
        let mut rng = SimRng::new(1);
        net.partition(&[vec![NodeId(0)]]);
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(0), NodeId(1), 10, &mut rng),
            Transmission::Dropped(DropReason::Partitioned)
        );
        assert!(net.can_talk(NodeId(1), NodeId(2)), "the rest stay together");
        net.clog(NodeId(1), NodeId(2), Time::from_secs(1))
            .expect("link exists");
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(1), NodeId(2), 10, &mut rng),
            sent_at(Time::from_millis(1010))
        );
        net.heal();
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(0), NodeId(1), 10, &mut rng),
            sent_at(Time::from_millis(10))
        );
    }

    #[test]
    fn a_full_site_uplink_drops_at_the_tail() {
        let mut topology = Topology::full_mesh(3, LinkSpec::ideal(Duration::from_millis(1)));
        topology.assign_site(NodeId(2), 1).expect("exists");
        topology.set_site_cap(
            0,
            SiteCap {
                bandwidth_bps: 8_000_000,
                buffer_bytes: 2_500,
            },
        );
        let mut net = Network::new(&topology).expect("valid");
        let mut rng = SimRng::new(1);
        let mut outcomes = Vec::new();
        for from in [0, 1, 0, 1] {
            outcomes.push(net.transmit(Time::ZERO, NodeId(from), NodeId(2), 1_000, &mut rng));
        }
        // One byte per microsecond through the uplink, both senders sharing it.
        assert_eq!(outcomes[0], sent_at(Time::from_millis(2)));
        assert_eq!(outcomes[1], sent_at(Time::from_millis(3)));
        assert_eq!(outcomes[2], Transmission::Dropped(DropReason::SiteBuffer));
        assert_eq!(outcomes[3], Transmission::Dropped(DropReason::SiteBuffer));
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(0), NodeId(1), 1_000, &mut rng),
            sent_at(Time::from_millis(1)),
            "traffic inside the site does not use the uplink"
        );
    }

    #[test]
    fn computed_topologies_take_latency_from_the_function() {
        let latency: crate::topology::LatencyFn = std::sync::Arc::new(|a: NodeId, b: NodeId| {
            Duration::from_millis(a.0.abs_diff(b.0) as u64)
        });
        let mut topology = Topology::computed(100_000, LinkSpec::ideal(Duration::ZERO), latency);
        topology.assign_site(NodeId(7), 7).expect("exists");
        topology.set_site_cap(
            7,
            SiteCap {
                bandwidth_bps: 8_000_000,
                buffer_bytes: u64::MAX,
            },
        );
        let mut net = Network::new(&topology).expect("valid");
        assert_eq!(net.link_count(), 0, "no per-link state");
        let mut rng = SimRng::new(1);
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(10), NodeId(99_990), 100, &mut rng),
            sent_at(Time::from_millis(99_980))
        );
        // Node 7's access link: 1,000 bytes at one byte per microsecond, then 3 ms.
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(7), NodeId(4), 1_000, &mut rng),
            sent_at(Time::from_millis(4))
        );
        net.clog(NodeId(10), NodeId(11), Time::from_secs(1))
            .expect("any pair");
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(10), NodeId(11), 1, &mut rng),
            sent_at(Time::from_millis(1_001))
        );
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(10), NodeId(100_000), 1, &mut rng),
            Transmission::Dropped(DropReason::NoLink)
        );
        assert!(net
            .set_link(NodeId(1), NodeId(2), LinkSpec::ideal(Duration::ZERO))
            .is_err());
        assert!(net.counts_per_sender_only());
        assert_eq!(
            net.sender_stats(),
            vec![(NodeId(7), 1, 1_000), (NodeId(10), 2, 101)]
        );
    }

    #[test]
    fn full_mesh_size_is_bounded() {
        let spec = LinkSpec::ideal(Duration::ZERO);
        assert!(Network::new(&Topology::full_mesh(FULL_MESH_NODES_MAX, spec)).is_ok());
        assert!(matches!(
            Network::new(&Topology::full_mesh(FULL_MESH_NODES_MAX + 1, spec)),
            Err(TopologyError::MeshTooLarge { .. })
        ));
    }

    #[test]
    fn site_meshes_use_lan_inside_and_wan_between_sites() {
        let lan = LinkSpec::ideal(Duration::from_micros(100));
        let wan = LinkSpec::wan(Duration::from_millis(50), 10_000_000);
        let topology = Topology::full_mesh_sites(&[2, 3], lan, wan);
        assert_eq!(
            (topology.site_of(NodeId(1)), topology.site_of(NodeId(2))),
            (0, 1)
        );
        let net = Network::new(&topology).expect("valid");
        assert_eq!(net.link_spec(NodeId(0), NodeId(1)), Some(lan));
        assert_eq!(net.link_spec(NodeId(2), NodeId(4)), Some(lan));
        assert_eq!(net.link_spec(NodeId(1), NodeId(2)), Some(wan));
        assert_eq!(net.link_spec(NodeId(0), NodeId(0)), None, "no self link");
    }

    #[test]
    fn spec_table_deduplicates() {
        let mut net = mesh(LinkSpec::ideal(Duration::ZERO));
        let lossy = LinkSpec::ideal(Duration::ZERO).with_loss(1.0);
        net.set_link(NodeId(0), NodeId(1), lossy).expect("exists");
        net.set_link(NodeId(1), NodeId(0), lossy).expect("exists");
        assert_eq!(net.specs.len(), 2);
        for i in 2..LINK_SPECS_MAX as u64 {
            net.set_link(
                NodeId(0),
                NodeId(2),
                LinkSpec::ideal(Duration::from_nanos(i)),
            )
            .expect("room for it");
        }
        assert_eq!(net.specs.len(), LINK_SPECS_MAX);
        assert_eq!(
            net.set_link(
                NodeId(0),
                NodeId(2),
                LinkSpec::ideal(Duration::from_secs(9))
            ),
            Err(TopologyError::TooManyLinkSpecs {
                max: LINK_SPECS_MAX
            })
        );
        assert!(
            net.set_link(NodeId(0), NodeId(2), lossy).is_ok(),
            "a known spec still fits"
        );
        let mut rng = SimRng::new(1);
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(1), NodeId(0), 10, &mut rng),
            Transmission::Dropped(DropReason::Loss)
        );
        assert_eq!(
            net.link_stats().count(),
            1,
            "the lost packet still used the link"
        );
    }
}
