//! Checkpoints and state transfer (PRIME.md "Catch-up and recovery": "a server more than a bounded
//! number of slots behind receives a JUMP ... and the application performs state transfer from a
//! checkpoint").
//!
//! Every `checkpoint_interval` executed slots a server snapshots its execution state (the
//! application's checkpoint, the eligibility vector, the client table, the agreed time) and
//! broadcasts a signed CHECKPOINT of its digest; 2f+k+1 matching ones make it stable. A server
//! asking for ordering certificates that are no longer retained gets a JUMP: the stable checkpoint's
//! proof and the snapshot's length. It then fetches the snapshot in chunks, each checked against the
//! proven digest ([`crate::state_transfer`]), and restores it.

use std::collections::BTreeMap;

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{Context, DecodeLimits};

use crate::app::Application;
use crate::auth::Signed;
use crate::config::{ParticipantId, PARTICIPANTS_MAX};
use crate::execute::ClientRecord;
use crate::messages::{ClientId, Digest, PrimeMessage};
use crate::replica::Prime;
use crate::state_transfer::{charge_snapshot_hashing, SnapshotImage, SNAPSHOT_CHUNK_BYTES};

/// The largest snapshot state transfer supports (4096 chunks); `PrimeConfig::snapshot_bytes_max`
/// may lower it. A server whose snapshot exceeds the bound cannot be jumped to it.
pub const SNAPSHOT_BYTES_MAX: usize = 4096 * SNAPSHOT_CHUNK_BYTES;
/// Clients a snapshot's client table may hold on the wire.
const SNAPSHOT_CLIENTS_WIRE_MAX: usize = 4096;
/// Slots above the stable checkpoint whose CHECKPOINT votes are collected.
const CHECKPOINT_VOTE_SLOTS_MAX: usize = 4;

/// CHECKPOINT: the sender's execution state after `seq` has this digest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    /// The executed slot.
    pub seq: u64,
    /// Digest of the snapshot.
    pub digest: Digest,
}

impl Wire for Checkpoint {
    fn encode(&self, out: &mut Vec<u8>) {
        self.seq.encode(out);
        self.digest.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Checkpoint {
            seq: u64::decode(r)?,
            digest: Digest::decode(r)?,
        })
    }
}

impl crate::auth::SignedBody for Checkpoint {
    const DOMAIN: &'static [u8] = b"prime/checkpoint";
}

/// JUMP: a stable checkpoint's proof and the length of its snapshot (fetched in chunks).
#[derive(Clone, PartialEq, Debug)]
pub struct Jump {
    /// 2f+k+1 matching CHECKPOINTs from distinct participants.
    pub proof: Vec<Signed<Checkpoint>>,
    /// Bytes of the snapshot whose digest they sign (bound into that digest).
    pub snapshot_bytes: u64,
}

impl Wire for Jump {
    fn encode(&self, out: &mut Vec<u8>) {
        self.proof.encode(out);
        self.snapshot_bytes.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let proof = r.vec_of("jump proof", PARTICIPANTS_MAX)?;
        let snapshot_bytes = u64::decode(r)?;
        Ok(Jump {
            proof,
            snapshot_bytes,
        })
    }
}

/// Execution state after one slot: what a JUMP restores.
#[derive(Clone, PartialEq, Debug)]
struct Snapshot {
    executed_seq: u64,
    timestamp_ms: u64,
    last_executed: Vec<u64>,
    clients: Vec<(ClientId, (u64, u64, u64))>,
    app: Vec<u8>,
}

impl Wire for Snapshot {
    fn encode(&self, out: &mut Vec<u8>) {
        self.executed_seq.encode(out);
        self.timestamp_ms.encode(out);
        self.last_executed.encode(out);
        self.clients.encode(out);
        self.app.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            executed_seq: u64::decode(r)?,
            timestamp_ms: u64::decode(r)?,
            last_executed: r.vec_of("snapshot vector", PARTICIPANTS_MAX)?,
            clients: r.vec_of("snapshot clients", SNAPSHOT_CLIENTS_WIRE_MAX)?,
            app: r.byte_vec("snapshot application state", SNAPSHOT_BYTES_MAX)?,
        })
    }
}

