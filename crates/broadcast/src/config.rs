//! The broadcast's parameters: committee size, fault bound, and every limit on its state.

use std::time::Duration;

use crate::message::PAYLOAD_BYTES_MAX;

/// Parameters of one node's broadcast instance. All correct nodes must use the same `n` and `f`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastConfig {
    /// Committee size; nodes are `NodeId(0)..NodeId(n)`.
    pub n: usize,
    /// Faults tolerated: Bracha needs `n >= 3f + 1`.
    pub f: usize,
    /// Broadcasts of one origin that may be undelivered at once, counted from that origin's
    /// lowest undelivered sequence number. Bounds each origin's share of this node's memory.
    pub window_per_origin: u64,
    /// Local broadcast requests held while this node's own window is full; more are refused.
    pub request_queue_len_max: usize,
    /// Largest payload accepted from the local application, in bytes.
    pub payload_bytes_max: usize,
    /// How often undelivered broadcasts are retransmitted (links may lose messages).
    pub retransmit_interval: Duration,
    /// After delivering, how many retransmission rounds this node keeps sending its READY to peers
    /// it has not heard a READY from (so a peer that missed everything can still deliver).
    pub retransmit_rounds_after_delivery_max: u32,
    /// Delivered broadcasts whose READY this node keeps, to answer peers that are behind.
    pub delivered_cache_len_max: usize,
    /// Messages sent per retransmission round, at most; the rest wait for the next round.
    pub retransmit_messages_per_round_max: usize,
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Too few nodes for the fault bound.
    #[error("n = {n} nodes cannot tolerate f = {f} faults: Bracha broadcast needs n >= 3f + 1")]
    TooFewNodes {
        /// Committee size.
        n: usize,
        /// Fault bound.
        f: usize,
    },
    /// The key ring's committee is not the configured size.
    #[error("the config says n = {n} nodes but the key files list {keys} public keys")]
    CommitteeSizeMismatch {
        /// Configured committee size.
        n: usize,
        /// Public keys in the key ring.
        keys: usize,
    },
    /// A limit is zero or out of range.
    #[error("{name} must be between 1 and {max}, got {value}")]
    LimitOutOfRange {
        /// The field.
        name: &'static str,
        /// What was given.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
}

impl BroadcastConfig {
    /// Defaults for a committee of `n = 3f + 1` nodes.
    pub fn for_faults(f: usize) -> BroadcastConfig {
        BroadcastConfig {
            n: 3 * f + 1,
            f,
            window_per_origin: 64,
            request_queue_len_max: 1024,
            payload_bytes_max: PAYLOAD_BYTES_MAX,
            retransmit_interval: Duration::from_millis(200),
            retransmit_rounds_after_delivery_max: 10,
            delivered_cache_len_max: 1024,
            retransmit_messages_per_round_max: 4096,
        }
    }

    /// Echoes or readies that make a quorum: `2f + 1` (Bracha's `(n + f) / 2` rounded up, at n = 3f+1).
    pub fn quorum(&self) -> usize {
        2 * self.f + 1
    }

    /// Readies that prove at least one correct node is ready: `f + 1`.
    pub fn ready_amplification(&self) -> usize {
        self.f + 1
    }

    /// Check the configuration can run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n < 3 * self.f + 1 {
            return Err(ConfigError::TooFewNodes {
                n: self.n,
                f: self.f,
            });
        }
        let limits: [(&'static str, u64, u64); 5] = [
            ("window_per_origin", self.window_per_origin, 1 << 20),
            (
                "payload_bytes_max",
                self.payload_bytes_max as u64,
                PAYLOAD_BYTES_MAX as u64,
            ),
            (
                "request_queue_len_max",
                self.request_queue_len_max as u64,
                1 << 24,
            ),
            (
                "delivered_cache_len_max",
                self.delivered_cache_len_max as u64,
                1 << 24,
            ),
            (
                "retransmit_messages_per_round_max",
                self.retransmit_messages_per_round_max as u64,
                1 << 24,
            ),
        ];
        for (name, value, max) in limits {
            if value == 0 || value > max {
                return Err(ConfigError::LimitOutOfRange { name, value, max });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_quorums_follow_f() {
        let c = BroadcastConfig::for_faults(2);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.n, c.quorum(), c.ready_amplification()), (7, 5, 3));
    }

    #[test]
    fn rejects_too_few_nodes_and_bad_limits() {
        let c = BroadcastConfig {
            n: 3,
            ..BroadcastConfig::for_faults(1)
        };
        assert_eq!(c.validate(), Err(ConfigError::TooFewNodes { n: 3, f: 1 }));
        let c = BroadcastConfig {
            window_per_origin: 0,
            ..BroadcastConfig::for_faults(1)
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LimitOutOfRange {
                name: "window_per_origin",
                ..
            })
        ));
        let c = BroadcastConfig {
            payload_bytes_max: PAYLOAD_BYTES_MAX + 1,
            ..BroadcastConfig::for_faults(1)
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LimitOutOfRange {
                name: "payload_bytes_max",
                ..
            })
        ));
    }
}
