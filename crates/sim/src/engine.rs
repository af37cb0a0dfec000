//! The event loop: what each event does to nodes and network, how a handler's effects are carried
//! out (after its virtual CPU work, through its adversary if any), and the checks after each event.

use std::time::Duration;

use stockade_core::{Context, Effect, NodeId, PersistToken, Protocol, Time, Wire};

use crate::byzantine::{Action, AdversaryCx, OutgoingSend, Payload};
use crate::checker::{Checker, SimError, WorldView};
use crate::config::{Fault, SimConfig};
use crate::network::{DropReason, Transmission};
use crate::node::{Input, NodeStatus};
use crate::world::{Delivery, OutputSink, Progress, World};

/// Something due at a time. Large or rare payloads are boxed to keep queue entries small.
pub(crate) enum Event<P: Protocol> {
    Start {
        node: u32,
        incarnation: u32,
    },
    Arrive {
        from: NodeId,
        to: NodeId,
        payload: Payload<P::Message>,
    },
    /// A send an adversary delayed: it enters the network now.
    Transmit {
        from: NodeId,
        to: NodeId,
        payload: Payload<P::Message>,
    },
    Timer {
        node: u32,
        incarnation: u32,
        timer: P::Timer,
        generation: u64,
    },
    PersistDone {
        node: u32,
        incarnation: u32,
        token: PersistToken,
    },
    /// The node's CPU finished: release the last handler's effects and take queued inputs.
    Wake {
        node: u32,
        incarnation: u32,
    },
    Request {
        node: u32,
        request: Box<P::Request>,
    },
    Fault(Box<Fault>),
}

// Kind codes folded into the event digest.
const KIND_START: u8 = 0;
const KIND_ARRIVE: u8 = 1;
const KIND_TRANSMIT: u8 = 2;
const KIND_TIMER: u8 = 3;
const KIND_PERSIST: u8 = 4;
const KIND_WAKE: u8 = 5;
const KIND_REQUEST: u8 = 6;
const KIND_FAULT: u8 = 7;

fn checker_failure<P: Protocol>(
    checker: &dyn Checker<P>,
    at: Time,
    message: String,
    config: &SimConfig,
) -> SimError {
    SimError::Checker {
        checker: checker.name().to_string(),
        at,
        message,
        repro: config.repro(),
    }
}

impl<P: Protocol> World<P> {
    /// Process the earliest event. Returns `false` when nothing is pending.
    pub fn step(&mut self) -> Result<bool, SimError> {
        let Some((at, event)) = self.queue.pop() else {
            return Ok(false);
        };
        debug_assert!(at >= self.now, "time never goes backwards");
        if let Some(sampler) = &mut self.counter_sampler {
            sampler.before_event(&mut self.metrics, at);
        }
        self.now = at;
        self.metrics.sim.events += 1;
        self.handle(event)?;
        if self.queue.len() > self.config.pending_events_max {
            return Err(SimError::EventQueueFull {
                pending: self.queue.len(),
                max: self.config.pending_events_max,
                at: self.now,
                repro: self.config.repro(),
            });
        }
        if !self.checkers.is_empty() {
            let view = WorldView {
                now: self.now,
                nodes: &self.nodes,
            };
            for checker in &mut self.checkers {
                let verdict = checker.after_event(&view);
                verdict.map_err(|message| {
                    checker_failure(&**checker, self.now, message, &self.config)
                })?;
            }
        }
        self.tick_progress();
        Ok(true)
    }

    /// Call the progress hook if simulated time passed its next mark.
    pub(crate) fn tick_progress(&mut self) {
        if let Some(hook) = &mut self.progress {
            if self.now >= hook.next_at {
                while hook.next_at <= self.now {
                    hook.next_at += hook.every.max(Duration::from_nanos(1));
                }
                (hook.callback)(&Progress {
                    now: self.now,
                    events: self.metrics.sim.events,
                    queue_len: self.queue.len(),
                    wall: self.wall,
                });
            }
        }
    }

