//! `stockade groups view --member ADDR`: ask a running member daemon for its view of its group
//! and print the view and the attestation graph (text and DOT), or write `graph.dot` and
//! `graph.svg` under `--out`.
//!
//! The member answers on its `view_listen` address (loopback only): a client connects, the member
//! writes its last published view as one JSON document ([`ViewReport`]) and closes. The client
//! reads at most [`VIEW_REPLY_BYTES_MAX`] bytes within [`VIEW_IO_TIMEOUT`]; the member gives each
//! client at most [`VIEW_IO_TIMEOUT`] to take the answer, one client at a time.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stockade_core::NodeId;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::demo::write_pictures;
use super::member::{PublishedView, TranscriptReport};
use super::render::GraphPicture;
use crate::cli::GroupsViewArgs;
use crate::headline::{print_headline, Verdict};

/// The largest answer a client reads (a full group of `links_max` attestations fits well).
pub const VIEW_REPLY_BYTES_MAX: usize = 1 << 20;
/// How long either side waits for the other.
pub const VIEW_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the member waits after a failed accept before it accepts again.
const VIEW_ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// One member's view of its group, as it travels to `groups view`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewReport {
    /// The member that answered.
    pub member: u32,
    /// The group (40 hex characters), or none while the member is not in one yet.
    pub group: Option<String>,
    /// When the member published this view, in milliseconds since it started.
    pub published_at_ms: u64,
    /// Every node the member knows (its peers and itself), and any other node its view holds.
    pub nodes: BTreeSet<u32>,
    /// The nodes in its view.
    pub view: BTreeSet<u32>,
    /// Live attestations, `[attester, attestee]`.
    pub attestations: BTreeSet<(u32, u32)>,
    /// The last compact transcript the member collected and checked, if any.
    #[serde(default)]
    pub transcript: Option<TranscriptReport>,
}

impl ViewReport {
    /// The report of member `me` (knowing `known` nodes) from what it published.
    pub fn from_published(
        me: NodeId,
        known: &BTreeSet<NodeId>,
        published: &PublishedView,
    ) -> ViewReport {
        let mut report = ViewReport {
            member: me.0,
            published_at_ms: published.at.as_nanos() / 1_000_000,
            nodes: known.iter().map(|n| n.0).collect(),
            ..ViewReport::default()
        };
        // A member is in at most one group (its configuration names one).
        if let Some((group, snapshot)) = published.groups.iter().next() {
            report.group = Some(hex::encode(group.0));
            report.view = snapshot.view.iter().map(|n| n.0).collect();
            report.attestations = snapshot
                .attestations
                .iter()
                .map(|(from, to)| (from.0, to.0))
                .collect();
            report.nodes.extend(report.view.iter().copied());
        }
        report
    }

    /// The report as a picture.
    pub fn picture(&self) -> GraphPicture {
        let group = self.group.as_deref().unwrap_or("(no group yet)");
        GraphPicture {
            title: format!("LA-groups {group}: view of member {}", self.member),
            nodes: self.nodes.iter().copied().map(NodeId).collect(),
            view: self.view.iter().copied().map(NodeId).collect(),
            attestations: self
                .attestations
                .iter()
                .map(|&(from, to)| (NodeId(from), NodeId(to)))
                .collect(),
        }
    }
}

/// Answer `groups view` clients on `listener` with the latest report, until the daemon stops.
pub async fn serve_view(listener: TcpListener, reports: watch::Receiver<ViewReport>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: let some close before accepting again.
            tokio::time::sleep(VIEW_ACCEPT_RETRY).await;
            continue;
        };
        let body = match serde_json::to_vec(&*reports.borrow()) {
            Ok(body) => body,
            Err(_) => continue,
        };
        // One client at a time, each bounded in time: a client that does not read is dropped.
        let _ = tokio::time::timeout(VIEW_IO_TIMEOUT, async {
            stream.write_all(&body).await?;
            stream.shutdown().await
        })
        .await;
    }
}

/// Read the report of the member answering on `addr`.
pub fn fetch_view(addr: SocketAddr) -> anyhow::Result<ViewReport> {
    let stream = TcpStream::connect_timeout(&addr, VIEW_IO_TIMEOUT).with_context(|| {
        format!("connecting to the member's view_listen {addr}; is `stockade groups member` running with view_listen set?")
    })?;
    stream
        .set_read_timeout(Some(VIEW_IO_TIMEOUT))
        .context("setting the read timeout")?;
    let mut body = Vec::new();
    stream
        .take(VIEW_REPLY_BYTES_MAX as u64 + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("reading the view from {addr}"))?;
    if body.len() > VIEW_REPLY_BYTES_MAX {
        bail!("{addr} sent more than {VIEW_REPLY_BYTES_MAX} bytes; it is not a groups member's view endpoint");
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("{addr} did not answer with a member's view"))
}

