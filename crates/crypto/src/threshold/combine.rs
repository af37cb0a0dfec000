//! The public side of a threshold key: checking partials and combining them by Lagrange
//! interpolation into the group's signature, naming the participants whose partials were bad.

use blst::min_pk;
use blstrs::Scalar;
use ff::Field;
use stockade_core::wire::{DecodeError, Reader, Wire};

use super::{
    GroupPublicKey, PartialSignature, PublicKeyShare, ShareIndex, ThresholdError,
    ThresholdParameters, THRESHOLD_PARTICIPANTS_MAX,
};
use crate::bls::{BlsError, BlsSignature};

/// Everything public about a threshold key: what every participant and every verifier holds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublicKeySet {
    parameters: ThresholdParameters,
    group: GroupPublicKey,
    /// `shares[i]` belongs to participant `i + 1`.
    shares: Vec<PublicKeyShare>,
}

/// A combined signature, and the participants whose partials were found invalid on the way.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CombinedSignature {
    /// A standard BLS signature under the group key, already verified.
    pub signature: BlsSignature,
    /// Participants that sent invalid partials (empty on the fast path): blacklist candidates.
    pub invalid: Vec<ShareIndex>,
    /// How many partials were verified singly (0 on the fast path), for charging CPU work.
    pub partials_verified: usize,
}

impl PublicKeySet {
    /// Assemble from parts (for example read from a config); shares must be 1..=participants in order.
    pub fn new(
        parameters: ThresholdParameters,
        group: GroupPublicKey,
        shares: Vec<PublicKeyShare>,
    ) -> Result<PublicKeySet, ThresholdError> {
        if shares.len() != parameters.participants() {
            return Err(ThresholdError::BadParameters {
                threshold: parameters.threshold(),
                participants: shares.len(),
            });
        }
        for (position, share) in shares.iter().enumerate() {
            if share.index.0 as usize != position + 1 {
                return Err(ThresholdError::UnknownParticipant {
                    index: share.index,
                    participants: shares.len(),
                });
            }
        }
        Ok(PublicKeySet {
            parameters,
            group,
            shares,
        })
    }

    /// The parameters.
    pub fn parameters(&self) -> ThresholdParameters {
        self.parameters
    }

    /// The group key.
    pub fn group_key(&self) -> &GroupPublicKey {
        &self.group
    }

    /// The public share of `index`, if that participant exists.
    pub fn share(&self, index: ShareIndex) -> Option<&PublicKeyShare> {
        (index.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.shares.get(i))
    }

    /// Check one partial signature against its participant's public key share.
    pub fn verify_partial(
        &self,
        message: &[u8],
        partial: &PartialSignature,
    ) -> Result<(), ThresholdError> {
        let share = self
            .share(partial.index)
            .ok_or(ThresholdError::UnknownParticipant {
                index: partial.index,
                participants: self.parameters.participants(),
            })?;
        share
            .key
            .verify(message, &partial.signature)
            .map_err(|_| ThresholdError::InvalidPartial(partial.index))
    }

    /// Combine partials into a signature under the group key, and verify it.
    ///
    /// The first `threshold` partials are combined and the result verified once. If that fails,
    /// every partial is verified singly, the invalid ones are reported, and the first `threshold`
    /// valid ones are combined (paper 004, section 3: verifiable partials let a correct server
    /// detect, and then blacklist, a server that submits invalid ones). Duplicate or unknown
    /// participants are refused before any work, as are more partials than participants.
    pub fn combine(
        &self,
        message: &[u8],
        partials: &[PartialSignature],
    ) -> Result<CombinedSignature, ThresholdError> {
        check_partial_set(self.parameters, partials)?;
        let needed = self.parameters.threshold();
        if let Some(signature) = self.interpolate_and_verify(message, &partials[..needed]) {
            return Ok(CombinedSignature {
                signature,
                invalid: Vec::new(),
                partials_verified: 0,
            });
        }
        let (valid, invalid): (Vec<PartialSignature>, Vec<PartialSignature>) = partials
            .iter()
            .partition(|p| self.verify_partial(message, p).is_ok());
        let invalid: Vec<ShareIndex> = invalid.iter().map(|p| p.index).collect();
        if valid.len() < needed {
            return Err(ThresholdError::NotEnoughValidPartials {
                valid: valid.len(),
                needed,
                invalid,
            });
        }
        // Valid partials of one polynomial always interpolate to the group signature; if this
        // still failed, the key set itself is inconsistent and no partial is to blame.
        let signature = self
            .interpolate_and_verify(message, &valid[..needed])
            .ok_or(ThresholdError::InvalidSignature)?;
        Ok(CombinedSignature {
            signature,
            invalid,
            partials_verified: partials.len(),
        })
    }

