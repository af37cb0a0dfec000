//! Node configuration as read from a TOML file: identity, addresses, peers, data directory,
//! metrics endpoint and the link's limits.
//!
//! ```toml
//! id = 0
//! listen = "127.0.0.1:7100"
//! key_file = "node0.key"
//! data_dir = "data0"
//! metrics = "127.0.0.1:9100"      # optional
//!
//! [[peers]]
//! id = 1
//! addr = "127.0.0.1:7101"
//! public_key = "5f1c...64 hex characters..."
//!
//! [link]                           # optional; every field has a default
//! datagram_payload_bytes_max = 1400
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockade_core::NodeId;
use thiserror::Error;

use crate::keys::PublicKey;
use crate::packet::DATA_OVERHEAD_LEN;
use crate::records::FRAGMENT_HEADER_LEN;

/// One node's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id; must not appear among `peers`.
    pub id: u32,
    /// UDP address the node's links listen on.
    pub listen: SocketAddr,
    /// This node's static private key (see [`crate::keys::StaticKeypair::save`]).
    pub key_file: PathBuf,
    /// Every other node, known in advance.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Directory of the node's redb database.
    pub data_dir: PathBuf,
    /// Address of the Prometheus endpoint (must be a loopback address), or none.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// Link limits.
    #[serde(default)]
    pub link: LinkConfig,
}

/// A peer known in advance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id.
    pub id: u32,
    /// Where its links listen.
    pub addr: SocketAddr,
    /// Its static public key, 64 hex characters.
    pub public_key: String,
}

/// A peer with its key parsed: what the link layer works with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's node id.
    pub id: NodeId,
    /// Where its links listen.
    pub addr: SocketAddr,
    /// Its static public key.
    pub public_key: PublicKey,
}

/// Limits and timings of the Noise/UDP links. Every bound is named with its unit last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Largest UDP payload sent (1400 stays under a 1500-byte MTU with IP and UDP headers; on
    /// loopback up to 65000 is fine and much faster).
    pub datagram_payload_bytes_max: usize,
    /// Largest protocol message (after framing) accepted for sending or reassembly.
    pub message_bytes_max: usize,
    /// Fragmented messages one peer may have in reassembly at once.
    pub reassembly_partials_per_peer_max: usize,
    /// A partial message not completed within this is abandoned.
    pub reassembly_timeout_ms: u64,
    /// Messages queued per peer while its handshake is in progress.
    pub pending_messages_per_peer_max: usize,
    /// Start a new handshake after this many datagrams sealed on one session.
    pub rekey_after_messages: u64,
    /// Start a new handshake when the session is this old.
    pub rekey_after_ms: u64,
    /// Refuse to use a session this old (must exceed `rekey_after_ms`).
    pub reject_after_ms: u64,
    /// Resend a handshake initiation not answered within this.
    pub handshake_retry_ms: u64,
    /// Give up (dropping the queued messages) after this many initiations without an answer.
    pub handshake_attempts_max: u32,
    /// Handshake initiations per second a node processes before it demands cookies (the load
    /// threshold of the flood defence; 0 demands a cookie always).
    pub handshake_inits_per_second_max: u32,
    /// How long a cookie secret, and so a cookie, stays valid.
    pub cookie_secret_lifetime_ms: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            datagram_payload_bytes_max: 1400,
            message_bytes_max: stockade_core::DecodeLimits::MESSAGE.input_bytes_max,
            reassembly_partials_per_peer_max: 16,
            reassembly_timeout_ms: 5_000,
            pending_messages_per_peer_max: 4096,
            rekey_after_messages: 1 << 48,
            rekey_after_ms: 120_000,
            reject_after_ms: 180_000,
            handshake_retry_ms: 1_000,
            handshake_attempts_max: 20,
            handshake_inits_per_second_max: 200,
            cookie_secret_lifetime_ms: 120_000,
        }
    }
}

/// The smallest datagram payload a link accepts: room for the sealed header and one fragment
/// record carrying at least 64 bytes.
pub const DATAGRAM_PAYLOAD_BYTES_MIN: usize = DATA_OVERHEAD_LEN + FRAGMENT_HEADER_LEN + 64;

/// The largest UDP payload over IPv4.
pub const DATAGRAM_PAYLOAD_BYTES_LIMIT: usize = 65_507;

/// A configuration that cannot work, and how to fix it.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node config.
    #[error("config file {path}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: toml::de::Error,
    },
    /// A field's value is unusable.
    #[error("config field `{field}`: {problem}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        problem: problem.into(),
    }
}

