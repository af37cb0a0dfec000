//! Keys as text: reading the hex that key files and configs hold, and the error when it is wrong.

use thiserror::Error;
use zeroize::Zeroizing;

/// A key could not be read from bytes or hex (a key file, a config).
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum KeyParseError {
    /// The text is not hex.
    #[error("key is not valid hex: {0}")]
    BadHex(String),
    /// The bytes have the wrong length.
    #[error("key has {found} bytes, expected {expected}")]
    WrongLength {
        /// Bytes a key of this kind has.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The bytes do not encode a valid public key.
    #[error("bytes do not encode a valid {0} public key")]
    NotAPublicKey(&'static str),
    /// The bytes do not encode a valid secret key (zero or out of range).
    #[error("bytes do not encode a valid {0} secret key")]
    NotASecretKey(&'static str),
}

/// Decode `text` as hex into exactly `N` bytes (shared by every key type's `from_hex`).
pub(crate) fn fixed_from_hex<const N: usize>(
    text: &str,
) -> Result<Zeroizing<[u8; N]>, KeyParseError> {
    let bytes =
        Zeroizing::new(hex::decode(text.trim()).map_err(|e| KeyParseError::BadHex(e.to_string()))?);
    if bytes.len() != N {
        return Err(KeyParseError::WrongLength {
            expected: N,
            found: bytes.len(),
        });
    }
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&bytes);
    Ok(out)
}
