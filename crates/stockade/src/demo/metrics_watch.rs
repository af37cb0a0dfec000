//! What the demo learns from the servers' Prometheus endpoints: it reads every server's metrics a
//! few times a second (a plain HTTP GET on loopback) and keeps, per reading, what Prime detected:
//! leader suspicions, completed view changes, the last proven view, and misbehaviour reports by
//! culprit (`stockade_kv::server` exports them).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest metrics page read, in bytes.
pub const METRICS_PAGE_BYTES_MAX: u64 = 1024 * 1024;
/// How long one reading of one endpoint may take.
pub const READ_TIMEOUT_MS: u64 = 500;
/// Time between two readings of every endpoint.
pub const READ_PERIOD_MS: u64 = 100;
/// Readings kept (at [`READ_PERIOD_MS`], about 50 minutes).
pub const READINGS_MAX: usize = 30_000;

/// Fetch the text of the Prometheus page at `addr`, or `None` when it does not answer in time.
pub fn fetch_page(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_millis(READ_TIMEOUT_MS);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut page = String::new();
    stream
        .take(METRICS_PAGE_BYTES_MAX)
        .read_to_string(&mut page)
        .ok()?;
    let body = page.split_once("\r\n\r\n")?.1;
    Some(body.to_string())
}

/// The sum of every sample of metric `name` whose labels include each of `labels` (`key="value"`
/// pairs), in a Prometheus text page.
pub fn metric_sum(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels.iter().all(|(key, value)| {
                    label_text
                        .split(',')
                        .any(|pair| pair == format!("{key}=\"{value}\""))
                });
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// What one server had detected at one reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerDetections {
    /// Whether its endpoint answered.
    pub answered: bool,
    /// Times it suspected the leader (`kv_leader_suspicions_total`).
    pub suspicions: u64,
    /// View changes it saw proven (`kv_view_changes_total`).
    pub view_changes: u64,
    /// The last view proven there (`kv_proven_view`; 0 before any view change).
    pub proven_view: u64,
    /// Misbehaviour reports it made, indexed by the server they name.
    pub reports_against: Vec<u64>,
}

impl ServerDetections {
    fn read(page: &str, servers: usize) -> ServerDetections {
        let count = |name: &str, labels: &[(&str, &str)]| metric_sum(page, name, labels) as u64;
        ServerDetections {
            answered: true,
            suspicions: count("kv_leader_suspicions_total", &[]),
            view_changes: count("kv_view_changes_total", &[]),
            proven_view: count("kv_proven_view", &[]),
            reports_against: (0..servers)
                .map(|culprit| {
                    count(
                        "kv_misbehaviour_reports_total",
                        &[("culprit", &culprit.to_string())],
                    )
                })
                .collect(),
        }
    }
}

/// Every server's detections at one moment.
#[derive(Clone, Debug)]
pub struct Reading {
    /// Time since the demo's start.
    pub at: Duration,
    /// One entry per server, in server order.
    pub servers: Vec<ServerDetections>,
}

impl Reading {
    /// The highest view proven at any server: the cluster's view, as far as it is known.
    pub fn view(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| s.proven_view)
            .max()
            .unwrap_or(0)
    }
    /// Leader suspicions at every server together.
    pub fn suspicions(&self) -> u64 {
        self.servers.iter().map(|s| s.suspicions).sum()
    }
    /// Misbehaviour reports naming `culprit`, at every server together.
    pub fn reports_against(&self, culprit: u32) -> u64 {
        self.servers
            .iter()
            .filter_map(|s| s.reports_against.get(culprit as usize))
            .sum()
    }
    /// Servers that made at least one misbehaviour report naming `culprit`.
    pub fn servers_reporting(&self, culprit: u32) -> usize {
        self.servers
            .iter()
            .filter(|s| {
                s.reports_against
                    .get(culprit as usize)
                    .is_some_and(|r| *r > 0)
            })
            .count()
    }
}

/// A thread reading every server's metrics until stopped.
pub struct MetricsWatch {
    stop: Arc<AtomicBool>,
    readings: Arc<Mutex<Vec<Reading>>>,
    thread: JoinHandle<()>,
}

impl MetricsWatch {
    /// Start reading `endpoints` (one per server) every [`READ_PERIOD_MS`]; times are measured
    /// from `start`.
    pub fn start(endpoints: Vec<SocketAddr>, start: Instant) -> MetricsWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let readings = Arc::new(Mutex::new(Vec::new()));
        let (stopped, shared) = (Arc::clone(&stop), Arc::clone(&readings));
        let thread = std::thread::spawn(move || {
            let mut taken = 0;
            while !stopped.load(Ordering::Relaxed) && taken < READINGS_MAX {
                let servers = endpoints
                    .iter()
                    .map(|addr| {
                        fetch_page(*addr)
                            .map(|page| ServerDetections::read(&page, endpoints.len()))
                            .unwrap_or_default()
                    })
                    .collect();
                let reading = Reading {
                    at: start.elapsed(),
                    servers,
                };
                lock(&shared).push(reading);
                taken += 1;
                std::thread::sleep(Duration::from_millis(READ_PERIOD_MS));
            }
        });
        MetricsWatch {
            stop,
            readings,
            thread,
        }
    }

    /// The latest reading, if any.
    pub fn latest(&self) -> Option<Reading> {
        lock(&self.readings).last().cloned()
    }

    /// Stop and return every reading, oldest first.
    pub fn finish(self) -> Vec<Reading> {
        self.stop.store(true, Ordering::Relaxed);
        // A panicked reader leaves the readings it took.
        let _ = self.thread.join();
        std::mem::take(&mut *lock(&self.readings))
    }
}

/// The readings, even if a holder panicked (they are only ever appended to).
fn lock(readings: &Mutex<Vec<Reading>>) -> std::sync::MutexGuard<'_, Vec<Reading>> {
    readings
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE kv_misbehaviour_reports_total counter\n\
        kv_misbehaviour_reports_total{participant=\"0\",culprit=\"1\",kind=\"pre_prepare_equivocation\"} 2\n\
        kv_misbehaviour_reports_total{participant=\"0\",culprit=\"3\",kind=\"lower_summary\"} 5\n\
        kv_leader_suspicions_total{participant=\"0\"} 3\n\
        kv_proven_view{participant=\"0\"} 2\n\
        kv_view_changes_total 2\n";

    #[test]
    fn sums_the_samples_whose_labels_match() {
        assert_eq!(metric_sum(PAGE, "kv_misbehaviour_reports_total", &[]), 7.0);
        assert_eq!(
            metric_sum(PAGE, "kv_misbehaviour_reports_total", &[("culprit", "1")]),
            2.0
        );
        assert_eq!(metric_sum(PAGE, "kv_view_changes_total", &[]), 2.0);
        assert_eq!(metric_sum(PAGE, "kv_absent_total", &[]), 0.0);
        let seen = ServerDetections::read(PAGE, 4);
        assert_eq!(
            seen,
            ServerDetections {
                answered: true,
                suspicions: 3,
                view_changes: 2,
                proven_view: 2,
                reports_against: vec![0, 2, 0, 5],
            }
        );
        let reading = Reading {
            at: Duration::ZERO,
            servers: vec![seen, ServerDetections::default()],
        };
        assert_eq!(reading.view(), 2);
        assert_eq!(
            (reading.reports_against(3), reading.servers_reporting(3)),
            (5, 1)
        );
    }
}
