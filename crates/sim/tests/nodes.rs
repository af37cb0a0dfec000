//! Node behaviour end to end: crash and restart from persisted state, held sends, pause, timers,
//! the virtual CPU and clock drift.

mod common;

use std::time::Duration;

use common::*;
use stockade_core::{CostKind, CostTable, CpuWork, NodeId, PersistToken, Time};
use stockade_sim::{ClockSpec, Fault, LinkSpec, NodeStatus, SimConfig, Topology};

fn outputs_of(outputs: &[stockade_sim::Delivery<Out>], node: NodeId) -> Vec<(Time, Out)> {
    outputs
        .iter()
        .filter(|d| d.node == node)
        .map(|d| (d.at, d.output.clone()))
        .collect()
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn crash_loses_unpersisted_state_and_restart_sees_exactly_the_durable_batches() {
    let mut world = persist_world(2, 10, 1);
    world.request(NodeId(0), persist("a", "1"));
    world.request(NodeId(1), blobs(NodeId(0), 0, 3, 0));
    world.run_until(at_ms(20)).expect("runs");
    assert_eq!(world.protocol(NodeId(0)).map(|p| p.received), Some(3));
    // Second batch in flight (durable at 30 ms) when the node crashes at 25 ms.
    world.request(NodeId(0), persist("b", "2"));
    world.run_until(at_ms(25)).expect("runs");
    world.crash(NodeId(0)).expect("node exists");
    assert_eq!(world.status(NodeId(0)), Some(NodeStatus::Crashed));
    assert!(world.protocol(NodeId(0)).is_none());
    world.run_until(at_ms(100)).expect("runs");
    world.take_outputs();
    world.restart(NodeId(0)).expect("restarts");
    let outputs = outputs_of(&world.take_outputs(), NodeId(0));
    assert_eq!(
        outputs,
        vec![(
            at_ms(100),
            Out::Started {
                recovered: vec![kv("a", "1")]
            }
        )]
    );
    assert_eq!(
        world.protocol(NodeId(0)).map(|p| p.received),
        Some(0),
        "volatile state is gone"
    );
    assert_eq!(world.metrics().sim.persists_lost, 1);
    assert_eq!(world.metrics().sim.persists_completed, 1);
    assert_eq!(
        (world.metrics().sim.crashes, world.metrics().sim.restarts),
        (1, 1)
    );
}

#[test]
fn messages_to_a_crashed_node_are_dropped_and_tokens_stay_unique_across_restarts() {
    let mut world = probe_world(1, 2, LinkSpec::ideal(ms(1)));
    world.request(NodeId(0), persist("a", "1"));
    world.run_until(at_ms(5)).expect("runs");
    world.crash(NodeId(0)).expect("exists");
    world.request(NodeId(1), blobs(NodeId(0), 0, 2, 0));
    world.request(NodeId(0), Cmd::Mark(1));
    world.run_until(at_ms(10)).expect("runs");
    assert_eq!(world.metrics().sim.dropped_receiver_down, 2);
    assert_eq!(world.metrics().sim.requests_dropped, 1);
    world.restart(NodeId(0)).expect("restarts");
    world.request(NodeId(0), persist("b", "2"));
    world.run_until(at_ms(20)).expect("runs");
    let persisted: Vec<Out> = outputs_of(&world.take_outputs(), NodeId(0))
        .into_iter()
        .map(|(_, o)| o)
        .filter(|o| matches!(o, Out::Persisted(_)))
        .collect();
    assert_eq!(
        persisted,
        vec![
            Out::Persisted(PersistToken(0)),
            Out::Persisted(PersistToken(1))
        ]
    );
}

#[test]
fn held_sends_leave_only_when_their_persist_is_durable() {
    let mut world = persist_world(2, 20, 10);
    world.request(NodeId(0), persist_then_send(NodeId(1), 7));
    world.run_until(at_ms(29)).expect("runs");
    assert!(
        received_by(&world.take_outputs(), NodeId(1)).is_empty(),
        "not before durable + latency"
    );
    world.run_until(at_ms(100)).expect("runs");
    assert_eq!(
        received_by(&world.take_outputs(), NodeId(1)),
        vec![(at_ms(30), 7)]
    );
}

#[test]
fn held_sends_are_lost_with_a_crash_before_the_persist_completes() {
    let mut world = persist_world(2, 20, 10);
    world.request(NodeId(0), persist_then_send(NodeId(1), 7));
    world.schedule_fault(at_ms(5), Fault::Crash(NodeId(0)));
    world.schedule_fault(at_ms(6), Fault::Restart(NodeId(0)));
    world.run_until(at_ms(200)).expect("runs");
    let outputs = world.take_outputs();
    assert!(received_by(&outputs, NodeId(1)).is_empty());
    assert_eq!(world.metrics().sim.held_sends_lost, 1);
    assert!(
        outputs_of(&outputs, NodeId(0)).contains(&(at_ms(6), Out::Started { recovered: vec![] }))
    );
}

#[test]
fn a_paused_node_queues_inputs_and_its_timers_fire_late() {
    let mut world = probe_world(1, 2, LinkSpec::ideal(ms(10)));
    world.request(
        NodeId(1),
        Cmd::SetTimer {
            name: 1,
            after: ms(20),
        },
    );
    world.run_until(Time::ZERO).expect("runs");
    world.take_outputs();
    world.pause(NodeId(1)).expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 0, 1, 0));
    world.run_until(at_ms(100)).expect("runs");
    assert!(
        world.take_outputs().is_empty(),
        "nothing processed while paused"
    );
    assert_eq!(world.node(NodeId(1)).map(|n| n.inbox_len()), Some(2));
    world.resume(NodeId(1)).expect("exists");
    world.run_until(at_ms(200)).expect("runs");
    let outputs = outputs_of(&world.take_outputs(), NodeId(1));
    assert_eq!(
        outputs,
        vec![
            (
                at_ms(100),
                Out::Got {
                    from: NodeId(0),
                    seq: 0,
                    local: at_ms(100)
                }
            ),
            (
                at_ms(100),
                Out::Fired {
                    name: 1,
                    local: at_ms(100)
                }
            ),
        ],
        "in arrival order, both late"
    );
}

