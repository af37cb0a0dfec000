//! Byzantine wrappers, global checkers, invariants and the liveness phase, end to end.

mod common;

use common::*;
use stockade_core::Wire;
use stockade_core::{NodeId, Time};
use stockade_sim::{
    Byzantine, Checker, Corruption, Fault, LinkSpec, Payload, SimConfig, SimError, Topology, World,
    WorldView,
};

#[test]
fn corrupted_payloads_fail_to_decode_are_counted_and_never_delivered() {
    let mut world = probe_world(1, 3, LinkSpec::ideal(ms(5)));
    world
        .set_adversary(
            NodeId(0),
            Byzantine::new().corrupt(1.0, Corruption::AppendGarbage),
        )
        .expect("exists");
    world
        .set_adversary(
            NodeId(2),
            Byzantine::new().corrupt(1.0, Corruption::Truncate),
        )
        .expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 0, 50, 10));
    world.request(NodeId(2), blobs(NodeId(1), 0, 50, 10));
    world.run_until(at_ms(100)).expect("runs");
    assert!(
        received_by(&world.take_outputs(), NodeId(1)).is_empty(),
        "nothing malformed reaches the protocol"
    );
    assert_eq!(world.metrics().sim.decode_failures, 100);
    assert_eq!(world.protocol(NodeId(1)).map(|p| p.received), Some(0));
    assert_eq!(
        world.report(serde_json::Value::Null).headline["decode_failures"],
        100
    );
}

#[test]
fn equivocation_sends_each_destination_its_own_message() {
    let mut world = probe_world(1, 3, LinkSpec::ideal(ms(5)));
    let liar = Byzantine::new().equivocate(|to, blob: &Blob, _rng| {
        Some(Blob {
            seq: blob.seq + 1000 * to.0 as u64,
            ..*blob
        })
    });
    world.set_adversary(NodeId(0), liar).expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 7, 1, 0));
    world.request(NodeId(0), blobs(NodeId(2), 7, 1, 0));
    world.run_until(at_ms(100)).expect("runs");
    let outputs = world.take_outputs();
    assert_eq!(received_by(&outputs, NodeId(1)), vec![(at_ms(5), 1007)]);
    assert_eq!(received_by(&outputs, NodeId(2)), vec![(at_ms(5), 2007)]);
}

#[test]
fn drop_delay_duplicate_and_scripted_attacks() {
    let mut world = probe_world(1, 4, LinkSpec::ideal(ms(5)));
    world
        .set_adversary(
            NodeId(0),
            Byzantine::new()
                .drop_to([NodeId(2)])
                .duplicate(1)
                .delay(ms(20)),
        )
        .expect("exists");
    // Scripted: honest before 50 ms, silent after.
    let script = Byzantine::new().scripted(|cx, effect, out| {
        if cx.now < at_ms(50) {
            out.push(stockade_sim::Action::Effect(effect));
        }
    });
    world.set_adversary(NodeId(3), script).expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 0, 1, 0));
    world.request(NodeId(0), blobs(NodeId(2), 0, 1, 0));
    world.request(NodeId(3), blobs(NodeId(1), 30, 1, 0));
    world.request_at(at_ms(60), NodeId(3), blobs(NodeId(1), 31, 1, 0));
    world.run_until(at_ms(200)).expect("runs");
    let outputs = world.take_outputs();
    assert_eq!(
        received_by(&outputs, NodeId(1)),
        vec![(at_ms(5), 30), (at_ms(25), 0), (at_ms(25), 0)]
    );
    assert!(received_by(&outputs, NodeId(2)).is_empty());
}

#[test]
fn deaf_nodes_ignore_chosen_senders() {
    let mut world = probe_world(1, 3, LinkSpec::ideal(ms(5)));
    world
        .set_adversary(NodeId(1), Byzantine::new().deaf_to([NodeId(0)]))
        .expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 0, 1, 0));
    world.request(NodeId(2), blobs(NodeId(1), 1, 1, 0));
    world.run_until(at_ms(100)).expect("runs");
    assert_eq!(
        received_by(&world.take_outputs(), NodeId(1)),
        vec![(at_ms(5), 1)]
    );
    assert_eq!(world.metrics().sim.dropped_by_adversary, 1);
}

