//! A broadcast node's TOML config: the runtime's node config (links, keys, storage), the
//! committee's Ed25519 keys, and the faults to inject (tests and the demo only).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use stockade_broadcast::{BroadcastConfig, KeyRing};
use stockade_crypto::ed25519::VerifyingKey;
use stockade_runtime::NodeConfig;

use super::faults::InjectedFaults;
use crate::keygen::load_ed25519;

/// Everything one `stockade broadcast-node` process needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastNodeConfig {
    /// Links, Noise key file, storage directory (the runtime's config).
    pub node: NodeConfig,
    /// The broadcast committee.
    pub broadcast: CommitteeConfig,
    /// Faults to inject; none by default.
    #[serde(default)]
    pub faults: InjectedFaults,
}

/// The committee: its fault bound and every member's Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeConfig {
    /// Faults tolerated; the committee has `3f + 1` members.
    pub f: usize,
    /// This node's Ed25519 secret key file (written by `stockade keygen`, mode 0600).
    pub ed25519_key_file: PathBuf,
    /// Member `i`'s Ed25519 public key (hex) at index `i`.
    pub ed25519_public_keys: Vec<String>,
}

impl BroadcastNodeConfig {
    /// Read and check a config file.
    pub fn load(path: &Path) -> anyhow::Result<BroadcastNodeConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: BroadcastNodeConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config
            .node
            .validate()
            .with_context(|| format!("checking [node] of {}", path.display()))?;
        if !(0.0..0.5).contains(&config.faults.inbound_loss) {
            bail!(
                "[faults] inbound_loss must be in [0, 0.5), got {}",
                config.faults.inbound_loss
            );
        }
        Ok(config)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(self).context("encoding a broadcast node config")
    }

    /// The broadcast's parameters.
    pub fn broadcast_config(&self) -> BroadcastConfig {
        BroadcastConfig::for_faults(self.broadcast.f)
    }

    /// This node's key ring: its secret key and the committee's public keys.
    pub fn key_ring(&self) -> anyhow::Result<KeyRing> {
        let secret = load_ed25519(&self.broadcast.ed25519_key_file)?;
        let committee = self
            .broadcast
            .ed25519_public_keys
            .iter()
            .enumerate()
            .map(|(i, hex)| {
                VerifyingKey::from_hex(hex)
                    .map_err(|e| anyhow::anyhow!("[broadcast] ed25519_public_keys[{i}]: {e}"))
            })
            .collect::<anyhow::Result<Vec<VerifyingKey>>>()?;
        Ok(KeyRing::new(self.node.node_id(), secret, committee)?)
    }
}
