//! The loopback harness: a small test protocol and a cluster of real nodes on 127.0.0.1 ports,
//! talking through real Noise/UDP links, with helpers to wait for outputs and counters.

#![allow(dead_code)] // each test binary uses part of the harness

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{Context, NodeId, PersistToken, Protocol, StoreOp, StoreRead};
use stockade_runtime::{
    spawn_node, LinkConfig, Listen, NodeHandle, NodeSetup, NodeStats, Peer, QueueLimits, RedbStore,
    StaticKeypair,
};

/// How long a test waits for something that should happen within milliseconds before it fails.
pub const WAIT_MAX: Duration = Duration::from_secs(20);

/// Keys persisted by [`Echo`] start with this.
pub const KEY_PREFIX: &[u8] = b"k/";

/// What test nodes send each other.
#[derive(Clone, Debug, PartialEq)]
pub enum EchoMsg {
    /// Answer with a pong carrying the payload's length.
    Ping { seq: u32, payload: Vec<u8> },
    /// The answer to a ping.
    Pong { seq: u32, len: u32 },
    /// Sent only after the sender made `key` durable.
    Stored { key: Vec<u8> },
    /// Flooded to everyone once per (origin, seq).
    Flood { origin: u32, seq: u32 },
}

impl Wire for EchoMsg {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            EchoMsg::Ping { seq, payload } => {
                out.push(0);
                seq.encode(out);
                payload.encode(out);
            }
            EchoMsg::Pong { seq, len } => {
                out.push(1);
                seq.encode(out);
                len.encode(out);
            }
            EchoMsg::Stored { key } => {
                out.push(2);
                key.encode(out);
            }
            EchoMsg::Flood { origin, seq } => {
                out.push(3);
                origin.encode(out);
                seq.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => EchoMsg::Ping {
                seq: u32::decode(r)?,
                payload: Vec::<u8>::decode(r)?,
            },
            1 => EchoMsg::Pong {
                seq: u32::decode(r)?,
                len: u32::decode(r)?,
            },
            2 => EchoMsg::Stored {
                key: Vec::<u8>::decode(r)?,
            },
            3 => EchoMsg::Flood {
                origin: u32::decode(r)?,
                seq: u32::decode(r)?,
            },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "EchoMsg",
                    tag: t as u64,
                })
            }
        })
    }
}

/// What the application asks a test node.
#[derive(Debug)]
pub enum EchoRequest {
    /// Ping `to` with `payload_len` bytes.
    Ping {
        to: NodeId,
        seq: u32,
        payload_len: usize,
    },
    /// Persist these operations, then tell `notify` (after durability) which key was stored.
    Persist {
        ops: Vec<StoreOp>,
        key: Vec<u8>,
        notify: NodeId,
    },
    /// Flood `seq` to every node.
    Flood { seq: u32 },
    /// Ping itself `count` times in one call.
    SelfBurst { count: u32 },
}

/// What a test node delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum EchoOutput {
    /// At start: every key/value under [`KEY_PREFIX`] found in storage.
    Restored(Vec<(Vec<u8>, Vec<u8>)>),
    /// The start timer fired.
    TimerFired,
    /// A pong came back.
    Pong { from: NodeId, seq: u32, len: u32 },
    /// A persist batch is durable.
    Durable(PersistToken),
    /// A peer said it stored `key`.
    StoredAt { from: NodeId, key: Vec<u8> },
    /// A flood arrived (first copy only).
    Flooded { origin: u32, seq: u32 },
}

/// The test protocol: ping/echo, persist-then-notify, flood, and one timer.
pub struct Echo {
    all: Vec<NodeId>,
    restored: Vec<(Vec<u8>, Vec<u8>)>,
    seen_floods: BTreeMap<(u32, u32), ()>,
}

/// Which timers [`Echo`] has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EchoTimer {
    /// Armed at start, fires once.
    Start,
    /// Armed at start and cancelled at once: must never fire.
    Cancelled,
}