/// Checkpoint state.
#[derive(Default, Debug)]
pub(crate) struct CheckpointState {
    /// Our latest snapshot: (slot, image).
    own: Option<(u64, SnapshotImage)>,
    /// CHECKPOINT votes above the stable checkpoint, per slot (bounded by
    /// `CHECKPOINT_VOTE_SLOTS_MAX` slots, one vote per participant each).
    votes: BTreeMap<u64, BTreeMap<ParticipantId, Signed<Checkpoint>>>,
    /// The latest stable checkpoint we hold the snapshot of, with its proof.
    pub(crate) stable: Option<(u64, Vec<Signed<Checkpoint>>, SnapshotImage)>,
    /// JUMPs applied (for tests and metrics).
    pub(crate) jumps: u64,
}

impl CheckpointState {
    /// The snapshot of our stable checkpoint at `seq`, if that is the one we hold.
    pub(crate) fn stable_image(&self, seq: u64) -> Option<&SnapshotImage> {
        self.stable
            .as_ref()
            .filter(|(stable_seq, ..)| *stable_seq == seq)
            .map(|(.., image)| image)
    }
}

impl<A: Application> Prime<A> {
    /// After executing `seq`: snapshot and announce it every `checkpoint_interval` slots.
    pub(crate) fn checkpoint_if_due(&mut self, cx: &mut Context<'_, Self>) {
        let seq = self.exec.executed_seq;
        if seq == 0 || !seq.is_multiple_of(self.cfg.checkpoint_interval) {
            return;
        }
        let snapshot = Snapshot {
            executed_seq: seq,
            timestamp_ms: self.exec.timestamp_ms,
            last_executed: self.exec.last_executed.clone(),
            clients: self
                .exec
                .clients
                .iter()
                .map(|(c, r)| (*c, (r.incarnation, r.seq, r.global_seq)))
                .collect(),
            app: self.app.checkpoint(),
        };
        // Past the Merkle tree's leaf bound there is no checkpoint (and no state transfer).
        let bytes = snapshot.to_bytes();
        charge_snapshot_hashing(cx, bytes.len());
        let Some(image) = SnapshotImage::new(bytes) else {
            return;
        };
        let digest = image.digest();
        self.checkpoints.own = Some((seq, image));
        let vote = self.sign(cx, Checkpoint { seq, digest });
        self.broadcast(cx, &PrimeMessage::Checkpoint(vote.clone()));
        self.count_checkpoint_vote(vote);
    }

    pub(crate) fn on_checkpoint(&mut self, cx: &mut Context<'_, Self>, vote: Signed<Checkpoint>) {
        let stable_seq = self.checkpoints.stable.as_ref().map_or(0, |s| s.0);
        let known = self.checkpoints.votes.contains_key(&vote.body.seq);
        if vote.body.seq <= stable_seq
            || (!known && self.checkpoints.votes.len() >= CHECKPOINT_VOTE_SLOTS_MAX)
        {
            self.drops.out_of_window += 1;
            return;
        }
        if self.verify(cx, &vote) {
            self.count_checkpoint_vote(vote);
        }
    }

    /// A checkpoint becomes stable with 2f+k+1 matching votes and our own matching snapshot.
    fn count_checkpoint_vote(&mut self, vote: Signed<Checkpoint>) {
        let seq = vote.body.seq;
        self.checkpoints
            .votes
            .entry(seq)
            .or_default()
            .entry(vote.signer)
            .or_insert(vote);
        let Some((own_seq, image)) = self.checkpoints.own.clone() else {
            return;
        };
        if own_seq != seq {
            return;
        }
        let digest = image.digest();
        let proof: Vec<Signed<Checkpoint>> = self.checkpoints.votes[&seq]
            .values()
            .filter(|v| v.body.digest == digest)
            .cloned()
            .collect();
        if proof.len() >= self.cfg.quorums.certificate() {
            self.checkpoints.stable = Some((seq, proof, image));
            self.checkpoints.votes = self.checkpoints.votes.split_off(&(seq + 1));
        }
    }

