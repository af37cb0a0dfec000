//! `stockade groups member`: one real LA-groups member (paper 000) running over the Noise/UDP
//! links of `stockade-runtime` until Ctrl-C or SIGTERM.
//!
//! The member signs its attestations with its own Ed25519 key and view statements with its own
//! BLS key, both read from the files `stockade keygen` wrote; it knows the other members' public
//! keys from its configuration's `[[peer]]` entries (see [`config`] for the whole format, and
//! [`keys`] for what is checked at load). Nobody holds another member's secrets.
//!
//! Once in the group it monitors each member of its `attest` list with the configured monitor and
//! attests it while the monitor says so. View changes are printed as they happen; the protocol
//! publishes its view every `view_publish_ms` ([`observed`]) and collects a compact, BLS-aggregated
//! transcript of it when it changed ([`transcript`]); every `--print-every` seconds the
//! member writes `group.txt`, `view.txt`, `graph.dot` and `graph.svg` under `--out` (see
//! [`super::render`]), and `stockade groups view --member <view_listen>` reads the latest
//! publication ([`super::view`]).

pub mod config;
pub mod keys;
pub mod observed;
pub mod transcript;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use stockade_attest::group::{GroupConfig, GroupOutput, GroupRequest, LaGroups};
use stockade_core::NodeId;
use stockade_runtime::{spawn_node, NodeSetup};
use tokio::sync::watch;

pub use config::{parse_group_id, Entry, MemberConfig, MemberGroupConfig, MonitorChoice};
pub use keys::MemberKeys;
pub use observed::{GroupSnapshot, MemberOutput, ObservedGroups, PublishedView};
pub use transcript::{TranscriptReport, TranscriptRounds};

use super::view::{serve_view, ViewReport};
use crate::cli::GroupsMemberArgs;
use crate::headline::Verdict;

/// Write `group.txt`, `view.txt`, `graph.dot` and `graph.svg` for `report` under `out`.
fn write_files(out: &Path, report: &ViewReport) -> anyhow::Result<()> {
    let Some(group) = &report.group else {
        return Ok(());
    };
    let picture = report.picture();
    let members: Vec<String> = report.view.iter().map(|n| n.to_string()).collect();
    let edges: Vec<String> = report
        .attestations
        .iter()
        .map(|(from, to)| format!("{from}->{to}"))
        .collect();
    let files = [
        ("group.txt", format!("{group}\n")),
        (
            "view.txt",
            format!(
                "group {group}\nview {}\nattestations {}\n",
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
    let keys = MemberKeys::load(&config.keys_dir, NodeId(config.node.id), &config.peers)
        .with_context(|| format!("loading the keys of {}", args.config.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating --out {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(serve(
        config,
        keys,
        args.out.clone(),
        Duration::from_secs(args.print_every_s),
    ))?;
    Ok(Verdict::Passed)
}

async fn serve(
    config: MemberConfig,
    keys: MemberKeys,
    out: PathBuf,
    print_every: Duration,
) -> anyhow::Result<()> {
    let me = NodeId(config.node.id);
    let nodes = config.nodes();
    let group_config = &config.group;
    // Attestations carry wall-clock times so members started at different moments agree on
    // expiry; the runtime's clock starts at zero with the node, which is spawned right after.
    let clock_offset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is set before 1970")?;
    let protocol_config = GroupConfig {
        clock_offset,
        ..group_config.protocol.clone()
    };
    let protocol = ObservedGroups::new(
        LaGroups::new(me, protocol_config, Box::new(keys.attestation_keys))
            .with_view_signing(keys.view_signer),
        group_config.view_publish,
    );
    let (reports, latest) = watch::channel(ViewReport::from_published(
        me,
        &nodes,
        &PublishedView::default(),
    ));
    if let Some(addr) = config.view_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding view_listen {addr}"))?;
        println!("member {} serves its view on {addr}", me.0);
        tokio::spawn(serve_view(listener, latest.clone()));
    }
    let setup = NodeSetup::from_config(&config.node)?;
    let mut handle = spawn_node(setup, move |_store| protocol).await?;
    println!("member {} listening on {}", me.0, handle.local_addr());

    let first = match &group_config.entry {
        Entry::Create => GroupRequest::Create,
        Entry::Join { group, contacts } => GroupRequest::Join {
            group: *group,
            contacts: contacts.clone(),
        },
    };
    send(&handle.requests, first).await?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut ticker = tokio::time::interval(print_every);
    let mut rounds = TranscriptRounds::new(keys.directory);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => write_files(&out, &latest.borrow())?,
            output = handle.outputs.recv() => {
                let Some(output) = output else { break };
                let output = match output {
                    MemberOutput::Published(published) => {
                        let mut report = ViewReport::from_published(me, &nodes, &published);
                        report.transcript = rounds.latest().cloned();
                        if let Some(group) = published.groups.keys().next() {
                            if let Some(request) = rounds.next_request(*group, &report.view) {
                                send(&handle.requests, request).await?;
                            }
                        }
                        reports.send_replace(report);
                        continue;
                    }
                    MemberOutput::Group(GroupOutput::Transcript { result, .. }) => {
                        match rounds.finished(me, result) {
                            Ok(t) => println!(
                                "transcript of epoch {}: {} of {} members signed, {} bytes",
                                t.epoch,
                                t.signers.len(),
                                t.members.len(),
                                t.bytes
                            ),
                            Err(e) => println!("transcript not kept: {e}"),
                        }
                        continue;
                    }
                    MemberOutput::Group(output) => output,
                };
                println!("{}", describe(&output));
                let entered = match output {
                    GroupOutput::Created { group } => Some(group),
                    GroupOutput::JoinResult { group, joined: true } => Some(group),
                    _ => None,
                };
                if let Some(group) = entered {
                    for &node in &group_config.attest {
                        let request = match group_config.monitor.build() {
                            Some(monitor) => GroupRequest::Monitor { group, node, monitor },
                            None => GroupRequest::Attest { group, node, info: Vec::new() },
                        };
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
