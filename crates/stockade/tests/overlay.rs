//! The Pastry overlay's scenarios (paper 002) through `stockade sim`: listed, and each one run
//! small, ending with its figures as one JSON line.

mod common;

use common::{last_line_json, stockade};

fn run(args: &[&str]) -> serde_json::Value {
    let out = stockade(args);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let headline = last_line_json(&out);
    assert_eq!(headline["scenario"], args[1]);
    headline
}

#[test]
fn every_pastry_scenario_is_listed() {
    let out = stockade(&["sim", "--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "pastry-hops",
        "pastry-failures",
        "pastry-malicious",
        "pastry-churn",
        "dht",
        "scribe",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} listed in:\n{text}"
        );
    }
}

#[test]
fn pastry_hops_route_in_about_log_base_16_of_n_hops() {
    let h = run(&["sim", "pastry-hops", "--nodes", "2000", "--lookups", "5000"]);
    assert_eq!(h["misdelivered"], 0);
    let mean = h["mean_hops"].as_f64().expect("mean_hops");
    assert!(mean > 1.0 && mean < 4.0, "log16(2000) ~ 2.7: {mean}");
}

#[test]
fn pastry_routes_around_failed_and_malicious_nodes() {
    let f = run(&[
        "sim",
        "pastry-failures",
        "--nodes",
        "1000",
        "--lookups",
        "2000",
    ]);
    assert!(f["failed_nodes"].as_u64() > Some(0));
    assert!(f["success_rate"].as_f64() > Some(0.99), "{f}");
    let m = run(&[
        "sim",
        "pastry-malicious",
        "--nodes",
        "1000",
        "--lookups",
        "2000",
    ]);
    assert!(m["malicious_nodes"].as_u64() > Some(0));
    assert!(
        m["secure_routing_success"].as_f64() > m["pns_plain_success"].as_f64(),
        "{m}"
    );
    for f in ["0.1", "0.2", "0.25"] {
        assert!(
            m["secure_success_by_fraction"][f].as_f64() > Some(0.9),
            "{m}"
        );
    }
}

#[test]
fn pastry_failures_event_model_reports_repair_cost() {
    let f = run(&[
        "sim",
        "pastry-failures",
        "--model",
        "events",
        "--nodes",
        "60",
        "--lookups",
        "100",
    ]);
    assert!(
        f["repair_messages_per_failed_node"].as_f64() > Some(0.0),
        "{f}"
    );
    assert_eq!(f["success_after_repair"].as_f64(), Some(1.0), "{f}");
}

#[test]
fn scribe_static_model_reports_rdp_and_link_stress_and_writes_csv_under_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let s = run(&[
        "sim", "scribe", "--model", "static", "--nodes", "3000", "--groups", "30", "--out", out_dir,
    ]);
    assert!(s["rdp_mean"].as_f64() >= Some(1.0), "{s}");
    assert!(s["link_stress_mean"].as_f64() >= Some(1.0), "{s}");
    for file in [
        "headline.json",
        "histograms.csv",
        "cdf_member_rdp_permille.svg",
    ] {
        assert!(dir.path().join(file).exists(), "{file} written");
    }
}

#[test]
fn pastry_churn_dht_and_scribe_run_and_write_their_headline_under_out() {
    let c = run(&["sim", "pastry-churn", "--nodes", "50", "--seconds", "10"]);
    assert!(c["crashes"].as_u64() > Some(0));
    assert!(c["correct_after_repair"].as_f64() > Some(0.9), "{c}");
    let d = run(&["sim", "dht", "--nodes", "50", "--objects", "20"]);
    assert_eq!(d["gets_found"], d["objects_with_a_surviving_replica"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let s = run(&[
        "sim", "scribe", "--nodes", "60", "--groups", "3", "--out", out_dir,
    ]);
    assert_eq!(s["delivered_after_repair"], s["expected_after_repair"]);
    let written = std::fs::read_to_string(dir.path().join("headline.json")).expect("headline.json");
    assert!(written.contains("\"scenario\":\"scribe\""));
}
