//! The live network: per-link serializers and counters, site uplinks, partitions and clogs. It
//! decides, for one packet, whether it is dropped (and why) or when it arrives; it never sees
//! message contents, only sizes.

use stockade_core::{NodeId, Time};

use crate::hash::FxHashMap;
use crate::link::{LinkParams, LinkSpec, Serializer, SiteCap};
use crate::rng::SimRng;
use crate::topology::{Shape, Topology, TopologyError};

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
    links: Vec<LinkState>,
    site_of: Vec<u32>,
    sites: Vec<SiteState>,
    partition_of: Vec<u32>,
    clogged_until: FxHashMap<usize, Time>,
}

impl Network {
    /// The network described by `topology`.
    pub fn new(topology: &Topology) -> Result<Network, TopologyError> {
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
        let spec_index = match self.specs.iter().position(|s| *s == spec) {
            Some(i) => i,
            None if self.specs.len() < LINK_SPECS_MAX => {
                self.specs.push(spec);
                self.params.push(spec.compile());
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
        let index = self
            .shape
            .link_index(from, to)
            .ok_or(TopologyError::NoSuchLink { from, to })?;
        self.clogged_until.insert(index, until);
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
            return Transmission::Dropped(DropReason::NoLink);
        };
        let mut enter_ns = now.as_nanos();
        if let Some(site_index) = self.site_leaving(from, to) {
            let site = &mut self.sites[site_index];
            if let Some(cap) = site.cap {
                match site
                    .serializer
                    .admit(enter_ns, bytes, cap.bandwidth_bps, cap.buffer_bytes)
                {
                    Some(left_site_ns) => {
                        site.bytes += bytes;
                        site.messages += 1;
                        enter_ns = left_site_ns;
                    }
                    None => return Transmission::Dropped(DropReason::SiteBuffer),
                }
            }
        }
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
        let mut earliest_ns = departed_ns.saturating_add(params.latency_ns);
        if !self.clogged_until.is_empty() {
            if let Some(until) = self.clogged_until.get(&index) {
                earliest_ns = earliest_ns.max(until.as_nanos().saturating_add(params.latency_ns));
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

    fn mesh(spec: LinkSpec) -> Network {
        Network::new(&Topology::full_mesh(3, spec)).expect("valid")
    }

    #[test]
    fn arrival_is_serialization_plus_latency() {
        let mut net = mesh(LinkSpec::wan(Duration::from_millis(50), 8_000_000));
        let mut rng = SimRng::new(1);
        // 1000 bytes at one byte per microsecond: 1 ms on the wire, then 50 ms.
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(1), 1000, &mut rng);
        assert_eq!(
            t,
            Transmission::Sent {
                arrival: Time::from_millis(51),
                duplicate: None
            }
        );
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(1), 1000, &mut rng);
        assert_eq!(
            t,
            Transmission::Sent {
                arrival: Time::from_millis(52),
                duplicate: None
            },
            "FIFO"
        );
        let t = net.transmit(Time::ZERO, NodeId(0), NodeId(2), 1000, &mut rng);
        assert_eq!(
            t,
            Transmission::Sent {
                arrival: Time::from_millis(51),
                duplicate: None
            },
            "own link"
        );
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
            Transmission::Sent {
                arrival: Time::from_millis(1010),
                duplicate: None
            }
        );
        net.heal();
        assert_eq!(
            net.transmit(Time::ZERO, NodeId(0), NodeId(1), 10, &mut rng),
            Transmission::Sent {
                arrival: Time::from_millis(10),
                duplicate: None
            }
        );
    }

    #[test]
    fn spec_table_deduplicates() {
        let mut net = mesh(LinkSpec::ideal(Duration::ZERO));
        let lossy = LinkSpec::ideal(Duration::ZERO).with_loss(1.0);
        net.set_link(NodeId(0), NodeId(1), lossy).expect("exists");
        net.set_link(NodeId(1), NodeId(0), lossy).expect("exists");
        assert_eq!(net.specs.len(), 2);
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
