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
    /// Run a local cluster of real processes on loopback, inject a fault, and report what held.
    Demo(DemoArgs),
    /// Write a node's keys (Noise static key, Ed25519 and BLS) to files in a directory.
    Keygen(KeygenArgs),
    /// Run deterministic simulations (`stockade sim --list` shows the scenarios).
    Sim(SimArgs),
    /// Run benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
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
    /// Broadcasts each node sends.
    #[arg(long, default_value_t = 300)]
    pub messages: u64,
    /// Broadcasts per second each node sends (the offered load).
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// First UDP port on 127.0.0.1 (the 4 nodes use this and the next 3); 0 picks free ports.
    #[arg(long, default_value_t = 47100)]
    pub base_port: u16,
    /// Keep the cluster's configs, keys and logs here instead of a temporary directory.
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
