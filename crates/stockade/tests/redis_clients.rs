//! Real Redis tools and real processes against the KV service: `stockade cluster up` starts the
//! servers and the voting proxy as processes, `redis-cli` and `redis-benchmark` (Debian's
//! redis-tools, installed by `.ci/install`) talk to the proxy, and a server killed with SIGKILL
//! during a write load restarts from its redb data and catches up.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kv_cluster::{redis_tool, KvCluster};
use common::resp_client::{RespClient, Value};

/// The tests of this file each run a cluster of five processes; one at a time keeps the two
/// cores of CI from timing them out.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Requests per redis-benchmark test (the figure, 100,000, is run by hand in release).
const BENCHMARK_REQUESTS: &str = "5000";

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Run a redis tool against `addr`; fails the test unless it exits successfully.
fn run_tool(tool: &Path, addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("the tool runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?}: {stdout}\n{}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn redis_cli_and_redis_benchmark_work_through_the_voting_proxy() {
    let (Some(cli), Some(benchmark)) = (redis_tool("redis-cli"), redis_tool("redis-benchmark"))
    else {
        return;
    };
    let _turn = one_at_a_time();
    let cluster = KvCluster::up(0);
    assert_eq!(run_tool(&cli, cluster.proxy, &["SET", "k", "v"]), "OK\n");
    assert_eq!(run_tool(&cli, cluster.proxy, &["GET", "k"]), "v\n");
    assert_eq!(run_tool(&cli, cluster.proxy, &["GET", "missing"]), "\n");
    // A 100 KiB value (one update carries at most 16 KiB, so it is appended in pieces) comes
    // back whole: a reply larger than a Prime reply.
    let mut writer = RespClient::connect(cluster.proxy, Duration::from_secs(40));
    let piece = [b'p'; 10 * 1024];
    for i in 1..=10 {
        let len = writer
            .command(&[b"APPEND", b"big", &piece])
            .expect("APPEND");
        assert_eq!(len, Value::Integer(i * 10 * 1024));
    }
    let big = run_tool(&cli, cluster.proxy, &["GET", "big"]);
    assert_eq!(big.len(), 100 * 1024 + 1);
    assert!(big.trim_end().bytes().all(|b| b == b'p'));

    // redis-benchmark asks CONFIG GET first, then pipelines 16 deep on 50 connections.
    let report = run_tool(
        &benchmark,
        cluster.proxy,
        &[
            "-t",
            "set,get",
            "-n",
            BENCHMARK_REQUESTS,
            "-c",
            "50",
            "-P",
            "16",
            "-q",
        ],
    );
    let finals: Vec<&str> = report
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    eprintln!("redis-benchmark -n {BENCHMARK_REQUESTS}: {finals:?}");
    assert!(
        finals.iter().any(|l| l.starts_with("SET: "))
            && finals.iter().any(|l| l.starts_with("GET: ")),
        "{report}"
    );
    assert!(!report.contains("rror"), "{report}");
    // Without -r every SET writes the same key, a 3-byte value (-d 3).
    let value = run_tool(&cli, cluster.proxy, &["GET", "key:__rand_int__"]);
    assert_eq!(value.trim_end().len(), 3, "{value:?}");
    cluster.run(&["down"]);
}

/// Writes `w<i>` = `<i>` through `proxy` until told to stop; every acknowledged write is kept.
struct Writer {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<(BTreeMap<String, String>, Vec<String>)>,
}

impl Writer {
    fn start(proxy: SocketAddr) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&acknowledged));
        let thread = std::thread::spawn(move || {
            let mut client = RespClient::connect(proxy, Duration::from_secs(40));
            let mut acked = BTreeMap::new();
            let mut failures = Vec::new();
            let mut i = 0u64;
            while !stop_flag.load(Ordering::Relaxed) {
                let (key, value) = (format!("w{i}"), format!("value-{i}"));
                match client.command(&[b"SET", key.as_bytes(), value.as_bytes()]) {
                    Ok(Value::Simple(ok)) if ok == "OK" => {
                        acked.insert(key, value);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    // An error reply leaves the outcome unknown; the write is not counted.
                    Ok(other) => failures.push(format!("{key}: {other:?}")),
                    Err(e) => {
                        failures.push(format!("{key}: {e}"));
                        client = RespClient::connect(proxy, Duration::from_secs(40));
                    }
                }
                i += 1;
            }
            (acked, failures)
        });
        Writer {
            stop,
            acknowledged,
            thread,
        }
    }

    /// Wait until `count` writes were acknowledged (for at most a minute).
    fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acknowledged.load(Ordering::Relaxed) < count {
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged within a minute",
                self.acknowledged.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(self) -> (BTreeMap<String, String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the writer")
    }
}

