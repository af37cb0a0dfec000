//! The Pastry structured overlay (paper 002): 128-bit ids on a ring, prefix routing with
//! proximity neighbour selection, leaf sets, and the key-based routing (KBR) API.
//!
//! Map of the paper onto modules:
//! - "Identifier space", digits: [`id`];
//! - "Routing table", "Proximity invariant": [`routing_table`];
//! - "Leaf sets": [`leaf_set`]; neighbourhood set: [`neighborhood`];
//! - "Prefix-based routing" (the routing rule): [`route`];
//! - "Secure nodeId assignment" (certified node ids): [`certificate`];
//! - the event-driven protocol (join, keep-alive, repair, departure, KBR API): [`protocol`];
//! - "Distributed hash tables" (PAST: replicas, caching, self-certifying data, quotas): [`dht`];
//! - "Cooperative group communication" (Scribe multicast, anycast, tree repair): [`scribe`];
//! - the `stockade sim` scenarios (`pastry-hops`, `pastry-failures`, `pastry-malicious`,
//!   `pastry-churn`, `dht`, `scribe`): [`scenarios`];
//! - the DHT and Scribe on one node behind a ticketed interface, as the real daemon runs them:
//!   [`service`];
//! - the real daemon behind `stockade overlay` (feature `net`): [`net`];
//! - scale experiments over a statically built overlay (hop counts, delay stretch):
//!   [`static_overlay`] on a [`latency`] model, driven by the `pastry-hops` binary; failures and
//!   malicious nodes (secure routing: constrained tables, redundant routing): [`static_faults`];
//!   the whole secure routing primitive (routing failure test, then redundant routing):
//!   [`static_secure`]; Scribe trees at 100,000 nodes (delay penalty, link stress):
//!   [`static_scribe`].

pub mod certificate;
pub mod dht;
pub mod handle;
pub mod id;
pub mod latency;
pub mod leaf_set;
pub mod neighborhood;
#[cfg(feature = "net")]
pub mod net;
pub mod protocol;
pub mod route;
pub mod routing_table;
#[cfg(feature = "sim")]
pub mod scenarios;
pub mod scribe;
pub mod service;
pub mod static_faults;
pub mod static_overlay;
pub mod static_scribe;
pub mod static_secure;

pub use certificate::{CertificateAuthority, CertificateError, NodeCertificate};
pub use handle::NodeHandle;
pub use id::{BadDigitBits, DigitBits, OverlayId};
pub use latency::{LatencyMatrix, LatencyModel};
pub use leaf_set::LeafSet;
pub use neighborhood::NeighborhoodSet;
pub use protocol::{
    DeliverAll, ForwardVerdict, KbrApplication, Pastry, PastryConfig, PastryMessage, PastryOutput,
    PastryRequest, PastryTimer, Phase, RouteRefused,
};
pub use route::{next_hop, progress_candidates, HopRule, NextHop, RoutingView};
pub use routing_table::{RouteEntry, RoutingTable, TableChange};
pub use static_faults::{FailureStats, MaliciousStats};
pub use static_overlay::{LookupStats, StaticConfig, StaticOverlay, TableRule};
