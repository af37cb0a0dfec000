//! Reports, CSV output, bounded output logs and the scenario registry.

mod common;

use common::*;
use stockade_core::{NodeId, Time};
use stockade_sim::{LinkSpec, LinkTraffic, OutputSink, Registry, RunOptions, SimConfig, Topology};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stockade-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn report_headline_and_csv_files() {
    let mut config = SimConfig::new("probe", 3);
    config.crypto_mode = "stand-in".to_string();
    let mut world = probe_world_with(
        config,
        Topology::full_mesh(3, LinkSpec::wan(ms(5), 8_000_000)),
    );
    world.request(NodeId(0), blobs(NodeId(1), 0, 10, 88));
    world.request(NodeId(2), blobs(NodeId(1), 0, 5, 88));
    world.run_until(Time::from_secs(1)).expect("runs");
    world.metrics_mut().record("latency_ns", 5_000_000);
    let report = world.report(serde_json::json!({"throughput": 15}));
    let h = &report.headline;
    assert_eq!(h["scenario"], "probe");
    assert_eq!(h["seed"], 3);
    assert_eq!(h["crypto_mode"], "stand-in");
    assert_eq!(h["cost_source"], "free (CPU not modelled)");
    assert_eq!(h["messages_delivered"], 15);
    assert_eq!(h["bytes_sent"], 1_500);
    assert_eq!(h["throughput"], 15, "scenario fields merged in");
    assert_eq!(h["digest"], format!("{:016x}", world.digest()));
    assert!(!report.headline_line().contains('\n'));

    let dir = temp_dir("report");
    report.write_csv(&dir).expect("writes");
    let links = std::fs::read_to_string(dir.join("links.csv")).expect("links.csv");
    assert_eq!(links, "from,to,messages,bytes\n0,1,10,1000\n2,1,5,500\n");
    let counters = std::fs::read_to_string(dir.join("counters.csv")).expect("counters.csv");
    assert!(counters.contains("messages_delivered,15\n"));
    let histograms = std::fs::read_to_string(dir.join("histograms.csv")).expect("histograms.csv");
    assert!(histograms.contains("latency_ns,1,5000000"));
    let run = std::fs::read_to_string(dir.join("run.csv")).expect("run.csv");
    assert_eq!(
        run,
        "crypto_mode,cost_source\nstand-in,free (CPU not modelled)\n"
    );
    let headline = std::fs::read_to_string(dir.join("headline.json")).expect("headline.json");
    assert_eq!(headline.trim(), report.headline_line());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn big_link_tables_are_aggregated_per_sender() {
    let mut config = SimConfig::new("probe", 3);
    config.link_csv_rows_max = 1;
    let mut world = probe_world_with(config, Topology::full_mesh(3, LinkSpec::ideal(ms(5))));
    world.request(NodeId(0), blobs(NodeId(1), 0, 2, 0));
    world.request(NodeId(0), blobs(NodeId(2), 0, 3, 0));
    world.run_until(Time::from_secs(1)).expect("runs");
    let report = world.report(serde_json::Value::Null);
    match &report.links {
        LinkTraffic::PerSender(rows) => assert_eq!(rows, &vec![(NodeId(0), 5, 60)]),
        other => panic!("expected per-sender rows, got {other:?}"),
    }
    let dir = temp_dir("senders");
    report.write_csv(&dir).expect("writes");
    assert_eq!(
        std::fs::read_to_string(dir.join("senders.csv")).expect("senders.csv"),
        "node,messages,bytes\n0,5,60\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_output_log_is_bounded_and_handlers_see_every_output() {
    let mut config = SimConfig::new("probe", 1);
    config.output_log_len_max = 4;
    let mut world = probe_world_with(config, Topology::full_mesh(2, LinkSpec::ideal(ms(1))));
    world.request(NodeId(0), blobs(NodeId(1), 0, 10, 0));
    world.run_until(at_ms(10)).expect("runs");
    // Two start outputs, then ten deliveries: four kept.
    assert_eq!(world.take_outputs().len(), 4);
    assert_eq!(world.metrics().sim.outputs_not_logged, 8);
    assert_eq!(world.metrics().sim.outputs, 12);

    world.set_output_sink(OutputSink::Handler(Box::new(|_, node, out, metrics| {
        if matches!(out, Out::Got { .. }) {
            metrics.add(
                if node == NodeId(1) {
                    "got_n1"
                } else {
                    "got_other"
                },
                1,
            );
        }
    })));
    world.request(NodeId(0), blobs(NodeId(1), 0, 7, 0));
    world.run_until(at_ms(20)).expect("runs");
    assert_eq!(world.metrics().counter("got_n1"), 7);
    assert_eq!(world.metrics().counter("got_other"), 0);
    assert!(world.take_outputs().is_empty());
}

#[test]
fn registry_lists_and_runs_scenarios() {
    let registry = Registry::with_builtin();
    let names: Vec<&str> = registry.list().map(|(name, _)| name).collect();
    assert_eq!(names, ["scale"]);
    let scale = registry.get("scale").expect("registered");
    assert!(scale.description().contains("--nodes"));
    assert!(registry.get("nope").is_none());

    let progress_calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = progress_calls.clone();
    let mut options = RunOptions::with_seed(2)
        .arg("nodes", 200)
        .arg("links", 4)
        .arg("seconds", 3);
    options.progress = Some(std::sync::Arc::new(move |_| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    let dir = temp_dir("scale");
    options.out_dir = Some(dir.clone());
    let outcome = scale.run(&options).expect("runs");
    assert!(outcome.passed);
    assert_eq!(
        outcome.repro,
        "stockade sim scale --seed 2 --nodes 200 --links 4 --seconds 3 --hops 4"
    );
    assert_eq!(
        progress_calls.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "once per simulated second"
    );
    assert!(dir.join("counters.csv").exists() && dir.join("links.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tracer_sees_inputs_effects_and_drops() {
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = lines.clone();
    let mut world = probe_world(1, 2, LinkSpec::ideal(ms(1)).with_loss(1.0));
    world.set_tracer(move |at, node, what| sink.borrow_mut().push(format!("{at} {node} {what}")));
    world.request(NodeId(0), blobs(NodeId(1), 4, 1, 0));
    world.run_until(at_ms(5)).expect("runs");
    let lines = lines.borrow();
    let expected = [
        "0.000000s n0 input start",
        "0.000000s n0 input request Send { to: n1, first: 4, count: 1, pad: 0 }",
        "0.000000s n0 effect Send { to: n1, message: Blob { seq: 4, pad: 0 }, after: None }",
        "0.000000s n0 dropped packet to n1: Loss",
    ];
    for line in expected {
        assert!(
            lines.iter().any(|l| l == line),
            "missing {line:?} in {lines:#?}"
        );
    }
}
