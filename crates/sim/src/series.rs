//! Time series of one run: values summed per fixed interval of simulated time (messages per
//! second) or sampled points (a queue length at a moment), each bounded in length, written as CSV.
//!
//! Nothing is recorded unless a scenario declares a series; recording is O(1) through a
//! [`SeriesId`] handle, so the event loop pays nothing for series nobody asked for.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use stockade_core::Time;

use crate::metrics::csv_field;

/// Points one series keeps by default; later points are counted in
/// [`TimeSeries::points_dropped`] and not kept (a 1 s interval covers 27 simulated hours).
pub const SERIES_POINTS_MAX_DEFAULT: usize = 100_000;

/// A handle to a declared series, returned by [`crate::Metrics::series_per_interval`] and
/// [`crate::Metrics::series_of_samples`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesId(pub(crate) u32);

/// How a series turns recorded values into points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesKind {
    /// Values added within each interval `[k * interval, (k + 1) * interval)` are summed into one
    /// point at the interval's start; intervals nothing was added in are zero.
    SumPerInterval {
        /// Length of one interval (at least 1 ns).
        interval: Duration,
    },
    /// Every sample is one point, in the order recorded.
    Samples,
}

#[derive(Clone, Debug, PartialEq)]
enum Points {
    Sums { interval_ns: u64, sums: Vec<u64> },
    Samples(Vec<(Time, f64)>),
}

/// One named time series.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    name: String,
    points: Points,
    points_max: usize,
    points_dropped: u64,
}

impl TimeSeries {
    pub(crate) fn new(name: &str, kind: SeriesKind) -> TimeSeries {
        let points = match kind {
            SeriesKind::SumPerInterval { interval } => Points::Sums {
                // A zero interval would divide by zero; one nanosecond is the finest time there is.
                interval_ns: (interval.as_nanos().min(u64::MAX as u128) as u64).max(1),
                sums: Vec::new(),
            },
            SeriesKind::Samples => Points::Samples(Vec::new()),
        };
        TimeSeries {
            name: name.to_string(),
            points,
            points_max: SERIES_POINTS_MAX_DEFAULT,
            points_dropped: 0,
        }
    }

    /// The series' name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it makes points.
    pub fn kind(&self) -> SeriesKind {
        match &self.points {
            Points::Sums { interval_ns, .. } => SeriesKind::SumPerInterval {
                interval: Duration::from_nanos(*interval_ns),
            },
            Points::Samples(_) => SeriesKind::Samples,
        }
    }

    /// The most points it keeps.
    pub fn points_max(&self) -> usize {
        self.points_max
    }

    /// Values that fell beyond [`TimeSeries::points_max`] and were not kept.
    pub fn points_dropped(&self) -> u64 {
        self.points_dropped
    }

    /// Points kept.
    pub fn len(&self) -> usize {
        match &self.points {
            Points::Sums { sums, .. } => sums.len(),
            Points::Samples(samples) => samples.len(),
        }
    }

    /// True when no point is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point as `(time, value)`: in time order for interval sums (a point per interval,
    /// at its start), in recording order for samples.
    pub fn points(&self) -> Vec<(Time, f64)> {
        match &self.points {
            Points::Sums { interval_ns, sums } => sums
                .iter()
                .enumerate()
                .map(|(k, &sum)| {
                    let start_ns = (k as u64).saturating_mul(*interval_ns);
                    (Time::from_nanos(start_ns), sum as f64)
                })
                .collect(),
            Points::Samples(samples) => samples.clone(),
        }
    }

    pub(crate) fn set_points_max(&mut self, points_max: usize) {
        self.points_max = points_max;
        match &mut self.points {
            Points::Sums { sums, .. } => {
                if sums.len() > points_max {
                    self.points_dropped +=
                        sums.drain(points_max..).filter(|&s| s > 0).count() as u64;
                }
            }
            Points::Samples(samples) => {
                if samples.len() > points_max {
                    self.points_dropped += samples.drain(points_max..).count() as u64;
                }
            }
        }
    }

