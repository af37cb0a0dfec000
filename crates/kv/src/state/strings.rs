//! String commands: GET, SET (all options), GETSET, INCRBY and friends, APPEND, STRLEN, MGET, MSET.

use std::collections::BTreeMap;

use super::{entry_cost, Entry, StateMachine, Value};
use crate::command::{Bytes, SetCondition, SetExpiry};
use crate::error::KvError;
use crate::number::parse_i64;
use crate::reply::Reply;

/// `now + amount * unit_ms` as an absolute deadline, or `None` if it leaves Redis's range
/// (deadlines are signed 64-bit milliseconds in Redis).
pub(super) fn deadline_after(now: u64, amount: i64, unit_ms: i64) -> Option<i128> {
    let at = now as i128 + amount as i128 * unit_ms as i128;
    (at <= i64::MAX as i128).then_some(at)
}

impl StateMachine {
    /// The string under `key`: `Ok(None)` if absent, WRONGTYPE if a hash.
    pub(super) fn live_str(&self, now: u64, key: &[u8]) -> Result<Option<&Entry>, KvError> {
        match self.live(now, key) {
            None => Ok(None),
            Some(
                e @ Entry {
                    value: Value::Str(_),
                    ..
                },
            ) => Ok(Some(e)),
            Some(_) => Err(KvError::WrongType),
        }
    }

    pub(super) fn get(&self, now: u64, key: &[u8]) -> Result<Reply, KvError> {
        Ok(match self.live_str(now, key)? {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Reply::bulk(s),
            _ => Reply::Nil,
        })
    }

    pub(super) fn set(
        &mut self,
        now: u64,
        key: &[u8],
        value: &[u8],
        condition: SetCondition,
        expiry: SetExpiry,
        get: bool,
    ) -> Result<Reply, KvError> {
        self.purge_if_expired(now, key);
        let old = self.entries.get(key);
        // SET ... GET on a hash is WRONGTYPE before anything else happens (Redis 7).
        let old_reply = match old {
            None => Reply::Nil,
            Some(Entry {
                value: Value::Str(s),
                ..
            }) if get => Reply::bulk(s),
            Some(_) if get => return Err(KvError::WrongType),
            Some(_) => Reply::Nil,
        };
        let blocked = match condition {
            SetCondition::Always => false,
            SetCondition::IfAbsent => old.is_some(),
            SetCondition::IfPresent => old.is_none(),
        };
        if blocked {
            return Ok(if get { old_reply } else { Reply::Nil });
        }
        let deadline = match expiry {
            SetExpiry::Clear => None,
            SetExpiry::Keep => old.and_then(|e| e.expires_at_ms).map(i128::from),
            SetExpiry::Seconds(s) => {
                Some(deadline_after(now, s, 1000).ok_or(KvError::InvalidExpireTime("set"))?)
            }
            SetExpiry::Millis(ms) => {
                Some(deadline_after(now, ms, 1).ok_or(KvError::InvalidExpireTime("set"))?)
            }
            SetExpiry::AtSeconds(s) => Some(s as i128 * 1000),
            SetExpiry::AtMillis(ms) => Some(ms as i128),
        };
        let new_value = Value::Str(value.to_vec());
        self.ensure_room_for(key, entry_cost(key, &new_value))?;
        match deadline {
            // An absolute deadline already passed: the key is written and gone at once.
            Some(at) if at <= now as i128 => {
                self.remove(key);
            }
            _ => self.put(key, new_value, deadline.map(|at| at as u64)),
        }
        Ok(if get { old_reply } else { Reply::ok() })
    }

    pub(super) fn getset(&mut self, now: u64, key: &[u8], value: &[u8]) -> Result<Reply, KvError> {
        self.set(
            now,
            key,
            value,
            SetCondition::Always,
            SetExpiry::Clear,
            true,
        )
    }

    pub(super) fn incr_by(&mut self, now: u64, key: &[u8], delta: i64) -> Result<Reply, KvError> {
        self.purge_if_expired(now, key);
        let (current, deadline) = match self.live_str(now, key)? {
            Some(Entry {
                value: Value::Str(s),
                expires_at_ms,
            }) => (parse_i64(s).ok_or(KvError::NotAnInteger)?, *expires_at_ms),
            _ => (0, None),
        };
        let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
        let value = Value::Str(next.to_string().into_bytes());
        self.ensure_room_for(key, entry_cost(key, &value))?;
        self.put(key, value, deadline);
        Ok(Reply::Integer(next))
    }

