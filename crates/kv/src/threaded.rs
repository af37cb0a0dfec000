//! [`ThreadedProtocol`]: runs a protocol that is not `Send` on a thread of its own, so that the
//! runtime (whose node task must be `Send`) can drive it.
//!
//! Why: `Prime<A>` holds its authenticator as `Box<dyn MessageAuth>` without `+ Send`, so no
//! Prime replica can move into a tokio task. Until `stockade-replication` requires `MessageAuth:
//! Send` (the change this crate asks for), each call is forwarded to the owning thread and its
//! effects come back; the cost is one thread hand-off per input.
//!
//! The inner protocol gets the driver's time and id; its RNG is seeded once from the driver's;
//! its persist tokens are its own and are mapped to the driver's (for `send_after` and
//! `on_persisted`).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use stockade_core::{Context, Effect, NodeId, PersistToken, Protocol, Time};

/// Inputs forwarded to the protocol thread.
enum Input<P: Protocol> {
    Start,
    Message(NodeId, P::Message),
    Timer(P::Timer),
    Request(P::Request),
    Persisted(PersistToken),
}

struct Call<P: Protocol> {
    now: Time,
    me: NodeId,
    input: Input<P>,
}

/// Persist tokens of the inner protocol whose batches are not yet durable, at most this many
/// (the driver's own queue bound is far lower, so this is never reached in practice).
pub const MAPPED_TOKENS_MAX: usize = 1 << 20;

/// A protocol owned by its own thread. See the module documentation.
pub struct ThreadedProtocol<P: Protocol> {
    calls: mpsc::SyncSender<Call<P>>,
    effects: mpsc::Receiver<Vec<Effect<P>>>,
    /// Driver token -> inner token, for batches not yet durable.
    tokens: BTreeMap<PersistToken, PersistToken>,
    /// Inner token -> driver token (for sends held behind a batch).
    inner_tokens: BTreeMap<PersistToken, PersistToken>,
}

impl<P> ThreadedProtocol<P>
where
    P: Protocol + 'static,
    P::Message: Send,
    P::Timer: Send,
    P::Request: Send,
    P::Output: Send,
{
    /// Build the protocol with `build` on a new thread named `name` and keep it there.
    pub fn spawn<E: Send + 'static>(
        name: String,
        seed: [u8; 32],
        build: impl FnOnce() -> Result<P, E> + Send + 'static,
    ) -> Result<ThreadedProtocol<P>, ThreadedError<E>> {
        let (call_tx, call_rx) = mpsc::sync_channel::<Call<P>>(1);
        let (effect_tx, effect_rx) = mpsc::sync_channel::<Vec<Effect<P>>>(1);
        let (built_tx, built_rx) = mpsc::sync_channel::<Result<(), E>>(1);
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut protocol = match build() {
                    Ok(p) => {
                        let _ = built_tx.send(Ok(()));
                        p
                    }
                    Err(e) => {
                        let _ = built_tx.send(Err(e));
                        return;
                    }
                };
                let mut rng = ChaCha20Rng::from_seed(seed);
                let mut next_token = 0;
                // Ends when the driver drops its side.
                while let Ok(call) = call_rx.recv() {
                    let mut cx =
                        Context::new(call.now, call.me, &mut rng, &mut next_token, Vec::new());
                    match call.input {
                        Input::Start => protocol.on_start(&mut cx),
                        Input::Message(from, m) => protocol.on_message(&mut cx, from, m),
                        Input::Timer(t) => protocol.on_timer(&mut cx, t),
                        Input::Request(r) => protocol.on_request(&mut cx, r),
                        Input::Persisted(token) => protocol.on_persisted(&mut cx, token),
                    }
                    if effect_tx.send(cx.into_effects()).is_err() {
                        return;
                    }
                }
            })
            .map_err(ThreadedError::Thread)?;
        match built_rx.recv() {
            Ok(Ok(())) => Ok(ThreadedProtocol {
                calls: call_tx,
                effects: effect_rx,
                tokens: BTreeMap::new(),
                inner_tokens: BTreeMap::new(),
            }),
            Ok(Err(e)) => Err(ThreadedError::Build(e)),
            Err(_) => Err(ThreadedError::Died),
        }
    }

    fn forward(&mut self, cx: &mut Context<'_, Self>, input: Input<P>) {
        let call = Call {
            now: cx.now(),
            me: cx.me(),
            input,
        };
        let effects = match self.calls.send(call).map(|()| self.effects.recv()) {
            Ok(Ok(effects)) => effects,
            _ => {
                tracing::error!("the protocol thread stopped; the node no longer participates");
                return;
            }
        };
        for effect in effects {
            match effect {
                Effect::Send { to, message, after } => {
                    match after.and_then(|t| self.inner_tokens.get(&t)) {
                        Some(driver_token) => cx.send_after(*driver_token, to, message),
                        None => cx.send(to, message),
                    }
                }
                Effect::SetTimer { timer, at } => cx.set_timer_at(timer, at),
                Effect::CancelTimer { timer } => cx.cancel_timer(timer),
                Effect::Deliver(output) => cx.deliver(output),
                Effect::Persist { token, ops } => {
                    let driver_token = cx.persist(ops);
                    if self.tokens.len() < MAPPED_TOKENS_MAX {
                        self.tokens.insert(driver_token, token);
                        self.inner_tokens.insert(token, driver_token);
                    }
                }
                Effect::Charge(work) => cx.charge(work),
            }
        }
    }
}

