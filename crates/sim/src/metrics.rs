//! Metrics of one run: the simulator's own counters, scenario counters, latency histograms with
//! percentiles, and time series, written as CSV.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use stockade_core::Time;

use crate::series::{write_series_csv, SeriesId, SeriesKind, TimeSeries};

/// Counters the simulator keeps itself (fields, not map entries, because the hot path bumps them).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SimCounters {
    /// Events taken off the queue.
    pub events: u64,
    /// Packets handed to the network (each destination counts once).
    pub messages_sent: u64,
    /// Bytes of those packets, per-packet overhead included.
    pub bytes_sent: u64,
    /// Messages handed to a receiving protocol.
    pub messages_delivered: u64,
    /// Extra copies the links created.
    pub duplicated: u64,
    /// Dropped: sender and receiver partitioned.
    pub dropped_partitioned: u64,
    /// Dropped: no link in a sparse topology.
    pub dropped_no_link: u64,
    /// Dropped: a link's drop-tail buffer was full.
    pub dropped_link_buffer: u64,
    /// Dropped: a site uplink's buffer was full.
    pub dropped_site_buffer: u64,
    /// Dropped: random link loss.
    pub dropped_loss: u64,
    /// Dropped: the receiver was down.
    pub dropped_receiver_down: u64,
    /// Dropped: the receiver's inbox was at `inbox_len_max`.
    pub dropped_inbox_full: u64,
    /// Dropped: an adversary discarded it.
    pub dropped_by_adversary: u64,
    /// Received bytes that did not decode under the configured limits (dropped, never delivered).
    pub decode_failures: u64,
    /// Sends lost because the persist they waited on was lost in a crash.
    pub held_sends_lost: u64,
    /// Timer handlers run.
    pub timers_fired: u64,
    /// Persist batches that became durable.
    pub persists_completed: u64,
    /// Persist batches lost in a crash.
    pub persists_lost: u64,
    /// Application outputs delivered.
    pub outputs: u64,
    /// Outputs not kept because the output log was at `output_log_len_max`.
    pub outputs_not_logged: u64,
    /// Requests dropped because their node was down.
    pub requests_dropped: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Node restarts.
    pub restarts: u64,
    /// Total virtual CPU time charged, in nanoseconds.
    pub cpu_busy_ns: u64,
}

impl SimCounters {
    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_partitioned
            + self.dropped_no_link
            + self.dropped_link_buffer
            + self.dropped_site_buffer
            + self.dropped_loss
            + self.dropped_receiver_down
            + self.dropped_inbox_full
            + self.dropped_by_adversary
    }

    /// Every counter as `(name, value)`, in a fixed order.
    pub fn entries(&self) -> [(&'static str, u64); 24] {
        [
            ("events", self.events),
            ("messages_sent", self.messages_sent),
            ("bytes_sent", self.bytes_sent),
            ("messages_delivered", self.messages_delivered),
            ("duplicated", self.duplicated),
            ("dropped_partitioned", self.dropped_partitioned),
            ("dropped_no_link", self.dropped_no_link),
            ("dropped_link_buffer", self.dropped_link_buffer),
            ("dropped_site_buffer", self.dropped_site_buffer),
            ("dropped_loss", self.dropped_loss),
            ("dropped_receiver_down", self.dropped_receiver_down),
            ("dropped_inbox_full", self.dropped_inbox_full),
            ("dropped_by_adversary", self.dropped_by_adversary),
            ("decode_failures", self.decode_failures),
            ("held_sends_lost", self.held_sends_lost),
            ("timers_fired", self.timers_fired),
            ("persists_completed", self.persists_completed),
            ("persists_lost", self.persists_lost),
            ("outputs", self.outputs),
            ("outputs_not_logged", self.outputs_not_logged),
            ("requests_dropped", self.requests_dropped),
            ("crashes", self.crashes),
            ("restarts", self.restarts),
            ("cpu_busy_ns", self.cpu_busy_ns),
        ]
    }
}

/// Sub-buckets per power of two: values are kept to within 1/128 (0.8%).
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
const BUCKETS: usize = (SUB_BUCKETS + (64 - SUB_BUCKET_BITS as u64) * SUB_BUCKETS) as usize;

