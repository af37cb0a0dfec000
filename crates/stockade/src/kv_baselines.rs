//! What `stockade bench kv` compares the replicated service with, and what it reads from the
//! processes it measured: unreplicated servers on the same machine (paper 001's anchor, EVE: a
//! replicated server within 25% of an unreplicated one), a process's peak memory, and a counter
//! from a server's metrics endpoint.
//!
//! Baselines:
//! - `redis-server` when it is on PATH, started on a free loopback port in three durability
//!   modes: no persistence (`--save '' --appendonly no`), an append-only file synced every
//!   second (`--appendfsync everysec`), and synced before every reply (`--appendfsync always`).
//!   The last is the fair comparison for durability: a stockade server acknowledges nothing before
//!   its redb transaction is on disk.
//! - stockade's own unreplicated server ([`stockade_kv::unreplicated`]): the same parser, state
//!   machine and RESP codec minus ordering and persistence, always available.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use stockade_kv::unreplicated::{UnreplicatedConfig, UnreplicatedServer};

use crate::kv_load::{connect_within, CONNECT_WITHIN_MS};

/// The redis-server executable the benchmark looks for on PATH.
pub const REDIS_SERVER: &str = "redis-server";
/// Longest metrics page read, in bytes.
const METRICS_PAGE_BYTES_MAX: u64 = 1 << 20;
/// How long a metrics scrape may take.
const METRICS_TIMEOUT_MS: u64 = 2_000;

/// A redis-server durability mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RedisDurability {
    /// No RDB snapshots, no append-only file.
    None,
    /// Append-only file, fsync once a second.
    FsyncEverySec,
    /// Append-only file, fsync before each reply.
    FsyncAlways,
}

impl RedisDurability {
    /// Every mode, weakest first.
    pub const ALL: [RedisDurability; 3] = [
        RedisDurability::None,
        RedisDurability::FsyncEverySec,
        RedisDurability::FsyncAlways,
    ];

    /// The benchmark's name of the target.
    pub fn target(self) -> &'static str {
        match self {
            RedisDurability::None => "redis",
            RedisDurability::FsyncEverySec => "redis-aof-everysec",
            RedisDurability::FsyncAlways => "redis-aof-always",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            RedisDurability::None => &["--appendonly", "no"],
            RedisDurability::FsyncEverySec => &["--appendonly", "yes", "--appendfsync", "everysec"],
            RedisDurability::FsyncAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// Whether `redis-server` can be run.
pub fn redis_available() -> bool {
    Command::new(REDIS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A redis-server this benchmark started; killed when dropped.
pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    /// Start redis-server on a free loopback port, its files under `dir`, and wait until it
    /// accepts connections.
    pub fn start(durability: RedisDurability, dir: &Path) -> anyhow::Result<RedisServer> {
        let port = free_tcp_port()?;
        let child = Command::new(REDIS_SERVER)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(durability.args())
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {REDIS_SERVER}"))?;
        let server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        connect_within(server.addr, Duration::from_millis(CONNECT_WITHIN_MS))?;
        Ok(server)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // It may have exited already; nothing else to do then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// stockade's unreplicated server, on a tokio runtime of its own; stopped when dropped (dropping
/// the runtime cancels the server's tasks).
pub struct UnreplicatedBaseline {
    _runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl UnreplicatedBaseline {
    /// Start it on a free loopback port.
    pub fn start() -> anyhow::Result<UnreplicatedBaseline> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting tokio for the unreplicated server")?;
        let server = runtime
            .block_on(UnreplicatedServer::bind(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                UnreplicatedConfig::default(),
            ))
            .context("binding the unreplicated server")?;
        let addr = server.local_addr()?;
        runtime.spawn(server.run());
        Ok(UnreplicatedBaseline {
            _runtime: runtime,
            addr,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn free_tcp_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context("finding a free loopback TCP port")?;
    Ok(listener.local_addr()?.port())
}

/// The peak resident set size (VmHWM) of process `pid`, in KiB; `None` if it cannot be read.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The sum of every sample of counter `name` on the Prometheus endpoint at `addr`; `None` when
/// the endpoint does not answer.
pub fn scrape_counter(addr: SocketAddr, name: &str) -> Option<f64> {
    let timeout = Duration::from_millis(METRICS_TIMEOUT_MS);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut page = String::new();
    stream
        .take(METRICS_PAGE_BYTES_MAX)
        .read_to_string(&mut page)
        .ok()?;
    Some(sum_counter(&page, name))
}

fn sum_counter(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tstockade\nVmPeak:\t  9000 kB\nVmHWM:\t   20660 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(20_660));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn counters_are_summed_over_labels_and_other_names_ignored() {
        let page = "# TYPE kv_view_changes_total counter\nkv_view_changes_total{participant=\"0\"} 2\nkv_view_changes_total{participant=\"1\"} 3\nkv_view_changes_total_other 7\n";
        assert_eq!(sum_counter(page, "kv_view_changes_total"), 5.0);
        assert_eq!(sum_counter(page, "absent"), 0.0);
    }
}
