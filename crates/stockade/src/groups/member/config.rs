//! A member's TOML configuration: its identity and key directory, its peers' public keys, and
//! what it does in the group (the `[group]` section, with the protocol's periods and the monitor
//! that decides whom it attests).
//!
//! ```toml
//! id = 0
//! listen = "127.0.0.1:7100"           # UDP address of this member's Noise links
//! keys_dir = "keys0"                  # written by `stockade keygen --dir keys0`
//! data_dir = "data0"
//! view_listen = "127.0.0.1:7200"      # optional, loopback only: `stockade groups view` reads here
//!
//! [[peer]]                            # one per other member: its address and its public.toml
//! id = 1
//! addr = "127.0.0.1:7101"
//! noise = "64 hex characters"
//! ed25519 = "64 hex characters"
//! bls = "96 hex characters"
//! bls_pop = "192 hex characters"
//!
//! [group]
//! create = true                       # this member creates the group, or
//! join = "40 hex characters"          # the id of the group to join,
//! contacts = [0]                      # through these members
//! attest = [1, 2]                     # members this node monitors and attests (Fig. 1's `attest`)
//! attestation_validity_ms = 30000     # every field below is optional; defaults in the table
//!
//! [group.monitor]
//! kind = "liveness"                   # "liveness", "latency" or "none" (attest unconditionally)
//! misses_max = 3
//! ```
//!
//! Relative paths are taken from the working directory, as the runtime's `key_file` is.
//!
//! | `[group]` field | default | meaning |
//! |---|---|---|
//! | `attestation_validity_ms` | 30000 | lifetime of an attestation (paper 000's `T_a`) |
//! | `refresh_interval_ms` | 10000 | how often own attestations are re-signed; below the validity |
//! | `announce_delay_ms` | 20 | flood period: changes collected this long go out in one announcement |
//! | `sweep_interval_ms` | 1000 | how often expired attestations are dropped |
//! | `join_timeout_ms` | 10000 | how long a join waits for a member's attestation |
//! | `probe_interval_ms` | 1000 | how often a monitored member is pinged |
//! | `view_publish_ms` | 1000 | how often the daemon publishes its view for files and `groups view` |
//!
//! | `[group.monitor]` field | default | meaning |
//! |---|---|---|
//! | `kind` | `"liveness"` | `liveness`: attest while pings are answered; `latency`: and while the mean round trip stays under `rtt_max_ms`; `none`: attest unconditionally |
//! | `misses_max` | 3 | consecutive unanswered pings before the attestation is withdrawn |
//! | `rtt_max_ms` | required for `latency` | largest acceptable mean round trip |
//! | `window_len` | 8 | replies the latency mean covers (at most [`RTT_WINDOW_LEN_MAX`]) |

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use stockade_attest::attestation::{GroupId, GROUP_ID_BYTES};
use stockade_attest::group::GroupConfig;
use stockade_attest::monitor::{LatencyMonitor, LivenessMonitor, Monitor};
use stockade_core::NodeId;
use stockade_runtime::{LinkConfig, NodeConfig, PeerConfig};

use crate::keygen::NOISE_KEY_FILE;

/// The most replies a latency monitor averages over.
pub const RTT_WINDOW_LEN_MAX: usize = 1024;
/// Default of `[group] view_publish_ms`.
const VIEW_PUBLISH_MS_DEFAULT: u64 = 1000;
/// Default of `[group.monitor] misses_max`.
const MISSES_MAX_DEFAULT: u32 = 3;
/// Default of `[group.monitor] window_len`.
const WINDOW_LEN_DEFAULT: usize = 8;

/// The configuration file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberFile {
    id: u32,
    listen: SocketAddr,
    keys_dir: PathBuf,
    data_dir: PathBuf,
    #[serde(default)]
    view_listen: Option<SocketAddr>,
    #[serde(default)]
    link: LinkConfig,
    #[serde(default, rename = "peer")]
    peers: Vec<PeerEntry>,
    group: Option<GroupSection>,
}

