//! The command line's grammar (clap derive): every subcommand and option, with its help text.
//! DESIGN.md section 6 fixes these names; scripts outside the project call them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// stockade: intrusion-tolerant replication, overlays and messaging, with one deterministic
/// simulator that runs all of it.
#[derive(Parser, Debug)]
#[command(name = "stockade", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the replicated KV service as a local cluster of real processes, attack it (a leader that
    /// delays, then one that equivocates) under a workload, and report what each attack cost and
    /// what was detected.
    Demo(DemoArgs),
    /// Write a node's keys (Noise static key, Ed25519 and BLS) to files in a directory.
    Keygen(KeygenArgs),
    /// Run deterministic simulations (`stockade sim --list` shows the scenarios).
    Sim(SimArgs),
    /// Run benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run one replica of the replicated KV service from its TOML file (until Ctrl-C or SIGTERM).
    Server(ConfigArgs),
    /// Run the KV service's voting proxy (Redis clients connect here) from its TOML file.
    Proxy(ConfigArgs),
    /// Start, inspect and stop a local KV cluster of real processes.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// LA-groups: run a live group and print its view and attestation graph (DOT and SVG).
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Pastry overlay: run a node (DHT and Scribe), put, get, remove, publish, anycast and
    /// subscribe through one, and start or stop a local overlay of real processes.
    #[command(subcommand)]
    Overlay(crate::overlay_cmd::OverlayCommand),
    /// Run one Bracha broadcast node from a config file (started by `demo` and the tests).
    #[command(hide = true)]
    BroadcastNode(BroadcastNodeArgs),
    /// The receiving side of `bench noise` (started by `bench noise` itself).
    #[command(hide = true)]
    NoiseReceiver,
}

/// `stockade demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run the earlier demo instead: Bracha broadcast among 4 processes, one killed halfway.
    #[arg(long)]
    pub broadcast: bool,
    /// Seconds of each phase: fault-free, delaying leader, equivocating leader.
    #[arg(long, default_value_t = 4)]
    pub phase_seconds: u64,
    /// The delaying leader proposes once per this many milliseconds (under --timeout-ms).
    #[arg(long, default_value_t = 450)]
    pub delay_ms: u64,
    /// The plain leader timeout the delay stays under, in milliseconds: what a protocol that only
    /// times its leader out would tolerate for ever.
    #[arg(long, default_value_t = 500)]
    pub timeout_ms: u64,
    /// Closed-loop Redis clients of the workload, each with one command outstanding.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// With --broadcast: broadcasts each node sends.
    #[arg(long, default_value_t = 300, requires = "broadcast")]
    pub messages: u64,
    /// With --broadcast: broadcasts per second each node sends (the offered load).
    #[arg(long, default_value_t = 100, requires = "broadcast")]
    pub rate: u64,
    /// First port on 127.0.0.1; 0 picks free ports. The KV cluster uses protocol ports from here,
    /// RESP ports from here + 100 and metrics from here + 200 (5 processes each).
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
    /// Keep the cluster's configs, keys and logs here (an empty or new directory) instead of a
    /// temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `stockade keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Directory to write the key files into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

/// `stockade sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// List the scenarios and their arguments.
    #[arg(long, conflicts_with = "scenario")]
    pub list: bool,
    /// The scenario to run.
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// The (first) seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run this many seeds, `seed..seed+K`, and aggregate.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Write CSV files and plots here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scenario arguments, `--name value` pairs (see `stockade sim --list`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "--NAME VALUE"
    )]
    pub scenario_args: Vec<String>,
}

/// `stockade bench ...`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time every crypto operation on this machine next to DESIGN.md's reference figures.
    Crypto,
    /// Throughput of one Noise-over-UDP link between two processes on loopback.
    Noise(BenchNoiseArgs),
    /// Size and verification time of an LA-group membership transcript: compact (one BLS
    /// multi-signature) against naive (one Ed25519 attestation per member).
    Transcript(BenchTranscriptArgs),
    /// Updates per second and latency of the replicated KV service through its voting proxy
    /// (starts a local cluster of real processes unless --proxy names a running one).
    Kv(BenchKvArgs),
}

/// `stockade bench kv`.
#[derive(Args, Debug)]
pub struct BenchKvArgs {
    /// Updates (SET of a 200-byte value) per run; a run is one target at one client count.
    #[arg(long, default_value_t = 1_000)]
    pub updates: u64,
    /// Client counts, comma-separated: closed-loop clients, each with one update outstanding.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    pub clients: Vec<usize>,
    /// A run stops after this many seconds even if updates remain (it reports what was done).
    #[arg(long, default_value_t = 15)]
    pub run_seconds_max: u64,
    /// Byzantine servers the local cluster tolerates (3f + 1 servers).
    #[arg(long, default_value_t = 1)]
    pub f: usize,
    /// A running proxy's RESP address instead of a local cluster.
    #[arg(long)]
    pub proxy: Option<std::net::SocketAddr>,
    /// A server's RESP port to measure directly (a local cluster's server 0 by default).
    #[arg(long)]
    pub direct: Option<std::net::SocketAddr>,
    /// Skip the unreplicated baselines (stockade's unreplicated server, redis-server).
    #[arg(long)]
    pub no_baselines: bool,
}