    fn handle(&mut self, event: Event<P>) -> Result<(), SimError> {
        let at = self.now.as_nanos();
        match event {
            Event::Start { node, incarnation } => {
                self.digest.record(at, KIND_START, node, 0);
                if self.is_current(node, incarnation) {
                    self.input(node as usize, Input::Start)?;
                }
            }
            Event::Arrive { from, to, payload } => {
                self.digest.record(
                    at,
                    KIND_ARRIVE,
                    to.0,
                    ((from.0 as u64) << 32) | payload.wire_len() as u64,
                );
                self.arrive(from, to, payload)?;
            }
            Event::Transmit { from, to, payload } => {
                self.digest.record(at, KIND_TRANSMIT, from.0, to.0 as u64);
                self.transmit(from, to, payload);
            }
            Event::Timer {
                node,
                incarnation,
                timer,
                generation,
            } => {
                self.digest.record(at, KIND_TIMER, node, generation);
                if self.is_current(node, incarnation) {
                    self.input(node as usize, Input::Timer { timer, generation })?;
                }
            }
            Event::PersistDone {
                node,
                incarnation,
                token,
            } => {
                self.digest.record(at, KIND_PERSIST, node, token.0);
                if self.is_current(node, incarnation) {
                    self.persist_done(node as usize, token)?;
                }
            }
            Event::Wake { node, incarnation } => {
                self.digest.record(at, KIND_WAKE, node, 0);
                if self.is_current(node, incarnation) {
                    self.wake(node as usize)?;
                }
            }
            Event::Request { node, request } => {
                self.digest.record(at, KIND_REQUEST, node, 0);
                if (node as usize) < self.nodes.len() {
                    self.input(node as usize, Input::Request(*request))?;
                } else {
                    self.metrics.sim.requests_dropped += 1;
                }
            }
            Event::Fault(fault) => {
                self.digest.record(at, KIND_FAULT, 0, 0);
                if self.faults_enabled {
                    self.apply_fault(*fault)?;
                }
            }
        }
        Ok(())
    }

    fn is_current(&self, node: u32, incarnation: u32) -> bool {
        self.nodes
            .get(node as usize)
            .is_some_and(|n| n.incarnation == incarnation && n.status != NodeStatus::Crashed)
    }

    /// Apply a fault now.
    pub fn apply_fault(&mut self, fault: Fault) -> Result<(), SimError> {
        let now = self.now;
        match fault {
            Fault::Crash(id) => {
                let node = self.node_mut(id)?;
                if node.status != NodeStatus::Crashed {
                    let (persists, sends) = node.crash(now);
                    self.metrics.sim.crashes += 1;
                    self.metrics.sim.persists_lost += persists;
                    self.metrics.sim.held_sends_lost += sends;
                }
            }
            Fault::Restart(id) => {
                if self.node_mut(id)?.status == NodeStatus::Crashed {
                    let protocol = (self.factory)(id, &self.nodes[id.index()].store);
                    let node = &mut self.nodes[id.index()];
                    node.protocol = Some(protocol);
                    node.status = NodeStatus::Up;
                    self.metrics.sim.restarts += 1;
                    self.input(id.index(), Input::Start)?;
                }
            }
            Fault::Pause(id) => {
                let node = self.node_mut(id)?;
                if node.status == NodeStatus::Up {
                    node.status = NodeStatus::Paused;
                }
            }
            Fault::Resume(id) => {
                let node = self.node_mut(id)?;
                if node.status == NodeStatus::Paused {
                    node.status = NodeStatus::Up;
                    if !node.inbox.is_empty() || node.has_pending_effects() {
                        self.ensure_wake(id.index());
                    }
                }
            }
            Fault::Partition(groups) => self.network.partition(&groups),
            Fault::Isolate(id) => self.network.isolate(id),
            Fault::Clog { from, to, until } => self.network.clog(from, to, until)?,
            Fault::SetLink { from, to, spec } => self.network.set_link(from, to, spec)?,
            Fault::SetClock(id, clock) => self.node_mut(id)?.clock = clock,
            Fault::Heal => self.network.heal(),
        }
        Ok(())
    }

    /// Hand `input` to node `i`: now if it is ready, else into its inbox.
    fn input(&mut self, i: usize, input: Input<P>) -> Result<(), SimError> {
        let now = self.now;
        let node = &mut self.nodes[i];
        match node.status {
            NodeStatus::Crashed => {
                match input {
                    Input::Message { .. } => self.metrics.sim.dropped_receiver_down += 1,
                    Input::Request(_) => self.metrics.sim.requests_dropped += 1,
                    _ => {}
                }
                Ok(())
            }
            NodeStatus::Up if node.ready(now) => self.run_handler(i, input),
            NodeStatus::Up | NodeStatus::Paused => {
                if input.is_message() && node.inbox.len() >= self.config.inbox_len_max {
                    self.metrics.sim.dropped_inbox_full += 1;
                } else {
                    node.inbox.push_back(input);
                }
                if node.status == NodeStatus::Up {
                    self.ensure_wake(i);
                }
                Ok(())
            }
        }
    }

