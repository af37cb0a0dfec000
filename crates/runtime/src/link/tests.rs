//! Datagram-level tests of the link layer: links are driven by hand, datagrams are carried (or
//! captured, replayed, cut, spoofed) by the test, so every rejection path is reached exactly.

use super::*;
use crate::records::FRAGMENT_HEADER_LEN;

/// One simulated node: its link and its (never bound) address.
struct TestNode {
    link: Link,
    addr: SocketAddr,
}

/// A datagram in flight: source, destination, bytes.
type Flight = (SocketAddr, SocketAddr, Vec<u8>);

/// A received message: receiving node, sender, bytes.
type Received = (NodeId, NodeId, Vec<u8>);

const PUMP_STEPS_MAX: usize = 100_000;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

fn seed(i: usize) -> [u8; 32] {
    [i as u8 + 1; 32]
}

/// `n` nodes that all know each other, with `config`.
fn nodes(n: usize, config: &LinkConfig) -> Vec<TestNode> {
    let keys: Vec<StaticKeypair> = (0..n)
        .map(|_| StaticKeypair::generate().expect("keygen"))
        .collect();
    (0..n)
        .map(|i| {
            let peers = (0..n)
                .filter(|&j| j != i)
                .map(|j| Peer {
                    id: NodeId(j as u32),
                    addr: addr(j),
                    public_key: keys[j].public(),
                })
                .collect();
            let link = Link::new(
                NodeId(i as u32),
                keys[i].clone(),
                peers,
                config.clone(),
                1_000,
                seed(i),
            )
            .expect("valid link");
            TestNode {
                link,
                addr: addr(i),
            }
        })
        .collect()
}

/// A link with a fresh key that knows node 1's public key (so its mac1 is right) but is not
/// configured at node 1.
fn stranger_to_node1(nodes: &[TestNode], config: LinkConfig) -> Link {
    let node1 = Peer {
        id: NodeId(1),
        addr: addr(1),
        public_key: nodes[1].link.shared.keypair.public(),
    };
    let key = StaticKeypair::generate().expect("keygen");
    Link::new(NodeId(0), key, vec![node1], config, 1_000, seed(9)).expect("valid link")
}

fn outgoing(from: &TestNode, io: LinkIo) -> Vec<Flight> {
    io.datagrams
        .into_iter()
        .map(|(to, bytes)| (from.addr, to, bytes))
        .collect()
}

/// Send `frames` from node `from` to `to` and return the datagrams the flush produced.
fn send(
    nodes: &mut [TestNode],
    now: Time,
    from: usize,
    to: usize,
    frames: &[&[u8]],
) -> Vec<Flight> {
    for f in frames {
        nodes[from]
            .link
            .send(NodeId(to as u32), f.to_vec())
            .expect("accepted for sending");
    }
    let mut io = LinkIo::default();
    nodes[from].link.flush(now, &mut io);
    assert!(io.messages.is_empty());
    outgoing(&nodes[from], io)
}

/// Carry datagrams until none are left; returns every message received.
fn pump(nodes: &mut [TestNode], now: Time, mut flights: Vec<Flight>) -> Vec<Received> {
    let mut received = Vec::new();
    let mut steps = 0;
    while !flights.is_empty() {
        steps += 1;
        assert!(steps < PUMP_STEPS_MAX, "datagrams kept flowing");
        let (src, dst, bytes) = flights.remove(0);
        let Some(node) = nodes.iter_mut().find(|n| n.addr == dst) else {
            continue;
        };
        let mut io = LinkIo::default();
        node.link.on_datagram(now, src, &bytes, &mut io);
        for (from, m) in io.messages.drain(..) {
            received.push((node.link.me(), from, m));
        }
        flights.extend(outgoing(node, io));
    }
    received
}

/// Establish a session from 0 to 1 with one message; returns it as received.
fn connect(nodes: &mut [TestNode], now: Time) -> Vec<Received> {
    let flights = send(nodes, now, 0, 1, &[b"hello"]);
    pump(nodes, now, flights)
}

