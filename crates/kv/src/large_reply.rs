//! Replies too large for one Prime reply message (GET of a 100 KiB value, MGET of many keys,
//! KEYS *, HGETALL of a big hash).
//!
//! A Prime reply carries at most [`REPLY_RESULT_BYTES_MAX`] bytes of result, and the runtime
//! carries no message over 64 KiB. So a replica whose encoded reply is larger keeps the reply in
//! its [`LargeReplies`] cache and returns, as the command's result, a [`LargeReplyRef`]: the
//! reply's length and SHA-256. Every correct replica computes the same reply, hence the same
//! reference, so the voting proxy's f+1 matching votes vouch for the digest exactly as they would
//! for the reply itself (paper 004, section 5). The proxy then fetches the bytes from any server's
//! RESP port with [`FETCH_COMMAND`] and accepts them only if they hash to the agreed digest: a
//! faulty server can withhold or corrupt them, but not forge them. A server's own RESP clients
//! get the reply from the local cache directly.
//!
//! On the wire of the vote a reference is an error reply whose code is [`REFERENCE_CODE`] (no
//! reply of the state machine starts with it); the front ends resolve it before any client sees
//! it. Replies over [`LARGE_REPLY_BYTES_MAX`] are refused with [`KvError::ReplyTooLarge`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};
use stockade_core::{DecodeError, DecodeLimits, Wire};
use stockade_replication::messages::REPLY_RESULT_BYTES_MAX;

use crate::checkpoint::Digest;
use crate::error::KvError;
use crate::reply::Reply;

/// Largest encoded reply that travels inside the Prime reply itself.
pub const INLINE_RESULT_BYTES_MAX: usize = REPLY_RESULT_BYTES_MAX;
/// Largest encoded reply a command may produce; larger ones are refused.
pub const LARGE_REPLY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes of large replies one replica keeps for fetching.
pub const LARGE_REPLY_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Large replies one replica keeps for fetching.
pub const LARGE_REPLY_CACHE_ENTRIES_MAX: usize = 4096;
/// The error code that marks a reference (the first word of the error text).
pub const REFERENCE_CODE: &str = "LARGEREPLY";
/// The RESP command a proxy sends to a server's RESP port to fetch a large reply:
/// `STOCKADE.LARGEREPLY <sha256 hex>`, answered with the encoded reply as a bulk string, or a
/// null bulk if the server does not hold it.
pub const FETCH_COMMAND: &str = "STOCKADE.LARGEREPLY";

/// Decode limits for an encoded large reply.
pub const LARGE_REPLY_DECODE_LIMITS: DecodeLimits = DecodeLimits {
    input_bytes_max: LARGE_REPLY_BYTES_MAX,
    // Arrays of small items cost more in memory than on the wire.
    alloc_bytes_max: 8 * LARGE_REPLY_BYTES_MAX,
    depth_max: 16,
};

/// The result that stands for a large reply: its encoded length and SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeReplyRef {
    /// Length of the encoded reply.
    pub len: usize,
    /// SHA-256 of the encoded reply.
    pub digest: Digest,
}

impl LargeReplyRef {
    /// The reference to `encoded` (a [`Reply`] in its binary encoding).
    pub fn of(encoded: &[u8]) -> LargeReplyRef {
        LargeReplyRef {
            len: encoded.len(),
            digest: Sha256::digest(encoded).into(),
        }
    }

    /// The reference as the reply replicas vote on.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(format!(
            "{REFERENCE_CODE} {} {}",
            self.len,
            hex::encode(self.digest)
        ))
    }

    /// The reference `reply` stands for, if it is one.
    pub fn from_reply(reply: &Reply) -> Option<LargeReplyRef> {
        let Reply::Error(text) = reply else {
            return None;
        };
        let mut words = text.split(' ');
        if words.next() != Some(REFERENCE_CODE) {
            return None;
        }
        let len = words.next()?.parse().ok()?;
        let digest = parse_digest(words.next()?.as_bytes())?;
        words
            .next()
            .is_none()
            .then_some(LargeReplyRef { len, digest })
    }

    /// Whether `encoded` is the reply this reference stands for.
    pub fn matches(&self, encoded: &[u8]) -> bool {
        *self == LargeReplyRef::of(encoded)
    }

    /// The reply `encoded` holds, if it is the one this reference stands for.
    pub fn decode(&self, encoded: &[u8]) -> Result<Reply, DecodeError> {
        if !self.matches(encoded) {
            return Err(DecodeError::Invalid(
                "large reply does not match its digest",
            ));
        }
        Reply::from_bytes(encoded, LARGE_REPLY_DECODE_LIMITS)
    }
}

