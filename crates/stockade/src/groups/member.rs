//! `stockade groups member`: one real LA-groups member (paper 000) running over the Noise/UDP
//! links of `stockade-runtime` until Ctrl-C or SIGTERM.
//!
//! The configuration is the runtime's node TOML plus a `[group]` section:
//!
//! ```toml
//! [group]
//! create = true                  # this member creates the group (and writes group.txt), or
//! join = "40 hex characters"     # the group id to join,
//! contacts = [0]                 # through these members
//! attest = [1, 2]                # members this node attests (Fig. 1's `attest`)
//! ed25519_seed = 7               # attestation keys: real Ed25519, derived per node id
//! ```
//!
//! Attestation keys are real Ed25519 keys derived deterministically from `ed25519_seed` and each
//! node id (the same derivation as the simulator's `CryptoMode::Real`), so every member can verify
//! every other without a key exchange. Whoever knows the seed can sign for every member: this is
//! for local clusters and tests, not for a deployment across distrusting operators.
//!
//! View changes are printed as they happen; every `--print-every` seconds the member writes
//! `group.txt`, `view.txt`, `graph.dot` and `graph.svg` under `--out` (see [`super::render`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use stockade_attest::attestation::{GroupId, GROUP_ID_BYTES};
use stockade_attest::group::{GroupConfig, GroupOutput, GroupRequest, LaGroups};
use stockade_attest::keys::SchemeKeys;
use stockade_core::{Context, NodeId, PersistToken, Protocol};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_runtime::{spawn_node, NodeConfig, NodeSetup};

use super::render::GraphPicture;
use crate::cli::GroupsMemberArgs;
use crate::headline::Verdict;

/// The `[group]` section of a member's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberGroupConfig {
    /// Create a new group (exactly one of `create` and `join`).
    #[serde(default)]
    pub create: bool,
    /// The id (hex) of an existing group to join.
    #[serde(default)]
    pub join: Option<String>,
    /// Members to ask when joining.
    #[serde(default)]
    pub contacts: Vec<u32>,
    /// Members this node attests once it is in the group.
    #[serde(default)]
    pub attest: Vec<u32>,
    /// Seed of every member's Ed25519 attestation key.
    pub ed25519_seed: u64,
}

/// A member's whole configuration: the runtime node and its group.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberConfig {
    /// The runtime node (links, keys, peers, data directory).
    pub node: NodeConfig,
    /// What this member does in the group.
    pub group: MemberGroupConfig,
}

impl MemberConfig {
    /// Read a member's TOML: the runtime's node configuration plus a `[group]` section.
    pub fn load(path: &Path) -> anyhow::Result<MemberConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the member configuration {}", path.display()))?;
        MemberConfig::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parse a member's TOML text.
    pub fn parse(text: &str) -> anyhow::Result<MemberConfig> {
        let mut table: toml::Table = toml::from_str(text).context("the file is not valid TOML")?;
        let group = table
            .remove("group")
            .context("the [group] section is missing; add one with create = true or join = ...")?;
        let group: MemberGroupConfig = group.try_into().context("in the [group] section")?;
        let node: NodeConfig = toml::Value::Table(table)
            .try_into()
            .context("in the node configuration")?;
        node.validate()?;
        if group.create == group.join.is_some() {
            bail!("[group] needs exactly one of create = true and join = \"<group id>\"");
        }
        if group.join.is_some() && group.contacts.is_empty() {
            bail!("[group] join needs at least one member id in contacts");
        }
        Ok(MemberConfig { node, group })
    }

