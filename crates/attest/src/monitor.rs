//! Stateful monitors that decide whether this node attests another (paper 000, section "Discussion:
//! stateful monitoring").
//!
//! "Application writers may employ arbitrarily complex failure tests: general liveness,
//! performance targets, cryptographic data verification, anomaly detection, voting on responses."
//! A [`Monitor`] watches one node: it hears the protocol's probe replies and timeouts and the
//! application's observations, and gives a [`Verdict`]. [`crate::group::LaGroups`] probes each
//! monitored node on a timer and attests or withdraws as the verdict says. Monitors are plain
//! state machines: no clock, no I/O; time comes in as an argument.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use stockade_core::{NodeId, Time};

/// What a monitor decides about its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Attest the node, with this info attached.
    Attest {
        /// Application info for the attestation (for example a measured latency).
        info: Vec<u8>,
    },
    /// Stop attesting it.
    Withdraw,
    /// Not enough evidence yet: keep whatever holds.
    Undecided,
}

/// Something the application saw and reports to the monitors of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A transfer from `node` ran at this rate.
    Throughput {
        /// The node measured.
        node: NodeId,
        /// Bytes per second observed.
        bytes_per_sec: u64,
    },
    /// The answers several nodes gave to one request (a DNS resolution, a key binding, a file
    /// read), each as a digest; voting monitors compare each node's answer with the majority.
    Responses {
        /// The answers, one per node.
        answers: Vec<(NodeId, [u8; 32])>,
    },
}

/// A pluggable, stateful test of one node's acceptability.
pub trait Monitor: fmt::Debug + Send {
    /// The node answered a probe `rtt` after it was sent.
    fn on_reply(&mut self, now: Time, rtt: Duration) {
        let _ = (now, rtt);
    }
    /// A probe went unanswered for a whole probe interval.
    fn on_timeout(&mut self, now: Time) {
        let _ = now;
    }
    /// The application observed something; `subject` is the node this monitor watches.
    fn on_observation(&mut self, now: Time, subject: NodeId, observation: &Observation) {
        let _ = (now, subject, observation);
    }
    /// The current decision.
    fn verdict(&self) -> Verdict;
}

/// Liveness: attest while the node answers probes; withdraw after `misses_max` probes in a row go
/// unanswered (paper 000: "the node continues to respond to application-level pings").
#[derive(Clone, Debug)]
pub struct LivenessMonitor {
    /// Consecutive unanswered probes that make the node unacceptable.
    pub misses_max: u32,
    misses: u32,
    answered: bool,
}

impl LivenessMonitor {
    /// A monitor that withdraws after `misses_max` consecutive misses (at least 1).
    pub fn new(misses_max: u32) -> Self {
        LivenessMonitor {
            misses_max: misses_max.max(1),
            misses: 0,
            answered: false,
        }
    }
}

impl Monitor for LivenessMonitor {
    fn on_reply(&mut self, _now: Time, _rtt: Duration) {
        self.misses = 0;
        self.answered = true;
    }
    fn on_timeout(&mut self, _now: Time) {
        self.misses = self.misses.saturating_add(1);
    }
    fn verdict(&self) -> Verdict {
        if self.misses >= self.misses_max {
            Verdict::Withdraw
        } else if self.answered {
            Verdict::Attest { info: Vec::new() }
        } else {
            Verdict::Undecided
        }
    }
}

/// Latency: attest while the mean round-trip time over the last `window_len` replies stays at or
/// under `rtt_max`, with the mean in microseconds as the attestation's info (little-endian `u64`),
/// so graph queries can weigh edges by it. An unanswered probe counts as a miss as in
/// [`LivenessMonitor`].
#[derive(Clone, Debug)]
pub struct LatencyMonitor {
    /// The largest acceptable mean round-trip time.
    pub rtt_max: Duration,
    /// How many recent replies the mean covers.
    pub window_len: usize,
    liveness: LivenessMonitor,
    recent: VecDeque<Duration>,
}

impl LatencyMonitor {
    /// A monitor with a mean-RTT threshold over `window_len` replies (at least 1).
    pub fn new(rtt_max: Duration, window_len: usize, misses_max: u32) -> Self {
        LatencyMonitor {
            rtt_max,
            window_len: window_len.max(1),
            liveness: LivenessMonitor::new(misses_max),
            recent: VecDeque::new(),
        }
    }

