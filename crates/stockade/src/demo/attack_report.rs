//! What `stockade demo` found ([`super::prime_attacks`]): the update figures of each phase, when
//! each attack was detected and its leader replaced (from the metrics readings), the read-back of
//! every acknowledged write, the verdict, and how it is printed: plain words, then one JSON line.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use stockade_replication::PrimeConfig;

use super::metrics_watch::Reading;
use super::phases::{Timeline, UpdateFigures};
use super::prime_attacks::{AttackRun, DEMO_F, SERVERS};
use super::workload::{Verification, WorkloadRecord};
use crate::cli::DemoArgs;
use crate::headline::print_headline;

/// Lines of failures quoted in the report (the rest are counted).
const QUOTED_FAILURES_MAX: usize = 5;

/// What the demo found.
pub(super) struct Outcome {
    fault_free: UpdateFigures,
    delaying: UpdateFigures,
    after_replacement: Option<UpdateFigures>,
    equivocating: UpdateFigures,
    /// View changes in the fault-free phase: suspicions of correct leaders.
    view_changes_fault_free: u64,
    delaying_run: AttackRun,
    /// How long after the delay began the view moved past the delaying leader's.
    delaying_replaced_after: Option<Duration>,
    suspicions_under_delay: u64,
    equivocating_run: AttackRun,
    /// How long after the equivocation began the first report naming the attacker showed.
    equivocation_detected_after: Option<Duration>,
    servers_reporting: usize,
    misbehaviour_reports: u64,
    equivocating_replaced_after: Option<Duration>,
    verification: Verification,
    /// Why the demo failed (empty when it passed).
    pub(super) failures: Vec<String>,
}

/// The first reading from `run.began` to `until` for which `seen` holds, as time since the attack
/// began.
fn first_seen(
    readings: &[Reading],
    run: &AttackRun,
    until: Duration,
    seen: impl Fn(&Reading) -> bool,
) -> Option<Duration> {
    readings
        .iter()
        .find(|r| r.at >= run.began && r.at < until && seen(r))
        .map(|r| r.at - run.began)
}

/// The last reading before `at`.
fn reading_at(readings: &[Reading], at: Duration) -> Option<&Reading> {
    readings.iter().rev().find(|r| r.at <= at)
}

impl Outcome {
    /// Put the figures, readings and read-back of one run together.
    pub(super) fn assess(
        timeline: &Timeline,
        record: &WorkloadRecord,
        readings: &[Reading],
        verification: Verification,
        delaying_run: AttackRun,
        equivocating_run: AttackRun,
    ) -> Outcome {
        let figures = |window: Range<Duration>| UpdateFigures::of(&record.updates, window);
        let between = |window: &Range<Duration>, what: &dyn Fn(&Reading) -> u64| {
            let at = |t| reading_at(readings, t).map_or(0, what);
            at(window.end).saturating_sub(at(window.start))
        };
        let delaying_window = timeline.delaying_leader();
        let equivocating_window = timeline.equivocating_leader();
        let delaying_replaced_after =
            first_seen(readings, &delaying_run, delaying_window.end, |r| {
                r.view() > delaying_run.view
            });
        let after_replacement = delaying_replaced_after
            .map(|after| figures(delaying_run.began + after..delaying_window.end));
        let attacker = equivocating_run.attacker;
        let end = readings.last();
        let mut outcome = Outcome {
            fault_free: figures(timeline.fault_free()),
            delaying: figures(delaying_window.clone()),
            after_replacement,
            equivocating: figures(equivocating_window.clone()),
            view_changes_fault_free: between(&timeline.fault_free(), &Reading::view),
            delaying_run,
            delaying_replaced_after,
            suspicions_under_delay: between(&delaying_window, &Reading::suspicions),
            equivocating_run,
            equivocation_detected_after: first_seen(
                readings,
                &equivocating_run,
                Duration::MAX,
                |r| r.reports_against(attacker) > 0,
            ),
            servers_reporting: end.map_or(0, |r| r.servers_reporting(attacker)),
            misbehaviour_reports: end.map_or(0, |r| r.reports_against(attacker)),
            equivocating_replaced_after: first_seen(
                readings,
                &equivocating_run,
                Duration::MAX,
                |r| r.view() > equivocating_run.view,
            ),
            verification,
            failures: Vec::new(),
        };
        outcome.failures = outcome.failures(record);
        outcome
    }

