//! `pastry-hops`: build a static Pastry overlay and route random lookups over it, printing hop
//! counts, the hop histogram and the route delay stretch; the last line is one JSON object.
//!
//! Compare with the Pastry paper (b = 4, L = 16, N = 100,000): mean about 3.98 hops, 64.5% of
//! routes take 4 hops, 17.5% take 5, none more; delay stretch about 1.3 to 2.2 by topology model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use stockade_overlay::scenarios::hops_headline;
use stockade_overlay::static_overlay::{StaticConfig, StaticOverlay, PNS_SAMPLES_MAX_DEFAULT};
use stockade_overlay::{DigitBits, LatencyMatrix, LatencyModel};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Topology {
    /// Random points on a square, Euclidean latency.
    Plane,
    /// Random points on a sphere, great-circle latency.
    Sphere,
}

/// Hop counts and delay stretch of Pastry routing over a statically built overlay.
#[derive(Parser, Debug)]
#[command(name = "pastry-hops")]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 100_000)]
    nodes: usize,
    /// Number of lookups (random source, random key).
    #[arg(long, default_value_t = 1_000_000)]
    lookups: usize,
    /// Seed for ids, positions, sampling and lookups.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Digit width b (1, 2, 4 or 8).
    #[arg(long, default_value_t = 4)]
    b: u32,
    /// Leaf-set size L.
    #[arg(long, default_value_t = 16)]
    leaf_set: usize,
    /// Candidates examined per routing-table slot (proximity neighbour selection).
    #[arg(long, default_value_t = PNS_SAMPLES_MAX_DEFAULT)]
    pns_samples: usize,
    /// Latency model.
    #[arg(long, value_enum, default_value_t = Topology::Plane)]
    topology: Topology,
    /// A square matrix of one-way latencies (ms) to use instead of `--topology`.
    #[arg(long)]
    latency_matrix: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(healthy) if healthy => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(message) => {
            eprintln!("pastry-hops: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let digits = DigitBits::new(args.b).map_err(|e| e.to_string())?;
    let latency = match &args.latency_matrix {
        Some(path) => LatencyModel::Matrix(LatencyMatrix::load(path).map_err(|e| e.to_string())?),
        None => match args.topology {
            Topology::Plane => LatencyModel::Plane,
            Topology::Sphere => LatencyModel::Sphere,
        },
    };
    let config = StaticConfig {
        nodes: args.nodes,
        digits,
        leaf_set_size: args.leaf_set,
        pns_samples_max: args.pns_samples,
        latency,
        seed: args.seed,
        ..StaticConfig::paper(args.nodes, args.seed)
    };
    let build_started = Instant::now();
    let overlay = StaticOverlay::build(&config).map_err(|e| e.to_string())?;
    let build_s = build_started.elapsed().as_secs_f64();
    let route_started = Instant::now();
    let stats = overlay.measure_lookups(args.lookups, args.seed);
    let route_s = route_started.elapsed().as_secs_f64();

    println!(
        "pastry-hops: {} nodes, b={}, L={}, {} latency model, PNS over <= {} candidates per slot",
        overlay.len(),
        digits.bits(),
        args.leaf_set,
        config.latency.name(),
        args.pns_samples
    );
    println!(
        "built in {build_s:.2} s ({:.1} MiB of tables and ids, {:.1} routing entries per node); {} lookups in {route_s:.2} s",
        overlay.memory_bytes() as f64 / (1024.0 * 1024.0),
        overlay.mean_table_entries(),
        stats.lookups
    );
    println!("hops  lookups  fraction");
    for (hops, count) in stats.hop_histogram.iter().enumerate() {
        println!(
            "{hops:>4}  {count:>7}  {:>7.3}%",
            100.0 * stats.fraction_at(hops)
        );
    }
    println!(
        "mean_hops {:.3}, max_hops {}, stretch {:.3} (total path / total direct latency), mean per-lookup stretch {:.3}",
        stats.mean_hops(),
        stats.max_hops(),
        stats.aggregate_stretch(),
        stats.mean_stretch()
    );
    println!(
        "misdelivered {}, looped {}, rare-case hops {}",
        stats.misdelivered, stats.looped, stats.rare_hops
    );
    let healthy = stats.misdelivered == 0 && stats.looped == 0;
    let mut headline = hops_headline(&overlay, &config, &stats);
    headline["build_s"] = build_s.into();
    headline["route_s"] = route_s.into();
    headline["ok"] = healthy.into();
    println!("{headline}");
    Ok(healthy)
}
