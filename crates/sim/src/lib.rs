//! The deterministic discrete-event simulator that drives any [`stockade_core::Protocol`]
//! (DESIGN.md section 3).
//!
//! One [`World`] holds every node's protocol instance, a network of directed links, one event
//! queue ordered by `(time, seq)` and one RNG seeded by [`SimConfig::seed`]: a run is bit-for-bit
//! reproducible from its seed, and [`World::digest`] hashes every event processed to prove it.
//!
//! - Links ([`LinkSpec`]): latency, bandwidth with FIFO drop-tail queues, loss, duplication,
//!   jitter; full mesh, sparse ([`Adjacency`]) or computed-latency [`Topology`]; per-site uplink caps
//!   ([`SiteCap`]); partitions, clogs, healing ([`Fault`]).
//! - Nodes: crash (volatile state, persists in flight and held sends lost), restart from exactly
//!   the durable [`stockade_core::MemStore`] through the factory, pause, clock drift
//!   ([`ClockSpec`]), named timers, a virtual CPU charged from [`SimConfig::cost_table`].
//! - Byzantine nodes: an [`Adversary`] rewrites a node's effects and inputs; [`Byzantine`]
//!   delays, drops, duplicates, corrupts (receivers decode raw bytes under limits), equivocates,
//!   or follows a script.
//! - Checks: each node's `check_invariants()` after each of its handlers, global [`Checker`]s
//!   after every event and output, random fault schedules ([`Nemesis`]), then
//!   [`World::liveness`]; failures carry the reproducing command.
//! - Output: [`Metrics`] (counters, histograms, bounded time series), [`Report`] (JSON headline,
//!   CSV, SVG plots: [`Report::write_all`]), and the [`Scenario`] [`Registry`] the
//!   `stockade sim` CLI runs.
//!
//! # Driving it
//!
//! ```
//! use std::time::Duration;
//! use stockade_core::{Context, NodeId, Protocol, Time};
//! use stockade_sim::{LinkSpec, SimConfig, Topology, World};
//!
//! /// Node 0 greets everyone at start; each node delivers what it hears.
//! struct Hello;
//! impl Protocol for Hello {
//!     type Message = u64;
//!     type Timer = ();
//!     type Request = ();
//!     type Output = (NodeId, u64);
//!     fn on_start(&mut self, cx: &mut Context<'_, Self>) {
//!         if cx.me() == NodeId(0) {
//!             cx.send_all((1..4).map(NodeId), &42);
//!         }
//!     }
//!     fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, m: u64) {
//!         cx.deliver((from, m));
//!     }
//!     fn on_timer(&mut self, _: &mut Context<'_, Self>, _: ()) {}
//!     fn on_request(&mut self, _: &mut Context<'_, Self>, _: ()) {}
//! }
//!
//! let config = SimConfig::new("hello", 7); // repro: "stockade sim hello --seed 7"
//! let topology = Topology::full_mesh(4, LinkSpec::wan(Duration::from_millis(50), 10_000_000));
//! let mut world = World::new(config, topology, |_id, _store| Hello)?;
//! world.crash(NodeId(3))?;
//! world.run_until(Time::from_secs(1))?;
//! let outputs = world.take_outputs();
//! assert_eq!(outputs.len(), 2, "n3 was down");
//! assert_eq!(outputs[0].at, Time::from_nanos(50_006_400)); // 8-byte message: 6.4 us + 50 ms
//! println!("{}", world.report(serde_json::json!({"hello": true})).headline_line());
//! # Ok::<(), stockade_sim::SimError>(())
//! ```
//!
//! # Writing a scenario
//!
//! A fuzz scenario for a protocol (openraft's and TigerBeetle's pattern) usually:
//! 1. builds a [`SimConfig`] from the seed, with `repro_command` set to its own command line,
//!    `crypto_mode` and `cost_table` set to what it models;
//! 2. builds a [`Topology`] ([`Topology::full_mesh_sites`] plus [`Topology::set_site_cap`] for
//!    paper 004's wide-area setup, [`Adjacency::random_out`] and [`Topology::sparse`] for
//!    overlays) and the [`World`] with a factory that rebuilds a node from its store;
//! 3. attaches [`Byzantine`] adversaries, [`Checker`]s, and a [`Nemesis`] fault schedule;
//! 4. injects the workload with [`World::request_at`] and runs the safety phase
//!    ([`World::run_until`]), recording throughput over time with
//!    [`World::record_counter_series`] and its own [`Metrics::series_per_interval`];
//! 5. runs [`World::liveness`], then returns a [`ScenarioOutcome`] built from
//!    [`World::report`] (`passed: false` and the error's text when a [`SimError`] came back),
//!    after [`Report::write_all`] into [`RunOptions::out_dir`] when the CLI gave `--out`.
//!
//! [`World::set_tracer`] prints every input, effect and drop when reading a failing seed.
//! [`scale::ScaleScenario`] is a complete scenario.

mod byzantine;
mod checker;
mod clock;
mod config;
mod engine;
mod hash;
#[cfg(test)]
mod inert;
mod link;
mod metrics;
mod nemesis;
mod network;
mod node;
mod plot;
mod queue;
mod report;
mod rng;
mod sampler;
pub mod scale;
mod scenario;
mod series;
mod timers;
mod topology;
mod world;

pub use byzantine::{
    corrupt_bytes, Action, Adversary, AdversaryCx, Byzantine, Corruption, EquivocateFn,
    OutgoingSend, Payload, ScriptFn, Tamper,
};
pub use checker::{Checker, SimError, WorldView};
pub use clock::ClockSpec;
pub use config::{
    Fault, SimConfig, INBOX_LEN_MAX_DEFAULT, LINK_CSV_ROWS_MAX_DEFAULT, OUTPUT_LOG_LEN_MAX_DEFAULT,
    PENDING_EVENTS_MAX_DEFAULT,
};
pub use hash::{EventDigest, FxHashMap, FxHasher};
pub use link::{serialization_ns, LinkSpec, Serializer, SiteCap, BUFFER_BYTES_DEFAULT};
pub use metrics::{peak_rss_bytes, Histogram, Metrics, SimCounters};
pub use nemesis::{Nemesis, NemesisPlan, NEMESIS_FAULTS_MAX_DEFAULT};
pub use network::{DropReason, LinkStats, Network, SiteStats, Transmission, LINK_SPECS_MAX};
pub use node::{NodeStatus, NodeView};
pub use plot::{PlotError, PLOT_POINTS_MAX};
pub use queue::EventQueue;
pub use report::{events_per_sec, LinkTraffic, Report};
pub use rng::{probability_threshold, SimRng};
pub use scenario::{ProgressFn, Registry, RunOptions, Scenario, ScenarioError, ScenarioOutcome};
pub use series::{SeriesId, SeriesKind, TimeSeries, SERIES_POINTS_MAX_DEFAULT};
pub use timers::TIMERS_INLINE;
pub use topology::{Adjacency, LatencyFn, Topology, TopologyError, FULL_MESH_NODES_MAX};
pub use world::{Delivery, Factory, OutputHandler, OutputSink, Progress, Tracer, World};
