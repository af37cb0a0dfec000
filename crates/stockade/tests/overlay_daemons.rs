//! Real overlay daemons: 24 `stockade overlay run` processes on loopback, with certified node ids,
//! form one Pastry overlay through joins at a single bootstrap node, then serve puts and gets
//! through different nodes, keep serving gets from replicas after three nodes are killed with
//! SIGKILL, and deliver a multicast to every subscriber. Every process is killed at the end, on
//! failure too.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use stockade::overlay_cmd::local::{write_local_overlay, LocalNode, LocalOverlayPlan};
use stockade_overlay::net::{ControlClient, ControlRequest};

use common::overlay_daemons::{request, status, Daemons, REQUEST_TIMEOUT};
use common::{assert_success, last_line_json, stockade};

const NODES: usize = 24;
const KEYS: usize = 50;
const REPLICAS: usize = 4;
/// Leaf-set size L of the daemons (the overlay's default).
const LEAF_SET_SIZE: usize = 16;
/// Bound of each wait for the overlay to reach a state (formation takes 3-6 s on a busy 2-core
/// machine).
const FORMATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Wait until `ready(status)` holds for every node in `nodes`; panics with the laggards' status.
fn wait_for(nodes: &[&LocalNode], what: &str, ready: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + FORMATION_TIMEOUT;
    loop {
        let lagging: Vec<String> = nodes
            .iter()
            .map(|n| (n.node, status(n)))
            .filter(|(_, s)| !s.as_ref().is_some_and(&ready))
            .map(|(node, s)| match s {
                Some(s) => format!(
                    "node {node}: {} leaf sets {}/{} routing table {} subscribed {}",
                    s["dht_phase"],
                    s["leaf_set"],
                    s["multicast_leaf_set"],
                    s["routing_table"],
                    s["subscribed_topics"]
                ),
                None => format!("node {node}: no status"),
            })
            .collect();
        if lagging.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {FORMATION_TIMEOUT:?} by {lagging:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn id_of(hex: &Value) -> Option<u128> {
    u128::from_str_radix(hex.as_str()?, 16).ok()
}

fn members(list: &Value) -> BTreeSet<u128> {
    list.as_array()
        .map(|ids| ids.iter().filter_map(id_of).collect())
        .unwrap_or_default()
}

/// The L/2 nodes nearest to `me` clockwise and the L/2 nearest counter-clockwise among `ids`.
fn true_leaf_set(me: u128, ids: &[u128]) -> BTreeSet<u128> {
    let mut others: Vec<u128> = ids.iter().copied().filter(|id| *id != me).collect();
    let half = LEAF_SET_SIZE / 2;
    others.sort_by_key(|id| id.wrapping_sub(me));
    let mut leaves: BTreeSet<u128> = others.iter().take(half).copied().collect();
    others.sort_by_key(|id| me.wrapping_sub(*id));
    leaves.extend(others.iter().take(half));
    leaves
}

fn value_of(i: usize) -> String {
    format!("value {i} of the overlay test")
}

/// Get `key` through `node`, retrying while the overlay repairs around killed nodes.
fn get_with_retries(node: &LocalNode, key: &str, attempts: usize) -> (Option<String>, usize) {
    for attempt in 1..=attempts {
        if let Ok(reply) = request(node, &ControlRequest::Get { key: key.into() }) {
            if reply["found"] == Value::Bool(true) {
                return (reply["value"].as_str().map(str::to_string), attempt);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    (None, attempts)
}

#[test]
fn twenty_four_daemons_form_an_overlay_and_serve_puts_gets_and_multicast() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = LocalOverlayPlan {
        nodes: NODES,
        base_port: None,
        certified: true,
        replicas: REPLICAS,
    };
    let nodes = write_local_overlay(dir.path(), &plan).expect("files");
    let mut daemons = Daemons::default();
    // The bootstrap first; everyone else joins through it (their configs name node 0).
    daemons.start(&nodes[0], dir.path());
    wait_for(&[&nodes[0]], "bootstrap running", |s| s["joined"] == true);
    for node in &nodes[1..] {
        daemons.start(node, dir.path());
    }
    let all: Vec<&LocalNode> = nodes.iter().collect();
    wait_for(&all, "every node joined", |s| s["joined"] == true);
    // Pastry's leaf-set invariant: each node's leaf set holds exactly the L/2 nearest nodes on
    // each side of it on the ring (paper 002, "Leaf sets"), in both overlays of every daemon.
    let ids: Vec<u128> = all
        .iter()
        .map(|n| status(n).and_then(|s| id_of(&s["id"])).expect("an id"))
        .collect();
    wait_for(&all, "every leaf set exact", |s| {
        let Some(me) = id_of(&s["id"]) else {
            return false;
        };
        let wanted = true_leaf_set(me, &ids);
        ["leaf_set_members", "multicast_leaf_set_members"]
            .iter()
            .all(|field| members(&s[*field]) == wanted)
    });
    let formed = started.elapsed();

    // Puts through different nodes, gets through others.
    for i in 0..KEYS {
        let reply = request(
            &nodes[i % NODES],
            &ControlRequest::Put {
                key: format!("key-{i}"),
                value: value_of(i),
            },
        )
        .expect("put");
        assert_eq!(reply["replicas"], REPLICAS, "put {i}: {reply}");
        assert_eq!(reply["complete"], true, "put {i}: {reply}");
    }
    for i in 0..KEYS {
        let reply = request(
            &nodes[(i + 7) % NODES],
            &ControlRequest::Get {
                key: format!("key-{i}"),
            },
        )
        .expect("get");
        assert_eq!(reply["found"], true, "get {i}: {reply}");
        assert_eq!(reply["value"], value_of(i), "get {i}");
    }
    let stored: u64 = nodes
        .iter()
        .map(|n| status(n).map_or(0, |s| s["stored_objects"].as_u64().unwrap_or(0)))
        .sum();
    assert_eq!(stored, (KEYS * REPLICAS) as u64, "k replicas of every key");

    // The command line, end to end: put through one node, get through another.
    let cli_put = stockade(&[
        "overlay",
        "put",
        "--node",
        &nodes[3].control.to_string(),
        "cli-key",
        "cli value",
    ]);
    assert_success(&cli_put);
    assert_eq!(last_line_json(&cli_put)["complete"], true);
    let cli_get = stockade(&[
        "overlay",
        "get",
        "--node",
        &nodes[20].control.to_string(),
        "cli-key",
    ]);
    assert_success(&cli_get);
    assert_eq!(last_line_json(&cli_get)["value"], "cli value");

    // Multicast: four subscribers, a publisher that is not one.
    let subscribers = [2usize, 9, 15, 22];
    let mut subscriptions: Vec<ControlClient> = subscribers
        .iter()
        .map(|&i| {
            let mut client =
                ControlClient::connect(nodes[i].control, REQUEST_TIMEOUT).expect("connect");
            let reply = client
                .request(&ControlRequest::Subscribe {
                    topic: "news".into(),
                })
                .expect("subscribe");
            assert_eq!(reply["topic"], "news");
            client
        })
        .collect();
    wait_for(
        &subscribers.iter().map(|&i| &nodes[i]).collect::<Vec<_>>(),
        "subscriptions registered",
        |s| s["subscribed_topics"] == 1,
    );
    // Let the SUBSCRIBE routes reach the topic's tree before publishing.
    std::thread::sleep(Duration::from_millis(500));
    let published = stockade(&[
        "overlay",
        "publish",
        "--node",
        &nodes[5].control.to_string(),
        "news",
        "extra, extra",
    ]);
    assert_success(&published);
    for (client, node) in subscriptions.iter_mut().zip(subscribers) {
        let line = client.next_line().expect("a multicast").expect("open");
        assert_eq!(line["topic"], "news", "node {node}");
        assert_eq!(line["message"], "extra, extra", "node {node}");
    }

    // Kill three nodes holding replicas; every key is still served, from the other replicas.
    let victims = [4usize, 11, 18];
    let held_by_victims: u64 = victims
        .iter()
        .map(|&i| status(&nodes[i]).map_or(0, |s| s["stored_objects"].as_u64().unwrap_or(0)))
        .sum();
    assert!(held_by_victims > 0, "the killed nodes held replicas");
    for &v in &victims {
        daemons.kill(v);
    }
    let killed_at = Instant::now();
    let survivors: Vec<&LocalNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !victims.contains(i))
        .map(|(_, n)| n)
        .collect();
    let mut retried = 0;
    for i in 0..KEYS {
        let via = survivors[(i * 5) % survivors.len()];
        let (value, attempts) = get_with_retries(via, &format!("key-{i}"), 8);
        assert_eq!(
            value,
            Some(value_of(i)),
            "key-{i} via node {} after the kills",
            via.node
        );
        retried += attempts - 1;
    }
    eprintln!(
        "overlay of {NODES} daemons formed in {formed:?}; after killing {victims:?} ({held_by_victims} replicas), \
         {KEYS} gets succeeded in {:?} with {retried} retries; whole test {:?}",
        killed_at.elapsed(),
        started.elapsed()
    );
}
