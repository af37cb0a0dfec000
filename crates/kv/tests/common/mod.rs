//! Helpers the in-process cluster tests share: free loopback ports, a cluster's configurations,
//! and starting its servers and proxy as tokio tasks.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
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

/// The RESP addresses of a cluster that many tests of one binary share.
pub struct SharedCluster {
    /// The voting proxy.
    pub proxy: SocketAddr,
    /// Server 1's own RESP port.
    pub server: SocketAddr,
}

impl SharedCluster {
    /// Start a cluster on a runtime of its own that lives as long as the test process (keep the
    /// result in a `OnceLock`).
    pub fn start(salt: u16) -> SharedCluster {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                // Kept under the target directory: the process ends without dropping it.
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
                let configs = configs(dir.path(), salt);
                let (servers, proxy) = start_all(&configs).await;
                let server = servers[1].as_ref().expect("running").resp_addr();
                tx.send(SharedCluster {
                    proxy: proxy.resp_addr(),
                    server,
                })
                .expect("the test waits");
                let _keep = (dir, servers, proxy);
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the cluster starts")
    }
}
