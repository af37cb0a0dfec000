//! A daemon started before its bootstrap node keeps trying to join, and joins once the bootstrap
//! is up (paper 002, "Pastry: Node addition"; a JOIN is sent again every `join_timeout_ms`). With
//! the timeout at 200 ms the node makes more attempts while it waits than Pastry's bounded
//! default (5) would allow, so a daemon that gave up would fail here.

mod common;

use std::time::{Duration, Instant};

use stockade::overlay_cmd::local::{write_local_overlay, LocalOverlayPlan};
use stockade_overlay::net::OverlayNodeConfig;

use common::overlay_daemons::{status, Daemons};

const JOIN_TIMEOUT_MS: u64 = 200;
/// How long the node waits with no bootstrap: several times 5 attempts of `JOIN_TIMEOUT_MS`.
const BOOTSTRAP_LATE_BY: Duration = Duration::from_secs(3);
const JOIN_WAIT_MAX: Duration = Duration::from_secs(30);

#[test]
fn a_node_started_before_its_bootstrap_joins_once_the_bootstrap_is_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = LocalOverlayPlan {
        nodes: 2,
        base_port: None,
        certified: false,
        replicas: 2,
    };
    let nodes = write_local_overlay(dir.path(), &plan).expect("files");
    let mut late_joiner = OverlayNodeConfig::load(&nodes[1].config).expect("node 1's config");
    late_joiner.overlay.join_timeout_ms = Some(JOIN_TIMEOUT_MS);
    std::fs::write(&nodes[1].config, late_joiner.to_toml().expect("toml")).expect("written");

    let mut daemons = Daemons::default();
    daemons.start(&nodes[1], dir.path());
    std::thread::sleep(BOOTSTRAP_LATE_BY);
    let waiting = status(&nodes[1]).expect("node 1 answers while it waits");
    assert_eq!(waiting["joined"], false, "{waiting}");
    assert_eq!(
        waiting["dht_phase"], "joining",
        "still trying after {BOOTSTRAP_LATE_BY:?} of {JOIN_TIMEOUT_MS} ms attempts: {waiting}"
    );

    daemons.start(&nodes[0], dir.path());
    let deadline = Instant::now() + JOIN_WAIT_MAX;
    loop {
        let now = status(&nodes[1]);
        if now
            .as_ref()
            .is_some_and(|s| s["joined"] == true && s["leaf_set"] == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 did not join within {JOIN_WAIT_MAX:?} of its bootstrap starting: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