impl LinkConfig {
    /// Check the limits against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = DATAGRAM_PAYLOAD_BYTES_MIN..=DATAGRAM_PAYLOAD_BYTES_LIMIT;
        if !range.contains(&self.datagram_payload_bytes_max) {
            return Err(invalid(
                "link.datagram_payload_bytes_max",
                format!("must be within {}..={}", range.start(), range.end()),
            ));
        }
        if self.message_bytes_max == 0 || self.message_bytes_max > u32::MAX as usize {
            return Err(invalid(
                "link.message_bytes_max",
                "must be at least 1 and fit in 32 bits",
            ));
        }
        let plaintext = self.datagram_payload_bytes_max - DATA_OVERHEAD_LEN - FRAGMENT_HEADER_LEN;
        if self.message_bytes_max.div_ceil(plaintext) > crate::records::FRAGMENTS_PER_MESSAGE_MAX {
            return Err(invalid(
                "link.message_bytes_max",
                "needs more than 1024 fragments at this datagram size: raise datagram_payload_bytes_max",
            ));
        }
        if self.reassembly_partials_per_peer_max == 0 || self.pending_messages_per_peer_max == 0 {
            return Err(invalid(
                "link",
                "queue and reassembly bounds must be at least 1",
            ));
        }
        if self.reject_after_ms <= self.rekey_after_ms {
            return Err(invalid(
                "link.reject_after_ms",
                "must exceed rekey_after_ms",
            ));
        }
        if self.handshake_attempts_max == 0 || self.handshake_retry_ms == 0 {
            return Err(invalid(
                "link.handshake_attempts_max",
                "attempts and retry interval must be at least 1",
            ));
        }
        Ok(())
    }

    /// `reassembly_timeout_ms` as a duration.
    pub fn reassembly_timeout(&self) -> Duration {
        Duration::from_millis(self.reassembly_timeout_ms)
    }
}

impl NodeConfig {
    /// Read and validate a TOML config. A relative `key_file` or `data_dir` is taken relative to
    /// the config file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|source| ConfigError::Toml {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(dir) = path.parent() {
            config.key_file = dir.join(&config.key_file);
            config.data_dir = dir.join(&config.data_dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| invalid("(whole config)", e.to_string()))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// Check ids, keys and addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.link.validate()?;
        self.parsed_peers()?;
        if let Some(metrics) = self.metrics {
            if !metrics.ip().is_loopback() {
                return Err(invalid(
                    "metrics",
                    format!("{metrics} is not a loopback address; use 127.0.0.1"),
                ));
            }
        }
        Ok(())
    }

    /// The peers with their keys parsed; fails on a bad key, a duplicate id, or this node's own id.
    pub fn parsed_peers(&self) -> Result<Vec<Peer>, ConfigError> {
        let mut peers: Vec<Peer> = Vec::with_capacity(self.peers.len());
        for p in &self.peers {
            if p.id == self.id {
                return Err(invalid(
                    "peers",
                    format!("node {} lists itself as a peer", p.id),
                ));
            }
            if peers.iter().any(|q| q.id.0 == p.id) {
                return Err(invalid("peers", format!("peer id {} appears twice", p.id)));
            }
            let public_key = p
                .public_key
                .parse()
                .map_err(|e| invalid("peers.public_key", format!("peer {}: {e}", p.id)))?;
            peers.push(Peer {
                id: NodeId(p.id),
                addr: p.addr,
                public_key,
            });
        }
        Ok(peers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeConfig {
        NodeConfig {
            id: 0,
            listen: "127.0.0.1:7100".parse().expect("literal"),
            key_file: "node0.key".into(),
            peers: vec![PeerConfig {
                id: 1,
                addr: "127.0.0.1:7101".parse().expect("literal"),
                public_key: "ab".repeat(32),
            }],
            data_dir: "data0".into(),
            metrics: Some("127.0.0.1:9100".parse().expect("literal")),
            link: LinkConfig::default(),
        }
    }

    #[test]
    fn toml_round_trips_and_validates() -> Result<(), ConfigError> {
        let config = sample();
        let text = config.to_toml()?;
        let back: NodeConfig = toml::from_str(&text).map_err(|e| invalid("test", e.to_string()))?;
        assert_eq!(back, config);
        back.validate()?;
        assert_eq!(back.parsed_peers()?[0].id, NodeId(1));
        Ok(())
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = sample();
        c.peers[0].id = 0;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid { field: "peers", .. })
        ));
        let mut c = sample();
        c.peers[0].public_key = "xyz".into();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "peers.public_key",
                ..
            })
        ));
        let mut c = sample();
        c.metrics = Some("0.0.0.0:9100".parse().expect("literal"));
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "metrics",
                ..
            })
        ));
        let mut c = sample();
        c.link.datagram_payload_bytes_max = 10;
        assert!(c.validate().is_err());
    }
}
