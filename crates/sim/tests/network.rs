//! Link behaviour end to end: bandwidth, site caps, drop-tail buffers, loss, duplication,
//! reordering, partitions, and seed reproducibility.

mod common;

use common::*;
use stockade_core::{NodeId, Time};
use stockade_sim::{LinkSpec, SimConfig, SiteCap, Topology};

const TEN_MBPS: u64 = 10_000_000;

#[test]
fn ten_megabytes_over_ten_mbps_take_eight_seconds() {
    let spec = LinkSpec::wan(ms(10), TEN_MBPS).with_buffer_bytes(u64::MAX);
    let mut world = probe_world(1, 2, spec);
    // 10,000 blobs of 12 + 988 = 1,000 bytes: 10 MB, 80 Mbit.
    world.request(NodeId(0), blobs(NodeId(1), 0, 10_000, 988));
    world.run_until(Time::from_secs(20)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    assert_eq!(got.len(), 10_000, "all delivered");
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "FIFO: in order");
    let last = got[got.len() - 1].0.as_secs_f64() - 0.010; // minus propagation
    assert!(
        (last - 8.0).abs() <= 0.08,
        "last byte at {last} s, expected 8 s within 1%"
    );
    assert_eq!(world.metrics().sim.bytes_sent, 10_000_000);
}

#[test]
fn site_cap_is_shared_by_every_link_leaving_the_site() {
    // Site 0 = nodes 0..3 with a 10 Mbps uplink; node 3 is site 1. Each link is 10 Mbps too.
    let spec = LinkSpec::wan(ms(5), TEN_MBPS).with_buffer_bytes(u64::MAX);
    let mut topology = Topology::full_mesh(4, spec);
    topology.assign_site(NodeId(3), 1).expect("node exists");
    topology.set_site_cap(
        0,
        SiteCap {
            bandwidth_bps: TEN_MBPS,
            buffer_bytes: u64::MAX,
        },
    );
    let mut world = probe_world_with(SimConfig::new("probe", 1), topology);
    for sender in 0..3 {
        // 1 MB each towards the other site.
        world.request(NodeId(sender), blobs(NodeId(3), 0, 1_000, 988));
    }
    // And 1 MB inside the site, which the cap does not touch.
    world.request(NodeId(0), blobs(NodeId(1), 0, 1_000, 988));
    world.run_until(Time::from_secs(10)).expect("runs");
    let outputs = world.take_outputs();
    let cross = received_by(&outputs, NodeId(3));
    assert_eq!(cross.len(), 3_000);
    // 3 MB through one 10 Mbps uplink: 2.4 s; the three links alone would take 0.8 s.
    let cross_done = cross[cross.len() - 1].0.as_secs_f64();
    assert!(
        (cross_done - 2.4).abs() < 0.03,
        "cross-site traffic done at {cross_done} s, expected 2.4 s"
    );
    let aggregate_bps = 3_000_000.0 * 8.0 / (cross_done - 0.005);
    assert!(
        aggregate_bps <= TEN_MBPS as f64 * 1.001,
        "aggregate {aggregate_bps} bps exceeds the cap"
    );
    let local = received_by(&outputs, NodeId(1));
    let local_done = local[local.len() - 1].0.as_secs_f64();
    assert!(
        (local_done - 0.805).abs() < 0.01,
        "intra-site traffic is not capped: {local_done} s"
    );
    let sites: Vec<_> = world.network().site_stats().collect();
    assert_eq!(sites.len(), 1);
    assert_eq!(
        (sites[0].site, sites[0].messages, sites[0].bytes),
        (0, 3_000, 3_000_000)
    );
}

#[test]
fn drop_tail_buffer_overflows_drop_and_count() {
    // 8 Mbps (one byte per microsecond), room for 10,000 queued bytes.
    let spec = LinkSpec::wan(ms(1), 8_000_000).with_buffer_bytes(10_000);
    let mut world = probe_world(1, 2, spec);
    world.request(NodeId(0), blobs(NodeId(1), 0, 100, 988));
    world.run_until(Time::from_secs(1)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>(),
        "the first 10 fit"
    );
    assert_eq!(world.metrics().sim.dropped_link_buffer, 90);
    // Once drained, the buffer accepts again.
    world.request(NodeId(0), blobs(NodeId(1), 100, 5, 988));
    world.run_until(Time::from_secs(2)).expect("runs");
    assert_eq!(received_by(&world.take_outputs(), NodeId(1)).len(), 5);
    assert_eq!(world.metrics().sim.dropped_link_buffer, 90);
}

