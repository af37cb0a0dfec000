//! Prime scenarios under attack, crash-recovery and random faults (issue 3 item 7), built with
//! the `sim` feature, and [`register`], which registers every Prime scenario with the simulator.
//!
//! Each runs a safety phase with the agreement and total-order checker, then a liveness phase
//! (every update executed on every server), then the client-history check of
//! [`crate::scenario_harness`], and asserts that the interesting event happened:
//!
//! * `prime-leader-delay`: the first leader delays its pre-prepares just under a plain leader
//!   timeout. Suspect-leader (paper 004 section 5.1; PRIME.md "Suspect-leader") must replace it, so
//!   latency returns to a small constant times the fault-free turnaround; a leader-timeout-only
//!   configuration runs for comparison and keeps the slow leader.
//! * `prime-equivocation`: the first leader sends different pre-prepares to different servers;
//!   the re-flooding of pre-prepares exposes it (PRIME.md step 8) and a view change replaces it.
//! * `prime-crash-recover`: servers crash one after another (the first leader among them) and
//!   restart from their persisted state, then catch up or JUMP.
//! * `prime-fuzz`: seeded random crashes, restarts, pauses, partitions and loss, with up to f
//!   Byzantine servers (delaying or equivocating leaders).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use stockade_core::{NodeId, Time};
use stockade_sim::{
    Fault, Nemesis, Registry, RunOptions, Scenario, ScenarioError, ScenarioOutcome,
};

use crate::attack::Attack;
use crate::config::PrimeConfig;
use crate::scenario_harness::{crypto_mode, Cluster, ClusterOutcome, ClusterSpec};
use crate::scenarios::PrimeNormalScenario;

/// Register every Prime scenario (`prime-normal` included) with the simulator.
pub fn register(registry: &mut Registry) {
    registry.register(PrimeNormalScenario);
    registry.register(PrimeLeaderDelayScenario);
    registry.register(PrimeEquivocationScenario);
    registry.register(PrimeCrashRecoverScenario);
    registry.register(PrimeFuzzScenario);
}

fn out_of_range(name: &str, reason: &str) -> ScenarioError {
    ScenarioError::OutOfRange {
        name: name.into(),
        reason: reason.into(),
    }
}

/// A four-server (f = 1) cluster on a 1 ms LAN with every server's clients submitting.
fn lan_spec(name: &'static str, cfg: PrimeConfig, seconds: u64, rate: u64) -> ClusterSpec {
    mesh_spec(name, cfg, seconds, rate, Duration::from_millis(1))
}

/// A four-server (f = 1) full mesh of `latency` one-way links, every server's clients submitting.
fn mesh_spec(
    name: &'static str,
    cfg: PrimeConfig,
    seconds: u64,
    rate: u64,
    latency: Duration,
) -> ClusterSpec {
    let n = cfg.quorums.n() as u32;
    ClusterSpec {
        name,
        cfg,
        seconds,
        rate,
        latency,
        loss: 0.0,
        client_hosts: (0..n).collect(),
        attacks: BTreeMap::new(),
        repro_command: String::new(),
        liveness_within: Duration::from_secs(10),
    }
}

fn run_cluster(
    spec: &ClusterSpec,
    options: &RunOptions,
    faults: impl FnOnce(&mut Cluster),
) -> Result<ClusterOutcome, ScenarioError> {
    let mode = crypto_mode(options)?;
    let mut cluster = Cluster::build(spec, options, mode)?;
    faults(&mut cluster);
    Ok(cluster.finish(spec.liveness_within, json!({})))
}

fn outcome(repro: String, headline: serde_json::Value, failure: Option<String>) -> ScenarioOutcome {
    ScenarioOutcome {
        headline,
        passed: failure.is_none(),
        repro,
        failure,
    }
}

const LEADER_DELAY_ARGS: [&str; 6] = [
    "seconds",
    "rate",
    "delay-ms",
    "timeout-ms",
    "latency-ms",
    "crypto",
];

