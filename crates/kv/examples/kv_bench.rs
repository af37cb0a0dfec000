//! Throughput of the key-value path without replication: the state machine alone, and the
//! unreplicated baseline server over loopback TCP with pipelining clients. The server figure is
//! the "unreplicated" side of paper 001's comparison (a replicated server within 25% of it).
//!
//! Run: `cargo run --release -p stockade-kv --features net --example kv_bench [ops] [clients] [pipeline]`
//! The last line of output is one JSON object with the figures.

use std::net::SocketAddr;
use std::time::Instant;

use stockade_kv::unreplicated::{UnreplicatedConfig, UnreplicatedServer};
use stockade_kv::{Command, Limits, StateMachine};

fn parse(words: &[&[u8]]) -> Command {
    let args: Vec<Vec<u8>> = words.iter().map(|w| w.to_vec()).collect();
    Command::parse(&args, &Limits::DEFAULT).expect("benchmark commands are valid")
}

/// SET then GET of `ops / 2` keys of 200-byte values (paper 004's update size), executed directly.
fn state_machine_ops_per_sec(ops: u64) -> f64 {
    let mut sm = StateMachine::new(Limits::DEFAULT);
    let value = vec![b'x'; 200];
    let commands: Vec<Command> = (0..ops / 2)
        .flat_map(|i| {
            let key = format!("key:{}", i % 10_000).into_bytes();
            [parse(&[b"SET", &key, &value]), parse(&[b"GET", &key])]
        })
        .collect();
    let start = Instant::now();
    for (i, c) in commands.iter().enumerate() {
        sm.exec(i as u64, c);
    }
    commands.len() as f64 / start.elapsed().as_secs_f64()
}

fn server_ops_per_sec(addr: SocketAddr, ops: u64, clients: u64, pipeline: u64) -> f64 {
    let per_client = ops / clients;
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
                let mut con = client.get_connection().expect("connects");
                let value = [b'x'; 200];
                let mut done = 0;
                while done < per_client {
                    let mut pipe = redis::pipe();
                    for i in 0..pipeline {
                        let key = format!("key:{c}:{}", (done + i) % 10_000);
                        if i % 2 == 0 {
                            pipe.cmd("SET").arg(&key).arg(&value[..]).ignore();
                        } else {
                            pipe.cmd("GET").arg(&key).ignore();
                        }
                    }
                    let _: () = pipe.query(&mut con).expect("pipeline");
                    done += pipeline;
                }
                done
            })
        })
        .collect();
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (ops, clients, pipeline) = (arg(1, 200_000), arg(2, 4), arg(3, 16));
    let sm = state_machine_ops_per_sec(ops);
    println!("state machine alone: {sm:.0} ops/s (SET/GET, 200-byte values)");

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
            let server = UnreplicatedServer::bind(addr, UnreplicatedConfig::default())
                .await
                .expect("bind");
            tx.send(server.local_addr().expect("address"))
                .expect("report");
            server.run().await.expect("serve");
        });
    });
    let addr = rx.recv().expect("server started");
    let server = server_ops_per_sec(addr, ops, clients, pipeline);
    println!("unreplicated server: {server:.0} ops/s ({clients} clients, pipeline {pipeline})");
    println!(
        "{{\"state_machine_ops_per_sec\":{sm:.0},\"unreplicated_server_ops_per_sec\":{server:.0},\"clients\":{clients},\"pipeline\":{pipeline},\"value_bytes\":200}}"
    );
}
