//! Durable storage as protocols see it: atomic batches of key-value operations, and a read view.
//!
//! A protocol emits [`StoreOp`] batches through `Context::persist`; the driver makes each batch
//! durable atomically (redb in the runtime, a per-node map in the simulator) and then calls
//! `Protocol::on_persisted`. On restart a protocol is rebuilt from a [`StoreRead`] holding exactly
//! the batches that became durable before the crash.

use std::collections::BTreeMap;
use std::ops::Bound;

/// One operation of an atomic persist batch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StoreOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove `key` if present.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Remove every key in `start..end`.
    DeleteRange {
        /// First key removed.
        start: Vec<u8>,
        /// First key kept.
        end: Vec<u8>,
    },
}

impl StoreOp {
    /// Bytes this operation writes (for accounting and simulated disk time).
    pub fn size_bytes(&self) -> usize {
        match self {
            StoreOp::Put { key, value } => key.len() + value.len(),
            StoreOp::Delete { key } => key.len(),
            StoreOp::DeleteRange { start, end } => start.len() + end.len(),
        }
    }
}

/// Read access to what a node has persisted.
pub trait StoreRead {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Every pair with `start <= key < end`, in key order.
    fn range(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        match prefix_end(prefix) {
            Some(end) => self.range(prefix, &end),
            None => self
                .range(prefix, &[])
                .into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .collect(),
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, if there is one.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// An in-memory store: the simulator's durable storage and a test helper.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Apply one batch atomically.
    pub fn apply(&mut self, ops: &[StoreOp]) {
        for op in ops {
            match op {
                StoreOp::Put { key, value } => {
                    self.map.insert(key.clone(), value.clone());
                }
                StoreOp::Delete { key } => {
                    self.map.remove(key);
                }
                StoreOp::DeleteRange { start, end } => {
                    let doomed: Vec<Vec<u8>> = self
                        .map
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        self.map.remove(&k);
                    }
                }
            }
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Total bytes of keys and values held.
    pub fn size_bytes(&self) -> usize {
        self.map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl StoreRead for MemStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).cloned()
    }

    /// An empty `end` means "to the end of the store".
    fn range(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        self.map
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> StoreOp {
        StoreOp::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn batches_apply_in_order_and_ranges_delete() {
        let mut s = MemStore::new();
        s.apply(&[put(b"a1", b"x"), put(b"a2", b"y"), put(b"b1", b"z")]);
        s.apply(&[
            StoreOp::Delete {
                key: b"a1".to_vec(),
            },
            put(b"a1", b"w"),
        ]);
        assert_eq!(s.get(b"a1"), Some(b"w".to_vec()));
        assert_eq!(s.scan_prefix(b"a").len(), 2);
        s.apply(&[StoreOp::DeleteRange {
            start: b"a".to_vec(),
            end: b"b".to_vec(),
        }]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(b"b1"), Some(b"z".to_vec()));
    }

    #[test]
    fn prefix_end_handles_all_ones() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }
}
