//! SVG plots of one run's [`Report`] (DESIGN.md section 6, `stockade sim --out`): each histogram
//! as a CDF, each time series as a line, bytes per link or per sender sorted.
//!
//! plotters draws with its SVG backend only and no font feature: the SVG backend writes text as
//! `<text>` elements and plotters' built-in estimate lays it out, so no system font library is
//! needed. The same report gives byte-identical files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use thiserror::Error;

use crate::metrics::Histogram;
use crate::report::{LinkTraffic, Report};
use crate::series::{SeriesKind, TimeSeries};

/// Points one line keeps at most: longer data is thinned to evenly spaced points (first and last
/// kept), so a 100,000-sender run still gives a plot a browser opens at once.
pub const PLOT_POINTS_MAX: usize = 4_000;

const PLOT_SIZE: (u32, u32) = (900, 540);
const TITLE_FONT: (&str, u32) = ("sans-serif", 22);
/// The data line's colour: tests find the line by it, as axes are polylines too.
const LINE_COLOR: RGBColor = BLUE;

/// A plot could not be drawn or written.
#[derive(Debug, Error)]
pub enum PlotError {
    /// plotters failed while drawing (into memory).
    #[error("could not draw plot {file}: {message}")]
    Draw {
        /// The file it was for.
        file: String,
        /// plotters' error.
        message: String,
    },
    /// Writing the SVG file failed.
    #[error("could not write plot {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One line chart: what [`line_chart_svg`] draws.
struct LineChart<'a> {
    file: String,
    title: String,
    x_label: &'a str,
    y_label: String,
    points: Vec<(f64, f64)>,
}

impl Report {
    /// Write one SVG file per plot into `dir` (created if missing) and return their paths:
    /// `cdf_<histogram>.svg` for every histogram, `series_<series>.svg` for every time series
    /// with points, and `bytes_per_link.svg` or `bytes_per_sender.svg` when anything was sent.
    /// Names are made file-safe (characters other than letters, digits, `-`, `_`, `.` become `_`);
    /// two names that become the same file get `_2`, `_3`, ... before `.svg`.
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
        std::fs::create_dir_all(dir).map_err(|source| PlotError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        for (file, svg) in self.plots_svg()? {
            let path = dir.join(file);
            std::fs::write(&path, svg).map_err(|source| PlotError::Write {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }

    /// Every plot as `(file name, SVG text)`, in the order [`Report::write_plots`] writes them.
    pub fn plots_svg(&self) -> Result<Vec<(String, String)>, PlotError> {
        let metrics = &self.metrics;
        let charts = metrics
            .histograms()
            .iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(name, h)| cdf_chart(name, h))
            .chain(
                metrics
                    .series()
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(series_chart),
            )
            .chain(traffic_chart(&self.links));
        let mut used = BTreeSet::new();
        charts
            .map(|mut chart| {
                chart.file = unused_file_name(&chart.file, &mut used);
                Ok((chart.file.clone(), line_chart_svg(&chart)?))
            })
            .collect()
    }
}

/// A latency (or any) histogram as its cumulative distribution; `_ns` values are shown in ms.
fn cdf_chart(name: &str, h: &Histogram) -> LineChart<'static> {
    let (scale, unit) = if name.ends_with("_ns") {
        (1e-6, "ms")
    } else {
        (1.0, "value")
    };
    let show = |v: u64| {
        if scale == 1.0 {
            v.to_string()
        } else {
            format!("{:.3}", v as f64 * scale)
        }
    };
    LineChart {
        file: format!("cdf_{}.svg", file_safe(name)),
        title: format!(
            "{name}: CDF of {} values (p50 {}, p99 {}, max {} {unit})",
            h.count(),
            show(h.quantile(0.5)),
            show(h.quantile(0.99)),
            show(h.max())
        ),
        x_label: unit,
        y_label: "fraction at or below".to_string(),
        points: cdf_steps(h, scale),
    }
}

/// The CDF as steps: from `(min, 0)`, each bucket rises vertically at its top value, so a run
/// where every value fell in one bucket still shows where they are.
fn cdf_steps(h: &Histogram, scale: f64) -> Vec<(f64, f64)> {
    let mut points = vec![(h.min() as f64 * scale, 0.0)];
    let mut below = 0.0;
    for (value, fraction) in h.cdf() {
        let x = value as f64 * scale;
        points.push((x, below));
        points.push((x, fraction));
        below = fraction;
    }
    points
}

fn series_chart(series: &TimeSeries) -> LineChart<'static> {
    let name = series.name();
    let (title, y_label) = match series.kind() {
        SeriesKind::SumPerInterval { interval } => (
            format!("{name} per {} s of simulated time", interval.as_secs_f64()),
            format!("{name} per interval"),
        ),
        SeriesKind::Samples => (name.to_string(), name.to_string()),
    };
    let dropped = series.points_dropped();
    let title = if dropped > 0 {
        format!("{title} ({dropped} values past the last point not kept)")
    } else {
        title
    };
    LineChart {
        file: format!("series_{}.svg", file_safe(name)),
        title,
        x_label: "simulated seconds",
        y_label,
        points: series
            .points()
            .into_iter()
            .map(|(at, v)| (at.as_secs_f64(), v))
            .collect(),
    }
}

