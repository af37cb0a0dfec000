//! Keyspace commands: DEL, EXISTS, EXPIRE/PEXPIRE, TTL/PTTL, PERSIST, KEYS, SCAN, DBSIZE, FLUSHDB.
//!
//! SCAN's cursor is a position in a fixed 64-bit order of keys ([`super::scan_position`]): a call
//! examines keys in position order from the cursor, stops only between two different positions,
//! and returns the position of the first key it did not examine (0 when none is left). A key that
//! exists for the whole scan has a position that never changes, so the walk reaches it exactly once
//! unless the client restarts; keys added or removed meanwhile may or may not be returned, as in
//! Redis. The cursor is a plain integer, so redis-cli and client libraries accept it.

use super::strings::deadline_after;
use super::StateMachine;
use crate::command::{Bytes, ExpireFlags, TimeUnit};
use crate::error::KvError;
use crate::glob::{glob_match, literal_prefix};
use crate::reply::Reply;

impl StateMachine {
    pub(super) fn del(&mut self, now: u64, keys: &[Bytes]) -> Reply {
        let mut removed = 0;
        for key in keys {
            self.purge_if_expired(now, key);
            if self.remove(key).is_some() {
                removed += 1;
            }
        }
        Reply::Integer(removed)
    }

    pub(super) fn exists(&self, now: u64, keys: &[Bytes]) -> Reply {
        Reply::Integer(keys.iter().filter(|k| self.live(now, k).is_some()).count() as i64)
    }

    /// EXPIRE/PEXPIRE, in the order Redis 7's `expireGenericCommand` checks things.
    pub(super) fn expire(
        &mut self,
        now: u64,
        key: &[u8],
        amount: i64,
        unit: TimeUnit,
        flags: ExpireFlags,
    ) -> Result<Reply, KvError> {
        let (unit_ms, name) = match unit {
            TimeUnit::Seconds => (1000, "expire"),
            TimeUnit::Millis => (1, "pexpire"),
        };
        let when = deadline_after(now, amount, unit_ms).ok_or(KvError::InvalidExpireTime(name))?;
        self.purge_if_expired(now, key);
        let Some(entry) = self.entries.get(key) else {
            return Ok(Reply::Integer(0));
        };
        let current = entry.expires_at_ms.map(i128::from);
        let refused = (flags.nx && current.is_some())
            || (flags.xx && current.is_none())
            // GT: no deadline counts as infinite, so nothing is greater.
            || (flags.gt && current.is_none_or(|c| when <= c))
            // LT: no deadline counts as infinite, so anything is less.
            || (flags.lt && current.is_some_and(|c| when >= c));
        if refused {
            return Ok(Reply::Integer(0));
        }
        if when <= now as i128 {
            self.remove(key);
        } else {
            self.set_deadline(key, Some(when as u64));
        }
        Ok(Reply::Integer(1))
    }

    pub(super) fn ttl(&self, now: u64, key: &[u8], unit: TimeUnit) -> Reply {
        let Some(entry) = self.live(now, key) else {
            return Reply::Integer(-2);
        };
        let Some(at) = entry.expires_at_ms else {
            return Reply::Integer(-1);
        };
        let left_ms = at - now;
        Reply::Integer(match unit {
            TimeUnit::Millis => left_ms as i64,
            // Redis rounds to the nearest second.
            TimeUnit::Seconds => ((left_ms + 500) / 1000) as i64,
        })
    }

    pub(super) fn persist(&mut self, now: u64, key: &[u8]) -> Reply {
        self.purge_if_expired(now, key);
        match self.entries.get(key) {
            Some(e) if e.expires_at_ms.is_some() => {
                self.set_deadline(key, None);
                Reply::Integer(1)
            }
            _ => Reply::Integer(0),
        }
    }

