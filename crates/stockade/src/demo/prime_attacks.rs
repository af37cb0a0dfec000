//! `stockade demo`: the replicated KV service as `stockade cluster up` starts it (4 `stockade
//! server` processes running Prime with f = 1, and the voting proxy, on loopback), a Redis workload
//! through the proxy, and two attacks on Prime's leader, one after the other:
//!
//! 1. fault-free, for reference;
//! 2. the leader delays its pre-prepares to one per `--delay-ms`, just under a plain leader timeout
//!    of `--timeout-ms` that would tolerate it for ever. Prime's suspect-leader (paper 004 section
//!    5.1; PRIME.md "Suspect-leader") must replace it;
//! 3. the leader then signs two different pre-prepares for each slot and shows each to half the
//!    servers. The re-flooding of pre-prepares (PRIME.md step 8) must expose it, and a view change
//!    replace it.
//!
//! Every server's configuration has an `[attack]` section naming a control file
//! ([`stockade_kv::service_config::AttackConfig`], [`stockade_kv::attack_control`]); the demo
//! writes the attack into the file of whichever server leads when a phase begins and removes it
//! when the phase ends, so at most one server misbehaves at any time. The servers export what Prime
//! detected as metrics, which the demo reads while the workload runs ([`super::metrics_watch`]).
//! At the end every acknowledged write is read back. The verdict fails when a write was lost, a
//! read was wrong, a command failed, or an attack went undetected or its leader unreplaced.

use std::fs;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;
use stockade_kv::attack_control::AttackSwitches;
use stockade_kv::service_config::{AttackConfig, ServiceConfig, ATTACK_DELAY_MS_MAX};
use stockade_replication::PrimeConfig;

use super::metrics_watch::{MetricsWatch, Reading};
use super::phases::{Timeline, UpdateFigures};
use super::workload::{self, Verification, WorkloadRecord};
use crate::cli::DemoArgs;
use crate::headline::{print_headline, Verdict};

/// Byzantine servers tolerated: 4 servers.
const DEMO_F: usize = 1;
/// Servers of the cluster.
const SERVERS: usize = 3 * DEMO_F + 1;
/// Longest phase accepted, in seconds.
pub const PHASE_SECONDS_MAX: u64 = 600;
/// Most workload clients.
pub const CLIENTS_MAX: usize = 64;
/// Times the equivocation moves to the next leader when its target stopped leading before it
/// could equivocate (the view changed for another reason, within the control file's poll period).
pub const RETARGETS_MAX: u32 = 3;
/// How often the demo looks at the latest metrics while an attack runs.
const ATTACK_CHECK_MS: u64 = 100;
/// Lines of failures quoted in the report (the rest are counted).
const QUOTED_FAILURES_MAX: usize = 5;

/// Stops the cluster however the demo ends.
struct ClusterGuard<'a>(&'a Path);

impl Drop for ClusterGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = stockade_kv::cluster::cluster_down(self.0) {
            eprintln!("stopping the demo's cluster: {e}");
        }
    }
}

fn check_args(args: &DemoArgs) -> anyhow::Result<()> {
    if !(1..=PHASE_SECONDS_MAX).contains(&args.phase_seconds) {
        bail!("--phase-seconds must be between 1 and {PHASE_SECONDS_MAX}");
    }
    if args.delay_ms == 0 || args.delay_ms >= args.timeout_ms {
        bail!("--delay-ms must be above 0 and below --timeout-ms (the attack stays under the timeout)");
    }
    if args.timeout_ms > ATTACK_DELAY_MS_MAX {
        bail!("--timeout-ms must be at most {ATTACK_DELAY_MS_MAX}");
    }
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        bail!("--clients must be between 1 and {CLIENTS_MAX}");
    }
    Ok(())
}

/// The leader of `view` (Prime's rotation, `Prime::leader_of`).
fn leader_of(view: u64) -> u32 {
    (view % SERVERS as u64) as u32
}

/// The servers' attack control files (`[attack] control_file`).
struct AttackControls {
    dir: PathBuf,
}