    /// The mean of the recent round-trip times.
    pub fn mean_rtt(&self) -> Option<Duration> {
        let count = u32::try_from(self.recent.len()).ok().filter(|&c| c > 0)?;
        Some(self.recent.iter().sum::<Duration>() / count)
    }
}

impl Monitor for LatencyMonitor {
    fn on_reply(&mut self, now: Time, rtt: Duration) {
        self.liveness.on_reply(now, rtt);
        if self.recent.len() == self.window_len {
            self.recent.pop_front();
        }
        self.recent.push_back(rtt);
    }
    fn on_timeout(&mut self, now: Time) {
        self.liveness.on_timeout(now);
    }
    fn verdict(&self) -> Verdict {
        match (self.liveness.verdict(), self.mean_rtt()) {
            (Verdict::Withdraw, _) => Verdict::Withdraw,
            (_, Some(mean)) if mean <= self.rtt_max => {
                let micros = u64::try_from(mean.as_micros()).unwrap_or(u64::MAX);
                Verdict::Attest {
                    info: micros.to_le_bytes().to_vec(),
                }
            }
            (_, Some(_)) => Verdict::Withdraw,
            (_, None) => Verdict::Undecided,
        }
    }
}

/// Throughput: attest while the last reported rate from the node is at least
/// `bytes_per_sec_min`, with the rate as info (little-endian `u64`).
#[derive(Clone, Debug)]
pub struct ThroughputMonitor {
    /// The smallest acceptable rate.
    pub bytes_per_sec_min: u64,
    last: Option<u64>,
}

impl ThroughputMonitor {
    /// A monitor with a minimum rate.
    pub fn new(bytes_per_sec_min: u64) -> Self {
        ThroughputMonitor {
            bytes_per_sec_min,
            last: None,
        }
    }
}

impl Monitor for ThroughputMonitor {
    fn on_observation(&mut self, _now: Time, subject: NodeId, observation: &Observation) {
        if let Observation::Throughput {
            node,
            bytes_per_sec,
        } = observation
        {
            if *node == subject {
                self.last = Some(*bytes_per_sec);
            }
        }
    }
    fn verdict(&self) -> Verdict {
        match self.last {
            Some(rate) if rate >= self.bytes_per_sec_min => Verdict::Attest {
                info: rate.to_le_bytes().to_vec(),
            },
            Some(_) => Verdict::Withdraw,
            None => Verdict::Undecided,
        }
    }
}

/// Voting on responses: the node's answers are compared with the majority answer of each request;
/// attest while at most `wrong_max` of its last `window_len` counted answers disagreed (paper 000,
/// section "Discussion: stateful monitoring": "a voting approach to determine the probable
/// correctness of nodes' responses"). A request with no strict majority says nothing.
#[derive(Clone, Debug)]
pub struct VotingMonitor {
    /// Disagreements tolerated within the window.
    pub wrong_max: usize,
    /// How many recent answers are remembered.
    pub window_len: usize,
    recent: VecDeque<bool>,
}

impl VotingMonitor {
    /// A voting monitor over a window of `window_len` answers (at least 1).
    pub fn new(wrong_max: usize, window_len: usize) -> Self {
        VotingMonitor {
            wrong_max,
            window_len: window_len.max(1),
            recent: VecDeque::new(),
        }
    }
}

/// The answer given by a strict majority of `answers`, if any.
pub fn majority_answer(answers: &[(NodeId, [u8; 32])]) -> Option<[u8; 32]> {
    let mut counts: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    for (_, a) in answers {
        *counts.entry(*a).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|&(_, c)| 2 * c > answers.len())
        .map(|(a, _)| a)
}

