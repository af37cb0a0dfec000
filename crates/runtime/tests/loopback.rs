//! Real nodes on 127.0.0.1 exchanging messages through Noise/UDP: delivery, fragmentation,
//! flooding, timers, held sends, restart from redb, and the link's defences seen end to end.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use stockade_core::wire::encode_frame;
use stockade_core::{MemStore, NodeId, PersistToken, StoreOp, Time};
use stockade_runtime::{Link, LinkConfig, LinkIo, Peer, QueueLimits, StaticKeypair};
use support::*;
use tokio::net::UdpSocket;

/// Pings B tries before it must have reached a restarted node.
const PING_ATTEMPTS_MAX: u32 = 200;
/// How long each of those pings waits for its pong.
const PING_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

fn put(key: &str, value: &str) -> StoreOp {
    StoreOp::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_fragmentation_limit_and_timers_over_real_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(2, dir.path(), LinkConfig::default());
    let mut a = plan.start(0).await;
    let b = plan.start(1).await;
    ping(&a, NodeId(1), 1, 10).await;
    // 60,000 bytes of payload: the frame is fragmented over ~44 datagrams and reassembled.
    ping(&a, NodeId(1), 2, 60_000).await;
    // Over the 64 KiB message limit: refused at the sender.
    ping(&a, NodeId(1), 3, 70_000).await;
    ping(&a, NodeId(1), 4, 10).await;
    let (skipped, last) =
        output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { seq: 4, .. })).await;
    assert_eq!(
        last,
        EchoOutput::Pong {
            from: NodeId(1),
            seq: 4,
            len: 10
        }
    );
    let pongs: Vec<&EchoOutput> = skipped
        .iter()
        .filter(|o| matches!(o, EchoOutput::Pong { .. }))
        .collect();
    assert_eq!(
        pongs,
        vec![
            &EchoOutput::Pong {
                from: NodeId(1),
                seq: 1,
                len: 10
            },
            &EchoOutput::Pong {
                from: NodeId(1),
                seq: 2,
                len: 60_000
            }
        ]
    );
    let stats = a.stats();
    assert_eq!(
        stats.link.dropped_too_large, 1,
        "the 70,000-byte ping was refused"
    );
    assert!(
        stats.link.datagrams_out > 44,
        "the big ping was fragmented: {:?}",
        stats.link
    );
    // B's counters are shared after its turn, which may end after A saw the pong.
    let b_stats = wait_for_stats(&b, |s| s.link.messages_in >= 3).await;
    assert_eq!(b_stats.link.messages_in, 3);
    assert_eq!(b_stats.driver.messages_malformed, 0);
    // The start timer fired (its output may come before or after the pongs); the cancelled one
    // never did (the protocol asserts that).
    if !skipped.contains(&EchoOutput::TimerFired) {
        output_matching(&mut a, |o| *o == EchoOutput::TimerFired).await;
    }
    assert!(a.stats().driver.timers_fired >= 1);
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_reaches_every_node_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(4, dir.path(), LinkConfig::default());
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(plan.start(i).await);
    }
    request(&nodes[2], EchoRequest::Flood { seq: 7 }).await;
    for node in nodes.iter_mut() {
        output_matching(node, |o| *o == EchoOutput::Flooded { origin: 2, seq: 7 }).await;
    }
    for node in &nodes {
        // Each node forwards to the 3 others once; duplicates are absorbed by the protocol.
        wait_for_stats(node, |s| s.driver.messages_sent >= 3).await;
    }
    for node in nodes {
        node.shutdown().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sends_leave_only_after_their_persist_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(2, dir.path(), LinkConfig::default());
    let mut store = None;
    let (mut a, _) = plan.start_with(0, |s| store = Some(s.clone())).await;
    let mut b = plan.start(1).await;
    let store = store.expect("the store was shown");
    // Stall A's storage thread: redb admits one write transaction at a time.
    let stall = store.database().begin_write().expect("write transaction");
    request(
        &a,
        EchoRequest::Persist {
            ops: vec![put("k/held", "v")],
            key: b"k/held".to_vec(),
            notify: NodeId(1),
        },
    )
    .await;
    wait_for_stats(&a, |s| s.driver.sends_held == 1).await;
    // A later ping on the same link comes back while the held message is still held.
    ping(&a, NodeId(1), 1, 1).await;
    let (skipped, _) =
        output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { seq: 1, .. })).await;
    assert!(!skipped.iter().any(|o| matches!(o, EchoOutput::Durable(_))));
    assert_eq!(a.stats().driver.persists, 0);
    while let Ok(output) = b.outputs.try_recv() {
        assert!(
            !matches!(output, EchoOutput::StoredAt { .. }),
            "the held send left before durability"
        );
    }
    let b_stats = wait_for_stats(&b, |s| s.link.messages_in >= 1).await;
    assert_eq!(b_stats.link.messages_in, 1, "only the ping reached B");
    drop(stall);
    let (_, durable) = output_matching(&mut a, |o| matches!(o, EchoOutput::Durable(_))).await;
    assert_eq!(durable, EchoOutput::Durable(PersistToken(0)));
    let (_, stored) = output_matching(&mut b, |o| matches!(o, EchoOutput::StoredAt { .. })).await;
    assert_eq!(
        stored,
        EchoOutput::StoredAt {
            from: NodeId(0),
            key: b"k/held".to_vec()
        }
    );
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_sees_exactly_what_was_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(2, dir.path(), LinkConfig::default());
    let (mut a, restored) = plan.start_with(0, |_| {}).await;
    assert!(restored.is_empty());
    let mut b = plan.start(1).await;
    let batches = [
        vec![
            put("k/1", "one"),
            put("k/2", "two"),
            put("k/3", "three"),
            put("other", "x"),
        ],
        vec![
            StoreOp::Delete {
                key: b"k/1".to_vec(),
            },
            put("k/4", "four"),
        ],
        vec![
            StoreOp::DeleteRange {
                start: b"k/2".to_vec(),
                end: b"k/3".to_vec(),
            },
            put("k/2b", "late"),
        ],
    ];
    let mut model = MemStore::new();
    for (i, ops) in batches.iter().enumerate() {
        model.apply(ops);
        request(
            &a,
            EchoRequest::Persist {
                ops: ops.clone(),
                key: vec![i as u8],
                notify: NodeId(1),
            },
        )
        .await;
    }
    for i in 0..batches.len() as u64 {
        let (_, durable) = output_matching(&mut a, |o| matches!(o, EchoOutput::Durable(_))).await;
        assert_eq!(
            durable,
            EchoOutput::Durable(PersistToken(i)),
            "batches become durable in order"
        );
    }
    assert_eq!(a.stats().driver.persists, 3);
    for _ in 0..batches.len() {
        output_matching(&mut b, |o| matches!(o, EchoOutput::StoredAt { .. })).await;
    }
    a.shutdown().await.expect("clean stop");
    let (a, restored) = plan.start_with(0, |_| {}).await;
    // B still holds its session from before the restart, which A can no longer read (pings on
    // it are lost like any datagram). A's handshake at start replaces it, so B reaches A again
    // without A sending anything and long before B's session would be rekeyed.
    let mut reached = false;
    for seq in 0..PING_ATTEMPTS_MAX {
        ping(&b, NodeId(0), seq, 1).await;
        let pong = tokio::time::timeout(PING_WAIT, async {
            while let Some(o) = b.outputs.recv().await {
                if matches!(o, EchoOutput::Pong { .. }) {
                    return;
                }
            }
        });
        if pong.await.is_ok() {
            reached = true;
            break;
        }
    }
    assert!(reached, "B never reached the restarted A");
    assert!(
        a.stats().link.handshakes_initiated >= 1,
        "A initiated at start"
    );
    use stockade_core::StoreRead;
    assert_eq!(restored, model.scan_prefix(b"k/"));
    assert_eq!(
        restored
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>(),
        vec!["k/2b", "k/3", "k/4"]
    );
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}

