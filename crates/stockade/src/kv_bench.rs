//! `stockade bench kv`: throughput and latency of the replicated KV service as a Redis client sees
//! it, against the number of clients, next to unreplicated servers on the same machine.
//!
//! Starts a local 3f+1-server cluster of real processes (or uses a running proxy), then for each
//! client count runs closed-loop clients sending 200-byte SETs ([`crate::kv_load`]) through the
//! voting proxy and directly to server 0's RESP port (a client that trusts that server; its
//! updates are still ordered by Prime). Then the same load against the baselines
//! ([`crate::kv_baselines`]): stockade's unreplicated server, and redis-server in three durability
//! modes when it is on PATH. Prints a table, the replicated/unreplicated throughput ratios (paper
//! 001's anchor: within 25%), each server's peak memory, the view changes the run caused, and
//! every figure as one JSON line.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use stockade_kv::cluster::{METRICS_PORT_OFFSET, RESP_PORT_OFFSET};
use stockade_kv::server::VIEW_CHANGES_METRIC;

use crate::cli::BenchKvArgs;
use crate::headline::{print_headline, Verdict};
use crate::kv_baselines::{
    peak_rss_kib, redis_available, scrape_counter, RedisDurability, RedisServer,
    UnreplicatedBaseline,
};
pub use crate::kv_load::{connect_within, VALUE_BYTES};
use crate::kv_load::{run_load, LoadFigures, LoadSpec, CLIENTS_MAX};

/// Port offsets of a local cluster's protocol, RESP and metrics ports (`stockade_kv::cluster`).
const PORT_OFFSETS: [u16; 3] = [0, RESP_PORT_OFFSET, METRICS_PORT_OFFSET];

/// A baseline run does this many times `--updates`: it is so much faster that a run of the same
/// count would last milliseconds and measure mostly thread start-up (each run is still bounded by
/// `--run-seconds-max`).
pub const BASELINE_UPDATES_FACTOR: u64 = 20;

/// The replicated targets, compared with every baseline.
const REPLICATED_TARGETS: [&str; 2] = ["proxy", "direct"];

/// A local cluster this benchmark started; stopped by [`LocalCluster::stop`].
struct LocalCluster {
    dir: tempfile::TempDir,
    base_port: u16,
    servers: usize,
    proxy: SocketAddr,
}

impl LocalCluster {
    fn start(f: usize) -> anyhow::Result<LocalCluster> {
        let dir = tempfile::tempdir().context("creating a directory for the cluster")?;
        let exe = std::env::current_exe().context("finding this binary")?;
        let servers = 3 * f + 1;
        let base_port = free_base_port(servers as u16 + 1)?;
        let proxy = stockade_kv::cluster::cluster_up(dir.path(), servers, f, base_port, &exe)
            .context("starting a local cluster")?;
        Ok(LocalCluster {
            dir,
            base_port,
            servers,
            proxy,
        })
    }

    fn loopback(&self, offset: u16, index: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base_port + offset + index as u16))
    }

    /// Server 0's RESP port.
    fn direct(&self) -> SocketAddr {
        self.loopback(RESP_PORT_OFFSET, 0)
    }

    /// View changes proven, summed over the servers (each server counts each one it saw).
    fn view_changes(&self) -> Option<f64> {
        (0..self.servers)
            .map(|i| scrape_counter(self.loopback(METRICS_PORT_OFFSET, i), VIEW_CHANGES_METRIC))
            .sum()
    }

    /// Each process's peak resident memory in KiB, by name (`server0`, ..., `proxy`).
    fn peak_memory(&self) -> anyhow::Result<Map<String, Value>> {
        let status = stockade_kv::cluster::cluster_status(self.dir.path())?;
        let mut peaks = Map::new();
        for row in status.as_array().into_iter().flatten() {
            let name = match (row["role"].as_str(), row["id"].as_u64()) {
                (Some("server"), Some(id)) => format!("server{id}"),
                (Some(role), _) => role.to_string(),
                _ => continue,
            };
            let peak = row["pid"].as_u64().and_then(|pid| peak_rss_kib(pid as u32));
            peaks.insert(name, json!(peak));
        }
        Ok(peaks)
    }

    fn stop(self) -> anyhow::Result<()> {
        stockade_kv::cluster::cluster_down(self.dir.path())
            .context("stopping the local cluster")?;
        Ok(())
    }
}