    /// Add `n` to the interval holding `at`; a sample series takes it as a sample of value `n`.
    #[inline]
    pub(crate) fn add(&mut self, at: Time, n: u64) {
        match &mut self.points {
            Points::Sums { interval_ns, sums } => {
                let k = at.as_nanos() / *interval_ns;
                if k >= self.points_max as u64 {
                    self.points_dropped += 1;
                    return;
                }
                let k = k as usize;
                if k >= sums.len() {
                    // Amortised O(1): each interval is filled in once, and never past points_max.
                    sums.resize(k + 1, 0);
                }
                sums[k] = sums[k].saturating_add(n);
            }
            Points::Samples(samples) => push_bounded(
                samples,
                self.points_max,
                &mut self.points_dropped,
                (at, n as f64),
            ),
        }
    }

    /// Record one point; an interval series adds `value` rounded down (negative counts as 0).
    #[inline]
    pub(crate) fn sample(&mut self, at: Time, value: f64) {
        match &mut self.points {
            Points::Sums { .. } => self.add(at, value.max(0.0) as u64),
            Points::Samples(samples) => push_bounded(
                samples,
                self.points_max,
                &mut self.points_dropped,
                (at, value),
            ),
        }
    }
}

fn push_bounded(samples: &mut Vec<(Time, f64)>, max: usize, dropped: &mut u64, point: (Time, f64)) {
    if samples.len() >= max {
        *dropped += 1;
    } else {
        samples.push(point);
    }
}

/// Write `series.csv` (`series,time_s,value`, one row per point) and `series_summary.csv`
/// (`series,kind,interval_s,points,points_max,points_dropped`) into `dir`.
pub(crate) fn write_series_csv(series: &[TimeSeries], dir: &Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("series.csv"))?);
    writeln!(out, "series,time_s,value")?;
    for s in series {
        let name = csv_field(&s.name);
        for (at, value) in s.points() {
            writeln!(out, "{name},{},{value}", at.as_secs_f64())?;
        }
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("series_summary.csv"))?);
    writeln!(
        out,
        "series,kind,interval_s,points,points_max,points_dropped"
    )?;
    for s in series {
        let (kind, interval_s) = match s.kind() {
            SeriesKind::SumPerInterval { interval } => {
                ("sum_per_interval", interval.as_secs_f64().to_string())
            }
            SeriesKind::Samples => ("samples", String::new()),
        };
        writeln!(
            out,
            "{},{kind},{interval_s},{},{},{}",
            csv_field(&s.name),
            s.len(),
            s.points_max,
            s.points_dropped
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(name: &str) -> TimeSeries {
        TimeSeries::new(
            name,
            SeriesKind::SumPerInterval {
                interval: Duration::from_secs(1),
            },
        )
    }

    #[test]
    fn interval_sums_fill_gaps_with_zero() {
        let mut s = per_second("delivered");
        s.add(Time::from_millis(100), 2);
        s.add(Time::from_millis(999), 3);
        s.add(Time::from_millis(2_000), 7);
        assert_eq!(
            s.points(),
            vec![
                (Time::ZERO, 5.0),
                (Time::from_secs(1), 0.0),
                (Time::from_secs(2), 7.0)
            ]
        );
        assert_eq!(s.points_dropped(), 0);
    }

    #[test]
    fn interval_series_stops_at_its_bound() {
        let mut s = per_second("delivered");
        s.set_points_max(3);
        for second in 0..5 {
            s.add(Time::from_secs(second), 1);
        }
        assert_eq!(s.len(), 3, "kept up to points_max");
        assert_eq!(
            s.points_dropped(),
            2,
            "the two later seconds were counted as dropped"
        );
        // A value far in the future costs nothing: it is dropped, not zero-filled up to.
        s.add(Time::from_secs(1_000_000_000), 1);
        assert_eq!((s.len(), s.points_dropped()), (3, 3));
    }

    #[test]
    fn sample_series_stops_at_its_default_bound() {
        let mut s = TimeSeries::new("queue_len", SeriesKind::Samples);
        for i in 0..SERIES_POINTS_MAX_DEFAULT as u64 + 10 {
            s.sample(Time::from_nanos(i), i as f64);
        }
        assert_eq!(s.len(), SERIES_POINTS_MAX_DEFAULT);
        assert_eq!(s.points_dropped(), 10);
        assert_eq!(s.points().get(7).copied(), Some((Time::from_nanos(7), 7.0)));
    }

    #[test]
    fn zero_interval_is_one_nanosecond() {
        let mut s = TimeSeries::new(
            "x",
            SeriesKind::SumPerInterval {
                interval: Duration::ZERO,
            },
        );
        s.add(Time::from_nanos(3), 1);
        assert_eq!(s.len(), 4);
    }
}
