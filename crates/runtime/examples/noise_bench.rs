//! Noise-over-UDP benchmark between two processes on loopback: this program re-executes itself
//! as the receiver (`noise_bench --receiver`), streams 1 KiB messages to it, then measures the
//! handshake and seal costs in-process. The last line of output is the figures as JSON.
//!
//! `cargo run --release -p stockade-runtime --example noise_bench [messages] [datagram_bytes]`

use stockade_runtime::bench::{
    bench_noise_crypto, bench_noise_two_processes, figures_json, receiver_child_main,
    NoiseBenchParams,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--receiver") {
        receiver_child_main()?;
        return Ok(());
    }
    let mut params = NoiseBenchParams::default();
    if let Some(messages) = args.get(1) {
        params.messages = messages.parse()?;
    }
    if let Some(bytes) = args.get(2) {
        params.datagram_payload_bytes_max = bytes.parse()?;
    }
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench_noise_two_processes(&exe, &["--receiver"], &params))?;
    let crypto = bench_noise_crypto(2_000, params.message_bytes)?;
    println!(
        "{} of {} messages of {} B in {:.3} s over {} datagrams (<= {} B each): {:.2} Gbit/s, {:.0} messages/s",
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
        "handshake {:.3} ms (both sides), seal {:.2} us, open {:.2} us per {} B message",
        crypto.handshake.as_secs_f64() * 1e3,
        crypto.seal.as_secs_f64() * 1e6,
        crypto.open.as_secs_f64() * 1e6,
        crypto.message_bytes
    );
    println!("{}", figures_json(&report, &crypto));
    Ok(())
}
