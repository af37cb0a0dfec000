//! A protocol's named timers: each timer value has at most one deadline; setting replaces it,
//! cancelling disarms it. Due timers come out in deadline order (ties in the order set).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use stockade_core::Time;

/// Stale heap entries (from replaced or cancelled timers) tolerated beyond the live ones before
/// the heap is rebuilt.
pub const STALE_ENTRIES_MAX: usize = 1024;

/// Named timers with one deadline each.
pub struct TimerSet<T> {
    /// Live timers: deadline and the generation of their heap entry.
    live: HashMap<T, (Time, u64)>,
    /// Which timer a generation belongs to (only live generations).
    owner: HashMap<u64, T>,
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    next_generation: u64,
}

impl<T: Clone + Eq + Hash> Default for TimerSet<T> {
    fn default() -> Self {
        TimerSet::new()
    }
}

impl<T: Clone + Eq + Hash> TimerSet<T> {
    /// No timers armed.
    pub fn new() -> Self {
        TimerSet {
            live: HashMap::new(),
            owner: HashMap::new(),
            heap: BinaryHeap::new(),
            next_generation: 0,
        }
    }

    /// Arm `timer` for `at`, replacing its pending deadline.
    pub fn set(&mut self, timer: T, at: Time) {
        let generation = self.next_generation;
        self.next_generation += 1;
        if let Some((_, old)) = self.live.insert(timer.clone(), (at, generation)) {
            self.owner.remove(&old);
        }
        self.owner.insert(generation, timer);
        self.heap.push(Reverse((at, generation)));
        if self.heap.len() > self.live.len() + STALE_ENTRIES_MAX {
            self.compact();
        }
    }

    /// Disarm `timer` if armed.
    pub fn cancel(&mut self, timer: &T) {
        if let Some((_, generation)) = self.live.remove(timer) {
            self.owner.remove(&generation);
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Entries in the heap, live or stale (bounded by `len() + STALE_ENTRIES_MAX`).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, generation))) = self.heap.peek() {
            if self.owner.contains_key(generation) {
                return;
            }
            self.heap.pop();
        }
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&mut self) -> Option<Time> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Disarm and return the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Time) -> Option<T> {
        self.drop_stale_top();
        let Reverse((at, generation)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        let timer = self.owner.remove(&generation)?;
        self.live.remove(&timer);
        Some(timer)
    }

    fn compact(&mut self) {
        let owner = &self.owner;
        self.heap
            .retain(|Reverse((_, generation))| owner.contains_key(generation));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_cancel_disarms_and_due_timers_come_in_order() {
        let mut t = TimerSet::new();
        t.set("a", Time::from_millis(30));
        t.set("b", Time::from_millis(10));
        t.set("a", Time::from_millis(5));
        t.set("c", Time::from_millis(20));
        t.cancel(&"c");
        assert_eq!(t.next_deadline(), Some(Time::from_millis(5)));
        assert_eq!(t.pop_due(Time::from_millis(100)), Some("a"));
        assert_eq!(t.pop_due(Time::from_millis(9)), None, "b is not due yet");
        assert_eq!(t.pop_due(Time::from_millis(100)), Some("b"));
        assert_eq!(
            t.pop_due(Time::from_millis(100)),
            None,
            "a fired once, c was cancelled"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn rearming_one_timer_forever_keeps_the_heap_bounded() {
        let mut t = TimerSet::new();
        for i in 0..10 * STALE_ENTRIES_MAX as u64 {
            t.set(0u8, Time::from_millis(1_000_000 - i));
        }
        assert_eq!(t.len(), 1);
        assert!(
            t.heap_len() <= 1 + STALE_ENTRIES_MAX,
            "heap holds {}",
            t.heap_len()
        );
        assert!(
            t.heap_len() > STALE_ENTRIES_MAX / 2,
            "the bound was reached"
        );
    }
}