/// GET `key` from `addr` until it answers `value`, reconnecting after errors, for `within`.
fn wait_for_value(addr: SocketAddr, key: &str, value: &str, within: Duration) -> Duration {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < within {
        let mut client = RespClient::connect(addr, Duration::from_secs(5));
        loop {
            match client.command(&[b"GET", key.as_bytes()]) {
                Ok(v) if v == Value::bulk(value) => return start.elapsed(),
                Ok(other) => last = Some(format!("{other:?}")),
                Err(e) => {
                    last = Some(e.to_string());
                    break;
                }
            }
            if start.elapsed() >= within {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{addr} did not answer GET {key} = {value} within {within:?}; last: {last:?}");
}

#[test]
fn a_server_killed_with_sigkill_during_writes_loses_nothing_and_catches_up_after_cluster_up() {
    let _turn = one_at_a_time();
    let cluster = KvCluster::up(1);
    // Server 0 leads the first view and carries the proxy's first lane: killing it forces a
    // leader change and re-sends.
    let victim = 0;
    let pid = cluster.server_pid(victim).expect("server 0 runs");
    let writer = Writer::start(cluster.proxy);
    writer.wait_for(20);
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.server_pid(victim).is_some() {
        assert!(
            Instant::now() < deadline,
            "server 0 still runs after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The service goes on with three servers.
    writer.wait_for(50);

    // `cluster up` again starts only the killed server, on its own data directory.
    let up = cluster.run(&["up"]);
    let up_text = String::from_utf8_lossy(&up.stdout);
    assert_eq!(up_text.matches("started server 0").count(), 1, "{up_text}");
    assert_eq!(up_text.matches("already running").count(), 4, "{up_text}");
    writer.wait_for(80);
    let (acked, failures) = writer.finish();
    eprintln!(
        "{} writes acknowledged, {} with an unknown outcome: {failures:?}",
        acked.len(),
        failures.len()
    );

    // Every acknowledged write is readable through the proxy (one pipeline).
    let mut reader = RespClient::connect(cluster.proxy, Duration::from_secs(40));
    for key in acked.keys() {
        reader.send(&[b"GET", key.as_bytes()]).expect("sent");
    }
    for (key, value) in &acked {
        let got = reader.read_reply().expect("a reply");
        assert_eq!(got, Value::bulk(value), "{key} through the proxy");
    }

    // The restarted server serves its own RESP port with the latest values once caught up.
    let restarted = cluster.server_resp(victim);
    let latest = acked
        .iter()
        .max_by_key(|(k, _)| k[1..].parse::<u64>().unwrap_or(0))
        .expect("writes");
    let waited = wait_for_value(restarted, latest.0, latest.1, Duration::from_secs(60));
    eprintln!("restarted server 0 answered the latest write after {waited:?}");
    let mut direct = RespClient::connect(restarted, Duration::from_secs(40));
    for (key, value) in acked.iter().rev().take(40) {
        let got = direct.command(&[b"GET", key.as_bytes()]).expect("a reply");
        assert_eq!(got, Value::bulk(value), "{key} on the restarted server");
    }
    assert!(
        cluster
            .log("server0")
            .matches("stockade kv server 0 up")
            .count()
            == 2,
        "{}",
        cluster.log("server0")
    );
    let down = cluster.run(&["down"]);
    assert!(String::from_utf8_lossy(&down.stdout).contains("stopped 5 processes"));
}