/// Bytes per link (or per sending node), largest first: how evenly the load spreads.
fn traffic_chart(links: &LinkTraffic) -> Option<LineChart<'static>> {
    let (file, what, mut bytes): (&str, &str, Vec<u64>) = match links {
        LinkTraffic::PerLink(links) => (
            "bytes_per_link.svg",
            "link",
            links.iter().map(|l| l.bytes).collect(),
        ),
        LinkTraffic::PerSender(rows) => (
            "bytes_per_sender.svg",
            "sending node",
            rows.iter().map(|&(_, _, b)| b).collect(),
        ),
    };
    if bytes.is_empty() {
        return None;
    }
    bytes.sort_unstable_by(|a, b| b.cmp(a));
    Some(LineChart {
        file: file.to_string(),
        title: format!(
            "bytes sent per {what}, largest first ({} {what}s)",
            bytes.len()
        ),
        x_label: "rank",
        y_label: "bytes".to_string(),
        points: bytes
            .iter()
            .enumerate()
            .map(|(rank, &b)| (rank as f64, b as f64))
            .collect(),
    })
}

/// Draw `chart` as an SVG document, thinned to [`PLOT_POINTS_MAX`] points.
fn line_chart_svg(chart: &LineChart<'_>) -> Result<String, PlotError> {
    let points = thin(&chart.points, PLOT_POINTS_MAX);
    let (x_range, y_range) = ranges(&points);
    let mut svg = String::new();
    let drawn: Result<(), String> = (|| {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut plot = ChartBuilder::on(&root)
            .caption(&chart.title, TITLE_FONT)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| e.to_string())?;
        plot.configure_mesh()
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .x_desc(chart.x_label)
            .y_desc(&chart.y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        plot.draw_series(LineSeries::new(points, LINE_COLOR.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    drawn.map_err(|message| PlotError::Draw {
        file: chart.file.clone(),
        message,
    })?;
    Ok(svg)
}

/// At most `max` of `points`, evenly spaced, first and last kept.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    if max < 2 {
        return points[..max].to_vec();
    }
    let last = points.len() - 1;
    (0..max).map(|i| points[i * last / (max - 1)]).collect()
}

/// Axis ranges covering `points`, the y axis from zero (or below, for negative samples), never
/// empty.
fn ranges(points: &[(f64, f64)]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let finite = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for &(x, y) in finite {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        (x_min, x_max) = (0.0, 1.0);
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    if y_max <= y_min {
        y_max = y_min + 1.0;
    }
    (x_min..x_max, y_min..y_max + (y_max - y_min) * 0.05)
}

/// A tick label: at most three decimals, no trailing zeros, `k`, `M` or `G` for large values.
fn tick_label(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let fixed = format!("{scaled:.3}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    let trimmed = if trimmed == "-0" { "0" } else { trimmed };
    format!("{trimmed}{suffix}")
}

/// `file`, or `file` with `_2`, `_3`, ... before its `.svg` when already in `used`; then marked used.
fn unused_file_name(file: &str, used: &mut BTreeSet<String>) -> String {
    let stem = file.strip_suffix(".svg").unwrap_or(file);
    let mut candidate = file.to_string();
    let mut n = 1;
    while used.contains(&candidate) {
        n += 1;
        candidate = format!("{stem}_{n}.svg");
    }
    used.insert(candidate.clone());
    candidate
}

/// `name` with every character but ASCII letters, digits, `-`, `_` and `.` replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use stockade_core::{NodeId, Time};

    use super::*;
    use crate::metrics::Metrics;

    /// The `points` of the data line (axes and ticks are polylines too, in black).
    fn data_line(svg: &str) -> Option<&str> {
        let line = svg.split("<polyline").find(|p| {
            p.contains(&format!(
                "stroke=\"#{:02X}{:02X}{:02X}\"",
                LINE_COLOR.0, LINE_COLOR.1, LINE_COLOR.2
            ))
        })?;
        line.split("points=\"").nth(1)?.split('"').next()
    }

    fn report_with(metrics: Metrics, links: LinkTraffic) -> Report {
        Report {
            scenario: "plot-test".to_string(),
            seed: 1,
            crypto_mode: "none".to_string(),
            cost_source: "free".to_string(),
            sim_time: Time::from_secs(3),
            wall: Duration::ZERO,
            digest: 0,
            metrics,
            links,
            sites: Vec::new(),
            headline: json!({}),
        }
    }

    fn sample_report() -> Report {
        let mut metrics = Metrics::default();
        for v in 1..=1_000u64 {
            metrics.record("journey latency_ns", v * 1_000_000);
        }
        let delivered = metrics.series_per_interval("delivered", Duration::from_secs(1));
        for second in 0..3 {
            metrics.series_add(delivered, Time::from_secs(second), 10 * (second + 1));
        }
        metrics.series_of_samples("never sampled");
        let senders = (0..10u32).map(|n| (NodeId(n), 1, 100 * n as u64)).collect();
        report_with(metrics, LinkTraffic::PerSender(senders))
    }

    #[test]
    fn every_histogram_series_and_traffic_gets_a_valid_svg() {
        let dir = std::env::temp_dir().join(format!("stockade-sim-plots-{}", std::process::id()));
        let written = sample_report()
            .write_plots(&dir)
            .expect("writable temp dir");
        let names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        assert_eq!(
            names,
            [
                "cdf_journey_latency_ns.svg",
                "series_delivered.svg",
                "bytes_per_sender.svg"
            ],
            "an empty series is not plotted"
        );
        for path in &written {
            let svg = std::fs::read_to_string(path).expect("written");
            assert!(svg.starts_with("<svg"), "{}", path.display());
            assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
            assert!(
                svg.contains("<polyline"),
                "the line itself: {}",
                path.display()
            );
            assert!(
                svg.contains("<text"),
                "title and labels: {}",
                path.display()
            );
        }
        let cdf = std::fs::read_to_string(&written[0]).expect("written");
        assert!(cdf.contains("CDF of 1000 values"), "title rendered as text");
        assert!(cdf.contains("fraction at or below"), "y axis label");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plots_are_byte_identical_for_the_same_report() {
        let report = sample_report();
        let first = report.plots_svg().expect("draws");
        let second = report.plots_svg().expect("draws");
        assert_eq!(first.len(), 3);
        assert_eq!(first, second);
        assert_eq!(sample_report().plots_svg().expect("draws"), first);
    }

    #[test]
    fn a_line_is_thinned_to_its_bound() {
        let points: Vec<(f64, f64)> = (0..PLOT_POINTS_MAX * 3).map(|i| (i as f64, 1.0)).collect();
        let thinned = thin(&points, PLOT_POINTS_MAX);
        assert_eq!(thinned.len(), PLOT_POINTS_MAX);
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        assert_eq!(thin(&points[..5], PLOT_POINTS_MAX).len(), 5);

        let senders = (0..PLOT_POINTS_MAX as u32 * 3)
            .map(|n| (NodeId(n), 1, n as u64))
            .collect();
        let report = report_with(Metrics::default(), LinkTraffic::PerSender(senders));
        let plots = report.plots_svg().expect("draws");
        let (_, svg) = &plots[0];
        let polyline = data_line(svg).expect("a data line");
        assert_eq!(polyline.split_whitespace().count(), PLOT_POINTS_MAX);
    }

    #[test]
    fn flat_and_single_point_data_still_draw() {
        let mut metrics = Metrics::default();
        metrics.record("one", 5);
        let flat = metrics.series_of_samples("flat");
        metrics.series_sample(flat, Time::ZERO, 0.0);
        let report = report_with(metrics, LinkTraffic::PerLink(Vec::new()));
        let plots = report.plots_svg().expect("draws");
        assert_eq!(plots.len(), 2, "no traffic, no traffic plot");
        assert!(plots.iter().all(|(_, svg)| data_line(svg).is_some()));
    }

    #[test]
    fn cdf_rises_from_zero_even_when_every_value_shares_a_bucket() {
        let mut h = Histogram::new();
        for _ in 0..100 {
            h.record(2_000_000);
        }
        assert_eq!(
            cdf_steps(&h, 1e-6),
            vec![(2.0, 0.0), (2.0, 0.0), (2.0, 1.0)]
        );
    }

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> = [
            0.0,
            0.1,
            203.5,
            8_000.0,
            15_000.0,
            81_337_344.0,
            2e9,
            -0.0001,
        ]
        .into_iter()
        .map(tick_label)
        .collect();
        assert_eq!(
            labels,
            ["0", "0.1", "203.5", "8000", "15k", "81.337M", "2G", "0"]
        );
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_safe("a/b c,d-e_f.g"), "a_b_c_d-e_f.g");
        let mut metrics = Metrics::default();
        metrics.record("rtt ns", 1);
        metrics.record("rtt/ns", 2);
        metrics.record("rtt_ns", 3);
        let report = report_with(metrics, LinkTraffic::PerLink(Vec::new()));
        let files: Vec<String> = report
            .plots_svg()
            .expect("draws")
            .into_iter()
            .map(|(file, _)| file)
            .collect();
        assert_eq!(
            files,
            ["cdf_rtt_ns.svg", "cdf_rtt_ns_2.svg", "cdf_rtt_ns_3.svg"]
        );
    }
}
