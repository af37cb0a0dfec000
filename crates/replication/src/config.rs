//! Who takes part in Prime, how many must agree, and every timing and size parameter.
//!
//! Quorum arithmetic follows PRIME.md "Participants and quorums" (N = 3f + 2k + 1); the defaults
//! are the release's parameters listed at the end of PRIME.md.

use std::fmt;
use std::time::Duration;

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::NodeId;
use thiserror::Error;

/// The largest number of participants one Prime instance supports (N = 3f + 2k + 1 <= 32, so f <= 10
/// with k = 0). Why 32:
/// - a PRE-PREPARE carries one signed PO-SUMMARY of N entries per participant, so it grows as N
///   squared; at 32 participants (with real-size signatures) it stays under the release's
///   32,000-byte packet (PRIME.md "Parameters of the release"), at 64 it would not
///   (`pre_prepare_of_the_largest_membership_fits_one_packet` measures it);
/// - VC-LIST names its members in a 64-bit bitmap, so the cap must stay at most 64;
/// - every wire vector indexed by participant is bounded by it when decoding.
///
/// Exceeding it is a [`ConfigError::TooMany`] from [`Membership::new`].
pub const PARTICIPANTS_MAX: usize = 32;

/// One participant of a Prime instance: an index `0..N`. A participant is a server for a site's
/// local Prime, and will be a whole site (a logical machine, paper 004 section 3.1) for the global
/// one; nothing in the protocol depends on which.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ParticipantId(pub u16);

impl ParticipantId {
    /// The id as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl Wire for ParticipantId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = u16::decode(r)?;
        if id as usize >= PARTICIPANTS_MAX {
            return Err(DecodeError::Invalid(
                "participant id beyond PARTICIPANTS_MAX",
            ));
        }
        Ok(ParticipantId(id))
    }
    fn wire_len(&self) -> usize {
        2
    }
}

/// Quorum sizes for N = 3f + 2k + 1 (PRIME.md "Participants and quorums").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Quorums {
    /// Byzantine participants tolerated.
    pub f: usize,
    /// Participants that may be recovering at the same time (0 gives N = 3f + 1).
    pub k: usize,
}

impl Quorums {
    /// Quorums for `f` faults and `k` recovering participants.
    pub fn new(f: usize, k: usize) -> Quorums {
        Quorums { f, k }
    }
    /// N = 3f + 2k + 1.
    pub fn n(&self) -> usize {
        3 * self.f + 2 * self.k + 1
    }
    /// 2f + k + 1: PO certificates, commit certificates, NEW-LEADER proofs, view-change lists,
    /// and the rank of a summary-matrix column that makes a PO-REQUEST eligible (step 9).
    pub fn certificate(&self) -> usize {
        2 * self.f + self.k + 1
    }
    /// 2f + k: prepares from non-leaders that, with the pre-prepare, form a prepare certificate.
    pub fn prepares_from_non_leaders(&self) -> usize {
        2 * self.f + self.k
    }
    /// f + k + 1: the rank used by suspect-leader (alpha, TAT_acceptable, TAT_leader); at least one
    /// of any f + k + 1 participants is correct and not recovering.
    pub fn suspect_rank(&self) -> usize {
        self.f + self.k + 1
    }
}

/// Why a configuration cannot run.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum ConfigError {
    /// The membership table does not have N = 3f + 2k + 1 entries.
    #[error("membership has {found} participants but f={f}, k={k} needs N = 3f+2k+1 = {needed}")]
    WrongSize {
        /// Entries in the table.
        found: usize,
        /// What the quorums need.
        needed: usize,
        /// Faults tolerated.
        f: usize,
        /// Recovering participants tolerated.
        k: usize,
    },
    /// More participants than [`PARTICIPANTS_MAX`].
    #[error("{0} participants exceed the supported maximum of {PARTICIPANTS_MAX}")]
    TooMany(usize),
    /// This node is not in the membership table.
    #[error("participant {0:?} is not in the membership table")]
    NotAMember(ParticipantId),
    /// Two participants share one transport address.
    #[error("transport address {0:?} appears twice in the membership table")]
    DuplicateNode(NodeId),
    /// Checkpoints are rarer than ordering certificates are retained: a lagging server could
    /// neither catch up from certificates nor jump to a checkpoint.
    #[error(
        "checkpoint_interval {interval} exceeds retained_slots_max {retained}; lower the interval"
    )]
    CheckpointsTooRare {
        /// The interval.
        interval: u64,
        /// The retention.
        retained: u64,
    },
    /// A bound is zero, which would stop the protocol.
    #[error("parameter {0} must be at least 1")]
    ZeroBound(&'static str),
    /// The server's authenticator holds no threshold key, so no view change could complete.
    #[error(
        "the authenticator has no threshold key: a Prime server needs its share of the \
         participants' (2f+k+1)-of-N threshold key for view changes"
    )]
    NoThresholdKey,
    /// The threshold key needs a different number of shares than a VC-PROOF must carry.
    #[error(
        "the threshold key combines {shares} shares but f={f}, k={k} needs 2f+k+1 = {needed}; \
         deal a key for this membership"
    )]
    ThresholdMismatch {
        /// Shares the key combines.
        shares: usize,
        /// 2f+k+1.
        needed: usize,
        /// Faults tolerated.
        f: usize,
        /// Recovering participants tolerated.
        k: usize,
    },
}

