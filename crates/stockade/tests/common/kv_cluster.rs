//! A local KV cluster of real processes for tests: `stockade cluster up` in a temporary
//! directory, its status as JSON, and `cluster down` when the test ends, passed or not. Also the
//! check that finds the real Redis tools (redis-cli, redis-benchmark) the tests drive.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::stockade;

/// Servers of the test clusters (f = 1) and the processes with the proxy.
pub const SERVERS: usize = 4;

/// A running cluster; dropping it runs `cluster down`.
pub struct KvCluster {
    dir: tempfile::TempDir,
    /// The voting proxy's RESP address (the last line `cluster up` printed).
    pub proxy: SocketAddr,
}

/// A base port whose protocol, RESP and metrics ports are free now; `salt` keeps the tests of
/// one binary, which search at the same time, apart.
pub fn free_base_port(salt: u16) -> u16 {
    let start = 11_000 + (std::process::id() % 500) as u16 * 41 + salt * 13;
    (0..300u16)
        .map(|k| (start + k * 29) % 40_000 + 10_000)
        .find(|&base| stockade_kv::cluster::cluster_ports_free(SERVERS, base))
        .expect("a free range of loopback ports")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl KvCluster {
    /// `cluster up` a new cluster of [`SERVERS`] servers and a proxy.
    pub fn up(salt: u16) -> KvCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = free_base_port(salt).to_string();
        let mut cluster = KvCluster {
            dir,
            proxy: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let out = cluster.run(&["up", "--base-port", &base]);
        cluster.proxy = text(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("last line is the proxy's address: {}", text(&out.stdout)));
        cluster
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `stockade cluster SUBCOMMAND --dir DIR ARGS`; fails the test unless it succeeds.
    pub fn run(&self, args: &[&str]) -> Output {
        let dir = self.dir.path().to_str().expect("utf-8 path");
        let mut all = vec!["cluster", args[0], "--dir", dir];
        all.extend_from_slice(&args[1..]);
        let out = stockade(&all);
        assert!(
            out.status.success(),
            "stockade {all:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// `cluster status --json`: one row per process, servers first.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        rows.as_array().expect("an array").clone()
    }

    /// Server `index`'s pid, if it runs.
    pub fn server_pid(&self, index: usize) -> Option<u32> {
        self.status()[index]["pid"].as_u64().map(|p| p as u32)
    }

    /// Server `index`'s RESP address.
    pub fn server_resp(&self, index: usize) -> SocketAddr {
        self.status()[index]["resp"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a RESP address")
    }

    /// A server's log, for failure messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for KvCluster {
    fn drop(&mut self) {
        let dir = self.dir.path().to_str().unwrap_or_default().to_string();
        let _ = stockade(&["cluster", "down", "--dir", &dir]);
    }
}

/// The path of a real Redis tool. In CI (`CI=true`) a missing tool fails the test, since
/// `.ci/install` installs it; elsewhere the test is skipped with a message.
pub fn redis_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !in_ci,
            "{name} is not installed but CI=true: .ci/install should have installed redis-tools"
        );
        eprintln!("skipping: {name} is not installed (apt-get install redis-tools)");
    }
    found
}
