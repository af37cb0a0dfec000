//! The simulator's one seeded random stream and the few draws it needs.
//!
//! Draws are written here rather than taken from `rand` so a run stays bit-for-bit the same when a
//! dependency changes its sampling algorithm.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The world's random stream: the network, the fault injector, adversaries and every protocol draw
/// from it in event order, so the seed alone fixes the run.
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// A stream fixed by `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A uniform integer in `0..bound` (`0` when `bound` is zero). Lemire's multiply-shift: the
    /// bias is below 2^-32 for the bounds a simulation uses.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.inner.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// True with probability `threshold / 2^64` (see [`probability_threshold`]).
    #[inline]
    pub fn chance(&mut self, threshold: u64) -> bool {
        threshold != 0 && self.inner.next_u64() < threshold
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit_f64(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A probability in `[0, 1]` as a threshold for [`SimRng::chance`]; out-of-range values clamp.
pub fn probability_threshold(p: f64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

impl RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SimRng::new(9);
        let mut b = SimRng::new(9);
        let mut c = SimRng::new(10);
        let xa: Vec<u64> = (0..8).map(|_| a.below(1000)).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.below(1000)).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.below(1000)).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert!(xa.iter().all(|&x| x < 1000));
    }

    #[test]
    fn chance_matches_probability() {
        let mut r = SimRng::new(1);
        let t = probability_threshold(0.25);
        let hits = (0..100_000).filter(|_| r.chance(t)).count();
        assert!((24_000..26_000).contains(&hits), "hits {hits}");
        assert!(!r.chance(probability_threshold(0.0)));
        assert!(r.chance(probability_threshold(1.0)));
    }
}