#[test]
fn a_paused_node_inbox_is_bounded() {
    let mut config = SimConfig::new("probe", 1);
    config.inbox_len_max = 5;
    let mut world = probe_world_with(config, Topology::full_mesh(2, LinkSpec::ideal(ms(1))));
    world.pause(NodeId(1)).expect("exists");
    world.request(NodeId(0), blobs(NodeId(1), 0, 12, 0));
    world.run_until(at_ms(10)).expect("runs");
    world.resume(NodeId(1)).expect("exists");
    world.run_until(at_ms(20)).expect("runs");
    let got = received_by(&world.take_outputs(), NodeId(1));
    // Start was queued too and takes one of the five places.
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(world.metrics().sim.dropped_inbox_full, 8);
}

#[test]
fn set_timer_replaces_and_cancel_disarms() {
    let mut world = probe_world(1, 1, LinkSpec::ideal(ms(1)));
    world.request(
        NodeId(0),
        Cmd::SetTimer {
            name: 1,
            after: ms(10),
        },
    );
    world.request(
        NodeId(0),
        Cmd::SetTimer {
            name: 2,
            after: ms(10),
        },
    );
    world.request_at(
        at_ms(5),
        NodeId(0),
        Cmd::SetTimer {
            name: 1,
            after: ms(30),
        },
    );
    world.request_at(at_ms(5), NodeId(0), Cmd::CancelTimer { name: 2 });
    world.run_until(at_ms(100)).expect("runs");
    let fired: Vec<(Time, Out)> = outputs_of(&world.take_outputs(), NodeId(0))
        .into_iter()
        .filter(|(_, o)| matches!(o, Out::Fired { .. }))
        .collect();
    assert_eq!(
        fired,
        vec![(
            at_ms(35),
            Out::Fired {
                name: 1,
                local: at_ms(35)
            }
        )]
    );
    assert_eq!(world.metrics().sim.timers_fired, 1);
}

#[test]
fn cpu_charges_delay_effects_and_later_inputs() {
    let mut config = SimConfig::new("probe", 1);
    config.cost_table = CostTable::design_defaults();
    let mut world = probe_world_with(config, Topology::full_mesh(2, LinkSpec::ideal(ms(10))));
    // 100 Ed25519 verifications at 28 us: 2.8 ms of CPU.
    let work = CpuWork::ops(CostKind::Ed25519Verify, 100);
    world.request(
        NodeId(0),
        Cmd::Work {
            work,
            to: NodeId(1),
            seq: 9,
        },
    );
    world.request_at(at_ms(1), NodeId(0), Cmd::Mark(5));
    world.run_until(at_ms(100)).expect("runs");
    let outputs = world.take_outputs();
    let busy_until = Time::from_micros(2_800);
    let mine = outputs_of(&outputs, NodeId(0));
    assert!(
        mine.contains(&(busy_until, Out::Worked { seq: 9 })),
        "delivered when the work is done: {mine:?}"
    );
    assert!(
        mine.contains(&(busy_until, Out::Marker(5))),
        "the request waited for the CPU"
    );
    assert_eq!(
        received_by(&outputs, NodeId(1)),
        vec![(busy_until + ms(10), 9)]
    );
    assert_eq!(world.metrics().sim.cpu_busy_ns, 2_800_000);
    let headline = world.report(serde_json::Value::Null).headline;
    assert_eq!(
        headline["cost_source"],
        "DESIGN.md section 5 reference figures"
    );
    assert_eq!(headline["crypto_mode"], "none");
}

#[test]
fn drifting_clocks_shift_what_a_node_reads_and_when_its_timers_fire() {
    let mut world = probe_world(1, 2, LinkSpec::ideal(ms(10)));
    // 10% fast, 1 s ahead.
    world
        .set_clock(
            NodeId(1),
            ClockSpec {
                offset_ns: 1_000_000_000,
                rate_ppm: 100_000,
            },
        )
        .expect("exists");
    world.request(
        NodeId(1),
        Cmd::SetTimer {
            name: 3,
            after: Duration::from_millis(1_100),
        },
    );
    world.request(NodeId(0), blobs(NodeId(1), 0, 1, 0));
    world.run_until(Time::from_secs(5)).expect("runs");
    let outputs = outputs_of(&world.take_outputs(), NodeId(1));
    // Arrives at true 10 ms: local 1 s + 11 ms.
    assert!(outputs.contains(&(
        at_ms(10),
        Out::Got {
            from: NodeId(0),
            seq: 0,
            local: at_ms(1_011)
        }
    )));
    // Set at local 1 s for local 2.1 s: 1.1 local seconds are 1 true second.
    assert!(
        outputs.contains(&(
            at_ms(1_000),
            Out::Fired {
                name: 3,
                local: at_ms(2_100)
            }
        )),
        "{outputs:?}"
    );
}
