//! The [`Protocol`] trait, the [`Context`] a driver hands it, and the [`Effect`]s it emits.
//!
//! This is the whole contract between protocol code and the two drivers (simulator and runtime).

use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use rand_core::RngCore;

use crate::cost::CpuWork;
use crate::id::NodeId;
use crate::store::StoreOp;
use crate::time::Time;
use crate::wire::Wire;

/// A sans-IO protocol state machine.
///
/// # How a driver calls it
///
/// 1. The driver builds the protocol (each protocol has its own constructor; one that persists
///    state is rebuilt after a crash from a [`crate::StoreRead`] holding what became durable).
/// 2. It calls [`on_start`](Protocol::on_start) once, before any other input.
/// 3. It then calls, one at a time and never re-entrantly, `on_message` for each authenticated
///    message from a peer, `on_timer` when a timer's deadline passes, `on_request` for each request
///    of the local application, and `on_persisted` when a persist batch became durable.
/// 4. After each call it takes the effects from the context and carries them out in order.
/// 5. The simulator calls [`check_invariants`](Protocol::check_invariants) after every event.
///
/// Time, read through [`Context::now`], never goes backwards between calls. A protocol reaches
/// randomness only through [`Context::rng`], which the driver seeds: nothing else is nondeterministic.
///
/// `from` in `on_message` is the authenticated transport sender (the runtime's Noise session, the
/// simulator's link); everything inside the message is untrusted until the protocol checks it.
pub trait Protocol {
    /// What nodes of this protocol send each other.
    type Message: Wire + Clone + fmt::Debug;
    /// The protocol's named timers: each value has at most one pending deadline.
    type Timer: Clone + Eq + Hash + fmt::Debug;
    /// What the local application asks of the protocol.
    type Request: fmt::Debug;
    /// What the protocol delivers to the local application.
    type Output: fmt::Debug;

    /// Called once, first.
    fn on_start(&mut self, cx: &mut Context<'_, Self>);

    /// A message arrived from `from` over an authenticated link.
    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: Self::Message);

    /// The deadline of `timer` passed (and it was not cancelled or reset since).
    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: Self::Timer);

    /// The local application made a request.
    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: Self::Request);

    /// The persist batch `token` is durable; sends held behind it have been released.
    /// A parent protocol forwards this to every child: tokens are unique per node, so a child
    /// ignores the ones it did not issue.
    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        let _ = (cx, token);
    }

    /// Local safety invariants; the simulator calls this after every event.
    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        Ok(())
    }
}

/// Identifies one persist batch of one node; unique for the node's lifetime across restarts
/// within one driver run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PersistToken(pub u64);

/// A broken invariant: what was expected, what was found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InvariantViolation(pub String);

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvariantViolation {}

/// Something a protocol asks its driver to do. Drivers carry effects out in the order emitted.
pub enum Effect<P: Protocol + ?Sized> {
    /// Send `message` to `to`. With `after`, the message is held until that persist batch is durable
    /// (raft-rs's persisted messages): use it for anything that promises what was persisted.
    Send {
        /// Destination.
        to: NodeId,
        /// The message.
        message: P::Message,
        /// Hold until this batch is durable.
        after: Option<PersistToken>,
    },
    /// Arm `timer` to fire at `at`, replacing any pending deadline of the same timer.
    SetTimer {
        /// Which timer.
        timer: P::Timer,
        /// When it fires.
        at: Time,
    },
    /// Disarm `timer` if pending.
    CancelTimer {
        /// Which timer.
        timer: P::Timer,
    },
    /// Hand `output` to the local application.
    Deliver(P::Output),
    /// Make `ops` durable atomically, then call `on_persisted(token)`.
    Persist {
        /// Identifies the batch.
        token: PersistToken,
        /// The operations, applied in order.
        ops: Vec<StoreOp>,
    },
    /// Busy the node's CPU for this much work (the simulator's virtual CPU; ignored for real).
    Charge(CpuWork),
}

