//! A local overlay of real `stockade overlay run` processes on 127.0.0.1: the files
//! (`write_local_overlay`), and `overlay up` / `overlay down`, which start and stop the processes
//! by pid file.
//!
//! Layout under DIR: `ca.key` (the certificate authority's Ed25519 secret, when ids are
//! certified), `nodes.json` (every node's id, UDP and control address, config path), and per node
//! `node<i>/` with its keys (`stockade keygen`'s files), `overlay.toml` and `data/`, plus
//! `node<i>.pid` and `node<i>.log`.
//!
//! What is static: every config lists every node's Noise public key and UDP address, because the
//! runtime's links only talk to peers known in advance. What is not: each node is told only its
//! bootstrap (node 0); its overlay tables fill through Pastry's join and repair.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use stockade_core::NodeId;
use stockade_crypto::ed25519::{SigningKey, VerifyingKey};
use stockade_overlay::net::config::certificate_hex;
use stockade_overlay::net::{OverlayNodeConfig, OverlaySettings};
use stockade_overlay::CertificateAuthority;
use stockade_runtime::{LinkConfig, NodeConfig, PeerConfig};

use crate::keygen::{write_node_keys, write_secret, NOISE_KEY_FILE};

/// The list of nodes under DIR.
pub const NODES_FILE: &str = "nodes.json";
/// The certificate authority's secret key under DIR.
pub const CA_KEY_FILE: &str = "ca.key";
/// How long `overlay up` waits for one process to start running its command line.
pub const STARTUP_WAIT_MS: u64 = 2_000;
/// How long `overlay down` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT_MS: u64 = 5_000;

/// What to write.
#[derive(Clone, Debug)]
pub struct LocalOverlayPlan {
    /// Nodes (ids 0..nodes; node 0 is everyone's bootstrap).
    pub nodes: usize,
    /// Node `i` listens on UDP `base_port + i` and serves control on TCP `base_port + 1000 + i`;
    /// `None` picks free ports.
    pub base_port: Option<u16>,
    /// Certify node ids with a fresh certificate authority (else ids derive from Noise keys).
    pub certified: bool,
    /// Replicas per DHT object.
    pub replicas: usize,
}

/// One node of a local overlay, as `nodes.json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalNode {
    /// Its transport id.
    pub node: u32,
    /// Its UDP address.
    pub udp: SocketAddr,
    /// Its control interface.
    pub control: SocketAddr,
    /// Its config file.
    pub config: PathBuf,
}

impl LocalNode {
    fn pid_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("node{}.pid", self.node))
    }
    /// Its log file (standard output and error of its process).
    pub fn log_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("node{}.log", self.node))
    }
}

