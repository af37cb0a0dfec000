//! Hash commands: HSET, HGET, HDEL, HGETALL, HINCRBY. An emptied hash disappears, as in Redis.

use std::collections::BTreeMap;

use super::{entry_cost, field_cost, Entry, StateMachine, Value};
use crate::command::Bytes;
use crate::error::KvError;
use crate::number::parse_i64;
use crate::reply::Reply;

/// A hash being edited in place; counts the accounted bytes its fields gain and lose.
struct HashEdit<'a> {
    fields: &'a mut BTreeMap<Bytes, Bytes>,
    added_bytes: usize,
    removed_bytes: usize,
}

impl HashEdit<'_> {
    fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field)
    }

    /// Set `field`; true if it is new.
    fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.added_bytes += field_cost(field, value);
        match self.fields.insert(field.to_vec(), value.to_vec()) {
            Some(old) => {
                self.removed_bytes += field_cost(field, &old);
                false
            }
            None => true,
        }
    }

    /// Remove `field`; true if it was there.
    fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some(old) => {
                self.removed_bytes += field_cost(field, &old);
                true
            }
            None => false,
        }
    }
}

impl StateMachine {
    /// The hash under `key`: `Ok(None)` if absent, WRONGTYPE if a string.
    fn live_hash(&self, now: u64, key: &[u8]) -> Result<Option<&BTreeMap<Bytes, Bytes>>, KvError> {
        match self.live(now, key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => Ok(Some(h)),
            Some(_) => Err(KvError::WrongType),
        }
    }

