//! `Probe`: a small protocol driven entirely by requests, so each test states exactly what a node
//! does and when, and reads back what it saw as outputs.

#![allow(dead_code)]

use std::time::Duration;

use stockade_core::wire::DecodeError;
use stockade_core::{
    Context, CpuWork, InvariantViolation, MemStore, NodeId, PersistToken, Protocol, Reader,
    StoreOp, StoreRead, Time, Wire,
};
use stockade_sim::{LinkSpec, SimConfig, Topology, World};

/// A message of `12 + pad` bytes: a sequence number and zero padding (any nonzero padding byte,
/// truncation or trailing byte fails to decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    pub seq: u64,
    pub pad: u32,
}

impl Wire for Blob {
    fn encode(&self, out: &mut Vec<u8>) {
        self.seq.encode(out);
        self.pad.encode(out);
        out.resize(out.len() + self.pad as usize, 0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seq = u64::decode(r)?;
        let pad = u32::decode(r)?;
        if r.bytes(pad as usize)?.iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid("padding"));
        }
        Ok(Blob { seq, pad })
    }
    fn wire_len(&self) -> usize {
        12 + self.pad as usize
    }
}

/// What a test asks a probe to do.
#[derive(Debug)]
pub enum Cmd {
    /// Send `count` blobs of `pad` padding with sequence numbers `first..first+count`.
    Send {
        to: NodeId,
        first: u64,
        count: u64,
        pad: u32,
    },
    /// Persist `key = value`; with `then_send`, send blob `seq` to that node once durable.
    Persist {
        key: &'static str,
        value: &'static str,
        then_send: Option<(NodeId, u64)>,
    },
    /// Arm timer `name` to fire `after` from now.
    SetTimer { name: u8, after: Duration },
    /// Disarm timer `name`.
    CancelTimer { name: u8 },
    /// Charge `work`, then deliver `Out::Worked` and send blob `seq` to `to`.
    Work { work: CpuWork, to: NodeId, seq: u64 },
    /// Deliver `Out::Marker(tag)` at once.
    Mark(u64),
    /// Send blob 0 to `to` every `period`, forever.
    PingEvery { to: NodeId, period: Duration },
}

/// What a probe tells the test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// Started, having recovered these pairs from its store.
    Started { recovered: Vec<(Vec<u8>, Vec<u8>)> },
    /// Got blob `seq` from `from` when its clock read `local`.
    Got { from: NodeId, seq: u64, local: Time },
    /// Timer `name` fired when its clock read `local`.
    Fired { name: u8, local: Time },
    /// A persist batch became durable.
    Persisted(PersistToken),
    /// A `Work` request finished.
    Worked { seq: u64 },
    /// A `Mark` request was handled.
    Marker(u64),
}

pub const PING_TIMER: u8 = 255;

pub struct Probe {
    pub received: u64,
    /// `check_invariants` fails once more than this many messages were received.
    pub received_max: u64,
    pub ping: Option<(NodeId, Duration)>,
    pub recovered: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Probe {
    pub fn new(store: &MemStore) -> Probe {
        Probe {
            received: 0,
            received_max: u64::MAX,
            ping: None,
            recovered: store.scan_prefix(b""),
        }
    }
}

impl Protocol for Probe {
    type Message = Blob;
    type Timer = u8;
    type Request = Cmd;
    type Output = Out;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        cx.deliver(Out::Started {
            recovered: self.recovered.clone(),
        });
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, blob: Blob) {
        self.received += 1;
        let local = cx.now();
        cx.deliver(Out::Got {
            from,
            seq: blob.seq,
            local,
        });
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, name: u8) {
        if name == PING_TIMER {
            if let Some((to, period)) = self.ping {
                cx.send(to, Blob { seq: 0, pad: 0 });
                cx.set_timer(PING_TIMER, period);
            }
            return;
        }
        let local = cx.now();
        cx.deliver(Out::Fired { name, local });
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, cmd: Cmd) {
        match cmd {
            Cmd::Send {
                to,
                first,
                count,
                pad,
            } => {
                for seq in first..first + count {
                    cx.send(to, Blob { seq, pad });
                }
            }
            Cmd::Persist {
                key,
                value,
                then_send,
            } => {
                let token = cx.persist(vec![StoreOp::Put {
                    key: key.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                }]);
                if let Some((to, seq)) = then_send {
                    cx.send_after(token, to, Blob { seq, pad: 0 });
                }
            }
            Cmd::SetTimer { name, after } => cx.set_timer(name, after),
            Cmd::CancelTimer { name } => cx.cancel_timer(name),
            Cmd::Work { work, to, seq } => {
                cx.charge(work);
                cx.deliver(Out::Worked { seq });
                cx.send(to, Blob { seq, pad: 0 });
            }
            Cmd::Mark(tag) => cx.deliver(Out::Marker(tag)),
            Cmd::PingEvery { to, period } => {
                self.ping = Some((to, period));
                cx.set_timer(PING_TIMER, period);
            }
        }
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        cx.deliver(Out::Persisted(token));
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if self.received > self.received_max {
            return Err(InvariantViolation(format!(
                "received {} > {}",
                self.received, self.received_max
            )));
        }
        Ok(())
    }
}

/// A probe world: `nodes` in a full mesh of `spec`, config for scenario "probe".
pub fn probe_world(seed: u64, nodes: u32, spec: LinkSpec) -> World<Probe> {
    probe_world_with(
        SimConfig::new("probe", seed),
        Topology::full_mesh(nodes, spec),
    )
}

pub fn probe_world_with(config: SimConfig, topology: Topology) -> World<Probe> {
    match World::new(config, topology, |_, store| Probe::new(store)) {
        Ok(w) => w,
        Err(e) => panic!("test world: {e}"),
    }
}

/// `(true time, seq)` of every blob node `to` got, in delivery order.
pub fn received_by(outputs: &[stockade_sim::Delivery<Out>], to: NodeId) -> Vec<(Time, u64)> {
    outputs
        .iter()
        .filter(|d| d.node == to)
        .filter_map(|d| match d.output {
            Out::Got { seq, .. } => Some((d.at, seq)),
            _ => None,
        })
        .collect()
}

/// `count` blobs of `pad` padding to `to`, numbered from `first`.
pub fn blobs(to: NodeId, first: u64, count: u64, pad: u32) -> Cmd {
    Cmd::Send {
        to,
        first,
        count,
        pad,
    }
}

/// Persist `key = value`.
pub fn persist(key: &'static str, value: &'static str) -> Cmd {
    Cmd::Persist {
        key,
        value,
        then_send: None,
    }
}

/// Persist `k = v`, then send blob `seq` to `to` once durable.
pub fn persist_then_send(to: NodeId, seq: u64) -> Cmd {
    Cmd::Persist {
        key: "k",
        value: "v",
        then_send: Some((to, seq)),
    }
}

/// A probe world whose persists take `persist_ms` and links `link_ms`.
pub fn persist_world(nodes: u32, persist_ms: u64, link_ms: u64) -> World<Probe> {
    let mut config = SimConfig::new("probe", 1);
    config.persist_latency = ms(persist_ms);
    probe_world_with(
        config,
        Topology::full_mesh(nodes, LinkSpec::ideal(ms(link_ms))),
    )
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn at_ms(n: u64) -> Time {
    Time::from_millis(n)
}