    pub(super) fn append(&mut self, now: u64, key: &[u8], tail: &[u8]) -> Result<Reply, KvError> {
        self.purge_if_expired(now, key);
        let (mut s, deadline) = match self.live_str(now, key)? {
            Some(Entry {
                value: Value::Str(s),
                expires_at_ms,
            }) => (s.clone(), *expires_at_ms),
            _ => (Vec::new(), None),
        };
        if s.len() + tail.len() > self.limits.value_bytes_max {
            return Err(KvError::StringTooLong);
        }
        self.ensure_room(
            tail.len()
                + if self.entries.contains_key(key) {
                    0
                } else {
                    entry_cost(key, &Value::Str(Vec::new()))
                },
        )?;
        s.extend_from_slice(tail);
        let len = s.len();
        self.put(key, Value::Str(s), deadline);
        Ok(Reply::Integer(len as i64))
    }

    pub(super) fn strlen(&self, now: u64, key: &[u8]) -> Result<Reply, KvError> {
        Ok(match self.live_str(now, key)? {
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Reply::Integer(s.len() as i64),
            _ => Reply::Integer(0),
        })
    }

    pub(super) fn mget(&self, now: u64, keys: &[Bytes]) -> Reply {
        Reply::Array(
            keys.iter()
                .map(|k| match self.live(now, k) {
                    Some(Entry {
                        value: Value::Str(s),
                        ..
                    }) => Reply::bulk(s),
                    _ => Reply::Nil,
                })
                .collect(),
        )
    }