impl AttackControls {
    fn path(&self, server: u32) -> PathBuf {
        self.dir.join(format!("server{server}.attack"))
    }

    /// Make `server` misbehave as `switches` say (within the server's poll period).
    fn set(&self, server: u32, switches: &AttackSwitches) -> anyhow::Result<()> {
        let path = self.path(server);
        // Written whole, then renamed: the server never reads half a file.
        let partial = path.with_extension("attack.partial");
        fs::write(&partial, switches.to_text())
            .and_then(|()| fs::rename(&partial, &path))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Make `server` correct again.
    fn clear(&self, server: u32) -> anyhow::Result<()> {
        let path = self.path(server);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Write the cluster's files under `dir`, every server with an `[attack]` section that lets the
/// demo switch its attacks through a control file; returns every server's metrics address.
fn write_attackable_cluster(
    dir: &Path,
    base_port: u16,
    controls: &AttackControls,
) -> anyhow::Result<Vec<SocketAddr>> {
    let paths = stockade_kv::cluster::write_cluster(dir, SERVERS, DEMO_F, base_port)
        .context("writing the cluster's keys and configurations")?;
    let mut metrics = Vec::new();
    for (server, path) in paths[..SERVERS].iter().enumerate() {
        let mut config = ServiceConfig::load(path)?;
        config.attack = Some(AttackConfig {
            misbehave_on_purpose: true,
            delay_pre_prepares_ms: None,
            equivocate_pre_prepares: false,
            from_ms: 0,
            until_ms: None,
            control_file: Some(controls.path(server as u32)),
        });
        config.save(path)?;
        metrics.push(
            config
                .node
                .metrics
                .with_context(|| format!("{} serves no metrics", path.display()))?,
        );
    }
    Ok(metrics)
}

/// The demo's directory: `--dir` (which must hold no cluster yet) or a temporary one.
fn demo_dir(args: &DemoArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.dir {
        Some(dir) => {
            let occupied = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
            if occupied {
                bail!(
                    "{} is not empty: give the demo a new or empty directory",
                    dir.display()
                );
            }
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let dir =
                fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
            Ok((dir, None))
        }
        None => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

/// One attack as the demo ran it: which server misbehaved, from when, in which view.
#[derive(Clone, Copy, Debug)]
struct AttackRun {
    attacker: u32,
    /// The view it led when the attack began.
    view: u64,
    /// Since the demo's start.
    began: Duration,
}

fn sleep_until(start: Instant, at: Duration) {
    std::thread::sleep((start + at).saturating_duration_since(Instant::now()));
}

/// Whether the latest reading shows the attacker (the `u32`) caught.
type CaughtTest<'a> = &'a dyn Fn(&Reading, u32) -> bool;

/// Attack whoever leads at the start of `window` with `switches` until the window ends; with
/// `retarget`, move to the next leader while `caught` has not happened and the target stopped
/// leading (up to [`RETARGETS_MAX`] times).
fn attack_the_leader(
    controls: &AttackControls,
    watch: &MetricsWatch,
    start: Instant,
    window: Range<Duration>,
    switches: &AttackSwitches,
    retarget: Option<CaughtTest<'_>>,
) -> anyhow::Result<AttackRun> {
    sleep_until(start, window.start);
    let view = watch.latest().map_or(0, |r| r.view());
    let mut run = AttackRun {
        attacker: leader_of(view),
        view,
        began: start.elapsed(),
    };
    controls.set(run.attacker, switches)?;
    let mut retargets = 0;
    while start.elapsed() < window.end {
        std::thread::sleep(
            Duration::from_millis(ATTACK_CHECK_MS)
                .min((start + window.end).saturating_duration_since(Instant::now())),
        );
        let (Some(caught), Some(latest)) = (retarget, watch.latest()) else {
            continue;
        };
        if latest.view() != run.view && !caught(&latest, run.attacker) && retargets < RETARGETS_MAX
        {
            controls.clear(run.attacker)?;
            retargets += 1;
            run = AttackRun {
                attacker: leader_of(latest.view()),
                view: latest.view(),
                began: start.elapsed(),
            };
            controls.set(run.attacker, switches)?;
        }
    }
    controls.clear(run.attacker)?;
    Ok(run)
}

/// Run the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<Verdict> {
    check_args(args)?;
    let timeline = Timeline {
        phase: Duration::from_secs(args.phase_seconds),
    };
    let (dir, _temp) = demo_dir(args)?;
    let base_port = match args.base_port {
        0 => crate::kv_bench::free_base_port(SERVERS as u16 + 1)?,
        port => port,
    };
    let controls = AttackControls { dir: dir.clone() };
    let metrics = write_attackable_cluster(&dir, base_port, &controls)?;
    print_introduction(args, &timeline);

    let exe = std::env::current_exe().context("finding this binary to start the daemons")?;
    let start = Instant::now();
    let guard = ClusterGuard(&dir);
    let proxy = stockade_kv::cluster::cluster_up(&dir, SERVERS, DEMO_F, base_port, &exe)
        .context("starting the cluster")?;
    let watch = MetricsWatch::start(metrics, start);
    let (clients, end) = (args.clients, timeline.end());
    let workload = std::thread::spawn(move || workload::run(proxy, clients, start, end));

    let delay = AttackSwitches {
        delay_pre_prepares_ms: Some(args.delay_ms),
        equivocate_pre_prepares: false,
    };
    let delaying = attack_the_leader(
        &controls,
        &watch,
        start,
        timeline.delaying_leader(),
        &delay,
        None,
    )?;
    let equivocate = AttackSwitches {
        delay_pre_prepares_ms: None,
        equivocate_pre_prepares: true,
    };
    let caught = |r: &Reading, attacker: u32| r.reports_against(attacker) > 0;
    let equivocating = attack_the_leader(
        &controls,
        &watch,
        start,
        timeline.equivocating_leader(),
        &equivocate,
        Some(&caught),
    )?;
    let record = workload
        .join()
        .map_err(|_| anyhow::anyhow!("the workload thread panicked"))??;
    let readings = watch.finish();
    let verification = workload::verify(proxy, &record.acknowledged_keys)?;
    drop(guard);

    let outcome = Outcome::assess(
        &timeline,
        &record,
        &readings,
        verification,
        delaying,
        equivocating,
    );
    outcome.print(args, &timeline, &record, &dir);
    Ok(Verdict::from_passed(outcome.failures.is_empty()))
}

fn print_introduction(args: &DemoArgs, timeline: &Timeline) {
    println!(
        "What runs: the replicated Redis-compatible KV service as {SERVERS} `stockade server` processes \
         (Prime, tolerating f = {DEMO_F} Byzantine server) and the voting proxy, on 127.0.0.1, linked by \
         Noise over UDP, every protocol message signed (Ed25519)."
    );
    println!(
        "{} Redis clients write through the proxy (SET of {} B values, reading some back) in three \
         phases of {} s after a {} s warm-up:",
        args.clients,
        workload::VALUE_BYTES,
        args.phase_seconds,
        super::phases::WARM_UP.as_secs()
    );
    println!("  1. fault-free;");
    println!(
        "  2. the leader proposes only once per {} ms: slow, but under a plain {} ms leader timeout, \
         which would keep it as leader for ever;",
        args.delay_ms, args.timeout_ms
    );
    println!(
        "  3. the leader then signs two different pre-prepares for every slot and shows each to half \
         of the servers."
    );
    println!(
        "The attacker is whichever server leads when its phase begins, switched through the control \
         file of its [attack] section; at most f = {DEMO_F} server misbehaves at any time. The phases \
         end {:.0} s after start.\n",
        timeline.end().as_secs_f64()
    );
}

/// What the demo found.
struct Outcome {
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
    failures: Vec<String>,
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
    fn assess(
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

    fn print(&self, args: &DemoArgs, timeline: &Timeline, record: &WorkloadRecord, dir: &Path) {
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
