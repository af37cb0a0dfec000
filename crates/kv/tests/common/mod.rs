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

/// A directory for a shared cluster under the target directory, named after this process: the
/// process ends without removing it, so the directories of processes that have ended are
/// removed here.
fn shared_cluster_dir(salt: u16) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = "shared-cluster-";
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(format!("{prefix}{}-{salt}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cluster directory");
    dir
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
                let dir = shared_cluster_dir(salt);
                let configs = configs(&dir, salt);
                let (servers, proxy) = start_all(&configs).await;
                let server = servers[1].as_ref().expect("running").resp_addr();
                tx.send(SharedCluster {
                    proxy: proxy.resp_addr(),
                    server,
                })
                .expect("the test waits");
                let _keep = (servers, proxy);
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the cluster starts")
    }
}
