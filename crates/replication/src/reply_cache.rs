//! The last reply per client (PRIME.md step 11, and the authors' release: each server keeps the
//! last reply it executed for every client), so that a client re-submitting an update that already
//! executed (its reply was lost, or it re-sent through another server) gets the reply again instead
//! of silence. Bounded in entries and in result bytes; the replies executed least recently leave
//! first.

use std::collections::{BTreeMap, BTreeSet};

use crate::messages::{ClientId, Reply};

/// Per client, the reply to its last executed update.
#[derive(Debug)]
pub(crate) struct ReplyCache {
    by_client: BTreeMap<ClientId, Reply>,
    /// (global slot, client) of every cached reply: the first is the least recently executed.
    by_age: BTreeSet<(u64, ClientId)>,
    /// Result bytes held.
    bytes: usize,
    len_max: usize,
    bytes_max: usize,
}

impl ReplyCache {
    /// An empty cache of at most `len_max` replies holding at most `bytes_max` result bytes.
    pub(crate) fn new(len_max: usize, bytes_max: usize) -> ReplyCache {
        ReplyCache {
            by_client: BTreeMap::new(),
            by_age: BTreeSet::new(),
            bytes: 0,
            len_max,
            bytes_max,
        }
    }

    /// Keep `reply` as its client's last one (replacing the previous), then evict the least
    /// recently executed replies while a bound is exceeded. A result larger than the byte bound
    /// is not kept at all.
    pub(crate) fn insert(&mut self, reply: Reply) {
        self.remove(reply.client);
        if reply.result.len() > self.bytes_max || self.len_max == 0 {
            return;
        }
        self.bytes += reply.result.len();
        self.by_age.insert((reply.global_seq, reply.client));
        self.by_client.insert(reply.client, reply);
        while self.by_client.len() > self.len_max || self.bytes > self.bytes_max {
            let Some(&(_, oldest)) = self.by_age.first() else {
                break;
            };
            self.remove(oldest);
        }
    }

    fn remove(&mut self, client: ClientId) {
        if let Some(old) = self.by_client.remove(&client) {
            self.bytes -= old.result.len();
            self.by_age.remove(&(old.global_seq, client));
        }
    }

    /// The cached reply to exactly this update of `client`, if it is the client's last one and
    /// still held.
    pub(crate) fn get(&self, client: ClientId, incarnation: u64, seq: u64) -> Option<&Reply> {
        self.by_client
            .get(&client)
            .filter(|r| r.incarnation == incarnation && r.seq == seq)
    }

    /// Replies held.
    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Result bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(client: u64, seq: u64, global_seq: u64, result_len: usize) -> Reply {
        Reply {
            client: ClientId(client),
            incarnation: 1,
            seq,
            global_seq,
            result: vec![7; result_len],
        }
    }

    #[test]
    fn keeps_the_last_reply_per_client_only() {
        let mut cache = ReplyCache::new(10, 1000);
        cache.insert(reply(1, 1, 1, 10));
        cache.insert(reply(1, 2, 2, 20));
        assert_eq!(
            cache.get(ClientId(1), 1, 1),
            None,
            "replaced by the later one"
        );
        assert_eq!(cache.get(ClientId(1), 1, 2), Some(&reply(1, 2, 2, 20)));
        assert_eq!(cache.get(ClientId(1), 2, 2), None, "another incarnation");
        assert_eq!((cache.len(), cache.bytes()), (1, 20));
    }

    #[test]
    fn entry_bound_evicts_the_least_recently_executed() {
        let mut cache = ReplyCache::new(2, 1000);
        cache.insert(reply(1, 1, 5, 1));
        cache.insert(reply(2, 1, 3, 1));
        cache.insert(reply(3, 1, 7, 1));
        assert_eq!(cache.len(), 2, "reached reply_cache_len_max");
        assert!(
            cache.get(ClientId(2), 1, 1).is_none(),
            "slot 3 was the oldest"
        );
        assert!(cache.get(ClientId(1), 1, 1).is_some() && cache.get(ClientId(3), 1, 1).is_some());
    }

    #[test]
    fn byte_bound_evicts_and_refuses_an_oversized_result() {
        let mut cache = ReplyCache::new(10, 100);
        cache.insert(reply(1, 1, 1, 60));
        cache.insert(reply(2, 1, 2, 60));
        assert_eq!(
            (cache.len(), cache.bytes()),
            (1, 60),
            "reached reply_cache_bytes_max"
        );
        assert!(cache.get(ClientId(2), 1, 1).is_some());
        cache.insert(reply(3, 1, 3, 101));
        assert!(
            cache.get(ClientId(3), 1, 1).is_none(),
            "larger than the whole cache"
        );
        assert_eq!(cache.bytes(), 60);
    }
}
