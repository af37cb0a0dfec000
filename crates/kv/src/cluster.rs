//! A local cluster on one machine, for trying the service: `cluster_up` writes keys, TOML
//! configurations and data directories under a directory and starts the servers and the voting
//! proxy as background processes of the `stockade` executable; `cluster_status` lists them;
//! `cluster_down` stops them.
//!
//! Layout under DIR (node ids: servers 0..N, the proxy N):
//! `server<i>.toml`, `server<i>.noise` (Noise static key), `server<i>.sign` (Ed25519 key),
//! `server<i>.share` (its share of the servers' threshold key), `server<i>.pid`, `server<i>.log`, `data/server<i>/`; the same with `proxy` for the proxy.
//! Ports: protocol `base + i`, RESP `base + 100 + i`, metrics `base + 200 + i` (the proxy is
//! i = N). Re-running `cluster_up` on the same DIR reuses the files and starts only the processes
//! whose pid file does not name a live process of this cluster.
//!
//! Threshold key: Prime's view change carries one BLS threshold signature that 2f+1 servers'
//! shares combine into (PRIME.md "View change" step 3). `cluster_up` plays a trusted dealer: it
//! deals a fresh (2f+1)-of-(3f+1) key from the OS RNG, writes each server's share to its own file
//! (mode 0600), the public key set into every configuration, and forgets the group secret. That is
//! acceptable for a local cluster whose files one operator owns anyway; a deployment across
//! administrative domains would use a distributed key generation instead, so that no single
//! machine ever held the group secret.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand_core::OsRng;
use stockade_crypto::ed25519::SigningKey;
use stockade_crypto::threshold::{deal, ThresholdParameters};
use stockade_runtime::{LinkConfig, NodeConfig, PeerConfig, StaticKeypair};

use crate::service_config::{
    save_signing_key, save_threshold_share, ProxyParams, ReplicationConfig, ServiceConfig,
    ServiceError,
};

/// Port offset of the RESP ports from the protocol ports.
pub const RESP_PORT_OFFSET: u16 = 100;
/// Port offset of the metrics ports from the protocol ports.
pub const METRICS_PORT_OFFSET: u16 = 200;
/// The link round-trip time a local cluster's configurations declare: loopback is well under a
/// millisecond, so Prime runs with its local-network periods.
pub const LOOPBACK_LINK_RTT_MS: u64 = 1;
/// How long `cluster_up` waits for a started process to show up as running.
pub const STARTUP_WAIT_MS: u64 = 2_000;
/// How long `cluster_down` waits for a process to exit after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT_MS: u64 = 5_000;

/// One process of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// "server" or "proxy" (also the `stockade` subcommand that runs it).
    pub role: &'static str,
    /// Node id.
    pub id: u32,
    /// File stem under DIR: `server3`, `proxy`.
    pub name: String,
}

impl Member {
    fn config_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.toml", self.name))
    }
    fn pid_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.pid", self.name))
    }
    fn log_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.log", self.name))
    }
}

fn members(servers: usize) -> Vec<Member> {
    let mut all: Vec<Member> = (0..servers as u32)
        .map(|id| Member {
            role: "server",
            id,
            name: format!("server{id}"),
        })
        .collect();
    all.push(Member {
        role: "proxy",
        id: servers as u32,
        name: "proxy".into(),
    });
    all
}

/// The members whose configuration files exist under `dir`, in node order.
fn existing_members(dir: &Path) -> Vec<Member> {
    let mut servers = 0;
    while dir.join(format!("server{servers}.toml")).exists() {
        servers += 1;
    }
    if servers == 0 {
        return Vec::new();
    }
    members(servers)
}

