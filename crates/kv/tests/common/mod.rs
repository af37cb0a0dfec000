//! Helpers the in-process cluster tests share: free loopback ports, a cluster's configurations,
//! and starting its servers and proxy as tokio tasks.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

use stockade_kv::cluster::{cluster_ports_free, write_cluster};
use stockade_kv::proxy::{start_proxy, RunningProxy};
use stockade_kv::server::{start_server, RunningServer};
use stockade_kv::service_config::ServiceConfig;

/// Servers of the test clusters (f = 1).
pub const SERVERS: usize = 4;

/// A base port whose protocol, RESP and metrics ports are all free right now; `salt` keeps the
/// tests of one binary, which search at the same time, apart.
pub fn free_base_port(salt: u16) -> u16 {
    let start = 20_000 + (std::process::id() as u16 % 1_000) * 30 + salt * 10;
    (0..200u16)
        .map(|k| start.wrapping_add(k * 7) % 40_000 + 10_000)
        .find(|base| cluster_ports_free(SERVERS, *base))
        .expect("a free port range")
}

/// Configurations for the cluster (metrics off: one Prometheus recorder per process).
pub fn configs(dir: &Path, salt: u16) -> Vec<ServiceConfig> {
    write_cluster(dir, SERVERS, 1, free_base_port(salt))
        .expect("cluster files")
        .iter()
        .map(|p| {
            let mut c = ServiceConfig::load(p).expect("config");
            c.node.metrics = None;
            c
        })
        .collect()
}

/// Start every server, then the proxy.
pub async fn start_all(configs: &[ServiceConfig]) -> (Vec<Option<RunningServer>>, RunningProxy) {
    let mut servers = Vec::new();
    for c in &configs[..SERVERS] {
        servers.push(Some(start_server(c).await.expect("server starts")));
    }
    let proxy = start_proxy(&configs[SERVERS]).await.expect("proxy starts");
    (servers, proxy)
}
