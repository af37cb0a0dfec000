//! The KV service's commands as an operator runs them: `cluster up` starts real `stockade server`
//! and `stockade proxy` processes and prints the proxy's address last, a RESP client writes and
//! reads through it, `cluster status` shows every process, `cluster down` stops them all.

mod common;

use common::{assert_success, last_line_json, stockade};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Processes of a 4-server cluster: the servers and the proxy.
const PROCESSES: u16 = 5;

/// Stops the cluster when the test ends, passed or not.
struct ClusterGuard(PathBuf);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = stockade(&["cluster", "down", "--dir", path(&self.0)]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Send `request` and read until the reply ends with `expected` (or fail after 20 s).
fn resp_exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).expect("sent");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.ends_with(expected) {
        assert!(
            Instant::now() < deadline,
            "no reply {:?}, got {:?}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&reply)
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("proxy closed the connection"),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the reply: {e}"),
        }
    }
    assert_eq!(reply, expected);
}

#[test]
fn cluster_up_serves_redis_clients_through_the_voting_proxy_then_status_and_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = stockade::kv_bench::free_base_port(PROCESSES)
        .expect("a free port range")
        .to_string();
    let _guard = ClusterGuard(dir.path().to_path_buf());
    let up = stockade(&[
        "cluster",
        "up",
        "--dir",
        path(dir.path()),
        "--base-port",
        &base,
    ]);
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let proxy: SocketAddr = stdout
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("last line is the proxy's HOST:PORT:\n{stdout}"));
    assert_eq!(stdout.matches("started ").count(), 5, "{stdout}");

    let status = stockade(&["cluster", "status", "--dir", path(dir.path()), "--json"]);
    let rows: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["pid"].as_u64().is_some()), "{rows:?}");
    assert_eq!(rows[4]["role"], "proxy");
    assert_eq!(rows[4]["resp"], proxy.to_string());

    let mut client = stockade::kv_bench::connect_within(proxy, Duration::from_secs(10))
        .expect("the proxy accepts");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    resp_exchange(
        &mut client,
        b"*3\r\n$3\r\nSET\r\n$5\r\nfruit\r\n$4\r\npear\r\n",
        b"+OK\r\n",
    );
    resp_exchange(
        &mut client,
        b"*2\r\n$3\r\nGET\r\n$5\r\nfruit\r\n",
        b"$4\r\npear\r\n",
    );

    let down = stockade(&["cluster", "down", "--dir", path(dir.path())]);
    assert!(down.status.success());
    assert!(String::from_utf8_lossy(&down.stdout).contains("stopped 5 processes"));
    let after = stockade(&["cluster", "status", "--dir", path(dir.path())]);
    let text = String::from_utf8_lossy(&after.stdout);
    assert_eq!(text.matches("stopped").count(), 5, "{text}");
}

#[test]
fn cluster_commands_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = stockade(&["cluster", "status", "--dir", path(dir.path())]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no cluster under"));
    let sites = stockade(&["cluster", "up", "--dir", path(dir.path()), "--sites", "3"]);
    assert_eq!(sites.status.code(), Some(2));
    let uneven = stockade(&["cluster", "up", "--dir", path(dir.path()), "--servers", "5"]);
    assert_eq!(uneven.status.code(), Some(2), "5 servers is not 3f + 1");
    let missing = stockade(&["server", "--config", path(&dir.path().join("none.toml"))]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn bench_kv_starts_a_cluster_measures_updates_and_stops_it() {
    let out = stockade(&["bench", "kv", "--updates", "100", "--clients", "1,4"]);
    assert_success(&out);
    let figures = last_line_json(&out);
    assert_eq!(figures["bench"], "kv");
    assert_eq!(figures["updates"], 100);
    assert_eq!(figures["clients"], 4);
    assert_eq!(figures["local_cluster"], true);
    assert!(figures["updates_per_s"].as_f64() > Some(0.0));
    assert!(figures["latency_p99_ms"].as_f64() >= figures["latency_p50_ms"].as_f64());
    let runs = figures["runs"].as_array().expect("runs");
    let baseline_updates = 100 * stockade::kv_bench::BASELINE_UPDATES_FACTOR;
    for (target, updates) in [
        ("proxy", 100),
        ("direct", 100),
        ("unreplicated", baseline_updates),
    ] {
        for clients in [1, 4] {
            let run = runs
                .iter()
                .find(|r| r["target"] == target && r["clients"] == clients)
                .unwrap_or_else(|| panic!("no {target} run with {clients} clients: {runs:?}"));
            assert_eq!(run["updates"], updates, "{run}");
        }
    }
    let ratios = figures["ratios"].as_array().expect("ratios");
    assert!(
        ratios.iter().any(|r| r["replicated"] == "proxy"
            && r["baseline"] == "unreplicated"
            && r["throughput_ratio"].as_f64() > Some(0.0)),
        "{ratios:?}"
    );
    for process in ["server0", "server1", "server2", "server3", "proxy"] {
        assert!(
            figures["peak_rss_kib"][process].as_u64() > Some(0),
            "peak memory of {process}: {figures}"
        );
    }
    assert!(figures["view_changes"].as_f64().is_some(), "{figures}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("started ").count(), 5, "{text}");
}
