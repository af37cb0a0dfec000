//! `stockade bench kv`: throughput and latency of the replicated KV service as a Redis client sees
//! it. Starts a local cluster of real processes (or uses a running proxy), runs closed-loop clients
//! that each send SET commands of 200-byte values (paper 004's update size) one at a time through
//! the voting proxy, and reports updates per second and latency percentiles.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::cli::BenchKvArgs;
use crate::headline::{print_headline, Verdict};

/// Bytes of each SET's value (paper 004, section 5: 200-byte updates).
pub const VALUE_BYTES: usize = 200;
/// Longest reply line read from the proxy, in bytes.
pub const REPLY_LINE_BYTES_MAX: u64 = 1024;
/// How long one update may take before the benchmark gives up.
pub const REPLY_TIMEOUT_MS: u64 = 20_000;
/// How long a client keeps trying to connect to a proxy that was just started.
pub const CONNECT_WITHIN_MS: u64 = 10_000;
/// Pause between two connection attempts.
const CONNECT_RETRY_MS: u64 = 20;
/// Most client threads.
pub const CLIENTS_MAX: usize = 256;
/// Port offsets of a local cluster's protocol, RESP and metrics ports (`stockade_kv::cluster`).
const PORT_OFFSETS: [u16; 3] = [
    0,
    stockade_kv::cluster::RESP_PORT_OFFSET,
    stockade_kv::cluster::METRICS_PORT_OFFSET,
];

/// Run the benchmark.
pub fn run(args: &BenchKvArgs) -> anyhow::Result<Verdict> {
    if !(1..=CLIENTS_MAX).contains(&args.clients) || args.updates == 0 {
        bail!("--clients must be between 1 and {CLIENTS_MAX} and --updates at least 1");
    }
    let (proxy, cluster_dir) = match args.proxy {
        Some(addr) => (addr, None),
        None => {
            let dir = tempfile::tempdir().context("creating a directory for the cluster")?;
            let exe = std::env::current_exe().context("finding this binary")?;
            let servers = 3 * args.f + 1;
            let base = free_base_port(servers as u16 + 1)?;
            let addr = stockade_kv::cluster::cluster_up(dir.path(), servers, args.f, base, &exe)
                .context("starting a local cluster")?;
            (addr, Some(dir))
        }
    };
    let result = measure(proxy, args);
    if let Some(dir) = &cluster_dir {
        stockade_kv::cluster::cluster_down(dir.path()).context("stopping the local cluster")?;
    }
    let mut latencies = result?;
    latencies.sort();
    let (elapsed, count) = (latencies.iter().map(|(_, end)| *end).max(), latencies.len());
    let elapsed = elapsed.unwrap_or_default().as_secs_f64().max(f64::EPSILON);
    let mut spans: Vec<Duration> = latencies.iter().map(|(span, _)| *span).collect();
    spans.sort();
    let percentile = |p: f64| {
        let index = ((spans.len() as f64 - 1.0) * p).round() as usize;
        spans.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let throughput = count as f64 / elapsed;
    println!(
        "{count} updates of {VALUE_BYTES} B by {} clients through the voting proxy at {proxy}: {throughput:.0} updates/s, latency p50 {:.2} ms, p99 {:.2} ms",
        args.clients,
        percentile(0.5),
        percentile(0.99)
    );
    println!("(other processes sharing the CPU make these figures pessimistic)");
    print_headline(&json!({
        "bench": "kv",
        "updates": count,
        "clients": args.clients,
        "value_bytes": VALUE_BYTES,
        "local_cluster": cluster_dir.is_some(),
        "updates_per_s": throughput,
        "latency_p50_ms": percentile(0.5),
        "latency_p99_ms": percentile(0.99),
    }));
    Ok(Verdict::Passed)
}

/// Every update's `(latency, time since the start when it finished)`.
fn measure(proxy: SocketAddr, args: &BenchKvArgs) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let start = Instant::now();
    let per_client = args.updates.div_ceil(args.clients as u64);
    let workers: Vec<_> = (0..args.clients)
        .map(|client| std::thread::spawn(move || client_loop(proxy, client, per_client, start)))
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        let done = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        all.extend(done);
    }
    Ok(all)
}

fn client_loop(
    proxy: SocketAddr,
    client: usize,
    updates: u64,
    start: Instant,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let stream = connect_within(proxy, Duration::from_millis(CONNECT_WITHIN_MS))?;
    stream.set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let value = "v".repeat(VALUE_BYTES);
    let mut done = Vec::with_capacity(updates as usize);
    for i in 0..updates {
        let key = format!("bench:{client}:{i}");
        let command = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        );
        let sent = Instant::now();
        writer.write_all(command.as_bytes())?;
        let mut line = Vec::new();
        (&mut reader)
            .take(REPLY_LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("waiting for the reply to update {i} of client {client}"))?;
        if line != b"+OK\r\n" {
            bail!(
                "update {i} of client {client} was answered {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        done.push((sent.elapsed(), start.elapsed()));
    }
    Ok(done)
}

/// Connect to `addr`, retrying while it refuses (a proxy that was just started binds its RESP port
/// a moment after its process runs), for at most `within`.
pub fn connect_within(addr: SocketAddr, within: Duration) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("connecting to {addr} for {within:?}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(CONNECT_RETRY_MS)),
        }
    }
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
