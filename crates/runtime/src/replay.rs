//! The sliding anti-replay window of one session (RFC 6479 style): which of the last
//! [`REPLAY_WINDOW_NONCES`] nonces were accepted.
//!
//! Datagrams are sealed with an explicit 64-bit nonce because UDP reorders and drops; the window
//! accepts each nonce at most once and rejects nonces that fell behind it.

/// How many nonces behind the highest one accepted are still remembered.
pub const REPLAY_WINDOW_NONCES: u64 = 2048;

const WORD_BITS: u64 = 64;
const WORDS: usize = (REPLAY_WINDOW_NONCES / WORD_BITS) as usize;

/// Why a nonce was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplayVerdict {
    /// Never seen and inside the window (or ahead of it).
    Fresh,
    /// Already accepted once.
    Replayed,
    /// More than the window behind the highest nonce accepted.
    TooOld,
}

/// Bitmap of accepted nonces in `highest - REPLAY_WINDOW_NONCES + 1 ..= highest`.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    bits: [u64; WORDS],
    /// The highest nonce accepted plus one (0: nothing accepted yet).
    next: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> ReplayWindow {
        ReplayWindow {
            bits: [0; WORDS],
            next: 0,
        }
    }

    fn slot(nonce: u64) -> (usize, u64) {
        let bit = nonce % REPLAY_WINDOW_NONCES;
        ((bit / WORD_BITS) as usize, 1u64 << (bit % WORD_BITS))
    }

    /// Whether `nonce` would be accepted. Call before decrypting, so replays cost no AEAD work.
    pub fn check(&self, nonce: u64) -> ReplayVerdict {
        if nonce >= self.next {
            return ReplayVerdict::Fresh;
        }
        if self.next - nonce > REPLAY_WINDOW_NONCES {
            return ReplayVerdict::TooOld;
        }
        let (word, mask) = Self::slot(nonce);
        if self.bits[word] & mask != 0 {
            ReplayVerdict::Replayed
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Record `nonce` as accepted. Call only after the datagram authenticated, so forged nonces
    /// cannot move the window.
    pub fn accept(&mut self, nonce: u64) -> ReplayVerdict {
        let verdict = self.check(nonce);
        if verdict != ReplayVerdict::Fresh {
            return verdict;
        }
        if nonce >= self.next {
            // Clear the slots the window slides over; at most one full lap.
            let advance = (nonce + 1 - self.next).min(REPLAY_WINDOW_NONCES);
            for offset in 0..advance {
                let (word, mask) = Self::slot(self.next + offset);
                self.bits[word] &= !mask;
            }
            self.next = nonce + 1;
        }
        let (word, mask) = Self::slot(nonce);
        self.bits[word] |= mask;
        ReplayVerdict::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_nonce_is_accepted_once_even_out_of_order() {
        let mut w = ReplayWindow::new();
        for n in [5, 1, 3, 2, 0, 4] {
            assert_eq!(w.accept(n), ReplayVerdict::Fresh, "nonce {n}");
        }
        for n in 0..6 {
            assert_eq!(w.accept(n), ReplayVerdict::Replayed, "nonce {n}");
        }
    }

    #[test]
    fn nonces_behind_the_window_are_too_old_and_the_edge_is_kept() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(10_000), ReplayVerdict::Fresh);
        let oldest_kept = 10_000 - REPLAY_WINDOW_NONCES + 1;
        assert_eq!(w.accept(oldest_kept), ReplayVerdict::Fresh);
        assert_eq!(w.accept(oldest_kept), ReplayVerdict::Replayed);
        assert_eq!(w.accept(oldest_kept - 1), ReplayVerdict::TooOld);
    }

    #[test]
    fn sliding_forward_forgets_old_bits_of_reused_slots() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(1), ReplayVerdict::Fresh);
        // 1 + window maps onto the same bit as 1; it must not look replayed.
        assert_eq!(w.accept(1 + REPLAY_WINDOW_NONCES), ReplayVerdict::Fresh);
        assert_eq!(w.accept(2 + REPLAY_WINDOW_NONCES), ReplayVerdict::Fresh);
        assert_eq!(w.check(1), ReplayVerdict::TooOld);
    }
}
