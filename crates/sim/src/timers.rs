//! A node's armed named timers: each name has at most one deadline, identified by a generation
//! number so a superseded deadline still in the event queue is recognised as stale.
//!
//! Most protocols arm a handful of timers; the first [`TIMERS_INLINE`] live inside the node (no
//! allocation, no extra cache miss on a 100,000-node run), the rest spill into a hash map.

use std::hash::Hash;

use crate::hash::FxHashMap;

/// Timers kept inline before spilling into the map.
pub const TIMERS_INLINE: usize = 2;

pub(crate) struct TimerTable<T> {
    inline: [Option<(T, u64)>; TIMERS_INLINE],
    /// Boxed so an unused spill map costs one pointer per node.
    spill: Option<Box<FxHashMap<T, u64>>>,
}

impl<T: Eq + Hash> Default for TimerTable<T> {
    fn default() -> Self {
        TimerTable {
            inline: [None, None],
            spill: None,
        }
    }
}

impl<T: Eq + Hash> TimerTable<T> {
    /// Arm `timer` with `generation`, replacing its previous deadline.
    #[inline]
    pub fn insert(&mut self, timer: T, generation: u64) {
        for (name, g) in self.inline.iter_mut().flatten() {
            if *name == timer {
                *g = generation;
                return;
            }
        }
        if let Some(g) = self.spill.as_mut().and_then(|m| m.get_mut(&timer)) {
            *g = generation;
            return;
        }
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(free) => *free = Some((timer, generation)),
            None => {
                self.spill
                    .get_or_insert_with(Box::default)
                    .insert(timer, generation);
            }
        }
    }

    /// The generation of `timer`'s current deadline.
    #[inline]
    pub fn get(&self, timer: &T) -> Option<u64> {
        for (name, g) in self.inline.iter().flatten() {
            if name == timer {
                return Some(*g);
            }
        }
        self.spill.as_ref().and_then(|m| m.get(timer)).copied()
    }

    /// Disarm `timer`.
    #[inline]
    pub fn remove(&mut self, timer: &T) {
        for slot in &mut self.inline {
            if slot.as_ref().is_some_and(|(name, _)| name == timer) {
                *slot = None;
                return;
            }
        }
        if let Some(m) = &mut self.spill {
            m.remove(timer);
        }
    }

    /// Disarm everything.
    pub fn clear(&mut self) {
        self.inline = [None, None];
        self.spill = None;
    }

    /// Timers armed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.spill.as_ref().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_cancel_and_spill() {
        let mut t = TimerTable::default();
        for name in 0..5u32 {
            t.insert(name, name as u64);
        }
        assert_eq!(t.len(), 5, "three spilled");
        t.insert(4, 40);
        t.insert(0, 10);
        assert_eq!(t.get(&4), Some(40), "set replaces in the spill map");
        assert_eq!(t.get(&0), Some(10), "set replaces inline");
        assert_eq!(t.len(), 5);
        t.remove(&0);
        t.remove(&3);
        assert_eq!(t.get(&0), None);
        assert_eq!(t.get(&3), None);
        t.insert(7, 70);
        assert_eq!(t.get(&7), Some(70), "freed inline slot reused");
        t.clear();
        assert_eq!(t.len(), 0);
    }
}