/// Why a threaded protocol could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThreadedError<E> {
    /// The protocol's constructor failed.
    #[error("{0}")]
    Build(E),
    /// The thread could not be created.
    #[error("cannot start the protocol thread: {0}")]
    Thread(std::io::Error),
    /// The thread ended before reporting.
    #[error("the protocol thread ended while starting")]
    Died,
}

impl<P> Protocol for ThreadedProtocol<P>
where
    P: Protocol + 'static,
    P::Message: Send,
    P::Timer: Send,
    P::Request: Send,
    P::Output: Send,
{
    type Message = P::Message;
    type Timer = P::Timer;
    type Request = P::Request;
    type Output = P::Output;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.forward(cx, Input::Start);
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: P::Message) {
        self.forward(cx, Input::Message(from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: P::Timer) {
        self.forward(cx, Input::Timer(timer));
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: P::Request) {
        self.forward(cx, Input::Request(request));
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        if let Some(inner) = self.tokens.remove(&token) {
            self.inner_tokens.remove(&inner);
            self.forward(cx, Input::Persisted(inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use rand_chacha::ChaCha8Rng;
    use stockade_core::StoreOp;

    use super::*;

    /// Not `Send` (it holds an `Rc`): persists each request and sends it once durable; delivers
    /// the token of each durable batch.
    struct Persister {
        _not_send: Rc<()>,
    }

    impl Protocol for Persister {
        type Message = u64;
        type Timer = ();
        type Request = u64;
        type Output = u64;
        fn on_start(&mut self, cx: &mut Context<'_, Self>) {
            cx.set_timer((), std::time::Duration::from_millis(3));
        }
        fn on_message(&mut self, _: &mut Context<'_, Self>, _: NodeId, _: u64) {}
        fn on_timer(&mut self, _: &mut Context<'_, Self>, _: ()) {}
        fn on_request(&mut self, cx: &mut Context<'_, Self>, n: u64) {
            let token = cx.persist(vec![StoreOp::Put {
                key: b"n".to_vec(),
                value: n.to_le_bytes().to_vec(),
            }]);
            cx.send_after(token, NodeId(1), n);
        }
        fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
            cx.deliver(token.0);
        }
    }

    fn call(
        p: &mut ThreadedProtocol<Persister>,
        next_token: &mut u64,
        f: impl FnOnce(&mut ThreadedProtocol<Persister>, &mut Context<'_, ThreadedProtocol<Persister>>),
    ) -> Vec<Effect<ThreadedProtocol<Persister>>> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut cx = Context::new(
            Time::from_millis(10),
            NodeId(0),
            &mut rng,
            next_token,
            Vec::new(),
        );
        f(p, &mut cx);
        cx.into_effects()
    }

    #[test]
    fn calls_run_on_the_thread_and_persist_tokens_are_mapped() {
        let mut p = ThreadedProtocol::spawn("test".into(), [0; 32], || {
            Ok::<_, String>(Persister {
                _not_send: Rc::new(()),
            })
        })
        .expect("starts");
        let mut driver_tokens = 100;
        let start = call(&mut p, &mut driver_tokens, |p, cx| p.on_start(cx));
        assert!(matches!(start[..], [Effect::SetTimer { at, .. }] if at == Time::from_millis(13)));
        let effects = call(&mut p, &mut driver_tokens, |p, cx| p.on_request(cx, 7));
        assert!(
            matches!(
                &effects[..],
                [
                    Effect::Persist {
                        token: PersistToken(100),
                        ..
                    },
                    Effect::Send {
                        to: NodeId(1),
                        message: 7,
                        after: Some(PersistToken(100))
                    }
                ]
            ),
            "the inner token 0 became the driver's 100: {effects:?}"
        );
        let durable = call(&mut p, &mut driver_tokens, |p, cx| {
            p.on_persisted(cx, PersistToken(100))
        });
        assert!(
            matches!(durable[..], [Effect::Deliver(0)]),
            "the inner protocol hears of its own token: {durable:?}"
        );
        let unknown = call(&mut p, &mut driver_tokens, |p, cx| {
            p.on_persisted(cx, PersistToken(100))
        });
        assert!(unknown.is_empty(), "a token is forwarded once");
    }

    #[test]
    fn a_failing_constructor_is_reported() {
        let result = ThreadedProtocol::<Persister>::spawn("test".into(), [0; 32], || {
            Err::<Persister, _>("no".to_string())
        });
        assert!(matches!(result, Err(ThreadedError::Build(e)) if e == "no"));
    }
}
