//! A node's share of the DHT: the replicas it is responsible for, under a storage quota, and a
//! bounded cache of objects seen on lookup routes (paper 002, "DHT: Replication" and "DHT: Dynamic
//! caching": nodes cache in the unused part of their space).
//!
//! The cache holds immutable (content-hash) objects only. A public-key object changes: a newer
//! version or a tombstone replaces it on its k replicas, but nobody tells the caches, and a
//! lookup stops at the first node holding a copy. A cached copy of one would answer lookups with
//! a stale value, or with a removed one, for as long as it stayed cached; so those are answered
//! by their replicas only.

use std::collections::{BTreeMap, VecDeque};

use thiserror::Error;

use super::object::StoredObject;
use crate::id::OverlayId;

/// Why a replica was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The node's quota is used up.
    #[error(
        "storage quota exceeded: object needs {needed} bytes, {free} of {quota} free on this node"
    )]
    QuotaExceeded {
        /// Bytes the object needs.
        needed: usize,
        /// Bytes free.
        free: usize,
        /// The quota.
        quota: usize,
    },
    /// An immutable object, or a signed object no newer than the stored one.
    #[error(
        "a same-or-newer version of this key is already stored (content-hash objects never change)"
    )]
    NotNewer,
}

/// Replicas held under a byte quota.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    quota_bytes_max: usize,
    used_bytes: usize,
    objects: BTreeMap<OverlayId, StoredObject>,
}

impl ObjectStore {
    /// An empty store of at most `quota_bytes_max` bytes.
    pub fn new(quota_bytes_max: usize) -> ObjectStore {
        ObjectStore {
            quota_bytes_max,
            used_bytes: 0,
            objects: BTreeMap::new(),
        }
    }

    /// Store a verified object (a newer signed version replaces the old one).
    pub fn insert(&mut self, object: StoredObject) -> Result<(), StoreError> {
        let freed = match self.objects.get(&object.key) {
            Some(old) if !object.supersedes(old) => {
                return if *old == object {
                    Ok(())
                } else {
                    Err(StoreError::NotNewer)
                };
            }
            Some(old) => old.charged_bytes(),
            None => 0,
        };
        let needed = object.charged_bytes();
        let free = self.quota_bytes_max - self.used_bytes + freed;
        if needed > free {
            return Err(StoreError::QuotaExceeded {
                needed,
                free,
                quota: self.quota_bytes_max,
            });
        }
        self.used_bytes = self.used_bytes - freed + needed;
        self.objects.insert(object.key, object);
        Ok(())
    }

    /// The object under `key`.
    pub fn get(&self, key: OverlayId) -> Option<&StoredObject> {
        self.objects.get(&key)
    }

    /// Drop and return the object under `key`.
    pub fn take(&mut self, key: OverlayId) -> Option<StoredObject> {
        let object = self.objects.remove(&key)?;
        self.used_bytes -= object.charged_bytes();
        Some(object)
    }

    /// Keys held, in order.
    pub fn keys(&self) -> Vec<OverlayId> {
        self.objects.keys().copied().collect()
    }

    /// Bytes used against the quota.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Objects cached from lookup routes, evicting the least recently used beyond a byte bound.
#[derive(Clone, Debug)]
pub struct ObjectCache {
    cache_bytes_max: usize,
    used_bytes: usize,
    objects: BTreeMap<OverlayId, StoredObject>,
    recency: VecDeque<OverlayId>,
}

impl ObjectCache {
    /// An empty cache of at most `cache_bytes_max` bytes.
    pub fn new(cache_bytes_max: usize) -> ObjectCache {
        ObjectCache {
            cache_bytes_max,
            used_bytes: 0,
            objects: BTreeMap::new(),
            recency: VecDeque::new(),
        }
    }

    /// Cache a verified object, evicting the least recently used to make room. An object larger
    /// than the whole cache, or a public-key object (it may be replaced or removed, see the module
    /// doc), is not cached.
    pub fn insert(&mut self, object: StoredObject) {
        let needed = object.charged_bytes();
        if needed > self.cache_bytes_max || !object.is_cacheable() {
            return;
        }
        if let Some(old) = self.objects.get(&object.key) {
            if !object.supersedes(old) {
                return;
            }
            self.remove(object.key);
        }
        while self.used_bytes + needed > self.cache_bytes_max {
            let Some(oldest) = self.recency.pop_front() else {
                break;
            };
            if let Some(evicted) = self.objects.remove(&oldest) {
                self.used_bytes -= evicted.charged_bytes();
            }
        }
        self.used_bytes += needed;
        self.recency.push_back(object.key);
        self.objects.insert(object.key, object);
    }

    /// A cached object, marked as recently used.
    pub fn get(&mut self, key: OverlayId) -> Option<&StoredObject> {
        if self.objects.contains_key(&key) {
            self.recency.retain(|k| *k != key);
            self.recency.push_back(key);
        }
        self.objects.get(&key)
    }

    /// Whether `key` is cached (without touching recency).
    pub fn contains(&self, key: OverlayId) -> bool {
        self.objects.contains_key(&key)
    }

    fn remove(&mut self, key: OverlayId) {
        if let Some(old) = self.objects.remove(&key) {
            self.used_bytes -= old.charged_bytes();
            self.recency.retain(|k| *k != key);
        }
    }

    /// Bytes cached.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(fill: u8, len: usize) -> StoredObject {
        StoredObject::content_hashed(vec![fill; len])
    }

    #[test]
    fn the_quota_is_enforced_with_a_clear_error() {
        let a = object(1, 100);
        let mut store = ObjectStore::new(a.charged_bytes() + 50);
        assert_eq!(store.insert(a.clone()), Ok(()));
        assert_eq!(
            store.insert(a.clone()),
            Ok(()),
            "storing the same object twice is idempotent"
        );
        let b = object(2, 100);
        assert_eq!(
            store.insert(b.clone()),
            Err(StoreError::QuotaExceeded {
                needed: b.charged_bytes(),
                free: 50,
                quota: a.charged_bytes() + 50
            })
        );
        assert_eq!(store.take(a.key).map(|o| o.key), Some(a.key));
        assert_eq!(store.used_bytes(), 0);
        assert_eq!(store.insert(b), Ok(()));
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_at_its_bound() {
        let (a, b, c) = (object(1, 100), object(2, 100), object(3, 100));
        let mut cache = ObjectCache::new(a.charged_bytes() * 2);
        cache.insert(a.clone());
        cache.insert(b.clone());
        assert!(cache.get(a.key).is_some(), "a becomes most recent");
        cache.insert(c.clone());
        assert!(cache.contains(a.key) && cache.contains(c.key));
        assert!(!cache.contains(b.key), "b was least recently used");
        assert!(cache.used_bytes() <= a.charged_bytes() * 2);
        cache.insert(object(4, 10_000));
        assert!(
            cache.contains(a.key),
            "an object bigger than the cache is not cached"
        );
    }

    #[test]
    fn the_cache_refuses_objects_that_can_be_replaced_or_removed() {
        let owner = stockade_crypto::ed25519::SigningKey::from_bytes([3; 32]);
        let mut cache = ObjectCache::new(1 << 20);
        let value = StoredObject::signed(&owner, 1, b"v1".to_vec());
        cache.insert(value.clone());
        cache.insert(StoredObject::tombstone(&owner, 2));
        assert!(
            !cache.contains(value.key),
            "a stale copy could hide updates"
        );
        assert_eq!(cache.used_bytes(), 0);
        let immutable = object(1, 10);
        cache.insert(immutable.clone());
        assert!(cache.contains(immutable.key));
    }
}
