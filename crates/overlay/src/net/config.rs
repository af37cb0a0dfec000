//! An overlay daemon's TOML config: the runtime's node config (links, Noise key, storage) under
//! `[node]`, and the overlay's own settings under `[overlay]`.
//!
//! ```toml
//! [node]
//! id = 3
//! listen = "127.0.0.1:7603"
//! key_file = "noise.key"
//! data_dir = "data"
//! [[node.peers]]                    # every node the links may talk to (static, see below)
//! id = 0
//! addr = "127.0.0.1:7600"
//! public_key = "5f1c...64 hex characters..."
//!
//! [overlay]
//! bootstrap = 0                     # the node to join through; absent on the first node
//! control = "127.0.0.1:7703"        # the local control interface (loopback only)
//! certificate_authority = "ab12..." # optional: the CA's Ed25519 public key (hex) ...
//! certificate = "..."               # ... and this node's certificate from it (hex)
//! replicas = 4                      # k, replicas per DHT object
//! join_timeout_ms = 5000            # optional: a join unanswered this long is sent again
//! join_attempts_max = 10            # optional: give up after this many (default: never)
//! ```
//!
//! A daemon keeps trying to join until its bootstrap answers (one JOIN per `join_timeout_ms`),
//! so nodes started before their bootstrap, or while it restarts, join once it is up.
//!
//! What is static and what is not: the runtime's links authenticate peers by Noise static keys
//! known in advance, so `[[node.peers]]` lists every node a daemon may ever exchange datagrams
//! with. Overlay membership is not taken from that list: a daemon knows only its bootstrap node
//! when it starts, and its leaf set, routing table and neighbourhood set fill through Pastry's
//! join protocol, keep-alives and repair (paper 002, "Pastry: Node addition").

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stockade_core::wire::{DecodeLimits, Wire};
use stockade_core::NodeId;
use stockade_runtime::config::ConfigError;
use stockade_runtime::{NodeConfig, StaticKeypair};

use super::NetError;
use crate::certificate::NodeCertificate;
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::service::ServiceConfig;

/// Domain separation for node ids derived from Noise public keys.
const NODE_ID_DOMAIN: &[u8] = b"stockade-overlay/node-id-from-noise-key/v1";

/// Everything one `stockade overlay run` process needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayNodeConfig {
    /// Links, Noise key file, storage directory (the runtime's config).
    pub node: NodeConfig,
    /// The overlay's settings.
    pub overlay: OverlaySettings,
}

/// The `[overlay]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlaySettings {
    /// The peer id of the node to join through; `None` for the first node of an overlay.
    #[serde(default)]
    pub bootstrap: Option<u32>,
    /// TCP address of the local control interface; must be a loopback address.
    pub control: SocketAddr,
    /// The certificate authority's Ed25519 public key (hex), when node ids are certified.
    #[serde(default)]
    pub certificate_authority: Option<String>,
    /// This node's certificate (hex of its wire encoding); required with an authority.
    #[serde(default)]
    pub certificate: Option<String>,
    /// Replicas per DHT object, k.
    #[serde(default = "replicas_default")]
    pub replicas: usize,
    /// A join not answered within this is sent again, ms (default: Pastry's, 5,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_timeout_ms: Option<u64>,
    /// Join attempts before the daemon gives up and reports `join_failed` (default: it never
    /// gives up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_attempts_max: Option<u32>,
}

fn replicas_default() -> usize {
    crate::dht::PastConfig::default().replicas
}

fn invalid(field: &'static str, problem: impl Into<String>) -> NetError {
    NetError::Config(ConfigError::Invalid {
        field,
        problem: problem.into(),
    })
}