/// Under attack, suspect-leader must keep the median update latency within this many times the
/// fault-free median, plus one network round trip (issue 3: "within a small constant times the
/// fault-free turnaround plus network").
pub const ATTACK_LATENCY_FACTOR: f64 = 2.0;

/// `stockade sim prime-leader-delay`.
pub struct PrimeLeaderDelayScenario;

impl Scenario for PrimeLeaderDelayScenario {
    fn name(&self) -> &'static str {
        "prime-leader-delay"
    }

    fn description(&self) -> &'static str {
        "Prime on 4 servers whose first leader delays its pre-prepares just under a plain leader \
         timeout: suspect-leader replaces it; update latency fault-free, under attack, and under \
         attack with only a leader timeout, side by side, and whether the attack stayed within \
         2 x fault-free median + one round trip \
         [--seconds 6 --rate 50 --latency-ms 10 --delay-ms 450 --timeout-ms 500]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&LEADER_DELAY_ARGS)?;
        let (seconds, rate) = seconds_and_rate(options, 6)?;
        let latency_ms = options.u64_arg("latency-ms", 10)?;
        let delay_ms = options.u64_arg("delay-ms", 450)?;
        let timeout_ms = options.u64_arg("timeout-ms", 500)?;
        if !(1..=1000).contains(&latency_ms) {
            return Err(out_of_range("latency-ms", "between 1 and 1000 (one way)"));
        }
        if delay_ms == 0 || delay_ms >= timeout_ms {
            return Err(out_of_range("delay-ms", "above 0 and below --timeout-ms"));
        }
        let repro = format!(
            "stockade sim prime-leader-delay --seed {} --seconds {seconds} --rate {rate} --latency-ms {latency_ms} --delay-ms {delay_ms} --timeout-ms {timeout_ms}",
            options.seed
        );
        let cfg = PrimeConfig::new(1, 0);
        let latency = Duration::from_millis(latency_ms);
        let mut spec = mesh_spec("prime-leader-delay", cfg.clone(), seconds, rate, latency);
        spec.repro_command = repro.replace(&format!("--seed {}", options.seed), "--seed {seed}");
        let fault_free = run_cluster(&spec, options, |_| {})?;
        spec.attacks.insert(
            0,
            Attack {
                pre_prepare_delay: Some(Duration::from_millis(delay_ms)),
                ..Attack::default()
            },
        );
        let suspect_leader = run_cluster(&spec, options, |_| {})?;
        spec.cfg.leader_timeout_only = Some(Duration::from_millis(timeout_ms));
        let timeout_only = run_cluster(&spec, options, |_| {})?;

        let ms = |ns: u64| ns as f64 / 1e6;
        let round_trip_ms = 2.0 * latency_ms as f64;
        // PRIME.md: suspect when TAT_leader > K_lat * TAT_acceptable + period, where
        // TAT_acceptable follows the measured round trips (never below its floor).
        let (num, den) = cfg.k_lat;
        let tat_acceptable_ms = ms(cfg.tat_acceptable_min.as_nanos() as u64).max(round_trip_ms);
        let suspect_threshold_ms = tat_acceptable_ms * f64::from(num) / f64::from(den)
            + ms(cfg.pre_prepare_period.as_nanos() as u64);
        let bound_ms = ATTACK_LATENCY_FACTOR * ms(fault_free.latency_p50_ns) + round_trip_ms;
        let within = |o: &ClusterOutcome| ms(o.latency_p50_ns) <= bound_ms;
        let mut headline = suspect_leader.report.headline.clone();
        let fields = json!({
            "link_latency_ms": latency_ms,
            "leader_delay_ms": delay_ms,
            "leader_timeout_ms": timeout_ms,
            "fault_free_latency_p50_ms": ms(fault_free.latency_p50_ns),
            "fault_free_latency_p99_ms": ms(fault_free.latency_p99_ns),
            "suspect_leader_latency_p50_ms": ms(suspect_leader.latency_p50_ns),
            "suspect_leader_latency_p99_ms": ms(suspect_leader.latency_p99_ns),
            "suspect_leader_view_changes": suspect_leader.view_changes,
            "leader_timeout_only_latency_p50_ms": ms(timeout_only.latency_p50_ns),
            "leader_timeout_only_latency_p99_ms": ms(timeout_only.latency_p99_ns),
            "leader_timeout_only_view_changes": timeout_only.view_changes,
            "suspect_bound_turnaround_ms": suspect_threshold_ms,
            "attack_latency_bound": format!(
                "median update latency under attack <= {ATTACK_LATENCY_FACTOR} x fault-free median + one round trip"
            ),
            "attack_latency_bound_ms": bound_ms,
            "suspect_leader_within_bound": within(&suspect_leader),
            "leader_timeout_only_within_bound": within(&timeout_only),
        });
        if let (serde_json::Value::Object(h), serde_json::Value::Object(f)) =
            (&mut headline, fields)
        {
            h.extend(f);
        }
        let failure = [
            ("fault-free", &fault_free),
            ("suspect-leader under attack", &suspect_leader),
            ("leader-timeout-only under attack", &timeout_only),
        ]
        .iter()
        .find_map(|(what, o)| o.failure.as_ref().map(|f| format!("{what}: {f}")))
        .or_else(|| {
            (fault_free.view_changes > 0)
                .then(|| "a correct, timely leader was replaced".to_string())
        })
        .or_else(|| {
            (suspect_leader.view_changes == 0)
                .then(|| "suspect-leader never replaced the delaying leader".to_string())
        })
        .or_else(|| {
            (timeout_only.view_changes > 0).then(|| {
                "the leader timeout fired: the delay was not under it (the comparison is void)"
                    .to_string()
            })
        })
        .or_else(|| {
            (!within(&suspect_leader)).then(|| {
                format!(
                    "suspect-leader's median latency {:.1} ms exceeds the bound {bound_ms:.1} ms",
                    ms(suspect_leader.latency_p50_ns)
                )
            })
        });
        Ok(outcome(repro, headline, failure))
    }
}

