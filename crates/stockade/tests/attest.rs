//! The LA-groups commands as scripts use them: the `la-*` scenarios, `bench transcript`, and
//! `groups demo`'s view, DOT and SVG.

mod common;

use common::{assert_success, last_line_json, stockade};

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

#[test]
fn groups_demo_prints_the_view_and_writes_dot_and_svg() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("pictures");
    let out = stockade(&[
        "groups",
        "demo",
        "--members",
        "6",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("view of member 0 (6 members): 0 1 2 3 4 5"),
        "{text}"
    );
    let headline = last_line_json(&out);
    assert_eq!(headline["view_size"], 6);
    assert_eq!(headline["views_agree"], true);
    // Each member is linked to two neighbours on each side and attests exactly those.
    assert_eq!(headline["attestations"], 6 * 4);
    assert_eq!(headline["vertex_connectivity"], 4);
    let dot = std::fs::read_to_string(out_dir.join("graph.dot")).expect("graph.dot written");
    assert_eq!(dot.matches(" -> ").count(), 24);
    let svg = std::fs::read_to_string(out_dir.join("graph.svg")).expect("graph.svg written");
    assert_eq!(svg.matches("<circle").count(), 6);
}

#[test]
fn groups_demo_drops_a_crashed_member_from_every_view() {
    let out = stockade(&["groups", "demo", "--members", "6", "--crash", "2"]);
    assert_success(&out);
    let headline = last_line_json(&out);
    assert_eq!(headline["crashed"], 2);
    assert_eq!(headline["view_size"], 5);
    assert_eq!(headline["views_agree"], true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("digraph attestations {"),
        "DOT on stdout without --out"
    );
    assert!(
        !text.contains(" -> n2;"),
        "nobody attests the crashed member any more:\n{text}"
    );
    let bad = stockade(&["groups", "demo", "--members", "6", "--crash", "0"]);
    assert_eq!(bad.status.code(), Some(2), "member 0 is the observer");
}
