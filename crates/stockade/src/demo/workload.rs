//! The demo's workload: closed-loop Redis clients that write through the voting proxy (SET of a
//! fresh key, its value derived from the key), read back one of their own acknowledged writes now
//! and then (GET, checked), and remember every acknowledged write; afterwards [`verify`] reads
//! every one of them back (MGET in batches) to find any write the cluster lost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::resp_client::{RespClient, RespReply};

/// Bytes of each written value.
pub const VALUE_BYTES: usize = 100;
/// How long one command may wait for its reply (the proxy itself retries for about 3 s).
pub const REPLY_TIMEOUT_MS: u64 = 10_000;
/// How long a client keeps trying to reach a proxy that was just started.
pub const CONNECT_WITHIN_MS: u64 = 10_000;
/// Pause between two connection attempts.
const CONNECT_RETRY_MS: u64 = 20;
/// Reconnections one client makes (after a timeout or a broken connection) before it gives up.
pub const RECONNECTS_MAX: u32 = 5;
/// A client reads back one of its writes after every this many writes.
pub const READ_BACK_EVERY: u64 = 4;
/// Keys read by one MGET of the final verification: its reply (about 130 B per key) must fit in
/// one signed Prime reply, and 200 keys' (26 KB) do not reach f+1 matching votes.
pub const VERIFY_BATCH_KEYS: usize = 50;
/// Writes one client makes at most (a bound on its records: about 10 MB).
pub const WRITES_PER_CLIENT_MAX: usize = 100_000;

/// The value the workload writes under `key`.
pub fn value_of(key: &str) -> Vec<u8> {
    let mut value = format!("{key}=").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    value
}

/// One acknowledged update.
#[derive(Clone, Copy, Debug)]
pub struct Update {
    /// When it was sent, since the demo started.
    pub sent: Duration,
    /// How long until the proxy acknowledged it.
    pub latency: Duration,
}

/// What the clients did and saw.
#[derive(Debug, Default)]
pub struct WorkloadRecord {
    /// Every acknowledged update.
    pub updates: Vec<Update>,
    /// The keys of the acknowledged updates (their values are [`value_of`] the key).
    pub acknowledged_keys: Vec<String>,
    /// Reads of a client's own acknowledged write that returned exactly what it wrote.
    pub reads_checked: u64,
    /// Reads that returned something else (must stay empty).
    pub wrong_answers: Vec<String>,
    /// Commands answered with an error, or not answered in time.
    pub failed_commands: Vec<String>,
}

impl WorkloadRecord {
    fn absorb(&mut self, other: WorkloadRecord) {
        self.updates.extend(other.updates);
        self.acknowledged_keys.extend(other.acknowledged_keys);
        self.reads_checked += other.reads_checked;
        self.wrong_answers.extend(other.wrong_answers);
        self.failed_commands.extend(other.failed_commands);
    }
}

/// Run `clients` closed-loop clients through `proxy` until `until` after `start`.
pub fn run(
    proxy: SocketAddr,
    clients: usize,
    start: Instant,
    until: Duration,
) -> anyhow::Result<WorkloadRecord> {
    let workers: Vec<_> = (0..clients)
        .map(|client| std::thread::spawn(move || client_loop(proxy, client, start, until)))
        .collect();
    let mut all = WorkloadRecord::default();
    for worker in workers {
        let record = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a workload client thread panicked"))??;
        all.absorb(record);
    }
    all.updates.sort_by_key(|u| u.sent);
    Ok(all)
}

/// Connect to `proxy`, retrying while it refuses for at most [`CONNECT_WITHIN_MS`].
pub fn connect(proxy: SocketAddr) -> anyhow::Result<RespClient> {
    let deadline = Instant::now() + Duration::from_millis(CONNECT_WITHIN_MS);
    loop {
        match RespClient::connect(proxy, Duration::from_millis(REPLY_TIMEOUT_MS)) {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("the voting proxy does not accept connections")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(CONNECT_RETRY_MS)),
        }
    }
}