/// Maps participants to the transport addresses that carry their messages. For a site's local
/// Prime these are the servers' nodes; for the global Prime a parent protocol maps each site to the
/// logical link that reaches it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Membership {
    nodes: Vec<NodeId>,
}

impl Membership {
    /// Participant `i` is reached at `nodes[i]`.
    pub fn new(nodes: Vec<NodeId>) -> Result<Membership, ConfigError> {
        if nodes.len() > PARTICIPANTS_MAX {
            return Err(ConfigError::TooMany(nodes.len()));
        }
        for (i, a) in nodes.iter().enumerate() {
            if nodes[..i].contains(a) {
                return Err(ConfigError::DuplicateNode(*a));
            }
        }
        Ok(Membership { nodes })
    }
    /// Number of participants.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// True when there are no participants.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Where participant `p` is reached.
    pub fn node(&self, p: ParticipantId) -> Option<NodeId> {
        self.nodes.get(p.index()).copied()
    }
    /// The participant reached at `node`, if any.
    pub fn participant(&self, node: NodeId) -> Option<ParticipantId> {
        self.nodes
            .iter()
            .position(|n| *n == node)
            .map(|i| ParticipantId(i as u16))
    }
    /// Every participant, in index order.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        (0..self.nodes.len()).map(|i| ParticipantId(i as u16))
    }
}

/// Links with a round-trip time below this get the local-network periods of
/// [`PrimeConfig::for_link_rtt`].
pub const LAN_LINK_RTT_MAX: Duration = Duration::from_millis(5);
/// PO-ACK, PO-SUMMARY and summary-matrix period on a local network.
pub const LAN_AGGREGATION_PERIOD: Duration = Duration::from_millis(2);
/// PRE-PREPARE period on a local network.
pub const LAN_PRE_PREPARE_PERIOD: Duration = Duration::from_millis(5);