/// `--seconds` (default `seconds`, 2 to 600) and `--rate` (default 50, 1 to 10,000 per server).
fn seconds_and_rate(options: &RunOptions, seconds: u64) -> Result<(u64, u64), ScenarioError> {
    let seconds = options.u64_arg("seconds", seconds)?;
    let rate = options.u64_arg("rate", 50)?;
    if !(2..=600).contains(&seconds) {
        return Err(out_of_range("seconds", "between 2 and 600"));
    }
    if !(1..=10_000).contains(&rate) {
        return Err(out_of_range(
            "rate",
            "between 1 and 10000 updates/s per server",
        ));
    }
    Ok((seconds, rate))
}

const ONE_SCENARIO_ARGS: [&str; 4] = ["seconds", "rate", "loss", "crypto"];

fn seconds_rate_loss(options: &RunOptions, seconds: u64) -> Result<(u64, u64, f64), ScenarioError> {
    options.reject_unknown(&ONE_SCENARIO_ARGS)?;
    let (seconds, rate) = seconds_and_rate(options, seconds)?;
    let loss = options.f64_arg("loss", 0.0)?;
    if !(0.0..=0.2).contains(&loss) {
        return Err(out_of_range("loss", "a probability between 0 and 0.2"));
    }
    Ok((seconds, rate, loss))
}

/// `stockade sim prime-equivocation`.
pub struct PrimeEquivocationScenario;