    fn ensure_wake(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.status == NodeStatus::Up && !node.wake_scheduled {
            node.wake_scheduled = true;
            let at = node.cpu_busy_until.max(self.now);
            self.queue.push(
                at,
                Event::Wake {
                    node: i as u32,
                    incarnation: node.incarnation,
                },
            );
        }
    }

    fn wake(&mut self, i: usize) -> Result<(), SimError> {
        let now = self.now;
        self.nodes[i].wake_scheduled = false;
        if self.nodes[i].status != NodeStatus::Up {
            return Ok(());
        }
        if self.nodes[i].cpu_busy_until > now {
            self.ensure_wake(i);
            return Ok(());
        }
        let mut pending = match &mut self.nodes[i].cold {
            Some(cold) => std::mem::take(&mut cold.pending_effects),
            None => Vec::new(),
        };
        if !pending.is_empty() {
            self.apply_effects(i, &mut pending)?;
        }
        if self.effects_buf.capacity() == 0 {
            self.effects_buf = pending;
        }
        loop {
            let node = &mut self.nodes[i];
            if node.status != NodeStatus::Up || node.cpu_busy_until > now || node.wake_scheduled {
                break;
            }
            let Some(input) = node.inbox.pop_front() else {
                break;
            };
            self.run_handler(i, input)?;
        }
        if !self.nodes[i].inbox.is_empty() {
            self.ensure_wake(i);
        }
        Ok(())
    }

    /// Call the protocol of node `i` with `input`, check its invariants, and carry out its effects
    /// now or, if it charged CPU work, when that work is done.
    fn run_handler(&mut self, i: usize, input: Input<P>) -> Result<(), SimError> {
        let now = self.now;
        let id = NodeId(i as u32);
        let node = &mut self.nodes[i];
        if let Input::Timer { timer, generation } = &input {
            // A timer reset or cancelled after this deadline was queued is stale.
            if node.timers.get(timer) != Some(*generation) {
                return Ok(());
            }
            node.timers.remove(timer);
            self.metrics.sim.timers_fired += 1;
        }
        if let Some(tracer) = &mut self.tracer {
            tracer(now, id, format_args!("input {input:?}"));
        }
        let local_now = node.local_now(now);
        let Some(protocol) = node.protocol.as_mut() else {
            return Ok(());
        };
        let buffer = std::mem::take(&mut self.effects_buf);
        let mut cx: Context<'_, P> =
            Context::new(local_now, id, &mut self.rng, &mut node.next_token, buffer);
        match input {
            Input::Start => protocol.on_start(&mut cx),
            Input::Message { from, message } => {
                self.metrics.sim.messages_delivered += 1;
                protocol.on_message(&mut cx, from, message)
            }
            Input::Timer { timer, .. } => protocol.on_timer(&mut cx, timer),
            Input::Persisted(token) => protocol.on_persisted(&mut cx, token),
            Input::Request(request) => protocol.on_request(&mut cx, request),
        }
        let mut effects = cx.into_effects();
        if self.config.check_invariants {
            if let Err(violation) = protocol.check_invariants() {
                return Err(SimError::Invariant {
                    node: id,
                    at: now,
                    violation,
                    repro: self.config.repro(),
                });
            }
        }
        let mut cpu_ns = 0u64;
        for effect in &effects {
            if let Effect::Charge(work) = effect {
                cpu_ns = cpu_ns.saturating_add(self.config.cost_table.nanos(*work));
            }
        }
        if cpu_ns == 0 {
            self.apply_effects(i, &mut effects)?;
            self.effects_buf = effects;
        } else {
            // The handler's effects leave when its CPU work is done; inputs wait until then.
            self.metrics.sim.cpu_busy_ns += cpu_ns;
            let node = &mut self.nodes[i];
            node.cpu_busy_until = now + Duration::from_nanos(cpu_ns);
            node.cold_mut().pending_effects = effects;
            self.ensure_wake(i);
        }
        Ok(())
    }