    /// KEYS: every live key matching `pattern`, in key order.
    pub(super) fn keys(&self, now: u64, pattern: &[u8]) -> Reply {
        let prefix = literal_prefix(pattern);
        let matching = self
            .entries
            .range::<[u8], _>((
                std::ops::Bound::Included(&prefix[..]),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, e)| e.is_live(now) && glob_match(pattern, k))
            .map(|(k, _)| Reply::bulk(k))
            .collect();
        Reply::Array(matching)
    }

    /// SCAN: see the module documentation for the cursor.
    pub(super) fn scan(&self, now: u64, cursor: u64, pattern: Option<&[u8]>, count: u64) -> Reply {
        let mut last_position = None;
        let mut next_cursor = 0u64;
        let mut found = Vec::new();
        for (examined, (position, key)) in self.scan_order.range((cursor, Vec::new())..).enumerate()
        {
            // Stop only between positions, so keys sharing one are never split across calls.
            if examined as u64 >= count && last_position != Some(*position) {
                next_cursor = *position;
                break;
            }
            last_position = Some(*position);
            let live = self.entries.get(key).is_some_and(|e| e.is_live(now));
            if live && pattern.is_none_or(|p| glob_match(p, key)) {
                found.push(Reply::bulk(key));
            }
        }
        Reply::Array(vec![
            Reply::bulk(next_cursor.to_string()),
            Reply::Array(found),
        ])
    }

    /// Keys that are not expired at `now`.
    pub(super) fn live_key_count(&self, now: u64) -> usize {
        let expired = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .count();
        self.entries.len() - expired
    }

