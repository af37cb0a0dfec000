//! Pump tests of suspect-leader on servers whose durable steps are slow (PRIME.md
//! "Suspect-leader", paper 004 section 5.1): every message that promises something leaves only
//! once its record is durable, so a correct leader's turnaround includes its disk. Such a leader is
//! kept; one that delays its pre-prepares beyond K_lat x TAT_acceptable + the pre-prepare period is
//! still replaced, and the view change that replaces it does not replace the correct next leader.

use std::time::Duration;

use crate::attack::Attack;
use crate::config::PrimeConfig;
use crate::replica::PrimeOutput;
use crate::test_support::{update, Pump};

/// One-way link delay: a local network.
const LINK: Duration = Duration::from_millis(1);
/// Every server's persist latency: a disk far slower than the network, as a loaded machine's
/// fsync is next to loopback.
const DISK: Duration = Duration::from_millis(24);
/// Updates submitted, one every 10 ms (long enough for TAT_acceptable to be agreed, from 1 s on).
const UPDATES: u64 = 300;

/// The LAN profile (5 ms pre-prepare period, 8 ms TAT_acceptable floor), slow disks everywhere.
fn slow_disk_cluster() -> Pump {
    let cfg = PrimeConfig::for_link_rtt(1, 0, Duration::from_micros(200));
    let mut pump = Pump::new(&cfg, LINK);
    pump.persist_latency = vec![DISK; 4];
    pump
}

/// Closed-loop-free load: updates spread over servers 1-3 (never only the leader's own).
fn run_load(pump: &mut Pump) {
    for step in 0..UPDATES {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(500));
}

fn suspicions(pump: &Pump, i: usize) -> Vec<u64> {
    pump.outputs[i]
        .iter()
        .filter_map(|o| match o {
            PrimeOutput::LeaderSuspected { view } => Some(*view),
            _ => None,
        })
        .collect()
}

/// The old rule suspected this leader: its turnaround includes its own disk (the pre-prepare leaves
/// once its vote is durable), about 1 + up to 5 + 24 + 1 ms, against 2.5 x 8 ms + 5 ms = 25 ms
/// taken from pongs that skipped the disk. Now TAT_acceptable comes from round trips that include
/// the pinged server's disk, as the pre-prepare's path does: 2.5 x 26 ms + 5 ms = 70 ms.
#[test]
fn correct_leader_on_slow_disks_is_not_suspected() {
    let mut pump = slow_disk_cluster();
    run_load(&mut pump);
    pump.check_agreement();
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(
            node.app().log.len(),
            UPDATES as usize,
            "server {i} executed"
        );
        assert_eq!(node.view(), 0, "server {i} kept the leader");
        assert_eq!(suspicions(&pump, i), Vec::<u64>::new(), "server {i}");
        let acceptable = node.tat_acceptable_ns().expect("TAT_acceptable agreed");
        assert!(
            acceptable >= (DISK + 2 * LINK).as_nanos() as u64,
            "server {i}: round trips include the pinged server's disk: {acceptable} ns"
        );
    }
    for i in 1..4 {
        let measured = pump.nodes[i].suspect.max_tat_ns;
        assert!(
            measured >= DISK.as_nanos() as u64,
            "server {i} measured turnarounds that include the leader's disk: {measured} ns"
        );
    }
}

/// A leader that proposes only every 100 ms on the same disks: its turnaround (up to 100 + 24 + 2
/// ms) exceeds 2.5 x TAT_acceptable (26 ms) + 5 ms = 70 ms, so it is replaced. The view change runs
/// on the slow disks too (each report, vote and pong waits 24 ms), and the next leader, timed from
/// the VC-PROOF to its REPLAY and then on summary matrices, is kept (the old rule timed the whole
/// view change and replaced every next leader in turn).
#[test]
fn leader_delaying_beyond_the_bound_on_slow_disks_is_replaced_once() {
    let mut pump = slow_disk_cluster();
    pump.nodes[0].set_attack(Attack {
        pre_prepare_delay: Some(Duration::from_millis(100)),
        ..Attack::default()
    });
    run_load(&mut pump);
    pump.check_agreement();
    for i in 1..4 {
        assert_eq!(
            suspicions(&pump, i),
            vec![0],
            "server {i} suspected leader 0 only"
        );
        assert!(
            pump.outputs[i].contains(&PrimeOutput::NewLeaderProven { view: 1 }),
            "server {i} holds the NEW-LEADER proof"
        );
    }
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.view(), 1, "server {i}: one view change, no cascade");
        assert!(!node.installing_view(), "server {i} installed view 1");
        assert_eq!(
            node.app().log.len(),
            UPDATES as usize,
            "server {i} executed"
        );
    }
}