impl Scenario for PrimeEquivocationScenario {
    fn name(&self) -> &'static str {
        "prime-equivocation"
    }

    fn description(&self) -> &'static str {
        "Prime whose first leader sends different pre-prepares to different servers: detected by \
         re-flooding, and a view change replaces it [--seconds 4 --rate 50 --loss 0]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        let (seconds, rate, loss) = seconds_rate_loss(options, 4)?;
        let mut spec = lan_spec("prime-equivocation", PrimeConfig::new(1, 0), seconds, rate);
        spec.loss = loss;
        spec.repro_command = format!(
            "stockade sim prime-equivocation --seed {{seed}} --seconds {seconds} --rate {rate} --loss {loss}"
        );
        spec.attacks.insert(
            0,
            Attack {
                equivocate_pre_prepares: true,
                ..Attack::default()
            },
        );
        let run = run_cluster(&spec, options, |_| {})?;
        let failure = run
            .failure
            .clone()
            .or_else(|| {
                (run.misbehaviour_reports == 0)
                    .then(|| "the equivocating leader was never caught".to_string())
            })
            .or_else(|| {
                (run.view_changes == 0)
                    .then(|| "the equivocating leader was never replaced".to_string())
            });
        let repro = spec
            .repro_command
            .replace("{seed}", &options.seed.to_string());
        Ok(outcome(repro, run.report.headline, failure))
    }
}

/// `stockade sim prime-crash-recover`.
pub struct PrimeCrashRecoverScenario;

impl Scenario for PrimeCrashRecoverScenario {
    fn name(&self) -> &'static str {
        "prime-crash-recover"
    }

    fn description(&self) -> &'static str {
        "Prime servers 1, 0 (the first leader) and 2 crash one after another and restart from \
         their persisted state, catching up or JUMPing to a checkpoint [--seconds 6 --rate 50 --loss 0]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        let (seconds, rate, loss) = seconds_rate_loss(options, 6)?;
        let mut spec = lan_spec("prime-crash-recover", PrimeConfig::new(1, 0), seconds, rate);
        spec.loss = loss;
        // The crashed servers' clients would lose queued updates: clients use server 3.
        spec.client_hosts = vec![3];
        spec.rate = rate * 3;
        spec.repro_command = format!(
            "stockade sim prime-crash-recover --seed {{seed}} --seconds {seconds} --rate {rate} --loss {loss}"
        );
        let step_ms = seconds * 1000 / 7;
        let run = run_cluster(&spec, options, |cluster| {
            for (i, server) in [1u32, 0, 2].into_iter().enumerate() {
                let crash = Time::from_millis(step_ms * (2 * i as u64 + 1));
                let restart = Time::from_millis(step_ms * (2 * i as u64 + 2));
                cluster
                    .world
                    .schedule_fault(crash, Fault::Crash(NodeId(server)));
                cluster
                    .world
                    .schedule_fault(restart, Fault::Restart(NodeId(server)));
            }
        })?;
        let failure = run.failure.clone().or_else(|| {
            (run.view_changes == 0).then(|| "the crashed leader was never replaced".to_string())
        });
        let repro = spec
            .repro_command
            .replace("{seed}", &options.seed.to_string());
        Ok(outcome(repro, run.report.headline, failure))
    }
}

const FUZZ_ARGS: [&str; 5] = ["seconds", "rate", "loss", "byzantine", "crypto"];

/// `stockade sim prime-fuzz`.
pub struct PrimeFuzzScenario;

/// What one seed of `prime-fuzz` drew and measured.
#[derive(Clone, Debug)]
pub struct FuzzRun {
    /// The Byzantine server and its attack, if the seed drew one.
    pub byzantine: Option<(u32, Attack)>,
    /// The run's figures and failure.
    pub outcome: ScenarioOutcome,
    /// View changes started (NEW-LEADER proofs), summed over servers.
    pub view_changes: u64,
    /// PO certificates sent by reconciliation.
    pub reconciliation_sends: u64,
    /// JUMPs (state transfers).
    pub state_transfers: u64,
}