    pub(super) fn mset(&mut self, now: u64, pairs: &[(Bytes, Bytes)]) -> Result<Reply, KvError> {
        // The last value of a repeated key wins; check the net growth before writing anything.
        let last: BTreeMap<&[u8], &[u8]> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let mut growth: i128 = 0;
        for (k, v) in &last {
            growth += (super::ENTRY_OVERHEAD_BYTES + k.len() + v.len()) as i128;
            growth -= self.entries.get(*k).map_or(0, |e| entry_cost(k, &e.value)) as i128;
        }
        self.ensure_room(growth.max(0) as usize)?;
        for (k, v) in last {
            self.purge_if_expired(now, k);
            self.put(k, Value::Str(v.to_vec()), None);
        }
        Ok(Reply::ok())
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
    fn set_get_and_overwrite() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "get k"), Reply::Nil);
        assert_eq!(cmd(&mut s, 0, "set k v1"), Reply::ok());
        assert_eq!(cmd(&mut s, 0, "set k v2"), Reply::ok());
        assert_eq!(cmd(&mut s, 0, "get k"), bulk("v2"));
    }

    #[test]
    fn nx_xx_and_get_combinations() {
        let mut s = sm();
        assert_eq!(
            cmd(&mut s, 0, "set k a xx"),
            Reply::Nil,
            "XX on a missing key does nothing"
        );
        assert_eq!(cmd(&mut s, 0, "get k"), Reply::Nil);
        assert_eq!(cmd(&mut s, 0, "set k a nx"), Reply::ok());
        assert_eq!(
            cmd(&mut s, 0, "set k b nx"),
            Reply::Nil,
            "NX on an existing key does nothing"
        );
        assert_eq!(cmd(&mut s, 0, "get k"), bulk("a"));
        assert_eq!(
            cmd(&mut s, 0, "set k b nx get"),
            bulk("a"),
            "NX GET blocked: old value"
        );
        assert_eq!(cmd(&mut s, 0, "get k"), bulk("a"));
        assert_eq!(
            cmd(&mut s, 0, "set k c xx get"),
            bulk("a"),
            "XX GET: old value, and set"
        );
        assert_eq!(cmd(&mut s, 0, "get k"), bulk("c"));
        assert_eq!(
            cmd(&mut s, 0, "set fresh x nx get"),
            Reply::Nil,
            "NX GET on a missing key sets"
        );
        assert_eq!(cmd(&mut s, 0, "get fresh"), bulk("x"));
        assert_eq!(cmd(&mut s, 0, "set k d get"), bulk("c"));
        cmd(&mut s, 0, "hset h f v");
        assert_eq!(cmd(&mut s, 0, "set h x get"), err(WRONGTYPE));
        assert_eq!(
            cmd(&mut s, 0, "hget h f"),
            bulk("v"),
            "a failed SET GET leaves the hash"
        );
        assert_eq!(
            cmd(&mut s, 0, "set h x"),
            Reply::ok(),
            "plain SET overwrites any type"
        );
        assert_eq!(cmd(&mut s, 0, "get h"), bulk("x"));
    }

    #[test]
    fn expiry_follows_the_agreed_time_only() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 1_000, "set k v px 100"), Reply::ok());
        assert_eq!(cmd(&mut s, 1_099, "get k"), bulk("v"));
        assert_eq!(cmd(&mut s, 1_099, "pttl k"), Reply::Integer(1));
        assert_eq!(
            cmd(&mut s, 1_100, "get k"),
            Reply::Nil,
            "expired exactly at the deadline"
        );
        assert_eq!(cmd(&mut s, 1_100, "exists k"), Reply::Integer(0));
        assert_eq!(
            s.stored_keys(),
            0,
            "active expiry reclaimed it before the command"
        );
        assert_eq!(cmd(&mut s, 2_000, "set k v ex 2"), Reply::ok());
        assert_eq!(cmd(&mut s, 2_000, "ttl k"), Reply::Integer(2));
        assert_eq!(
            cmd(&mut s, 3_499, "ttl k"),
            Reply::Integer(1),
            "TTL rounds to nearest second"
        );
        assert_eq!(cmd(&mut s, 3_999, "get k"), bulk("v"));
        assert_eq!(cmd(&mut s, 4_000, "get k"), Reply::Nil);
    }

    #[test]
    fn time_never_runs_backwards_inside_the_state() {
        let mut s = sm();
        cmd(&mut s, 5_000, "set k v px 10");
        assert_eq!(
            cmd(&mut s, 1, "get k"),
            bulk("v"),
            "an earlier stamp runs at the state's clock"
        );
        assert_eq!(s.clock_ms(), 5_000);
        assert_eq!(cmd(&mut s, 5_010, "get k"), Reply::Nil);
    }

    #[test]
    fn keepttl_and_absolute_deadlines() {
        let mut s = sm();
        cmd(&mut s, 0, "set k v px 500");
        assert_eq!(cmd(&mut s, 100, "set k w keepttl"), Reply::ok());
        assert_eq!(cmd(&mut s, 100, "pttl k"), Reply::Integer(400));
        cmd(&mut s, 100, "set k w");
        assert_eq!(
            cmd(&mut s, 100, "pttl k"),
            Reply::Integer(-1),
            "plain SET clears the TTL"
        );
        assert_eq!(cmd(&mut s, 100, "set k w pxat 300"), Reply::ok());
        assert_eq!(cmd(&mut s, 100, "pttl k"), Reply::Integer(200));
        assert_eq!(cmd(&mut s, 100, "set k w exat 10"), Reply::ok());
        assert_eq!(
            cmd(&mut s, 100, "pttl k"),
            Reply::Integer(9_900),
            "EXAT 10 is 10,000 ms"
        );
        assert_eq!(cmd(&mut s, 20_000, "set k w pxat 5"), Reply::ok());
        assert_eq!(
            cmd(&mut s, 20_000, "exists k"),
            Reply::Integer(0),
            "a past deadline deletes"
        );
        assert_eq!(
            cmd(&mut s, 1_000, "set k v px 9223372036854775000"),
            err("ERR invalid expire time in 'set' command"),
            "relative deadlines past the signed 64-bit range are refused"
        );
    }

    #[test]
    fn incr_family_and_integer_errors() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "incr n"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 0, "incrby n 41"), Reply::Integer(42));
        assert_eq!(cmd(&mut s, 0, "decr n"), Reply::Integer(41));
        assert_eq!(cmd(&mut s, 0, "decrby n 50"), Reply::Integer(-9));
        assert_eq!(cmd(&mut s, 0, "get n"), bulk("-9"));
        cmd(&mut s, 0, "set n 9223372036854775806");
        assert_eq!(cmd(&mut s, 0, "incr n"), Reply::Integer(i64::MAX));
        assert_eq!(
            cmd(&mut s, 0, "incr n"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            cmd(&mut s, 0, "get n"),
            bulk("9223372036854775807"),
            "failed INCR changes nothing"
        );
        cmd(&mut s, 0, "set n -9223372036854775808");
        assert_eq!(
            cmd(&mut s, 0, "decr n"),
            err("ERR increment or decrement would overflow")
        );
        for bad in ["abc", "1.5", "01", "+1", " 1"] {
            s = sm();
            super::super::test_support::run(&mut s, 0, &[b"set", b"n", bad.as_bytes()]);
            assert_eq!(
                cmd(&mut s, 0, "incr n"),
                err("ERR value is not an integer or out of range"),
                "{bad:?}"
            );
        }
        cmd(&mut s, 0, "hset h f 1");
        assert_eq!(cmd(&mut s, 0, "incr h"), err(WRONGTYPE));
    }

    #[test]
    fn incr_keeps_the_ttl() {
        let mut s = sm();
        cmd(&mut s, 0, "set n 1 px 100");
        cmd(&mut s, 10, "incr n");
        assert_eq!(cmd(&mut s, 10, "pttl n"), Reply::Integer(90));
        assert_eq!(
            cmd(&mut s, 100, "incr n"),
            Reply::Integer(1),
            "expired counter restarts at 0"
        );
        assert_eq!(cmd(&mut s, 100, "pttl n"), Reply::Integer(-1));
    }

    #[test]
    fn append_strlen_getset_mget_mset() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "append k ab"), Reply::Integer(2));
        assert_eq!(cmd(&mut s, 0, "append k cd"), Reply::Integer(4));
        assert_eq!(cmd(&mut s, 0, "strlen k"), Reply::Integer(4));
        assert_eq!(cmd(&mut s, 0, "strlen missing"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "getset k new"), bulk("abcd"));
        assert_eq!(cmd(&mut s, 0, "getset other new"), Reply::Nil);
        assert_eq!(cmd(&mut s, 0, "mset a 1 b 2 a 3"), Reply::ok());
        cmd(&mut s, 0, "hset h f v");
        assert_eq!(
            cmd(&mut s, 0, "mget a b nope h"),
            Reply::Array(vec![bulk("3"), bulk("2"), Reply::Nil, Reply::Nil]),
            "MGET answers nil for other types, never WRONGTYPE"
        );
        assert_eq!(cmd(&mut s, 0, "append h x"), err(WRONGTYPE));
        assert_eq!(cmd(&mut s, 0, "strlen h"), err(WRONGTYPE));
        assert_eq!(cmd(&mut s, 0, "getset h x"), err(WRONGTYPE));
        assert_eq!(cmd(&mut s, 0, "get h"), err(WRONGTYPE));
    }

    #[test]
    fn append_beyond_the_value_limit_is_refused() {
        let mut s = StateMachine::new(Limits {
            value_bytes_max: 4,
            ..Limits::DEFAULT
        });
        assert_eq!(cmd(&mut s, 0, "append k abc"), Reply::Integer(3));
        assert_eq!(cmd(&mut s, 0, "append k d"), Reply::Integer(4));
        assert_eq!(
            cmd(&mut s, 0, "append k e"),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
        assert_eq!(cmd(&mut s, 0, "get k"), bulk("abcd"));
    }

    #[test]
    fn memory_budget_is_enforced_and_frees_on_delete() {
        // Room for exactly two small keys: each costs overhead + 1 + 1 bytes.
        let one = crate::limits::ENTRY_OVERHEAD_BYTES + 2;
        let mut s = StateMachine::new(Limits {
            memory_bytes_max: 2 * one,
            ..Limits::DEFAULT
        });
        assert_eq!(cmd(&mut s, 0, "set a 1"), Reply::ok());
        assert_eq!(cmd(&mut s, 0, "set b 2"), Reply::ok());
        assert_eq!(s.used_bytes(), 2 * one);
        let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
        assert_eq!(cmd(&mut s, 0, "set c 3"), oom);
        assert_eq!(cmd(&mut s, 0, "mset c 3 d 4"), oom);
        assert_eq!(cmd(&mut s, 0, "append a x"), oom);
        assert_eq!(cmd(&mut s, 0, "hset h f v"), oom);
        assert_eq!(
            cmd(&mut s, 0, "exists c"),
            Reply::Integer(0),
            "refused writes leave no trace"
        );
        assert_eq!(
            cmd(&mut s, 0, "set a 9"),
            Reply::ok(),
            "same-size overwrite fits"
        );
        assert_eq!(cmd(&mut s, 0, "del b"), Reply::Integer(1));
        assert_eq!(
            cmd(&mut s, 0, "set c 3"),
            Reply::ok(),
            "deleting frees room"
        );
    }
}
