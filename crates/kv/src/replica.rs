//! [`KvReplica`]: one Prime server replicating [`ReplicatedKv`], as a sans-IO protocol a driver
//! (the runtime or the simulator) runs directly.
//!
//! It runs Prime as a child protocol and, after every call, turns what execution queued in the
//! [`PersistOutbox`] into persist effects: the changed keys and the executed slot of each batch
//! become durable as one atomic batch (see [`crate::checkpoint`]), so a restarted server recovers
//! with [`KvReplica::recover`].
//!
//! Two kinds of records share the store, under disjoint prefixes:
//! - Prime's own (`prime/...`, [`Prime::recover`]): its view, its PO-REQUESTs, acks, summary and
//!   votes, each durable before the message that promises it leaves, so a restarted server never
//!   reuses a PO-REQUEST number or contradicts a vote and may originate updates again.
//! - The application's (`kv/...`, [`ReplicatedKv::recover`]): every key and the last executed
//!   slot, one atomic batch per executed batch (or all keys after a checkpoint JUMP).
//!
//! They are independent batches, persisted in the order they were produced: Prime records no
//! execution position, so a restarted Prime re-learns executed slots from its peers (by catch-up
//! or JUMP) and the application skips the slots its own record already holds. A crash between the
//! two batches loses at most the application's last batch, which catch-up executes again; nothing
//! is applied twice because the application's record carries the slot its keys reflect.

use stockade_core::{Context, InvariantViolation, NodeId, PersistToken, Protocol, StoreRead};
use stockade_replication::auth::MessageAuth;
use stockade_replication::persist::RecoverError;
use stockade_replication::{Attack, PrimeOutput, PrimeTimer, Update};
use stockade_replication::{Membership, ParticipantId, Prime, PrimeConfig, PrimeMessage};
use thiserror::Error;

use crate::attack::AttackSchedule;
use crate::checkpoint::CheckpointError;
use crate::limits::Limits;
use crate::replicated::{PersistOutbox, ReplicatedKv};

/// Why a replica could not be built.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// The Prime configuration does not fit the membership, or Prime's own records in the data
    /// directory are unreadable.
    #[error("cannot rebuild the Prime server: {0}")]
    Prime(#[from] RecoverError),
    /// The data directory holds key-value records this build cannot read.
    #[error("cannot recover the key-value state from the data directory: {0}")]
    Recover(#[from] CheckpointError),
}

/// What the driver asks of a [`KvReplica`].
#[derive(Clone, Debug, PartialEq)]
pub enum ReplicaRequest {
    /// An update of one of this server's own clients (its RESP port).
    Update(Update),
    /// Change Prime's attack switches now (demonstrations and tests): honoured only by a replica
    /// built [`KvReplica::allowing_attack_requests`], ignored by every other.
    SetAttack(Attack),
}

impl From<Update> for ReplicaRequest {
    fn from(update: Update) -> ReplicaRequest {
        ReplicaRequest::Update(update)
    }
}

/// A Prime server replicating the key-value state. See the module documentation.
pub struct KvReplica {
    prime: Prime<ReplicatedKv>,
    outbox: PersistOutbox,
    /// Only on a server configured to misbehave on purpose (`[attack]`): none on a correct one.
    attack_schedule: Option<AttackSchedule>,
    /// Whether [`ReplicaRequest::SetAttack`] is honoured (a server configured with `[attack]`).
    attack_requests_allowed: bool,
}

impl KvReplica {
    /// Participant `me` of `membership`, rebuilt from what `store` holds (nothing for a new
    /// server), signing with `auth`: Prime's records through [`Prime::recover`], the key-value
    /// state through [`ReplicatedKv::recover`].
    pub fn recover(
        cfg: PrimeConfig,
        membership: Membership,
        me: ParticipantId,
        auth: Box<dyn MessageAuth>,
        store: &dyn StoreRead,
        limits: Limits,
    ) -> Result<KvReplica, ReplicaError> {
        let outbox = PersistOutbox::default();
        let app = ReplicatedKv::recover(store, limits, outbox.clone())?;
        let prime = Prime::recover(cfg, membership, me, auth, app, store)?;
        Ok(KvReplica {
            prime,
            outbox,
            attack_schedule: None,
            attack_requests_allowed: false,
        })
    }

    /// Make this server misbehave as `schedule` says (demonstrations and tests only): its time is
    /// the driver's, so a runtime node switches the attack on `from` after it started.
    pub fn with_attack_schedule(mut self, schedule: AttackSchedule) -> KvReplica {
        self.attack_schedule = Some(schedule);
        self
    }

    /// Honour [`ReplicaRequest::SetAttack`] (demonstrations and tests only); the latest of a
    /// request and a schedule's change wins.
    pub fn allowing_attack_requests(mut self) -> KvReplica {
        self.attack_requests_allowed = true;
        self
    }

    /// The Prime server (its application is [`Prime::app`]).
    pub fn prime(&self) -> &Prime<ReplicatedKv> {
        &self.prime
    }

    /// Run `call` on Prime, pass its outputs on, then persist what execution changed.
    fn with_prime(
        &mut self,
        cx: &mut Context<'_, Self>,
        call: impl FnOnce(&mut Prime<ReplicatedKv>, &mut Context<'_, Prime<ReplicatedKv>>),
    ) {
        if let Some(attack) = self
            .attack_schedule
            .as_mut()
            .and_then(|schedule| schedule.change_at(cx.now()))
        {
            self.prime.set_attack(attack);
        }
        let prime = &mut self.prime;
        let outputs = cx.child(|m| m, |t| t, |child| call(prime, child));
        for output in outputs {
            cx.deliver(output);
        }
        for ops in self.outbox.drain() {
            cx.persist(ops);
        }
    }
}

impl Protocol for KvReplica {
    type Message = PrimeMessage;
    type Timer = PrimeTimer;
    type Request = ReplicaRequest;
    type Output = PrimeOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.with_prime(cx, |p, cx| p.on_start(cx));
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: PrimeMessage) {
        self.with_prime(cx, |p, cx| p.on_message(cx, from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: PrimeTimer) {
        self.with_prime(cx, |p, cx| p.on_timer(cx, timer));
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: ReplicaRequest) {
        match request {
            ReplicaRequest::Update(update) => {
                self.with_prime(cx, |p, cx| p.on_request(cx, update));
            }
            ReplicaRequest::SetAttack(attack) if self.attack_requests_allowed => {
                self.prime.set_attack(attack);
            }
            // A correct server has no attack switches to turn.
            ReplicaRequest::SetAttack(_) => {}
        }
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        self.with_prime(cx, |p, cx| p.on_persisted(cx, token));
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.prime.check_invariants()?;
        self.prime.app().state().check_invariants()
    }
}