    fn failures(&self, record: &WorkloadRecord) -> Vec<String> {
        let mut failures = Vec::new();
        let mut fail = |bad: bool, what: String| {
            if bad {
                failures.push(what);
            }
        };
        fail(
            self.fault_free.updates == 0,
            "no update completed in the fault-free phase (did the cluster start?)".into(),
        );
        fail(
            self.delaying_replaced_after.is_none(),
            "suspect-leader did not replace the delaying leader within its phase".into(),
        );
        fail(
            self.equivocation_detected_after.is_none(),
            format!(
                "no server caught server {}'s conflicting pre-prepares",
                self.equivocating_run.attacker
            ),
        );
        fail(
            self.equivocating_replaced_after.is_none(),
            "the equivocating leader was not replaced".into(),
        );
        fail(
            !self.verification.lost.is_empty(),
            format!(
                "{} acknowledged writes were lost",
                self.verification.lost.len()
            ),
        );
        fail(
            !self.verification.unread.is_empty(),
            format!(
                "{} batches of acknowledged writes could not be read back",
                self.verification.unread.len()
            ),
        );
        fail(
            !record.wrong_answers.is_empty(),
            format!(
                "{} reads returned a wrong value",
                record.wrong_answers.len()
            ),
        );
        fail(
            !record.failed_commands.is_empty(),
            format!(
                "{} commands failed or timed out",
                record.failed_commands.len()
            ),
        );
        failures
    }