    /// Lagrange-interpolate `partials` (distinct, known participants) at 0 and verify the result.
    fn interpolate_and_verify(
        &self,
        message: &[u8],
        partials: &[PartialSignature],
    ) -> Option<BlsSignature> {
        let points: Vec<Scalar> = partials
            .iter()
            .map(|p| Scalar::from(p.index.0 as u64))
            .collect();
        let mut scalars = Vec::with_capacity(32 * partials.len());
        for coefficient in lagrange_at_zero(&points)? {
            scalars.extend_from_slice(&coefficient.to_bytes_le());
        }
        let signatures: Vec<min_pk::Signature> = partials
            .iter()
            .map(|p| p.signature.point())
            .collect::<Result<_, BlsError>>()
            .ok()?;
        let sum = min_pk::AggregateSignature::aggregate_with_randomness(
            &signatures,
            &scalars,
            255,
            false,
        )
        .ok()?;
        let signature = BlsSignature::from_raw(sum.to_signature());
        self.group
            .verify(message, &signature)
            .ok()
            .map(|()| signature)
    }
}

impl Wire for PublicKeySet {
    fn encode(&self, out: &mut Vec<u8>) {
        self.parameters.encode(out);
        self.group.encode(out);
        stockade_core::wire::put_vec(out, &self.shares);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let parameters = ThresholdParameters::decode(r)?;
        let group = GroupPublicKey::decode(r)?;
        let shares = r.vec_of("public key shares", THRESHOLD_PARTICIPANTS_MAX)?;
        PublicKeySet::new(parameters, group, shares)
            .map_err(|_| DecodeError::Invalid("public key set"))
    }
}

/// Refuse a partial set with an unknown or repeated participant, or fewer than `threshold`
/// partials, before any cryptographic work.
pub(crate) fn check_partial_set(
    parameters: ThresholdParameters,
    partials: &[PartialSignature],
) -> Result<(), ThresholdError> {
    let participants = parameters.participants();
    let mut seen = vec![false; participants];
    for partial in partials {
        let slot = (partial.index.0 as usize)
            .checked_sub(1)
            .and_then(|i| seen.get_mut(i))
            .ok_or(ThresholdError::UnknownParticipant {
                index: partial.index,
                participants,
            })?;
        if std::mem::replace(slot, true) {
            return Err(ThresholdError::DuplicateParticipant(partial.index));
        }
    }
    match partials.len() < parameters.threshold() {
        true => Err(ThresholdError::NotEnoughPartials {
            have: partials.len(),
            needed: parameters.threshold(),
        }),
        false => Ok(()),
    }
}

/// Lagrange coefficients at 0 for distinct nonzero evaluation points; `None` if two coincide.
fn lagrange_at_zero(points: &[Scalar]) -> Option<Vec<Scalar>> {
    let mut coefficients = Vec::with_capacity(points.len());
    for (i, xi) in points.iter().enumerate() {
        let (mut numerator, mut denominator) = (Scalar::ONE, Scalar::ONE);
        for (j, xj) in points.iter().enumerate() {
            if i != j {
                numerator *= xj;
                denominator *= xj - xi;
            }
        }
        coefficients.push(numerator * Option::<Scalar>::from(denominator.invert())?);
    }
    Some(coefficients)
}
