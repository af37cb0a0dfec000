//! `stockade demo --broadcast`: Bracha broadcast as a real local cluster of 4 processes on loopback (Noise
//! over UDP, Ed25519 on every message). Every node broadcasts a paced stream; halfway through,
//! one process is killed (SIGKILL). The report says in plain words what ran, the throughput and
//! latency before and after the fault, what the fault cost, and what the survivors noticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use stockade_broadcast::InstanceId;
use stockade_core::NodeId;

use crate::cli::DemoArgs;
use crate::cluster::process::{ClusterPlan, NodeEvent, ProcessCluster};
use crate::headline::{print_headline, Verdict};

/// Faults tolerated by the demo's committee: 4 processes.
const DEMO_F: usize = 1;
/// The process killed halfway.
const VICTIM: NodeId = NodeId(3);
/// How long the survivors may take, after the stream ends, to deliver everything.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Bytes per broadcast payload.
const PAYLOAD_BYTES: usize = 200;
/// Highest offered load accepted, per node.
const RATE_MAX: u64 = 10_000;

fn payload(origin: NodeId, seq: u64) -> Vec<u8> {
    let mut p = format!("demo {origin} #{seq} ").into_bytes();
    p.resize(PAYLOAD_BYTES, b'.');
    p
}

/// What the controller saw: when each broadcast was asked for, and who delivered what, when.
#[derive(Default)]
struct Record {
    sent_at: BTreeMap<InstanceId, Instant>,
    delivered: BTreeMap<NodeId, BTreeMap<InstanceId, Instant>>,
    wrong_payloads: u64,
}

impl Record {
    fn take(&mut self, node: NodeId, at: Instant, event: NodeEvent) {
        if let NodeEvent::Delivered {
            instance,
            payload: got,
        } = event
        {
            if got != payload(instance.origin, instance.seq) {
                self.wrong_payloads += 1;
            }
            self.delivered.entry(node).or_default().insert(instance, at);
        }
    }

    /// Every survivor delivered every survivor's broadcast, and the same set of the victim's.
    fn complete(&self, survivors: &[NodeId]) -> bool {
        let wanted: Vec<&InstanceId> = self
            .sent_at
            .keys()
            .filter(|id| id.origin != VICTIM)
            .collect();
        let empty = BTreeMap::new();
        let got = |n: &NodeId| self.delivered.get(n).unwrap_or(&empty);
        let victims = |n: &NodeId| {
            got(n)
                .keys()
                .filter(|id| id.origin == VICTIM)
                .copied()
                .collect::<BTreeSet<_>>()
        };
        survivors
            .iter()
            .all(|n| wanted.iter().all(|id| got(n).contains_key(id)))
            && survivors
                .iter()
                .all(|n| victims(n) == victims(&survivors[0]))
    }

    /// Figures of the survivors' broadcasts sent in `from..until`, as the survivors saw them.
    fn figures(&self, survivors: &[NodeId], from: Instant, until: Instant) -> Figures {
        let sent: Vec<(&InstanceId, &Instant)> = self
            .sent_at
            .iter()
            .filter(|(id, at)| id.origin != VICTIM && **at >= from && **at < until)
            .collect();
        let mut latencies_ms = Vec::new();
        let mut last = from;
        for (id, sent_at) in &sent {
            for node in survivors {
                if let Some(at) = self.delivered.get(node).and_then(|d| d.get(id)) {
                    latencies_ms.push(at.duration_since(**sent_at).as_secs_f64() * 1e3);
                    last = last.max(*at);
                }
            }
        }
        latencies_ms.sort_by(f64::total_cmp);
        Figures {
            broadcasts: sent.len() as u64,
            deliveries: latencies_ms.len() as u64,
            span: last - from,
            latencies_ms,
        }
    }
}

/// Throughput and latency of one half of the stream.
struct Figures {
    broadcasts: u64,
    deliveries: u64,
    span: Duration,
    latencies_ms: Vec<f64>,
}

impl Figures {
    fn per_sec(&self) -> f64 {
        self.broadcasts as f64 / self.span.as_secs_f64().max(1e-9)
    }
    fn latency_ms(&self, q: f64) -> f64 {
        match self.latencies_ms.len() {
            0 => 0.0,
            len => self.latencies_ms[((len - 1) as f64 * q).round() as usize],
        }
    }
    fn json(&self) -> Value {
        json!({
            "broadcasts": self.broadcasts,
            "deliveries_at_survivors": self.deliveries,
            "broadcasts_per_sec": self.per_sec(),
            "latency_p50_ms": self.latency_ms(0.5),
            "latency_p99_ms": self.latency_ms(0.99),
        })
    }
    fn describe(&self) -> String {
        format!(
            "{} broadcasts from the survivors, {:.0} delivered per second, latency p50 {:.1} ms, p99 {:.1} ms",
            self.broadcasts,
            self.per_sec(),
            self.latency_ms(0.5),
            self.latency_ms(0.99)
        )
    }
}

