//! A local committee of real `stockade broadcast-node` processes on 127.0.0.1: writes every node's
//! keys and config into a directory, starts the processes, feeds them broadcasts, kills one when
//! asked, and collects what each delivered (with the time the controller read it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use stockade_broadcast::InstanceId;
use stockade_core::NodeId;
use stockade_runtime::{LinkConfig, NodeConfig, PeerConfig};

use super::config::{BroadcastNodeConfig, CommitteeConfig};
use super::faults::InjectedFaults;
use crate::keygen::{write_node_keys, ED25519_KEY_FILE, NOISE_KEY_FILE};

/// How long a node process may take to start and report `ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to stop after `quit`.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a node process reported on its standard output.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeEvent {
    /// It runs, listening on this address.
    Ready(String),
    /// It delivered a broadcast.
    Delivered {
        /// Which.
        instance: InstanceId,
        /// What.
        payload: Vec<u8>,
    },
    /// It refused a command or request.
    Refused(String),
    /// Its final counters.
    Stats(Value),
    /// Its output ended (it exited or was killed).
    Exited,
}

/// The committee to start.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    /// Fault bound; `3f + 1` processes.
    pub f: usize,
    /// First UDP port; `None` picks free ports.
    pub base_port: Option<u16>,
    /// Faults each node injects (missing entries: none).
    pub faults: BTreeMap<NodeId, InjectedFaults>,
}

/// Running node processes and what they reported.
pub struct ProcessCluster {
    children: Vec<Option<Child>>,
    stdins: Vec<Option<ChildStdin>>,
    events: mpsc::Receiver<(NodeId, Instant, NodeEvent)>,
    /// Kept so the channel never disconnects: waiting on it always honours its timeout.
    _events_tx: mpsc::Sender<(NodeId, Instant, NodeEvent)>,
    /// The directory holding keys, configs and data.
    pub dir: PathBuf,
}