    /// Apply `edit` to the hash under `key` (created empty if absent) in place, keeping the
    /// accounting, the deadline, and the rule that an empty hash is no key at all. Costs
    /// O(log fields) per field touched, whatever the size of the hash.
    fn edit_hash<T>(
        &mut self,
        now: u64,
        key: &[u8],
        growth_bound: usize,
        edit: impl FnOnce(&mut HashEdit<'_>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        self.purge_if_expired(now, key);
        self.live_hash(now, key)?;
        let exists = self.entries.contains_key(key);
        let new_key_cost = if exists {
            0
        } else {
            entry_cost(key, &Value::Hash(BTreeMap::new()))
        };
        self.ensure_room(growth_bound + new_key_cost)?;
        if !exists {
            self.put(key, Value::Hash(BTreeMap::new()), None);
        }
        let Some(Entry {
            value: Value::Hash(fields),
            ..
        }) = self.entries.get_mut(key)
        else {
            // `live_hash` above saw a hash or nothing, and nothing became an empty hash.
            return Err(KvError::WrongType);
        };
        let mut editor = HashEdit {
            fields,
            added_bytes: 0,
            removed_bytes: 0,
        };
        let out = edit(&mut editor);
        let HashEdit {
            fields,
            added_bytes,
            removed_bytes,
        } = editor;
        let emptied = fields.is_empty();
        self.used_bytes = self.used_bytes + added_bytes - removed_bytes;
        if emptied {
            self.remove(key);
        } else {
            self.mark_changed(key);
        }
        out
    }

    pub(super) fn hset(
        &mut self,
        now: u64,
        key: &[u8],
        pairs: &[(Bytes, Bytes)],
    ) -> Result<Reply, KvError> {
        let growth: usize = pairs.iter().map(|(f, v)| field_cost(f, v)).sum();
        self.edit_hash(now, key, growth, |hash| {
            let mut added = 0;
            for (f, v) in pairs {
                if hash.insert(f, v) {
                    added += 1;
                }
            }
            Ok(Reply::Integer(added))
        })
    }

    pub(super) fn hget(&self, now: u64, key: &[u8], field: &[u8]) -> Result<Reply, KvError> {
        Ok(match self.live_hash(now, key)?.and_then(|h| h.get(field)) {
            Some(v) => Reply::bulk(v),
            None => Reply::Nil,
        })
    }

    pub(super) fn hdel(
        &mut self,
        now: u64,
        key: &[u8],
        fields: &[Bytes],
    ) -> Result<Reply, KvError> {
        if self.live_hash(now, key)?.is_none() {
            return Ok(Reply::Integer(0));
        }
        self.edit_hash(now, key, 0, |hash| {
            Ok(Reply::Integer(
                fields.iter().filter(|f| hash.remove(f)).count() as i64,
            ))
        })
    }

    pub(super) fn hgetall(&self, now: u64, key: &[u8]) -> Result<Reply, KvError> {
        let pairs = self
            .live_hash(now, key)?
            .map(|h| {
                h.iter()
                    .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Reply::Map(pairs))
    }

    pub(super) fn hincr_by(
        &mut self,
        now: u64,
        key: &[u8],
        field: &[u8],
        delta: i64,
    ) -> Result<Reply, KvError> {
        // The decimal form of any i64 is at most 20 bytes.
        let growth = field_cost(field, &[0u8; 20]);
        self.edit_hash(now, key, growth, |hash| {
            let current = match hash.get(field) {
                Some(v) => parse_i64(v).ok_or(KvError::HashValueNotAnInteger)?,
                None => 0,
            };
            let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
            hash.insert(field, next.to_string().as_bytes());
            Ok(Reply::Integer(next))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::StateMachine;
    use crate::limits::Limits;
    use crate::reply::Reply;

    fn sm() -> StateMachine {
        StateMachine::new(Limits::DEFAULT)
    }

    #[test]
    fn hset_hget_hdel_hgetall() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "hset h b 2 a 1"), Reply::Integer(2));
        assert_eq!(
            cmd(&mut s, 0, "hset h a 9 c 3"),
            Reply::Integer(1),
            "only new fields count"
        );
        assert_eq!(cmd(&mut s, 0, "hget h a"), bulk("9"));
        assert_eq!(cmd(&mut s, 0, "hmset h c 4"), Reply::ok());
        assert_eq!(cmd(&mut s, 0, "hmset h c 3"), Reply::ok());
        assert_eq!(cmd(&mut s, 0, "hget h zz"), Reply::Nil);
        assert_eq!(cmd(&mut s, 0, "hget nope a"), Reply::Nil);
        assert_eq!(
            cmd(&mut s, 0, "hgetall h"),
            Reply::Map(vec![
                (bulk("a"), bulk("9")),
                (bulk("b"), bulk("2")),
                (bulk("c"), bulk("3"))
            ])
        );
        assert_eq!(cmd(&mut s, 0, "hgetall nope"), Reply::Map(vec![]));
        assert_eq!(cmd(&mut s, 0, "hdel h a zz"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 0, "hdel nope a"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "hdel h b c"), Reply::Integer(2));
        assert_eq!(
            cmd(&mut s, 0, "exists h"),
            Reply::Integer(0),
            "an emptied hash is gone"
        );
        assert_eq!(s.used_bytes(), 0);
    }

    #[test]
    fn hincrby_and_errors() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "hincrby h n 5"), Reply::Integer(5));
        assert_eq!(cmd(&mut s, 0, "hincrby h n -7"), Reply::Integer(-2));
        cmd(&mut s, 0, "hset h s abc");
        assert_eq!(
            cmd(&mut s, 0, "hincrby h s 1"),
            err("ERR hash value is not an integer")
        );
        cmd(&mut s, 0, "hset h m 9223372036854775807");
        assert_eq!(
            cmd(&mut s, 0, "hincrby h m 1"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(cmd(&mut s, 0, "hget h m"), bulk("9223372036854775807"));
        assert_eq!(
            cmd(&mut s, 0, "hincrby fresh m x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            cmd(&mut s, 0, "exists fresh"),
            Reply::Integer(0),
            "a failed HINCRBY creates nothing"
        );
        cmd(&mut s, 0, "set str v");
        for c in [
            "hset str f v",
            "hget str f",
            "hdel str f",
            "hgetall str",
            "hincrby str f 1",
        ] {
            assert_eq!(cmd(&mut s, 0, c), err(WRONGTYPE), "{c}");
        }
    }

    #[test]
    fn hashes_keep_their_ttl_and_expire() {
        let mut s = sm();
        cmd(&mut s, 0, "hset h f v");
        cmd(&mut s, 0, "pexpire h 100");
        cmd(&mut s, 50, "hset h g w");
        assert_eq!(cmd(&mut s, 50, "pttl h"), Reply::Integer(50));
        assert_eq!(cmd(&mut s, 100, "hgetall h"), Reply::Map(vec![]));
        assert_eq!(
            cmd(&mut s, 100, "hset h f v"),
            Reply::Integer(1),
            "the expired hash was replaced"
        );
    }
}
