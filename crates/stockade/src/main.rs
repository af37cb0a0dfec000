//! The `stockade` binary: parses the command line and runs the subcommand. Exit status 0 when
//! everything passed, 1 when a checker failed, 2 on a usage or setup error.

use std::process::ExitCode;

use clap::Parser;

use stockade::cli::{BenchCommand, Cli, Command, GroupsCommand};
use stockade::headline::Verdict;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Sim(args) => stockade::sim_cmd::run(args, &stockade::scenarios::registry()),
        Command::Keygen(args) => stockade::keygen::run(args),
        Command::Bench(BenchCommand::Crypto) => stockade::bench::crypto(),
        Command::Bench(BenchCommand::Noise(args)) => stockade::bench::noise(args),
        Command::Bench(BenchCommand::Transcript(args)) => stockade::bench::transcript(args),
        Command::Bench(BenchCommand::Kv(args)) => stockade::kv_bench::run(args),
        Command::NoiseReceiver => stockade::bench::noise_receiver(),
        Command::Demo(args) => stockade::demo::run(args),
        Command::Server(args) => stockade::kv_cmd::server(&args.config),
        Command::Proxy(args) => stockade::kv_cmd::proxy(&args.config),
        Command::Cluster(command) => stockade::kv_cmd::cluster(command),
        Command::Groups(GroupsCommand::Demo(args)) => stockade::groups::demo::run(args),
        Command::Groups(GroupsCommand::Member(args)) => stockade::groups::member::run(args),
        Command::Groups(GroupsCommand::View(args)) => stockade::groups::view::run(args),
        Command::Overlay(command) => stockade::overlay_cmd::run(command),
        Command::BroadcastNode(args) => stockade::cluster::node::run(args),
    };
    match result {
        Ok(Verdict::Passed) => ExitCode::SUCCESS,
        Ok(Verdict::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