#[test]
fn handshake_then_messages_flow_both_ways() {
    let mut n = nodes(2, &LinkConfig::default());
    let got = connect(&mut n, Time::ZERO);
    assert_eq!(got, vec![(NodeId(1), NodeId(0), b"hello".to_vec())]);
    assert_eq!(n[0].link.stats().handshakes_completed, 1);
    assert_eq!(n[1].link.stats().handshakes_completed, 1);
    let flights = send(&mut n, Time::ZERO, 1, 0, &[b"back", b"again"]);
    assert_eq!(flights.len(), 1, "two small messages share one datagram");
    let got = pump(&mut n, Time::ZERO, flights);
    assert_eq!(
        got,
        vec![
            (NodeId(0), NodeId(1), b"back".to_vec()),
            (NodeId(0), NodeId(1), b"again".to_vec())
        ]
    );
    assert_eq!(
        n[1].link.stats().handshakes_initiated,
        0,
        "the responder reused the session"
    );
}

#[test]
fn a_handshake_from_an_unknown_key_is_dropped_and_counted() {
    let config = LinkConfig::default();
    let mut n = nodes(2, &config);
    let stranger = stranger_to_node1(&n, config);
    n[0] = TestNode {
        link: stranger,
        addr: addr(0),
    };
    let got = connect(&mut n, Time::ZERO);
    assert!(got.is_empty());
    assert_eq!(n[1].link.stats().dropped_unknown_key, 1);
    assert_eq!(n[1].link.stats().handshakes_completed, 0);
    assert_eq!(
        n[1].link.stats().datagrams_out,
        0,
        "no answer to an unknown key"
    );
}

#[test]
fn a_replayed_datagram_is_dropped_and_counted() {
    let mut n = nodes(2, &LinkConfig::default());
    connect(&mut n, Time::ZERO);
    let flights = send(&mut n, Time::ZERO, 0, 1, &[b"once"]);
    let replay = flights.clone();
    assert_eq!(pump(&mut n, Time::ZERO, flights).len(), 1);
    assert!(pump(&mut n, Time::ZERO, replay).is_empty());
    assert_eq!(n[1].link.stats().dropped_replay, 1);
}

#[test]
fn a_nonce_behind_the_replay_window_is_too_old() {
    let mut n = nodes(2, &LinkConfig::default());
    connect(&mut n, Time::ZERO);
    let early = send(&mut n, Time::ZERO, 0, 1, &[b"early"]);
    for _ in 0..crate::replay::REPLAY_WINDOW_NONCES {
        let f = send(&mut n, Time::ZERO, 0, 1, &[b"x"]);
        pump(&mut n, Time::ZERO, f);
    }
    assert!(pump(&mut n, Time::ZERO, early).is_empty());
    assert_eq!(n[1].link.stats().dropped_too_old, 1);
}

#[test]
fn truncated_datagrams_are_dropped_and_counted() {
    let mut n = nodes(2, &LinkConfig::default());
    connect(&mut n, Time::ZERO);
    let (src, dst, data) = send(&mut n, Time::ZERO, 0, 1, &[b"payload"]).remove(0);
    let cuts = vec![
        (src, dst, data[..DATA_OVERHEAD_LEN - 1].to_vec()),
        (src, dst, Vec::new()),
        (src, dst, data[..data.len() - 1].to_vec()),
    ];
    assert!(pump(&mut n, Time::ZERO, cuts).is_empty());
    let stats = n[1].link.stats();
    assert_eq!(
        stats.dropped_truncated, 2,
        "shorter than the header, and empty"
    );
    assert_eq!(
        stats.dropped_bad_auth, 1,
        "a cut ciphertext fails authentication"
    );
    // The intact datagram still gets through: nothing above moved the replay window.
    assert_eq!(pump(&mut n, Time::ZERO, vec![(src, dst, data)]).len(), 1);
}