/// Run the benchmark.
pub fn run(args: &BenchKvArgs) -> anyhow::Result<Verdict> {
    if args.clients.is_empty() || args.clients.iter().any(|c| !(1..=CLIENTS_MAX).contains(c)) {
        bail!("--clients must list counts between 1 and {CLIENTS_MAX}");
    }
    if args.updates == 0 || args.run_seconds_max == 0 {
        bail!("--updates and --run-seconds-max must be at least 1");
    }
    let mut runs: Vec<(String, LoadFigures)> = Vec::new();
    let mut peak_memory = Map::new();
    let cluster = match args.proxy {
        Some(_) => None,
        None => Some(LocalCluster::start(args.f)?),
    };
    let proxy = args.proxy.or(cluster.as_ref().map(|c| c.proxy));
    let direct = args.direct.or(cluster.as_ref().map(LocalCluster::direct));
    let view_changes_before = cluster.as_ref().and_then(LocalCluster::view_changes);
    let replicated = measure_replicated(args, proxy, direct, &mut runs);
    let mut view_changes = None;
    if let Some(cluster) = cluster {
        if replicated.is_ok() {
            peak_memory = cluster.peak_memory()?;
            view_changes = cluster
                .view_changes()
                .map(|after| (after - view_changes_before.unwrap_or(0.0)).max(0.0) as u64);
        }
        cluster.stop()?;
    }
    replicated?;
    if !args.no_baselines {
        measure_baselines(args, &mut runs, &mut peak_memory)?;
    }
    report(args, &runs, &peak_memory, view_changes, proxy);
    Ok(Verdict::Passed)
}

/// Measure `target` at every client count, `updates` per run.
fn measure(
    args: &BenchKvArgs,
    target: &str,
    addr: SocketAddr,
    updates: u64,
    runs: &mut Vec<(String, LoadFigures)>,
) -> anyhow::Result<()> {
    for &clients in &args.clients {
        let spec = LoadSpec {
            clients,
            updates,
            within: Duration::from_secs(args.run_seconds_max),
        };
        let figures = run_load(addr, spec)
            .with_context(|| format!("{target} at {addr} with {clients} clients"))?;
        runs.push((target.to_string(), figures));
    }
    Ok(())
}

fn measure_replicated(
    args: &BenchKvArgs,
    proxy: Option<SocketAddr>,
    direct: Option<SocketAddr>,
    runs: &mut Vec<(String, LoadFigures)>,
) -> anyhow::Result<()> {
    for (target, addr) in REPLICATED_TARGETS.into_iter().zip([proxy, direct]) {
        if let Some(addr) = addr {
            measure(args, target, addr, args.updates, runs)?;
        }
    }
    Ok(())
}

fn measure_baselines(
    args: &BenchKvArgs,
    runs: &mut Vec<(String, LoadFigures)>,
    peak_memory: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let unreplicated = UnreplicatedBaseline::start()?;
    let updates = args.updates.saturating_mul(BASELINE_UPDATES_FACTOR);
    measure(args, "unreplicated", unreplicated.addr(), updates, runs)?;
    drop(unreplicated);
    if !redis_available() {
        println!("redis-server is not on PATH: no redis baseline (apt-get install redis-server)");
        return Ok(());
    }
    for durability in RedisDurability::ALL {
        let dir = tempfile::tempdir().context("creating a directory for redis-server")?;
        let redis = RedisServer::start(durability, dir.path())?;
        measure(args, durability.target(), redis.addr(), updates, runs)?;
        peak_memory.insert(durability.target().into(), json!(peak_rss_kib(redis.pid())));
    }
    Ok(())
}

