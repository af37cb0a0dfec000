//! Per-interval time series of the simulator's own counters (messages sent and delivered, bytes
//! sent, drops), recorded only when a scenario asks with [`crate::World::record_counter_series`].
//!
//! The event loop compares one integer per event; the counters are read once per interval, so the
//! hot path keeps bumping plain fields.

use std::time::Duration;

use stockade_core::Time;

use crate::metrics::{Metrics, SimCounters};
use crate::series::SeriesId;

/// Reads one counter.
type ReadCounter = fn(&SimCounters) -> u64;

/// The counters sampled, with the name of the series each one feeds.
const SAMPLED_COUNTERS: [(&str, ReadCounter); 4] = [
    ("sim_messages_sent", |c| c.messages_sent),
    ("sim_messages_delivered", |c| c.messages_delivered),
    ("sim_bytes_sent", |c| c.bytes_sent),
    ("sim_dropped", SimCounters::dropped),
];

/// Adds each counter's growth over an interval to the series point of that interval.
pub(crate) struct CounterSampler {
    interval_ns: u64,
    /// Start of the interval being accumulated.
    interval_start_ns: u64,
    /// The first event time that belongs to a later interval.
    next_interval_ns: u64,
    /// Counters when the growth was last added.
    flushed: SimCounters,
    series: [SeriesId; SAMPLED_COUNTERS.len()],
}

impl CounterSampler {
    /// Declare the series in `metrics` and start the interval holding `now`.
    pub fn new(metrics: &mut Metrics, interval: Duration, now: Time) -> CounterSampler {
        let interval_ns = (interval.as_nanos().min(u64::MAX as u128) as u64).max(1);
        let series = SAMPLED_COUNTERS.map(|(name, _)| metrics.series_per_interval(name, interval));
        let interval_start_ns = now.as_nanos() / interval_ns * interval_ns;
        CounterSampler {
            interval_ns,
            interval_start_ns,
            next_interval_ns: interval_start_ns.saturating_add(interval_ns),
            flushed: metrics.sim,
            series,
        }
    }

    /// Called before the event at `at` is handled: when it opens a later interval, everything
    /// counted so far belongs to the current one.
    #[inline]
    pub fn before_event(&mut self, metrics: &mut Metrics, at: Time) {
        if at.as_nanos() >= self.next_interval_ns {
            self.flush(metrics);
            self.interval_start_ns = at.as_nanos() / self.interval_ns * self.interval_ns;
            self.next_interval_ns = self.interval_start_ns.saturating_add(self.interval_ns);
        }
    }

    /// Add the growth since the last flush to the current interval (a run call returning, so the
    /// report sees every event processed).
    pub fn flush(&mut self, metrics: &mut Metrics) {
        let at = Time::from_nanos(self.interval_start_ns);
        let now = metrics.sim;
        for ((_, read), id) in SAMPLED_COUNTERS.iter().zip(self.series) {
            metrics.series_add(id, at, read(&now).saturating_sub(read(&self.flushed)));
        }
        self.flushed = now;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::SimConfig;
    use crate::link::LinkSpec;
    use crate::scale::TrafficNode;
    use crate::topology::{Adjacency, Topology};
    use crate::world::World;

    #[test]
    fn world_records_counter_series_only_when_asked() {
        let adjacency = Arc::new(Adjacency::random_out(50, 4, 9).expect("valid adjacency"));
        let spec = LinkSpec::wan(Duration::from_millis(50), 10_000_000);
        let build = || {
            let shared = adjacency.clone();
            World::new(
                SimConfig::new("sampler-test", 9),
                Topology::sparse(adjacency.clone(), spec),
                move |_, _| TrafficNode::new(shared.clone(), 2),
            )
            .expect("world")
        };
        let mut quiet = build();
        quiet.run_until(Time::from_secs(3)).expect("runs");
        assert!(quiet.metrics().series().is_empty(), "off unless asked");

        let mut sampled = build();
        sampled.record_counter_series(Duration::from_secs(1));
        sampled.run_until(Time::from_millis(2_500)).expect("runs");
        sampled.run_until(Time::from_secs(3)).expect("runs");
        assert_eq!(
            sampled.digest(),
            quiet.digest(),
            "sampling changes nothing simulated"
        );
        let sent = sampled
            .metrics()
            .series_named("sim_messages_sent")
            .expect("declared");
        assert_eq!(
            sent.len(),
            3,
            "seconds 0, 1 and 2 (the last one over two run calls)"
        );
        let total: f64 = sent.points().iter().map(|&(_, v)| v).sum();
        assert_eq!(total, sampled.metrics().sim.messages_sent as f64);
        assert!(total > 0.0, "traffic happened");
    }

    #[test]
    fn growth_lands_in_the_interval_it_happened_in() {
        let mut metrics = Metrics::default();
        let mut sampler = CounterSampler::new(&mut metrics, Duration::from_secs(1), Time::ZERO);
        for (at_ms, delivered) in [(100, 1), (900, 2), (1_000, 4), (3_500, 8)] {
            sampler.before_event(&mut metrics, Time::from_millis(at_ms));
            metrics.sim.messages_delivered += delivered;
        }
        sampler.flush(&mut metrics);
        let series = metrics
            .series_named("sim_messages_delivered")
            .expect("declared");
        let values: Vec<f64> = series.points().iter().map(|&(_, v)| v).collect();
        assert_eq!(values, vec![3.0, 4.0, 0.0, 8.0]);
        let sent = metrics.series_named("sim_messages_sent").expect("declared");
        assert!(sent.points().iter().all(|&(_, v)| v == 0.0));
    }
}