impl ProcessCluster {
    /// Write keys and configs under `dir` and start every node as `exe broadcast-node --config`.
    /// Returns once every node reported `ready`.
    pub fn start(exe: &Path, dir: &Path, plan: &ClusterPlan) -> anyhow::Result<ProcessCluster> {
        let n = 3 * plan.f + 1;
        let addrs = listen_addresses(n, plan.base_port)?;
        let mut publics = Vec::with_capacity(n);
        for i in 0..n {
            publics.push(write_node_keys(&node_dir(dir, i), true)?);
        }
        let ed25519_public_keys: Vec<String> = publics.iter().map(|p| p.ed25519.clone()).collect();
        let (events_tx, events) = mpsc::channel();
        let mut cluster = ProcessCluster {
            children: Vec::new(),
            stdins: Vec::new(),
            events,
            _events_tx: events_tx.clone(),
            dir: dir.to_path_buf(),
        };
        for i in 0..n {
            let home = node_dir(dir, i);
            let peers = (0..n)
                .filter(|j| *j != i)
                .map(|j| PeerConfig {
                    id: j as u32,
                    addr: addrs[j],
                    public_key: publics[j].noise.clone(),
                })
                .collect();
            let config = BroadcastNodeConfig {
                node: NodeConfig {
                    id: i as u32,
                    listen: addrs[i],
                    key_file: home.join(NOISE_KEY_FILE),
                    peers,
                    data_dir: home.join("data"),
                    metrics: None,
                    link: LinkConfig::default(),
                },
                broadcast: CommitteeConfig {
                    f: plan.f,
                    ed25519_key_file: home.join(ED25519_KEY_FILE),
                    ed25519_public_keys: ed25519_public_keys.clone(),
                },
                faults: plan
                    .faults
                    .get(&NodeId(i as u32))
                    .cloned()
                    .unwrap_or_default(),
            };
            let config_path = home.join("node.toml");
            std::fs::write(&config_path, config.to_toml()?)
                .with_context(|| format!("writing {}", config_path.display()))?;
            let log = std::fs::File::create(home.join("stderr.log"))
                .context("creating the node's log")?;
            let mut child = Command::new(exe)
                .arg("broadcast-node")
                .arg("--config")
                .arg(&config_path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            let stdout = child.stdout.take().context("no pipe from the node")?;
            cluster.stdins.push(child.stdin.take());
            cluster.children.push(Some(child));
            let tx = events_tx.clone();
            let id = NodeId(i as u32);
            std::thread::spawn(move || read_events(id, stdout, tx));
        }
        cluster.wait_until_ready(n)?;
        Ok(cluster)
    }

    fn wait_until_ready(&mut self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut ready = 0;
        while ready < n {
            match self.next_event(deadline.saturating_duration_since(Instant::now())) {
                Some((_, _, NodeEvent::Ready(_))) => ready += 1,
                Some((node, _, NodeEvent::Exited)) => {
                    bail!(
                        "{node} exited while starting; see {}",
                        node_dir(&self.dir, node.index())
                            .join("stderr.log")
                            .display()
                    )
                }
                Some(_) => {}
                None => bail!("only {ready} of {n} nodes started within {START_TIMEOUT:?}"),
            }
        }
        Ok(())
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Ask `node` to broadcast `payload`.
    pub fn broadcast(&mut self, node: NodeId, payload: &[u8]) -> anyhow::Result<()> {
        let stdin = self
            .stdins
            .get_mut(node.index())
            .and_then(Option::as_mut)
            .with_context(|| format!("{node} is not running"))?;
        writeln!(stdin, "broadcast {}", hex::encode(payload))
            .with_context(|| format!("writing to {node}"))?;
        stdin.flush().with_context(|| format!("writing to {node}"))
    }

    /// Kill `node` at once (SIGKILL): the fault of the demo.
    pub fn kill(&mut self, node: NodeId) -> anyhow::Result<()> {
        if let Some(stdin) = self.stdins.get_mut(node.index()) {
            stdin.take();
        }
        let child = self
            .children
            .get_mut(node.index())
            .and_then(Option::take)
            .with_context(|| format!("{node} is not running"))?;
        kill_and_reap(child);
        Ok(())
    }

    /// The next event of any node, waiting at most `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<(NodeId, Instant, NodeEvent)> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Ask every running node to quit and collect their final counters (for `QUIT_TIMEOUT`).
    /// Events other than stats that arrive meanwhile are handed to `other`.
    pub fn quit_all(
        &mut self,
        mut other: impl FnMut(NodeId, Instant, NodeEvent),
    ) -> BTreeMap<NodeId, Value> {
        let mut running = 0;
        for stdin in self.stdins.iter_mut() {
            if let Some(mut s) = stdin.take() {
                let _ = writeln!(s, "quit");
                running += 1;
            }
        }
        let deadline = Instant::now() + QUIT_TIMEOUT;
        let mut stats = BTreeMap::new();
        while stats.len() < running {
            match self.next_event(deadline.saturating_duration_since(Instant::now())) {
                Some((node, _, NodeEvent::Stats(value))) => {
                    stats.insert(node, value);
                }
                Some((node, at, event)) => other(node, at, event),
                None => break,
            }
        }
        for child in self.children.iter_mut().filter_map(Option::take) {
            kill_and_reap(child);
        }
        stats
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            kill_and_reap(child);
        }
    }
}

fn kill_and_reap(mut child: Child) {
    // The child may have exited already; either way it must not outlive the cluster.
    let _ = child.kill();
    let _ = child.wait();
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

/// `n` loopback addresses: consecutive ports from `base_port`, or free ports the OS picks.
fn listen_addresses(n: usize, base_port: Option<u16>) -> anyhow::Result<Vec<SocketAddr>> {
    match base_port {
        Some(base) => (0..n)
            .map(|i| {
                let port = base.checked_add(i as u16).context("port number overflow")?;
                Ok(SocketAddr::from(([127, 0, 0, 1], port)))
            })
            .collect(),
        None => {
            // Hold every socket until all are bound so the OS hands out distinct ports.
            let sockets = (0..n)
                .map(|_| UdpSocket::bind("127.0.0.1:0"))
                .collect::<std::io::Result<Vec<_>>>()?;
            sockets
                .iter()
                .map(|s| s.local_addr().context("reading a bound address"))
                .collect()
        }
    }
}

/// Read one node's standard output into events until it ends.
fn read_events(
    node: NodeId,
    stdout: std::process::ChildStdout,
    tx: mpsc::Sender<(NodeId, Instant, NodeEvent)>,
) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(event) = parse_event(&line) {
            if tx.send((node, Instant::now(), event)).is_err() {
                return;
            }
        }
    }
    let _ = tx.send((node, Instant::now(), NodeEvent::Exited));
}

/// One line of a node's output as an event; unknown lines are ignored.
pub fn parse_event(line: &str) -> Option<NodeEvent> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "ready" => Some(NodeEvent::Ready(rest.to_string())),
        "refused" => Some(NodeEvent::Refused(rest.to_string())),
        "stats" => serde_json::from_str(rest).ok().map(NodeEvent::Stats),
        "delivered" => {
            let mut fields = rest.split(' ');
            let origin = fields.next()?.parse().ok()?;
            let seq = fields.next()?.parse().ok()?;
            let payload = hex::decode(fields.next().unwrap_or("")).ok()?;
            Some(NodeEvent::Delivered {
                instance: InstanceId {
                    origin: NodeId(origin),
                    seq,
                },
                payload,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_node_output_lines() {
        assert_eq!(
            parse_event("delivered 2 7 6869"),
            Some(NodeEvent::Delivered {
                instance: InstanceId {
                    origin: NodeId(2),
                    seq: 7
                },
                payload: b"hi".to_vec()
            })
        );
        assert_eq!(
            parse_event("ready 127.0.0.1:5"),
            Some(NodeEvent::Ready("127.0.0.1:5".into()))
        );
        assert_eq!(parse_event("delivered x 7 00"), None);
        assert_eq!(parse_event("noise"), None);
        assert!(matches!(
            parse_event("stats {\"a\":1}"),
            Some(NodeEvent::Stats(_))
        ));
    }
}