/// A test-driven link on its own socket: a stranger, or a configured peer speaking garbage.
struct RawNode {
    link: Link,
    socket: Arc<UdpSocket>,
    started: Instant,
}

impl RawNode {
    fn new(
        me: NodeId,
        keypair: StaticKeypair,
        peers: Vec<Peer>,
        config: LinkConfig,
        socket: UdpSocket,
    ) -> RawNode {
        let link = Link::new(me, keypair, peers, config, 1, [42; 32]).expect("valid link");
        RawNode {
            link,
            socket: Arc::new(socket),
            started: Instant::now(),
        }
    }

    fn now(&self) -> Time {
        Time::from_nanos(self.started.elapsed().as_nanos() as u64)
    }

    async fn put_on_wire(&self, io: &mut LinkIo) {
        for (to, datagram) in io.datagrams.drain(..) {
            self.socket
                .send_to(&datagram, to)
                .await
                .expect("loopback send");
        }
    }

    /// Process what arrives until `done` holds of the link.
    async fn serve_until(&mut self, done: impl Fn(&Link) -> bool) {
        let mut buf = vec![0u8; 65_536];
        let mut io = LinkIo::default();
        tokio::time::timeout(WAIT_MAX, async {
            while !done(&self.link) {
                let (len, from) = self
                    .socket
                    .recv_from(&mut buf)
                    .await
                    .expect("loopback receive");
                self.link
                    .on_datagram(self.now(), from, &buf[..len], &mut io);
                self.link.flush(self.now(), &mut io);
                self.put_on_wire(&mut io).await;
            }
        })
        .await
        .expect("the raw link reached its goal");
    }
}

