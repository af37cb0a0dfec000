//! The trusted dealer: Shamir-shares a fresh group secret among the participants.

use blst::min_pk;
use blstrs::Scalar;
use ff::Field;
use rand_core::RngCore;
use zeroize::Zeroizing;

use super::{
    GroupPublicKey, PublicKeySet, SecretKeyShare, ShareIndex, ThresholdError, ThresholdParameters,
};
use crate::bls::BlsPublicKey;

/// What a trusted dealer hands out: public material for everyone, one secret share per participant.
#[derive(Debug)]
pub struct DealtKeys {
    /// For every participant and verifier.
    pub public: PublicKeySet,
    /// `secret_shares[i]` goes to participant `i + 1` only.
    pub secret_shares: Vec<SecretKeyShare>,
}

/// Deal a fresh threshold key (trusted dealer; `stockade cluster` and simulations play the dealer).
/// `rng` must be cryptographically secure for real keys; a seeded RNG gives reproducible
/// simulation keys.
pub fn deal(
    parameters: ThresholdParameters,
    rng: &mut dyn RngCore,
) -> Result<DealtKeys, ThresholdError> {
    // Retry on the (probability ~2^-255 per value) event of a zero group secret or share.
    const DEAL_ATTEMPTS_MAX: usize = 8;
    for _ in 0..DEAL_ATTEMPTS_MAX {
        let polynomial: Vec<Scalar> = (0..parameters.threshold())
            .map(|_| Scalar::random(&mut *rng))
            .collect();
        let evaluate = |x: u64| {
            let x = Scalar::from(x);
            polynomial
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc * x + c)
        };
        let secret_key =
            |s: Scalar| min_pk::SecretKey::from_bytes(&*Zeroizing::new(s.to_bytes_be())).ok();
        let Some(group_secret) = secret_key(evaluate(0)) else {
            continue;
        };
        let shares: Option<Vec<SecretKeyShare>> = (1..=parameters.participants() as u16)
            .map(|i| {
                secret_key(evaluate(i as u64)).map(|key| SecretKeyShare {
                    index: ShareIndex(i),
                    key,
                })
            })
            .collect();
        let Some(secret_shares) = shares else {
            continue;
        };
        let group = GroupPublicKey(BlsPublicKey::from_raw(group_secret.sk_to_pk()));
        let public_shares = secret_shares
            .iter()
            .map(SecretKeyShare::public_share)
            .collect();
        let public = PublicKeySet::new(parameters, group, public_shares)?;
        return Ok(DealtKeys {
            public,
            secret_shares,
        });
    }
    Err(ThresholdError::BadParameters {
        threshold: parameters.threshold(),
        participants: parameters.participants(),
    })
}
