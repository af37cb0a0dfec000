//! The daemon's local control interface: JSON lines over TCP on a loopback address, what
//! `stockade overlay put|get|remove|publish|anycast|subscribe|status` speak.
//!
//! One request per line, one reply line per request, in order, on a connection that may carry
//! many requests:
//!
//! | request                                                   | reply (besides `"ok": true`)                         |
//! |-----------------------------------------------------------|------------------------------------------------------|
//! | `{"op":"put","key":"K","value":"V"}`                      | `key`, `id` (hex), `replicas`, `complete`            |
//! | `{"op":"get","key":"K"}`                                  | `key`, `found`, and `value` when found               |
//! | `{"op":"remove","key":"K"}`                               | `key`, `id`, `removed` (replicas that stored the removal), `complete`; an error when there is no value to remove |
//! | `{"op":"publish","topic":"T","message":"M"}`              | `topic`                                              |
//! | `{"op":"anycast","topic":"T","message":"M"}`              | `topic`, `accepted`, and `by` (hex id of the node whose subscriber took it) when accepted |
//! | `{"op":"subscribe","topic":"T"}`                          | `topic`; then one `{"topic","message"}` line per multicast and one `{"topic","message","anycast":true}` line per anycast this connection took, until the client closes |
//! | `{"op":"status"}`                                         | the node's state (see [`super::daemon`])             |
//!
//! A refused or failed request gets `{"ok":false,"error":"..."}` saying why and what to do.
//! Lines longer than [`CONTROL_LINE_BYTES_MAX`] end the connection after an error reply.
//!
//! Keys and topics are names: a key's object is signed by a key pair derived from the name
//! ([`names`]), so any client that knows a name may overwrite its value (the namespace is
//! public); replicas and caches, which see only the derived public key, cannot forge a value
//! without knowing the name (short names are guessable), and every answer is verified before it
//! is returned.
//!
//! `remove` follows the same rule: removal is a signed tombstone, a newer version of the name's
//! object with no contents (paper 002, "Securing Data": public-key data with a signed timestamp),
//! so only a holder of the name can remove its value, and the replicas check the signature. The
//! daemon first reads the value (there must be one), then stores the tombstone with a version
//! newer than both its clock and the value's. Caches never hold public-key objects
//! ([`crate::dht::store`]), so once the replicas hold the tombstone no `get` finds the value.
//!
//! `anycast` hands the message to ONE subscriber (paper 002, "Scribe: Anycast": routed toward the
//! topic until it meets the tree, then a depth-first search of the tree). The predicate: any
//! member node accepts; a node is a member while some control connection of its daemon is
//! subscribed, and its daemon gives the message to one of them. `accepted: false` means the
//! search found no subscriber. An error means it was refused, or no answer came in time (then it
//! may or may not have been delivered). A subscriber that closes its connection just as an
//! anycast picks its node loses that message.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest request line, bytes: a value of [`crate::dht::OBJECT_BYTES_MAX`] escaped as JSON
/// (up to 6 bytes per byte) and a name.
pub const CONTROL_LINE_BYTES_MAX: usize = 6 * crate::dht::OBJECT_BYTES_MAX + 4096;

/// A request on the control interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Store `value` under `key`.
    Put {
        /// The name.
        key: String,
        /// The value (UTF-8 text).
        value: String,
    },
    /// Fetch the value under `key`.
    Get {
        /// The name.
        key: String,
    },
    /// Remove the value under `key` from its replicas.
    Remove {
        /// The name.
        key: String,
    },
    /// Multicast `message` to `topic`'s subscribers.
    Publish {
        /// The topic's name.
        topic: String,
        /// The message (UTF-8 text).
        message: String,
    },
    /// Deliver `message` to one subscriber of `topic`.
    Anycast {
        /// The topic's name.
        topic: String,
        /// The message (UTF-8 text).
        message: String,
    },
    /// Receive `topic`'s multicasts, and the anycasts that choose this connection, on it.
    Subscribe {
        /// The topic's name.
        topic: String,
    },
    /// The node's state.
    Status,
}

/// A line that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Longer than the bound.
    #[error("request line longer than {CONTROL_LINE_BYTES_MAX} bytes; send smaller values")]
    TooLong,
    /// Not UTF-8.
    #[error("request line is not UTF-8 text")]
    NotUtf8,
    /// The connection failed.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Read one line of at most `bytes_max` bytes (without its newline); `None` at the end of input.