/// A digest in hex, as [`FETCH_COMMAND`] and references carry it.
pub fn parse_digest(hex_text: &[u8]) -> Option<Digest> {
    let bytes = hex::decode(hex_text).ok()?;
    bytes.try_into().ok()
}

/// The large replies a replica computed, most recent kept, bounded by
/// [`LARGE_REPLY_CACHE_BYTES_MAX`] and [`LARGE_REPLY_CACHE_ENTRIES_MAX`]. Cloning shares it (the
/// replica writes, its RESP front end reads).
#[derive(Clone, Debug)]
pub struct LargeReplies(Arc<Mutex<Cache>>);

#[derive(Debug)]
struct Cache {
    replies: HashMap<Digest, Arc<Vec<u8>>>,
    order: VecDeque<Digest>,
    bytes: usize,
    bytes_max: usize,
    entries_max: usize,
}

impl Default for LargeReplies {
    fn default() -> Self {
        LargeReplies::with_bounds(LARGE_REPLY_CACHE_BYTES_MAX, LARGE_REPLY_CACHE_ENTRIES_MAX)
    }
}

impl LargeReplies {
    /// An empty cache holding at most `bytes_max` bytes in at most `entries_max` replies.
    pub fn with_bounds(bytes_max: usize, entries_max: usize) -> LargeReplies {
        LargeReplies(Arc::new(Mutex::new(Cache {
            replies: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            bytes_max,
            entries_max,
        })))
    }

    /// The result to return for the encoded reply `encoded`: itself if it fits a Prime reply,
    /// else a reference (keeping the reply here), or an error if it exceeds
    /// [`LARGE_REPLY_BYTES_MAX`]. Depends only on `encoded`, so every replica returns the same.
    pub fn result_for(&self, encoded: Vec<u8>) -> Vec<u8> {
        if encoded.len() <= INLINE_RESULT_BYTES_MAX {
            return encoded;
        }
        if encoded.len() > LARGE_REPLY_BYTES_MAX {
            let error = KvError::ReplyTooLarge {
                len: encoded.len(),
                max: LARGE_REPLY_BYTES_MAX,
            };
            return Reply::from(error).to_bytes();
        }
        let reference = LargeReplyRef::of(&encoded);
        self.insert(reference.digest, encoded);
        reference.to_reply().to_bytes()
    }

    fn insert(&self, digest: Digest, encoded: Vec<u8>) {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if encoded.len() > cache.bytes_max || cache.replies.contains_key(&digest) {
            return;
        }
        while cache.bytes + encoded.len() > cache.bytes_max
            || cache.replies.len() >= cache.entries_max
        {
            let Some(oldest) = cache.order.pop_front() else {
                break;
            };
            if let Some(evicted) = cache.replies.remove(&oldest) {
                cache.bytes -= evicted.len();
            }
        }
        cache.bytes += encoded.len();
        cache.order.push_back(digest);
        cache.replies.insert(digest, Arc::new(encoded));
    }

    /// The encoded reply with SHA-256 `digest`, if still kept.
    pub fn get(&self, digest: &Digest) -> Option<Arc<Vec<u8>>> {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cache.replies.get(digest).cloned()
    }

    /// Replies kept and their bytes.
    pub fn usage(&self) -> (usize, usize) {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (cache.replies.len(), cache.bytes)
    }

    /// The reply `result` stands for: `result` itself, or the kept reply it references. `None`
    /// for a reference to a reply no longer kept.
    pub fn resolve(&self, result: Reply) -> Option<Reply> {
        let Some(reference) = LargeReplyRef::from_reply(&result) else {
            return Some(result);
        };
        let encoded = self.get(&reference.digest)?;
        reference.decode(&encoded).ok()
    }

