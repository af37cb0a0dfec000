//! `stockade bench crypto` and `stockade bench noise`: measure on this machine, print each figure
//! beside the reference it is compared with (DESIGN.md section 5), end with one JSON line.

use anyhow::Context as _;
use serde_json::{json, Map, Value};
use stockade_runtime::bench::{
    bench_noise_crypto, bench_noise_two_processes, receiver_child_main, NoiseBenchParams,
};

use crate::cli::BenchNoiseArgs;
use crate::headline::{print_headline, Verdict};

/// Handshake and seal iterations `bench noise` measures in-process.
const NOISE_CRYPTO_ITERATIONS: u32 = 2_000;

/// `stockade bench crypto`: every operation's mean time next to the reference machine's.
pub fn crypto() -> anyhow::Result<Verdict> {
    let lines = stockade_crypto::calibrate::bench_report();
    println!(
        "{:<44} {:>12}   DESIGN.md reference",
        "operation", "this machine"
    );
    let mut figures = Map::new();
    for line in &lines {
        println!(
            "{:<44} {:>9.2} us   {}",
            line.name, line.per_op_us, line.reference
        );
        figures.insert(line.name.clone(), json!(line.per_op_us));
    }
    println!("(figures are means; other processes sharing the CPU make them pessimistic)");
    print_headline(
        &json!({"bench": "crypto", "unit": "us_per_op", "figures": Value::Object(figures)}),
    );
    Ok(Verdict::Passed)
}

/// `stockade bench noise`: throughput of one authenticated encrypted link between this process
/// and a copy of this binary started as the receiver, then handshake and seal costs.
pub fn noise(args: &BenchNoiseArgs) -> anyhow::Result<Verdict> {
    let params = NoiseBenchParams {
        messages: args.messages,
        message_bytes: args.message_bytes,
        datagram_payload_bytes_max: args.datagram_bytes,
        ..NoiseBenchParams::default()
    };
    let exe = std::env::current_exe().context("finding this binary to start the receiver")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let report = runtime.block_on(bench_noise_two_processes(
        &exe,
        &["noise-receiver"],
        &params,
    ))?;
    let crypto = bench_noise_crypto(NOISE_CRYPTO_ITERATIONS, params.message_bytes)?;
    println!(
        "two processes on loopback: {} of {} messages of {} B in {:.3} s over {} datagrams (<= {} B): {:.2} Gbit/s, {:.0} messages/s",
        report.messages_received,
        report.messages_sent,
        params.message_bytes,
        report.elapsed.as_secs_f64(),
        report.datagrams_received,
        params.datagram_payload_bytes_max,
        report.gbit_per_s,
        report.messages_per_s
    );
    println!(
        "Noise IK handshake {:.3} ms (both sides; DESIGN.md reference 0.38 ms), seal {:.2} us per {} B (reference 2.5 us per 1 KB), open {:.2} us",
        crypto.handshake.as_secs_f64() * 1e3,
        crypto.seal.as_secs_f64() * 1e6,
        crypto.message_bytes,
        crypto.open.as_secs_f64() * 1e6
    );
    print_headline(&json!({
        "bench": "noise",
        "gbit_per_s": report.gbit_per_s,
        "messages_per_s": report.messages_per_s,
        "messages_sent": report.messages_sent,
        "messages_received": report.messages_received,
        "message_bytes": params.message_bytes,
        "handshake_ms": crypto.handshake.as_secs_f64() * 1e3,
        "seal_us": crypto.seal.as_secs_f64() * 1e6,
        "open_us": crypto.open.as_secs_f64() * 1e6,
    }));
    Ok(Verdict::Passed)
}

/// The hidden `stockade noise-receiver`: the child side of `bench noise`.
pub fn noise_receiver() -> anyhow::Result<Verdict> {
    receiver_child_main()?;
    Ok(Verdict::Passed)
}