impl Monitor for VotingMonitor {
    fn on_observation(&mut self, _now: Time, subject: NodeId, observation: &Observation) {
        let Observation::Responses { answers } = observation else {
            return;
        };
        let Some(mine) = answers.iter().find(|(n, _)| *n == subject).map(|(_, a)| *a) else {
            return;
        };
        let Some(majority) = majority_answer(answers) else {
            return;
        };
        if self.recent.len() == self.window_len {
            self.recent.pop_front();
        }
        self.recent.push_back(mine == majority);
    }
    fn verdict(&self) -> Verdict {
        if self.recent.is_empty() {
            return Verdict::Undecided;
        }
        let wrong = self.recent.iter().filter(|agreed| !**agreed).count();
        if wrong > self.wrong_max {
            Verdict::Withdraw
        } else {
            Verdict::Attest { info: Vec::new() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Time = Time::ZERO;

    #[test]
    fn liveness_attests_after_a_reply_and_withdraws_after_consecutive_misses() {
        let mut m = LivenessMonitor::new(2);
        assert_eq!(m.verdict(), Verdict::Undecided);
        m.on_reply(T, Duration::from_millis(5));
        assert_eq!(m.verdict(), Verdict::Attest { info: vec![] });
        m.on_timeout(T);
        assert_eq!(
            m.verdict(),
            Verdict::Attest { info: vec![] },
            "one miss is tolerated"
        );
        m.on_reply(T, Duration::from_millis(5));
        m.on_timeout(T);
        m.on_timeout(T);
        assert_eq!(m.verdict(), Verdict::Withdraw);
        m.on_reply(T, Duration::from_millis(5));
        assert_eq!(
            m.verdict(),
            Verdict::Attest { info: vec![] },
            "a node that answers again is attested again"
        );
    }

    #[test]
    fn latency_threshold_on_the_mean_of_the_window() {
        let mut m = LatencyMonitor::new(Duration::from_millis(20), 3, 2);
        m.on_reply(T, Duration::from_millis(10));
        m.on_reply(T, Duration::from_millis(20));
        assert_eq!(
            m.verdict(),
            Verdict::Attest {
                info: 15_000u64.to_le_bytes().to_vec()
            }
        );
        m.on_reply(T, Duration::from_millis(60));
        assert_eq!(m.mean_rtt(), Some(Duration::from_millis(30)));
        assert_eq!(m.verdict(), Verdict::Withdraw);
        // The window holds 3: the 10 ms reply falls out, then two fast ones bring the mean down.
        m.on_reply(T, Duration::from_millis(1));
        m.on_reply(T, Duration::from_millis(2));
        assert_eq!(m.mean_rtt(), Some(Duration::from_millis(21)));
        m.on_reply(T, Duration::from_millis(3));
        assert_eq!(
            m.verdict(),
            Verdict::Attest {
                info: 2_000u64.to_le_bytes().to_vec()
            }
        );
        m.on_timeout(T);
        m.on_timeout(T);
        assert_eq!(
            m.verdict(),
            Verdict::Withdraw,
            "silence overrides a good mean"
        );
    }

    #[test]
    fn throughput_counts_only_reports_about_its_subject() {
        let mut m = ThroughputMonitor::new(1_000);
        let me = NodeId(1);
        m.on_observation(
            T,
            me,
            &Observation::Throughput {
                node: NodeId(2),
                bytes_per_sec: 5,
            },
        );
        assert_eq!(m.verdict(), Verdict::Undecided);
        m.on_observation(
            T,
            me,
            &Observation::Throughput {
                node: me,
                bytes_per_sec: 5_000,
            },
        );
        assert_eq!(
            m.verdict(),
            Verdict::Attest {
                info: 5_000u64.to_le_bytes().to_vec()
            }
        );
        m.on_observation(
            T,
            me,
            &Observation::Throughput {
                node: me,
                bytes_per_sec: 999,
            },
        );
        assert_eq!(m.verdict(), Verdict::Withdraw);
    }

    #[test]
    fn voting_withdraws_from_a_node_that_keeps_disagreeing() {
        let (good, bad) = ([1u8; 32], [2u8; 32]);
        let liar = NodeId(3);
        let mut m = VotingMonitor::new(1, 4);
        let vote = |liar_answer| Observation::Responses {
            answers: vec![(NodeId(1), good), (NodeId(2), good), (liar, liar_answer)],
        };
        m.on_observation(T, liar, &vote(good));
        assert_eq!(m.verdict(), Verdict::Attest { info: vec![] });
        m.on_observation(T, liar, &vote(bad));
        assert_eq!(
            m.verdict(),
            Verdict::Attest { info: vec![] },
            "one disagreement is tolerated"
        );
        m.on_observation(T, liar, &vote(bad));
        assert_eq!(m.verdict(), Verdict::Withdraw);
        // No strict majority: the request is not counted.
        let split = Observation::Responses {
            answers: vec![(NodeId(1), good), (liar, bad)],
        };
        assert_eq!(majority_answer(&[(NodeId(1), good), (liar, bad)]), None);
        m.on_observation(T, liar, &split);
        assert_eq!(m.recent.len(), 3);
        // The window forgets: four agreeing answers push the disagreements out.
        for _ in 0..4 {
            m.on_observation(T, liar, &vote(good));
        }
        assert_eq!(m.verdict(), Verdict::Attest { info: vec![] });
    }
}
