//! The configuration file of a replicated KV server or voting proxy (TOML), and the errors of
//! the service drivers.
//!
//! ```toml
//! resp = "127.0.0.1:7300"             # the RESP port clients connect to
//!
//! [node]                              # the runtime's node config (stockade_runtime::NodeConfig)
//! id = 0
//! listen = "127.0.0.1:7200"
//! key_file = "/cluster/server0.noise"
//! data_dir = "/cluster/data0"
//! metrics = "127.0.0.1:7400"          # optional
//! [[node.peers]]
//! id = 1
//! addr = "127.0.0.1:7201"
//! public_key = "..."
//!
//! [replication]
//! f = 1
//! servers = [0, 1, 2, 3]              # node ids of the Prime participants, in participant order
//! verifying_keys = ["...", ...]       # each server's Ed25519 public key (hex), same order
//! signing_key_file = "/cluster/server0.sign"
//! threshold_key_set = "..."          # servers: the (2f+1)-of-N threshold public key set (hex)
//! threshold_share_file = "/cluster/server0.share"   # servers: this server's secret share
//!
//! [proxy]                             # optional; only the voting proxy reads it
//! first_client = 4611686018427387904
//! lanes = 64
//! retry_timeout_ms = 500
//! retries_max = 6
//! ```

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockade_core::NodeId;
use stockade_crypto::ed25519::{SigningKey, VerifyingKey};
use stockade_crypto::scheme::{Signer, ThresholdSigner, ThresholdVerifier, Verifier};
use stockade_crypto::threshold::{PublicKeySet, SecretKeyShare};
use stockade_replication::{Ed25519MerkleAuth, Membership, ThresholdKeys};
use stockade_runtime::NodeConfig;
use thiserror::Error;

use crate::replica::ReplicaError;
use crate::voting::{LANES_DEFAULT, RETRIES_MAX_DEFAULT};

/// Why a server, proxy or cluster command failed.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file does not parse.
    #[error("configuration {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A key file or key in the configuration is malformed.
    #[error("key {what}: {message}")]
    Key {
        /// Which key.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The runtime could not start the node.
    #[error("node: {0}")]
    Node(#[from] stockade_runtime::NodeError),
    /// The replica could not be built.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The RESP or metrics endpoint could not be opened.
    #[error("{what} {addr}: {message}")]
    Listen {
        /// Which endpoint.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
    /// A cluster process could not be started or stopped.
    #[error("cluster: {0}")]
    Cluster(String),
}

impl ServiceError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
        move |source| ServiceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Who the Prime servers are and how this node signs and checks replies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Faulty servers tolerated (N = 3f + 1).
    pub f: usize,
    /// Node ids of the Prime participants, in participant order.
    pub servers: Vec<u32>,
    /// Each server's Ed25519 verifying key (64 hex characters), in participant order.
    pub verifying_keys: Vec<String>,
    /// This node's Ed25519 signing key file (a proxy's key is never used to sign).
    pub signing_key_file: PathBuf,
    /// The servers' (2f+1)-of-N BLS threshold public key set, as hex: view changes carry one
    /// threshold signature made from 2f+1 servers' shares. Servers need it; a proxy does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_key_set: Option<String>,
    /// This server's secret share of that key (written by the dealer, mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_share_file: Option<PathBuf>,
}

/// The voting proxy's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyParams {
    /// The Prime client id of its lane 0 (each proxy of a cluster needs its own range).
    pub first_client: u64,
    /// Commands in flight at once.
    pub lanes: usize,
    /// Wait this long for f+1 matching replies before re-sending through another server.
    pub retry_timeout_ms: u64,
    /// Re-sends of one command before it fails.
    pub retries_max: u32,
}

/// Proxy client ids start here; server-local client ids stay below it.
pub const PROXY_FIRST_CLIENT_DEFAULT: u64 = 1 << 62;

impl Default for ProxyParams {
    fn default() -> Self {
        ProxyParams {
            first_client: PROXY_FIRST_CLIENT_DEFAULT,
            lanes: LANES_DEFAULT,
            retry_timeout_ms: 500,
            retries_max: RETRIES_MAX_DEFAULT,
        }
    }
}

impl ProxyParams {
    /// The retry timeout as a duration.
    pub fn retry_timeout(&self) -> Duration {
        Duration::from_millis(self.retry_timeout_ms)
    }
}

/// The whole configuration file of a server or proxy. See the module documentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The RESP address clients connect to.
    pub resp: SocketAddr,
    /// The runtime node (links, storage, metrics).
    pub node: NodeConfig,
    /// The Prime servers and keys.
    pub replication: ReplicationConfig,
    /// Voting proxy parameters.
    #[serde(default)]
    pub proxy: ProxyParams,
}

