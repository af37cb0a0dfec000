//! The LA-group protocol's vocabulary: configuration, requests, outputs, errors, timers and
//! counters (paper 000, Fig. 1's API as data).

use std::collections::BTreeSet;
use std::time::Duration;

use stockade_core::NodeId;
use thiserror::Error;

use crate::attestation::{GroupId, Rejected, INFO_BYTES_MAX};
use crate::monitor::{Monitor, Observation};
use crate::transcript::{CompactTranscript, MemberDirectory, TranscriptError};

/// Tunables of the protocol; every bound is named with its unit last.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// How long an attestation holds after it is issued (the paper's `T_a`).
    pub attestation_validity: Duration,
    /// How often this node re-signs the attestations it keeps making; well under the validity, so
    /// a refresh arrives before the previous attestation expires.
    pub refresh_interval: Duration,
    /// How often expired attestations are swept out.
    pub sweep_interval: Duration,
    /// How long changes are collected before they are announced (aggregation at every hop).
    pub announce_delay: Duration,
    /// How long a join waits for a member's attestation before it is reported failed.
    pub join_timeout: Duration,
    /// The most groups this node belongs to at once.
    pub groups_max: usize,
    /// The most attestations one group holds (every ordered pair of members at most once).
    pub links_max: usize,
    /// The most contacts one join asks.
    pub join_contacts_max: usize,
    /// The length of a transcript epoch: members sign statements for the epoch their clock is in.
    pub transcript_epoch: Duration,
    /// How long a collector waits for view-signature shares.
    pub transcript_timeout: Duration,
    /// How often a monitored node is probed; a probe unanswered by the next one is a miss.
    pub probe_interval: Duration,
    /// The most monitors this node runs, over all groups.
    pub monitors_max: usize,
    /// Whether a member starts attesting a node that asks it to join (otherwise the application
    /// decides, on [`GroupOutput::JoinRequested`]).
    pub attest_joiners: bool,
    /// Whether attestations relayed by a neighbour that MACs its announcement are stored without
    /// checking their signatures (the optimization of paper 000, section "LA-groups abstraction").
    /// It trusts that neighbour to have verified them.
    pub mac_vouching: bool,
    /// Added to the context's clock to get the time attestations carry and expire by. Members
    /// compare each other's issue and expiry times, so their clocks must agree loosely (paper 000,
    /// section "Attestations and membership transcripts": attestations carry an expiration time).
    /// The simulator's clock is shared, so zero there; a runtime's clock starts at zero when its
    /// process starts, so a daemon sets this to the wall-clock time (since the Unix epoch) at start.
    pub clock_offset: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            attestation_validity: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(1),
            announce_delay: Duration::from_millis(20),
            join_timeout: Duration::from_secs(10),
            groups_max: 16,
            links_max: 4096,
            join_contacts_max: 8,
            probe_interval: Duration::from_secs(1),
            transcript_epoch: Duration::from_secs(10),
            transcript_timeout: Duration::from_secs(1),
            monitors_max: 256,
            attest_joiners: true,
            mac_vouching: true,
            clock_offset: Duration::ZERO,
        }
    }
}

/// A [`GroupConfig`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Attestations would expire before they are refreshed.
    #[error("refresh_interval {refresh:?} must be shorter than attestation_validity {validity:?}")]
    RefreshNotBeforeExpiry {
        /// The refresh interval.
        refresh: Duration,
        /// The validity.
        validity: Duration,
    },
    /// A period or bound that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl GroupConfig {
    /// Check that the configuration can work: every period and bound positive, and attestations
    /// refreshed before they expire.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let periods = [
            ("attestation_validity", self.attestation_validity),
            ("refresh_interval", self.refresh_interval),
            ("sweep_interval", self.sweep_interval),
            ("probe_interval", self.probe_interval),
            ("transcript_epoch", self.transcript_epoch),
        ];
        if let Some((name, _)) = periods.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::Zero(name));
        }
        let bounds = [
            ("groups_max", self.groups_max),
            ("links_max", self.links_max),
            ("join_contacts_max", self.join_contacts_max),
        ];
        if let Some((name, _)) = bounds.iter().find(|(_, b)| *b == 0) {
            return Err(ConfigError::Zero(name));
        }
        if self.refresh_interval >= self.attestation_validity {
            return Err(ConfigError::RefreshNotBeforeExpiry {
                refresh: self.refresh_interval,
                validity: self.attestation_validity,
            });
        }
        Ok(())
    }
}

