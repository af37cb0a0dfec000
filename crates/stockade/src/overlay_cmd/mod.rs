//! `stockade overlay ...`: run a real Pastry overlay node (the DHT and Scribe of
//! `stockade-overlay`, feature `net`) and talk to one through its local control interface; start
//! and stop a local overlay of such processes ([`local`]).
//!
//! Client commands (`put`, `get`, `remove`, `publish`, `anycast`, `status`) print their result
//! plainly, then the daemon's reply as JSON on the last line. `subscribe` prints one JSON line
//! per multicast, and per anycast it took (marked `"anycast": true`).

pub mod local;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use stockade_overlay::net::{ControlClient, ControlRequest, OverlayDaemon, OverlayNodeConfig};

use crate::cli::{ClusterDirArgs, ConfigArgs};
use crate::headline::Verdict;
use local::{overlay_down, overlay_up, write_local_overlay, LocalOverlayPlan, NODES_FILE};

/// `stockade overlay ...`.
#[derive(Subcommand, Debug)]
pub enum OverlayCommand {
    /// Run one overlay node (Pastry with a DHT and Scribe) from its TOML file until Ctrl-C or
    /// SIGTERM; prints one JSON line with its addresses once it runs.
    Run(ConfigArgs),
    /// Store VALUE under KEY through a running node.
    Put(PutArgs),
    /// Fetch the value under KEY through a running node (exit status 1 when there is none).
    Get(GetArgs),
    /// Remove the value under KEY from its replicas through a running node (a signed tombstone:
    /// only a holder of the name can remove it; an error when there is no value).
    Remove(GetArgs),
    /// Multicast MESSAGE to TOPIC's subscribers through a running node.
    Publish(PublishArgs),
    /// Deliver MESSAGE to ONE subscriber of TOPIC (Scribe anycast: any listening subscriber
    /// accepts) through a running node (exit status 1 when no subscriber took it).
    Anycast(PublishArgs),
    /// Subscribe to TOPIC through a running node and print each multicast, and each anycast this
    /// subscriber took (marked "anycast": true), as a JSON line.
    Subscribe(SubscribeArgs),
    /// Print a running node's state: overlay id, phase, leaf set, routing table, storage.
    Status(NodeArgs),
    /// Write keys, certificates and configs for a local overlay under DIR (unless there) and
    /// start its processes; the last line is JSON listing every node's control address.
    Up(UpArgs),
    /// Stop every process of the local overlay under DIR (files stay).
    Down(ClusterDirArgs),
}

/// The node to talk to.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's control address (`[overlay] control` in its config).
    #[arg(long)]
    pub node: SocketAddr,
    /// Give up waiting for the connection or the answer after this long.
    #[arg(long, default_value_t = 15_000)]
    pub timeout_ms: u64,
}

/// `stockade overlay put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The key (a name).
    pub key: String,
    /// The value (text).
    pub value: String,
}

/// `stockade overlay get` and `remove`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The key.
    pub key: String,
}

/// `stockade overlay publish` and `anycast`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The topic (a name).
    pub topic: String,
    /// The message (text).
    pub message: String,
}

/// `stockade overlay subscribe`.
#[derive(Args, Debug)]
pub struct SubscribeArgs {
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The topic.
    pub topic: String,
    /// Exit after this many messages (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// `stockade overlay up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Directory of the overlay's keys, configs, logs and data.
    #[arg(long)]
    pub dir: PathBuf,
    /// Nodes (node 0 is everyone's bootstrap).
    #[arg(long, default_value_t = 8)]
    pub nodes: usize,
    /// UDP ports from here, control ports from here + 1000; 0 picks free ports.
    #[arg(long, default_value_t = 7600)]
    pub base_port: u16,
    /// Certify node ids with a certificate authority written to DIR/ca.key.
    #[arg(long)]
    pub certified: bool,
    /// Replicas per DHT object, k.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
}