impl ServiceConfig {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<ServiceConfig, ServiceError> {
        let text = fs::read_to_string(path).map_err(ServiceError::io(path))?;
        let config: ServiceConfig = toml::from_str(&text).map_err(|e| ServiceError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| ServiceError::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Write this configuration to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ServiceError> {
        let text = toml::to_string(self).map_err(|e| ServiceError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        fs::write(path, text).map_err(ServiceError::io(path))
    }

    fn validate(&self) -> Result<(), String> {
        let r = &self.replication;
        if r.servers.len() != 3 * r.f + 1 {
            return Err(format!(
                "replication.servers lists {} servers but f = {} needs 3f+1 = {}",
                r.servers.len(),
                r.f,
                3 * r.f + 1
            ));
        }
        if r.verifying_keys.len() != r.servers.len() {
            return Err(format!(
                "replication.verifying_keys has {} keys for {} servers",
                r.verifying_keys.len(),
                r.servers.len()
            ));
        }
        if self.proxy.lanes == 0 {
            return Err("proxy.lanes must be at least 1".into());
        }
        self.node.validate().map_err(|e| e.to_string())
    }

    /// The Prime membership: participant i is reached at node `servers[i]`.
    pub fn membership(&self) -> Result<Membership, ServiceError> {
        let nodes = self
            .replication
            .servers
            .iter()
            .map(|id| NodeId(*id))
            .collect();
        Membership::new(nodes).map_err(|e| ServiceError::Config {
            path: PathBuf::new(),
            message: e.to_string(),
        })
    }

    /// The signer of this node's replies and the verifiers of every server's.
    pub fn auth(&self) -> Result<Ed25519MerkleAuth, ServiceError> {
        let signing = load_signing_key(&self.replication.signing_key_file)?;
        let verifiers = self
            .replication
            .verifying_keys
            .iter()
            .enumerate()
            .map(|(i, hex)| {
                VerifyingKey::from_hex(hex)
                    .map(Verifier::Real)
                    .map_err(|e| ServiceError::Key {
                        what: format!("replication.verifying_keys[{i}]"),
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ed25519MerkleAuth::new(Signer::Real(signing), verifiers))
    }

    /// A server's authenticator: [`ServiceConfig::auth`] plus its share of the servers'
    /// threshold key (both `threshold_*` settings are required).
    pub fn server_auth(&self) -> Result<Ed25519MerkleAuth, ServiceError> {
        let r = &self.replication;
        let missing = |what: &str| ServiceError::Key {
            what: format!("replication.{what}"),
            message: "a server needs its threshold key share and the threshold key set for view \
                      changes; `stockade kv cluster up` deals them"
                .into(),
        };
        let set_hex = r
            .threshold_key_set
            .as_deref()
            .ok_or_else(|| missing("threshold_key_set"))?;
        let share_path = r
            .threshold_share_file
            .as_deref()
            .ok_or_else(|| missing("threshold_share_file"))?;
        let set = PublicKeySet::from_hex(set_hex).map_err(|e| ServiceError::Key {
            what: "replication.threshold_key_set".into(),
            message: e.to_string(),
        })?;
        let share = load_threshold_share(share_path)?;
        let keys = ThresholdKeys::new(ThresholdSigner::Real(share), ThresholdVerifier::Real(set));
        Ok(self.auth()?.with_threshold(keys))
    }
}

/// Write a threshold key share to `path` as hex, readable by the owner only.
pub fn save_threshold_share(share: &SecretKeyShare, path: &Path) -> Result<(), ServiceError> {
    write_owner_only(path, share.to_hex().as_str())
}

/// Read a share written by [`save_threshold_share`].
pub fn load_threshold_share(path: &Path) -> Result<SecretKeyShare, ServiceError> {
    let text = fs::read_to_string(path).map_err(ServiceError::io(path))?;
    SecretKeyShare::from_hex(text.trim()).map_err(|e| ServiceError::Key {
        what: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Write `key` to `path` as hex, readable by the owner only.
pub fn save_signing_key(key: &SigningKey, path: &Path) -> Result<(), ServiceError> {
    write_owner_only(path, key.to_hex().as_str())
}

/// Write `text` and a newline to `path`, created readable by the owner only.
fn write_owner_only(path: &Path, text: &str) -> Result<(), ServiceError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(ServiceError::io(path))?;
    writeln!(file, "{text}").map_err(ServiceError::io(path))
}

/// Read a signing key written by [`save_signing_key`].
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ServiceError> {
    let text = fs::read_to_string(path).map_err(ServiceError::io(path))?;
    SigningKey::from_hex(text.trim()).map_err(|e| ServiceError::Key {
        what: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Milliseconds since the Unix epoch: the incarnation of a process's Prime clients (drivers
/// only; protocol code never reads the clock).
pub(crate) fn incarnation_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}