/// What the application asks of the protocol (paper 000, Fig. 1; the queries are methods).
#[derive(Debug)]
pub enum GroupRequest {
    /// Create a group with a fresh random 160-bit id; answered by [`GroupOutput::Created`].
    Create,
    /// Join `group` through `contacts` (existing members); answered by [`GroupOutput::JoinResult`].
    Join {
        /// The group.
        group: GroupId,
        /// Members to ask.
        contacts: Vec<NodeId>,
    },
    /// Start (or keep) attesting `node` with `info`.
    Attest {
        /// The group.
        group: GroupId,
        /// Whom to attest.
        node: NodeId,
        /// Application info (at most [`INFO_BYTES_MAX`] bytes).
        info: Vec<u8>,
    },
    /// Stop attesting `node`; the attestation lapses at its expiry elsewhere.
    StopAttesting {
        /// The group.
        group: GroupId,
        /// Whom to stop attesting.
        node: NodeId,
    },
    /// Let `monitor` decide whether this node attests `node` (the stateful management interface of
    /// paper 000, section "Discussion: stateful monitoring"): the protocol probes `node` every
    /// probe interval, feeds the monitor, and attests or withdraws as its verdict says. Replaces an
    /// earlier monitor of `node`.
    Monitor {
        /// The group.
        group: GroupId,
        /// The node to watch.
        node: NodeId,
        /// The test.
        monitor: Box<dyn Monitor>,
    },
    /// Stop monitoring `node` (the attestation, if any, stays until withdrawn).
    StopMonitoring {
        /// The group.
        group: GroupId,
        /// The node watched.
        node: NodeId,
    },
    /// Collect a compact membership transcript of this node's view of `group`, with bitmaps
    /// indexed by `directory` (the key directory the verifier holds); answered by
    /// [`GroupOutput::Transcript`] once every member signed or at the transcript timeout.
    BuildTranscript {
        /// The group.
        group: GroupId,
        /// The verifier's directory.
        directory: MemberDirectory,
    },
    /// Hand an application observation to every monitor of `group`.
    Observe {
        /// The group.
        group: GroupId,
        /// What was seen.
        observation: Observation,
    },
}

/// What the protocol reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOutput {
    /// A group was created; this node is its first member.
    Created {
        /// Its id.
        group: GroupId,
    },
    /// A join finished: `joined` once a member attested this node, false at the join timeout.
    JoinResult {
        /// The group.
        group: GroupId,
        /// Whether it succeeded.
        joined: bool,
    },
    /// `node` asked this member to let it join.
    JoinRequested {
        /// The group.
        group: GroupId,
        /// The joiner.
        node: NodeId,
    },
    /// An attestation of `attestee` by `attester` lapsed or was withdrawn (paper 000, Fig. 1: "be
    /// notified when a node loses an attestation").
    AttestationLost {
        /// The group.
        group: GroupId,
        /// Who had attested.
        attester: NodeId,
        /// Who lost the attestation.
        attestee: NodeId,
    },
    /// The set of nodes reachable from this node along attestations changed.
    ViewChanged {
        /// The group.
        group: GroupId,
        /// The new view, this node included.
        view: BTreeSet<NodeId>,
    },
    /// A compact transcript was collected (or could not be).
    Transcript {
        /// The group.
        group: GroupId,
        /// The transcript, signed by the members that answered.
        result: Result<CompactTranscript, TranscriptError>,
    },
    /// A request could not be carried out.
    RequestFailed(GroupError),
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GroupError {
    /// The node is not in the group.
    #[error("this node is not in {0}; create or join it first")]
    UnknownGroup(GroupId),
    /// The node already is in (or joining) the group.
    #[error("this node is already in {0}")]
    AlreadyInGroup(GroupId),
    /// The node belongs to [`GroupConfig::groups_max`] groups.
    #[error("this node already belongs to {0} groups; leave one or raise groups_max")]
    TooManyGroups(usize),
    /// A join named no contacts, or more than [`GroupConfig::join_contacts_max`].
    #[error("a join needs between 1 and {max} contacts, got {got}")]
    BadContacts {
        /// How many were given.
        got: usize,
        /// The most allowed.
        max: usize,
    },
    /// The info is longer than [`INFO_BYTES_MAX`].
    #[error("attestation info of {0} bytes exceeds the {INFO_BYTES_MAX}-byte limit")]
    InfoTooLong(usize),
    /// A node cannot attest itself.
    #[error("a node cannot attest itself")]
    SelfAttestation,
    /// A compact transcript needs a view-signing key ([`LaGroups::with_view_signing`]).
    #[error("this node has no view-signing key; build it with LaGroups::with_view_signing")]
    NoViewSigningKey,
    /// A compact transcript of the group is already being collected.
    #[error("a transcript of {0} is already being collected; wait for its Transcript output")]
    TranscriptInProgress(GroupId),
    /// The node runs [`GroupConfig::monitors_max`] monitors already.
    #[error("this node already runs {0} monitors; stop one or raise monitors_max")]
    TooManyMonitors(usize),
    /// The group's store is full.
    #[error("{0}")]
    Store(Rejected),
}

/// The protocol's named timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupTimer {
    /// Re-sign this node's attestations in the group.
    Refresh(GroupId),
    /// Drop expired attestations.
    Sweep(GroupId),
    /// Send the collected announcements.
    Flush(GroupId),
    /// Give up on a join.
    JoinTimeout(GroupId),
    /// Probe a monitored node (and count the previous probe as missed if unanswered).
    Probe(GroupId, NodeId),
    /// Stop waiting for view-signature shares and aggregate what arrived.
    TranscriptTimeout(GroupId),
}

/// Counters for tests, reports and the simulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Attestations accepted as new or refreshed.
    pub attestations_accepted: u64,
    /// Rejected: forged signature.
    pub rejected_forged: u64,
    /// Rejected: older than what is held.
    pub rejected_replayed: u64,
    /// Rejected: expired.
    pub rejected_expired: u64,
    /// Rejected for another reason (wrong group, self-link, validity, store full, equivocation).
    pub rejected_other: u64,
    /// View-signature shares that did not verify.
    pub rejected_view_shares: u64,
    /// Signature verifications run.
    pub signatures_verified: u64,
    /// Announcements whose MAC let this node skip signature checks.
    pub mac_vouched_announcements: u64,
    /// Announcement messages sent (changes and snapshots).
    pub announcements_sent: u64,
    /// Snapshot messages sent.
    pub snapshots_sent: u64,
    /// Messages about groups this node is not in.
    pub messages_for_unknown_groups: u64,
}
