//! What a run is configured with: seed, costs, limits, the reproducing command, and the scheduled
//! faults a scenario can inject.

use std::time::Duration;

use stockade_core::{CostTable, DecodeLimits, NodeId, Time};

use crate::clock::ClockSpec;
use crate::link::LinkSpec;

/// Run-wide settings. Build with [`SimConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed: it alone fixes the run.
    pub seed: u64,
    /// Scenario name, printed in reports.
    pub scenario: String,
    /// The command that reproduces this run; `{seed}` is replaced by the seed
    /// (`"stockade sim prime-fuzz --seed {seed}"`).
    pub repro_command: String,
    /// Which crypto ran ("real", "stand-in (unforgeable in simulation)", "none"), printed in
    /// every report (DESIGN.md section 3).
    pub crypto_mode: String,
    /// CPU costs of `Effect::Charge` work; its `source` is printed in every report.
    pub cost_table: CostTable,
    /// Time from a persist effect until the batch is durable. Batches of a node complete in order.
    pub persist_latency: Duration,
    /// Bytes added to every packet's `wire_len()` (headers, MACs): 0 by default.
    pub packet_overhead_bytes: u32,
    /// Bounds for decoding raw bytes a receiver gets (corrupted or forged payloads).
    pub decode_limits: DecodeLimits,
    /// Inputs a paused or busy node queues; messages beyond it are dropped and counted (timers,
    /// persist completions, requests and restarts are always queued: they are bounded elsewhere).
    pub inbox_len_max: usize,
    /// Outputs kept for [`crate::World::take_outputs`] when the sink is `Record`; beyond it they
    /// are counted and discarded.
    pub output_log_len_max: usize,
    /// Call each node's `check_invariants()` after each of its handlers (a node's state changes
    /// only in its handlers, so this checks every live node after every event).
    pub check_invariants: bool,
    /// Events pending at once; beyond it the run stops with [`crate::SimError::EventQueueFull`]
    /// (a protocol that sends without bound would otherwise exhaust memory).
    pub pending_events_max: usize,
    /// Links with traffic a report lists one by one (`links.csv`); beyond it the report
    /// aggregates per sender (`senders.csv`), so a 1.6-million-link run does not write 40 MB.
    pub link_csv_rows_max: usize,
}

/// Default for [`SimConfig::pending_events_max`]: 20 million events, about 1.2 GB of queue.
pub const PENDING_EVENTS_MAX_DEFAULT: usize = 20_000_000;
/// Default for [`SimConfig::link_csv_rows_max`].
pub const LINK_CSV_ROWS_MAX_DEFAULT: usize = 100_000;

/// Default bound on a node's inbox.
pub const INBOX_LEN_MAX_DEFAULT: usize = 100_000;
/// Default bound on the recorded output log.
pub const OUTPUT_LOG_LEN_MAX_DEFAULT: usize = 1_000_000;

impl SimConfig {
    /// Defaults for `scenario` with `seed`: free CPU, 1 ms persists, message decode limits,
    /// invariants checked.
    pub fn new(scenario: &str, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            scenario: scenario.to_string(),
            repro_command: format!("stockade sim {scenario} --seed {{seed}}"),
            crypto_mode: "none".to_string(),
            cost_table: CostTable::free(),
            persist_latency: Duration::from_millis(1),
            packet_overhead_bytes: 0,
            decode_limits: DecodeLimits::MESSAGE,
            inbox_len_max: INBOX_LEN_MAX_DEFAULT,
            output_log_len_max: OUTPUT_LOG_LEN_MAX_DEFAULT,
            check_invariants: true,
            link_csv_rows_max: LINK_CSV_ROWS_MAX_DEFAULT,
            pending_events_max: PENDING_EVENTS_MAX_DEFAULT,
        }
    }

    /// The reproducing command with the seed filled in.
    pub fn repro(&self) -> String {
        self.repro_command.replace("{seed}", &self.seed.to_string())
    }
}

/// A fault a scenario schedules with [`crate::World::schedule_fault`]. Scheduled faults stop
/// when the liveness phase begins.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Crash the node: volatile state, persists in flight and held sends are lost.
    Crash(NodeId),
    /// Rebuild a crashed node from its durable store and start it.
    Restart(NodeId),
    /// Stop processing: inputs queue, timers fire late.
    Pause(NodeId),
    /// Resume a paused node: its inbox is processed in order.
    Resume(NodeId),
    /// Split the nodes into groups that cannot talk (unlisted nodes form one more group).
    Partition(Vec<Vec<NodeId>>),
    /// Cut one node off.
    Isolate(NodeId),
    /// Hold packets on link `from -> to` until `until`.
    Clog {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// When the link flows again.
        until: Time,
    },
    /// Change a link's behaviour.
    SetLink {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The new spec.
        spec: LinkSpec,
    },
    /// Change a node's clock drift.
    SetClock(NodeId, ClockSpec),
    /// Remove partitions and clogs.
    Heal,
}