/// `stockade bench transcript`.
#[derive(Args, Debug)]
pub struct BenchTranscriptArgs {
    /// Members in the view (2 to the transcript directory's limit).
    #[arg(long, default_value_t = 64)]
    pub members: usize,
}

/// `stockade bench noise`.
#[derive(Args, Debug)]
pub struct BenchNoiseArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Bytes per message.
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// UDP payload size: small messages share datagrams up to this size.
    #[arg(long, default_value_t = 16 * 1024)]
    pub datagram_bytes: usize,
}

/// The hidden `stockade broadcast-node`.
#[derive(Args, Debug)]
pub struct BroadcastNodeArgs {
    /// The node's TOML config.
    #[arg(long)]
    pub config: PathBuf,
}

/// `stockade groups ...`.
#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Run a live LA-group of N members in the simulator; print its view and attestation graph,
    /// and write graph.dot and graph.svg under --out (DOT on standard output without --out).
    Demo(GroupsDemoArgs),
    /// Run one real LA-groups member over Noise/UDP links until Ctrl-C or SIGTERM; print view
    /// changes, and write view.txt, graph.dot and graph.svg under --out every --print-every seconds.
    Member(GroupsMemberArgs),
    /// Ask a running member (its view_listen address) for its view of its group; print the view
    /// and the attestation graph, and write graph.dot and graph.svg under --out (DOT on standard
    /// output without --out).
    View(GroupsViewArgs),
}

/// `stockade groups view`.
#[derive(Args, Debug)]
pub struct GroupsViewArgs {
    /// The member's view_listen address, for example 127.0.0.1:7200.
    #[arg(long)]
    pub member: std::net::SocketAddr,
    /// Write graph.dot and graph.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `stockade groups member`.
#[derive(Args, Debug)]
pub struct GroupsMemberArgs {
    /// The member's TOML: id, listen, keys_dir (from `stockade keygen`), data_dir, optional
    /// view_listen, a [[peer]] per other member with its public keys, and a [group] section.
    #[arg(long)]
    pub config: PathBuf,
    /// Write group.txt, view.txt, graph.dot and graph.svg here.
    #[arg(long, default_value = "groups-member-out")]
    pub out: PathBuf,
    /// Seconds between two writes of the pictures.
    #[arg(long = "print-every", default_value_t = 5)]
    pub print_every_s: u64,
}

/// `stockade groups demo`.
#[derive(Args, Debug)]
pub struct GroupsDemoArgs {
    /// Members of the group (3 to 64).
    #[arg(long, default_value_t = 8)]
    pub members: u32,
    /// Crash this member once the group formed, and show the view without it.
    #[arg(long)]
    pub crash: Option<u32>,
    /// The simulation's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write graph.dot and graph.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A daemon's configuration file.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// The TOML configuration (`stockade cluster up` writes working ones).
    #[arg(long)]
    pub config: PathBuf,
}

/// `stockade cluster ...`.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Write keys and configs under DIR (unless there) and start the servers and the proxy; the
    /// last line printed is the proxy's RESP address, HOST:PORT.
    Up(ClusterUpArgs),
    /// Show each process of the cluster under DIR: role, id, RESP address, pid or stopped.
    Status(ClusterStatusArgs),
    /// Stop every process of the cluster under DIR (keys, configs and data stay).
    Down(ClusterDirArgs),
}

/// `stockade cluster up`.
#[derive(Args, Debug)]
pub struct ClusterUpArgs {
    /// Directory of the cluster's keys, configs, logs and data.
    #[arg(long)]
    pub dir: PathBuf,
    /// Sites (only 1 on one machine).
    #[arg(long, default_value_t = 1)]
    pub sites: usize,
    /// Servers (must be 3f + 1; defaults to that).
    #[arg(long)]
    pub servers: Option<usize>,
    /// Byzantine servers tolerated.
    #[arg(long, default_value_t = 1)]
    pub f: usize,
    /// First port: protocol ports from here, RESP ports from here + 100, metrics from + 200.
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
}

/// `stockade cluster status`.
#[derive(Args, Debug)]
pub struct ClusterStatusArgs {
    /// Directory of the cluster.
    #[arg(long)]
    pub dir: PathBuf,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `stockade cluster down`.
#[derive(Args, Debug)]
pub struct ClusterDirArgs {
    /// Directory of the cluster.
    #[arg(long)]
    pub dir: PathBuf,
}