/// A log-linear histogram of `u64` values (nanoseconds, bytes, hops): fixed 58 KiB once used,
/// relative error at most 1/128, exact count, sum, min and max.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: Vec::new(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB_BUCKETS {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros() as u64; // >= SUB_BUCKET_BITS
    let shift = exponent - SUB_BUCKET_BITS as u64;
    let sub = (v >> shift) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + shift * SUB_BUCKETS + sub) as usize
}

/// The largest value that falls in bucket `b`.
fn bucket_high(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB_BUCKETS {
        return b;
    }
    let shift = (b - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (b - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram (allocates on the first record).
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Add one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        self.buckets[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// Largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean value (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` in `[0, 1]`: an upper bound within 1/128 of the true value, never
    /// above the maximum recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high(b).min(self.max).max(self.min);
            }
        }
        self.max
    }

    /// The cumulative distribution: for each non-empty bucket in increasing order, `(value,
    /// fraction of values <= value)`, values being bucket tops capped at the maximum recorded
    /// (at most one point per bucket, 7,296 at most).
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut seen = 0u64;
        let mut points = Vec::new();
        for (b, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            seen += n;
            let value = bucket_high(b).min(self.max).max(self.min);
            points.push((value, seen as f64 / self.count as f64));
        }
        points
    }

    /// Merge another histogram into this one.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// All metrics of a run: the simulator's counters, the scenario's named counters, histograms
/// and time series.
#[derive(Clone, Default, Debug)]
pub struct Metrics {
    /// The simulator's own counters.
    pub sim: SimCounters,
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, Histogram>,
    series: Vec<TimeSeries>,
}

impl Metrics {
    /// Add `n` to the scenario counter `name`.
    pub fn add(&mut self, name: &str, n: u64) {
        match self.counters.get_mut(name) {
            Some(c) => *c += n,
            None => {
                self.counters.insert(name.to_string(), n);
            }
        }
    }

    /// The scenario counter `name` (0 if never added to).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Record `value` in histogram `name`.
    pub fn record(&mut self, name: &str, value: u64) {
        match self.histograms.get_mut(name) {
            Some(h) => h.record(value),
            None => {
                let mut h = Histogram::new();
                h.record(value);
                self.histograms.insert(name.to_string(), h);
            }
        }
    }

    /// Histogram `name`, if anything was recorded in it.
    pub fn histogram(&self, name: &str) -> Option<&Histogram> {
        self.histograms.get(name)
    }

    /// Scenario counters, by name.
    pub fn counters(&self) -> &BTreeMap<String, u64> {
        &self.counters
    }

    /// Histograms, by name.
    pub fn histograms(&self) -> &BTreeMap<String, Histogram> {
        &self.histograms
    }

    /// Declare series `name` summing what is added per `interval` of simulated time
    /// (`metrics.series_per_interval("delivered", Duration::from_secs(1))` for a rate per second),
    /// keeping [`crate::SERIES_POINTS_MAX_DEFAULT`] points. A name already declared returns its
    /// existing handle, kind unchanged.
    pub fn series_per_interval(&mut self, name: &str, interval: Duration) -> SeriesId {
        self.declare_series(name, SeriesKind::SumPerInterval { interval })
    }

    /// Declare series `name` of sampled points, keeping [`crate::SERIES_POINTS_MAX_DEFAULT`]. A
    /// name already declared returns its existing handle, kind unchanged.
    pub fn series_of_samples(&mut self, name: &str) -> SeriesId {
        self.declare_series(name, SeriesKind::Samples)
    }

    fn declare_series(&mut self, name: &str, kind: SeriesKind) -> SeriesId {
        if let Some(i) = self.series.iter().position(|s| s.name() == name) {
            return SeriesId(i as u32);
        }
        self.series.push(TimeSeries::new(name, kind));
        SeriesId(self.series.len() as u32 - 1)
    }

    /// Keep at most `points_max` points of series `id` (points already beyond are dropped and
    /// counted).
    pub fn set_series_points_max(&mut self, id: SeriesId, points_max: usize) {
        if let Some(s) = self.series.get_mut(id.0 as usize) {
            s.set_points_max(points_max);
        }
    }

