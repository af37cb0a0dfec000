//! The member daemon's compact membership transcripts (paper 000, section "Compact signature
//! representation"): whenever its published view changed, or the last transcript lacked some
//! member's signature, the member asks its view to sign the view statement and aggregates the BLS
//! signatures into one. At most one collection runs at a time and at most one starts per
//! publication, so the rounds are bounded by the publication period.
//!
//! The member checks each transcript against its key directory (every key's proof of possession
//! was checked at load) before showing it; anyone holding the members' public keys can check the
//! hex encoding in the same way.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stockade_attest::attestation::GroupId;
use stockade_attest::group::GroupRequest;
use stockade_attest::transcript::{CompactTranscript, MemberDirectory, TranscriptError};
use stockade_core::{NodeId, Wire};

/// A checked compact transcript, as `groups view` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptReport {
    /// The statement's epoch.
    pub epoch: u64,
    /// The view the statement names.
    pub members: BTreeSet<u32>,
    /// The members whose signatures the aggregate holds.
    pub signers: BTreeSet<u32>,
    /// Its encoded size.
    pub bytes: usize,
    /// Its encoding, hex.
    pub hex: String,
}

/// When to collect the next transcript, and the last one collected.
pub struct TranscriptRounds {
    directory: MemberDirectory,
    pending: bool,
    /// The view the last transcript named, and whether every member of it signed.
    last: Option<(BTreeSet<u32>, bool)>,
    latest: Option<TranscriptReport>,
}

impl TranscriptRounds {
    /// Rounds over `directory` (every member's BLS key).
    pub fn new(directory: MemberDirectory) -> TranscriptRounds {
        TranscriptRounds {
            directory,
            pending: false,
            last: None,
            latest: None,
        }
    }

    /// The request that starts a collection for `view` of `group`, if one is due: none runs, and
    /// the view changed since the last transcript or not everyone signed that one.
    pub fn next_request(&mut self, group: GroupId, view: &BTreeSet<u32>) -> Option<GroupRequest> {
        let settled = matches!(&self.last, Some((members, true)) if members == view);
        if self.pending || settled || view.is_empty() {
            return None;
        }
        self.pending = true;
        Some(GroupRequest::BuildTranscript {
            group,
            directory: self.directory.clone(),
        })
    }

    /// A collection finished: check the transcript as `me` (a member of its view) would ask
    /// anyone to, and keep it. Returns why it was refused, if it was.
    pub fn finished(
        &mut self,
        me: NodeId,
        result: Result<CompactTranscript, TranscriptError>,
    ) -> Result<&TranscriptReport, TranscriptError> {
        self.pending = false;
        let transcript = result?;
        let statement = transcript.verify(me, 1, &self.directory, &mut |_| {})?;
        let signers = self
            .directory
            .nodes_of(&transcript.multi.signers)
            .unwrap_or_default();
        let ids = |nodes: &BTreeSet<NodeId>| nodes.iter().map(|n| n.0).collect::<BTreeSet<u32>>();
        let report = TranscriptReport {
            epoch: statement.epoch,
            members: ids(&statement.members),
            signers: ids(&signers),
            bytes: transcript.wire_len(),
            hex: hex::encode(transcript.to_bytes()),
        };
        self.last = Some((report.members.clone(), report.members == report.signers));
        Ok(self.latest.insert(report))
    }

    /// The last transcript that checked out.
    pub fn latest(&self) -> Option<&TranscriptReport> {
        self.latest.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use stockade_attest::transcript::ViewStatement;
    use stockade_crypto::scheme::SimulationKeys;
    use stockade_crypto::CryptoMode;

    use super::*;

    const GROUP: GroupId = GroupId([3; 20]);

    fn transcript(
        keys: &SimulationKeys,
        directory: &MemberDirectory,
        signers: &[u32],
    ) -> CompactTranscript {
        let statement = ViewStatement {
            group: GROUP,
            epoch: 9,
            members: [0, 1, 2].map(NodeId).into(),
        };
        let shares: Vec<(NodeId, _)> = signers
            .iter()
            .map(|&i| {
                (
                    NodeId(i),
                    keys.multi_signer(i)
                        .sign(&statement.signing_bytes(), &mut |_| {}),
                )
            })
            .collect();
        CompactTranscript::build(&statement, &shares, directory, &mut |_| {}).expect("aggregates")
    }

    #[test]
    fn one_round_at_a_time_and_again_only_when_the_view_changed_or_a_signer_was_missing() {
        let keys = SimulationKeys::new(CryptoMode::SimFast, 5);
        let directory = MemberDirectory::new([0, 1, 2].map(NodeId), keys.membership(&[0, 1, 2]))
            .expect("directory");
        let mut rounds = TranscriptRounds::new(directory.clone());
        let view: BTreeSet<u32> = [0, 1, 2].into();
        assert!(rounds.next_request(GROUP, &view).is_some());
        assert!(rounds.next_request(GROUP, &view).is_none(), "one at a time");

        let partial = rounds
            .finished(NodeId(0), Ok(transcript(&keys, &directory, &[0, 1])))
            .expect("checks")
            .clone();
        assert_eq!(partial.signers, [0, 1].into());
        assert_eq!(partial.epoch, 9);
        assert!(
            rounds.next_request(GROUP, &view).is_some(),
            "member 2 did not sign: try again"
        );
        let full = rounds
            .finished(NodeId(0), Ok(transcript(&keys, &directory, &[0, 1, 2])))
            .expect("checks");
        assert_eq!(full.signers, view);
        assert_eq!(full.hex.len(), 2 * full.bytes);
        assert!(rounds.next_request(GROUP, &view).is_none(), "settled");
        assert!(
            rounds.next_request(GROUP, &[0, 1].into()).is_some(),
            "the view changed"
        );

        // A transcript whose aggregate does not verify is refused and the last good one kept.
        let mut forged = transcript(&keys, &directory, &[0, 1, 2]);
        forged.epoch = 10;
        assert!(rounds.finished(NodeId(0), Ok(forged)).is_err());
        assert_eq!(rounds.latest().map(|t| t.epoch), Some(9));
    }
}
