//! Deterministic hashing for the simulator: a fast hasher for internal maps (so nothing depends on
//! a per-process random seed) and the running digest of every event processed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher (the rustc "Fx" scheme): fast, and the same in every process.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    state: u64,
}

const FX_MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(FX_MULTIPLIER);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    fn finish(&self) -> u64 {
        self.state
    }
}

/// A `HashMap` whose hashing is deterministic across processes.
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The running digest of a run's event trace: every processed event's time, kind, node and a
/// kind-specific detail are folded in, so two runs with the same digest processed the same events
/// in the same order at the same times.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EventDigest(u64);

impl Default for EventDigest {
    fn default() -> Self {
        // FNV offset basis: any nonzero start works; a fixed one keeps digests comparable.
        EventDigest(0xcbf2_9ce4_8422_2325)
    }
}

impl EventDigest {
    /// Fold one event into the digest.
    #[inline]
    pub fn record(&mut self, at_ns: u64, kind: u8, node: u32, detail: u64) {
        let mut h = self.0;
        for word in [at_ns, ((kind as u64) << 32) | node as u64, detail] {
            // splitmix64 finaliser over the xor: every input bit reaches every output bit.
            h ^= word;
            h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
            h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^= h >> 31;
        }
        self.0 = h;
    }

    /// The digest value.
    pub fn value(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_order_and_content() {
        let mut a = EventDigest::default();
        a.record(1, 0, 2, 3);
        a.record(4, 1, 5, 6);
        let mut b = EventDigest::default();
        b.record(4, 1, 5, 6);
        b.record(1, 0, 2, 3);
        let mut c = EventDigest::default();
        c.record(1, 0, 2, 3);
        c.record(4, 1, 5, 6);
        assert_ne!(a, b, "order matters");
        assert_eq!(a, c, "same events, same digest");
    }

    #[test]
    fn fx_hasher_is_deterministic() {
        let mut h1 = FxHasher::default();
        h1.write(b"stockade");
        let mut h2 = FxHasher::default();
        h2.write(b"stockade");
        assert_eq!(h1.finish(), h2.finish());
        assert_ne!(h1.finish(), FxHasher::default().finish());
    }
}