    pub(super) fn flush(&mut self) -> Reply {
        self.clear();
        Reply::ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::super::test_support::*;
    use super::super::StateMachine;
    use crate::command::Command;
    use crate::limits::Limits;
    use crate::reply::Reply;

    fn sm() -> StateMachine {
        StateMachine::new(Limits::DEFAULT)
    }

    #[test]
    fn del_exists_dbsize_flushdb() {
        let mut s = sm();
        cmd(&mut s, 0, "mset a 1 b 2 c 3");
        assert_eq!(
            cmd(&mut s, 0, "exists a a b zz"),
            Reply::Integer(3),
            "duplicates count twice"
        );
        assert_eq!(cmd(&mut s, 0, "del a a zz"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 0, "dbsize"), Reply::Integer(2));
        cmd(&mut s, 0, "set t x px 10");
        assert_eq!(cmd(&mut s, 0, "dbsize"), Reply::Integer(3));
        let c = Command::DbSize;
        assert_eq!(
            s.query(10, &c),
            Reply::Integer(2),
            "DBSIZE ignores expired keys not yet reclaimed"
        );
        assert_eq!(s.stored_keys(), 3, "the read path reclaims nothing");
        assert_eq!(
            cmd(&mut s, 10, "del t"),
            Reply::Integer(0),
            "an expired key is not counted as deleted"
        );
        assert_eq!(cmd(&mut s, 10, "flushdb"), Reply::ok());
        assert_eq!(cmd(&mut s, 10, "dbsize"), Reply::Integer(0));
        assert_eq!(s.used_bytes(), 0);
    }

    #[test]
    fn expire_ttl_persist() {
        let mut s = sm();
        assert_eq!(cmd(&mut s, 0, "expire nope 10"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "ttl nope"), Reply::Integer(-2));
        cmd(&mut s, 0, "set k v");
        assert_eq!(cmd(&mut s, 0, "ttl k"), Reply::Integer(-1));
        assert_eq!(cmd(&mut s, 1_000, "expire k 10"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 1_000, "pttl k"), Reply::Integer(10_000));
        assert_eq!(cmd(&mut s, 1_000, "pexpire k 500"), Reply::Integer(1));
        assert_eq!(
            cmd(&mut s, 1_000, "ttl k"),
            Reply::Integer(1),
            "500 ms rounds to 1 s"
        );
        assert_eq!(cmd(&mut s, 1_000, "persist k"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 1_000, "persist k"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 1_000, "ttl k"), Reply::Integer(-1));
        assert_eq!(
            cmd(&mut s, 1_000, "expire k 0"),
            Reply::Integer(1),
            "a past deadline deletes"
        );
        assert_eq!(cmd(&mut s, 1_000, "exists k"), Reply::Integer(0));
        cmd(&mut s, 1_000, "set k v");
        assert_eq!(cmd(&mut s, 1_000, "pexpire k -1"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 1_000, "get k"), Reply::Nil);
        assert_eq!(
            cmd(&mut s, 1_000, "pexpire k 9223372036854775000"),
            err("ERR invalid expire time in 'pexpire' command")
        );
    }

    #[test]
    fn active_expiry_reclaims_a_bounded_number_per_command() {
        let mut s = sm();
        for i in 0..40 {
            cmd(&mut s, 0, &format!("set k{i} v px 10"));
        }
        cmd(&mut s, 0, "set keep v");
        let per_exec = Limits::DEFAULT.reclaim_per_exec_max;
        assert_eq!(cmd(&mut s, 10, "get keep"), bulk("v"));
        assert_eq!(
            s.stored_keys(),
            41 - per_exec,
            "one command reclaims exactly the bound"
        );
        assert_eq!(
            cmd(&mut s, 10, "dbsize"),
            Reply::Integer(1),
            "the rest are already invisible"
        );
        assert_eq!(s.stored_keys(), 41 - 2 * per_exec);
        assert_eq!(s.reclaim_expired(usize::MAX), 40 - 2 * per_exec);
        assert_eq!(s.stored_keys(), 1);
    }

    #[test]
    fn expire_conditions() {
        let mut s = sm();
        cmd(&mut s, 0, "set k v");
        assert_eq!(
            cmd(&mut s, 0, "expire k 10 xx"),
            Reply::Integer(0),
            "XX needs a TTL"
        );
        assert_eq!(
            cmd(&mut s, 0, "expire k 10 gt"),
            Reply::Integer(0),
            "nothing is greater than no TTL"
        );
        assert_eq!(
            cmd(&mut s, 0, "expire k 10 lt"),
            Reply::Integer(1),
            "anything is less than no TTL"
        );
        assert_eq!(cmd(&mut s, 0, "expire k 20 nx"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "expire k 5 gt"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "expire k 20 xx gt"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 0, "ttl k"), Reply::Integer(20));
        assert_eq!(cmd(&mut s, 0, "expire k 30 lt"), Reply::Integer(0));
        assert_eq!(cmd(&mut s, 0, "expire k 15 lt"), Reply::Integer(1));
        assert_eq!(cmd(&mut s, 0, "ttl k"), Reply::Integer(15));
    }

    #[test]
    fn keys_uses_globs_and_hides_expired_keys() {
        let mut s = sm();
        cmd(&mut s, 0, "mset user:1 a user:2 b user:10 c other d");
        cmd(&mut s, 0, "pexpire user:2 5");
        let listed = |s: &mut StateMachine, now, p: &str| cmd(s, now, &format!("keys {p}"));
        assert_eq!(
            listed(&mut s, 0, "user:*"),
            Reply::Array(vec![bulk("user:1"), bulk("user:10"), bulk("user:2")]),
            "key order"
        );
        assert_eq!(
            listed(&mut s, 5, "user:?"),
            Reply::Array(vec![bulk("user:1")])
        );
        assert_eq!(
            listed(&mut s, 5, "*er*"),
            Reply::Array(vec![bulk("other"), bulk("user:1"), bulk("user:10")])
        );
        assert_eq!(listed(&mut s, 5, "user:[^1]*"), Reply::Array(vec![]));
    }

    /// Drive a full SCAN, applying `between(step)` between calls; returns every key seen.
    fn full_scan(
        s: &mut StateMachine,
        count: u64,
        mut between: impl FnMut(&mut StateMachine, usize),
    ) -> (Vec<Vec<u8>>, usize) {
        let mut cursor = 0u64;
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let reply = s.exec(
                0,
                &Command::Scan {
                    cursor,
                    pattern: None,
                    count,
                },
            );
            calls += 1;
            let Reply::Array(parts) = reply else {
                panic!("scan reply {reply:?}")
            };
            let [Reply::Bulk(next), Reply::Array(keys)] = &parts[..] else {
                panic!("scan parts {parts:?}")
            };
            seen.extend(keys.iter().map(|k| match k {
                Reply::Bulk(b) => b.clone(),
                other => panic!("key {other:?}"),
            }));
            cursor = String::from_utf8_lossy(next)
                .parse()
                .expect("numeric cursor");
            if cursor == 0 {
                return (seen, calls);
            }
            between(s, calls);
            assert!(calls < 10_000, "scan terminates");
        }
    }