    /// Carry out `effects` of node `i` in order, through its adversary if it has one.
    fn apply_effects(&mut self, i: usize, effects: &mut Vec<Effect<P>>) -> Result<(), SimError> {
        if self.nodes[i].adversary.is_none() {
            for effect in effects.drain(..) {
                self.apply_effect(i, effect)?;
            }
            return Ok(());
        }
        let mut actions = std::mem::take(&mut self.action_buf);
        for effect in effects.drain(..) {
            if let Some(mut adversary) = self.nodes[i].adversary.take() {
                let mut cx = AdversaryCx {
                    now: self.now,
                    me: NodeId(i as u32),
                    rng: &mut self.rng,
                };
                adversary.on_effect(&mut cx, effect, &mut actions);
                self.nodes[i].adversary = Some(adversary);
            }
            for action in actions.drain(..) {
                match action {
                    Action::Effect(e) => self.apply_effect(i, e)?,
                    Action::Send(send) => self.send(i, send),
                }
            }
        }
        self.action_buf = actions;
        Ok(())
    }

    fn apply_effect(&mut self, i: usize, effect: Effect<P>) -> Result<(), SimError> {
        let now = self.now;
        if let Some(tracer) = &mut self.tracer {
            tracer(now, NodeId(i as u32), format_args!("effect {effect:?}"));
        }
        match effect {
            Effect::Send { to, message, after } => {
                self.send(
                    i,
                    OutgoingSend {
                        to,
                        payload: Payload::Message(message),
                        after,
                        delay: Duration::ZERO,
                    },
                );
            }
            Effect::SetTimer { timer, at } => {
                let node = &mut self.nodes[i];
                node.timer_generation += 1;
                let generation = node.timer_generation;
                let due = node.clock.true_time_of(at).max(now);
                let incarnation = node.incarnation;
                node.timers.insert(timer.clone(), generation);
                self.queue.push(
                    due,
                    Event::Timer {
                        node: i as u32,
                        incarnation,
                        timer,
                        generation,
                    },
                );
            }
            Effect::CancelTimer { timer } => {
                self.nodes[i].timers.remove(&timer);
            }
            Effect::Deliver(output) => self.output(i, output)?,
            Effect::Persist { token, ops } => {
                let node = &mut self.nodes[i];
                let incarnation = node.incarnation;
                let cold = node.cold_mut();
                let done = (now + self.config.persist_latency).max(cold.persist_done_last);
                cold.persist_done_last = done;
                cold.persists_in_flight.push_back((token, ops));
                self.queue.push(
                    done,
                    Event::PersistDone {
                        node: i as u32,
                        incarnation,
                        token,
                    },
                );
            }
            Effect::Charge(_) => {} // already turned into CPU time by `run_handler`
        }
        Ok(())
    }

    /// A send from node `i`: held behind its persist, delayed, or into the network now.
    fn send(&mut self, i: usize, send: OutgoingSend<P::Message>) {
        let node = &mut self.nodes[i];
        if let Some(token) = send.after {
            if node.persist_in_flight(token) {
                node.cold_mut().held_sends.push((token, send));
                return;
            }
        }
        let from = NodeId(i as u32);
        if send.delay > Duration::ZERO {
            self.queue.push(
                self.now + send.delay,
                Event::Transmit {
                    from,
                    to: send.to,
                    payload: send.payload,
                },
            );
        } else {
            self.transmit(from, send.to, send.payload);
        }
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, payload: Payload<P::Message>) {
        let bytes = payload.wire_len() as u64 + self.config.packet_overhead_bytes as u64;
        let sim = &mut self.metrics.sim;
        sim.messages_sent += 1;
        sim.bytes_sent += bytes;
        match self
            .network
            .transmit(self.now, from, to, bytes, &mut self.rng)
        {
            Transmission::Dropped(reason) => {
                if let Some(tracer) = &mut self.tracer {
                    tracer(
                        self.now,
                        from,
                        format_args!("dropped packet to {to}: {reason:?}"),
                    );
                }
                match reason {
                    DropReason::Partitioned => sim.dropped_partitioned += 1,
                    DropReason::NoLink => sim.dropped_no_link += 1,
                    DropReason::LinkBuffer => sim.dropped_link_buffer += 1,
                    DropReason::SiteBuffer => sim.dropped_site_buffer += 1,
                    DropReason::Loss => sim.dropped_loss += 1,
                }
            }
            Transmission::Sent { arrival, duplicate } => {
                if let Some(copy_at) = duplicate {
                    sim.duplicated += 1;
                    self.queue.push(
                        copy_at,
                        Event::Arrive {
                            from,
                            to,
                            payload: payload.clone(),
                        },
                    );
                }
                self.queue
                    .push(arrival, Event::Arrive { from, to, payload });
            }
        }
    }