    /// Every node this member knows: itself and its peers.
    fn nodes(&self) -> BTreeSet<NodeId> {
        std::iter::once(self.node.id)
            .chain(self.node.peers.iter().map(|p| p.id))
            .map(NodeId)
            .collect()
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

/// What the member's protocol last looked like, for the pictures.
#[derive(Clone, Debug, Default)]
struct Snapshot {
    /// Per group: what this member sees of it.
    groups: BTreeMap<GroupId, GroupSnapshot>,
}

/// One group as this member last saw it.
#[derive(Clone, Debug, Default)]
struct GroupSnapshot {
    /// The nodes reachable along attestations, this member included.
    view: BTreeSet<NodeId>,
    /// Live attestations, `(attester, attestee)`.
    attestations: BTreeSet<(NodeId, NodeId)>,
}

/// [`LaGroups`] that publishes its view and attestation graph after every step, so the daemon
/// can draw them while the runtime owns the protocol.
struct ObservedGroups {
    inner: LaGroups,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl ObservedGroups {
    fn step(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut LaGroups, &mut Context<'_, LaGroups>),
    ) {
        let inner = &mut self.inner;
        let outputs = cx.child(|m| m, |t| t, |child| run(inner, child));
        for output in outputs {
            cx.deliver(output);
        }
        let now = cx.now();
        let groups = self
            .inner
            .groups()
            .into_iter()
            .map(|group| {
                let view = self.inner.view(group, now).unwrap_or_default();
                let edges = self
                    .inner
                    .graph(group, now)
                    .map(|g| g.edges().map(|(from, to, _)| (from, to)).collect())
                    .unwrap_or_default();
                (
                    group,
                    GroupSnapshot {
                        view,
                        attestations: edges,
                    },
                )
            })
            .collect();
        let mut snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshot.groups = groups;
    }
}

impl Protocol for ObservedGroups {
    type Message = <LaGroups as Protocol>::Message;
    type Timer = <LaGroups as Protocol>::Timer;
    type Request = GroupRequest;
    type Output = GroupOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.step(cx, |p, c| p.on_start(c));
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: Self::Message) {
        self.step(cx, |p, c| p.on_message(c, from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: Self::Timer) {
        self.step(cx, |p, c| p.on_timer(c, timer));
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: Self::Request) {
        self.step(cx, |p, c| p.on_request(c, request));
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        self.step(cx, |p, c| p.on_persisted(c, token));
    }
}

/// Write `group.txt`, `view.txt`, `graph.dot` and `graph.svg` for `group` under `out`.
fn write_pictures(
    out: &Path,
    me: NodeId,
    group: GroupId,
    nodes: &BTreeSet<NodeId>,
    snapshot: &Snapshot,
) -> anyhow::Result<()> {
    let GroupSnapshot { view, attestations } =
        snapshot.groups.get(&group).cloned().unwrap_or_default();
    let picture = GraphPicture {
        title: format!("LA-groups {group}: view of member {}", me.0),
        nodes: nodes.iter().copied().chain(view.iter().copied()).collect(),
        view,
        attestations,
    };
    let members: Vec<String> = picture.view.iter().map(|n| n.0.to_string()).collect();
    let edges: Vec<String> = picture
        .attestations
        .iter()
        .map(|(from, to)| format!("{}->{}", from.0, to.0))
        .collect();
    let files = [
        ("group.txt", format!("{}\n", hex::encode(group.0))),
        (
            "view.txt",
            format!(
                "group {}\nview {}\nattestations {}\n",
                hex::encode(group.0),
                members.join(" "),
                edges.join(" ")
            ),
        ),
        ("graph.dot", picture.to_dot()),
        ("graph.svg", picture.to_svg()),
    ];
    for (name, text) in files {
        // Write beside and rename, so a reader never sees half a file.
        let path = out.join(name);
        let partial = out.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `stockade groups member`: run one member until Ctrl-C or SIGTERM.
pub fn run(args: &GroupsMemberArgs) -> anyhow::Result<Verdict> {
    let config = MemberConfig::load(&args.config)?;
    if args.print_every_s == 0 {
        bail!("--print-every must be at least 1 second");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating --out {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(serve(
        config,
        args.out.clone(),
        Duration::from_secs(args.print_every_s),
    ))?;
    Ok(Verdict::Passed)
}

async fn serve(config: MemberConfig, out: PathBuf, print_every: Duration) -> anyhow::Result<()> {
    let me = NodeId(config.node.id);
    let nodes = config.nodes();
    let keys = SimulationKeys::new(CryptoMode::Real, config.group.ed25519_seed);
    let scheme = SchemeKeys::for_simulation(&keys, me, nodes.iter().copied());
    let group_config = GroupConfig::default();
    group_config.validate()?;
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let protocol = ObservedGroups {
        inner: LaGroups::new(me, group_config, Box::new(scheme)),
        snapshot: Arc::clone(&snapshot),
    };
    let setup = NodeSetup::from_config(&config.node)?;
    let mut handle = spawn_node(setup, move |_store| protocol).await?;
    println!("member {} listening on {}", me.0, handle.local_addr());

    let first = match &config.group.join {
        None => GroupRequest::Create,
        Some(hex_id) => GroupRequest::Join {
            group: parse_group_id(hex_id).context("in [group] join")?,
            contacts: config.group.contacts.iter().copied().map(NodeId).collect(),
        },
    };
    send(&handle.requests, first).await?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut ticker = tokio::time::interval(print_every);
    let mut group: Option<GroupId> = None;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => {
                if let Some(group) = group {
                    let snapshot = snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    write_pictures(&out, me, group, &nodes, &snapshot)?;
                }
            }
            output = handle.outputs.recv() => {
                let Some(output) = output else { break };
                println!("{}", describe(&output));
                let entered = match output {
                    GroupOutput::Created { group } => Some(group),
                    GroupOutput::JoinResult { group, joined: true } => Some(group),
                    _ => None,
                };
                if let Some(entered) = entered {
                    group = Some(entered);
                    for node in &config.group.attest {
                        let request = GroupRequest::Attest { group: entered, node: NodeId(*node), info: Vec::new() };
                        send(&handle.requests, request).await?;
                    }
                }
            }
        }
    }
    println!("member {} stopping", me.0);
    handle.shutdown().await?;
    Ok(())
}

/// Hand `request` to the running node.
async fn send(
    requests: &tokio::sync::mpsc::Sender<GroupRequest>,
    request: GroupRequest,
) -> anyhow::Result<()> {
    requests
        .send(request)
        .await
        .map_err(|_| anyhow::anyhow!("the node stopped before taking a request"))
}

/// One line for the operator per protocol output.
fn describe(output: &GroupOutput) -> String {
    match output {
        GroupOutput::Created { group } => format!("created {}", hex::encode(group.0)),
        GroupOutput::JoinResult { group, joined } => {
            format!(
                "join {} {}",
                hex::encode(group.0),
                if *joined { "succeeded" } else { "failed" }
            )
        }
        GroupOutput::ViewChanged { group, view } => {
            let members: Vec<String> = view.iter().map(|n| n.0.to_string()).collect();
            format!("view {group}: {}", members.join(" "))
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = r#"
id = 1
listen = "127.0.0.1:7101"
key_file = "node1.key"
data_dir = "data1"
"#;

    #[test]
    fn parses_a_join_and_rejects_create_and_join_together() {
        let id = "ab".repeat(GROUP_ID_BYTES);
        let text = format!(
            "{NODE}\n[group]\njoin = \"{id}\"\ncontacts = [0]\nattest = [0]\ned25519_seed = 3\n"
        );
        let config = MemberConfig::parse(&text).expect("valid");
        assert_eq!(config.node.id, 1);
        assert_eq!(config.group.contacts, vec![0]);
        assert_eq!(parse_group_id(&id).expect("hex").0, [0xab; GROUP_ID_BYTES]);

        let both = format!(
            "{NODE}\n[group]\ncreate = true\njoin = \"{id}\"\ncontacts = [0]\ned25519_seed = 3\n"
        );
        let err = MemberConfig::parse(&both).expect_err("both");
        assert!(err.to_string().contains("exactly one"), "{err}");
        let missing = MemberConfig::parse(NODE).expect_err("no group");
        assert!(err_chain(&missing).contains("[group] section is missing"));
        assert!(parse_group_id("abcd").is_err());
    }

    fn err_chain(e: &anyhow::Error) -> String {
        format!("{e:#}")
    }
}