impl Echo {
    /// Rebuild from what `store` holds.
    pub fn from_store(all: Vec<NodeId>, store: &dyn StoreRead) -> Echo {
        Echo {
            all,
            restored: store.scan_prefix(KEY_PREFIX),
            seen_floods: BTreeMap::new(),
        }
    }
}

impl Protocol for Echo {
    type Message = EchoMsg;
    type Timer = EchoTimer;
    type Request = EchoRequest;
    type Output = EchoOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        cx.deliver(EchoOutput::Restored(std::mem::take(&mut self.restored)));
        cx.set_timer(EchoTimer::Start, Duration::from_millis(20));
        cx.set_timer(EchoTimer::Cancelled, Duration::from_millis(10));
        cx.cancel_timer(EchoTimer::Cancelled);
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: EchoMsg) {
        match message {
            EchoMsg::Ping { seq, payload } => cx.send(
                from,
                EchoMsg::Pong {
                    seq,
                    len: payload.len() as u32,
                },
            ),
            EchoMsg::Pong { seq, len } => cx.deliver(EchoOutput::Pong { from, seq, len }),
            EchoMsg::Stored { key } => cx.deliver(EchoOutput::StoredAt { from, key }),
            EchoMsg::Flood { origin, seq } => {
                if self.seen_floods.insert((origin, seq), ()).is_none() {
                    cx.deliver(EchoOutput::Flooded { origin, seq });
                    let others: Vec<NodeId> =
                        self.all.iter().copied().filter(|&n| n != cx.me()).collect();
                    cx.send_all(others, &EchoMsg::Flood { origin, seq });
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: EchoTimer) {
        assert_eq!(timer, EchoTimer::Start, "a cancelled timer fired");
        cx.deliver(EchoOutput::TimerFired);
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: EchoRequest) {
        match request {
            EchoRequest::Ping {
                to,
                seq,
                payload_len,
            } => cx.send(
                to,
                EchoMsg::Ping {
                    seq,
                    payload: vec![0xab; payload_len],
                },
            ),
            EchoRequest::Persist { ops, key, notify } => {
                let token = cx.persist(ops);
                cx.send_after(token, notify, EchoMsg::Stored { key });
            }
            EchoRequest::SelfBurst { count } => {
                let me = cx.me();
                for seq in 0..count {
                    cx.send(
                        me,
                        EchoMsg::Ping {
                            seq,
                            payload: Vec::new(),
                        },
                    );
                }
            }
            EchoRequest::Flood { seq } => {
                // Through the node itself, which floods it on.
                let me = cx.me();
                cx.send(me, EchoMsg::Flood { origin: me.0, seq });
            }
        }
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        cx.deliver(EchoOutput::Durable(token));
    }
}

/// Everything needed to (re)start one node of a cluster.
pub struct NodePlan {
    pub id: NodeId,
    pub keypair: StaticKeypair,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

/// A loopback cluster's plan: keys, addresses and data directories, fixed before any node runs.
pub struct ClusterPlan {
    pub nodes: Vec<NodePlan>,
    pub link: LinkConfig,
    pub queues: QueueLimits,
    sockets: Vec<Option<UdpSocket>>,
}

impl ClusterPlan {
    /// `n` nodes with fresh keys on free 127.0.0.1 ports, data under `dir`.
    pub fn new(n: usize, dir: &Path, link: LinkConfig) -> ClusterPlan {
        let mut nodes = Vec::new();
        let mut sockets = Vec::new();
        for i in 0..n {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("a free loopback port");
            nodes.push(NodePlan {
                id: NodeId(i as u32),
                keypair: StaticKeypair::generate().expect("keygen"),
                addr: socket.local_addr().expect("bound"),
                data_dir: dir.join(format!("node{i}")),
            });
            sockets.push(Some(socket));
        }
        ClusterPlan {
            nodes,
            link,
            queues: QueueLimits::default(),
            sockets,
        }
    }

    /// Node `i`'s pre-bound socket, for a test that plays node `i` itself.
    pub fn take_socket(&mut self, i: usize) -> Option<tokio::net::UdpSocket> {
        let socket = self.sockets[i].take()?;
        socket.set_nonblocking(true).ok()?;
        tokio::net::UdpSocket::from_std(socket).ok()
    }

    /// Every node but `i`, as peers.
    pub fn peers_of(&self, i: usize) -> Vec<Peer> {
        self.nodes
            .iter()
            .filter(|n| n.id.index() != i)
            .map(|n| Peer {
                id: n.id,
                addr: n.addr,
                public_key: n.keypair.public(),
            })
            .collect()
    }

    /// The setup of node `i` (on its pre-bound socket the first time, its address after).
    pub fn setup(&mut self, i: usize) -> NodeSetup {
        let node = &self.nodes[i];
        let listen = match self.sockets[i].take() {
            Some(socket) => Listen::Bound(socket),
            None => Listen::Addr(node.addr),
        };
        NodeSetup {
            id: node.id,
            keypair: node.keypair.clone(),
            peers: self.peers_of(i),
            listen,
            data_dir: node.data_dir.clone(),
            link: self.link.clone(),
            queues: self.queues.clone(),
            rng_seed: None,
        }
    }

    /// Start node `i`; `on_store` sees its store before the protocol is built. Returns the node
    /// and what it restored from storage.
    pub async fn start_with(
        &mut self,
        i: usize,
        on_store: impl FnOnce(&RedbStore),
    ) -> (NodeHandle<Echo>, Vec<(Vec<u8>, Vec<u8>)>) {
        let all: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let setup = self.setup(i);
        let mut handle = spawn_node(setup, |store| {
            on_store(store);
            Echo::from_store(all, store)
        })
        .await
        .expect("node starts");
        match next_output(&mut handle).await {
            EchoOutput::Restored(restored) => (handle, restored),
            other => panic!("the first output must be the restore report, got {other:?}"),
        }
    }

    /// Start node `i`.
    pub async fn start(&mut self, i: usize) -> NodeHandle<Echo> {
        self.start_with(i, |_| {}).await.0
    }
}

/// The next output of `node`, failing the test if none comes.
pub async fn next_output(node: &mut NodeHandle<Echo>) -> EchoOutput {
    tokio::time::timeout(WAIT_MAX, node.outputs.recv())
        .await
        .expect("an output within the wait limit")
        .expect("the node is running")
}

/// Outputs of `node` until one matches `want`; returns the ones skipped and the match.
pub async fn output_matching(
    node: &mut NodeHandle<Echo>,
    want: impl Fn(&EchoOutput) -> bool,
) -> (Vec<EchoOutput>, EchoOutput) {
    let mut skipped = Vec::new();
    loop {
        let output = next_output(node).await;
        if want(&output) {
            return (skipped, output);
        }
        skipped.push(output);
    }
}

/// Wait until `node`'s counters satisfy `condition`.
pub async fn wait_for_stats<P: Protocol>(
    node: &NodeHandle<P>,
    condition: impl Fn(&NodeStats) -> bool,
) -> NodeStats {
    let waited = tokio::time::timeout(WAIT_MAX, async {
        loop {
            let stats = node.stats();
            if condition(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("counters never reached the condition: {:?}", node.stats()))
}

/// Send a request to `node`.
pub async fn request(node: &NodeHandle<Echo>, request: EchoRequest) {
    node.requests
        .send(request)
        .await
        .expect("the node takes requests");
}

/// Ask `node` to ping `to` with `payload_len` bytes.
pub async fn ping(node: &NodeHandle<Echo>, to: NodeId, seq: u32, payload_len: usize) {
    request(
        node,
        EchoRequest::Ping {
            to,
            seq,
            payload_len,
        },
    )
    .await;
}