    /// Catch-up: a requester whose next slot (or a PO-REQUEST it lacks, `forgotten`) is no longer
    /// retained here gets a JUMP to our stable checkpoint, if that is ahead of it.
    pub(crate) fn jump_if_needed(
        &mut self,
        cx: &mut Context<'_, Self>,
        to: ParticipantId,
        requester_executed: u64,
        forgotten: bool,
    ) {
        let oldest_retained = self
            .ord
            .slots
            .keys()
            .next()
            .copied()
            .unwrap_or(self.exec.executed_seq + 1);
        if requester_executed + 1 >= oldest_retained && !forgotten {
            return;
        }
        let Some((seq, proof, image)) = &self.checkpoints.stable else {
            return;
        };
        let snapshot_bytes = image.bytes().len() as u64;
        if *seq > requester_executed && snapshot_bytes <= SNAPSHOT_BYTES_MAX as u64 {
            let jump = Jump {
                proof: proof.clone(),
                snapshot_bytes,
            };
            self.send_to(cx, to, PrimeMessage::Jump(jump));
        }
    }

    /// A JUMP: the proof must hold 2f+k+1 distinct valid votes for one (slot, digest) ahead of us;
    /// then the snapshot is fetched in chunks ([`crate::state_transfer`]).
    pub(crate) fn on_jump(&mut self, cx: &mut Context<'_, Self>, from: ParticipantId, jump: Jump) {
        let Some(first) = jump.proof.first().map(|v| v.body) else {
            return;
        };
        if first.seq <= self.exec.executed_seq {
            self.drops.out_of_window += 1;
            return;
        }
        let mut signers = Vec::new();
        for vote in &jump.proof {
            if vote.body != first || signers.contains(&vote.signer) || !self.verify(cx, vote) {
                self.drops.malformed += 1;
                return;
            }
            signers.push(vote.signer);
        }
        if signers.len() < self.cfg.quorums.certificate() {
            self.drops.malformed += 1;
            return;
        }
        self.start_state_transfer(cx, from, jump.proof, jump.snapshot_bytes);
    }

    /// Every chunk of a proven checkpoint's snapshot arrived: check the whole snapshot against the
    /// proven digest once more, then replace the execution state.
    pub(crate) fn restore_checkpoint(
        &mut self,
        cx: &mut Context<'_, Self>,
        checkpoint: Checkpoint,
        proof: Vec<Signed<Checkpoint>>,
        bytes: Vec<u8>,
    ) {
        let first = checkpoint;
        charge_snapshot_hashing(cx, bytes.len());
        let Some(image) = SnapshotImage::new(bytes).filter(|i| i.digest() == first.digest) else {
            self.drops.malformed += 1;
            return;
        };
        if first.seq <= self.exec.executed_seq {
            return;
        }
        let Ok(snapshot) = Snapshot::from_bytes(
            image.bytes(),
            DecodeLimits {
                input_bytes_max: image.bytes().len(),
                alloc_bytes_max: 4 * image.bytes().len(),
                ..DecodeLimits::MESSAGE
            },
        ) else {
            self.drops.malformed += 1;
            return;
        };
        if snapshot.executed_seq != first.seq
            || snapshot.last_executed.len() != self.n()
            || self.app.restore(&snapshot.app).is_err()
        {
            self.drops.malformed += 1;
            return;
        }
        self.exec.executed_seq = snapshot.executed_seq;
        self.exec.timestamp_ms = snapshot.timestamp_ms;
        self.exec.last_executed = snapshot.last_executed;
        self.exec.clients = snapshot
            .clients
            .into_iter()
            .map(|(c, (incarnation, seq, global_seq))| {
                (
                    c,
                    ClientRecord {
                        incarnation,
                        seq,
                        global_seq,
                    },
                )
            })
            .collect();
        self.exec.missing.clear();
        for (i, e) in self.exec.last_executed.iter().enumerate() {
            self.pre.cum_aru[i] = self.pre.cum_aru[i].max(*e);
        }
        self.ord.slots = self.ord.slots.split_off(&(first.seq + 1));
        self.ord.last_prepared_seq = self.ord.last_prepared_seq.max(first.seq);
        self.checkpoints.own = Some((first.seq, image.clone()));
        self.checkpoints.stable = Some((first.seq, proof, image));
        self.checkpoints.jumps += 1;
        let state = self.app.digest();
        cx.deliver(crate::replica::PrimeOutput::Jumped {
            global_seq: first.seq,
            state,
        });
        self.collect_po_garbage();
        self.try_execute(cx);
        self.request_catchup(cx);
    }
}
