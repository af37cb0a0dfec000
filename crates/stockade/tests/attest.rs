//! The LA-groups commands as scripts use them: the `la-*` scenarios, `bench transcript`, and
//! `groups demo`'s view, DOT and SVG.

use std::process::{Command, Output};

fn stockade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn last_line_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_la_scenario_is_listed() {
    let out = stockade(&["sim", "--list"]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "la-nontransitive",
        "la-trust",
        "la-ring",
        "la-mincut",
        "la-convergence",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} listed in:\n{text}"
        );
    }
}

#[test]
fn la_trust_over_twenty_seeds_rejects_the_bad_origin_every_time() {
    let out = stockade(&["sim", "la-trust", "--seeds", "20"]);
    assert_success(&out);
    let aggregate = last_line_json(&out);
    assert_eq!(aggregate["scenario"], "la-trust");
    assert_eq!(
        (aggregate["seeds"].as_u64(), aggregate["passed"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(aggregate["figures"]["accepted_bad_origin"]["max"], 0.0);
    assert!(aggregate["figures"]["accepted_good_origin"]["min"].as_f64() > Some(0.0));
}

#[test]
fn bench_transcript_reports_both_transcripts_and_the_compact_one_is_smaller() {
    let out = stockade(&["bench", "transcript", "--members", "16"]);
    assert_success(&out);
    let figures = last_line_json(&out);
    assert_eq!(figures["members"], 16);
    let compact = figures["compact_bytes"].as_u64().expect("compact_bytes");
    let naive = figures["naive_bytes"].as_u64().expect("naive_bytes");
    assert!(compact > 0 && compact < naive, "{figures}");
    for key in ["compact_verify_us", "naive_verify_us"] {
        assert!(figures[key].as_f64().is_some_and(|us| us > 0.0), "{key}");
    }
    let too_few = stockade(&["bench", "transcript", "--members", "1"]);
    assert_eq!(
        too_few.status.code(),
        Some(2),
        "one member is a usage error"
    );
}