/// Every parameter of one Prime instance. Defaults are the release's (PRIME.md "Parameters").
#[derive(Clone, Debug, PartialEq)]
pub struct PrimeConfig {
    /// Fault thresholds.
    pub quorums: Quorums,
    /// PO-ACK period (step 4).
    pub po_ack_period: Duration,
    /// PO-SUMMARY period (step 6).
    pub po_summary_period: Duration,
    /// Summary-matrix period (step 7).
    pub summary_matrix_period: Duration,
    /// PRE-PREPARE period (step 8); also the "period" term of the suspect-leader threshold.
    pub pre_prepare_period: Duration,
    /// A server stops admitting client updates while this many of its own PO-REQUESTs are not
    /// executed (step 2).
    pub po_requests_in_flight_max: u64,
    /// Updates in one PO-REQUEST.
    pub updates_per_po_request_max: usize,
    /// Encoded bytes of one PO-REQUEST's updates (kept under the 32,000-byte packet).
    pub po_request_bytes_max: usize,
    /// Client updates queued at this server awaiting a PO-REQUEST.
    pub pending_updates_max: usize,
    /// PO-REQUEST slots accepted per originator beyond its last executed one.
    pub po_window_max: u64,
    /// Ack parts queued for the next PO-ACK; reaching it sends the PO-ACK at once.
    pub pending_ack_parts_max: usize,
    /// Global slots accepted beyond the last executed one.
    pub order_window_max: u64,
    /// Executed global slots whose ordering certificates are kept for catch-up.
    pub retained_slots_max: u64,
    /// Clients whose last executed (incarnation, sequence) is remembered for de-duplication.
    pub clients_max: usize,
    /// Clients whose last reply is kept, to answer a re-submitted update that already executed.
    pub reply_cache_len_max: usize,
    /// Result bytes of the kept replies (a larger result is not kept).
    pub reply_cache_bytes_max: usize,
    /// Ping, TAT-UB and TAT-MEASURE period.
    pub ping_period: Duration,
    /// Turnaround challenges are re-measured this often.
    pub turnaround_recheck_period: Duration,
    /// Outstanding turnaround challenges kept (the oldest is measured first).
    pub turnaround_challenges_max: usize,
    /// RTT measurements kept per pinger; alpha uses the smallest of them (suspect-leader), so
    /// TAT_acceptable follows the servers' current round trips (8 pings: 4 s at the release's
    /// ping period) rather than the best one ever seen.
    pub rtt_window_len: usize,
    /// Smallest TAT_acceptable (the release's minimum RTT).
    pub tat_acceptable_min: Duration,
    /// K_lat as a ratio (numerator, denominator): 2.5 is (5, 2).
    pub k_lat: (u32, u32),
    /// NEW-LEADER re-send period.
    pub new_leader_resend_period: Duration,
    /// Catch-up request period while execution is blocked.
    pub catchup_period: Duration,
    /// While a view is being installed, this server re-sends its view-change state this often
    /// (view-change messages are otherwise sent once, and a lossy link would stall the change).
    pub view_change_resend_period: Duration,
    /// Re-send rounds per view change; past it the change is left to suspect-leader (the next
    /// view), so a view change that cannot complete does not re-send forever.
    pub view_change_resends_max: u32,
    /// `None` (the default): suspect-leader as specified. `Some(timeout)`: suspect-leader's
    /// turnaround bound is replaced by this plain timeout on the leader's turnaround, the
    /// comparison configuration of the `prime-leader-delay` scenario (what a protocol with only a
    /// leader timeout tolerates).
    pub leader_timeout_only: Option<Duration>,
    /// A checkpoint is taken every this many executed slots (below `retained_slots_max`, so that
    /// the slots after a stable checkpoint are still retained for catch-up).
    pub checkpoint_interval: u64,
    /// Without a known lag, a catch-up request still goes out every this many periods.
    pub catchup_idle_periods: u32,
    /// Missing items named in one CATCHUP-REQUEST.
    pub catchup_items_max: usize,
    /// The largest snapshot this server reassembles in a state transfer (a JUMP announcing more
    /// is refused); at most [`crate::checkpoint::SNAPSHOT_BYTES_MAX`].
    pub snapshot_bytes_max: u64,
}

impl PrimeConfig {
    /// The release's defaults for `f` faults and `k` recovering participants.
    pub fn new(f: usize, k: usize) -> PrimeConfig {
        PrimeConfig {
            quorums: Quorums::new(f, k),
            po_ack_period: Duration::from_millis(6),
            po_summary_period: Duration::from_millis(6),
            summary_matrix_period: Duration::from_millis(6),
            pre_prepare_period: Duration::from_millis(20),
            po_requests_in_flight_max: 20,
            updates_per_po_request_max: 256,
            po_request_bytes_max: 30_000,
            pending_updates_max: 10_000,
            po_window_max: 256,
            pending_ack_parts_max: 512,
            order_window_max: 256,
            retained_slots_max: 512,
            clients_max: 100_000,
            reply_cache_len_max: 10_000,
            reply_cache_bytes_max: 16 << 20,
            ping_period: Duration::from_millis(500),
            turnaround_recheck_period: Duration::from_millis(20),
            turnaround_challenges_max: 64,
            rtt_window_len: 8,
            tat_acceptable_min: Duration::from_millis(8),
            k_lat: (5, 2),
            new_leader_resend_period: Duration::from_secs(1),
            catchup_period: Duration::from_millis(100),
            view_change_resend_period: Duration::from_millis(10),
            view_change_resends_max: 1000,
            leader_timeout_only: None,
            checkpoint_interval: 100,
            catchup_idle_periods: 10,
            catchup_items_max: 64,
            snapshot_bytes_max: crate::checkpoint::SNAPSHOT_BYTES_MAX as u64,
        }
    }