fn client_loop(
    proxy: SocketAddr,
    client: usize,
    start: Instant,
    until: Duration,
) -> anyhow::Result<WorkloadRecord> {
    let mut record = WorkloadRecord::default();
    let mut connection = connect(proxy)?;
    let mut reconnects = 0;
    let mut writes = 0u64;
    while start.elapsed() < until && record.acknowledged_keys.len() < WRITES_PER_CLIENT_MAX {
        writes += 1;
        let key = format!("demo:{client}:{writes}");
        let sent = start.elapsed();
        let reply = connection.command(&[b"SET", key.as_bytes(), &value_of(&key)]);
        let latency = start.elapsed().saturating_sub(sent);
        let broken = match reply {
            Ok(RespReply::Status(status)) if status == "OK" => {
                record.updates.push(Update { sent, latency });
                record.acknowledged_keys.push(key);
                false
            }
            Ok(other) => {
                record
                    .failed_commands
                    .push(format!("SET {key} answered {other:?}"));
                false
            }
            Err(e) => {
                record.failed_commands.push(format!("SET {key}: {e}"));
                true
            }
        };
        let broken = broken
            || (writes.is_multiple_of(READ_BACK_EVERY)
                && read_back(&mut connection, &mut record).is_err());
        if broken {
            // The connection may be out of step with its replies: start a new one.
            reconnects += 1;
            if reconnects > RECONNECTS_MAX {
                anyhow::bail!("client {client} lost its connection {reconnects} times");
            }
            connection = connect(proxy)?;
        }
    }
    Ok(record)
}

/// Read back this client's latest acknowledged write; `Err` when the connection broke.
fn read_back(connection: &mut RespClient, record: &mut WorkloadRecord) -> Result<(), ()> {
    let Some(key) = record.acknowledged_keys.last().cloned() else {
        return Ok(());
    };
    match connection.command(&[b"GET", key.as_bytes()]) {
        Ok(RespReply::Bulk(Some(value))) if value == value_of(&key) => {
            record.reads_checked += 1;
            Ok(())
        }
        Ok(RespReply::Error(e)) => {
            record.failed_commands.push(format!("GET {key}: {e}"));
            Ok(())
        }
        Ok(other) => {
            record
                .wrong_answers
                .push(format!("GET {key} answered {other:?}"));
            Ok(())
        }
        Err(e) => {
            record.failed_commands.push(format!("GET {key}: {e}"));
            Err(())
        }
    }
}

/// What the final read-back found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Acknowledged writes read back with their value.
    pub intact: u64,
    /// Acknowledged writes missing or changed (must stay empty).
    pub lost: Vec<String>,
    /// Batches of acknowledged writes that could not be read back (must stay empty).
    pub unread: Vec<String>,
}

/// Read every key of `acknowledged_keys` back through `proxy` and compare it with what was written.
pub fn verify(proxy: SocketAddr, acknowledged_keys: &[String]) -> anyhow::Result<Verification> {
    let mut connection = connect(proxy)?;
    let mut found = Verification::default();
    for batch in acknowledged_keys.chunks(VERIFY_BATCH_KEYS) {
        let mut command: Vec<&[u8]> = vec![b"MGET"];
        command.extend(batch.iter().map(|k| k.as_bytes()));
        let reply = connection
            .command(&command)
            .context("reading the acknowledged writes back")?;
        let values = match reply {
            RespReply::Array(values) if values.len() == batch.len() => values,
            other => {
                found.unread.push(format!(
                    "MGET of {} keys from {} answered {other:?}",
                    batch.len(),
                    batch[0]
                ));
                continue;
            }
        };
        for (key, value) in batch.iter().zip(values) {
            if value == RespReply::Bulk(Some(value_of(key))) {
                found.intact += 1;
            } else {
                found.lost.push(format!("{key}: read back {value:?}"));
            }
        }
    }
    Ok(found)
}
