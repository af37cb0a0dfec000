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
//! link_rtt_ms = 1                     # optional: picks Prime's periods (absent: wide-area)
//! threshold_key_set = "..."          # servers: the (2f+1)-of-N threshold public key set (hex)
//! threshold_share_file = "/cluster/server0.share"   # servers: this server's secret share
//!
//! [proxy]                             # optional; only the voting proxy reads it
//! first_client = 4611686018427387904
//! lanes = 256
//! retry_timeout_ms = 500
//! retries_max = 6
//! server_resp = ["127.0.0.1:7300", ...] # each server's RESP port, in participant order: where
//!                                     # replies over 16 KiB are fetched (crate::large_reply)
//! home_server = 0                     # lanes send through this server first
//! spread_lanes = false                # true: spread lanes over all servers instead
//!
//! [attack]                            # optional, demonstrations and tests ONLY: see AttackConfig
//! misbehave_on_purpose = true
//! delay_pre_prepares_ms = 450         # a scheduled attack...
//! from_ms = 3000
//! until_ms = 6000
//! control_file = "/cluster/server0.attack"   # ...and/or switches changed while it runs
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
use stockade_replication::{Attack, Membership, PrimeConfig, ThresholdKeys};
use stockade_runtime::NodeConfig;
use thiserror::Error;

use crate::attack::AttackSchedule;
use crate::replica::ReplicaError;
use crate::verified_roots::{RootCachingAuth, VERIFIED_ROOTS_MAX};
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
    /// Round-trip time of the links between the servers, in milliseconds; it chooses Prime's
    /// periods ([`PrimeConfig::for_link_rtt`]). Absent: the release's wide-area periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_rtt_ms: Option<u64>,
}

impl ReplicationConfig {
    /// The Prime parameters of this cluster (N = 3f + 1, no recovering participants).
    pub fn prime_config(&self) -> PrimeConfig {
        match self.link_rtt_ms {
            Some(ms) => PrimeConfig::for_link_rtt(self.f, 0, Duration::from_millis(ms)),
            None => PrimeConfig::new(self.f, 0),
        }
    }
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
    /// Each server's RESP address, in participant order: where the proxy fetches replies too
    /// large for a Prime reply once f+1 servers agreed on their digest
    /// ([`crate::large_reply`]). Empty: such replies are answered with an error.
    pub server_resp: Vec<SocketAddr>,
    /// The server every lane sends through first (retries move a lane on): one originator
    /// batches the proxy's concurrent commands into few PO-REQUESTs. Proxies of one cluster may
    /// pick different home servers to share the load.
    pub home_server: usize,
    /// Spread the lanes over all servers instead of using `home_server`.
    pub spread_lanes: bool,
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
            server_resp: Vec::new(),
            home_server: 0,
            spread_lanes: false,
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
    /// Misbehave on purpose (demonstrations and tests only; absent on a correct server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackConfig>,
}

/// The longest pre-prepare delay an `[attack]` section may ask for.
pub const ATTACK_DELAY_MS_MAX: u64 = 60_000;

/// The `[attack]` section: this server misbehaves on purpose, as one of Prime's attack behaviours
/// (PRIME.md "Parameters of the release"), from `from_ms` until `until_ms` after it started, and
/// as its `control_file` says while it runs ([`crate::attack_control`]). It is honoured only when
/// present with `misbehave_on_purpose = true`, and the server says so loudly when it starts
/// ([`AttackConfig::warning`]). `stockade demo` writes one to show what Prime's defences cost and
/// detect; a production configuration never has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackConfig {
    /// Must be `true`: the acknowledgement that this server is meant to attack its peers.
    pub misbehave_on_purpose: bool,
    /// As leader, propose at most once per this many milliseconds (a slow but not silent leader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_pre_prepares_ms: Option<u64>,
    /// As leader, sign two different pre-prepares for each slot and show each to half the servers.
    #[serde(default)]
    pub equivocate_pre_prepares: bool,
    /// Milliseconds after the server started when the attack begins.
    #[serde(default)]
    pub from_ms: u64,
    /// Milliseconds after the server started when it behaves correctly again (never if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// A file whose contents set the attack switches while the server runs (the format of
    /// [`crate::attack_control::AttackSwitches`]; no file is a correct server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_file: Option<PathBuf>,
}

