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
use stockade_kv::attack_control::AttackSwitches;
use stockade_kv::service_config::{AttackConfig, ServiceConfig, ATTACK_DELAY_MS_MAX};

use super::attack_report::Outcome;
use super::metrics_watch::{MetricsWatch, Reading};
use super::phases::Timeline;
use super::workload;
use crate::cli::DemoArgs;
use crate::headline::Verdict;

/// Byzantine servers tolerated: 4 servers.
pub(super) const DEMO_F: usize = 1;
/// Servers of the cluster.
pub(super) const SERVERS: usize = 3 * DEMO_F + 1;
/// Longest phase accepted, in seconds.
pub const PHASE_SECONDS_MAX: u64 = 600;
/// Most workload clients.
pub const CLIENTS_MAX: usize = 64;
/// Times the equivocation moves to the next leader when its target stopped leading before it
/// could equivocate (the view changed for another reason, within the control file's poll period).
pub const RETARGETS_MAX: u32 = 3;
/// How often the demo looks at the latest metrics while an attack runs.
const ATTACK_CHECK_MS: u64 = 100;

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
pub(super) struct AttackRun {
    /// The misbehaving server.
    pub(super) attacker: u32,
    /// The view it led when the attack began.
    pub(super) view: u64,
    /// Since the demo's start.
    pub(super) began: Duration,
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