/// One `[[peer]]`: where another member listens and its public keys (its `public.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The peer's node id.
    pub id: u32,
    /// Where its links listen.
    pub addr: SocketAddr,
    /// Its Noise static public key (hex).
    pub noise: String,
    /// Its Ed25519 verifying key (hex): checks its attestations.
    pub ed25519: String,
    /// Its BLS public key (hex): checks its view signatures in compact transcripts.
    pub bls: String,
    /// Its proof of possession of `bls` (hex), checked at load.
    pub bls_pop: String,
}

/// The `[group]` section as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSection {
    #[serde(default)]
    create: bool,
    #[serde(default)]
    join: Option<String>,
    #[serde(default)]
    contacts: Vec<u32>,
    #[serde(default)]
    attest: Vec<u32>,
    attestation_validity_ms: Option<u64>,
    refresh_interval_ms: Option<u64>,
    announce_delay_ms: Option<u64>,
    sweep_interval_ms: Option<u64>,
    join_timeout_ms: Option<u64>,
    probe_interval_ms: Option<u64>,
    view_publish_ms: Option<u64>,
    #[serde(default)]
    monitor: MonitorSection,
}

/// The `[group.monitor]` section as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorSection {
    kind: Option<String>,
    misses_max: Option<u32>,
    rtt_max_ms: Option<u64>,
    window_len: Option<usize>,
}

/// How a member decides whether to attest the members in its `attest` list (paper 000, section
/// "Discussion: stateful monitoring").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorChoice {
    /// Attest unconditionally, without probing.
    None,
    /// Attest while pings are answered; withdraw after `misses_max` in a row go unanswered.
    Liveness {
        /// Consecutive misses that withdraw the attestation.
        misses_max: u32,
    },
    /// As liveness, and withdraw while the mean round trip over `window_len` replies exceeds
    /// `rtt_max`.
    Latency {
        /// Consecutive misses that withdraw the attestation.
        misses_max: u32,
        /// Largest acceptable mean round trip.
        rtt_max: Duration,
        /// Replies the mean covers.
        window_len: usize,
    },
}

impl MonitorChoice {
    /// A fresh monitor of this kind, or `None` for unconditional attestation.
    pub fn build(&self) -> Option<Box<dyn Monitor>> {
        match *self {
            MonitorChoice::None => None,
            MonitorChoice::Liveness { misses_max } => {
                Some(Box::new(LivenessMonitor::new(misses_max)))
            }
            MonitorChoice::Latency {
                misses_max,
                rtt_max,
                window_len,
            } => Some(Box::new(LatencyMonitor::new(
                rtt_max, window_len, misses_max,
            ))),
        }
    }
}

/// How this member enters the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// It creates a new group.
    Create,
    /// It joins `group` through `contacts`.
    Join {
        /// The group.
        group: GroupId,
        /// Members it asks.
        contacts: Vec<NodeId>,
    },
}

/// What the member does in its group, checked.
#[derive(Clone, Debug)]
pub struct MemberGroupConfig {
    /// Create or join.
    pub entry: Entry,
    /// Members this node monitors and attests.
    pub attest: Vec<NodeId>,
    /// The protocol's periods and bounds.
    pub protocol: GroupConfig,
    /// The monitor of each attested member.
    pub monitor: MonitorChoice,
    /// How often the daemon publishes its view (files, `groups view`).
    pub view_publish: Duration,
}

/// A member's whole configuration, checked.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    /// The runtime node (links, Noise key file, peers' Noise keys, data directory).
    pub node: NodeConfig,
    /// The directory `stockade keygen` wrote this member's keys into.
    pub keys_dir: PathBuf,
    /// Where `stockade groups view` may read the view (loopback only), if anywhere.
    pub view_listen: Option<SocketAddr>,
    /// The other members, with their public keys.
    pub peers: Vec<PeerEntry>,
    /// What this member does in its group.
    pub group: MemberGroupConfig,
}

