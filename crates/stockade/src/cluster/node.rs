//! The hidden `stockade broadcast-node --config FILE`: one Bracha broadcast node as a real process
//! (the runtime's Noise/UDP driver), driven over its standard input and output.
//!
//! Standard input, one command per line: `broadcast <hex payload>`, or `quit` (stop cleanly and
//! report). Standard output, one event per line: `ready <udp address>` once the node runs,
//! `delivered <origin> <seq> <hex payload>` for each delivery, `refused <reason>`, and on `quit`
//! (or end of input) `stats <json>` with the protocol's and the links' counters.

use anyhow::Context as _;
use serde_json::{json, Map, Value};
use std::io::{BufRead, Read};
use stockade_broadcast::{BrachaBroadcast, BroadcastOutput, BroadcastRequest, BroadcastStats};
use stockade_runtime::{spawn_node, NodeSetup, NodeStats};

use tokio::io::AsyncWriteExt;

use super::config::BroadcastNodeConfig;
use super::faults::FaultyBroadcast;
use crate::cli::BroadcastNodeArgs;
use crate::headline::Verdict;

/// Longest command line read from standard input, in bytes (a 60 KiB payload in hex, and some).
pub const COMMAND_LINE_BYTES_MAX: usize = 2 * stockade_broadcast::PAYLOAD_BYTES_MAX + 64;
/// Command lines read ahead of the node.
pub const COMMANDS_QUEUED_MAX: usize = 1024;

/// A command line longer than [`COMMAND_LINE_BYTES_MAX`] (it was skipped).
#[derive(Debug, PartialEq, Eq)]
pub struct LineTooLong;

/// Read command lines from `input` until it ends, never holding more than
/// [`COMMAND_LINE_BYTES_MAX`] bytes of one line.
pub fn read_commands(
    mut input: impl BufRead,
    out: &tokio::sync::mpsc::Sender<Result<String, LineTooLong>>,
) {
    loop {
        let mut line = Vec::new();
        let limit = COMMAND_LINE_BYTES_MAX as u64 + 1;
        match (&mut input).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = if line.last() == Some(&b'\n') || line.len() <= COMMAND_LINE_BYTES_MAX {
            Ok(String::from_utf8_lossy(&line).trim_end().to_string())
        } else {
            // Skip the rest of the overlong line, a bounded chunk at a time.
            loop {
                let mut rest = Vec::new();
                match (&mut input).take(limit).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            Err(LineTooLong)
        };
        if out.blocking_send(command).is_err() {
            return;
        }
    }
}

/// Run the node until `quit` or the end of standard input.
pub fn run(args: &BroadcastNodeArgs) -> anyhow::Result<Verdict> {
    let config = BroadcastNodeConfig::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(serve(config))?;
    Ok(Verdict::Passed)
}

async fn serve(config: BroadcastNodeConfig) -> anyhow::Result<()> {
    let keys = config.key_ring()?;
    let honest = BrachaBroadcast::new(config.broadcast_config(), keys.clone())?;
    let protocol = FaultyBroadcast::new(honest, keys, config.faults.clone());
    let setup = NodeSetup::from_config(&config.node)?;
    let mut handle = spawn_node(setup, move |_store| protocol).await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("ready {}\n", handle.local_addr()).as_bytes())
        .await?;
    stdout.flush().await?;

    let (commands_tx, mut commands) = tokio::sync::mpsc::channel(COMMANDS_QUEUED_MAX);
    std::thread::spawn(move || read_commands(std::io::stdin().lock(), &commands_tx));
    loop {
        tokio::select! {
            line = commands.recv() => {
                let Some(line) = line else { break };
                let Ok(line) = line else {
                    stdout.write_all(b"refused command line too long\n").await?;
                    continue;
                };
                match line.split_once(' ').unwrap_or((line.as_str(), "")) {
                    ("quit", _) => break,
                    ("broadcast", hex_payload) => match hex::decode(hex_payload.trim()) {
                        Ok(payload) => handle.requests.send(BroadcastRequest { payload }).await.context("the node stopped")?,
                        Err(e) => stdout.write_all(format!("refused payload is not hex: {e}\n").as_bytes()).await?,
                    },
                    (other, _) => stdout.write_all(format!("refused unknown command {other:?}\n").as_bytes()).await?,
                }
            }
            output = handle.outputs.recv() => {
                let Some(output) = output else { break };
                stdout.write_all(describe(&output).as_bytes()).await?;
                stdout.flush().await?;
            }
        }
    }
    let link_stats = handle.stats();
    let protocol = handle.shutdown().await?;
    let stats = json!({"broadcast": broadcast_stats_json(&protocol.honest().stats()), "runtime": runtime_stats_json(&link_stats)});
    stdout
        .write_all(format!("stats {stats}\n").as_bytes())
        .await?;
    stdout.flush().await?;
    Ok(())
}

fn describe(output: &BroadcastOutput) -> String {
    match output {
        BroadcastOutput::Delivered { instance, payload } => {
            format!(
                "delivered {} {} {}\n",
                instance.origin.0,
                instance.seq,
                hex::encode(payload)
            )
        }
        BroadcastOutput::Refused {
            payload_len,
            reason,
        } => format!("refused {payload_len} bytes: {reason:?}\n"),
    }
}

/// The protocol's counters as JSON.
pub fn broadcast_stats_json(s: &BroadcastStats) -> Value {
    json!({
        "broadcasts_started": s.broadcasts_started,
        "delivered": s.delivered,
        "requests_refused": s.requests_refused,
        "invalid_signatures": s.invalid_signatures,
        "malformed": s.malformed,
        "outside_window": s.outside_window,
        "equivocations_detected": s.equivocations_detected,
        "conflicting_votes": s.conflicting_votes,
        "retransmissions": s.retransmissions,
        "retransmit_rounds_truncated": s.retransmit_rounds_truncated,
        "catch_up_replies": s.catch_up_replies,
    })
}

fn runtime_stats_json(s: &NodeStats) -> Value {
    let fields = s.link.fields().into_iter().chain(s.driver.fields());
    Value::Object(
        fields
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect::<Map<String, Value>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_bounded_and_an_overlong_one_is_skipped_whole() {
        let long = "x".repeat(COMMAND_LINE_BYTES_MAX + 10);
        let input = format!("broadcast 00\n{long}\nquit\n");
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        read_commands(input.as_bytes(), &tx);
        assert_eq!(rx.try_recv(), Ok(Ok("broadcast 00".to_string())));
        assert_eq!(rx.try_recv(), Ok(Err(LineTooLong)));
        assert_eq!(
            rx.try_recv(),
            Ok(Ok("quit".to_string())),
            "the line after the long one is intact"
        );
    }
}
