//! Threshold keys as text, for the files and configs a dealer writes (`stockade cluster up`): a
//! participant's secret share in its own key file, the public key set in every configuration.

use stockade_core::{DecodeLimits, Wire};
use zeroize::Zeroizing;

use super::{PublicKeySet, SecretKeyShare};
use crate::key_text::KeyParseError;

fn bytes_from_hex(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyParseError> {
    hex::decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| KeyParseError::BadHex(e.to_string()))
}

impl SecretKeyShare {
    /// The share (index and secret) as hex, for a key file readable by its owner only.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&*Zeroizing::new(self.to_bytes())))
    }

    /// Read a share written by [`SecretKeyShare::to_hex`].
    pub fn from_hex(text: &str) -> Result<SecretKeyShare, KeyParseError> {
        let bytes = bytes_from_hex(text)?;
        SecretKeyShare::from_bytes(&bytes, DecodeLimits::MESSAGE)
            .map_err(|_| KeyParseError::NotASecretKey("threshold share"))
    }
}

impl PublicKeySet {
    /// The whole public key set (parameters, group key, every participant's share key) as hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Read a key set written by [`PublicKeySet::to_hex`].
    pub fn from_hex(text: &str) -> Result<PublicKeySet, KeyParseError> {
        let bytes = bytes_from_hex(text)?;
        PublicKeySet::from_bytes(&bytes, DecodeLimits::MESSAGE)
            .map_err(|_| KeyParseError::NotAPublicKey("threshold key set"))
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::threshold::{deal, ThresholdParameters};

    #[test]
    fn shares_and_key_sets_roundtrip_through_hex_and_garbage_is_refused() {
        let parameters = ThresholdParameters::new(3, 4).expect("3 of 4");
        let dealt = deal(parameters, &mut ChaCha20Rng::seed_from_u64(1)).expect("dealt");
        let text = dealt.public.to_hex();
        assert_eq!(PublicKeySet::from_hex(&text), Ok(dealt.public.clone()));
        let share = &dealt.secret_shares[2];
        let back = SecretKeyShare::from_hex(&share.to_hex()).expect("share");
        assert_eq!(back.index(), share.index());
        assert_eq!(back.sign_partial(b"m"), share.sign_partial(b"m"));
        assert!(matches!(
            PublicKeySet::from_hex("zz"),
            Err(KeyParseError::BadHex(_))
        ));
        assert_eq!(
            PublicKeySet::from_hex(&text[..text.len() - 2]),
            Err(KeyParseError::NotAPublicKey("threshold key set"))
        );
        assert!(matches!(
            SecretKeyShare::from_hex("0001"),
            Err(KeyParseError::NotASecretKey("threshold share"))
        ));
    }
}
