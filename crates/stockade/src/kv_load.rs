//! The closed-loop load of `stockade bench kv`: `clients` threads, each with one connection and
//! one SET of a 200-byte value outstanding at a time (paper 004, section 5: 200-byte updates),
//! against any RESP server, and the figures of one such run.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// Bytes of each SET's value (paper 004, section 5: 200-byte updates).
pub const VALUE_BYTES: usize = 200;
/// Longest reply line read from a server, in bytes.
pub const REPLY_LINE_BYTES_MAX: u64 = 1024;
/// How long one update may take before the benchmark gives up.
pub const REPLY_TIMEOUT_MS: u64 = 20_000;
/// How long a client keeps trying to connect to a server that was just started.
pub const CONNECT_WITHIN_MS: u64 = 10_000;
/// Pause between two connection attempts.
const CONNECT_RETRY_MS: u64 = 20;
/// Most client threads of one run.
pub const CLIENTS_MAX: usize = 256;
/// Distinct keys each client cycles through, so a long run does not grow the servers' state.
pub const KEYS_PER_CLIENT: u64 = 1_000;

/// What one run asks for.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Closed-loop clients.
    pub clients: usize,
    /// Updates in all (each client does its share).
    pub updates: u64,
    /// The run stops here even if updates remain (it reports what was done).
    pub within: Duration,
}

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadFigures {
    /// Clients.
    pub clients: usize,
    /// Updates acknowledged.
    pub updates: u64,
    /// Acknowledged updates per second of the run.
    pub updates_per_s: f64,
    /// Median latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th-percentile latency, milliseconds.
    pub latency_p99_ms: f64,
}

impl LoadFigures {
    /// As a JSON object, with `target` naming what was measured.
    pub fn to_json(&self, target: &str) -> Value {
        json!({
            "target": target,
            "clients": self.clients,
            "updates": self.updates,
            "updates_per_s": self.updates_per_s,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
        })
    }
}

/// Run `spec` against the RESP server at `addr`: every reply must be `+OK`.
pub fn run_load(addr: SocketAddr, spec: LoadSpec) -> anyhow::Result<LoadFigures> {
    if !(1..=CLIENTS_MAX).contains(&spec.clients) || spec.updates == 0 {
        bail!("clients must be between 1 and {CLIENTS_MAX} and updates at least 1");
    }
    let start = Instant::now();
    let deadline = start + spec.within;
    let per_client = spec.updates.div_ceil(spec.clients as u64);
    let workers: Vec<_> = (0..spec.clients)
        .map(|client| std::thread::spawn(move || client_loop(addr, client, per_client, deadline)))
        .collect();
    let mut spans = Vec::new();
    let mut last_end = Duration::ZERO;
    for worker in workers {
        let done = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        for (span, end) in done {
            spans.push(span);
            last_end = last_end.max(end.duration_since(start));
        }
    }
    spans.sort();
    let percentile = |p: f64| {
        let index = ((spans.len() as f64 - 1.0) * p).round() as usize;
        spans.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Ok(LoadFigures {
        clients: spec.clients,
        updates: spans.len() as u64,
        updates_per_s: spans.len() as f64 / last_end.as_secs_f64().max(f64::EPSILON),
        latency_p50_ms: percentile(0.5),
        latency_p99_ms: percentile(0.99),
    })
}

/// One RESP SET command of a [`VALUE_BYTES`]-byte value.
fn set_command(key: &str, value: &str) -> String {
    format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    )
}

/// Every update's `(latency, when it finished)`.
fn client_loop(
    addr: SocketAddr,
    client: usize,
    updates: u64,
    deadline: Instant,
) -> anyhow::Result<Vec<(Duration, Instant)>> {
    let stream = connect_within(addr, Duration::from_millis(CONNECT_WITHIN_MS))?;
    stream.set_read_timeout(Some(Duration::from_millis(REPLY_TIMEOUT_MS)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let value = "v".repeat(VALUE_BYTES);
    let mut done = Vec::with_capacity(updates as usize);
    for i in 0..updates {
        if Instant::now() >= deadline {
            break;
        }
        let command = set_command(&format!("bench:{client}:{}", i % KEYS_PER_CLIENT), &value);
        let sent = Instant::now();
        writer.write_all(command.as_bytes())?;
        let mut line = Vec::new();
        (&mut reader)
            .take(REPLY_LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("waiting for the reply to update {i} of client {client}"))?;
        if line != b"+OK\r\n" {
            bail!(
                "update {i} of client {client} at {addr} was answered {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        let finished = Instant::now();
        done.push((finished - sent, finished));
    }
    Ok(done)
}

/// Connect to `addr`, retrying while it refuses (a server that was just started binds its RESP
/// port a moment after its process runs), for at most `within`.
pub fn connect_within(addr: SocketAddr, within: Duration) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("connecting to {addr} for {within:?}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(CONNECT_RETRY_MS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_command_is_a_resp_array_of_three_bulk_strings() {
        assert_eq!(
            set_command("k", "vv"),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n"
        );
    }

    #[test]
    fn a_run_asks_for_a_bounded_number_of_clients() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let spec = LoadSpec {
            clients: CLIENTS_MAX + 1,
            updates: 1,
            within: Duration::from_secs(1),
        };
        let error = run_load(addr, spec).expect_err("too many clients");
        assert!(error.to_string().contains("clients must be"), "{error}");
    }
}