/// Replicated throughput over each baseline's, per client count.
fn ratios(runs: &[(String, LoadFigures)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (target, figures) in runs {
        if !REPLICATED_TARGETS.contains(&target.as_str()) {
            continue;
        }
        for (baseline, base) in runs {
            if REPLICATED_TARGETS.contains(&baseline.as_str()) || base.clients != figures.clients {
                continue;
            }
            out.push(json!({
                "clients": figures.clients,
                "replicated": target,
                "baseline": baseline,
                "throughput_ratio": figures.updates_per_s / base.updates_per_s.max(f64::EPSILON),
            }));
        }
    }
    out
}

fn report(
    args: &BenchKvArgs,
    runs: &[(String, LoadFigures)],
    peak_memory: &Map<String, Value>,
    view_changes: Option<u64>,
    proxy: Option<SocketAddr>,
) {
    println!(
        "SET of {VALUE_BYTES} B, closed loop, one update outstanding per client; {} servers, f = {}",
        3 * args.f + 1,
        args.f
    );
    println!(
        "{:<20} {:>7} {:>8} {:>11} {:>9} {:>9}",
        "target", "clients", "updates", "updates/s", "p50 ms", "p99 ms"
    );
    for (target, f) in runs {
        println!(
            "{target:<20} {:>7} {:>8} {:>11.0} {:>9.2} {:>9.2}",
            f.clients, f.updates, f.updates_per_s, f.latency_p50_ms, f.latency_p99_ms
        );
    }
    let ratios = ratios(runs);
    println!("replicated throughput as a fraction of unreplicated (paper 001's anchor: >= 0.75):");
    for (target, figures) in runs
        .iter()
        .filter(|(t, _)| REPLICATED_TARGETS.contains(&t.as_str()))
    {
        let parts: Vec<String> = ratios
            .iter()
            .filter(|r| r["replicated"] == target.as_str() && r["clients"] == figures.clients)
            .map(|r| {
                format!(
                    "{:.4} of {}",
                    r["throughput_ratio"].as_f64().unwrap_or_default(),
                    r["baseline"].as_str().unwrap_or_default()
                )
            })
            .collect();
        println!(
            "  {target}, {} clients: {}",
            figures.clients,
            parts.join(", ")
        );
    }
    for (name, kib) in peak_memory {
        println!("peak memory (VmHWM) of {name}: {kib} KiB");
    }
    if let Some(changes) = view_changes {
        println!("view changes during the run (summed over servers): {changes}");
    }
    println!("(other processes sharing the CPU make these figures pessimistic)");
    // The headline of older scripts: the proxy at the largest client count.
    let headline = runs
        .iter()
        .filter(|(t, _)| t == "proxy")
        .max_by_key(|(_, f)| f.clients)
        .map(|(_, f)| f.clone());
    let mut figures = json!({
        "bench": "kv",
        "value_bytes": VALUE_BYTES,
        "servers": 3 * args.f + 1,
        "f": args.f,
        "local_cluster": args.proxy.is_none(),
        "proxy": proxy.map(|p| p.to_string()),
        "runs": runs.iter().map(|(t, f)| f.to_json(t)).collect::<Vec<_>>(),
        "ratios": ratios,
        "peak_rss_kib": peak_memory,
        "view_changes": view_changes,
    });
    if let (Some(h), Some(object)) = (headline, figures.as_object_mut()) {
        object.insert("clients".into(), json!(h.clients));
        object.insert("updates".into(), json!(h.updates));
        object.insert("updates_per_s".into(), json!(h.updates_per_s));
        object.insert("latency_p50_ms".into(), json!(h.latency_p50_ms));
        object.insert("latency_p99_ms".into(), json!(h.latency_p99_ms));
    }
    print_headline(&figures);
}

/// A base port whose protocol, RESP and metrics ports for `processes` processes are free now.
pub fn free_base_port(processes: u16) -> anyhow::Result<u16> {
    let start = 20_000 + (std::process::id() % 1_000) as u16 * 17;
    (0..400u16)
        .map(|k| (start + k * 31) % 30_000 + 10_000)
        .find(|&base| {
            (0..processes).all(|i| {
                PORT_OFFSETS.iter().all(|offset| {
                    let addr = SocketAddr::from(([127, 0, 0, 1], base + offset + i));
                    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
                })
            })
        })
        .context("no free range of loopback ports for a local cluster")
}