#[test]
fn malformed_handshakes_and_unknown_types_are_counted() {
    let mut n = nodes(2, &LinkConfig::default());
    let (src, dst, init) = send(&mut n, Time::ZERO, 0, 1, &[b"x"]).remove(0);
    let mut bad_mac = init.clone();
    bad_mac[10] ^= 1;
    let flights = vec![
        (src, dst, init[..40].to_vec()),
        (src, dst, bad_mac),
        (src, dst, vec![99, 1, 2, 3]),
    ];
    assert!(pump(&mut n, Time::ZERO, flights).is_empty());
    let stats = n[1].link.stats();
    assert_eq!(
        (
            stats.dropped_truncated,
            stats.dropped_bad_mac,
            stats.dropped_malformed
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_replayed_initiation_is_refused() {
    let mut n = nodes(2, &LinkConfig::default());
    let flights = send(&mut n, Time::ZERO, 0, 1, &[b"x"]);
    let replay = flights.clone();
    pump(&mut n, Time::ZERO, flights);
    pump(&mut n, Time::ZERO, replay);
    assert_eq!(n[1].link.stats().handshakes_completed, 1);
    assert_eq!(n[1].link.stats().dropped_replay, 1);
}

#[test]
fn a_64_kib_message_round_trips_and_a_larger_one_is_refused() {
    let config = LinkConfig::default();
    let mut n = nodes(2, &config);
    connect(&mut n, Time::ZERO);
    let big: Vec<u8> = (0..config.message_bytes_max)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let flights = send(&mut n, Time::ZERO, 0, 1, &[&big]);
    assert!(
        flights.len() > 40,
        "fragmented over {} datagrams",
        flights.len()
    );
    assert!(flights
        .iter()
        .all(|(_, _, d)| d.len() <= config.datagram_payload_bytes_max));
    let got = pump(&mut n, Time::ZERO, flights);
    assert_eq!(got, vec![(NodeId(1), NodeId(0), big)]);
    let too_big = vec![0u8; config.message_bytes_max + 1];
    let refused = n[0].link.send(NodeId(1), too_big);
    assert_eq!(
        refused,
        Err(SendError::TooLarge {
            len: config.message_bytes_max + 1,
            max: config.message_bytes_max
        })
    );
    assert_eq!(n[0].link.stats().dropped_too_large, 1);
}

#[test]
fn reassembly_limits_are_reached_and_counted() {
    let config = LinkConfig {
        reassembly_partials_per_peer_max: 2,
        reassembly_timeout_ms: 500,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    connect(&mut n, Time::ZERO);
    let piece = config.datagram_payload_bytes_max - DATA_OVERHEAD_LEN - FRAGMENT_HEADER_LEN;
    let big = vec![1u8; 3 * piece];
    // Deliver only the first fragment of each of three messages: two partials fit, the third not.
    for _ in 0..3 {
        let first = send(&mut n, Time::ZERO, 0, 1, &[&big]).remove(0);
        assert!(pump(&mut n, Time::ZERO, vec![first]).is_empty());
    }
    assert_eq!(n[1].link.stats().dropped_reassembly_overflow, 1);
    let mut io = LinkIo::default();
    n[1].link.tick(Time::from_millis(600), &mut io);
    assert_eq!(n[1].link.stats().dropped_reassembly_timeout, 2);
    // With room again, a whole fragmented message gets through.
    let flights = send(&mut n, Time::from_millis(600), 0, 1, &[&big]);
    assert_eq!(pump(&mut n, Time::from_millis(600), flights).len(), 1);
}

#[test]
fn the_send_queue_is_bounded_while_a_handshake_is_pending() {
    let config = LinkConfig {
        pending_messages_per_peer_max: 3,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    for _ in 0..3 {
        n[0].link.send(NodeId(1), b"m".to_vec()).expect("room");
    }
    assert_eq!(
        n[0].link.send(NodeId(1), b"m".to_vec()),
        Err(SendError::QueueFull(NodeId(1)))
    );
    assert_eq!(n[0].link.stats().dropped_queue_full, 1);
    assert_eq!(
        n[0].link.send(NodeId(7), b"m".to_vec()),
        Err(SendError::NoSuchPeer(NodeId(7)))
    );
}

#[test]
fn an_unanswered_handshake_is_retried_then_abandoned() {
    let config = LinkConfig {
        handshake_attempts_max: 3,
        handshake_retry_ms: 100,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    let first = send(&mut n, Time::ZERO, 0, 1, &[b"lost", b"also lost"]);
    assert_eq!(first.len(), 1, "one initiation");
    let mut retries = 0;
    for step in 1..=5u64 {
        let mut io = LinkIo::default();
        n[0].link.tick(Time::from_millis(100 * step), &mut io);
        retries += io.datagrams.len();
    }
    assert_eq!(retries, 2, "attempts 2 and 3");
    assert_eq!(n[0].link.stats().handshakes_initiated, 3);
    assert_eq!(
        n[0].link.stats().dropped_handshake_timeout,
        2,
        "both queued messages dropped"
    );
}

#[test]
fn sessions_rekey_after_the_message_limit_without_losing_messages() {
    let config = LinkConfig {
        rekey_after_messages: 10,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    connect(&mut n, Time::ZERO);
    let mut delivered = 0;
    for i in 0..50u32 {
        let flights = send(
            &mut n,
            Time::from_millis(i as u64),
            0,
            1,
            &[&i.to_le_bytes()],
        );
        delivered += pump(&mut n, Time::from_millis(i as u64), flights).len();
    }
    assert_eq!(delivered, 50);
    let stats = n[0].link.stats();
    assert!(stats.rekeys >= 4, "rekeyed {} times", stats.rekeys);
    assert_eq!(stats.handshakes_completed, 1 + stats.rekeys);
}

#[test]
fn sessions_rekey_on_age_and_expired_sessions_are_refused() {
    let config = LinkConfig {
        rekey_after_ms: 1_000,
        reject_after_ms: 2_000,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    connect(&mut n, Time::ZERO);
    let old = send(&mut n, Time::ZERO, 0, 1, &[b"old"]);
    let mut io = LinkIo::default();
    n[0].link.tick(Time::from_millis(1_000), &mut io);
    assert_eq!(n[0].link.stats().rekeys, 1);
    let rekey = outgoing(&n[0], io);
    pump(&mut n, Time::from_millis(1_000), rekey);
    assert_eq!(n[0].link.stats().handshakes_completed, 2);
    // A datagram sealed on the first session, delivered after that session's reject age.
    assert!(pump(&mut n, Time::from_millis(2_500), old).is_empty());
    assert_eq!(n[1].link.stats().dropped_unknown_session, 1);
}

#[test]
fn under_a_handshake_flood_cookies_are_demanded_and_a_real_peer_still_connects() {
    let config = LinkConfig {
        handshake_inits_per_second_max: 5,
        ..LinkConfig::default()
    };
    let mut n = nodes(2, &config);
    // The attacker knows node 1's public key (mac1 is valid) but is not configured there; it
    // sends fresh initiations from many spoofed addresses.
    let attacker_config = LinkConfig {
        handshake_retry_ms: 1,
        handshake_attempts_max: u32::MAX,
        ..config
    };
    let mut attacker = stranger_to_node1(&n, attacker_config);
    attacker.send(NodeId(1), b"x".to_vec()).expect("queued");
    let mut flood = Vec::new();
    let mut io = LinkIo::default();
    attacker.flush(Time::ZERO, &mut io);
    for ms in 1..100u64 {
        attacker.tick(Time::from_micros(ms * 1_000), &mut io);
    }
    for (i, (_, datagram)) in io.datagrams.into_iter().enumerate() {
        let spoofed = SocketAddr::from(([192, 0, 2, (i % 250) as u8], 1000 + i as u16));
        flood.push((spoofed, addr(1), datagram));
    }
    assert_eq!(flood.len(), 100);
    let now = Time::from_millis(100);
    pump(&mut n, now, flood);
    let stats = *n[1].link.stats();
    assert_eq!(
        stats.cookie_replies_sent, 95,
        "everything over the rate got a cookie, not a DH"
    );
    assert_eq!(
        stats.dropped_unknown_key, 5,
        "only the first 5 were processed"
    );
    // The real peer's initiation arrives in the same second: it gets a cookie, echoes it, connects.
    let got = connect(&mut n, now);
    assert_eq!(got, vec![(NodeId(1), NodeId(0), b"hello".to_vec())]);
    assert_eq!(n[0].link.stats().cookies_received, 1);
    assert_eq!(n[1].link.stats().handshakes_with_cookie, 1);
    assert_eq!(n[1].link.stats().cookie_replies_sent, 96);
}
