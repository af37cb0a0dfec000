//! A server that misbehaves on purpose, for demonstrations and tests: [`AttackSchedule`] switches
//! Prime's attack behaviours ([`stockade_replication::Attack`]: a leader that delays its
//! pre-prepares, a leader that equivocates) on at one moment of the server's life and off again at
//! another. [`crate::replica::KvReplica`] applies it as its time passes; a correct server has no
//! schedule at all. The `[attack]` section of a server's configuration file builds one
//! (`service_config::AttackConfig`, feature `net`).

use std::time::Duration;

use stockade_core::Time;
use stockade_replication::Attack;

/// When a server misbehaves, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackSchedule {
    attack: Attack,
    from: Time,
    until: Option<Time>,
    state: ScheduleState,
}

/// Where the schedule stands: the attack is switched on once and off at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScheduleState {
    Waiting,
    Active,
    Over,
}

impl AttackSchedule {
    /// Misbehave as `attack` says from `from` after the server started until `until` after it
    /// started (for ever without `until`).
    pub fn new(attack: Attack, from: Duration, until: Option<Duration>) -> AttackSchedule {
        let at = |d: Duration| Time::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        AttackSchedule {
            attack,
            from: at(from),
            until: until.map(at),
            state: ScheduleState::Waiting,
        }
    }

    /// The attack this schedule switches on.
    pub fn attack(&self) -> &Attack {
        &self.attack
    }

    /// What Prime's attack switches must become at `now`, when that changes: the attack once its
    /// start has come, then a correct server ([`Attack::default`]) once its end has.
    pub fn change_at(&mut self, now: Time) -> Option<Attack> {
        let ended = self.until.is_some_and(|until| now >= until);
        match self.state {
            ScheduleState::Waiting if ended => {
                self.state = ScheduleState::Over;
                None
            }
            ScheduleState::Waiting if now >= self.from => {
                self.state = ScheduleState::Active;
                Some(self.attack.clone())
            }
            ScheduleState::Active if ended => {
                self.state = ScheduleState::Over;
                Some(Attack::default())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delaying() -> Attack {
        Attack {
            pre_prepare_delay: Some(Duration::from_millis(450)),
            ..Attack::default()
        }
    }

    #[test]
    fn the_attack_starts_at_its_time_and_stops_at_its_end_once_each() {
        let mut schedule = AttackSchedule::new(
            delaying(),
            Duration::from_secs(2),
            Some(Duration::from_secs(5)),
        );
        assert_eq!(schedule.change_at(Time::from_millis(1_999)), None);
        assert_eq!(
            schedule.change_at(Time::from_millis(2_000)),
            Some(delaying())
        );
        assert_eq!(schedule.change_at(Time::from_millis(3_000)), None, "once");
        assert_eq!(
            schedule.change_at(Time::from_millis(5_000)),
            Some(Attack::default()),
            "a correct server again"
        );
        assert_eq!(schedule.change_at(Time::from_millis(9_000)), None);
    }

    #[test]
    fn without_an_end_the_attack_lasts() {
        let mut schedule = AttackSchedule::new(delaying(), Duration::ZERO, None);
        assert_eq!(schedule.change_at(Time::from_millis(0)), Some(delaying()));
        assert_eq!(schedule.change_at(Time::from_secs(1_000_000)), None);
    }

    #[test]
    fn a_window_missed_entirely_never_switches_the_attack_on() {
        let mut schedule = AttackSchedule::new(
            delaying(),
            Duration::from_secs(1),
            Some(Duration::from_secs(2)),
        );
        // The server was busy (or not yet called) through the whole window.
        assert_eq!(schedule.change_at(Time::from_millis(2_500)), None);
        assert_eq!(schedule.change_at(Time::from_millis(1_500)), None);
    }
}