fn port(base: u16, offset: u16, index: usize) -> Result<u16, ServiceError> {
    u16::try_from(index)
        .ok()
        .and_then(|i| base.checked_add(offset)?.checked_add(i))
        .ok_or_else(|| {
            ServiceError::Cluster(format!("base port {base} leaves no room for {index} nodes"))
        })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Whether every loopback port [`write_cluster`] names for `servers` servers and a proxy from
/// `base_port` (protocol, RESP and metrics) can be bound right now, over UDP and TCP.
pub fn cluster_ports_free(servers: usize, base_port: u16) -> bool {
    (0..=servers as u16).all(|i| {
        [0, RESP_PORT_OFFSET, METRICS_PORT_OFFSET]
            .iter()
            .all(|offset| {
                let addr = loopback(base_port + offset + i);
                std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok()
            })
    })
}

/// Write keys, configurations and data directories for `servers` servers tolerating `f` faults
/// and one proxy under `dir`; returns the configuration paths (servers first, the proxy last).
pub fn write_cluster(
    dir: &Path,
    servers: usize,
    f: usize,
    base_port: u16,
) -> Result<Vec<PathBuf>, ServiceError> {
    if servers != 3 * f + 1 {
        return Err(ServiceError::Cluster(format!(
            "{servers} servers cannot tolerate f = {f}: Prime needs exactly 3f+1 = {}",
            3 * f + 1
        )));
    }
    fs::create_dir_all(dir.join("data")).map_err(ServiceError::io(dir))?;
    let dir = fs::canonicalize(dir).map_err(ServiceError::io(dir))?;
    let all = members(servers);
    let parameters = ThresholdParameters::new(2 * f + 1, servers)
        .map_err(|e| ServiceError::Cluster(format!("threshold key: {e}")))?;
    let dealt = deal(parameters, &mut OsRng)
        .map_err(|e| ServiceError::Cluster(format!("threshold key: {e}")))?;
    let mut shares = Vec::new();
    for (i, share) in dealt.secret_shares.iter().enumerate() {
        let path = dir.join(format!("server{i}.share"));
        save_threshold_share(share, &path)?;
        shares.push(path);
    }
    let key_set = dealt.public.to_hex();
    let mut noise = Vec::new();
    let mut signing = Vec::new();
    for m in &all {
        let noise_key = StaticKeypair::generate()
            .map_err(|e| ServiceError::Cluster(format!("noise key: {e}")))?;
        let noise_path = dir.join(format!("{}.noise", m.name));
        noise_key
            .save(&noise_path)
            .map_err(|e| ServiceError::Cluster(format!("{}: {e}", noise_path.display())))?;
        let sign_key = SigningKey::generate(&mut OsRng);
        let sign_path = dir.join(format!("{}.sign", m.name));
        save_signing_key(&sign_key, &sign_path)?;
        noise.push((noise_path, noise_key.public()));
        signing.push((sign_path, sign_key.verifying_key().to_hex()));
    }
    let replication = |i: usize| ReplicationConfig {
        f,
        servers: (0..servers as u32).collect(),
        verifying_keys: signing[..servers].iter().map(|(_, k)| k.clone()).collect(),
        signing_key_file: signing[i].0.clone(),
        link_rtt_ms: Some(LOOPBACK_LINK_RTT_MS),
        threshold_key_set: shares.get(i).map(|_| key_set.clone()),
        threshold_share_file: shares.get(i).cloned(),
    };
    let server_resp = (0..servers)
        .map(|i| Ok(loopback(port(base_port, RESP_PORT_OFFSET, i)?)))
        .collect::<Result<Vec<_>, ServiceError>>()?;
    let mut paths = Vec::new();
    for (i, m) in all.iter().enumerate() {
        let peers = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, other)| {
                Ok(PeerConfig {
                    id: other.id,
                    addr: loopback(port(base_port, 0, j)?),
                    public_key: noise[j].1.to_string(),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        let data_dir = dir.join("data").join(&m.name);
        fs::create_dir_all(&data_dir).map_err(ServiceError::io(&data_dir))?;
        let config = ServiceConfig {
            resp: loopback(port(base_port, RESP_PORT_OFFSET, i)?),
            node: NodeConfig {
                id: m.id,
                listen: loopback(port(base_port, 0, i)?),
                key_file: noise[i].0.clone(),
                peers,
                data_dir,
                metrics: Some(loopback(port(base_port, METRICS_PORT_OFFSET, i)?)),
                link: LinkConfig::default(),
            },
            replication: replication(i),
            proxy: ProxyParams {
                server_resp: server_resp.clone(),
                ..ProxyParams::default()
            },
            attack: None,
        };
        let path = m.config_path(&dir);
        config.save(&path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// The pid in `member`'s pid file if that process is alive and runs this member's configuration.
fn running_pid(dir: &Path, member: &Member) -> Option<u32> {
    let pid: u32 = fs::read_to_string(member.pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name; a zombie has exited.
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    if state == "Z" {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let config = member.config_path(dir);
    let wanted = config.as_os_str().as_encoded_bytes();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == wanted)
        .then_some(pid)
}

/// Write the cluster under `dir` if it is not there yet, start every process of it that is not
/// running (`exe server --config FILE`, `exe proxy --config FILE`), print one line per process
/// started and, last, the proxy's RESP address as `HOST:PORT`; returns that address.
pub fn cluster_up(
    dir: &Path,
    servers: usize,
    f: usize,
    base_port: u16,
    exe: &Path,
) -> Result<SocketAddr, ServiceError> {
    if existing_members(dir).is_empty() {
        write_cluster(dir, servers, f, base_port)?;
    }
    let dir = fs::canonicalize(dir).map_err(ServiceError::io(dir))?;
    let all = existing_members(&dir);
    let mut proxy_resp = None;
    for m in &all {
        let config_path = m.config_path(&dir);
        let config = ServiceConfig::load(&config_path)?;
        if m.role == "proxy" {
            proxy_resp = Some(config.resp);
        }
        if let Some(pid) = running_pid(&dir, m) {
            println!("{} {} already running (pid {pid})", m.role, m.id);
            continue;
        }
        let log_path = m.log_path(&dir);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(ServiceError::io(&log_path))?;
        let log_err = log.try_clone().map_err(ServiceError::io(&log_path))?;
        let mut child = Command::new(exe)
            .arg(m.role)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: it outlives the shell that ran `cluster up`.
            .process_group(0)
            .spawn()
            .map_err(|e| ServiceError::Cluster(format!("cannot run {}: {e}", exe.display())))?;
        let pid_path = m.pid_path(&dir);
        fs::write(&pid_path, format!("{}\n", child.id())).map_err(ServiceError::io(&pid_path))?;
        // Wait until it runs its own command line (or has died, which is reported).
        let deadline = Instant::now() + Duration::from_millis(STARTUP_WAIT_MS);
        while running_pid(&dir, m).is_none() && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ServiceError::Cluster(format!(
                    "{} {} exited at once ({status}); see {}",
                    m.role,
                    m.id,
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        println!(
            "started {} {} (pid {}), log {}",
            m.role,
            m.id,
            child.id(),
            log_path.display()
        );
    }
    let proxy_resp = proxy_resp
        .ok_or_else(|| ServiceError::Cluster(format!("no proxy.toml under {}", dir.display())))?;
    println!("{proxy_resp}");
    Ok(proxy_resp)
}

/// Every process of the cluster under `dir` as a JSON array of `{role, id, pid, resp}` (`pid` is
/// null for a process that is not running).
pub fn cluster_status(dir: &Path) -> Result<serde_json::Value, ServiceError> {
    let mut rows = Vec::new();
    for m in existing_members(dir) {
        let config = ServiceConfig::load(&m.config_path(dir))?;
        rows.push(serde_json::json!({
            "role": m.role,
            "id": m.id,
            "pid": running_pid(dir, &m),
            "resp": config.resp.to_string(),
        }));
    }
    Ok(serde_json::Value::Array(rows))
}

fn signal(pid: u32, name: &str) -> Result<(), ServiceError> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| ServiceError::Cluster(format!("cannot run kill: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ServiceError::Cluster(format!("kill -{name} {pid} failed")))
    }
}

/// Stop every running process of the cluster under `dir` (SIGTERM, then SIGKILL after
/// [`STOP_TIMEOUT_MS`]); returns how many were stopped. Keys, configurations and data stay.
pub fn cluster_down(dir: &Path) -> Result<usize, ServiceError> {
    let all = existing_members(dir);
    let mut stopped = 0;
    for m in &all {
        let Some(pid) = running_pid(dir, m) else {
            let _ = fs::remove_file(m.pid_path(dir));
            continue;
        };
        signal(pid, "TERM")?;
        let deadline = Instant::now() + Duration::from_millis(STOP_TIMEOUT_MS);
        while running_pid(dir, m).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if running_pid(dir, m).is_some() {
            signal(pid, "KILL")?;
        }
        let _ = fs::remove_file(m.pid_path(dir));
        stopped += 1;
    }
    Ok(stopped)
}