    /// Periods for a deployment whose links have round-trip time `link_rtt`: the release's
    /// defaults ([`PrimeConfig::new`]) for wide-area links, shorter aggregation periods for a
    /// local network.
    ///
    /// Rationale: each periodic step (PO-ACK, PO-SUMMARY, summary matrix: PRIME.md steps 4, 6, 7;
    /// PRE-PREPARE: step 8) adds on average half its period to an update's latency, and exists to
    /// aggregate many updates into one signed message. The release's 6 ms and 20 ms suit its
    /// wide-area links (paper 004, section 5: 50 ms between sites), where they are small next to
    /// the link delay. On a LAN (RTT below [`LAN_LINK_RTT_MAX`]) the same periods would be most of
    /// the latency, so the aggregation steps run every [`LAN_AGGREGATION_PERIOD`] and the leader
    /// proposes every [`LAN_PRE_PREPARE_PERIOD`]; steps with nothing new send nothing, so an idle
    /// cluster pays only timer wake-ups. Suspect-leader is unchanged except for the period term
    /// of its threshold (PRIME.md "Suspect-leader"): `tat_acceptable_min` (8 ms) stays, so a
    /// leader still gets at least `K_lat x 8 ms` on top of its own proposal period, the same
    /// slack the release gives. That slack covers a LAN leader's one durable step (its pre-prepare
    /// vote, 2-3 ms of fsync here, more under load): the turnaround no longer counts the
    /// challenger's own durable step, and round trips include the pinged server's
    /// ([`crate::suspect`]), so a uniformly slower disk raises TAT_acceptable above the floor.
    pub fn for_link_rtt(f: usize, k: usize, link_rtt: Duration) -> PrimeConfig {
        let release = PrimeConfig::new(f, k);
        if link_rtt >= LAN_LINK_RTT_MAX {
            return release;
        }
        PrimeConfig {
            po_ack_period: LAN_AGGREGATION_PERIOD,
            po_summary_period: LAN_AGGREGATION_PERIOD,
            summary_matrix_period: LAN_AGGREGATION_PERIOD,
            pre_prepare_period: LAN_PRE_PREPARE_PERIOD,
            ..release
        }
    }