    /// The answer to `FETCH_COMMAND` with arguments `args` (the name included), if `args` is
    /// that command.
    pub fn answer_fetch(&self, args: &[Vec<u8>]) -> Option<Reply> {
        let name = args.first()?;
        if !name.eq_ignore_ascii_case(FETCH_COMMAND.as_bytes()) {
            return None;
        }
        let reply = match args {
            [_, digest] => match parse_digest(digest) {
                Some(digest) => self
                    .get(&digest)
                    .map_or(Reply::Nil, |encoded| Reply::Bulk(encoded.to_vec())),
                None => Reply::Error("ERR the digest must be 64 hex characters".into()),
            },
            _ => Reply::from(KvError::WrongArity(FETCH_COMMAND.to_ascii_lowercase())),
        };
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_of(len: usize, fill: u8) -> Vec<u8> {
        Reply::Bulk(vec![fill; len]).to_bytes()
    }

    #[test]
    fn small_replies_stay_inline_large_ones_become_references() {
        let cache = LargeReplies::default();
        let small = bulk_of(100, b's');
        assert_eq!(cache.result_for(small.clone()), small);
        let large = bulk_of(100 * 1024, b'l');
        let result = cache.result_for(large.clone());
        assert!(result.len() < 200, "a reference is small");
        let reply = Reply::from_bytes(&result, DecodeLimits::MESSAGE).expect("a reply");
        let reference = LargeReplyRef::from_reply(&reply).expect("a reference");
        assert_eq!(reference, LargeReplyRef::of(&large));
        assert_eq!(
            cache.resolve(reply),
            Some(Reply::Bulk(vec![b'l'; 100 * 1024]))
        );
        assert_eq!(cache.usage(), (1, large.len()));
        // Another replica computes the same reference.
        assert_eq!(LargeReplies::default().result_for(large), result);
    }

    #[test]
    fn replies_over_the_limit_are_refused_deterministically() {
        let cache = LargeReplies::default();
        let huge = bulk_of(LARGE_REPLY_BYTES_MAX, b'h');
        let result = cache.result_for(huge.clone());
        let reply = Reply::from_bytes(&result, DecodeLimits::MESSAGE).expect("a reply");
        assert_eq!(
            reply,
            Reply::Error(format!(
                "ERR reply of {} bytes exceeds the limit of {LARGE_REPLY_BYTES_MAX} bytes; ask for fewer keys or use SCAN",
                huge.len()
            ))
        );
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn the_cache_evicts_the_oldest_at_its_bounds() {
        let reply_len = bulk_of(20_000, 0).len();
        let cache = LargeReplies::with_bounds(3 * reply_len, 2);
        let results: Vec<Vec<u8>> = (0..3u8)
            .map(|i| cache.result_for(bulk_of(20_000, i)))
            .collect();
        assert_eq!(cache.usage(), (2, 2 * reply_len), "the entry bound");
        let first = LargeReplyRef::of(&bulk_of(20_000, 0));
        assert!(cache.get(&first.digest).is_none(), "the oldest went first");
        let reply = Reply::from_bytes(&results[0], DecodeLimits::MESSAGE).expect("reply");
        assert_eq!(cache.resolve(reply), None);

        let bytes_bound = LargeReplies::with_bounds(2 * reply_len, 10);
        for i in 0..3u8 {
            bytes_bound.result_for(bulk_of(20_000, i));
        }
        assert_eq!(bytes_bound.usage(), (2, 2 * reply_len), "the byte bound");
    }

    #[test]
    fn fetch_answers_held_replies_and_refuses_bad_digests() {
        let cache = LargeReplies::default();
        let large = bulk_of(30_000, b'x');
        cache.result_for(large.clone());
        let digest = hex::encode(LargeReplyRef::of(&large).digest);
        let fetch = |arg: &str| {
            cache.answer_fetch(&[b"stockade.largereply".to_vec(), arg.as_bytes().to_vec()])
        };
        assert_eq!(fetch(&digest), Some(Reply::Bulk(large.clone())));
        assert_eq!(fetch(&"0".repeat(64)), Some(Reply::Nil));
        assert_eq!(
            fetch("xyz"),
            Some(Reply::Error(
                "ERR the digest must be 64 hex characters".into()
            ))
        );
        assert_eq!(cache.answer_fetch(&[b"GET".to_vec(), b"k".to_vec()]), None);
    }

    #[test]
    fn a_forged_large_reply_is_rejected() {
        let large = bulk_of(30_000, b'x');
        let reference = LargeReplyRef::of(&large);
        let forged = bulk_of(30_000, b'y');
        assert!(reference.decode(&forged).is_err());
        assert_eq!(
            reference.decode(&large),
            Ok(Reply::Bulk(vec![b'x'; 30_000]))
        );
        assert_eq!(
            LargeReplyRef::from_reply(&Reply::Error("ERR x".into())),
            None
        );
        assert_eq!(
            LargeReplyRef::from_reply(&reference.to_reply()),
            Some(reference)
        );
    }
}
