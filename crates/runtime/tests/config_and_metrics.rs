//! Nodes started the way `stockade server` starts them: key files and TOML configs on disk, and
//! the Prometheus endpoint serving their counters. (One test: the metrics recorder is global.)

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use stockade_core::NodeId;
use stockade_runtime::{
    serve_metrics, spawn_node, NodeConfig, NodeSetup, PeerConfig, StaticKeypair,
};
use support::*;

/// A port free at the moment of asking (configs need fixed ports).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

fn free_udp_addr() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().expect("bound")
}

fn scrape(addr: SocketAddr) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_from_toml_configs_talk_and_their_counters_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    serve_metrics(metrics_addr).expect("metrics endpoint");

    let keys: Vec<StaticKeypair> = (0..2)
        .map(|_| StaticKeypair::generate().expect("keygen"))
        .collect();
    let addrs: Vec<SocketAddr> = (0..2).map(|_| free_udp_addr()).collect();
    let mut config_paths = Vec::new();
    for i in 0..2 {
        keys[i]
            .save(&dir.path().join(format!("node{i}.key")))
            .expect("key saved");
        let other = 1 - i;
        let config = NodeConfig {
            id: i as u32,
            listen: addrs[i],
            key_file: format!("node{i}.key").into(),
            peers: vec![PeerConfig {
                id: other as u32,
                addr: addrs[other],
                public_key: keys[other].public().to_string(),
            }],
            data_dir: format!("data{i}").into(),
            metrics: Some(metrics_addr),
            link: Default::default(),
        };
        let path = dir.path().join(format!("node{i}.toml"));
        std::fs::write(&path, config.to_toml().expect("toml")).expect("config written");
        config_paths.push(path);
    }

    let mut nodes = Vec::new();
    for path in &config_paths {
        let config = NodeConfig::load(path).expect("config loads");
        assert!(
            config.key_file.starts_with(dir.path()),
            "relative paths resolve beside the config"
        );
        let setup = NodeSetup::from_config(&config).expect("setup");
        let all = vec![NodeId(0), NodeId(1)];
        let mut node = spawn_node(setup, |store| Echo::from_store(all, store))
            .await
            .expect("node starts");
        output_matching(&mut node, |o| matches!(o, EchoOutput::Restored(_))).await;
        nodes.push(node);
    }
    ping(&nodes[0], NodeId(1), 1, 8).await;
    output_matching(&mut nodes[0], |o| {
        matches!(o, EchoOutput::Pong { seq: 1, .. })
    })
    .await;
    request(
        &nodes[1],
        EchoRequest::Persist {
            ops: vec![stockade_core::StoreOp::Put {
                key: b"k/x".to_vec(),
                value: vec![1],
            }],
            key: b"k/x".to_vec(),
            notify: NodeId(0),
        },
    )
    .await;
    output_matching(&mut nodes[0], |o| matches!(o, EchoOutput::StoredAt { .. })).await;

    // Counters are published every link tick; wait until the scrape shows this traffic.
    let wanted = [
        "stockade_link_handshakes_completed{node=\"0\"} 1",
        "stockade_link_handshakes_completed{node=\"1\"} 1",
        "stockade_node_persists{node=\"1\"} 1",
        "stockade_link_dropped_replay{node=\"0\"} 0",
    ];
    let body = tokio::time::timeout(WAIT_MAX, async {
        loop {
            let body = tokio::task::spawn_blocking(move || scrape(metrics_addr))
                .await
                .expect("scrape");
            if wanted.iter().all(|w| body.contains(w)) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("metrics never showed {wanted:?}: {}", scrape(metrics_addr)));
    assert!(body.contains("stockade_link_datagrams_in{node=\"1\"}"));
    for node in nodes {
        node.shutdown().await.expect("clean stop");
    }
}