/// `n` distinct free addresses on 127.0.0.1 for UDP and `n` for TCP (each socket is held until
/// all are bound, so the OS hands out distinct ports), or the planned ports from `base_port`.
fn addresses(
    n: usize,
    base_port: Option<u16>,
) -> anyhow::Result<(Vec<SocketAddr>, Vec<SocketAddr>)> {
    if let Some(base) = base_port {
        let at = |offset: usize| -> anyhow::Result<SocketAddr> {
            let port = u16::try_from(usize::from(base) + offset)
                .ok()
                .with_context(|| format!("{n} nodes from port {base} run past port 65535"))?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        let udp = (0..n).map(at).collect::<anyhow::Result<_>>()?;
        let control = (0..n)
            .map(|i| at(1000 + i))
            .collect::<anyhow::Result<_>>()?;
        return Ok((udp, control));
    }
    let udp_sockets = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let tcp_listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let udp = udp_sockets
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<std::io::Result<_>>()?;
    let control = tcp_listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<_>>()?;
    Ok((udp, control))
}

/// Write keys, certificates and configs for a local overlay under `dir`; returns its nodes.
pub fn write_local_overlay(dir: &Path, plan: &LocalOverlayPlan) -> anyhow::Result<Vec<LocalNode>> {
    if plan.nodes < 2 {
        bail!(
            "an overlay needs at least 2 nodes, asked for {}",
            plan.nodes
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let (udp, control) = addresses(plan.nodes, plan.base_port)?;
    let mut publics = Vec::with_capacity(plan.nodes);
    for i in 0..plan.nodes {
        publics.push(write_node_keys(&dir.join(format!("node{i}")), true)?);
    }
    let authority = if plan.certified {
        let key = SigningKey::generate(&mut OsRng);
        write_secret(&dir.join(CA_KEY_FILE), &key.to_hex())?;
        Some(CertificateAuthority::new(key))
    } else {
        None
    };
    let mut nodes = Vec::with_capacity(plan.nodes);
    for i in 0..plan.nodes {
        let home = dir.join(format!("node{i}"));
        let peers = (0..plan.nodes)
            .filter(|j| *j != i)
            .map(|j| PeerConfig {
                id: j as u32,
                addr: udp[j],
                public_key: publics[j].noise.clone(),
            })
            .collect();
        let certificate = match &authority {
            Some(ca) => {
                let ed25519 = VerifyingKey::from_hex(&publics[i].ed25519)
                    .map_err(|e| anyhow::anyhow!("node {i}'s Ed25519 key: {e}"))?;
                Some(certificate_hex(&ca.issue(
                    &mut OsRng,
                    NodeId(i as u32),
                    ed25519.to_bytes(),
                )))
            }
            None => None,
        };
        let config = OverlayNodeConfig {
            node: NodeConfig {
                id: i as u32,
                listen: udp[i],
                key_file: NOISE_KEY_FILE.into(),
                peers,
                data_dir: "data".into(),
                metrics: None,
                link: LinkConfig::default(),
            },
            overlay: OverlaySettings {
                bootstrap: (i != 0).then_some(0),
                control: control[i],
                certificate_authority: authority.as_ref().map(|ca| hex::encode(ca.public_key())),
                certificate,
                replicas: plan.replicas,
                join_timeout_ms: None,
                join_attempts_max: None,
            },
        };
        let path = home.join("overlay.toml");
        std::fs::write(&path, config.to_toml()?)
            .with_context(|| format!("writing {}", path.display()))?;
        nodes.push(LocalNode {
            node: i as u32,
            udp: udp[i],
            control: control[i],
            config: path,
        });
    }
    let list = serde_json::to_string_pretty(&nodes).context("encoding the node list")?;
    std::fs::write(dir.join(NODES_FILE), list)
        .with_context(|| format!("writing {}", dir.join(NODES_FILE).display()))?;
    Ok(nodes)
}

/// The nodes of the local overlay under `dir`.
pub fn read_local_overlay(dir: &Path) -> anyhow::Result<Vec<LocalNode>> {
    let path = dir.join(NODES_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (run `stockade overlay up --dir {}` first)",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The pid in `node`'s pid file if that process is alive and runs `node`'s config.
pub fn running_pid(dir: &Path, node: &LocalNode) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(node.pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name; a zombie has exited.
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    if state == "Z" {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let wanted = node.config.as_os_str().as_encoded_bytes();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == wanted)
        .then_some(pid)
}

/// Start every node under `dir` that is not running, as `exe overlay run --config FILE` in its
/// own process group (it outlives the shell), writing pid files; returns the nodes.
pub fn overlay_up(dir: &Path, exe: &Path) -> anyhow::Result<Vec<LocalNode>> {
    let nodes = read_local_overlay(dir)?;
    for node in &nodes {
        if let Some(pid) = running_pid(dir, node) {
            println!("node {} already running (pid {pid})", node.node);
            continue;
        }
        let log_path = node.log_path(dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file")?;
        let mut child = Command::new(exe)
            .args(["overlay", "run", "--config"])
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid_path = node.pid_path(dir);
        std::fs::write(&pid_path, format!("{}\n", child.id()))
            .with_context(|| format!("writing {}", pid_path.display()))?;
        let deadline = Instant::now() + Duration::from_millis(STARTUP_WAIT_MS);
        while running_pid(dir, node).is_none() && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "node {} exited at once ({status}); see {}",
                    node.node,
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        println!(
            "started node {} (pid {}), control {}, log {}",
            node.node,
            child.id(),
            node.control,
            log_path.display()
        );
    }
    Ok(nodes)
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// Stop every running node under `dir` (SIGTERM, then SIGKILL after [`STOP_TIMEOUT_MS`]);
/// returns how many were stopped. Keys, configs and logs stay.
pub fn overlay_down(dir: &Path) -> anyhow::Result<usize> {
    let nodes = read_local_overlay(dir)?;
    let mut stopped = 0;
    for node in &nodes {
        let Some(pid) = running_pid(dir, node) else {
            let _ = std::fs::remove_file(node.pid_path(dir));
            continue;
        };
        signal(pid, "TERM")?;
        let deadline = Instant::now() + Duration::from_millis(STOP_TIMEOUT_MS);
        while running_pid(dir, node).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if running_pid(dir, node).is_some() {
            signal(pid, "KILL")?;
        }
        let _ = std::fs::remove_file(node.pid_path(dir));
        stopped += 1;
    }
    Ok(stopped)
}