    #[test]
    fn scan_walks_everything_in_several_calls_with_match() {
        let mut s = sm();
        for i in 0..100 {
            cmd(&mut s, 0, &format!("set key:{i} v"));
        }
        let (seen, calls) = full_scan(&mut s, 7, |_, _| {});
        assert!(calls >= 100 / 7, "the scan took several calls: {calls}");
        let distinct: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(distinct.len(), 100);
        assert_eq!(seen.len(), 100, "without changes no key is returned twice");
        let reply = cmd(&mut s, 0, "scan 0 match key:1? count 1000");
        let Reply::Array(parts) = reply else { panic!() };
        assert_eq!(parts[0], bulk("0"));
        assert_eq!(
            parts[1],
            Reply::Array(
                (10..20)
                    .map(|i| format!("key:{i}"))
                    .map(|k| (crate::state::scan_position(k.as_bytes()), k))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|(_, k)| bulk(&k))
                    .collect()
            )
        );
    }

    #[test]
    fn scan_never_splits_keys_sharing_a_position() {
        let mut s = sm();
        cmd(&mut s, 0, "mset a 1 b 2 c 3 d 4");
        // Force collisions: a, b, c share position 5; d sits at 9. (Real positions are SHA-256
        // prefixes; a collision is improbable but must not break the cursor.)
        s.scan_order = [(5, "a"), (5, "b"), (5, "c"), (9, "d")]
            .into_iter()
            .map(|(p, k)| (p, k.as_bytes().to_vec()))
            .collect();
        let first = s.exec(
            0,
            &Command::Scan {
                cursor: 0,
                pattern: None,
                count: 1,
            },
        );
        assert_eq!(
            first,
            Reply::Array(vec![
                bulk("9"),
                Reply::Array(vec![bulk("a"), bulk("b"), bulk("c")])
            ]),
            "COUNT 1 still returns the whole group and resumes at the next position"
        );
        let second = s.exec(
            0,
            &Command::Scan {
                cursor: 9,
                pattern: None,
                count: 1,
            },
        );
        assert_eq!(
            second,
            Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("d")])])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Every key present for the whole scan is returned, whatever happens between calls.
        #[test]
        fn scan_is_complete_under_concurrent_modification(
            stable in proptest::collection::btree_set(0u32..500, 0..80),
            churn in proptest::collection::vec((any::<bool>(), 500u32..1000), 0..200),
            count in 1u64..20,
        ) {
            let mut s = sm();
            for k in &stable {
                cmd(&mut s, 0, &format!("set s{k} v"));
            }
            let mut churn_iter = churn.into_iter();
            let (seen, _) = full_scan(&mut s, count, |s, _| {
                for (add, k) in churn_iter.by_ref().take(5) {
                    if add { cmd(s, 0, &format!("set c{k} v")); } else { cmd(s, 0, &format!("del c{k}")); }
                }
            });
            let seen: BTreeSet<Vec<u8>> = seen.into_iter().collect();
            for k in &stable {
                let key = format!("s{k}").into_bytes();
                prop_assert!(seen.contains(&key), "stable key s{} missed", k);
            }
        }
    }
}
