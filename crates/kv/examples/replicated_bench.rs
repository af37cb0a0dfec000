//! Replicated against unreplicated (issue 3, paper 001's "replicated within 25% of unreplicated"):
//! a 4-server f = 1 Prime cluster and its voting proxy run as tasks in this process on loopback
//! (Noise over UDP between them, a redb data directory each), next to the unreplicated baseline
//! server. `C` concurrent `redis` clients each send 200-byte SETs one at a time (no pipelining)
//! for a bounded time, through the proxy, directly to one server's own RESP port, and to the
//! baseline; the example prints throughput and p50/p99 latency per configuration and the
//! replicated/unreplicated throughput ratios.
//!
//! Run: `cargo run --release -p stockade-kv --features net --example replicated_bench [seconds]`
//! The last line of output is one JSON object with every figure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stockade_kv::cluster::{cluster_ports_free, write_cluster};
use stockade_kv::proxy::start_proxy;
use stockade_kv::server::start_server;
use stockade_kv::service_config::ServiceConfig;
use stockade_kv::unreplicated::{UnreplicatedConfig, UnreplicatedServer};

/// Servers of the cluster (f = 1).
const SERVERS: usize = 4;
/// Concurrent clients per run.
const CLIENT_COUNTS: [usize; 4] = [1, 4, 16, 50];
/// Bytes of every SET's value (paper 004's update size).
const VALUE_BYTES: usize = 200;
/// Distinct keys each client cycles through.
const KEYS_PER_CLIENT: u64 = 1_000;
/// Latency samples kept per client (later operations are counted, not sampled).
const LATENCY_SAMPLES_MAX: usize = 1_000_000;
/// How long one client waits for one reply before counting an error.
const REPLY_TIMEOUT_MS: u64 = 10_000;

/// What one configuration measured.
struct Figures {
    target: &'static str,
    clients: usize,
    ops: u64,
    errors: u64,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Figures {
    fn json(&self) -> String {
        format!(
            "{{\"target\":\"{}\",\"clients\":{},\"ops\":{},\"errors\":{},\"ops_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
            self.target,
            self.clients,
            self.ops,
            self.errors,
            self.ops_per_sec,
            self.p50_us,
            self.p99_us
        )
    }
}

/// One client's loop: SETs until `deadline`; returns (operations, errors, latency samples in µs).
fn run_client(addr: SocketAddr, client: usize, deadline: Instant) -> (u64, u64, Vec<u64>) {
    let connection = redis::Client::open(format!("redis://{addr}/")).and_then(|c| {
        let con = c.get_connection_with_timeout(Duration::from_secs(5))?;
        con.set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)))?;
        Ok(con)
    });
    let mut con = match connection {
        Ok(con) => con,
        Err(e) => {
            eprintln!("client {client} cannot connect to {addr}: {e}");
            return (0, 1, Vec::new());
        }
    };
    let value = vec![b'x'; VALUE_BYTES];
    let (mut ops, mut samples) = (0u64, Vec::new());
    while Instant::now() < deadline {
        let key = format!("bench:{client}:{}", ops % KEYS_PER_CLIENT);
        let start = Instant::now();
        let result: redis::RedisResult<()> =
            redis::cmd("SET").arg(&key).arg(&value).query(&mut con);
        if let Err(e) = result {
            eprintln!("client {client} to {addr}: {e}");
            return (ops, 1, samples);
        }
        if samples.len() < LATENCY_SAMPLES_MAX {
            samples.push(start.elapsed().as_micros() as u64);
        }
        ops += 1;
    }
    (ops, 0, samples)
}

/// `clients` concurrent clients against `addr` for `run_for`.
fn measure(target: &'static str, addr: SocketAddr, clients: usize, run_for: Duration) -> Figures {
    let start = Instant::now();
    let deadline = start + run_for;
    let threads: Vec<_> = (0..clients)
        .map(|c| std::thread::spawn(move || run_client(addr, c, deadline)))
        .collect();
    let (mut ops, mut errors, mut samples) = (0, 0, Vec::new());
    for thread in threads {
        match thread.join() {
            Ok((o, e, s)) => {
                ops += o;
                errors += e;
                samples.extend(s);
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    let percentile = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let figures = Figures {
        target,
        clients,
        ops,
        errors,
        ops_per_sec: ops as f64 / elapsed,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
    };
    println!(
        "{:<13} C={:<3} {:>8.0} SET/s  p50 {:>6} us  p99 {:>6} us  ({} ops, {} errors)",
        target,
        clients,
        figures.ops_per_sec,
        figures.p50_us,
        figures.p99_us,
        figures.ops,
        figures.errors
    );
    figures
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let run_for = Duration::from_secs(seconds);
    let dir = tempfile::tempdir()?;
    let base = (0..100u16)
        .map(|k| 31_000 + k * 50)
        .find(|b| cluster_ports_free(SERVERS, *b))
        .ok_or("no free loopback port range for the cluster")?;
    let configs: Vec<ServiceConfig> = write_cluster(dir.path(), SERVERS, 1, base)?
        .iter()
        .map(|path| {
            ServiceConfig::load(path).map(|mut c| {
                c.node.metrics = None;
                c
            })
        })
        .collect::<Result<_, _>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (servers, proxy, baseline) = runtime.block_on(async {
        let mut servers = Vec::new();
        for config in &configs[..SERVERS] {
            servers.push(start_server(config).await?);
        }
        let proxy = start_proxy(&configs[SERVERS]).await?;
        let baseline = UnreplicatedServer::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            UnreplicatedConfig::default(),
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error>>((servers, proxy, baseline))
    })?;
    let baseline_addr = baseline.local_addr()?;
    runtime.spawn(async move {
        if let Err(e) = baseline.run().await {
            eprintln!("the unreplicated server stopped: {e}");
        }
    });
    let (proxy_addr, server_addr) = (proxy.resp_addr(), servers[1].resp_addr());
    println!(
        "4 servers (f=1) + voting proxy on loopback; {VALUE_BYTES}-byte SETs, {seconds} s per run"
    );

    let mut results = Vec::new();
    let mut ratios = Vec::new();
    for clients in CLIENT_COUNTS {
        let unreplicated = measure("unreplicated", baseline_addr, clients, run_for);
        let own_port = measure("server-port", server_addr, clients, run_for);
        let proxied = measure("proxy", proxy_addr, clients, run_for);
        let ratio = |f: &Figures| f.ops_per_sec / unreplicated.ops_per_sec.max(1.0);
        println!(
            "C={clients}: replicated/unreplicated throughput: server port {:.3}, proxy {:.3}",
            ratio(&own_port),
            ratio(&proxied)
        );
        ratios.push(format!(
            "{{\"clients\":{clients},\"server_port\":{:.3},\"proxy\":{:.3}}}",
            ratio(&own_port),
            ratio(&proxied)
        ));
        results.extend([unreplicated, own_port, proxied]);
    }

    runtime.block_on(async {
        let stats = proxy.shutdown().await?;
        for server in servers {
            server.shutdown().await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(stats)
    })?;
    let runs: Vec<String> = results.iter().map(Figures::json).collect();
    println!(
        "{{\"servers\":{SERVERS},\"f\":1,\"value_bytes\":{VALUE_BYTES},\"seconds_per_run\":{seconds},\"runs\":[{}],\"ratios\":[{}]}}",
        runs.join(","),
        ratios.join(",")
    );
    Ok(())
}
