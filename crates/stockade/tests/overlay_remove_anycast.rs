//! Real overlay daemons, the operations beyond put/get/multicast: 10 `stockade overlay run`
//! processes on loopback form one Pastry overlay; a key put through three nodes and removed
//! through another (`stockade overlay remove`) is found by no node afterwards, those that put it
//! included; an anycast (`stockade overlay anycast`) from a node that does not subscribe reaches
//! exactly one of two subscribers on different nodes, the one its answer names. Every process is
//! killed at the end, on failure too.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use stockade::overlay_cmd::local::{write_local_overlay, LocalNode, LocalOverlayPlan};
use stockade_overlay::net::{ControlClient, ControlRequest};

use common::overlay_daemons::{request, status, Daemons, REQUEST_TIMEOUT};
use common::{assert_success, last_line_json, stockade};

const NODES: usize = 10;
const REPLICAS: usize = 4;
/// Bound of each wait for the overlay to reach a state (formation takes a few seconds on a busy
/// 2-core machine).
const FORMATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts of a step that waits for the overlay to converge (a get after a removal, a
/// multicast to a tree still forming), one every [`RETRY_PAUSE`].
const ATTEMPTS_MAX: usize = 20;
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a subscriber waits for a marker multicast before the sender tries another.
const MARKER_WAIT: Duration = Duration::from_secs(2);

/// Wait until every node in `nodes` has joined and sees all the others in both leaf sets
/// (L = 16 > NODES), so every route is settled.
fn wait_until_formed(nodes: &[LocalNode]) {
    let deadline = Instant::now() + FORMATION_TIMEOUT;
    let others = nodes.len() - 1;
    let formed = |s: &Value| {
        s["joined"] == true && s["leaf_set"] == others && s["multicast_leaf_set"] == others
    };
    loop {
        let lagging: Vec<String> = nodes
            .iter()
            .filter_map(|n| match status(n) {
                Some(s) if formed(&s) => None,
                other => Some(format!("node {}: {other:?}", n.node)),
            })
            .collect();
        if lagging.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the overlay did not form within {FORMATION_TIMEOUT:?}: {lagging:?}"
        );
        std::thread::sleep(RETRY_PAUSE);
    }
}

fn cli(command: &str, node: &LocalNode, args: &[&str]) -> std::process::Output {
    let control = node.control.to_string();
    let mut all = vec!["overlay", command, "--node", control.as_str()];
    all.extend_from_slice(args);
    stockade(&all)
}

fn subscribe(node: &LocalNode, topic: &str) -> ControlClient {
    let mut client = ControlClient::connect(node.control, REQUEST_TIMEOUT).expect("connect");
    let reply = client
        .request(&ControlRequest::Subscribe {
            topic: topic.into(),
        })
        .expect("subscribe");
    assert_eq!(reply["topic"], topic);
    client
}

/// Read `subscriber`'s lines until the multicast `marker`; the lines before it, or `None` when
/// it did not come within [`MARKER_WAIT`].
fn lines_before(subscriber: &mut ControlClient, marker: &str) -> Option<Vec<Value>> {
    subscriber
        .set_read_timeout(Some(MARKER_WAIT))
        .expect("timeout");
    let mut lines = Vec::new();
    loop {
        let line = subscriber.next_line().ok()??;
        if line["message"] == marker && line.get("anycast").is_none() {
            return Some(lines);
        }
        lines.push(line);
    }
}

/// Publish markers through `publisher` until every subscriber receives one: then both are in
/// the topic's tree.
fn wait_until_in_tree(publisher: &LocalNode, topic: &str, subscribers: &mut [ControlClient]) {
    for attempt in 0..ATTEMPTS_MAX {
        let marker = format!("ready {attempt}");
        request(
            publisher,
            &ControlRequest::Publish {
                topic: topic.into(),
                message: marker.clone(),
            },
        )
        .expect("published");
        let reached = subscribers
            .iter_mut()
            .map(|s| lines_before(s, &marker).is_some())
            .filter(|got| *got)
            .count();
        if reached == subscribers.len() {
            return;
        }
    }
    panic!("the subscribers never all joined the tree of {topic:?}");
}