impl MemberConfig {
    /// Read and check a member's TOML.
    pub fn load(path: &Path) -> anyhow::Result<MemberConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the member configuration {}", path.display()))?;
        MemberConfig::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parse and check a member's TOML text.
    pub fn parse(text: &str) -> anyhow::Result<MemberConfig> {
        let file: MemberFile = toml::from_str(text).context("the member configuration")?;
        let group = file.group.context(
            "the [group] section is missing; add one with create = true or join = \"<group id>\"",
        )?;
        let node = NodeConfig {
            id: file.id,
            listen: file.listen,
            key_file: file.keys_dir.join(NOISE_KEY_FILE),
            peers: file
                .peers
                .iter()
                .map(|p| PeerConfig {
                    id: p.id,
                    addr: p.addr,
                    public_key: p.noise.clone(),
                })
                .collect(),
            data_dir: file.data_dir,
            metrics: None,
            link: file.link,
        };
        node.validate()
            .context("in the [[peer]] entries or [link]")?;
        if let Some(addr) = file.view_listen {
            if !addr.ip().is_loopback() {
                bail!("view_listen {addr} is not a loopback address; use 127.0.0.1 (the view endpoint has no authentication)");
            }
        }
        let known: BTreeSet<u32> = file.peers.iter().map(|p| p.id).collect();
        let group = group.check(file.id, &known)?;
        Ok(MemberConfig {
            node,
            keys_dir: file.keys_dir,
            view_listen: file.view_listen,
            peers: file.peers,
            group,
        })
    }

    /// Every node this member knows: itself and its peers.
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        std::iter::once(self.node.id)
            .chain(self.peers.iter().map(|p| p.id))
            .map(NodeId)
            .collect()
    }
}

impl GroupSection {
    /// Check the section against this member's id and its known peers.
    fn check(self, me: u32, known: &BTreeSet<u32>) -> anyhow::Result<MemberGroupConfig> {
        let entry = match (self.create, &self.join) {
            (true, None) => Entry::Create,
            (false, Some(hex_id)) => {
                if self.contacts.is_empty() {
                    bail!("[group] join needs at least one member id in contacts");
                }
                Entry::Join {
                    group: parse_group_id(hex_id).context("in [group] join")?,
                    contacts: self.contacts.iter().copied().map(NodeId).collect(),
                }
            }
            _ => bail!("[group] needs exactly one of create = true and join = \"<group id>\""),
        };
        for (field, ids) in [("contacts", &self.contacts), ("attest", &self.attest)] {
            if let Some(bad) = ids.iter().find(|id| !known.contains(id)) {
                let hint = if *bad == me {
                    "this member itself".to_string()
                } else {
                    "no [[peer]] has that id".to_string()
                };
                bail!("[group] {field} names member {bad}: {hint}");
            }
        }
        let defaults = GroupConfig::default();
        let period = |ms: Option<u64>, default: Duration| ms.map_or(default, Duration::from_millis);
        let protocol = GroupConfig {
            attestation_validity: period(
                self.attestation_validity_ms,
                defaults.attestation_validity,
            ),
            refresh_interval: period(self.refresh_interval_ms, defaults.refresh_interval),
            announce_delay: period(self.announce_delay_ms, defaults.announce_delay),
            sweep_interval: period(self.sweep_interval_ms, defaults.sweep_interval),
            join_timeout: period(self.join_timeout_ms, defaults.join_timeout),
            probe_interval: period(self.probe_interval_ms, defaults.probe_interval),
            ..defaults
        };
        protocol
            .validate()
            .map_err(|e| anyhow::anyhow!("[group]: {e} (fields end in _ms)"))?;
        for (name, value) in [
            ("announce_delay_ms", protocol.announce_delay),
            ("join_timeout_ms", protocol.join_timeout),
        ] {
            if value.is_zero() {
                bail!("[group] {name} must be greater than zero");
            }
        }
        let view_publish =
            Duration::from_millis(self.view_publish_ms.unwrap_or(VIEW_PUBLISH_MS_DEFAULT));
        if view_publish.is_zero() {
            bail!("[group] view_publish_ms must be greater than zero");
        }
        let monitor = self.monitor.check(&protocol)?;
        Ok(MemberGroupConfig {
            entry,
            attest: self.attest.iter().copied().map(NodeId).collect(),
            protocol,
            monitor,
            view_publish,
        })
    }
}

