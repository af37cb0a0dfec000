//! Byzantine behaviour: an [`Adversary`] sits between a node's protocol and the world, and may
//! rewrite every effect the protocol emits and every message it receives. [`Byzantine`] is the
//! generic one (delay, drop, duplicate, corrupt, equivocate, scripted); protocol authors write
//! protocol-specific attacks as their own `Adversary` or as a [`Byzantine::scripted`] closure.
//!
//! Corruption needs a network that carries bytes: a [`Payload`] is either a typed message or raw
//! bytes, and the receiving side decodes raw bytes with `Wire::from_bytes` under the world's
//! `DecodeLimits`, counting and dropping failures (DESIGN.md section 8: every input is bounded and
//! validated).

use std::collections::BTreeSet;
use std::time::Duration;

use stockade_core::{Effect, NodeId, PersistToken, Protocol, RngCore, Time, Wire};

/// What travels on a link: a typed message, or raw bytes the receiver must decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<M> {
    /// A well-formed message.
    Message(M),
    /// Bytes, possibly malformed (corrupted or forged by an adversary).
    Raw(Box<[u8]>),
}

impl<M: Wire> Payload<M> {
    /// Bytes on the wire, before per-packet overhead.
    #[inline]
    pub fn wire_len(&self) -> usize {
        match self {
            Payload::Message(m) => m.wire_len(),
            Payload::Raw(bytes) => bytes.len(),
        }
    }
}

/// A send after the adversary had its say.
#[derive(Clone, Debug)]
pub struct OutgoingSend<M> {
    /// Destination.
    pub to: NodeId,
    /// What is sent.
    pub payload: Payload<M>,
    /// Hold until this persist batch is durable (as in `Effect::Send`).
    pub after: Option<PersistToken>,
    /// Extra time the sender holds the packet before it enters the link.
    pub delay: Duration,
}

/// What the world carries out on an adversary's behalf.
pub enum Action<P: Protocol> {
    /// Carry out this effect as an honest node's (sends included).
    Effect(Effect<P>),
    /// Send this (possibly raw, possibly delayed) payload.
    Send(OutgoingSend<P::Message>),
}

/// What an adversary sees when it acts: the true time, the node it controls, the world's RNG.
pub struct AdversaryCx<'a> {
    /// True simulation time (not the node's drifting clock).
    pub now: Time,
    /// The node the adversary controls.
    pub me: NodeId,
    /// The world's seeded RNG.
    pub rng: &'a mut dyn RngCore,
}

/// Controls one node: sees each effect its protocol emits and each message it receives.
pub trait Adversary<P: Protocol> {
    /// The protocol emitted `effect`; push what the world should do instead (nothing drops it).
    fn on_effect(&mut self, cx: &mut AdversaryCx<'_>, effect: Effect<P>, out: &mut Vec<Action<P>>);

    /// A message from `from` reached the node; `None` hides it from the protocol.
    fn on_receive(
        &mut self,
        cx: &mut AdversaryCx<'_>,
        from: NodeId,
        message: P::Message,
    ) -> Option<P::Message> {
        let _ = (cx, from);
        Some(message)
    }
}

/// How [`Tamper::Corrupt`] mangles the encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Corruption {
    /// XOR one random byte with a random nonzero value.
    FlipByte,
    /// Drop between one byte and half of the encoding from the end.
    Truncate,
    /// Append one to eight random bytes (a strict decoder always rejects this: trailing bytes).
    AppendGarbage,
    /// Replace every byte with a random one, keeping the length.
    RandomBytes,
}