/// Run `stockade overlay ...`.
pub fn run(command: &OverlayCommand) -> anyhow::Result<Verdict> {
    match command {
        OverlayCommand::Run(args) => run_node(&args.config),
        OverlayCommand::Put(args) => {
            let request = ControlRequest::Put {
                key: args.key.clone(),
                value: args.value.clone(),
            };
            let reply = ask(&args.node, &request)?;
            let replicas = replica_count(&reply, "replicas");
            println!("stored {:?} on {replicas}", args.key);
            println!("{reply}");
            Ok(Verdict::Passed)
        }
        OverlayCommand::Get(args) => {
            let reply = ask(
                &args.node,
                &ControlRequest::Get {
                    key: args.key.clone(),
                },
            )?;
            let found = reply["found"] == json!(true);
            match reply["value"].as_str() {
                Some(value) if found => println!("{value}"),
                _ => println!("{:?} not found", args.key),
            }
            println!("{reply}");
            Ok(if found {
                Verdict::Passed
            } else {
                Verdict::CheckFailed
            })
        }
        OverlayCommand::Remove(args) => {
            let reply = ask(
                &args.node,
                &ControlRequest::Remove {
                    key: args.key.clone(),
                },
            )?;
            let replicas = replica_count(&reply, "removed");
            println!("removed {:?} from {replicas}", args.key);
            println!("{reply}");
            Ok(Verdict::Passed)
        }
        OverlayCommand::Anycast(args) => {
            let request = ControlRequest::Anycast {
                topic: args.topic.clone(),
                message: args.message.clone(),
            };
            let reply = ask(&args.node, &request)?;
            let accepted = reply["accepted"] == json!(true);
            if accepted {
                println!(
                    "a subscriber of {:?} on node {} took it",
                    args.topic,
                    reply["by"].as_str().unwrap_or("?")
                );
            } else {
                println!("no subscriber of {:?} took it", args.topic);
            }
            println!("{reply}");
            Ok(Verdict::from_passed(accepted))
        }
        OverlayCommand::Publish(args) => {
            let request = ControlRequest::Publish {
                topic: args.topic.clone(),
                message: args.message.clone(),
            };
            let reply = ask(&args.node, &request)?;
            println!("published to {:?}", args.topic);
            println!("{reply}");
            Ok(Verdict::Passed)
        }
        OverlayCommand::Subscribe(args) => subscribe(args),
        OverlayCommand::Status(args) => {
            let reply = ask(args, &ControlRequest::Status)?;
            println!(
                "node {} id {} {}: leaf set {}/{} (Scribe {}), routing table {}, {} objects stored",
                reply["node"],
                reply["id"].as_str().unwrap_or("?"),
                reply["dht_phase"].as_str().unwrap_or("?"),
                reply["leaf_set"],
                reply["leaf_set_size"],
                reply["multicast_leaf_set"],
                reply["routing_table"],
                reply["stored_objects"],
            );
            println!("{reply}");
            Ok(Verdict::Passed)
        }
        OverlayCommand::Up(args) => up(args),
        OverlayCommand::Down(args) => {
            let stopped = overlay_down(&args.dir)
                .with_context(|| format!("stopping the overlay under {}", args.dir.display()))?;
            println!("stopped {stopped} processes under {}", args.dir.display());
            Ok(Verdict::Passed)
        }
    }
}

/// "N replicas", saying when fewer than k acknowledged; `field` holds N in `reply`.
fn replica_count(reply: &Value, field: &str) -> String {
    let short = if reply["complete"] == json!(true) {
        ""
    } else {
        " (fewer than k)"
    };
    format!("{} replicas{short}", reply[field])
}

fn connect(node: &NodeArgs) -> anyhow::Result<ControlClient> {
    Ok(ControlClient::connect(
        node.node,
        Duration::from_millis(node.timeout_ms),
    )?)
}

/// One request, one reply.
fn ask(node: &NodeArgs, request: &ControlRequest) -> anyhow::Result<Value> {
    let reply = connect(node)?.request(request)?;
    Ok(reply)
}

fn subscribe(args: &SubscribeArgs) -> anyhow::Result<Verdict> {
    let mut client = connect(&args.node)?;
    client.request(&ControlRequest::Subscribe {
        topic: args.topic.clone(),
    })?;
    println!("subscribed to {:?}", args.topic);
    client.set_read_timeout(None)?;
    let mut received = 0u64;
    while args.count.is_none_or(|count| received < count) {
        let Some(message) = client.next_line()? else {
            anyhow::bail!("the node closed the subscription");
        };
        println!("{message}");
        received += 1;
    }
    Ok(Verdict::Passed)
}

/// `stockade overlay run --config FILE`.
fn run_node(config_path: &std::path::Path) -> anyhow::Result<Verdict> {
    let config = OverlayNodeConfig::load(config_path)?;
    // One thread: a node is light, and a local overlay runs dozens of them on a few cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async {
        let daemon = OverlayDaemon::start(config)
            .await
            .with_context(|| format!("overlay node from {}", config_path.display()))?;
        let ready = json!({
            "ready": true,
            "node": daemon.me.addr.0,
            "id": format!("{:032x}", daemon.me.id.0),
            "udp": daemon.udp.to_string(),
            "control": daemon.control.to_string(),
        });
        println!("{ready}");
        daemon.run_until(wait_for_stop_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(Verdict::Passed)
}

/// Wait for Ctrl-C or SIGTERM (what `overlay down` sends).
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn up(args: &UpArgs) -> anyhow::Result<Verdict> {
    if !args.dir.join(NODES_FILE).exists() {
        let plan = LocalOverlayPlan {
            nodes: args.nodes,
            base_port: (args.base_port != 0).then_some(args.base_port),
            certified: args.certified,
            replicas: args.replicas,
        };
        write_local_overlay(&args.dir, &plan)
            .with_context(|| format!("writing the overlay under {}", args.dir.display()))?;
    }
    let exe = std::env::current_exe().context("finding this binary to start the nodes")?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let nodes = overlay_up(&dir, &exe)
        .with_context(|| format!("starting the overlay under {}", dir.display()))?;
    let controls: Vec<String> = nodes.iter().map(|n| n.control.to_string()).collect();
    println!("{}", json!({"nodes": nodes.len(), "controls": controls}));
    Ok(Verdict::Passed)
}