pub async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    bytes_max: usize,
) -> Result<Option<String>, LineError> {
    let mut line = Vec::new();
    let limit = bytes_max as u64 + 1;
    let read = (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > bytes_max {
        return Err(LineError::TooLong);
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| LineError::NotUtf8)
}

/// How names become DHT keys, signing keys and Scribe topics.
pub mod names {
    use sha2::{Digest, Sha256};
    use stockade_crypto::ed25519::SigningKey;

    use crate::dht::{Certification, StoredObject};
    use crate::id::OverlayId;

    /// Longest key or topic name, bytes.
    pub const NAME_BYTES_MAX: usize = 1024;

    const OBJECT_KEY_DOMAIN: &[u8] = b"stockade-overlay/named-object-key/v1";
    const TOPIC_DOMAIN: &[u8] = b"stockade-overlay/topic/v1";

    fn digest(domain: &[u8], name: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        hasher.update(name.as_bytes());
        hasher.finalize().into()
    }

    /// The signing key of `name`'s objects (public-key objects, paper 002 "DHT: Security").
    pub fn signer_of(name: &str) -> SigningKey {
        SigningKey::from_bytes(digest(OBJECT_KEY_DOMAIN, name))
    }

    /// The DHT key `name`'s value lives under.
    pub fn object_key(name: &str) -> OverlayId {
        StoredObject::owner_key(&signer_of(name).verifying_key())
    }

    /// `value` stored under `name` at `version` (a newer version replaces an older one).
    pub fn named_object(name: &str, version: u64, value: Vec<u8>) -> StoredObject {
        StoredObject::signed(&signer_of(name), version, value)
    }

    /// The removal of `name`'s value: a tombstone at `version`.
    pub fn named_tombstone(name: &str, version: u64) -> StoredObject {
        StoredObject::tombstone(&signer_of(name), version)
    }

    /// The version a removal of `current` gets: `clock` (the daemon's next version), or just
    /// above `current`'s when another daemon's clock ran ahead, so the tombstone replaces it.
    pub fn removal_version(current: &StoredObject, clock: u64) -> u64 {
        match current.certification {
            Certification::Signed { timestamp, .. } => clock.max(timestamp.saturating_add(1)),
            Certification::ContentHash => clock,
        }
    }

    /// The Scribe topic id of `name`.
    pub fn topic_id(name: &str) -> OverlayId {
        OverlayId::from_digest_prefix(&digest(TOPIC_DOMAIN, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_bounded_and_an_overlong_line_is_an_error() {
        let input = b"{\"op\":\"status\"}\nsecond line without newline".to_vec();
        let mut reader = tokio::io::BufReader::new(input.as_slice());
        let first = read_line_bounded(&mut reader, 64).await.expect("reads");
        assert_eq!(first.as_deref(), Some("{\"op\":\"status\"}"));
        let second = read_line_bounded(&mut reader, 64).await.expect("reads");
        assert_eq!(second.as_deref(), Some("second line without newline"));
        assert!(read_line_bounded(&mut reader, 64)
            .await
            .expect("end")
            .is_none());

        let long = vec![b'x'; 65];
        let mut reader = tokio::io::BufReader::new(long.as_slice());
        assert!(matches!(
            read_line_bounded(&mut reader, 64).await,
            Err(LineError::TooLong)
        ));
        let mut bad = tokio::io::BufReader::new(&[0xff, b'\n'][..]);
        assert!(matches!(
            read_line_bounded(&mut bad, 64).await,
            Err(LineError::NotUtf8)
        ));
    }

    #[test]
    fn requests_parse_and_unknown_fields_are_refused() {
        let parsed = [
            (
                r#"{"op":"put","key":"k","value":"v"}"#,
                ControlRequest::Put {
                    key: "k".into(),
                    value: "v".into(),
                },
            ),
            (
                r#"{"op":"remove","key":"k"}"#,
                ControlRequest::Remove { key: "k".into() },
            ),
            (
                r#"{"op":"anycast","topic":"t","message":"m"}"#,
                ControlRequest::Anycast {
                    topic: "t".into(),
                    message: "m".into(),
                },
            ),
        ];
        for (line, request) in parsed {
            assert_eq!(
                serde_json::from_str::<ControlRequest>(line).expect("parses"),
                request
            );
        }
        for refused in [
            r#"{"op":"get","key":"k","x":1}"#,
            r#"{"op":"delete","key":"k"}"#,
            r#"{"op":"anycast","topic":"t"}"#,
        ] {
            assert!(
                serde_json::from_str::<ControlRequest>(refused).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_removal_is_signed_by_the_name_and_newer_than_the_value_it_removes() {
        let value = names::named_object("colour", 500, b"blue".to_vec());
        let version = names::removal_version(&value, 100);
        assert_eq!(
            version, 501,
            "a clock behind the value's version is overtaken"
        );
        assert_eq!(names::removal_version(&value, 900), 900);
        let tombstone = names::named_tombstone("colour", version);
        assert_eq!(tombstone.key, value.key);
        assert_eq!(tombstone.verify(), Ok(()));
        assert!(tombstone.is_tombstone() && tombstone.supersedes(&value));
        let mut forged = names::named_tombstone("color", version);
        forged.key = value.key;
        assert_eq!(
            forged.verify(),
            Err(crate::dht::ObjectError::OwnerKeyMismatch),
            "a holder of another name cannot remove it"
        );
    }

    #[test]
    fn a_named_object_verifies_and_lives_under_the_names_key() {
        let object = names::named_object("colour", 7, b"blue".to_vec());
        assert_eq!(object.key, names::object_key("colour"));
        assert_eq!(object.verify(), Ok(()));
        assert_ne!(names::object_key("colour"), names::object_key("color"));
        assert_ne!(names::topic_id("colour"), names::object_key("colour"));
        let newer = names::named_object("colour", 8, b"red".to_vec());
        assert!(newer.supersedes(&object));
    }
}
