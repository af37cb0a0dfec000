//! LA-groups (paper 000, Freedman, Stoica, Mazieres, Shenker: "Group therapy for systems: using
//! link attestations to manage failures").
//!
//! Nodes attest to each other's acceptability with signed, expiring link attestations; the
//! attestations of a group form a directed attestation graph that every member learns by a
//! link-state protocol, and applications ask that graph questions (shortest paths, vertex-disjoint
//! paths, minimum cuts, strongly connected components) to decide how much to trust or replicate.
//!
//! | paper | module |
//! |---|---|
//! | section 2, graph properties ("shortest path, number of vertex disjoint paths, max flow / min cut, strongly connected subgraphs, clustering coefficient") | [`graph`] |
//! | section 2.2, attestations (group id, attestee, optional info, expiration time; signed by the attester) | [`attestation`] |
//! | section 2.1, digital signatures, and MACs between directly connected nodes | [`keys`] |

pub mod attestation;
pub mod graph;
pub mod group;
pub mod keys;
pub mod messages;

pub mod monitor;
#[cfg(test)]
mod test_net;
