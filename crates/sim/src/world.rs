//! The [`World`]: nodes, network, event queue and RNG of one run, and the calls a scenario makes
//! to build it, inject faults, run it and read results. The event loop itself is in `engine.rs`.

use std::time::{Duration, Instant};

use stockade_core::{Effect, MemStore, NodeId, Protocol, Time};

use crate::byzantine::{Action, Adversary, Payload};
use crate::checker::{Checker, SimError, WorldView};
use crate::clock::ClockSpec;
use crate::config::{Fault, SimConfig};
use crate::engine::Event;
use crate::hash::EventDigest;
use crate::metrics::Metrics;
use crate::network::Network;
use crate::node::{Node, NodeStatus, NodeView};
use crate::queue::EventQueue;
use crate::report::Report;
use crate::rng::SimRng;
use crate::sampler::CounterSampler;
use crate::topology::Topology;

/// Builds a node's protocol: at start from an empty store, at restart from exactly the persist
/// batches that completed before the crash.
pub type Factory<P> = Box<dyn Fn(NodeId, &MemStore) -> P>;

/// A scenario's hook for application outputs: `(true time, node, output, metrics)`.
pub type OutputHandler<P> = Box<dyn FnMut(Time, NodeId, <P as Protocol>::Output, &mut Metrics)>;

/// Where application outputs go after the checkers saw them.
pub enum OutputSink<P: Protocol> {
    /// Kept (up to `output_log_len_max`) for [`World::take_outputs`]. The default.
    Record,
    /// Dropped (counted only).
    Discard,
    /// Handed to a scenario closure (for runs too long to keep every output).
    Handler(OutputHandler<P>),
}

/// One application output.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery<O> {
    /// True time it was delivered (after the handler's CPU work).
    pub at: Time,
    /// The node that delivered it.
    pub node: NodeId,
    /// The output.
    pub output: O,
}

/// What a progress callback sees.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// True simulation time.
    pub now: Time,
    /// Events processed so far.
    pub events: u64,
    /// Events pending.
    pub queue_len: usize,
    /// Wall time spent running so far.
    pub wall: Duration,
}