    /// Add `n` to series `id` at simulated time `at`: O(1). A handle from another `Metrics` that
    /// names no series here is ignored.
    #[inline]
    pub fn series_add(&mut self, id: SeriesId, at: Time, n: u64) {
        if let Some(s) = self.series.get_mut(id.0 as usize) {
            s.add(at, n);
        }
    }

    /// Record `value` in series `id` at simulated time `at`: O(1).
    #[inline]
    pub fn series_sample(&mut self, id: SeriesId, at: Time, value: f64) {
        if let Some(s) = self.series.get_mut(id.0 as usize) {
            s.sample(at, value);
        }
    }

    /// Every declared series, in declaration order.
    pub fn series(&self) -> &[TimeSeries] {
        &self.series
    }

    /// Series `name`, if declared.
    pub fn series_named(&self, name: &str) -> Option<&TimeSeries> {
        self.series.iter().find(|s| s.name() == name)
    }

    /// Write `counters.csv` (`name,value`, simulator counters first), `histograms.csv`
    /// (`name,count,min,mean,p50,p90,p99,p999,max`), `series.csv` and `series_summary.csv` (see
    /// [`TimeSeries`]) into `dir`.
    pub fn write_csv(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("counters.csv"))?);
        writeln!(out, "name,value")?;
        for (name, v) in self.sim.entries() {
            writeln!(out, "{name},{v}")?;
        }
        for (name, v) in &self.counters {
            writeln!(out, "{},{v}", csv_field(name))?;
        }
        out.flush()?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("histograms.csv"))?);
        writeln!(out, "name,count,min,mean,p50,p90,p99,p999,max")?;
        for (name, h) in &self.histograms {
            writeln!(
                out,
                "{},{},{},{:.1},{},{},{},{},{}",
                csv_field(name),
                h.count(),
                h.min(),
                h.mean(),
                h.quantile(0.5),
                h.quantile(0.9),
                h.quantile(0.99),
                h.quantile(0.999),
                h.max()
            )?;
        }
        out.flush()?;
        write_series_csv(&self.series, dir)
    }
}

/// Quote a CSV field when it needs it.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// This process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`), where the OS
/// reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_128th() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 5_000u64), (0.9, 9_000), (0.99, 9_900)] {
            let got = h.quantile(q);
            assert!(
                got >= exact && got <= exact + exact / 16,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.min(), 1);
        assert_eq!(h.count(), 10_000);
        assert!((h.mean() - 5_000.5).abs() < 1e-9);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn cdf_rises_to_one_at_the_maximum() {
        let mut h = Histogram::new();
        for v in [10u64, 10, 20, 1_000] {
            h.record(v);
        }
        assert_eq!(h.cdf(), vec![(10, 0.5), (20, 0.75), (1_000, 1.0)]);
        assert!(Histogram::new().cdf().is_empty());
    }

    #[test]
    fn buckets_cover_the_whole_range() {
        for v in [0u64, 1, 127, 128, 129, 1 << 40, u64::MAX] {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(bucket_high(b) >= v, "{v} fits under its bucket's top");
        }
    }

    #[test]
    fn csv_files_are_written() {
        let dir = std::env::temp_dir().join(format!("stockade-sim-metrics-{}", std::process::id()));
        let mut m = Metrics::default();
        m.sim.events = 3;
        m.add("commits", 2);
        m.record("latency_ns", 100);
        let delivered = m.series_per_interval("delivered", Duration::from_secs(1));
        assert_eq!(
            m.series_per_interval("delivered", Duration::from_secs(9)),
            delivered
        );
        m.series_add(delivered, Time::from_millis(1_500), 4);
        m.write_csv(&dir).expect("writable temp dir");
        let series = std::fs::read_to_string(dir.join("series.csv")).expect("written");
        assert_eq!(
            series,
            "series,time_s,value\ndelivered,0,0\ndelivered,1,4\n"
        );
        let summary = std::fs::read_to_string(dir.join("series_summary.csv")).expect("written");
        assert!(
            summary.contains("delivered,sum_per_interval,1,2,100000,0"),
            "{summary}"
        );
        let counters = std::fs::read_to_string(dir.join("counters.csv")).expect("written");
        assert!(counters.contains("events,3") && counters.contains("commits,2"));
        let hist = std::fs::read_to_string(dir.join("histograms.csv")).expect("written");
        assert!(hist
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("latency_ns,1,100")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