impl<P: Protocol + ?Sized> fmt::Debug for Effect<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Send { to, message, after } => f
                .debug_struct("Send")
                .field("to", to)
                .field("message", message)
                .field("after", after)
                .finish(),
            Effect::SetTimer { timer, at } => f
                .debug_struct("SetTimer")
                .field("timer", timer)
                .field("at", at)
                .finish(),
            Effect::CancelTimer { timer } => {
                f.debug_struct("CancelTimer").field("timer", timer).finish()
            }
            Effect::Deliver(o) => f.debug_tuple("Deliver").field(o).finish(),
            Effect::Persist { token, ops } => f
                .debug_struct("Persist")
                .field("token", token)
                .field("ops", &ops.len())
                .finish(),
            Effect::Charge(w) => f.debug_tuple("Charge").field(w).finish(),
        }
    }
}

/// What a protocol can see and do during one call: the time, its own id, the seeded RNG, and an
/// effect buffer.
pub struct Context<'a, P: Protocol + ?Sized> {
    now: Time,
    me: NodeId,
    rng: &'a mut dyn RngCore,
    next_token: &'a mut u64,
    effects: Vec<Effect<P>>,
}

impl<'a, P: Protocol + ?Sized> Context<'a, P> {
    /// A context for one call into node `me` at `now`. `next_token` is the node's persist-token
    /// counter, kept by the driver across calls. `effects` is an empty buffer the driver may recycle.
    pub fn new(
        now: Time,
        me: NodeId,
        rng: &'a mut dyn RngCore,
        next_token: &'a mut u64,
        effects: Vec<Effect<P>>,
    ) -> Self {
        debug_assert!(effects.is_empty(), "effect buffer must start empty");
        Context {
            now,
            me,
            rng,
            next_token,
            effects,
        }
    }

    /// The effects emitted during the call, in order.
    pub fn into_effects(self) -> Vec<Effect<P>> {
        self.effects
    }

    /// The effects emitted so far (for tests that assert exact effects).
    pub fn effects(&self) -> &[Effect<P>] {
        &self.effects
    }

    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The driver's seeded RNG: the only randomness a protocol may use.
    pub fn rng(&mut self) -> &mut dyn RngCore {
        &mut *self.rng
    }

    /// Send `message` to `to` now.
    pub fn send(&mut self, to: NodeId, message: P::Message) {
        self.effects.push(Effect::Send {
            to,
            message,
            after: None,
        });
    }

    /// Send `message` to `to` once persist batch `token` is durable.
    pub fn send_after(&mut self, token: PersistToken, to: NodeId, message: P::Message) {
        self.effects.push(Effect::Send {
            to,
            message,
            after: Some(token),
        });
    }

    /// Send a copy of `message` to each of `to`.
    pub fn send_all(&mut self, to: impl IntoIterator<Item = NodeId>, message: &P::Message) {
        for dest in to {
            self.send(dest, message.clone());
        }
    }

    /// Arm `timer` to fire `after` from now (replacing a pending deadline of the same timer).
    pub fn set_timer(&mut self, timer: P::Timer, after: Duration) {
        let at = self.now + after;
        self.effects.push(Effect::SetTimer { timer, at });
    }

    /// Arm `timer` to fire at `at` (replacing a pending deadline of the same timer).
    pub fn set_timer_at(&mut self, timer: P::Timer, at: Time) {
        self.effects.push(Effect::SetTimer { timer, at });
    }

    /// Disarm `timer`.
    pub fn cancel_timer(&mut self, timer: P::Timer) {
        self.effects.push(Effect::CancelTimer { timer });
    }

    /// Hand `output` to the local application.
    pub fn deliver(&mut self, output: P::Output) {
        self.effects.push(Effect::Deliver(output));
    }

    /// Make `ops` durable as one atomic batch; `on_persisted` follows with the returned token.
    pub fn persist(&mut self, ops: Vec<StoreOp>) -> PersistToken {
        let token = PersistToken(*self.next_token);
        *self.next_token += 1;
        self.effects.push(Effect::Persist { token, ops });
        token
    }