/// A user closure that rewrites a message per destination (`None` keeps it).
pub type EquivocateFn<M> = Box<dyn FnMut(NodeId, &M, &mut dyn RngCore) -> Option<M>>;
/// A user closure deciding per effect, by time: push the actions to take (nothing drops it).
pub type ScriptFn<P> = Box<dyn FnMut(&mut AdversaryCx<'_>, Effect<P>, &mut Vec<Action<P>>)>;

/// One rule a [`Byzantine`] node applies to each send, in the order the rules were added.
pub enum Tamper<M> {
    /// Hold every send this much longer.
    Delay(Duration),
    /// Send nothing.
    DropAll,
    /// Send nothing to these nodes.
    DropTo(BTreeSet<NodeId>),
    /// Send each message `copies` extra times.
    Duplicate(u32),
    /// With this probability, send mangled bytes instead of the message.
    Corrupt {
        /// Chance per send in `[0, 1]`.
        probability: f64,
        /// How the bytes are mangled.
        how: Corruption,
    },
    /// Rewrite the message per destination.
    Equivocate(EquivocateFn<M>),
}

/// A generic Byzantine node: applies its [`Tamper`] rules (or a script) to what the honest
/// protocol it controls emits, during an active window.
pub struct Byzantine<P: Protocol> {
    rules: Vec<Tamper<P::Message>>,
    script: Option<ScriptFn<P>>,
    deaf_to: BTreeSet<NodeId>,
    active_from: Time,
    active_until: Time,
}

impl<P: Protocol> Default for Byzantine<P> {
    fn default() -> Self {
        Byzantine {
            rules: Vec::new(),
            script: None,
            deaf_to: BTreeSet::new(),
            active_from: Time::ZERO,
            active_until: Time::MAX,
        }
    }
}

impl<P: Protocol> Byzantine<P> {
    /// A node that behaves honestly until rules are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a rule.
    pub fn rule(mut self, rule: Tamper<P::Message>) -> Self {
        self.rules.push(rule);
        self
    }
    /// Hold every send `extra` longer.
    pub fn delay(self, extra: Duration) -> Self {
        self.rule(Tamper::Delay(extra))
    }
    /// Send nothing.
    pub fn drop_all(self) -> Self {
        self.rule(Tamper::DropAll)
    }
    /// Send nothing to `nodes`.
    pub fn drop_to(self, nodes: impl IntoIterator<Item = NodeId>) -> Self {
        self.rule(Tamper::DropTo(nodes.into_iter().collect()))
    }
    /// Send each message `copies` extra times.
    pub fn duplicate(self, copies: u32) -> Self {
        self.rule(Tamper::Duplicate(copies))
    }
    /// With `probability`, send mangled bytes instead of the message.
    pub fn corrupt(self, probability: f64, how: Corruption) -> Self {
        self.rule(Tamper::Corrupt { probability, how })
    }
    /// Rewrite each message per destination with `rewrite(to, message, rng)`.
    pub fn equivocate(
        self,
        rewrite: impl FnMut(NodeId, &P::Message, &mut dyn RngCore) -> Option<P::Message> + 'static,
    ) -> Self {
        self.rule(Tamper::Equivocate(Box::new(rewrite)))
    }
    /// Hide from the protocol every message from `nodes`.
    pub fn deaf_to(mut self, nodes: impl IntoIterator<Item = NodeId>) -> Self {
        self.deaf_to.extend(nodes);
        self
    }
    /// Decide every effect with `script` (applied before the rules, which then see its sends).
    pub fn scripted(
        mut self,
        script: impl FnMut(&mut AdversaryCx<'_>, Effect<P>, &mut Vec<Action<P>>) + 'static,
    ) -> Self {
        self.script = Some(Box::new(script));
        self
    }
    /// Misbehave only for true times in `from..until`; honest outside it.
    pub fn active_between(mut self, from: Time, until: Time) -> Self {
        self.active_from = from;
        self.active_until = until;
        self
    }

    fn active(&self, now: Time) -> bool {
        self.active_from <= now && now < self.active_until
    }

    fn apply_rules(
        &mut self,
        rng: &mut dyn RngCore,
        send: OutgoingSend<P::Message>,
        out: &mut Vec<Action<P>>,
    ) {
        let mut sends = vec![send];
        for rule in &mut self.rules {
            let mut next = Vec::with_capacity(sends.len());
            for mut s in sends {
                match rule {
                    Tamper::Delay(extra) => {
                        s.delay += *extra;
                        next.push(s);
                    }
                    Tamper::DropAll => {}
                    Tamper::DropTo(nodes) => {
                        if !nodes.contains(&s.to) {
                            next.push(s);
                        }
                    }
                    Tamper::Duplicate(copies) => {
                        for _ in 0..*copies {
                            next.push(s.clone());
                        }
                        next.push(s);
                    }
                    Tamper::Corrupt { probability, how } => {
                        if unit(rng) < *probability {
                            let bytes = match &s.payload {
                                Payload::Message(m) => m.to_bytes(),
                                Payload::Raw(b) => b.to_vec(),
                            };
                            s.payload =
                                Payload::Raw(corrupt_bytes(bytes, *how, rng).into_boxed_slice());
                        }
                        next.push(s);
                    }
                    Tamper::Equivocate(rewrite) => {
                        if let Payload::Message(m) = &s.payload {
                            if let Some(other) = rewrite(s.to, m, rng) {
                                s.payload = Payload::Message(other);
                            }
                        }
                        next.push(s);
                    }
                }
            }
            sends = next;
        }
        out.extend(sends.into_iter().map(Action::Send));
    }
}

fn unit(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn below(rng: &mut dyn RngCore, bound: u64) -> u64 {
    ((rng.next_u64() as u128 * bound as u128) >> 64) as u64
}

/// Mangle `bytes` as `how` says.
pub fn corrupt_bytes(mut bytes: Vec<u8>, how: Corruption, rng: &mut dyn RngCore) -> Vec<u8> {
    match how {
        Corruption::FlipByte => {
            if bytes.is_empty() {
                bytes.push(rng.next_u32() as u8);
            } else {
                let i = below(rng, bytes.len() as u64) as usize;
                bytes[i] ^= (below(rng, 255) + 1) as u8;
            }
        }
        Corruption::Truncate => {
            let cut = 1 + below(rng, (bytes.len() as u64 / 2).max(1)) as usize;
            bytes.truncate(bytes.len().saturating_sub(cut));
        }
        Corruption::AppendGarbage => {
            for _ in 0..1 + below(rng, 8) {
                bytes.push(rng.next_u32() as u8);
            }
        }
        Corruption::RandomBytes => rng.fill_bytes(&mut bytes),
    }
    bytes
}

impl<P: Protocol> Adversary<P> for Byzantine<P> {
    fn on_effect(&mut self, cx: &mut AdversaryCx<'_>, effect: Effect<P>, out: &mut Vec<Action<P>>) {
        if !self.active(cx.now) {
            out.push(Action::Effect(effect));
            return;
        }
        let mut scripted = Vec::new();
        match &mut self.script {
            Some(script) => script(cx, effect, &mut scripted),
            None => scripted.push(Action::Effect(effect)),
        }
        for action in scripted {
            match action {
                Action::Effect(Effect::Send { to, message, after }) => {
                    let send = OutgoingSend {
                        to,
                        payload: Payload::Message(message),
                        after,
                        delay: Duration::ZERO,
                    };
                    self.apply_rules(cx.rng, send, out);
                }
                Action::Send(send) => self.apply_rules(cx.rng, send, out),
                other => out.push(other),
            }
        }
    }

    fn on_receive(
        &mut self,
        cx: &mut AdversaryCx<'_>,
        from: NodeId,
        message: P::Message,
    ) -> Option<P::Message> {
        (!(self.active(cx.now) && self.deaf_to.contains(&from))).then_some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use stockade_core::DecodeLimits;

    use crate::inert::Inert as Echo;

    fn run(b: &mut Byzantine<Echo>, now: Time, to: u32) -> Vec<OutgoingSend<u64>> {
        let mut rng = SimRng::new(4);
        let mut cx = AdversaryCx {
            now,
            me: NodeId(0),
            rng: &mut rng,
        };
        let mut out = Vec::new();
        b.on_effect(
            &mut cx,
            Effect::Send {
                to: NodeId(to),
                message: 7,
                after: None,
            },
            &mut out,
        );
        out.into_iter()
            .map(|a| match a {
                Action::Send(s) => s,
                Action::Effect(e) => OutgoingSend {
                    to: NodeId(99),
                    payload: Payload::Raw(format!("{e:?}").into_bytes().into()),
                    after: None,
                    delay: Duration::ZERO,
                },
            })
            .collect()
    }

    #[test]
    fn rules_compose_in_order() {
        let mut b = Byzantine::<Echo>::new()
            .drop_to([NodeId(2)])
            .duplicate(2)
            .delay(Duration::from_millis(5));
        assert!(run(&mut b, Time::ZERO, 2).is_empty(), "dropped to n2");
        let sent = run(&mut b, Time::ZERO, 1);
        assert_eq!(sent.len(), 3);
        assert!(sent
            .iter()
            .all(|s| s.delay == Duration::from_millis(5) && s.payload == Payload::Message(7)));
    }

    #[test]
    fn equivocation_rewrites_per_destination() {
        let mut b = Byzantine::<Echo>::new().equivocate(|to, m, _| Some(m + to.0 as u64 * 100));
        assert_eq!(run(&mut b, Time::ZERO, 3)[0].payload, Payload::Message(307));
        assert_eq!(run(&mut b, Time::ZERO, 1)[0].payload, Payload::Message(107));
    }

    #[test]
    fn corruption_yields_bytes_that_fail_to_decode() {
        let mut b = Byzantine::<Echo>::new().corrupt(1.0, Corruption::AppendGarbage);
        let sent = run(&mut b, Time::ZERO, 1);
        let Payload::Raw(bytes) = &sent[0].payload else {
            panic!("expected raw bytes")
        };
        assert!(bytes.len() > 8);
        assert!(u64::from_bytes(bytes, DecodeLimits::MESSAGE).is_err());
    }

    #[test]
    fn honest_outside_the_active_window() {
        let mut b = Byzantine::<Echo>::new()
            .drop_all()
            .active_between(Time::from_secs(1), Time::from_secs(2));
        assert_eq!(
            run(&mut b, Time::ZERO, 1).len(),
            1,
            "passes through as an honest effect"
        );
        assert!(run(&mut b, Time::from_secs(1), 1).is_empty());
        assert_eq!(run(&mut b, Time::from_secs(2), 1).len(), 1);
    }
}