impl MonitorSection {
    fn check(self, protocol: &GroupConfig) -> anyhow::Result<MonitorChoice> {
        let misses_max = self.misses_max.unwrap_or(MISSES_MAX_DEFAULT);
        if misses_max == 0 {
            bail!("[group.monitor] misses_max must be at least 1");
        }
        let kind = self.kind.as_deref().unwrap_or("liveness");
        if kind != "latency" && (self.rtt_max_ms.is_some() || self.window_len.is_some()) {
            bail!("[group.monitor] rtt_max_ms and window_len apply only to kind = \"latency\"");
        }
        if kind == "none" && self.misses_max.is_some() {
            bail!(
                "[group.monitor] misses_max does not apply to kind = \"none\" (nothing is probed)"
            );
        }
        let choice = match kind {
            "none" => MonitorChoice::None,
            "liveness" => MonitorChoice::Liveness { misses_max },
            "latency" => {
                let rtt_max_ms = self.rtt_max_ms.filter(|&ms| ms > 0).context(
                    "[group.monitor] kind = \"latency\" needs rtt_max_ms greater than zero",
                )?;
                let window_len = self.window_len.unwrap_or(WINDOW_LEN_DEFAULT);
                if !(1..=RTT_WINDOW_LEN_MAX).contains(&window_len) {
                    bail!("[group.monitor] window_len must be between 1 and {RTT_WINDOW_LEN_MAX}, got {window_len}");
                }
                MonitorChoice::Latency {
                    misses_max,
                    rtt_max: Duration::from_millis(rtt_max_ms),
                    window_len,
                }
            }
            other => bail!(
                "[group.monitor] kind must be \"liveness\", \"latency\" or \"none\", got {other:?}"
            ),
        };
        // A monitor that withdraws only after the attestation expired anyway changes nothing.
        let withdraw_after = protocol.probe_interval * misses_max;
        if choice != MonitorChoice::None && withdraw_after >= protocol.attestation_validity {
            bail!(
                "[group.monitor] misses_max {misses_max} x probe_interval_ms {} = {} ms must be shorter than attestation_validity_ms {}",
                protocol.probe_interval.as_millis(),
                withdraw_after.as_millis(),
                protocol.attestation_validity.as_millis()
            );
        }
        Ok(choice)
    }
}