    /// Charge CPU work to this node.
    pub fn charge(&mut self, work: CpuWork) {
        self.effects.push(Effect::Charge(work));
    }

    /// Run a child protocol inside this call (libp2p-style composition without wakers).
    ///
    /// The child sees the same time, id, RNG and persist-token counter. Its sends, timers, persists
    /// and charges become this protocol's, with messages and timers wrapped by `wrap_message` and
    /// `wrap_timer`; its deliveries are returned to the caller (the parent), not to the application.
    pub fn child<C: Protocol + ?Sized>(
        &mut self,
        wrap_message: impl Fn(C::Message) -> P::Message,
        wrap_timer: impl Fn(C::Timer) -> P::Timer,
        run: impl FnOnce(&mut Context<'_, C>),
    ) -> Vec<C::Output> {
        let mut child_cx: Context<'_, C> = Context::new(
            self.now,
            self.me,
            &mut *self.rng,
            &mut *self.next_token,
            Vec::new(),
        );
        run(&mut child_cx);
        let mut outputs = Vec::new();
        for effect in child_cx.effects {
            let mapped = match effect {
                Effect::Send { to, message, after } => Effect::Send {
                    to,
                    message: wrap_message(message),
                    after,
                },
                Effect::SetTimer { timer, at } => Effect::SetTimer {
                    timer: wrap_timer(timer),
                    at,
                },
                Effect::CancelTimer { timer } => Effect::CancelTimer {
                    timer: wrap_timer(timer),
                },
                Effect::Deliver(o) => {
                    outputs.push(o);
                    continue;
                }
                Effect::Persist { token, ops } => Effect::Persist { token, ops },
                Effect::Charge(w) => Effect::Charge(w),
            };
            self.effects.push(mapped);
        }
        outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DecodeError, Reader};
    use rand_chacha::rand_core::SeedableRng;

    /// A counter that echoes pings and counts pongs: small enough to assert exact effects.
    #[derive(Default)]
    struct Pinger {
        pongs: u32,
    }

    #[derive(Clone, Debug, PartialEq)]
    enum PingMsg {
        Ping(u32),
        Pong(u32),
    }

    impl Wire for PingMsg {
        fn encode(&self, out: &mut Vec<u8>) {
            match self {
                PingMsg::Ping(n) => {
                    out.push(0);
                    n.encode(out)
                }
                PingMsg::Pong(n) => {
                    out.push(1);
                    n.encode(out)
                }
            }
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            match r.u8()? {
                0 => Ok(PingMsg::Ping(u32::decode(r)?)),
                1 => Ok(PingMsg::Pong(u32::decode(r)?)),
                t => Err(DecodeError::UnknownTag {
                    what: "PingMsg",
                    tag: t as u64,
                }),
            }
        }
    }

    impl Protocol for Pinger {
        type Message = PingMsg;
        type Timer = ();
        type Request = NodeId;
        type Output = u32;

        fn on_start(&mut self, cx: &mut Context<'_, Self>) {
            cx.set_timer((), Duration::from_millis(10));
        }
        fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, m: PingMsg) {
            match m {
                PingMsg::Ping(n) => {
                    let t = cx.persist(vec![StoreOp::Put {
                        key: b"seen".to_vec(),
                        value: vec![1],
                    }]);
                    cx.send_after(t, from, PingMsg::Pong(n));
                }
                PingMsg::Pong(n) => {
                    self.pongs += 1;
                    cx.deliver(n);
                }
            }
        }
        fn on_timer(&mut self, _cx: &mut Context<'_, Self>, _t: ()) {}
        fn on_request(&mut self, cx: &mut Context<'_, Self>, to: NodeId) {
            cx.send(to, PingMsg::Ping(7));
        }
    }

