//! The report of one run: a JSON headline (the last line a `stockade sim` command prints) and the
//! full metrics, written as CSV files (plots are drawn in `plot.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use stockade_core::{NodeId, Protocol, Time};

use crate::metrics::{csv_field, peak_rss_bytes, Metrics};
use crate::network::{LinkStats, SiteStats};
use crate::world::World;

/// Traffic per link, or per sending node for big networks.
#[derive(Clone, Debug)]
pub enum LinkTraffic {
    /// Every link that carried traffic.
    PerLink(Vec<LinkStats>),
    /// `(sender, packets, bytes)` for every node that sent.
    PerSender(Vec<(NodeId, u64, u64)>),
}

/// Everything measured in one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Which crypto ran (from the scenario's config).
    pub crypto_mode: String,
    /// Where the CPU cost table came from.
    pub cost_source: String,
    /// Simulated time reached.
    pub sim_time: Time,
    /// Wall time spent running events.
    pub wall: Duration,
    /// The event-trace digest.
    pub digest: u64,
    /// Counters and histograms.
    pub metrics: Metrics,
    /// Link traffic.
    pub links: LinkTraffic,
    /// Site uplink traffic.
    pub sites: Vec<SiteStats>,
    /// The headline object: standard fields plus the scenario's.
    pub headline: Value,
}

impl Report {
    pub(crate) fn from_world<P: Protocol>(world: &World<P>, extra: Value) -> Report {
        let config = world.config();
        let network = world.network();
        let rows_max = config.link_csv_rows_max;
        let link_rows = network
            .link_stats()
            .take(rows_max.saturating_add(1))
            .count();
        let links = if link_rows <= rows_max && !network.counts_per_sender_only() {
            LinkTraffic::PerLink(network.link_stats().collect())
        } else {
            LinkTraffic::PerSender(network.sender_stats())
        };
        let metrics = world.metrics().clone();
        let wall = world.wall_time();
        let sim = metrics.sim;
        let mut headline = json!({
            "scenario": config.scenario,
            "seed": config.seed,
            "crypto_mode": config.crypto_mode,
            "cost_source": config.cost_table.source,
            "nodes": world.node_count(),
            "sim_seconds": world.now().as_secs_f64(),
            "wall_seconds": wall.as_secs_f64(),
            "events": sim.events,
            "events_per_sec_wall": events_per_sec(sim.events, wall),
            "messages_sent": sim.messages_sent,
            "messages_delivered": sim.messages_delivered,
            "bytes_sent": sim.bytes_sent,
            "dropped": sim.dropped(),
            "decode_failures": sim.decode_failures,
            "digest": format!("{:016x}", world.digest()),
        });
        if let Some(rss) = peak_rss_bytes() {
            headline["peak_rss_bytes"] = json!(rss);
        }
        merge(&mut headline, extra);
        Report {
            scenario: config.scenario.clone(),
            seed: config.seed,
            crypto_mode: config.crypto_mode.clone(),
            cost_source: config.cost_table.source.clone(),
            sim_time: world.now(),
            wall,
            digest: world.digest(),
            metrics,
            links,
            sites: network.site_stats().collect(),
            headline,
        }
    }

    /// The headline as one line of JSON.
    pub fn headline_line(&self) -> String {
        self.headline.to_string()
    }

    /// Write every CSV file ([`Report::write_csv`]) and every plot ([`Report::write_plots`]) into
    /// `dir`; returns the plots' paths. What `stockade sim --out DIR` writes.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.write_csv(dir)?;
        self.write_plots(dir).map_err(std::io::Error::other)
    }

    /// Write `headline.json`, `counters.csv`, `histograms.csv`, `links.csv` (or `senders.csv`) and
    /// `sites.csv` into `dir`.
    pub fn write_csv(&self, dir: &Path) -> std::io::Result<()> {
        self.metrics.write_csv(dir)?;
        std::fs::write(
            dir.join("headline.json"),
            format!("{}\n", self.headline_line()),
        )?;
        let run = format!(
            "{},{}",
            csv_field(&self.crypto_mode),
            csv_field(&self.cost_source)
        );
        match &self.links {
            LinkTraffic::PerLink(links) => {
                let mut out =
                    std::io::BufWriter::new(std::fs::File::create(dir.join("links.csv"))?);
                writeln!(out, "from,to,messages,bytes")?;
                for l in links {
                    writeln!(out, "{},{},{},{}", l.from.0, l.to.0, l.messages, l.bytes)?;
                }
                out.flush()?;
            }
            LinkTraffic::PerSender(rows) => {
                let mut out =
                    std::io::BufWriter::new(std::fs::File::create(dir.join("senders.csv"))?);
                writeln!(out, "node,messages,bytes")?;
                for (node, m, b) in rows {
                    writeln!(out, "{},{m},{b}", node.0)?;
                }
                out.flush()?;
            }
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("sites.csv"))?);
        writeln!(out, "site,messages,bytes")?;
        for s in &self.sites {
            writeln!(out, "{},{},{}", s.site, s.messages, s.bytes)?;
        }
        out.flush()?;
        std::fs::write(
            dir.join("run.csv"),
            format!("crypto_mode,cost_source\n{run}\n"),
        )
    }
}

/// Events per wall second (0 for no wall time).
pub fn events_per_sec(events: u64, wall: Duration) -> f64 {
    let secs = wall.as_secs_f64();
    if secs > 0.0 {
        events as f64 / secs
    } else {
        0.0
    }
}

/// Add `extra`'s fields to `headline` (an object), overriding on equal keys.
fn merge(headline: &mut Value, extra: Value) {
    match (headline.as_object_mut(), extra) {
        (Some(target), Value::Object(fields)) => {
            for (k, v) in fields {
                target.insert(k, v);
            }
        }
        (Some(_), Value::Null) => {}
        (Some(target), other) => {
            target.insert("extra".to_string(), other);
        }
        (None, _) => {}
    }
}