impl AttackConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.misbehave_on_purpose {
            return Err(
                "[attack] makes this server attack its peers; it is honoured only with \
                 misbehave_on_purpose = true (remove the section for a correct server)"
                    .into(),
            );
        }
        if !self.scheduled() && self.control_file.is_none() {
            return Err("[attack] names no attack: set delay_pre_prepares_ms, \
                 equivocate_pre_prepares or control_file"
                .into());
        }
        check_attack_delay(self.delay_pre_prepares_ms)?;
        if self.until_ms.is_some_and(|until| until <= self.from_ms) {
            return Err("attack.until_ms must come after attack.from_ms".into());
        }
        Ok(())
    }

    /// Whether the section schedules an attack (rather than only naming a control file).
    pub fn scheduled(&self) -> bool {
        self.delay_pre_prepares_ms.is_some() || self.equivocate_pre_prepares
    }

    /// Prime's attack switches this section's schedule turns on.
    pub fn attack(&self) -> Attack {
        Attack {
            pre_prepare_delay: self.delay_pre_prepares_ms.map(Duration::from_millis),
            equivocate_pre_prepares: self.equivocate_pre_prepares,
            ..Attack::default()
        }
    }

    /// When the replica applies it.
    pub fn schedule(&self) -> AttackSchedule {
        AttackSchedule::new(
            self.attack(),
            Duration::from_millis(self.from_ms),
            self.until_ms.map(Duration::from_millis),
        )
    }

    /// The line a server prints when it starts with this section.
    pub fn warning(&self) -> String {
        let control = self.control_file.as_ref().map_or_else(String::new, |file| {
            format!(" Its attacks also follow {} while it runs.", file.display())
        });
        if !self.scheduled() {
            return format!(
                "WARNING: this server may MISBEHAVE ON PURPOSE ([attack] in its configuration).{control} \
                 Never run this configuration in production."
            );
        }
        let mut what = Vec::new();
        if let Some(delay) = self.delay_pre_prepares_ms {
            what.push(format!(
                "delays its pre-prepares to one per {delay} ms as leader"
            ));
        }
        if self.equivocate_pre_prepares {
            what.push("sends conflicting pre-prepares as leader".to_string());
        }
        let until = self
            .until_ms
            .map_or_else(|| "on".to_string(), |ms| format!("to {ms} ms"));
        format!(
            "WARNING: this server MISBEHAVES ON PURPOSE ([attack] in its configuration): it {}, \
             from {} ms after start {until}.{control} Never run this configuration in production.",
            what.join(" and "),
            self.from_ms
        )
    }
}