    /// Check that the parameters can run with `membership`.
    pub fn validate(&self, membership: &Membership) -> Result<(), ConfigError> {
        let needed = self.quorums.n();
        if membership.len() != needed {
            return Err(ConfigError::WrongSize {
                found: membership.len(),
                needed,
                f: self.quorums.f,
                k: self.quorums.k,
            });
        }
        let bounds: [(&'static str, u64); 14] = [
            ("checkpoint_interval", self.checkpoint_interval),
            ("po_requests_in_flight_max", self.po_requests_in_flight_max),
            (
                "updates_per_po_request_max",
                self.updates_per_po_request_max as u64,
            ),
            ("pending_updates_max", self.pending_updates_max as u64),
            ("po_window_max", self.po_window_max),
            ("pending_ack_parts_max", self.pending_ack_parts_max as u64),
            ("order_window_max", self.order_window_max),
            ("clients_max", self.clients_max as u64),
            ("reply_cache_len_max", self.reply_cache_len_max as u64),
            ("reply_cache_bytes_max", self.reply_cache_bytes_max as u64),
            (
                "turnaround_challenges_max",
                self.turnaround_challenges_max as u64,
            ),
            ("catchup_items_max", self.catchup_items_max as u64),
            ("rtt_window_len", self.rtt_window_len as u64),
            ("snapshot_bytes_max", self.snapshot_bytes_max),
        ];
        for (name, value) in bounds {
            if value == 0 {
                return Err(ConfigError::ZeroBound(name));
            }
        }
        if self.checkpoint_interval > self.retained_slots_max {
            return Err(ConfigError::CheckpointsTooRare {
                interval: self.checkpoint_interval,
                retained: self.retained_slots_max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_for_3f_plus_2k_plus_1() {
        let q = Quorums::new(1, 0);
        assert_eq!(
            (
                q.n(),
                q.certificate(),
                q.prepares_from_non_leaders(),
                q.suspect_rank()
            ),
            (4, 3, 2, 2)
        );
        let q = Quorums::new(2, 1);
        assert_eq!(
            (
                q.n(),
                q.certificate(),
                q.prepares_from_non_leaders(),
                q.suspect_rank()
            ),
            (9, 6, 5, 4)
        );
        // Any two certificates intersect in at least f + 1 participants, so in a correct one.
        for f in 0..5 {
            for k in 0..3 {
                let q = Quorums::new(f, k);
                assert!(2 * q.certificate() - q.n() > f, "f={f} k={k}");
            }
        }
    }

    #[test]
    fn lan_profile_shortens_the_periods_below_the_rtt_bound_only() {
        let release = PrimeConfig::new(1, 0);
        let wan = PrimeConfig::for_link_rtt(1, 0, LAN_LINK_RTT_MAX);
        assert_eq!(wan, release);
        let lan = PrimeConfig::for_link_rtt(1, 0, Duration::from_micros(200));
        assert_eq!(
            (
                lan.po_ack_period,
                lan.po_summary_period,
                lan.summary_matrix_period
            ),
            (
                LAN_AGGREGATION_PERIOD,
                LAN_AGGREGATION_PERIOD,
                LAN_AGGREGATION_PERIOD
            )
        );
        assert_eq!(lan.pre_prepare_period, LAN_PRE_PREPARE_PERIOD);
        // Suspect-leader keeps the release's floor; only the period term shrinks.
        assert_eq!(lan.tat_acceptable_min, release.tat_acceptable_min);
        assert_eq!(lan.k_lat, release.k_lat);
    }

    #[test]
    fn membership_validation() {
        let nodes: Vec<NodeId> = (10..14).map(NodeId).collect();
        let m = Membership::new(nodes).expect("valid");
        assert_eq!(m.participant(NodeId(12)), Some(ParticipantId(2)));
        assert_eq!(m.node(ParticipantId(3)), Some(NodeId(13)));
        assert_eq!(m.node(ParticipantId(4)), None);
        assert_eq!(PrimeConfig::new(1, 0).validate(&m), Ok(()));
        assert!(matches!(
            PrimeConfig::new(2, 0).validate(&m),
            Err(ConfigError::WrongSize { needed: 7, .. })
        ));
        assert_eq!(
            Membership::new(vec![NodeId(1), NodeId(1)]),
            Err(ConfigError::DuplicateNode(NodeId(1)))
        );
        let too_many = Membership::new((0..33).map(NodeId).collect());
        assert_eq!(too_many, Err(ConfigError::TooMany(33)));
        assert_eq!(
            too_many.map(|_| ()).err().map(|e| e.to_string()),
            Some("33 participants exceed the supported maximum of 32".to_string())
        );
        assert!(Membership::new((0..32).map(NodeId).collect()).is_ok());
        let mut zero = PrimeConfig::new(1, 0);
        zero.po_window_max = 0;
        assert_eq!(
            zero.validate(&m),
            Err(ConfigError::ZeroBound("po_window_max"))
        );
        let mut rare = PrimeConfig::new(1, 0);
        rare.checkpoint_interval = rare.retained_slots_max + 1;
        assert!(matches!(
            rare.validate(&m),
            Err(ConfigError::CheckpointsTooRare { .. })
        ));
    }

    /// The reason for [`PARTICIPANTS_MAX`]: a PRE-PREPARE of N signed N-entry summaries, with
    /// real-size signature tags and large counters, fits one 32,000-byte packet at N = 32 and
    /// would not at N = 64.
    #[test]
    fn pre_prepare_of_the_largest_membership_fits_one_packet() {
        use crate::auth::{body_digest, MessageAuth, Signed};
        use crate::messages::{PoSummary, PrePrepare, PrimeMessage};
        use crate::threshold_auth::SimulationAuths;
        use stockade_crypto::scheme::SimulationKeys;
        use stockade_crypto::CryptoMode;

        let keys = SimulationKeys::new(CryptoMode::SimFast, 1);
        let auths = SimulationAuths::deal(&keys, Quorums::new(10, 0)).expect("dealt");
        let pre_prepare_bytes = |n: usize| {
            let matrix = (0..n)
                .map(|i| {
                    let signer = ParticipantId(i as u16 % PARTICIPANTS_MAX as u16);
                    let body = PoSummary {
                        counter: u64::MAX,
                        cum_aru: vec![u64::MAX; n],
                    };
                    let digest = body_digest(signer, &body);
                    let tag = auths.auth(signer).sign_batch(&[digest]).remove(0);
                    Some(Signed { signer, body, tag })
                })
                .collect();
            let body = PrePrepare {
                view: u64::MAX,
                seq: u64::MAX,
                timestamp_ms: u64::MAX,
                matrix,
            };
            let digest = body_digest(ParticipantId(0), &body);
            let tag = auths.auth(ParticipantId(0)).sign_batch(&[digest]).remove(0);
            PrimeMessage::PrePrepare(Signed {
                signer: ParticipantId(0),
                body,
                tag,
            })
            .wire_len()
        };
        let largest = pre_prepare_bytes(PARTICIPANTS_MAX);
        assert!(
            largest < 32_000,
            "{largest} bytes at N = {PARTICIPANTS_MAX}"
        );
        assert!(pre_prepare_bytes(64) > 32_000, "N = 64 would not fit");
    }
}
