//! The demo's timeline (a warm-up, then three phases of equal length: fault-free, a delaying
//! leader, an equivocating leader) and the update figures of any stretch of it.

use std::ops::Range;
use std::time::Duration;

use serde_json::{json, Value};

use super::workload::Update;

/// Time the cluster gets to start and elect its first leader before the fault-free phase.
pub const WARM_UP: Duration = Duration::from_secs(2);

/// When each phase runs, measured from the moment the demo starts the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The length of each phase.
    pub phase: Duration,
}

impl Timeline {
    /// The fault-free phase.
    pub fn fault_free(&self) -> Range<Duration> {
        WARM_UP..WARM_UP + self.phase
    }
    /// The phase in which the first leader delays its pre-prepares.
    pub fn delaying_leader(&self) -> Range<Duration> {
        WARM_UP + self.phase..WARM_UP + 2 * self.phase
    }
    /// The phase in which the second leader equivocates.
    pub fn equivocating_leader(&self) -> Range<Duration> {
        WARM_UP + 2 * self.phase..self.end()
    }
    /// When the workload stops.
    pub fn end(&self) -> Duration {
        WARM_UP + 3 * self.phase
    }
}

/// Throughput and latency of the updates sent in one stretch of time.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateFigures {
    /// Acknowledged updates sent in the stretch.
    pub updates: u64,
    /// Of them, per second of the stretch.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest update, ms.
    pub max_ms: f64,
}

impl UpdateFigures {
    /// Figures of the `updates` sent within `window`.
    pub fn of(updates: &[Update], window: Range<Duration>) -> UpdateFigures {
        let mut latencies_ms: Vec<f64> = updates
            .iter()
            .filter(|u| window.contains(&u.sent))
            .map(|u| u.latency.as_secs_f64() * 1e3)
            .collect();
        latencies_ms.sort_by(f64::total_cmp);
        let quantile = |q: f64| match latencies_ms.len() {
            0 => 0.0,
            len => latencies_ms[((len - 1) as f64 * q).round() as usize],
        };
        let seconds = (window.end.saturating_sub(window.start))
            .as_secs_f64()
            .max(1e-9);
        UpdateFigures {
            updates: latencies_ms.len() as u64,
            per_sec: latencies_ms.len() as f64 / seconds,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            max_ms: latencies_ms.last().copied().unwrap_or(0.0),
        }
    }

    /// As a JSON object.
    pub fn json(&self) -> Value {
        json!({
            "updates": self.updates,
            "updates_per_s": self.per_sec,
            "latency_p50_ms": self.p50_ms,
            "latency_p99_ms": self.p99_ms,
            "latency_max_ms": self.max_ms,
        })
    }

    /// One line of the report.
    pub fn describe(&self) -> String {
        format!(
            "{} updates, {:.0} per second, latency p50 {:.1} ms, p99 {:.1} ms, worst {:.0} ms",
            self.updates, self.per_sec, self.p50_ms, self.p99_ms, self.max_ms
        )
    }

    /// What these figures cost against `baseline`, in words.
    pub fn cost_against(&self, baseline: &UpdateFigures) -> String {
        let throughput_change = if baseline.per_sec > 0.0 {
            (self.per_sec / baseline.per_sec - 1.0) * 100.0
        } else {
            0.0
        };
        format!(
            "p50 {:+.1} ms, p99 {:+.1} ms, worst update {:.0} ms (fault-free worst {:.0} ms), throughput {throughput_change:+.0}%",
            self.p50_ms - baseline.p50_ms,
            self.p99_ms - baseline.p99_ms,
            self.max_ms,
            baseline.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(sent_ms: u64, latency_ms: u64) -> Update {
        Update {
            sent: Duration::from_millis(sent_ms),
            latency: Duration::from_millis(latency_ms),
        }
    }

    #[test]
    fn phases_follow_the_warm_up_back_to_back() {
        let t = Timeline {
            phase: Duration::from_secs(3),
        };
        assert_eq!(t.fault_free(), WARM_UP..WARM_UP + Duration::from_secs(3));
        assert_eq!(t.delaying_leader().start, t.fault_free().end);
        assert_eq!(t.equivocating_leader().start, t.delaying_leader().end);
        assert_eq!(t.equivocating_leader().end, t.end());
    }

    #[test]
    fn figures_count_only_the_updates_sent_in_the_window() {
        let updates = [
            update(500, 900),
            update(1_000, 2),
            update(1_500, 4),
            update(2_000, 6),
        ];
        let figures = UpdateFigures::of(
            &updates,
            Duration::from_millis(1_000)..Duration::from_millis(2_000),
        );
        assert_eq!(figures.updates, 2);
        assert_eq!(figures.per_sec, 2.0);
        assert_eq!((figures.p50_ms, figures.max_ms), (4.0, 4.0));
        let empty = UpdateFigures::of(&updates, Duration::ZERO..Duration::from_millis(100));
        assert_eq!((empty.updates, empty.p99_ms), (0, 0.0));
    }
}