    fn arrive(
        &mut self,
        from: NodeId,
        to: NodeId,
        payload: Payload<P::Message>,
    ) -> Result<(), SimError> {
        // A partition that appeared while the packet was in flight cuts it too.
        if !self.network.can_talk(from, to) {
            self.metrics.sim.dropped_partitioned += 1;
            return Ok(());
        }
        let Some(node) = self.nodes.get_mut(to.index()) else {
            self.metrics.sim.dropped_no_link += 1;
            return Ok(());
        };
        if node.status == NodeStatus::Crashed {
            self.metrics.sim.dropped_receiver_down += 1;
            return Ok(());
        }
        let message = match payload {
            Payload::Message(m) => m,
            // Untrusted bytes: decoded under the configured bounds, failures counted and dropped.
            Payload::Raw(bytes) => {
                match P::Message::from_bytes(&bytes, self.config.decode_limits) {
                    Ok(m) => m,
                    Err(error) => {
                        if let Some(tracer) = &mut self.tracer {
                            tracer(
                                self.now,
                                to,
                                format_args!("undecodable bytes from {from}: {error}"),
                            );
                        }
                        self.metrics.sim.decode_failures += 1;
                        return Ok(());
                    }
                }
            }
        };
        let message = match node.adversary.take() {
            Some(mut adversary) => {
                let mut cx = AdversaryCx {
                    now: self.now,
                    me: to,
                    rng: &mut self.rng,
                };
                let kept = adversary.on_receive(&mut cx, from, message);
                node.adversary = Some(adversary);
                match kept {
                    Some(m) => m,
                    None => {
                        self.metrics.sim.dropped_by_adversary += 1;
                        return Ok(());
                    }
                }
            }
            None => message,
        };
        self.input(to.index(), Input::Message { from, message })
    }

    fn persist_done(&mut self, i: usize, token: PersistToken) -> Result<(), SimError> {
        let node = &mut self.nodes[i];
        let Some(cold) = node.cold.as_mut() else {
            return Ok(());
        };
        let Some(position) = cold
            .persists_in_flight
            .iter()
            .position(|(t, _)| *t == token)
        else {
            return Ok(());
        };
        if let Some((_, ops)) = cold.persists_in_flight.remove(position) {
            node.store.apply(&ops);
        }
        self.metrics.sim.persists_completed += 1;
        if cold.held_sends.iter().any(|(t, _)| *t == token) {
            let (released, kept) = std::mem::take(&mut cold.held_sends)
                .into_iter()
                .partition(|(t, _)| *t == token);
            cold.held_sends = kept;
            let released: Vec<(PersistToken, OutgoingSend<P::Message>)> = released;
            for (_, send) in released {
                self.send(
                    i,
                    OutgoingSend {
                        after: None,
                        ..send
                    },
                );
            }
        }
        self.input(i, Input::Persisted(token))
    }

    fn output(&mut self, i: usize, output: P::Output) -> Result<(), SimError> {
        let node = NodeId(i as u32);
        self.metrics.sim.outputs += 1;
        for checker in &mut self.checkers {
            let verdict = checker.on_output(self.now, node, &output);
            verdict
                .map_err(|message| checker_failure(&**checker, self.now, message, &self.config))?;
        }
        match &mut self.output_sink {
            OutputSink::Record => {
                if self.outputs.len() < self.config.output_log_len_max {
                    self.outputs.push(Delivery {
                        at: self.now,
                        node,
                        output,
                    });
                } else {
                    self.metrics.sim.outputs_not_logged += 1;
                }
            }
            OutputSink::Discard => {}
            OutputSink::Handler(handler) => handler(self.now, node, output, &mut self.metrics),
        }
        Ok(())
    }
}