#[test]
fn a_removed_key_is_found_nowhere_and_an_anycast_reaches_exactly_one_subscriber() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = LocalOverlayPlan {
        nodes: NODES,
        base_port: None,
        certified: false,
        replicas: REPLICAS,
    };
    let nodes = write_local_overlay(dir.path(), &plan).expect("files");
    let mut daemons = Daemons::default();
    // The bootstrap first; everyone else joins through it (their configs name node 0).
    daemons.start(&nodes[0], dir.path());
    wait_until_formed(&nodes[..1]);
    for node in &nodes[1..] {
        daemons.start(node, dir.path());
    }
    wait_until_formed(&nodes);
    let formed = started.elapsed();

    // Remove: three versions put through nodes 1, 2 and 5 (a node that is not one of the key's
    // replicas would answer from a cache, had it kept the copy its own put passed), removed
    // through node 4 with the command line; then no node finds it.
    let mut put = Value::Null;
    for (writer, version) in [(1, "v1"), (2, "v2"), (5, "v3")] {
        put = request(
            &nodes[writer],
            &ControlRequest::Put {
                key: "doomed".into(),
                value: version.into(),
            },
        )
        .expect("put");
        assert_eq!(put["complete"], true, "{put}");
    }
    let before = request(
        &nodes[7],
        &ControlRequest::Get {
            key: "doomed".into(),
        },
    )
    .expect("get");
    assert_eq!(before["value"], "v3", "found before the removal");
    let removed = cli("remove", &nodes[4], &["doomed"]);
    assert_success(&removed);
    let removed = last_line_json(&removed);
    assert_eq!(removed["removed"], REPLICAS, "{removed}");
    assert_eq!(removed["id"], put["id"]);
    for (reader, node) in nodes.iter().enumerate() {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let got = request(
                node,
                &ControlRequest::Get {
                    key: "doomed".into(),
                },
            )
            .expect("get");
            if got["found"] == false {
                break;
            }
            assert!(
                attempts < ATTEMPTS_MAX,
                "node {reader} still finds the removed key: {got}"
            );
            std::thread::sleep(RETRY_PAUSE);
        }
    }
    let again = cli("remove", &nodes[2], &["doomed"]);
    assert!(!again.status.success(), "nothing left to remove");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("nothing to remove"), "{stderr}");

    // Anycast: subscribers on nodes 3 and 8, sent through node 6, which does not subscribe.
    let subscriber_nodes = [3usize, 8];
    let mut subscribers: Vec<ControlClient> = subscriber_nodes
        .iter()
        .map(|&i| subscribe(&nodes[i], "workers"))
        .collect();
    wait_until_in_tree(&nodes[6], "workers", &mut subscribers);
    let sent = cli("anycast", &nodes[6], &["workers", "one job"]);
    assert_success(&sent);
    let answer = last_line_json(&sent);
    assert_eq!(answer["accepted"], true, "{answer}");
    // A multicast after the anycast marks the end of what each subscriber got: the anycast was
    // handed to its subscriber before its answer left that node.
    request(
        &nodes[6],
        &ControlRequest::Publish {
            topic: "workers".into(),
            message: "after".into(),
        },
    )
    .expect("published");
    let mut took = Vec::new();
    for (subscriber, &node) in subscribers.iter_mut().zip(&subscriber_nodes) {
        let lines = lines_before(subscriber, "after").expect("the marker multicast");
        let anycasts: Vec<&Value> = lines.iter().filter(|l| l["anycast"] == true).collect();
        match anycasts.as_slice() {
            [] => {}
            [line] => {
                assert_eq!(line["message"], "one job");
                assert_eq!(line["topic"], "workers");
                took.push(node);
            }
            more => panic!("node {node} got the anycast {} times", more.len()),
        }
    }
    assert_eq!(took.len(), 1, "exactly one subscriber took it: {took:?}");
    let taker = status(&nodes[took[0]]).expect("status");
    assert_eq!(answer["by"], taker["id"], "the answer names the taker");

    let nobody = cli("anycast", &nodes[6], &["no such topic", "hello?"]);
    assert!(!nobody.status.success(), "exit status 1: nobody took it");
    assert_eq!(last_line_json(&nobody)["accepted"], false);
    eprintln!(
        "overlay of {NODES} daemons formed in {formed:?}; whole test {:?}",
        started.elapsed()
    );
}
