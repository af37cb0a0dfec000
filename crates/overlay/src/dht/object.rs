//! Self-certifying data (paper 002, "Securing Data"): an object proves by itself that it belongs
//! under its key, so a replica or cache that lies is caught by whoever reads it.
//!
//! - Content-hash objects: key = the first 128 bits of SHA-256(contents).
//! - Public-key objects: key = the first 128 bits of SHA-256(public key); contents, a timestamp
//!   and a deletion flag are signed with the private key (Ed25519). A newer timestamp replaces an
//!   older value; removal is a signed, newer tombstone.

use sha2::{Digest, Sha256};
use stockade_core::wire::{put_bytes, DecodeError, Reader, Wire};
use stockade_crypto::ed25519::{Signature, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::id::OverlayId;

/// Largest object contents, bytes (a routed message carries one object plus headers).
pub const OBJECT_BYTES_MAX: usize = 16 * 1024;
/// Domain separation for object signatures.
const SIGNATURE_DOMAIN: &[u8] = b"stockade-overlay/past-object/v1";

/// How an object certifies its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Certification {
    /// The key is the hash of the contents.
    ContentHash,
    /// The key is the hash of `owner`, who signed (key, timestamp, deleted, contents).
    Signed {
        /// The owner's Ed25519 public key.
        owner: [u8; 32],
        /// The owner's version number (e.g. milliseconds since an epoch); newer replaces older.
        timestamp: u64,
        /// A tombstone: the owner removed the value.
        deleted: bool,
        /// The owner's signature.
        signature: [u8; 64],
    },
}

/// A stored value with the proof that it belongs under its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// The key it is stored under.
    pub key: OverlayId,
    /// How the key is certified.
    pub certification: Certification,
    /// The contents (empty for a tombstone).
    pub data: Vec<u8>,
}

/// Why an object was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ObjectError {
    /// Contents over [`OBJECT_BYTES_MAX`].
    #[error("object of {bytes} bytes exceeds the {OBJECT_BYTES_MAX}-byte object limit; split it")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// A content-hash key that is not the hash of the contents.
    #[error("content-hash key does not match SHA-256 of the contents")]
    ContentHashMismatch,
    /// A public-key key that is not the hash of the owner key.
    #[error("public-key key does not match SHA-256 of the owner's public key")]
    OwnerKeyMismatch,
    /// The owner key is not a valid Ed25519 point, or the signature does not verify.
    #[error("owner signature does not verify")]
    BadSignature,
    /// A tombstone that carries contents.
    #[error("a tombstone must have empty contents")]
    TombstoneWithData,
}

fn key_of(bytes: &[u8]) -> OverlayId {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    OverlayId::from_digest_prefix(&digest)
}

fn signed_bytes(key: OverlayId, timestamp: u64, deleted: bool, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 32 + data.len());
    out.extend_from_slice(SIGNATURE_DOMAIN);
    key.encode(&mut out);
    timestamp.encode(&mut out);
    deleted.encode(&mut out);
    put_bytes(&mut out, data);
    out
}

impl StoredObject {
    /// A content-hash object for `data`.
    pub fn content_hashed(data: Vec<u8>) -> StoredObject {
        StoredObject {
            key: key_of(&data),
            certification: Certification::ContentHash,
            data,
        }
    }

    /// The key under which `owner`'s public-key objects live.
    pub fn owner_key(owner: &VerifyingKey) -> OverlayId {
        key_of(&owner.to_bytes())
    }

    /// A public-key object: `data` signed by `signer` at version `timestamp`.
    pub fn signed(signer: &SigningKey, timestamp: u64, data: Vec<u8>) -> StoredObject {
        StoredObject::sign(signer, timestamp, false, data)
    }

    /// A signed tombstone that removes `signer`'s object (it must be newer than the value).
    pub fn tombstone(signer: &SigningKey, timestamp: u64) -> StoredObject {
        StoredObject::sign(signer, timestamp, true, Vec::new())
    }

    fn sign(signer: &SigningKey, timestamp: u64, deleted: bool, data: Vec<u8>) -> StoredObject {
        let owner = signer.verifying_key();
        let key = StoredObject::owner_key(&owner);
        let signature = signer.sign(&signed_bytes(key, timestamp, deleted, &data)).0;
        let certification = Certification::Signed {
            owner: owner.to_bytes(),
            timestamp,
            deleted,
            signature,
        };
        StoredObject {
            key,
            certification,
            data,
        }
    }