#[test]
fn loss_duplication_and_reordering_match_their_rates() {
    let spec = LinkSpec::ideal(ms(10))
        .with_loss(0.1)
        .with_duplicate(0.05)
        .with_jitter(ms(5));
    let mut world = probe_world(42, 2, spec);
    let sent = 20_000u64;
    world.request(NodeId(0), blobs(NodeId(1), 0, sent, 0));
    world.run_until(Time::from_secs(1)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    let sim = world.metrics().sim;
    let loss = sim.dropped_loss as f64 / sent as f64;
    let dup = sim.duplicated as f64 / (sent - sim.dropped_loss) as f64;
    assert!((0.09..0.11).contains(&loss), "loss rate {loss}");
    assert!((0.04..0.06).contains(&dup), "duplication rate {dup}");
    assert_eq!(got.len() as u64, sent - sim.dropped_loss + sim.duplicated);
    let mut highest = 0;
    let mut inversions = 0;
    for &(at, seq) in &got {
        assert!(
            at >= at_ms(10) && at <= at_ms(15),
            "latency plus at most the jitter: {at}"
        );
        if seq < highest {
            inversions += 1;
        }
        highest = highest.max(seq);
    }
    assert!(
        inversions as f64 > 0.3 * got.len() as f64,
        "jitter reorders: {inversions} inversions"
    );

    // Without jitter the same link keeps order.
    let mut world = probe_world(42, 2, LinkSpec::ideal(ms(10)).with_loss(0.1));
    world.request(NodeId(0), blobs(NodeId(1), 0, 1_000, 0));
    world.run_until(Time::from_secs(1)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    assert!(
        got.windows(2).all(|w| w[0].1 < w[1].1),
        "no jitter, no reordering"
    );
}

#[test]
fn partitions_cut_traffic_and_heal_restores_it() {
    let mut world = probe_world(1, 3, LinkSpec::ideal(ms(50)));
    // In flight when the partition appears: cut at arrival.
    world.request(NodeId(0), blobs(NodeId(1), 0, 1, 0));
    world.run_until(at_ms(10)).expect("runs");
    world
        .partition(vec![vec![NodeId(0)], vec![NodeId(1), NodeId(2)]])
        .expect("valid");
    world.request(NodeId(0), blobs(NodeId(1), 1, 1, 0));
    world.request(NodeId(1), blobs(NodeId(2), 2, 1, 0));
    world.run_until(at_ms(200)).expect("runs");
    let outputs = world.take_outputs();
    assert!(
        received_by(&outputs, NodeId(1)).is_empty(),
        "nothing crosses the partition"
    );
    assert_eq!(
        received_by(&outputs, NodeId(2)).len(),
        1,
        "same side still talks"
    );
    assert_eq!(
        world.metrics().sim.dropped_partitioned,
        2,
        "one cut in flight, one at send"
    );
    world.heal().expect("heals");
    world.request(NodeId(0), blobs(NodeId(1), 3, 1, 0));
    world.run_until(at_ms(400)).expect("runs");
    assert_eq!(
        received_by(&world.take_outputs(), NodeId(1))
            .iter()
            .map(|g| g.1)
            .collect::<Vec<_>>(),
        [3]
    );
}

#[test]
fn clogged_link_holds_packets_until_it_flows() {
    let mut world = probe_world(1, 2, LinkSpec::ideal(ms(10)));
    world
        .apply_fault(stockade_sim::Fault::Clog {
            from: NodeId(0),
            to: NodeId(1),
            until: at_ms(500),
        })
        .expect("link");
    world.request(NodeId(0), blobs(NodeId(1), 0, 3, 0));
    world.run_until(Time::from_secs(1)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    assert_eq!(got, vec![(at_ms(510), 0), (at_ms(510), 1), (at_ms(510), 2)]);
}

/// A busy lossy, jittery run with timers and CPU work: everything that draws randomness.
fn digest_of(seed: u64) -> (u64, usize) {
    let spec = LinkSpec::wan(ms(20), TEN_MBPS)
        .with_loss(0.05)
        .with_duplicate(0.02)
        .with_jitter(ms(3));
    let mut world = probe_world(seed, 5, spec);
    for n in 0..5u32 {
        world.request(
            NodeId(n),
            Cmd::PingEvery {
                to: NodeId((n + 1) % 5),
                period: ms(7 + n as u64),
            },
        );
        world.request(
            NodeId(n),
            Cmd::Send {
                to: NodeId((n + 2) % 5),
                first: 0,
                count: 200,
                pad: 100,
            },
        );
    }
    world.run_until(Time::from_secs(3)).expect("runs");
    (world.digest(), world.take_outputs().len())
}

#[test]
fn same_seed_same_digest_different_seed_different_digest() {
    let (a, outputs_a) = digest_of(3);
    let (b, outputs_b) = digest_of(3);
    let (c, _) = digest_of(4);
    assert_eq!(a, b, "bit-for-bit reproducible");
    assert_eq!(outputs_a, outputs_b);
    assert!(
        outputs_a > 1_000,
        "the run did something: {outputs_a} outputs"
    );
    assert_ne!(a, c, "the seed matters");
}