/// Receives one line per input a node handles, per effect it emits and per packet dropped:
/// `(true time, node, what)`. For reading a failing seed; costs nothing when not set.
pub type Tracer = Box<dyn FnMut(Time, NodeId, std::fmt::Arguments<'_>)>;

pub(crate) struct ProgressHook {
    pub every: Duration,
    pub next_at: Time,
    pub callback: Box<dyn FnMut(&Progress)>,
}

/// A deterministic simulated world running protocol `P` on every node.
///
/// Everything that happens is an event in one queue ordered by `(time, seq)`, and all randomness
/// comes from one RNG seeded by `config.seed`: the same seed and the same scenario calls give the
/// same run, event for event ([`World::digest`] proves it).
pub struct World<P: Protocol> {
    pub(crate) config: SimConfig,
    pub(crate) factory: Factory<P>,
    pub(crate) nodes: Vec<Node<P>>,
    pub(crate) network: Network,
    pub(crate) queue: EventQueue<Event<P>>,
    pub(crate) rng: SimRng,
    pub(crate) now: Time,
    pub(crate) digest: EventDigest,
    pub(crate) metrics: Metrics,
    pub(crate) checkers: Vec<Box<dyn Checker<P>>>,
    pub(crate) output_sink: OutputSink<P>,
    pub(crate) outputs: Vec<Delivery<P::Output>>,
    pub(crate) faults_enabled: bool,
    pub(crate) effects_buf: Vec<Effect<P>>,
    pub(crate) action_buf: Vec<Action<P>>,
    pub(crate) progress: Option<ProgressHook>,
    pub(crate) counter_sampler: Option<CounterSampler>,
    pub(crate) tracer: Option<Tracer>,
    pub(crate) wall: Duration,
}

impl<P: Protocol> World<P> {
    /// A world of `topology.node_count()` nodes, each built by `factory` from an empty store and
    /// started (`on_start`) at time zero, in id order.
    pub fn new(
        config: SimConfig,
        topology: Topology,
        factory: impl Fn(NodeId, &MemStore) -> P + 'static,
    ) -> Result<World<P>, SimError> {
        let network = Network::new(&topology)?;
        let empty = MemStore::new();
        let count = topology.node_count();
        let mut nodes = Vec::with_capacity(count as usize);
        let mut queue = EventQueue::new();
        for id in 0..count {
            nodes.push(Node::new(factory(NodeId(id), &empty)));
            queue.push(
                Time::ZERO,
                Event::Start {
                    node: id,
                    incarnation: 0,
                },
            );
        }
        Ok(World {
            rng: SimRng::new(config.seed),
            config,
            factory: Box::new(factory),
            nodes,
            network,
            queue,
            now: Time::ZERO,
            digest: EventDigest::default(),
            metrics: Metrics::default(),
            checkers: Vec::new(),
            output_sink: OutputSink::Record,
            outputs: Vec::new(),
            faults_enabled: true,
            effects_buf: Vec::new(),
            action_buf: Vec::new(),
            progress: None,
            counter_sampler: None,
            tracer: None,
            wall: Duration::ZERO,
        })
    }

    // ----- reading the world -----

    /// True simulation time.
    pub fn now(&self) -> Time {
        self.now
    }
    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// The digest of every event processed so far: equal digests mean identical runs.
    pub fn digest(&self) -> u64 {
        self.digest.value()
    }
    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.metrics.sim.events
    }
    /// Events pending.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }
    /// Wall time spent inside the run calls so far.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }
    /// Counters, histograms and time series.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// Counters, histograms and time series, for scenario code to add its own.
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }
    /// The live network (link specs, stats).
    pub fn network(&self) -> &Network {
        &self.network
    }
    /// Every node, read-only.
    pub fn view(&self) -> WorldView<'_, P> {
        WorldView {
            now: self.now,
            nodes: &self.nodes,
        }
    }
    /// One node, read-only.
    pub fn node(&self, id: NodeId) -> Option<NodeView<'_, P>> {
        self.nodes.get(id.index()).map(|node| NodeView { id, node })
    }
    /// A live node's protocol state.
    pub fn protocol(&self, id: NodeId) -> Option<&P> {
        self.nodes.get(id.index()).and_then(|n| n.protocol.as_ref())
    }
    /// A live node's protocol state, mutably: for scenario setup (bootstrapping state a real
    /// deployment would build by joining). Invariants are checked again at the node's next event.
    pub fn protocol_mut(&mut self, id: NodeId) -> Option<&mut P> {
        self.nodes
            .get_mut(id.index())
            .and_then(|n| n.protocol.as_mut())
    }
    /// The world's RNG, for scenario-level randomness (random faults, workloads). Draws happen in
    /// the scenario's call order, so they stay reproducible from the seed.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }
    /// A node's status (`None` for an unknown id).
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.nodes.get(id.index()).map(|n| n.status)
    }
    /// Recorded outputs since the last call (with [`OutputSink::Record`]).
    pub fn take_outputs(&mut self) -> Vec<Delivery<P::Output>> {
        std::mem::take(&mut self.outputs)
    }

    // ----- configuring the world -----

    /// Check `checker` after every event and on every output.
    pub fn add_checker(&mut self, checker: impl Checker<P> + 'static) {
        self.checkers.push(Box::new(checker));
    }
    /// Send application outputs to `sink`.
    pub fn set_output_sink(&mut self, sink: OutputSink<P>) {
        self.output_sink = sink;
    }
    /// Let `adversary` control node `id` from now on (it survives restarts).
    pub fn set_adversary(
        &mut self,
        id: NodeId,
        adversary: impl Adversary<P> + 'static,
    ) -> Result<(), SimError> {
        self.node_mut(id)?.adversary = Some(Box::new(adversary));
        Ok(())
    }
    /// Give node `id` a drifting clock.
    pub fn set_clock(&mut self, id: NodeId, clock: ClockSpec) -> Result<(), SimError> {
        self.node_mut(id)?.clock = clock;
        Ok(())
    }
    /// Call `callback` each time simulated time passes another `every`.
    pub fn set_progress(&mut self, every: Duration, callback: impl FnMut(&Progress) + 'static) {
        self.progress = Some(ProgressHook {
            every,
            next_at: self.now + every,
            callback: Box::new(callback),
        });
    }

    /// Record the simulator's counters as time series summed per `interval` of simulated time,
    /// from now on: `sim_messages_sent`, `sim_messages_delivered`, `sim_bytes_sent`,
    /// `sim_dropped` in [`Metrics::series`] (each bounded by
    /// [`crate::SERIES_POINTS_MAX_DEFAULT`] points). The last interval is brought up to date
    /// whenever a run call returns. Off unless asked; calling again restarts the intervals.
    pub fn record_counter_series(&mut self, interval: Duration) {
        self.counter_sampler = Some(CounterSampler::new(&mut self.metrics, interval, self.now));
    }

    /// Trace every input, effect and drop to `tracer`
    /// (`world.set_tracer(|at, node, what| eprintln!("{at} {node} {what}"))`).
    pub fn set_tracer(
        &mut self,
        tracer: impl FnMut(Time, NodeId, std::fmt::Arguments<'_>) + 'static,
    ) {
        self.tracer = Some(Box::new(tracer));
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> Result<&mut Node<P>, SimError> {
        let nodes = self.nodes.len() as u32;
        self.nodes.get_mut(id.index()).ok_or(SimError::Topology(
            crate::topology::TopologyError::UnknownNode { node: id, nodes },
        ))
    }

    // ----- inputs and faults -----

    /// The local application of `id` makes `request` now (processed by the next run call).
    pub fn request(&mut self, id: NodeId, request: P::Request) {
        self.request_at(self.now, id, request);
    }
    /// The local application of `id` makes `request` at `at` (not before now).
    pub fn request_at(&mut self, at: Time, id: NodeId, request: P::Request) {
        self.queue.push(
            at.max(self.now),
            Event::Request {
                node: id.0,
                request: Box::new(request),
            },
        );
    }
    /// Put `payload` on the link `from -> to` at `at`, as if `from` had sent it: for attacks that
    /// need no protocol at all (a forged or malformed message from a Byzantine node). It takes the
    /// link's bandwidth, loss and partitions like any send.
    pub fn inject_at(&mut self, at: Time, from: NodeId, to: NodeId, payload: Payload<P::Message>) {
        self.queue
            .push(at.max(self.now), Event::Transmit { from, to, payload });
    }

    /// Apply `fault` at `at`, unless the liveness phase started by then.
    pub fn schedule_fault(&mut self, at: Time, fault: Fault) {
        self.queue
            .push(at.max(self.now), Event::Fault(Box::new(fault)));
    }
    /// Crash `id` now.
    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Crash(id))
    }
    /// Restart crashed `id` now: rebuilt from its store, `on_start` runs at once.
    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Restart(id))
    }
    /// Pause `id` now.
    pub fn pause(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Pause(id))
    }
    /// Resume paused `id`: its inbox is processed from the next event on.
    pub fn resume(&mut self, id: NodeId) -> Result<(), SimError> {
        self.apply_fault(Fault::Resume(id))
    }
    /// Partition the nodes now (see [`Fault::Partition`]).
    pub fn partition(&mut self, groups: Vec<Vec<NodeId>>) -> Result<(), SimError> {
        self.apply_fault(Fault::Partition(groups))
    }
    /// Remove partitions and clogs now.
    pub fn heal(&mut self) -> Result<(), SimError> {
        self.apply_fault(Fault::Heal)
    }

    /// Stop scheduled faults, heal the network, resume paused and restart crashed nodes.
    /// Adversaries stay: the liveness phase runs on the healthy core around them.
    pub fn heal_all(&mut self) -> Result<(), SimError> {
        self.faults_enabled = false;
        self.network.heal();
        for i in 0..self.nodes.len() {
            match self.nodes[i].status {
                NodeStatus::Paused => self.apply_fault(Fault::Resume(NodeId(i as u32)))?,
                NodeStatus::Crashed => self.apply_fault(Fault::Restart(NodeId(i as u32)))?,
                NodeStatus::Up => {}
            }
        }
        Ok(())
    }

    // ----- running -----

    /// Process every event due at or before `until`; afterwards `now() == until` (or later, if
    /// it already was).
    pub fn run_until(&mut self, until: Time) -> Result<(), SimError> {
        let started = Instant::now();
        let result = (|| {
            while self.queue.peek_time().is_some_and(|t| t <= until) {
                self.step()?;
            }
            Ok(())
        })();
        self.now = self.now.max(until);
        self.flush_counter_series();
        self.wall += started.elapsed();
        self.tick_progress();
        result
    }

    fn flush_counter_series(&mut self) {
        if let Some(sampler) = &mut self.counter_sampler {
            sampler.flush(&mut self.metrics);
        }
    }

    /// Run for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        self.run_until(self.now + duration)
    }

    /// Run until `done` holds (checked before the first event and after each) or `deadline`
    /// passes. Returns whether `done` held.
    pub fn run_until_pred(
        &mut self,
        deadline: Time,
        mut done: impl FnMut(&WorldView<'_, P>) -> bool,
    ) -> Result<bool, SimError> {
        let started = Instant::now();
        let result = (|| loop {
            if done(&self.view()) {
                return Ok(true);
            }
            if self.queue.peek_time().is_none_or(|t| t > deadline) {
                return Ok(false);
            }
            self.step()?;
        })();
        if matches!(result, Ok(false)) {
            self.now = self.now.max(deadline);
        }
        self.flush_counter_series();
        self.wall += started.elapsed();
        result
    }

    /// The liveness phase: [`heal_all`](World::heal_all), then run until `done` holds, failing
    /// with [`SimError::Liveness`] (and the reproducing command) if it does not within `within`.
    pub fn liveness(
        &mut self,
        within: Duration,
        what: &str,
        done: impl FnMut(&WorldView<'_, P>) -> bool,
    ) -> Result<Time, SimError> {
        self.heal_all()?;
        let healed_at = self.now;
        let deadline = healed_at + within;
        if self.run_until_pred(deadline, done)? {
            Ok(self.now)
        } else {
            Err(SimError::Liveness {
                what: what.to_string(),
                healed_at,
                deadline,
                repro: self.config.repro(),
            })
        }
    }

    /// The run's report: the standard headline (scenario, seed, crypto mode, cost source, events,
    /// events/s, traffic, drops, digest) with `extra`'s fields merged in, plus all metrics.
    pub fn report(&self, extra: serde_json::Value) -> Report {
        Report::from_world(self, extra)
    }
}