    /// Print the report and, last, the JSON headline.
    pub(super) fn print(
        &self,
        args: &DemoArgs,
        timeline: &Timeline,
        record: &WorkloadRecord,
        dir: &Path,
    ) {
        let seconds = |d: Option<Duration>| {
            d.map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
        };
        let cfg = PrimeConfig::new(DEMO_F, 0);
        let (num, den) = cfg.k_lat;
        let bound_floor_ms = cfg.tat_acceptable_min.as_secs_f64() * 1e3 * f64::from(num)
            / f64::from(den)
            + cfg.pre_prepare_period.as_secs_f64() * 1e3;
        println!("\n1. Fault-free: {}.", self.fault_free.describe());
        if self.view_changes_fault_free > 0 {
            println!(
                "   {} view changes without any attack: suspect-leader replaced correct leaders whose turnaround \
                 exceeded its bound (at least {bound_floor_ms:.0} ms here); a loaded CPU delays them that much.",
                self.view_changes_fault_free
            );
        } else {
            println!(
                "   No view change: every leader kept its turnaround under suspect-leader's bound."
            );
        }
        let delayer = self.delaying_run.attacker;
        println!(
            "\n2. Delaying leader: server {delayer} (leader of view {}) proposes once per {} ms; a {} ms leader \
             timeout would never fire.",
            self.delaying_run.view, args.delay_ms, args.timeout_ms
        );
        println!(
            "   detected: the servers suspected the leader {} times, its turnaround being above K_lat x \
             TAT_acceptable + the pre-prepare period (at least {bound_floor_ms:.0} ms here); suspect-leader \
             replaced server {delayer} {} after the attack began (control file read every 0.05 s, metrics \
             every 0.1 s).",
            self.suspicions_under_delay,
            seconds(self.delaying_replaced_after)
        );
        println!("   figures: {}.", self.delaying.describe());
        println!(
            "   cost against fault-free: {}.",
            self.delaying.cost_against(&self.fault_free)
        );
        if let Some(after) = &self.after_replacement {
            println!("   after the replacement: {}.", after.describe());
        }
        println!(
            "   with only a {} ms leader timeout this leader would have stayed, every update waiting up to {} ms \
             for its next pre-prepare (`stockade sim prime-leader-delay` measures that configuration).",
            args.timeout_ms, args.delay_ms
        );
        let equivocator = self.equivocating_run.attacker;
        println!(
            "\n3. Equivocating leader: server {equivocator} (leader of view {}) signs two different pre-prepares \
             per slot.",
            self.equivocating_run.view
        );
        println!(
            "   detected: {} servers caught it by re-flooding the pre-prepares they received ({} misbehaviour \
             reports naming server {equivocator}, the first {} after the attack began); it was replaced {} after \
             the attack began.",
            self.servers_reporting,
            self.misbehaviour_reports,
            seconds(self.equivocation_detected_after),
            seconds(self.equivocating_replaced_after)
        );
        println!("   figures: {}.", self.equivocating.describe());
        println!(
            "   cost against fault-free: {}.",
            self.equivocating.cost_against(&self.fault_free)
        );
        println!(
            "\nResults: {} of {} acknowledged writes read back intact at the end; {} reads during the run \
             returned exactly what was written, {} did not; {} commands failed.",
            self.verification.intact,
            record.acknowledged_keys.len(),
            record.reads_checked,
            record.wrong_answers.len(),
            record.failed_commands.len()
        );
        let problems = self
            .verification
            .lost
            .iter()
            .chain(&self.verification.unread)
            .chain(&record.wrong_answers)
            .chain(&record.failed_commands);
        for problem in problems.take(QUOTED_FAILURES_MAX) {
            println!("  - {problem}");
        }
        if self.failures.is_empty() {
            println!(
                "Verdict: both attacks were detected and their leaders replaced, and no write was lost."
            );
        } else {
            println!(
                "Verdict: FAILED: {}. Logs: {}",
                self.failures.join("; "),
                dir.display()
            );
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        print_headline(&json!({
            "demo": "prime-attacks",
            "servers": SERVERS,
            "f": DEMO_F,
            "clients": args.clients,
            "phase_seconds": args.phase_seconds,
            "leader_delay_ms": args.delay_ms,
            "leader_timeout_ms": args.timeout_ms,
            "workload_seconds": timeline.end().as_secs_f64(),
            "fault_free": self.fault_free.json(),
            "view_changes_fault_free": self.view_changes_fault_free,
            "delaying_leader": {
                "server": delayer,
                "view": self.delaying_run.view,
                "figures": self.delaying.json(),
                "after_replacement": self.after_replacement.as_ref().map(UpdateFigures::json),
                "suspicions": self.suspicions_under_delay,
                "replaced": self.delaying_replaced_after.is_some(),
                "replaced_after_ms": ms(self.delaying_replaced_after),
            },
            "equivocating_leader": {
                "server": equivocator,
                "view": self.equivocating_run.view,
                "figures": self.equivocating.json(),
                "detected": self.equivocation_detected_after.is_some(),
                "detected_after_ms": ms(self.equivocation_detected_after),
                "servers_reporting": self.servers_reporting,
                "misbehaviour_reports": self.misbehaviour_reports,
                "replaced": self.equivocating_replaced_after.is_some(),
                "replaced_after_ms": ms(self.equivocating_replaced_after),
            },
            "acknowledged_writes": record.acknowledged_keys.len(),
            "writes_read_back_intact": self.verification.intact,
            "lost_writes": self.verification.lost.len(),
            "reads_checked": record.reads_checked,
            "wrong_reads": record.wrong_answers.len(),
            "failed_commands": record.failed_commands.len(),
            "passed": self.failures.is_empty(),
            "failures": self.failures,
        }));
    }
}
