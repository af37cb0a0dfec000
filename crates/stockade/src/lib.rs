//! The `stockade` command line as a library, so integration tests reach its parts: the grammar
//! ([`cli`]), the simulation scenarios of every crate ([`scenarios`], run by [`sim_cmd`]), the
//! benchmarks ([`bench`], [`kv_bench`] with [`kv_load`] and [`kv_baselines`]), the replicated KV
//! service's daemons and local cluster ([`kv_cmd`]), the demo of that cluster under attack
//! ([`demo`]), LA-groups' live view and pictures ([`groups`]), the broadcast cluster of real
//! processes behind `demo --broadcast` ([`cluster`]), the Pastry overlay's daemons
//! ([`overlay_cmd`]), the conformance suite both drivers pass ([`conformance`]), and how commands
//! report ([`headline`]).

pub mod attack;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod conformance;
pub mod demo;
pub mod groups;
pub mod headline;
pub mod keygen;
pub mod kv_baselines;
pub mod kv_bench;
pub mod kv_cmd;
pub mod kv_load;
pub mod overlay_cmd;
pub mod scenario_args;
pub mod scenarios;
pub mod sim_cmd;