/// Fails on the first delivery of blob 13: stands in for an agreement checker.
struct NoThirteen;
impl Checker<Probe> for NoThirteen {
    fn name(&self) -> &str {
        "no-thirteen"
    }
    fn on_output(&mut self, _at: Time, _node: NodeId, output: &Out) -> Result<(), String> {
        match output {
            Out::Got { seq: 13, from, .. } => Err(format!("blob 13 arrived from {from}")),
            _ => Ok(()),
        }
    }
}

/// Counts how often it looked at the world.
struct Watcher {
    looks: std::rc::Rc<std::cell::Cell<u64>>,
}
impl Checker<Probe> for Watcher {
    fn name(&self) -> &str {
        "watcher"
    }
    fn after_event(&mut self, world: &WorldView<'_, Probe>) -> Result<(), String> {
        self.looks.set(self.looks.get() + 1);
        match world.protocol(NodeId(1)) {
            Some(p) if p.received > 20 => Err("node 1 got more than 20".to_string()),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failing_checker_stops_the_run_and_prints_the_repro_command() {
    let mut world = probe_world(9, 2, LinkSpec::ideal(ms(5)));
    world.add_checker(NoThirteen);
    world.request(NodeId(0), blobs(NodeId(1), 10, 10, 0));
    let err = world
        .run_until(Time::from_secs(1))
        .expect_err("checker must fail");
    let text = err.to_string();
    assert!(
        text.contains("checker `no-thirteen` failed at 0.005000s: blob 13 arrived from n0"),
        "{text}"
    );
    assert!(
        text.contains("reproduce with: stockade sim probe --seed 9"),
        "{text}"
    );
    assert_eq!(err.repro(), Some("stockade sim probe --seed 9"));
    assert_eq!(
        world.protocol(NodeId(1)).map(|p| p.received),
        Some(4),
        "stopped at the failing event"
    );
}

#[test]
fn after_event_checkers_see_every_event() {
    let looks = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut world = probe_world(9, 2, LinkSpec::ideal(ms(5)));
    world.add_checker(Watcher {
        looks: looks.clone(),
    });
    world.request(NodeId(0), blobs(NodeId(1), 0, 30, 0));
    let err = world
        .run_until(Time::from_secs(1))
        .expect_err("watcher must fail");
    assert!(matches!(err, SimError::Checker { ref checker, .. } if checker == "watcher"));
    assert_eq!(
        looks.get(),
        world.events_processed(),
        "called after each event"
    );
}

#[test]
fn a_broken_invariant_names_the_node_and_the_repro_command() {
    let mut config = SimConfig::new("probe", 5);
    config.repro_command = "stockade sim probe-fuzz --seed {seed} --nodes 2".to_string();
    let topology = Topology::full_mesh(2, LinkSpec::ideal(ms(5)));
    let mut world = World::new(config, topology, |_, store| Probe {
        received_max: 2,
        ..Probe::new(store)
    })
    .expect("builds");
    world.request(NodeId(0), blobs(NodeId(1), 0, 3, 0));
    match world.run_until(Time::from_secs(1)) {
        Err(SimError::Invariant {
            node,
            at,
            violation,
            repro,
        }) => {
            assert_eq!((node, at), (NodeId(1), at_ms(5)));
            assert_eq!(violation.0, "received 3 > 2");
            assert_eq!(repro, "stockade sim probe-fuzz --seed 5 --nodes 2");
        }
        other => panic!("expected an invariant failure, got {other:?}"),
    }
    assert_eq!(
        world.protocol(NodeId(1)).map(|p| p.received),
        Some(3),
        "stopped at the third delivery"
    );
}

#[test]
fn liveness_phase_heals_everything_and_stops_scheduled_faults() {
    let mut world = probe_world(2, 3, LinkSpec::ideal(ms(5)));
    world.request(
        NodeId(0),
        Cmd::PingEvery {
            to: NodeId(1),
            period: ms(10),
        },
    );
    world.request(
        NodeId(2),
        Cmd::PingEvery {
            to: NodeId(1),
            period: ms(10),
        },
    );
    world.run_until(at_ms(50)).expect("runs");
    world.crash(NodeId(1)).expect("exists");
    world.pause(NodeId(2)).expect("exists");
    world.partition(vec![vec![NodeId(0)]]).expect("valid");
    world.schedule_fault(at_ms(400), Fault::Crash(NodeId(1)));
    world.run_until(at_ms(300)).expect("runs");
    let healed_at = world.now();
    let done = world
        .liveness(ms(500), "node 1 hears from 0 and 2", |w| {
            w.protocol(NodeId(1)).is_some_and(|p| p.received >= 40)
        })
        .expect("live after healing");
    assert!(
        done > at_ms(400),
        "ran past the scheduled crash, which was ignored: {done}"
    );
    assert!(done < healed_at + ms(300), "{done}");
    assert_eq!(world.metrics().sim.crashes, 1);
    assert_eq!(world.metrics().sim.restarts, 1);
}

#[test]
fn liveness_failure_reports_the_predicate_and_repro() {
    let mut world = probe_world(8, 2, LinkSpec::ideal(ms(5)));
    world
        .apply_fault(Fault::SetLink {
            from: NodeId(0),
            to: NodeId(1),
            spec: LinkSpec::ideal(ms(5)).with_loss(1.0),
        })
        .expect("link");
    world.request(
        NodeId(0),
        Cmd::PingEvery {
            to: NodeId(1),
            period: ms(10),
        },
    );
    let err = world
        .liveness(ms(200), "node 1 hears a ping", |w| {
            w.protocol(NodeId(1)).is_some_and(|p| p.received > 0)
        })
        .expect_err("a link with total loss stays lossy: overrides are not faults");
    let text = err.to_string();
    assert!(
        text.contains("liveness: `node 1 hears a ping` did not hold by 0.200000s"),
        "{text}"
    );
    assert!(
        text.contains("reproduce with: stockade sim probe --seed 8"),
        "{text}"
    );
    assert!(
        world.metrics().sim.dropped_loss >= 19,
        "the pings were really sent"
    );
}

#[test]
fn a_runaway_protocol_hits_the_event_queue_bound() {
    let mut config = SimConfig::new("probe", 4);
    config.pending_events_max = 1_000;
    let mut world = probe_world_with(config, Topology::full_mesh(2, LinkSpec::ideal(ms(5))));
    world.request(NodeId(0), blobs(NodeId(1), 0, 999, 0));
    world.run_until(at_ms(100)).expect("999 pending fit");
    world.request(NodeId(0), blobs(NodeId(1), 0, 1_001, 0));
    match world.run_until(at_ms(200)) {
        Err(SimError::EventQueueFull {
            pending,
            max,
            repro,
            ..
        }) => {
            assert_eq!((pending, max), (1_001, 1_000));
            assert_eq!(repro, "stockade sim probe --seed 4");
        }
        other => panic!("expected the queue bound, got {other:?}"),
    }
}

#[test]
fn injected_packets_travel_the_link_and_raw_ones_are_decoded_under_limits() {
    let mut world = probe_world(1, 3, LinkSpec::ideal(ms(5)));
    world.inject_at(
        at_ms(10),
        NodeId(2),
        NodeId(1),
        Payload::Message(Blob { seq: 77, pad: 0 }),
    );
    let forged = Blob { seq: 78, pad: 2 }.to_bytes();
    world.inject_at(
        at_ms(10),
        NodeId(2),
        NodeId(1),
        Payload::Raw(forged.into_boxed_slice()),
    );
    world.inject_at(
        at_ms(10),
        NodeId(2),
        NodeId(1),
        Payload::Raw(vec![1, 2, 3].into_boxed_slice()),
    );
    world.run_until(at_ms(100)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    assert_eq!(got, vec![(at_ms(15), 77), (at_ms(15), 78)]);
    assert_eq!(world.metrics().sim.decode_failures, 1);
}
