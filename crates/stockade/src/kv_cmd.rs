//! The replicated Redis-compatible KV service's commands (DESIGN.md section 6): `stockade server`
//! and `stockade proxy` run one daemon from its TOML file until Ctrl-C or SIGTERM; `stockade
//! cluster up|status|down` start, inspect and stop a local cluster of those daemons as real
//! processes of this binary. The daemons themselves live in `stockade-kv` (feature `net`).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::cli::{ClusterCommand, ClusterStatusArgs, ClusterUpArgs};
use crate::headline::Verdict;

/// Sites `cluster up` can lay out on one machine (one: every process on loopback).
pub const LOCAL_SITES_MAX: usize = 1;
/// How long `cluster up` waits for every running daemon's RESP port to accept connections, so a
/// client started right after it (`redis-cli -p PORT`) finds the proxy listening.
pub const SERVING_WAIT_MS: u64 = 20_000;

/// A tokio runtime for a daemon: several worker threads (replicas verify signatures in parallel).
fn daemon_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")
}

/// `stockade server --config FILE`: one Prime replica of the KV service, with its RESP port.
pub fn server(config: &Path) -> anyhow::Result<Verdict> {
    daemon_runtime()?
        .block_on(stockade_kv::server::run_server(config))
        .with_context(|| format!("KV server from {}", config.display()))?;
    Ok(Verdict::Passed)
}

/// `stockade proxy --config FILE`: the voting proxy unmodified Redis clients talk to.
pub fn proxy(config: &Path) -> anyhow::Result<Verdict> {
    daemon_runtime()?
        .block_on(stockade_kv::proxy::run_proxy(config))
        .with_context(|| format!("KV proxy from {}", config.display()))?;
    Ok(Verdict::Passed)
}

/// `stockade cluster ...`.
pub fn cluster(command: &ClusterCommand) -> anyhow::Result<Verdict> {
    match command {
        ClusterCommand::Up(args) => cluster_up(args),
        ClusterCommand::Status(args) => cluster_status(args),
        ClusterCommand::Down(args) => {
            let stopped = stockade_kv::cluster::cluster_down(&args.dir)
                .with_context(|| format!("stopping the cluster under {}", args.dir.display()))?;
            println!("stopped {stopped} processes under {}", args.dir.display());
            Ok(Verdict::Passed)
        }
    }
}

/// Write the cluster's files if missing and start its processes; the proxy's RESP address is the
/// last line of standard output (printed by `stockade_kv::cluster::cluster_up`).
fn cluster_up(args: &ClusterUpArgs) -> anyhow::Result<Verdict> {
    if args.sites != LOCAL_SITES_MAX {
        bail!(
            "--sites {}: the local launcher puts every process on one machine (--sites 1); \
             a multi-site deployment runs `stockade server --config FILE` on each site's machines",
            args.sites
        );
    }
    let servers = args.servers.unwrap_or(3 * args.f + 1);
    let exe = std::env::current_exe().context("finding this binary to start the daemons")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    stockade_kv::cluster::cluster_up(&args.dir, servers, args.f, args.base_port, &exe)
        .with_context(|| format!("starting the cluster under {}", args.dir.display()))?;
    wait_until_serving(&args.dir)?;
    Ok(Verdict::Passed)
}

/// Wait until every running process of the cluster under `dir` accepts connections on its RESP
/// port, at most [`SERVING_WAIT_MS`] in all.
fn wait_until_serving(dir: &Path) -> anyhow::Result<()> {
    let status = stockade_kv::cluster::cluster_status(dir)
        .with_context(|| format!("reading the cluster under {}", dir.display()))?;
    let deadline = Instant::now() + Duration::from_millis(SERVING_WAIT_MS);
    for row in status.as_array().into_iter().flatten() {
        let addr = row["resp"]
            .as_str()
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let (Some(addr), false) = (addr, row["pid"].is_null()) else {
            continue;
        };
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                bail!(
                    "{} {} runs but does not accept connections on {addr} after {} s; see its log \
                     under {}",
                    row["role"].as_str().unwrap_or("process"),
                    row["id"],
                    SERVING_WAIT_MS / 1000,
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// One line per process, or the JSON array with `--json`.
fn cluster_status(args: &ClusterStatusArgs) -> anyhow::Result<Verdict> {
    let status = stockade_kv::cluster::cluster_status(&args.dir)
        .with_context(|| format!("reading the cluster under {}", args.dir.display()))?;
    let rows = status.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        bail!(
            "no cluster under {} (run `stockade cluster up --dir {0}`)",
            args.dir.display()
        );
    }
    if args.json {
        println!("{status}");
        return Ok(Verdict::Passed);
    }
    for row in &rows {
        let pid = row["pid"].as_u64().map_or_else(
            || "stopped".to_string(),
            |pid| format!("running (pid {pid})"),
        );
        println!(
            "{:<6} {:>3}  RESP {:<21} {pid}",
            row["role"].as_str().unwrap_or("?"),
            row["id"],
            row["resp"].as_str().unwrap_or("?")
        );
    }
    Ok(Verdict::Passed)
}
