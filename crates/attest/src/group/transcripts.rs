//! Collecting a compact membership transcript: the collector asks every member of its view to
//! sign one view statement, checks each share, and aggregates them (paper 000, section "Compact
//! signature representation"). Path and list transcripts need no round: they are built from the
//! attestations held.

use std::collections::BTreeMap;

use stockade_core::time::duration_nanos;
use stockade_core::{Context, NodeId, Time};
use stockade_crypto::bls::BlsSignature;

use super::{GroupError, GroupOutput, GroupTimer, LaGroups};
use crate::attestation::GroupId;
use crate::messages::GroupMessage;
use crate::transcript::{
    AttestationListTranscript, CompactTranscript, MemberDirectory, PathTranscript, TranscriptError,
    ViewStatement,
};

/// A compact transcript being collected.
#[derive(Debug)]
pub(crate) struct PendingTranscript {
    statement: ViewStatement,
    directory: MemberDirectory,
    /// Verified shares, at most one per member of the statement's view.
    shares: BTreeMap<NodeId, BlsSignature>,
}

impl LaGroups {
    /// The epoch the context's time `now` falls in (in group time, so members' epochs agree).
    fn epoch(&self, now: Time) -> u64 {
        self.group_time(now).as_nanos() / duration_nanos(self.config.transcript_epoch).max(1)
    }

    /// A path transcript from `anchor` to `subject` along a shortest attestation path.
    pub fn path_transcript(
        &self,
        group: GroupId,
        anchor: NodeId,
        subject: NodeId,
        now: Time,
    ) -> Option<PathTranscript> {
        let graph = self.graph(group, now)?;
        let path = graph.shortest_path(anchor, subject).ok()??;
        PathTranscript::for_path(&self.attestations(group, now), &path.nodes)
    }

    /// Every live attestation of `group` as one naive transcript.
    pub fn list_transcript(&self, group: GroupId, now: Time) -> AttestationListTranscript {
        AttestationListTranscript {
            attestations: self.attestations(group, now),
        }
    }

    pub(super) fn start_transcript(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        directory: MemberDirectory,
    ) {
        let now = cx.now();
        let error = match (&self.view_signer, self.view(group, now)) {
            (None, _) => Some(GroupError::NoViewSigningKey),
            (_, None) => Some(GroupError::UnknownGroup(group)),
            _ if self.transcripts.contains_key(&group) => {
                Some(GroupError::TranscriptInProgress(group))
            }
            _ => None,
        };
        if let Some(e) = error {
            cx.deliver(GroupOutput::RequestFailed(e));
            return;
        }
        let (Some(signer), Some(members)) = (&self.view_signer, self.view(group, now)) else {
            return;
        };
        let statement = ViewStatement {
            group,
            epoch: self.epoch(now),
            members,
        };
        let own = signer.sign(&statement.signing_bytes(), &mut |w| cx.charge(w));
        let request = GroupMessage::ViewSignRequest {
            group,
            epoch: statement.epoch,
            view_digest: statement.view_digest(),
        };
        let others: Vec<NodeId> = statement
            .members
            .iter()
            .copied()
            .filter(|&m| m != self.me)
            .collect();
        cx.send_all(others, &request);
        let shares = BTreeMap::from([(self.me, own)]);
        self.transcripts.insert(
            group,
            PendingTranscript {
                statement,
                directory,
                shares,
            },
        );
        cx.set_timer(
            GroupTimer::TranscriptTimeout(group),
            self.config.transcript_timeout,
        );
        self.finish_transcript_if_complete(cx, group);
    }

    /// A member signs the statement only if its own view has the same digest, in an epoch next to
    /// its own (clocks are loosely synchronized).
    pub(super) fn on_view_sign_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        group: GroupId,
        epoch: u64,
        view_digest: [u8; 32],
    ) {
        let now = cx.now();
        let Some(signer) = &self.view_signer else {
            return;
        };
        let Some(members) = self.view(group, now) else {
            return;
        };
        if self.epoch(now).abs_diff(epoch) > 1 {
            return;
        }
        let statement = ViewStatement {
            group,
            epoch,
            members,
        };
        if statement.view_digest() != view_digest {
            return;
        }
        let signature = signer.sign(&statement.signing_bytes(), &mut |w| cx.charge(w));
        cx.send(
            from,
            GroupMessage::ViewSignShare {
                group,
                epoch,
                view_digest,
                signature,
            },
        );
    }

    pub(super) fn on_view_sign_share(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        group: GroupId,
        epoch: u64,
        view_digest: [u8; 32],
        signature: BlsSignature,
    ) {
        let Some(pending) = self.transcripts.get_mut(&group) else {
            return;
        };
        let st = &pending.statement;
        if st.epoch != epoch || st.view_digest() != view_digest || !st.members.contains(&from) {
            return;
        }
        let Some(position) = pending.directory.position(from) else {
            return;
        };
        // Each share is checked on arrival so one bad share cannot spoil the aggregate.
        let keys = pending.directory.keys();
        let mut charge = |w| cx.charge(w);
        let valid = keys
            .aggregate(&[(position, &signature)], &mut charge)
            .and_then(|single| keys.verify(&st.signing_bytes(), &single, &mut charge))
            .is_ok();
        if valid {
            pending.shares.insert(from, signature);
        } else {
            self.stats.rejected_view_shares += 1;
        }
        self.finish_transcript_if_complete(cx, group);
    }

    fn finish_transcript_if_complete(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let complete = self
            .transcripts
            .get(&group)
            .is_some_and(|p| p.shares.len() == p.statement.members.len());
        if complete {
            cx.cancel_timer(GroupTimer::TranscriptTimeout(group));
            self.finish_transcript(cx, group);
        }
    }

    /// Aggregate whatever shares arrived (the verifier decides how many signers it needs).
    pub(super) fn finish_transcript(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let Some(pending) = self.transcripts.remove(&group) else {
            return;
        };
        let shares: Vec<(NodeId, BlsSignature)> = pending.shares.into_iter().collect();
        let result: Result<CompactTranscript, TranscriptError> =
            CompactTranscript::build(&pending.statement, &shares, &pending.directory, &mut |w| {
                cx.charge(w)
            });
        cx.deliver(GroupOutput::Transcript { group, result });
    }
}