impl PrimeFuzzScenario {
    /// Run one seed and keep the counts (the scenario's headline has them too).
    pub fn run_counted(&self, options: &RunOptions) -> Result<FuzzRun, ScenarioError> {
        options.reject_unknown(&FUZZ_ARGS)?;
        let seconds = options.u64_arg("seconds", 5)?;
        let rate = options.u64_arg("rate", 40)?;
        let loss = options.f64_arg("loss", 0.005)?;
        let allow_byzantine = options.u64_arg("byzantine", 1)?;
        if !(2..=600).contains(&seconds) {
            return Err(out_of_range("seconds", "between 2 and 600"));
        }
        if !(1..=10_000).contains(&rate) {
            return Err(out_of_range("rate", "between 1 and 10000 updates/s"));
        }
        if !(0.0..=0.2).contains(&loss) {
            return Err(out_of_range("loss", "a probability between 0 and 0.2"));
        }
        if allow_byzantine > 1 {
            return Err(out_of_range("byzantine", "0 or 1 (f = 1)"));
        }
        // Small retention windows, so that a server down for a second falls past them and needs
        // a state transfer even in a short run.
        let mut cfg = PrimeConfig::new(1, 0);
        cfg.checkpoint_interval = 10;
        cfg.retained_slots_max = 20;
        cfg.po_window_max = 32;
        let n = cfg.quorums.n() as u32;
        // The seed picks the Byzantine server (or none) and its attack.
        let draw = options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
        let byzantine = (allow_byzantine == 1 && draw % 5 < 4).then(|| {
            let attack = if (draw / 5).is_multiple_of(2) {
                Attack {
                    pre_prepare_delay: Some(Duration::from_millis(100)),
                    ..Attack::default()
                }
            } else {
                Attack {
                    equivocate_pre_prepares: true,
                    ..Attack::default()
                }
            };
            ((draw % n as u64) as u32, attack)
        });
        let host = byzantine.as_ref().map_or(n - 1, |(b, _)| (b + 1) % n);
        let mut spec = lan_spec("prime-fuzz", cfg, seconds, rate);
        spec.loss = loss;
        spec.client_hosts = vec![host];
        spec.liveness_within = Duration::from_secs(15);
        spec.repro_command = format!(
            "stockade sim prime-fuzz --seed {{seed}} --seconds {seconds} --rate {rate} --loss {loss} --byzantine {allow_byzantine}"
        );
        if let Some((b, attack)) = &byzantine {
            spec.attacks.insert(*b, attack.clone());
        }
        let candidates: Vec<NodeId> = (0..n)
            .filter(|s| *s != host && byzantine.as_ref().is_none_or(|(b, _)| b != s))
            .map(NodeId)
            .collect();
        let mut nemesis = Nemesis::new(candidates, 1);
        nemesis.crash_rate_per_sec = 0.6;
        nemesis.pause_rate_per_sec = 0.2;
        nemesis.partition_rate_per_sec = 0.3;
        nemesis.duration_min = Duration::from_millis(200);
        nemesis.duration_max = Duration::from_millis(1500);
        let mut plan = None;
        let run = run_cluster(&spec, options, |cluster| {
            plan = Some(nemesis.schedule(
                &mut cluster.world,
                Time::from_millis(300),
                Time::from_secs(seconds),
            ));
        })?;
        let plan = plan.unwrap_or_default();
        let mut headline = run.report.headline.clone();
        if let serde_json::Value::Object(h) = &mut headline {
            h.insert(
                "byzantine".into(),
                json!(byzantine
                    .as_ref()
                    .map(|(b, a)| format!("server {b}: {a:?}"))),
            );
            h.insert("crashes".into(), json!(plan.crashes));
            h.insert("pauses".into(), json!(plan.pauses));
            h.insert("partitions".into(), json!(plan.partitions));
        }
        let repro = spec
            .repro_command
            .replace("{seed}", &options.seed.to_string());
        Ok(FuzzRun {
            byzantine,
            view_changes: run.view_changes,
            reconciliation_sends: run.reconciliation_sends,
            state_transfers: run.jumps,
            outcome: outcome(repro, headline, run.failure),
        })
    }
}