async fn loopback_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_replays_truncation_and_garbage_are_rejected_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(3, dir.path(), LinkConfig::default());
    // Node 0 reaches node 1 through a tap that records and forwards every datagram.
    let tap = Arc::new(loopback_socket().await);
    let tap_addr = tap.local_addr().expect("bound");
    let (a_addr, b_addr) = (plan.nodes[0].addr, plan.nodes[1].addr);
    let mut a_setup = plan.setup(0);
    a_setup
        .peers
        .iter_mut()
        .filter(|p| p.id == NodeId(1))
        .for_each(|p| p.addr = tap_addr);
    let recorded = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let forwarder = {
        let (tap, recorded) = (Arc::clone(&tap), Arc::clone(&recorded));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((len, from)) = tap.recv_from(&mut buf).await else {
                    return;
                };
                let to = if from == b_addr { a_addr } else { b_addr };
                if to == b_addr {
                    recorded.lock().expect("lock").push(buf[..len].to_vec());
                }
                let _ = tap.send_to(&buf[..len], to).await;
            }
        })
    };
    let all: Vec<NodeId> = (0..3).map(NodeId).collect();
    let mut a = stockade_runtime::spawn_node(a_setup, |s| Echo::from_store(all, s))
        .await
        .expect("starts");
    output_matching(&mut a, |o| matches!(o, EchoOutput::Restored(_))).await;
    let b = plan.start(1).await;
    ping(&a, NodeId(1), 1, 100).await;
    output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { seq: 1, .. })).await;

    // Replay, cut and tamper with a recorded data datagram (type 4) from A.
    let data = recorded
        .lock()
        .expect("lock")
        .iter()
        .find(|d| d[0] == 4)
        .cloned()
        .expect("a data datagram");
    // A fresh nonce (so the replay check passes) on a ciphertext that no longer authenticates.
    let mut tampered = data.clone();
    tampered[12] ^= 0x40;
    for datagram in [data.clone(), data[..20].to_vec(), tampered] {
        tap.send_to(&datagram, b_addr).await.expect("send");
    }
    let stats = wait_for_stats(&b, |s| {
        s.link.dropped_replay >= 1 && s.link.dropped_truncated >= 1 && s.link.dropped_bad_auth >= 1
    })
    .await;
    assert_eq!(
        (
            stats.link.dropped_replay,
            stats.link.dropped_truncated,
            stats.link.dropped_bad_auth
        ),
        (1, 1, 1)
    );

    // A stranger who knows B's public key but is not configured there.
    let b_peer = Peer {
        id: NodeId(1),
        addr: b_addr,
        public_key: plan.nodes[1].keypair.public(),
    };
    let stranger_key = StaticKeypair::generate().expect("keygen");
    let mut stranger = RawNode::new(
        NodeId(0),
        stranger_key,
        vec![b_peer.clone()],
        LinkConfig::default(),
        loopback_socket().await,
    );
    stranger
        .link
        .send(
            NodeId(1),
            encode_frame(&EchoMsg::Ping {
                seq: 9,
                payload: vec![],
            }),
        )
        .expect("queued");
    let mut io = LinkIo::default();
    stranger.link.flush(stranger.now(), &mut io);
    stranger.put_on_wire(&mut io).await;
    wait_for_stats(&b, |s| s.link.dropped_unknown_key == 1).await;
    assert!(!stranger.link.has_session(NodeId(1), stranger.now()));

    // Node 2 is configured at B but speaks garbage inside authenticated datagrams.
    let node2_keypair = plan.nodes[2].keypair.clone();
    let socket2 = plan.take_socket(2).expect("node 2's socket");
    let mut garbler = RawNode::new(
        NodeId(2),
        node2_keypair,
        vec![b_peer],
        LinkConfig::default(),
        socket2,
    );
    for frame in [vec![], vec![1], vec![1, 0xff, 0xff], vec![9, 0, 0]] {
        garbler.link.send(NodeId(1), frame).expect("queued");
    }
    let mut io = LinkIo::default();
    garbler.link.flush(garbler.now(), &mut io);
    garbler.put_on_wire(&mut io).await;
    garbler
        .serve_until(|l| l.has_session(NodeId(1), Time::ZERO) && l.stats().datagrams_out >= 2)
        .await;
    let stats = wait_for_stats(&b, |s| s.driver.messages_malformed == 4).await;
    // A and the garbler (each possibly in both directions); the stranger never.
    assert!(stats.link.handshakes_completed >= 2);
    assert_eq!(stats.link.dropped_unknown_key, 1);
    // B keeps working after all of it.
    ping(&a, NodeId(1), 2, 1).await;
    output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { seq: 2, .. })).await;
    forwarder.abort();
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_handshake_flood_a_real_peer_connects_through_the_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Node 1 demands a cookie for every initiation: it is "under load" from the first one.
    let config = LinkConfig {
        handshake_inits_per_second_max: 0,
        ..LinkConfig::default()
    };
    let mut plan = ClusterPlan::new(2, dir.path(), config);
    let b = plan.start(1).await;
    let b_addr: SocketAddr = plan.nodes[1].addr;
    let b_peer = Peer {
        id: NodeId(1),
        addr: b_addr,
        public_key: plan.nodes[1].keypair.public(),
    };
    // The flood: fresh initiations with valid mac1 from a stranger, as fast as it can make them.
    let flood_config = LinkConfig {
        handshake_retry_ms: 1,
        handshake_attempts_max: u32::MAX,
        ..LinkConfig::default()
    };
    let mut flooder = RawNode::new(
        NodeId(0),
        StaticKeypair::generate().expect("keygen"),
        vec![b_peer],
        flood_config,
        loopback_socket().await,
    );
    flooder.link.send(NodeId(1), vec![1]).expect("queued");
    let mut io = LinkIo::default();
    flooder.link.flush(Time::ZERO, &mut io);
    for ms in 1..200u64 {
        flooder.link.tick(Time::from_millis(ms), &mut io);
    }
    assert_eq!(io.datagrams.len(), 200);
    flooder.put_on_wire(&mut io).await;
    wait_for_stats(&b, |s| s.link.cookie_replies_sent >= 150).await;
    let mut a = plan.start(0).await;
    ping(&a, NodeId(1), 1, 1).await;
    output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { seq: 1, .. })).await;
    let (a_stats, b_stats) = (a.stats(), b.stats());
    assert!(a_stats.link.cookies_received >= 1);
    assert!(b_stats.link.handshakes_with_cookie >= 1);
    assert_eq!(
        b_stats.link.dropped_unknown_key, 0,
        "no flood initiation got as far as Diffie-Hellman"
    );
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sends_and_messages_to_self_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = ClusterPlan::new(2, dir.path(), LinkConfig::default());
    plan.queues = QueueLimits {
        held_sends_max: 2,
        local_messages_per_turn_max: 1,
        ..QueueLimits::default()
    };
    let mut store = None;
    let (mut a, _) = plan.start_with(0, |s| store = Some(s.clone())).await;
    let mut b = plan.start(1).await;
    let stall = store
        .expect("the store was shown")
        .database()
        .begin_write()
        .expect("write transaction");
    for i in 0..3u8 {
        let key = vec![b'k', b'/', i];
        let ops = vec![StoreOp::Put {
            key: key.clone(),
            value: vec![i],
        }];
        request(
            &a,
            EchoRequest::Persist {
                ops,
                key,
                notify: NodeId(1),
            },
        )
        .await;
    }
    let stats = wait_for_stats(&a, |s| {
        s.driver.sends_held + s.driver.sends_dropped_held_full == 3
    })
    .await;
    assert_eq!(
        (
            stats.driver.sends_held,
            stats.driver.sends_dropped_held_full
        ),
        (2, 1)
    );
    drop(stall);
    for i in 0..2u8 {
        let (_, stored) =
            output_matching(&mut b, |o| matches!(o, EchoOutput::StoredAt { .. })).await;
        assert_eq!(
            stored,
            EchoOutput::StoredAt {
                from: NodeId(0),
                key: vec![b'k', b'/', i]
            }
        );
    }
    // Five pings to itself in one call, one handled per turn: all answered, over several turns.
    request(&a, EchoRequest::SelfBurst { count: 5 }).await;
    for seq in 0..5 {
        let (_, pong) = output_matching(&mut a, |o| matches!(o, EchoOutput::Pong { .. })).await;
        assert_eq!(
            pong,
            EchoOutput::Pong {
                from: NodeId(0),
                seq,
                len: 0
            }
        );
    }
    assert!(a.stats().driver.local_messages_deferred >= 4);
    a.shutdown().await.expect("clean stop");
    b.shutdown().await.expect("clean stop");
}
