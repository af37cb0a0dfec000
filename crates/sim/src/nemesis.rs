//! Random fault schedules for fuzz scenarios (openraft's and TigerBeetle's "nemesis"): crashes
//! with restarts, pauses, and partitions, drawn from the world's seeded RNG so the seed alone fixes
//! them, with a bound on how many nodes are faulty at once (a protocol tolerating `f` faults is
//! fuzzed with at most `f`).

use std::time::Duration;

use stockade_core::{NodeId, Protocol, Time};

use crate::config::Fault;
use crate::world::World;

/// How often each kind of fault starts and how long it lasts. Rates are per simulated second over
/// the whole cluster; durations are uniform in `duration_min..=duration_max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Nemesis {
    /// Nodes that may be crashed or paused.
    pub candidates: Vec<NodeId>,
    /// At most this many candidates are crashed or paused at any time.
    pub faulty_max: usize,
    /// Crash-and-restart faults per second.
    pub crash_rate_per_sec: f64,
    /// Pause-and-resume faults per second.
    pub pause_rate_per_sec: f64,
    /// Partition-and-heal faults per second (one partition at a time: the minority side is one
    /// to `faulty_max` random candidates).
    pub partition_rate_per_sec: f64,
    /// Shortest fault.
    pub duration_min: Duration,
    /// Longest fault.
    pub duration_max: Duration,
    /// The most faults one [`Nemesis::schedule`] call draws (a bound on a mistyped rate).
    pub faults_max: usize,
}

/// Default for [`Nemesis::faults_max`].
pub const NEMESIS_FAULTS_MAX_DEFAULT: usize = 1_000_000;

/// What [`Nemesis::schedule`] scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NemesisPlan {
    /// Crash-and-restart pairs.
    pub crashes: u64,
    /// Pause-and-resume pairs.
    pub pauses: u64,
    /// Partition-and-heal pairs.
    pub partitions: u64,
    /// Faults drawn but skipped because `faulty_max` nodes were already faulty.
    pub skipped: u64,
    /// Whether drawing stopped at `faults_max` before the end of the window.
    pub truncated: bool,
}

impl Nemesis {
    /// No faults over `candidates` (set rates to enable).
    pub fn new(candidates: Vec<NodeId>, faulty_max: usize) -> Nemesis {
        Nemesis {
            candidates,
            faulty_max,
            crash_rate_per_sec: 0.0,
            pause_rate_per_sec: 0.0,
            partition_rate_per_sec: 0.0,
            duration_min: Duration::from_millis(100),
            duration_max: Duration::from_secs(2),
            faults_max: NEMESIS_FAULTS_MAX_DEFAULT,
        }
    }