impl Scenario for PrimeFuzzScenario {
    fn name(&self) -> &'static str {
        "prime-fuzz"
    }

    fn description(&self) -> &'static str {
        "Prime under seeded random crashes, restarts, pauses, partitions and loss, with up to f \
         Byzantine servers (delaying or equivocating leaders); counts view changes, \
         reconciliations and state transfers [--seconds 5 --rate 40 --loss 0.005 --byzantine 1]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        self.run_counted(options).map(|r| r.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 3's must-show: 4 servers and 10 ms links; under the delaying leader, suspect-leader
    /// keeps the median within the stated bound, while a leader-timeout-only configuration
    /// keeps the slow leader and degrades far beyond it.
    #[test]
    fn leader_delay_is_cut_short_by_suspect_leader_but_not_by_a_plain_timeout() {
        let options = RunOptions::with_seed(1)
            .arg("seconds", 4)
            .arg("rate", 30)
            .arg("latency-ms", 10);
        let outcome = PrimeLeaderDelayScenario.run(&options).expect("runs");
        assert!(outcome.passed, "{:?}", outcome.failure);
        let h = &outcome.headline;
        let p50 = |k: &str| h[k].as_f64().unwrap_or(f64::NAN);
        assert!(h["suspect_leader_view_changes"].as_u64().unwrap_or(0) > 0);
        assert_eq!(h["leader_timeout_only_view_changes"], 0);
        assert_eq!(h["link_latency_ms"], 10);
        let bound = p50("attack_latency_bound_ms");
        assert_eq!(
            bound,
            ATTACK_LATENCY_FACTOR * p50("fault_free_latency_p50_ms") + 20.0,
            "{h}"
        );
        assert_eq!(h["suspect_leader_within_bound"], true, "{h}");
        assert_eq!(h["leader_timeout_only_within_bound"], false, "{h}");
        assert!(
            p50("leader_timeout_only_latency_p50_ms") > 3.0 * p50("fault_free_latency_p50_ms"),
            "a plain timeout leaves the slow leader in place: {h}"
        );
    }

    #[test]
    fn equivocating_leader_is_caught_and_replaced() {
        let options = RunOptions::with_seed(2).arg("seconds", 3).arg("rate", 30);
        let outcome = PrimeEquivocationScenario.run(&options).expect("runs");
        assert!(outcome.passed, "{:?}", outcome.failure);
        assert!(
            outcome.headline["misbehaviour_reports"]
                .as_u64()
                .unwrap_or(0)
                > 0
        );
        assert!(outcome.headline["view_changes"].as_u64().unwrap_or(0) > 0);
    }

    #[test]
    fn crashed_servers_recover_from_their_stores() {
        let options = RunOptions::with_seed(1).arg("seconds", 4).arg("rate", 30);
        let outcome = PrimeCrashRecoverScenario.run(&options).expect("runs");
        assert!(outcome.passed, "{:?}", outcome.failure);
        assert!(outcome.headline["view_changes"].as_u64().unwrap_or(0) > 0);
    }

    /// Seeds per CI fuzzing test; two tests run [`CI_FUZZ_SEEDS`] seeds in all, in parallel
    /// (about 20 s each in a debug build on 2 cores).
    const CI_FUZZ_SEEDS_PER_TEST: u64 = 200;
    /// Issue 3's must-show: "a few hundred seeds in CI".
    const CI_FUZZ_SEEDS: u64 = 2 * CI_FUZZ_SEEDS_PER_TEST;

    /// CI-sized fuzzing over `seeds`: every seed passes (agreement, total order, history,
    /// liveness, no correct server accused), and across the seeds the interesting events
    /// happened: view changes, reconciliations, state transfers (JUMPs), and Byzantine leaders
    /// of both kinds. Each seed runs with the scenario's defaults, exactly as
    /// `stockade sim prime-fuzz --seed N` does.
    fn fuzz_seeds_pass_and_exercise_recovery(seeds: std::ops::RangeInclusive<u64>) {
        let (mut view_changes, mut reconciliations, mut transfers) = (0, 0, 0);
        let mut attacks = std::collections::BTreeSet::new();
        let count = seeds.clone().count() as u64;
        for seed in seeds {
            let options = RunOptions::with_seed(seed);
            let run = PrimeFuzzScenario.run_counted(&options).expect("runs");
            assert!(
                run.outcome.passed,
                "seed {seed}: {:?}\nreproduce with: {}",
                run.outcome.failure, run.outcome.repro
            );
            view_changes += run.view_changes;
            reconciliations += run.reconciliation_sends;
            transfers += run.state_transfers;
            if let Some((_, attack)) = run.byzantine {
                attacks.insert(attack.equivocate_pre_prepares);
            }
        }
        assert_eq!(count, CI_FUZZ_SEEDS_PER_TEST);
        assert!(view_changes > 0, "view changes happened");
        assert!(reconciliations > 0, "reconciliation happened");
        assert!(transfers > 0, "state transfers happened");
        assert_eq!(attacks.len(), 2, "both Byzantine behaviours were drawn");
    }

    #[test]
    fn prime_fuzz_seeds_1_to_200_find_no_violation_and_exercise_recovery() {
        fuzz_seeds_pass_and_exercise_recovery(1..=CI_FUZZ_SEEDS_PER_TEST);
    }

    #[test]
    fn prime_fuzz_seeds_201_to_400_find_no_violation_and_exercise_recovery() {
        fuzz_seeds_pass_and_exercise_recovery(CI_FUZZ_SEEDS_PER_TEST + 1..=CI_FUZZ_SEEDS);
    }

    /// Run one `prime-fuzz` seed with its default arguments and require it to pass.
    fn fuzz_seed_passes(seed: u64) {
        let run = PrimeFuzzScenario
            .run_counted(&RunOptions::with_seed(seed))
            .expect("runs");
        assert!(
            run.outcome.passed,
            "seed {seed}: {:?}\nreproduce with: {}",
            run.outcome.failure, run.outcome.repro
        );
    }

    /// Seed 905: a PO-REQUEST lost on the way to one server and an ack lost on the way to
    /// another left both without any pre-ordered slot, so neither sent a PO-SUMMARY and repair
    /// skipped them: nothing ever executed (see `catchup`'s test of the same name).
    #[test]
    fn prime_fuzz_seed_905_repairs_servers_that_never_sent_a_summary() {
        fuzz_seed_passes(905);
    }

    /// Seed 1799: the same stall as seed 905, drawn with another fault schedule.
    #[test]
    fn prime_fuzz_seed_1799_repairs_servers_that_never_sent_a_summary() {
        fuzz_seed_passes(1799);
    }

    /// Seed 2016 (also 2061, 3331, 3513, 3821, 3867): a restarted server JUMPed to the stable
    /// checkpoint at slot 50 while the others had executed to 59 and gone idle; the PO-REQUESTs
    /// slots 51-59 made eligible had been garbage-collected, and no later checkpoint came, so it
    /// stayed at 50 forever. PO slots are now kept back to what the stable checkpoint executed.
    #[test]
    fn prime_fuzz_seed_2016_keeps_po_requests_a_jumped_server_still_needs() {
        fuzz_seed_passes(2016);
    }

    #[test]
    fn register_adds_every_prime_scenario() {
        let mut registry = Registry::new();
        register(&mut registry);
        for name in [
            "prime-normal",
            "prime-leader-delay",
            "prime-equivocation",
            "prime-crash-recover",
            "prime-fuzz",
        ] {
            assert!(registry.get(name).is_some(), "{name} registered");
        }
    }
}
