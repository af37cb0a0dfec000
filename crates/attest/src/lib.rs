//! LA-groups (paper 000, Freedman, Stoica, Mazieres, Shenker: "Group therapy for systems: using
//! link attestations to manage failures").
//!
//! The benchmark behind `stockade bench transcript --members M` is
//! [`transcript::bench_transcript`]; the `stockade sim la-*` scenarios are registered by
//! `scenarios::register` (feature `sim`).
//!
//! Section names below are those of the paper (its text in `seeds/000_*.txt` lost the numbers).
//!
//! Nodes attest to each other's acceptability with signed, expiring link attestations; the
//! attestations of a group form a directed attestation graph that every member learns by a
//! link-state protocol, and applications ask that graph questions (shortest paths, vertex-disjoint
//! paths, minimum cuts, strongly connected components) to decide how much to trust or replicate.
//!
//! | paper | module |
//! |---|---|
//! | section "LA-groups abstraction", graph properties ("shortest path, number of vertex disjoint paths, max flow / min cut, strongly connected subgraphs, clustering coefficient") | [`graph`] |
//! | section "Attestations and membership transcripts", attestations (group id, attestee, optional info, expiration time; signed by the attester) | [`attestation`] |
//! | Fig. 1 (API); "Views and link-state announcements"; snapshots and aggregation of "Compact signature representation" | [`group`], [`messages`] |
//! | section "Discussion: stateful monitoring" (liveness, performance, voting) | [`monitor`] |
//! | section "Robust group membership protocol" (static and dynamic thresholds); section "Partitioned trust networks", trust by vertex-disjoint paths | [`robust`] |
//! | sections "Attestations and membership transcripts", "Compact signature representation" | [`transcript`] |
//! | sections "Flat: structured routing overlays", "Partitioned trust networks", robust storage; views' convergence | `scenarios` (`sim` feature) |
//! | section "LA-groups abstraction", digital signatures, and MACs between directly connected nodes | [`keys`] |

pub mod attestation;
pub mod graph;
pub mod group;
pub mod keys;
pub mod messages;
pub mod monitor;
pub mod robust;
#[cfg(any(feature = "sim", test))]
pub mod scenarios;
pub mod transcript;

#[cfg(test)]
mod test_graphs;
#[cfg(test)]
mod test_net;