    /// Draw faults for `from..until` and schedule them on `world`. Every fault ends (restart,
    /// resume, heal) by `until + duration_max`; the liveness phase heals anything left.
    pub fn schedule<P: Protocol>(
        &self,
        world: &mut World<P>,
        from: Time,
        until: Time,
    ) -> NemesisPlan {
        let mut plan = NemesisPlan::default();
        let total_rate =
            self.crash_rate_per_sec + self.pause_rate_per_sec + self.partition_rate_per_sec;
        if total_rate <= 0.0 || self.candidates.is_empty() || self.faulty_max == 0 {
            return plan;
        }
        // Per candidate: when its current fault ends.
        let mut faulty_until = vec![Time::ZERO; self.candidates.len()];
        let mut partition_until = Time::ZERO;
        let mut now = from;
        plan.truncated = true;
        for _ in 0..self.faults_max {
            // Exponential gaps: a Poisson process of all faults together.
            let gap_secs = -(1.0 - world.rng().unit_f64()).ln() / total_rate;
            now += Duration::from_secs_f64(gap_secs.min(1e9));
            if now >= until {
                plan.truncated = false;
                break;
            }
            let span = self
                .duration_max
                .saturating_sub(self.duration_min)
                .as_nanos() as u64;
            let duration = self.duration_min + Duration::from_nanos(world.rng().below(span + 1));
            let end = now + duration;
            let pick = world.rng().unit_f64() * total_rate;
            let healthy: Vec<usize> = (0..self.candidates.len())
                .filter(|&i| faulty_until[i] <= now)
                .collect();
            let faulty_now = self.candidates.len() - healthy.len();
            if pick < self.crash_rate_per_sec + self.pause_rate_per_sec {
                if faulty_now >= self.faulty_max || healthy.is_empty() {
                    plan.skipped += 1;
                    continue;
                }
                let i = healthy[world.rng().below(healthy.len() as u64) as usize];
                let node = self.candidates[i];
                faulty_until[i] = end;
                if pick < self.crash_rate_per_sec {
                    world.schedule_fault(now, Fault::Crash(node));
                    world.schedule_fault(end, Fault::Restart(node));
                    plan.crashes += 1;
                } else {
                    world.schedule_fault(now, Fault::Pause(node));
                    world.schedule_fault(end, Fault::Resume(node));
                    plan.pauses += 1;
                }
            } else {
                if partition_until > now {
                    plan.skipped += 1;
                    continue;
                }
                let minority = 1 + world.rng().below(self.faulty_max as u64) as usize;
                let mut pool = self.candidates.clone();
                let mut side = Vec::with_capacity(minority);
                while side.len() < minority && !pool.is_empty() {
                    let j = world.rng().below(pool.len() as u64) as usize;
                    side.push(pool.swap_remove(j));
                }
                world.schedule_fault(now, Fault::Partition(vec![side]));
                world.schedule_fault(end, Fault::Heal);
                partition_until = end;
                plan.partitions += 1;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinkSpec, SimConfig, Topology};

    use crate::inert::Inert as Idle;

    #[test]
    fn faults_respect_the_bound_and_are_reproducible() {
        let run = |seed| {
            let topology = Topology::full_mesh(7, LinkSpec::ideal(Duration::from_millis(1)));
            let mut world =
                World::new(SimConfig::new("nemesis", seed), topology, |_, _| Idle).expect("builds");
            let mut nemesis = Nemesis::new((0..7).map(NodeId).collect(), 2);
            nemesis.crash_rate_per_sec = 2.0;
            nemesis.pause_rate_per_sec = 1.0;
            nemesis.partition_rate_per_sec = 0.5;
            let plan = nemesis.schedule(&mut world, Time::ZERO, Time::from_secs(30));
            let mut most_down = 0;
            for step in 0..3_500u64 {
                world.run_until(Time::from_millis(step * 10)).expect("runs");
                let down = world
                    .view()
                    .nodes()
                    .filter(|n| n.status() != crate::NodeStatus::Up)
                    .count();
                most_down = most_down.max(down);
            }
            (plan, most_down, world.digest())
        };
        let (plan, most_down, digest) = run(1);
        assert!(
            plan.crashes > 20 && plan.pauses > 10 && plan.partitions > 5,
            "{plan:?}"
        );
        assert!(plan.skipped > 0, "the bound was reached: {plan:?}");
        assert_eq!(
            most_down, 2,
            "never more than faulty_max down, and the bound is reached"
        );
        assert_eq!(run(1).2, digest);
        assert_ne!(run(2).2, digest);
    }

    #[test]
    fn drawing_stops_at_faults_max() {
        let topology = Topology::full_mesh(3, LinkSpec::ideal(Duration::from_millis(1)));
        let mut world =
            World::new(SimConfig::new("nemesis", 1), topology, |_, _| Idle).expect("builds");
        let mut nemesis = Nemesis::new((0..3).map(NodeId).collect(), 1);
        nemesis.crash_rate_per_sec = 1e6;
        nemesis.faults_max = 50;
        let plan = nemesis.schedule(&mut world, Time::ZERO, Time::from_secs(3600));
        assert!(plan.truncated);
        assert_eq!(plan.crashes + plan.skipped, 50);
        nemesis.faults_max = 10_000;
        nemesis.crash_rate_per_sec = 1.0;
        assert!(
            !nemesis
                .schedule(&mut world, Time::ZERO, Time::from_secs(10))
                .truncated
        );
    }
}