    /// Check size and self-certification. Costs one SHA-256 and, for signed objects, one Ed25519
    /// verification (callers charge them).
    pub fn verify(&self) -> Result<(), ObjectError> {
        if self.data.len() > OBJECT_BYTES_MAX {
            return Err(ObjectError::TooLarge {
                bytes: self.data.len(),
            });
        }
        match &self.certification {
            Certification::ContentHash => {
                if key_of(&self.data) != self.key {
                    return Err(ObjectError::ContentHashMismatch);
                }
            }
            Certification::Signed {
                owner,
                timestamp,
                deleted,
                signature,
            } => {
                if *deleted && !self.data.is_empty() {
                    return Err(ObjectError::TombstoneWithData);
                }
                if key_of(owner) != self.key {
                    return Err(ObjectError::OwnerKeyMismatch);
                }
                let owner =
                    VerifyingKey::from_bytes(*owner).map_err(|_| ObjectError::BadSignature)?;
                let signature = Signature(*signature);
                owner
                    .verify(
                        &signed_bytes(self.key, *timestamp, *deleted, &self.data),
                        &signature,
                    )
                    .map_err(|_| ObjectError::BadSignature)?;
            }
        }
        Ok(())
    }

    /// Whether this (already verified) object should replace `older` under the same key:
    /// content-hash objects are immutable; a signed object replaces an older timestamp.
    pub fn supersedes(&self, older: &StoredObject) -> bool {
        match (&self.certification, &older.certification) {
            (
                Certification::Signed { timestamp: new, .. },
                Certification::Signed { timestamp: old, .. },
            ) => new > old,
            _ => false,
        }
    }

    /// Whether this is a signed tombstone.
    pub fn is_tombstone(&self) -> bool {
        matches!(
            self.certification,
            Certification::Signed { deleted: true, .. }
        )
    }

    /// Whether caches may keep and serve copies: only immutable (content-hash) objects; a
    /// public-key object can be replaced or removed behind a cache's back (see
    /// [`super::store`]).
    pub fn is_cacheable(&self) -> bool {
        !self.is_signed()
    }

    /// Whether this object carries a signature to verify.
    pub fn is_signed(&self) -> bool {
        matches!(self.certification, Certification::Signed { .. })
    }

    /// Bytes this object takes against a node's quota.
    pub fn charged_bytes(&self) -> usize {
        self.wire_len()
    }
}

impl Wire for StoredObject {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key.encode(out);
        match &self.certification {
            Certification::ContentHash => out.push(0),
            Certification::Signed {
                owner,
                timestamp,
                deleted,
                signature,
            } => {
                out.push(1);
                owner.encode(out);
                timestamp.encode(out);
                deleted.encode(out);
                signature.encode(out);
            }
        }
        put_bytes(out, &self.data);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = OverlayId::decode(r)?;
        let certification = match r.u8()? {
            0 => Certification::ContentHash,
            1 => Certification::Signed {
                owner: r.array()?,
                timestamp: u64::decode(r)?,
                deleted: bool::decode(r)?,
                signature: r.array()?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "Certification",
                    tag: u64::from(tag),
                })
            }
        };
        let data = r.byte_vec("object contents", OBJECT_BYTES_MAX)?;
        Ok(StoredObject {
            key,
            certification,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_core::wire::DecodeLimits;

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_bytes([seed; 32])
    }

    #[test]
    fn content_hash_objects_certify_themselves() {
        let object = StoredObject::content_hashed(b"a file".to_vec());
        assert_eq!(object.verify(), Ok(()));
        let mut forged = object.clone();
        forged.data = b"another file".to_vec();
        assert_eq!(forged.verify(), Err(ObjectError::ContentHashMismatch));
    }

    #[test]
    fn signed_objects_verify_and_newer_versions_supersede() {
        let owner = signer(1);
        let v1 = StoredObject::signed(&owner, 1, b"one".to_vec());
        let v2 = StoredObject::signed(&owner, 2, b"two".to_vec());
        assert_eq!(v1.key, StoredObject::owner_key(&owner.verifying_key()));
        assert_eq!(v1.verify(), Ok(()));
        assert!(v2.supersedes(&v1));
        assert!(!v1.supersedes(&v2));
        let mut tampered = v2.clone();
        tampered.data = b"evil".to_vec();
        assert_eq!(tampered.verify(), Err(ObjectError::BadSignature));
        let mut stolen_key = StoredObject::signed(&signer(2), 3, b"mine".to_vec());
        stolen_key.key = v1.key;
        assert_eq!(stolen_key.verify(), Err(ObjectError::OwnerKeyMismatch));
        let tomb = StoredObject::tombstone(&owner, 3);
        assert_eq!(tomb.verify(), Ok(()));
        assert!(tomb.is_tombstone() && tomb.supersedes(&v2));
    }

    #[test]
    fn oversized_objects_are_refused_on_both_sides_of_the_wire() {
        let big = StoredObject::content_hashed(vec![7; OBJECT_BYTES_MAX + 1]);
        assert_eq!(
            big.verify(),
            Err(ObjectError::TooLarge {
                bytes: OBJECT_BYTES_MAX + 1
            })
        );
        assert!(matches!(
            StoredObject::from_bytes(&big.to_bytes(), DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong {
                what: "object contents",
                ..
            })
        ));
        let ok = StoredObject::signed(&signer(4), 9, b"x".to_vec());
        assert_eq!(
            StoredObject::from_bytes(&ok.to_bytes(), DecodeLimits::MESSAGE),
            Ok(ok)
        );
    }
}