impl OverlayNodeConfig {
    /// Read and check a config file. A relative `key_file` or `data_dir` is taken relative to
    /// the config file's directory.
    pub fn load(path: &Path) -> Result<OverlayNodeConfig, NetError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            NetError::Config(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        let mut config: OverlayNodeConfig = toml::from_str(&text).map_err(|source| {
            NetError::Config(ConfigError::Toml {
                path: path.to_path_buf(),
                source,
            })
        })?;
        if let Some(dir) = path.parent() {
            config.node.key_file = dir.join(&config.node.key_file);
            config.node.data_dir = dir.join(&config.node.data_dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String, NetError> {
        toml::to_string(self).map_err(|e| invalid("(whole config)", e.to_string()))
    }

    /// Check the runtime's part, the control address, the bootstrap and the certificate fields.
    pub fn validate(&self) -> Result<(), NetError> {
        self.node.validate()?;
        if !self.overlay.control.ip().is_loopback() {
            return Err(invalid(
                "overlay.control",
                format!(
                    "{} is not a loopback address; the control interface has no authentication, use 127.0.0.1",
                    self.overlay.control
                ),
            ));
        }
        if let Some(bootstrap) = self.overlay.bootstrap {
            if !self.node.peers.iter().any(|p| p.id == bootstrap) {
                return Err(invalid(
                    "overlay.bootstrap",
                    format!(
                        "node {bootstrap} is not among [[node.peers]]; the links cannot reach it"
                    ),
                ));
            }
        }
        let zero = [
            (
                "overlay.join_timeout_ms",
                self.overlay.join_timeout_ms == Some(0),
            ),
            (
                "overlay.join_attempts_max",
                self.overlay.join_attempts_max == Some(0),
            ),
        ];
        if let Some((field, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(invalid(
                field,
                "must be at least 1 (leave it out for the default)",
            ));
        }
        let leaf_half = crate::leaf_set::LEAF_SET_SIZE_DEFAULT / 2;
        if self.overlay.replicas == 0 || self.overlay.replicas > leaf_half + 1 {
            return Err(invalid(
                "overlay.replicas",
                format!("must be within 1..={} (L/2 + 1)", leaf_half + 1),
            ));
        }
        match (
            &self.overlay.certificate_authority,
            &self.overlay.certificate,
        ) {
            (Some(_), None) => Err(invalid(
                "overlay.certificate",
                "a certificate_authority is set but this node has no certificate from it",
            )),
            (None, Some(_)) => Err(invalid(
                "overlay.certificate_authority",
                "a certificate is set but not the authority that checks peers' certificates",
            )),
            _ => Ok(()),
        }
    }

    /// The authority's public key, when node ids are certified.
    pub fn authority(&self) -> Result<Option<[u8; 32]>, NetError> {
        let Some(hex_key) = &self.overlay.certificate_authority else {
            return Ok(None);
        };
        let bytes = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                invalid(
                    "overlay.certificate_authority",
                    "must be 64 hex characters (an Ed25519 public key)",
                )
            })?;
        Ok(Some(bytes))
    }

    /// This node's handle on the ring and its certificate: the certified id when the overlay
    /// certifies ids (checked against the authority and this node's id), else an id derived from
    /// the node's Noise public key.
    pub fn identity(
        &self,
        keypair: &StaticKeypair,
    ) -> Result<(NodeHandle, Option<NodeCertificate>), NetError> {
        let addr = self.node.node_id();
        let Some(authority) = self.authority()? else {
            let id = node_id_from_noise_key(&keypair.public().0);
            return Ok((NodeHandle { id, addr }, None));
        };
        let certificate = self.certificate()?.ok_or_else(|| {
            invalid(
                "overlay.certificate",
                "missing; the authority issues one per node",
            )
        })?;
        certificate
            .verify_for(certificate.handle(), &authority)
            .map_err(|e| invalid("overlay.certificate", e.to_string()))?;
        if certificate.addr != addr {
            return Err(invalid(
                "overlay.certificate",
                format!(
                    "certifies node {}, but this is node {}",
                    certificate.addr.0, addr.0
                ),
            ));
        }
        Ok((certificate.handle(), Some(certificate)))
    }

    fn certificate(&self) -> Result<Option<NodeCertificate>, NetError> {
        let Some(text) = &self.overlay.certificate else {
            return Ok(None);
        };
        let bytes = hex::decode(text.trim())
            .map_err(|e| invalid("overlay.certificate", format!("not hex: {e}")))?;
        NodeCertificate::from_bytes(&bytes, DecodeLimits::MESSAGE)
            .map(Some)
            .map_err(|e| invalid("overlay.certificate", format!("malformed: {e}")))
    }

    /// The service's tunables for this config.
    pub fn service_config(&self) -> Result<ServiceConfig, NetError> {
        let mut config = ServiceConfig::default();
        config.dht.replicas = self.overlay.replicas;
        for pastry in [&mut config.dht.pastry, &mut config.multicast.pastry] {
            pastry.join_attempts_max = self.overlay.join_attempts_max.unwrap_or(u32::MAX);
            if let Some(timeout_ms) = self.overlay.join_timeout_ms {
                pastry.join_timeout_ms = timeout_ms;
            }
        }
        Ok(match self.authority()? {
            Some(authority) => config.with_certificate_authority(authority),
            None => config,
        })
    }

    /// The bootstrap node's transport address.
    pub fn bootstrap(&self) -> Option<NodeId> {
        self.overlay.bootstrap.map(NodeId)
    }
}

/// The ring position of a node without a certificate: SHA-256 of its Noise public key. A node
/// cannot pick its id freely without also picking the key its links authenticate with.
pub fn node_id_from_noise_key(public_key: &[u8; 32]) -> OverlayId {
    let mut hasher = Sha256::new();
    hasher.update(NODE_ID_DOMAIN);
    hasher.update(public_key);
    OverlayId::from_digest_prefix(&hasher.finalize().into())
}

/// The hex text of a certificate, as `[overlay] certificate` holds it.
pub fn certificate_hex(certificate: &NodeCertificate) -> String {
    hex::encode(certificate.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(overlay_extra: &str) -> OverlayNodeConfig {
        let text = format!(
            "[node]\nid = 1\nlisten = \"127.0.0.1:7601\"\nkey_file = \"noise.key\"\n\
             data_dir = \"data\"\n[[node.peers]]\nid = 0\naddr = \"127.0.0.1:7600\"\n\
             public_key = \"{}\"\n[overlay]\nbootstrap = 0\ncontrol = \"127.0.0.1:7701\"\n{overlay_extra}",
            "ab".repeat(32)
        );
        toml::from_str(&text).expect("a well-formed config")
    }

    #[test]
    fn a_daemon_never_gives_up_joining_unless_told_to() {
        let defaults = config("").service_config().expect("service config");
        for pastry in [&defaults.dht.pastry, &defaults.multicast.pastry] {
            assert_eq!(pastry.join_attempts_max, u32::MAX);
            assert_eq!(pastry.join_timeout_ms, 5_000);
        }
        let set = config("join_timeout_ms = 250\njoin_attempts_max = 3\n");
        assert!(set.validate().is_ok());
        let tuned = set.service_config().expect("service config");
        for pastry in [&tuned.dht.pastry, &tuned.multicast.pastry] {
            assert_eq!((pastry.join_timeout_ms, pastry.join_attempts_max), (250, 3));
        }
        let zero = config("join_attempts_max = 0\n").validate();
        assert!(
            matches!(&zero, Err(e) if e.to_string().contains("join_attempts_max")
                && e.to_string().contains("at least 1")),
            "{zero:?}"
        );
        // Written out and read back, an unset field stays unset.
        let text = config("").to_toml().expect("toml");
        assert!(!text.contains("join_"), "{text}");
    }
}