    /// A parent that embeds a Pinger and counts what it delivers.
    #[derive(Default)]
    struct Parent {
        inner: Pinger,
        got: Vec<u32>,
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Wrapped(PingMsg);
    impl Wire for Wrapped {
        fn encode(&self, out: &mut Vec<u8>) {
            self.0.encode(out)
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Wrapped(PingMsg::decode(r)?))
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    enum ParentTimer {
        Inner(()),
    }

    impl Protocol for Parent {
        type Message = Wrapped;
        type Timer = ParentTimer;
        type Request = NodeId;
        type Output = ();

        fn on_start(&mut self, cx: &mut Context<'_, Self>) {
            let inner = &mut self.inner;
            cx.child(Wrapped, ParentTimer::Inner, |c| inner.on_start(c));
        }
        fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, m: Wrapped) {
            let inner = &mut self.inner;
            let out = cx.child(Wrapped, ParentTimer::Inner, |c| {
                inner.on_message(c, from, m.0)
            });
            self.got.extend(out);
        }
        fn on_timer(&mut self, _cx: &mut Context<'_, Self>, _t: ParentTimer) {}
        fn on_request(&mut self, cx: &mut Context<'_, Self>, to: NodeId) {
            let inner = &mut self.inner;
            cx.child(Wrapped, ParentTimer::Inner, |c| inner.on_request(c, to));
        }
    }

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn ping_emits_persist_then_held_pong() {
        let mut rng = rng();
        let mut tokens = 0;
        let mut p = Pinger::default();
        let mut cx = Context::new(
            Time::from_millis(1),
            NodeId(0),
            &mut rng,
            &mut tokens,
            Vec::new(),
        );
        p.on_message(&mut cx, NodeId(3), PingMsg::Ping(5));
        let effects = cx.into_effects();
        assert_eq!(effects.len(), 2);
        assert!(matches!(
            effects[0],
            Effect::Persist {
                token: PersistToken(0),
                ..
            }
        ));
        match &effects[1] {
            Effect::Send { to, message, after } => {
                assert_eq!(*to, NodeId(3));
                assert_eq!(*message, PingMsg::Pong(5));
                assert_eq!(*after, Some(PersistToken(0)));
            }
            other => panic!("expected a held send, got {other:?}"),
        }
        assert_eq!(tokens, 1, "the driver's token counter advanced");
    }

    #[test]
    fn timers_are_relative_to_now() {
        let mut rng = rng();
        let mut tokens = 0;
        let mut p = Pinger::default();
        let mut cx = Context::new(
            Time::from_millis(5),
            NodeId(0),
            &mut rng,
            &mut tokens,
            Vec::new(),
        );
        p.on_start(&mut cx);
        match &cx.effects()[0] {
            Effect::SetTimer { at, .. } => assert_eq!(*at, Time::from_millis(15)),
            other => panic!("expected a timer, got {other:?}"),
        }
    }

    #[test]
    fn child_effects_are_wrapped_and_deliveries_return_to_parent() {
        let mut rng = rng();
        let mut tokens = 0;
        let mut p = Parent::default();
        let mut cx = Context::new(Time::ZERO, NodeId(1), &mut rng, &mut tokens, Vec::new());
        p.on_start(&mut cx);
        p.on_request(&mut cx, NodeId(2));
        p.on_message(&mut cx, NodeId(2), Wrapped(PingMsg::Pong(9)));
        let effects = cx.into_effects();
        assert!(matches!(
            effects[0],
            Effect::SetTimer {
                timer: ParentTimer::Inner(()),
                ..
            }
        ));
        assert!(matches!(
            &effects[1],
            Effect::Send {
                to: NodeId(2),
                message: Wrapped(PingMsg::Ping(7)),
                after: None
            }
        ));
        assert_eq!(
            effects.len(),
            2,
            "the child's delivery is not an application delivery"
        );
        assert_eq!(p.got, vec![9]);
        assert_eq!(p.inner.pongs, 1);
    }
}
