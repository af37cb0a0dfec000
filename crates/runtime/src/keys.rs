//! A node's X25519 static keypair for the Noise IK links: generate, save to and load from a key file.
//!
//! A key file holds the private key as 64 hex characters and a newline; it is created with mode
//! 0600 and refused at load when group or others may read it. The public key is derived from the
//! private key, so the file cannot hold a mismatched pair. Peers' public keys travel in configs as
//! hex ([`PublicKey`]'s `FromStr`/`Display`).

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use thiserror::Error;

/// Length of an X25519 key in bytes.
pub const KEY_LEN: usize = 32;

/// A peer's X25519 static public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

/// A node's static keypair. The private half never appears in `Debug` output.
#[derive(Clone)]
pub struct StaticKeypair {
    private: [u8; KEY_LEN],
    public: PublicKey,
}

/// Why a key could not be generated, parsed, saved or loaded.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key text is not 64 hex characters.
    #[error("a key must be {expected} hex characters (32 bytes); got {found:?}")]
    BadHex {
        /// Number of hex characters expected.
        expected: usize,
        /// The text found (for a public key) or a description of it (for a private key).
        found: String,
    },
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file may be read by other users.
    #[error("key file {path} has mode {mode:o}; others can read it: run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The Noise library could not generate a key.
    #[error("key generation failed: {0}")]
    Noise(#[from] snow::Error),
}

impl StaticKeypair {
    /// A fresh keypair from the operating system's randomness.
    pub fn generate() -> Result<StaticKeypair, KeyError> {
        let builder = snow::Builder::new(crate::noise::noise_params());
        let pair = builder.generate_keypair()?;
        let private: [u8; KEY_LEN] =
            pair.private
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::BadHex {
                    expected: 2 * KEY_LEN,
                    found: "a generated key of the wrong length".into(),
                })?;
        Ok(StaticKeypair::from_private(private))
    }

    /// The keypair whose private key is `private`.
    pub fn from_private(private: [u8; KEY_LEN]) -> StaticKeypair {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's default resolver always provides Curve25519");
        dh.set(&private);
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(dh.pubkey());
        StaticKeypair {
            private,
            public: PublicKey(public),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private half, for building Noise handshakes.
    pub(crate) fn private_bytes(&self) -> &[u8; KEY_LEN] {
        &self.private
    }

    /// Write the private key to `path` (created with mode 0600; an existing file is replaced).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        // An existing file keeps its old mode under `open`; force 0600 on it as well.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        let text = format!("{}\n", hex::encode(self.private));
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Read a key file written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<StaticKeypair, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let private = parse_key_hex(text.trim()).map_err(|_| KeyError::BadHex {
            expected: 2 * KEY_LEN,
            found: "the key file's contents".into(),
        })?;
        Ok(StaticKeypair::from_private(private))
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn parse_key_hex(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let bad = || KeyError::BadHex {
        expected: 2 * KEY_LEN,
        found: text.chars().take(80).collect(),
    };
    let bytes = hex::decode(text).map_err(|_| bad())?;
    bytes.as_slice().try_into().map_err(|_| bad())
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        parse_key_hex(text.trim()).map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first bytes are enough to tell keys apart in logs.
        write!(f, "PublicKey({}..)", &hex::encode(&self.0[..6]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_gives_the_same_pair_with_mode_0600() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|source| KeyError::Io {
            path: "tmp".into(),
            source,
        })?;
        let path = dir.path().join("node.key");
        let pair = StaticKeypair::generate()?;
        pair.save(&path)?;
        let mode = std::fs::metadata(&path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let loaded = StaticKeypair::load(&path)?;
        assert_eq!(loaded.public(), pair.public());
        assert_eq!(loaded.private_bytes(), pair.private_bytes());
        Ok(())
    }

    #[test]
    fn a_world_readable_key_file_is_refused() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|source| KeyError::Io {
            path: "tmp".into(),
            source,
        })?;
        let path = dir.path().join("node.key");
        StaticKeypair::generate()?.save(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(
            |source| KeyError::Io {
                path: path.clone(),
                source,
            },
        )?;
        assert!(matches!(
            StaticKeypair::load(&path),
            Err(KeyError::Permissions { mode: 0o644, .. })
        ));
        Ok(())
    }

    #[test]
    fn public_keys_round_trip_through_hex_and_reject_bad_text() -> Result<(), KeyError> {
        let public = StaticKeypair::generate()?.public();
        assert_eq!(public.to_string().parse::<PublicKey>()?, public);
        assert!("abcd".parse::<PublicKey>().is_err());
        assert!("zz".repeat(32).parse::<PublicKey>().is_err());
        Ok(())
    }
}