/// Check a pre-prepare delay asked for by an `[attack]` section or a control file.
pub(crate) fn check_attack_delay(delay_ms: Option<u64>) -> Result<(), String> {
    match delay_ms {
        Some(delay) if !(1..=ATTACK_DELAY_MS_MAX).contains(&delay) => Err(format!(
            "delay_pre_prepares_ms must be between 1 and {ATTACK_DELAY_MS_MAX}"
        )),
        _ => Ok(()),
    }
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
        if let Some(attack) = &self.attack {
            attack.validate()?;
        }
        if self.proxy.home_server >= r.servers.len() {
            return Err(format!(
                "proxy.home_server is {} but servers are numbered 0 to {}",
                self.proxy.home_server,
                r.servers.len() - 1
            ));
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

    /// The signer of this node's replies and the verifiers of every server's (each batch
    /// signature checked once, [`crate::verified_roots`]).
    pub fn auth(&self) -> Result<RootCachingAuth, ServiceError> {
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
        Ok(RootCachingAuth::new(
            Signer::Real(signing),
            verifiers,
            VERIFIED_ROOTS_MAX,
        ))
    }

    /// A server's authenticator: [`ServiceConfig::auth`] plus its share of the servers'
    /// threshold key (both `threshold_*` settings are required).
    pub fn server_auth(&self) -> Result<RootCachingAuth, ServiceError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attack_section(text: &str) -> Result<AttackConfig, String> {
        let config: AttackConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn an_attack_is_honoured_only_when_acknowledged_and_named() {
        let unacknowledged =
            attack_section("misbehave_on_purpose = false\nequivocate_pre_prepares = true");
        assert!(unacknowledged.is_err_and(|e| e.contains("misbehave_on_purpose = true")));
        let missing = attack_section("equivocate_pre_prepares = true");
        assert!(missing.is_err(), "the acknowledgement has no default");
        let nothing = attack_section("misbehave_on_purpose = true");
        let controlled =
            attack_section("misbehave_on_purpose = true\ncontrol_file = \"/x.attack\"");
        assert!(controlled.is_ok_and(|c| !c.scheduled() && c.warning().contains("/x.attack")));
        assert!(nothing.is_err_and(|e| e.contains("names no attack")));
        let backwards =
            attack_section("misbehave_on_purpose = true\nequivocate_pre_prepares = true\nfrom_ms = 5\nuntil_ms = 5");
        assert!(backwards.is_err_and(|e| e.contains("until_ms")));
        let too_slow = attack_section(&format!(
            "misbehave_on_purpose = true\ndelay_pre_prepares_ms = {}",
            ATTACK_DELAY_MS_MAX + 1
        ));
        assert!(too_slow.is_err_and(|e| e.contains("delay_pre_prepares_ms")));
    }

    #[test]
    fn an_acknowledged_attack_becomes_prime_switches_on_a_schedule() {
        let config = attack_section(
            "misbehave_on_purpose = true\ndelay_pre_prepares_ms = 450\nfrom_ms = 3000\nuntil_ms = 6000",
        )
        .expect("valid");
        let wanted = Attack {
            pre_prepare_delay: Some(Duration::from_millis(450)),
            equivocate_pre_prepares: false,
            ..Attack::default()
        };
        assert_eq!(config.attack(), wanted);
        let mut schedule = config.schedule();
        assert_eq!(
            schedule.change_at(stockade_core::Time::from_millis(2_999)),
            None
        );
        assert_eq!(
            schedule.change_at(stockade_core::Time::from_millis(3_000)),
            Some(wanted)
        );
        let warning = config.warning();
        assert!(warning.contains("MISBEHAVES ON PURPOSE") && warning.contains("450 ms"));
    }

    fn replication(link_rtt_ms: Option<u64>) -> ReplicationConfig {
        ReplicationConfig {
            f: 1,
            servers: vec![0, 1, 2, 3],
            verifying_keys: Vec::new(),
            signing_key_file: PathBuf::new(),
            link_rtt_ms,
            threshold_key_set: None,
            threshold_share_file: None,
        }
    }

    #[test]
    fn the_declared_link_rtt_picks_primes_periods() {
        let release = PrimeConfig::new(1, 0);
        assert_eq!(replication(None).prime_config(), release);
        assert_eq!(replication(Some(50)).prime_config(), release);
        let lan = replication(Some(1)).prime_config();
        assert!(
            lan.pre_prepare_period < release.pre_prepare_period,
            "{lan:?}"
        );
        assert!(lan.po_ack_period < release.po_ack_period, "{lan:?}");
        assert_eq!(lan.tat_acceptable_min, release.tat_acceptable_min);
    }

    #[test]
    fn link_rtt_is_optional_in_the_file() {
        let text = "f = 1\nservers = [0]\nverifying_keys = []\nsigning_key_file = \"k\"\n";
        let parsed: ReplicationConfig = toml::from_str(text).expect("parses");
        assert_eq!(parsed.link_rtt_ms, None);
        let with: ReplicationConfig =
            toml::from_str(&format!("{text}link_rtt_ms = 1\n")).expect("parses");
        assert_eq!(with.link_rtt_ms, Some(1));
    }
}