/// Run the broadcast demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<Verdict> {
    if !(1..=RATE_MAX).contains(&args.rate) {
        bail!("--rate must be between 1 and {RATE_MAX} broadcasts per second");
    }
    let exe = std::env::current_exe().context("finding this binary to start the nodes")?;
    let _temp;
    let dir: PathBuf = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            _temp = tempfile::tempdir().context("creating a temporary directory")?;
            _temp.path().to_path_buf()
        }
    };
    let n = 3 * DEMO_F + 1;
    let everyone: Vec<NodeId> = (0..n as u32).map(NodeId).collect();
    let survivors: Vec<NodeId> = everyone
        .iter()
        .copied()
        .filter(|id| *id != VICTIM)
        .collect();
    println!("What runs: Bracha reliable broadcast among {n} processes on 127.0.0.1, linked by Noise IK over UDP,");
    println!("every message signed with Ed25519; it tolerates f = {DEMO_F} faulty process.");
    let base_port = (args.base_port != 0).then_some(args.base_port);
    let mut cluster = ProcessCluster::start(
        &exe,
        &dir,
        &ClusterPlan {
            f: DEMO_F,
            base_port,
            faults: BTreeMap::new(),
        },
    )?;
    println!(
        "Started {n} nodes (keys, configs and logs in {}).",
        dir.display()
    );
    println!(
        "Each node broadcasts {} messages of {PAYLOAD_BYTES} B at {} per second; node {} is killed halfway.\n",
        args.messages, args.rate, VICTIM.0
    );

    let mut record = Record::default();
    let interval = Duration::from_secs(1) / args.rate as u32;
    let stream_start = Instant::now();
    let mut killed_at = None;
    for seq in 0..args.messages {
        if seq == args.messages / 2 {
            cluster.kill(VICTIM)?;
            killed_at = Some(Instant::now());
            println!(
                "fault: node {} killed (SIGKILL) after {} broadcasts each",
                VICTIM.0, seq
            );
        }
        let live = if killed_at.is_some() {
            &survivors
        } else {
            &everyone
        };
        for origin in live {
            record.sent_at.insert(
                InstanceId {
                    origin: *origin,
                    seq,
                },
                Instant::now(),
            );
            cluster.broadcast(*origin, &payload(*origin, seq))?;
        }
        // Read what arrived until the next tick.
        let tick = stream_start + interval * (seq as u32 + 1);
        while let Some((node, at, event)) =
            cluster.next_event(tick.saturating_duration_since(Instant::now()))
        {
            record.take(node, at, event);
        }
    }
    let stream_end = Instant::now();
    let drain_deadline = stream_end + DRAIN_TIMEOUT;
    while !record.complete(&survivors) {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some((node, at, event)) = cluster.next_event(left) {
            record.take(node, at, event);
        }
    }
    let complete = record.complete(&survivors) && record.wrong_payloads == 0;
    let stats = cluster.quit_all(|node, at, event| record.take(node, at, event));

    let killed_at = killed_at.unwrap_or(stream_end);
    let before = record.figures(&survivors, stream_start, killed_at);
    let after = record.figures(&survivors, killed_at, stream_end);
    let sum = |field: &str| -> u64 {
        stats
            .values()
            .map(|s| s["broadcast"][field].as_u64().unwrap_or(0))
            .sum()
    };
    let handshakes = |s: &Value| {
        s["runtime"]["stockade_link_handshakes_initiated"]
            .as_u64()
            .unwrap_or(0)
    };
    let (retransmissions, invalid, equivocations) = (
        sum("retransmissions"),
        sum("invalid_signatures"),
        sum("equivocations_detected"),
    );
    let victim_delivered = record
        .delivered
        .get(&survivors[0])
        .map_or(0, |d| d.keys().filter(|id| id.origin == VICTIM).count());

    println!("\nBefore the fault: {}.", before.describe());
    println!("After the fault:  {}.", after.describe());
    println!("\nWhat held:");
    if complete {
        println!("  - every surviving node delivered every broadcast of every survivor, with identical payloads;");
        println!(
            "    of the killed node's broadcasts, the survivors all delivered the same {victim_delivered} (none half-delivered)."
        );
    } else {
        println!(
            "  - NOT everything was delivered within {DRAIN_TIMEOUT:?}: see the node logs in {}",
            dir.display()
        );
    }
    let latency_cost = after.latency_ms(0.5) - before.latency_ms(0.5);
    if latency_cost > 0.0 {
        println!(
            "What the fault cost: {latency_cost:.1} ms of p50 latency, and all of the margin:"
        );
    } else {
        println!(
            "What the fault cost: no speed (p50 {:.1} -> {:.1} ms: three nodes check fewer signatures than four), but all of the margin:",
            before.latency_ms(0.5),
            after.latency_ms(0.5)
        );
    }
    println!("  with n = 4 and f = 1 the 3 survivors are exactly the 2f+1 quorum; one more crash would stop progress.");
    println!(
        "What was detected: the survivors re-sent {retransmissions} messages towards the silent node and retried {} handshakes;",
        stats.values().map(handshakes).sum::<u64>()
    );
    println!("  {invalid} invalid signatures and {equivocations} equivocations were seen (none expected: the fault was a crash, not a lie).");
    print_headline(&json!({
        "demo": "bracha-broadcast",
        "nodes": n,
        "f": DEMO_F,
        "killed_node": VICTIM.0,
        "rate_per_node": args.rate,
        "messages_per_node": args.messages,
        "before_fault": before.json(),
        "after_fault": after.json(),
        "latency_p50_cost_ms": latency_cost,
        "killed_node_broadcasts_delivered": victim_delivered,
        "survivor_retransmissions": retransmissions,
        "invalid_signatures_seen": invalid,
        "complete": complete,
    }));
    Ok(Verdict::from_passed(complete))
}
