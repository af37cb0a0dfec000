//! Faults a real broadcast node can be told to inject, for the conformance suite and the demo:
//! dropping a share of the messages it receives (a lossy network, seen from this node) and
//! behaving as the Byzantine attacker of [`crate::attack`].
//!
//! [`FaultyBroadcast`] wraps an honest [`BrachaBroadcast`]: it runs the honest node's handler in a
//! context of its own, then re-emits the effects, rewriting sends when it is the attacker.

use serde::{Deserialize, Serialize};
use stockade_broadcast::{
    BrachaBroadcast, BroadcastMessage, BroadcastOutput, BroadcastRequest, BroadcastTimer, KeyRing,
};
use stockade_core::{Context, Effect, InvariantViolation, NodeId, Protocol};

/// Which faults to inject (the `[faults]` table of a node config; all off by default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectedFaults {
    /// Chance in `[0, 0.5)` that a message received is dropped before the protocol sees it.
    pub inbound_loss: f64,
    /// Behave as the Byzantine attacker (equivocate and lie with this node's own key).
    pub byzantine: bool,
}

/// An honest broadcast node with injected faults.
pub struct FaultyBroadcast {
    honest: BrachaBroadcast,
    faults: InjectedFaults,
    /// The attacker's keys, to re-sign forged messages.
    keys: KeyRing,
    /// Probability threshold of `inbound_loss` over `u32` draws.
    loss_threshold: u32,
}

impl FaultyBroadcast {
    /// Wrap `honest` (built with `keys`) to inject `faults`.
    pub fn new(honest: BrachaBroadcast, keys: KeyRing, faults: InjectedFaults) -> FaultyBroadcast {
        let loss_threshold = (faults.inbound_loss.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32;
        FaultyBroadcast {
            honest,
            faults,
            keys,
            loss_threshold,
        }
    }

    /// The honest node inside.
    pub fn honest(&self) -> &BrachaBroadcast {
        &self.honest
    }

    /// Run one honest handler, then carry its effects out through `cx`, as the attacker if asked.
    fn run_honest(
        &mut self,
        cx: &mut Context<'_, Self>,
        input: impl FnOnce(&mut BrachaBroadcast, &mut Context<'_, BrachaBroadcast>),
    ) {
        // The broadcast persists nothing, so a private persist-token counter is never used.
        let mut tokens = 0;
        let (now, me) = (cx.now(), cx.me());
        let mut inner = Context::new(now, me, cx.rng(), &mut tokens, Vec::new());
        input(&mut self.honest, &mut inner);
        for effect in inner.into_effects() {
            match effect {
                Effect::Send { to, message, .. } => {
                    let message = match self.faults.byzantine {
                        true => {
                            crate::attack::equivocate(&self.keys, to, &message).unwrap_or(message)
                        }
                        false => message,
                    };
                    cx.send(to, message);
                }
                Effect::SetTimer { timer, at } => cx.set_timer_at(timer, at),
                Effect::CancelTimer { timer } => cx.cancel_timer(timer),
                Effect::Deliver(output) => cx.deliver(output),
                Effect::Charge(work) => cx.charge(work),
                Effect::Persist { ops, .. } => {
                    cx.persist(ops);
                }
            }
        }
    }
}

impl Protocol for FaultyBroadcast {
    type Message = BroadcastMessage;
    type Timer = BroadcastTimer;
    type Request = BroadcastRequest;
    type Output = BroadcastOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.run_honest(cx, |p, c| p.on_start(c));
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: BroadcastMessage) {
        if self.loss_threshold > 0 && cx.rng().next_u32() < self.loss_threshold {
            return;
        }
        self.run_honest(cx, |p, c| p.on_message(c, from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: BroadcastTimer) {
        self.run_honest(cx, |p, c| p.on_timer(c, timer));
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: BroadcastRequest) {
        self.run_honest(cx, |p, c| p.on_request(c, request));
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.honest.check_invariants()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use stockade_broadcast::{BroadcastConfig, Phase};
    use stockade_core::Time;

    fn node(faults: InjectedFaults) -> FaultyBroadcast {
        let keys = KeyRing::generate_committee(4, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let honest =
            BrachaBroadcast::new(BroadcastConfig::for_faults(1), keys[0].clone()).expect("valid");
        FaultyBroadcast::new(honest, keys[0].clone(), faults)
    }

    fn initials_sent(node: &mut FaultyBroadcast) -> Vec<(NodeId, Vec<u8>)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut tokens = 0;
        let mut cx = Context::new(Time::ZERO, NodeId(0), &mut rng, &mut tokens, Vec::new());
        node.on_request(
            &mut cx,
            BroadcastRequest {
                payload: b"v".to_vec(),
            },
        );
        cx.into_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { to, message, .. } if message.phase == Phase::Initial => {
                    Some((to, message.payload))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_attacker_sends_a_forged_initial_to_a_third_and_the_honest_node_does_not() {
        let honest: Vec<_> = initials_sent(&mut node(InjectedFaults::default()));
        assert!(honest.iter().all(|(_, p)| p == b"v"));
        let lying = initials_sent(&mut node(InjectedFaults {
            byzantine: true,
            ..InjectedFaults::default()
        }));
        // seq 0: receivers with id % 3 == 0 (n3) get the forgery.
        assert_eq!(
            lying
                .iter()
                .filter(|(_, p)| p != b"v")
                .map(|(to, _)| *to)
                .collect::<Vec<_>>(),
            vec![NodeId(3)]
        );
    }
}
