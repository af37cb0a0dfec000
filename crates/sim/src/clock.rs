//! Per-node clock drift: the time a node reads and the deadlines it sets run at their own rate and
//! offset from the simulation's true time (TigerBeetle's simulated clock skew).

use stockade_core::Time;

/// How one node's clock relates to true time: `local = offset + true * (1 + rate_ppm / 10^6)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ClockSpec {
    /// Constant offset of the local clock, in nanoseconds (negative: behind). Local time saturates
    /// at zero.
    pub offset_ns: i64,
    /// Rate error in parts per million (positive: the clock runs fast). Clamped to at least
    /// `-999_999` so a clock never stops or runs backwards.
    pub rate_ppm: i64,
}

const PPM: i128 = 1_000_000;

impl ClockSpec {
    /// A perfect clock.
    pub const EXACT: ClockSpec = ClockSpec {
        offset_ns: 0,
        rate_ppm: 0,
    };

    fn rate(self) -> i128 {
        PPM + self.rate_ppm.max(-(PPM as i64) + 1) as i128
    }

    /// The local reading at true time `t`.
    pub fn local(self, t: Time) -> Time {
        if self == ClockSpec::EXACT {
            return t;
        }
        let local = self.offset_ns as i128 + t.as_nanos() as i128 * self.rate() / PPM;
        Time::from_nanos(local.clamp(0, u64::MAX as i128) as u64)
    }

    /// The earliest true time at which the local clock reads at least `local`.
    pub fn true_time_of(self, local: Time) -> Time {
        if self == ClockSpec::EXACT {
            return local;
        }
        let since_offset = local.as_nanos() as i128 - self.offset_ns as i128;
        if since_offset <= 0 {
            return Time::ZERO;
        }
        // Ceiling division, so that at the returned time the local reading has reached `local`.
        let rate = self.rate();
        let t = (since_offset * PPM + rate - 1) / rate;
        Time::from_nanos(t.clamp(0, u64::MAX as i128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_clock_fires_timers_early_in_true_time() {
        let fast = ClockSpec {
            offset_ns: 0,
            rate_ppm: 100_000,
        }; // 10% fast
        assert_eq!(fast.local(Time::from_secs(10)), Time::from_secs(11));
        let fire = fast.true_time_of(Time::from_secs(11));
        assert_eq!(fire, Time::from_secs(10));
        assert!(fast.local(fire) >= Time::from_secs(11));
    }

    #[test]
    fn offset_and_round_trip_never_fire_early() {
        let c = ClockSpec {
            offset_ns: 5_000,
            rate_ppm: -333,
        };
        for local_ns in [5_000u64, 7_777, 1_000_000_007, 123_456_789_012] {
            let t = c.true_time_of(Time::from_nanos(local_ns));
            assert!(
                c.local(t).as_nanos() >= local_ns,
                "fires at or after the local deadline"
            );
            if t.as_nanos() > 0 {
                assert!(
                    c.local(Time::from_nanos(t.as_nanos() - 1)).as_nanos() < local_ns,
                    "earliest"
                );
            }
        }
        assert_eq!(
            ClockSpec {
                offset_ns: -50,
                rate_ppm: 0
            }
            .local(Time::from_nanos(10)),
            Time::ZERO
        );
    }
}