/// Parse a group id written as hex (as `group.txt` holds it).
pub fn parse_group_id(text: &str) -> anyhow::Result<GroupId> {
    let bytes = hex::decode(text.trim()).context("the group id is not hex")?;
    let id: [u8; GROUP_ID_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!(
            "a group id has {GROUP_ID_BYTES} bytes ({} hex characters), got {}",
            GROUP_ID_BYTES * 2,
            b.len()
        )
    })?;
    Ok(GroupId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member with one peer; keys are not checked here (see [`super::super::keys`]).
    fn member(group: &str) -> String {
        let noise = "11".repeat(32);
        format!(
            r#"
id = 1
listen = "127.0.0.1:7101"
keys_dir = "keys1"
data_dir = "data1"

[[peer]]
id = 0
addr = "127.0.0.1:7100"
noise = "{noise}"
ed25519 = "00"
bls = "00"
bls_pop = "00"

[group]
{group}
"#
        )
    }

    fn error_of(group: &str) -> String {
        format!(
            "{:#}",
            MemberConfig::parse(&member(group)).expect_err("invalid")
        )
    }

    #[test]
    fn a_join_with_defaults_builds_the_runtime_config_and_a_liveness_monitor() {
        let id = "ab".repeat(GROUP_ID_BYTES);
        let config = MemberConfig::parse(&member(&format!(
            "join = \"{id}\"\ncontacts = [0]\nattest = [0]"
        )))
        .expect("valid");
        assert_eq!(config.node.id, 1);
        assert_eq!(
            config.node.key_file,
            Path::new("keys1").join(NOISE_KEY_FILE)
        );
        assert_eq!(config.node.peers.len(), 1);
        assert_eq!(
            config.group.entry,
            Entry::Join {
                group: GroupId([0xab; GROUP_ID_BYTES]),
                contacts: vec![NodeId(0)]
            }
        );
        assert_eq!(
            config.group.monitor,
            MonitorChoice::Liveness {
                misses_max: MISSES_MAX_DEFAULT
            }
        );
        let defaults = GroupConfig::default();
        assert_eq!(
            config.group.protocol.attestation_validity,
            defaults.attestation_validity
        );
        assert_eq!(config.group.view_publish, Duration::from_millis(1000));
        assert_eq!(config.nodes(), [0, 1].map(NodeId).into());
    }

    #[test]
    fn periods_and_a_latency_monitor_come_from_the_section() {
        let config = MemberConfig::parse(&member(
            "create = true\nattestation_validity_ms = 6000\nrefresh_interval_ms = 2000\nannounce_delay_ms = 50\nprobe_interval_ms = 500\nview_publish_ms = 250\n[group.monitor]\nkind = \"latency\"\nrtt_max_ms = 80\nwindow_len = 4\nmisses_max = 2",
        ))
        .expect("valid");
        let p = &config.group.protocol;
        assert_eq!(p.attestation_validity, Duration::from_secs(6));
        assert_eq!(p.refresh_interval, Duration::from_secs(2));
        assert_eq!(p.announce_delay, Duration::from_millis(50));
        assert_eq!(p.probe_interval, Duration::from_millis(500));
        assert_eq!(config.group.view_publish, Duration::from_millis(250));
        assert_eq!(
            config.group.monitor,
            MonitorChoice::Latency {
                misses_max: 2,
                rtt_max: Duration::from_millis(80),
                window_len: 4
            }
        );
        assert!(config.group.monitor.build().is_some());
        assert!(MonitorChoice::None.build().is_none());
    }

    #[test]
    fn bad_sections_name_the_field_to_fix() {
        let id = "ab".repeat(GROUP_ID_BYTES);
        let cases = [
            (format!("create = true\njoin = \"{id}\""), "exactly one"),
            (format!("join = \"{id}\""), "contacts"),
            ("join = \"abcd\"\ncontacts = [0]".to_string(), "40 hex"),
            ("create = true\nattest = [7]".to_string(), "no [[peer]] has that id"),
            ("create = true\nattest = [1]".to_string(), "this member itself"),
            (
                "create = true\nattestation_validity_ms = 1000\nrefresh_interval_ms = 1000".into(),
                "refresh_interval",
            ),
            ("create = true\nannounce_delay_ms = 0".into(), "announce_delay_ms"),
            ("create = true\nview_publish_ms = 0".into(), "view_publish_ms"),
            ("create = true\n[group.monitor]\nkind = \"ping\"".into(), "kind must be"),
            ("create = true\n[group.monitor]\nkind = \"latency\"".into(), "rtt_max_ms"),
            (
                "create = true\n[group.monitor]\nkind = \"latency\"\nrtt_max_ms = 9\nwindow_len = 5000".into(),
                "window_len",
            ),
            ("create = true\n[group.monitor]\nrtt_max_ms = 9".into(), "only to kind"),
            ("create = true\n[group.monitor]\nmisses_max = 0".into(), "at least 1"),
            (
                "create = true\nattestation_validity_ms = 3000\nrefresh_interval_ms = 1000\n[group.monitor]\nmisses_max = 3".into(),
                "must be shorter than attestation_validity_ms",
            ),
            ("create = true\nlifetime = 3".into(), "unknown field"),
        ];
        for (group, expected) in cases {
            let error = error_of(&group);
            assert!(error.contains(expected), "{group:?}: {error}");
        }
        let no_group = member("").replace("[group]", "");
        let error = format!(
            "{:#}",
            MemberConfig::parse(&no_group).expect_err("no group")
        );
        assert!(error.contains("[group] section is missing"), "{error}");
    }

    #[test]
    fn a_bad_peer_or_a_public_view_address_is_refused() {
        let twice = member("create = true").replace(
            "[group]",
            "[[peer]]\nid = 0\naddr = \"127.0.0.1:7100\"\nnoise = \"00\"\ned25519 = \"00\"\nbls = \"00\"\nbls_pop = \"00\"\n[group]",
        );
        let error = format!("{:#}", MemberConfig::parse(&twice).expect_err("duplicate"));
        assert!(error.contains("[[peer]]"), "{error}");
        let public = member("create = true").replace(
            "data_dir = \"data1\"",
            "data_dir = \"data1\"\nview_listen = \"0.0.0.0:7200\"",
        );
        let error = format!("{:#}", MemberConfig::parse(&public).expect_err("public"));
        assert!(error.contains("not a loopback address"), "{error}");
    }
}
