//! Tests of the broadcast: exact effects of single handler calls (`effects`), bounds reached
//! (`limits`), and whole committees over an in-memory network with loss, crashes and an
//! equivocating origin (`network`).

mod effects;
mod limits;
mod network;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::{Context, Effect, NodeId, Protocol, Time};

use crate::{BrachaBroadcast, BroadcastConfig, BroadcastMessage, InstanceId, KeyRing, Phase};

/// Key rings for a committee of `n`, always the same.
pub(crate) fn committee_keys(n: usize) -> Vec<KeyRing> {
    KeyRing::generate_committee(n, &mut ChaCha8Rng::seed_from_u64(42))
}

/// Node `me` of a committee built from `config`.
pub(crate) fn node(config: &BroadcastConfig, keys: &[KeyRing], me: u32) -> BrachaBroadcast {
    BrachaBroadcast::new(config.clone(), keys[me as usize].clone()).expect("valid config")
}

/// Drives one node by hand: each call gets a fresh context and returns its exact effects.
pub(crate) struct Driver {
    pub(crate) node: BrachaBroadcast,
    rng: ChaCha8Rng,
    tokens: u64,
    pub(crate) now: Time,
}

impl Driver {
    pub(crate) fn new(node: BrachaBroadcast) -> Driver {
        Driver {
            node,
            rng: ChaCha8Rng::seed_from_u64(1),
            tokens: 0,
            now: Time::ZERO,
        }
    }

    pub(crate) fn call(
        &mut self,
        input: impl FnOnce(&mut BrachaBroadcast, &mut Context<'_, BrachaBroadcast>),
    ) -> Vec<Effect<BrachaBroadcast>> {
        let me = self.node.me();
        let mut cx = Context::new(self.now, me, &mut self.rng, &mut self.tokens, Vec::new());
        input(&mut self.node, &mut cx);
        let effects = cx.into_effects();
        self.node
            .check_invariants()
            .expect("invariants hold after every call");
        effects
    }

    /// A message of `phase` for `(origin, seq)` from committee member `from`, signed by it.
    pub(crate) fn vote(
        &mut self,
        keys: &[KeyRing],
        from: u32,
        phase: Phase,
        origin: u32,
        seq: u64,
        payload: &[u8],
    ) -> Vec<Effect<BrachaBroadcast>> {
        self.message(
            from,
            signed(&keys[from as usize], phase, origin, seq, payload),
        )
    }

    /// Let one retransmission interval pass and fire the retransmission timer.
    pub(crate) fn retransmit_round(&mut self) -> Vec<Effect<BrachaBroadcast>> {
        self.now += self.node.config().retransmit_interval;
        self.call(|node, cx| node.on_timer(cx, crate::BroadcastTimer::Retransmit))
    }

    pub(crate) fn message(
        &mut self,
        from: u32,
        m: BroadcastMessage,
    ) -> Vec<Effect<BrachaBroadcast>> {
        self.call(|node, cx| node.on_message(cx, NodeId(from), m))
    }
}

/// A message of `phase` for `(origin, seq)` signed by `keys`.
pub(crate) fn signed(
    keys: &KeyRing,
    phase: Phase,
    origin: u32,
    seq: u64,
    payload: &[u8],
) -> BroadcastMessage {
    BroadcastMessage::signed(
        keys,
        phase,
        InstanceId {
            origin: NodeId(origin),
            seq,
        },
        payload.to_vec(),
    )
}

/// The sends among `effects`, as `(to, phase, signer)`.
pub(crate) fn sends<'a>(
    effects: impl IntoIterator<Item = &'a Effect<BrachaBroadcast>>,
) -> Vec<(u32, Phase, u32)> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message,
                after: None,
            } => Some((to.0, message.phase, message.signer.0)),
            _ => None,
        })
        .collect()
}

/// `(to, phase, signer)` of one message from `signer` to every other member of a committee of `n`.
pub(crate) fn to_all_others(n: u32, phase: Phase, signer: u32) -> Vec<(u32, Phase, u32)> {
    (0..n)
        .filter(|to| *to != signer)
        .map(|to| (to, phase, signer))
        .collect()
}

/// The deliveries among `effects`.
pub(crate) fn deliveries(effects: &[Effect<BrachaBroadcast>]) -> Vec<crate::BroadcastOutput> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}