/// `stockade groups view`: print a running member's view and graph; write pictures with `--out`.
pub fn run(args: &GroupsViewArgs) -> anyhow::Result<Verdict> {
    let report = fetch_view(args.member)?;
    let picture = report.picture();
    println!(
        "member {} (up {:.1} s): {}",
        report.member,
        report.published_at_ms as f64 / 1000.0,
        report
            .group
            .as_deref()
            .map_or("not in a group yet".to_string(), |g| format!("group {g}"))
    );
    print!("{}", picture.describe(NodeId(report.member)));
    if let Some(t) = &report.transcript {
        let list =
            |ids: &BTreeSet<u32>| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        println!(
            "compact transcript of epoch {}: view {} signed by {} ({} bytes, one BLS aggregate)",
            t.epoch,
            list(&t.members),
            list(&t.signers),
            t.bytes
        );
    }
    let files = match &args.out {
        Some(dir) => write_pictures(&picture, dir)?,
        None => {
            print!("{}", picture.to_dot());
            Vec::new()
        }
    };
    for file in &files {
        println!("wrote {file}");
    }
    print_headline(&json!({
        "command": "groups view",
        "member": report.member,
        "group": report.group,
        "view": report.view,
        "view_size": report.view.len(),
        "attestations": report.attestations.len(),
        "transcript_signers": report.transcript.as_ref().map(|t| &t.signers),
        "transcript_bytes": report.transcript.as_ref().map(|t| t.bytes),
        "files": files,
    }));
    Ok(Verdict::from_passed(report.group.is_some()))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::TcpListener as StdListener;

    use stockade_attest::attestation::GroupId;
    use stockade_core::Time;

    use super::super::member::GroupSnapshot;
    use super::*;

    fn published() -> PublishedView {
        PublishedView {
            at: Time::from_nanos(2_500_000_000),
            groups: [(
                GroupId([7; 20]),
                GroupSnapshot {
                    view: [0, 1].map(NodeId).into(),
                    attestations: [(0, 1), (1, 0), (1, 5)]
                        .map(|(a, b)| (NodeId(a), NodeId(b)))
                        .into(),
                },
            )]
            .into(),
        }
    }

    #[test]
    fn a_report_carries_the_view_and_draws_every_node() {
        let known = [0, 1, 2].map(NodeId).into();
        let report = ViewReport::from_published(NodeId(0), &known, &published());
        assert_eq!(report.group.as_deref(), Some("07".repeat(20).as_str()));
        assert_eq!(report.published_at_ms, 2500);
        assert_eq!(report.view, [0, 1].into());
        let picture = report.picture();
        assert_eq!(picture.nodes.len(), 3, "known nodes, outside the view too");
        assert_eq!(picture.attestations.len(), 3);
        let empty = ViewReport::from_published(NodeId(0), &known, &PublishedView::default());
        assert_eq!(empty.group, None);
    }

    #[test]
    fn the_server_answers_and_the_client_refuses_an_oversized_answer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let report = ViewReport::from_published(NodeId(3), &BTreeSet::new(), &published());
        let (addr, _tx) = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let (tx, rx) = watch::channel(report.clone());
            tokio::spawn(serve_view(listener, rx));
            (addr, tx)
        });
        let fetched = std::thread::scope(|s| {
            let client = s.spawn(|| fetch_view(addr));
            runtime.block_on(async {
                while !client.is_finished() {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            client.join().expect("client thread")
        })
        .expect("fetched");
        assert_eq!(fetched, report);

        let flood = StdListener::bind("127.0.0.1:0").expect("bind");
        let flood_addr = flood.local_addr().expect("address");
        let server = std::thread::spawn(move || {
            if let Ok((mut stream, _)) = flood.accept() {
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..=(VIEW_REPLY_BYTES_MAX / chunk.len()) {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        });
        let error = fetch_view(flood_addr).expect_err("oversized");
        assert!(
            error
                .to_string()
                .contains(&VIEW_REPLY_BYTES_MAX.to_string()),
            "{error}"
        );
        let _ = server.join();
    }
}
