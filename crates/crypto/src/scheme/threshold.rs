//! Threshold signatures (or their stand-in): a site's participants sign partials and any
//! `threshold` valid ones combine into the site's signature (paper 004, sections 2-3).

use std::fmt;
use std::sync::Arc;

use stockade_core::{CostKind, CpuWork};

use super::registry::{pad_stand_in, stand_in_mac, tags_match, SimFastKeyRegistry, StandInScheme};
use super::CryptoMode;
use crate::bls::{BlsSignature, BLS_SIGNATURE_BYTES};
use crate::mac::MacKey;
use crate::threshold::{
    check_partial_set, CombinedSignature, PartialSignature, PublicKeySet, SecretKeyShare,
    ShareIndex, ThresholdError, ThresholdParameters,
};

/// The stand-in for one participant's secret share.
#[derive(Clone)]
pub struct SimFastShareSigner {
    index: ShareIndex,
    key: MacKey,
}

impl SimFastShareSigner {
    pub(crate) fn new(registry: &Arc<SimFastKeyRegistry>, group: u32, index: u16) -> Self {
        let key = registry.key(StandInScheme::ThresholdShare { group }, index as u32);
        SimFastShareSigner {
            index: ShareIndex(index),
            key,
        }
    }
}

/// The stand-in for a group's public key set. It holds the group's tag key privately and uses it
/// only inside [`ThresholdVerifier::combine`], after `threshold` partials checked out.
#[derive(Clone)]
pub struct SimFastThresholdGroup {
    parameters: ThresholdParameters,
    shares: Vec<MacKey>,
    group_key: MacKey,
}

impl SimFastThresholdGroup {
    pub(crate) fn new(
        registry: &Arc<SimFastKeyRegistry>,
        group: u32,
        parameters: ThresholdParameters,
    ) -> SimFastThresholdGroup {
        let shares = (1..=parameters.participants() as u32)
            .map(|i| registry.key(StandInScheme::ThresholdShare { group }, i))
            .collect();
        let group_key = registry.key(StandInScheme::ThresholdGroup { group }, 0);
        SimFastThresholdGroup {
            parameters,
            shares,
            group_key,
        }
    }

    fn partial_is_valid(&self, message: &[u8], partial: &PartialSignature) -> bool {
        let Some(key) = (partial.index.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.shares.get(i))
        else {
            return false;
        };
        let expected = pad_stand_in::<BLS_SIGNATURE_BYTES>(stand_in_mac(key, message));
        tags_match(&expected, &partial.signature.0)
    }

    fn group_signature(&self, message: &[u8]) -> BlsSignature {
        BlsSignature(pad_stand_in(stand_in_mac(&self.group_key, message)))
    }
}

/// A participant's share in either mode.
#[derive(Clone)]
pub enum ThresholdSigner {
    /// Real threshold BLS.
    Real(SecretKeyShare),
    /// The simulation stand-in.
    SimFast(SimFastShareSigner),
}

impl ThresholdSigner {
    /// Which mode this signer is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            ThresholdSigner::Real(_) => CryptoMode::Real,
            ThresholdSigner::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// Whose share this is.
    pub fn index(&self) -> ShareIndex {
        match self {
            ThresholdSigner::Real(share) => share.index(),
            ThresholdSigner::SimFast(share) => share.index,
        }
    }

    /// Sign a partial; charges one `ThresholdPartialSign`.
    pub fn sign_partial(
        &self,
        message: &[u8],
        charge: &mut impl FnMut(CpuWork),
    ) -> PartialSignature {
        charge(CpuWork::ops(CostKind::ThresholdPartialSign, 1));
        match self {
            ThresholdSigner::Real(share) => share.sign_partial(message),
            ThresholdSigner::SimFast(share) => PartialSignature {
                index: share.index,
                signature: BlsSignature(pad_stand_in(stand_in_mac(&share.key, message))),
            },
        }
    }
}

impl fmt::Debug for ThresholdSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThresholdSigner::{:?}({:?})", self.mode(), self.index())
    }
}

/// A group's public threshold key in either mode.
#[derive(Clone)]
pub enum ThresholdVerifier {
    /// Real threshold BLS.
    Real(PublicKeySet),
    /// The simulation stand-in.
    SimFast(SimFastThresholdGroup),
}

impl ThresholdVerifier {
    /// Which mode this verifier is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            ThresholdVerifier::Real(_) => CryptoMode::Real,
            ThresholdVerifier::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// The group's parameters.
    pub fn parameters(&self) -> ThresholdParameters {
        match self {
            ThresholdVerifier::Real(set) => set.parameters(),
            ThresholdVerifier::SimFast(group) => group.parameters,
        }
    }

    /// Check one partial; charges one `ThresholdPartialVerify`.
    pub fn verify_partial(
        &self,
        message: &[u8],
        partial: &PartialSignature,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), ThresholdError> {
        charge(CpuWork::ops(CostKind::ThresholdPartialVerify, 1));
        match self {
            ThresholdVerifier::Real(set) => set.verify_partial(message, partial),
            ThresholdVerifier::SimFast(group) => {
                let participants = group.parameters.participants();
                if partial.index.0 == 0 || partial.index.0 as usize > participants {
                    return Err(ThresholdError::UnknownParticipant {
                        index: partial.index,
                        participants,
                    });
                }
                match group.partial_is_valid(message, partial) {
                    true => Ok(()),
                    false => Err(ThresholdError::InvalidPartial(partial.index)),
                }
            }
        }
    }

    /// Combine partials as [`PublicKeySet::combine`] does (verify once; on failure check each,
    /// report the invalid ones, combine the valid). Charges one `ThresholdCombineShare` per
    /// partial combined, one `ThresholdVerify` per combined signature checked, and one
    /// `ThresholdPartialVerify` per partial checked singly.
    pub fn combine(
        &self,
        message: &[u8],
        partials: &[PartialSignature],
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<CombinedSignature, ThresholdError> {
        let parameters = self.parameters();
        let result = match self {
            ThresholdVerifier::Real(set) => set.combine(message, partials),
            ThresholdVerifier::SimFast(group) => combine_stand_in(group, message, partials),
        };
        let threshold = parameters.threshold() as u32;
        match &result {
            Ok(combined) if combined.partials_verified == 0 => {
                charge(CpuWork::ops(CostKind::ThresholdCombineShare, threshold));
                charge(CpuWork::ops(CostKind::ThresholdVerify, 1));
            }
            Ok(_) | Err(ThresholdError::NotEnoughValidPartials { .. }) => {
                let rounds = if result.is_ok() { 2 } else { 1 };
                charge(CpuWork::ops(
                    CostKind::ThresholdCombineShare,
                    threshold * rounds,
                ));
                charge(CpuWork::ops(CostKind::ThresholdVerify, rounds));
                charge(CpuWork::ops(
                    CostKind::ThresholdPartialVerify,
                    partials.len() as u32,
                ));
            }
            Err(_) => {}
        }
        result
    }

    /// Check a combined signature under the group key; charges one `ThresholdVerify`.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &BlsSignature,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), ThresholdError> {
        charge(CpuWork::ops(CostKind::ThresholdVerify, 1));
        match self {
            ThresholdVerifier::Real(set) => set.group_key().verify(message, signature),
            ThresholdVerifier::SimFast(group) => {
                match tags_match(&group.group_signature(message).0, &signature.0) {
                    true => Ok(()),
                    false => Err(ThresholdError::InvalidSignature),
                }
            }
        }
    }
}

/// The stand-in's combine, with the real one's rules and outcomes.
fn combine_stand_in(
    group: &SimFastThresholdGroup,
    message: &[u8],
    partials: &[PartialSignature],
) -> Result<CombinedSignature, ThresholdError> {
    check_partial_set(group.parameters, partials)?;
    let needed = group.parameters.threshold();
    let signature = group.group_signature(message);
    if partials[..needed]
        .iter()
        .all(|p| group.partial_is_valid(message, p))
    {
        return Ok(CombinedSignature {
            signature,
            invalid: Vec::new(),
            partials_verified: 0,
        });
    }
    let invalid: Vec<ShareIndex> = partials
        .iter()
        .filter(|p| !group.partial_is_valid(message, p))
        .map(|p| p.index)
        .collect();
    let valid = partials.len() - invalid.len();
    if valid < needed {
        return Err(ThresholdError::NotEnoughValidPartials {
            valid,
            needed,
            invalid,
        });
    }
    Ok(CombinedSignature {
        signature,
        invalid,
        partials_verified: partials.len(),
    })
}

impl fmt::Debug for ThresholdVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ThresholdVerifier::{:?}({:?})",
            self.mode(),
            self.parameters()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::SimulationKeys;
    use super::*;

    fn both_modes() -> [SimulationKeys; 2] {
        [
            SimulationKeys::new(CryptoMode::Real, 8),
            SimulationKeys::new(CryptoMode::SimFast, 8),
        ]
    }

    fn params() -> ThresholdParameters {
        ThresholdParameters::for_faults(1).expect("2 of 4")
    }

    #[test]
    fn combine_and_verify_with_real_costs_in_both_modes() {
        for keys in both_modes() {
            let (verifier, signers) = keys.threshold_group(0, params()).expect("dealt");
            let mut charged = Vec::new();
            let partials: Vec<PartialSignature> = signers[1..3]
                .iter()
                .map(|s| s.sign_partial(b"m", &mut |w| charged.push(w)))
                .collect();
            let combined = verifier
                .combine(b"m", &partials, &mut |w| charged.push(w))
                .expect("combines");
            assert_eq!(
                verifier.verify(b"m", &combined.signature, &mut |w| charged.push(w)),
                Ok(())
            );
            assert_eq!(
                charged,
                vec![
                    CpuWork::ops(CostKind::ThresholdPartialSign, 1),
                    CpuWork::ops(CostKind::ThresholdPartialSign, 1),
                    CpuWork::ops(CostKind::ThresholdCombineShare, 2),
                    CpuWork::ops(CostKind::ThresholdVerify, 1),
                    CpuWork::ops(CostKind::ThresholdVerify, 1),
                ],
                "{}",
                keys.mode()
            );
            let mut ignore = |_| {};
            assert_eq!(
                verifier.verify(b"x", &combined.signature, &mut ignore),
                Err(ThresholdError::InvalidSignature)
            );
        }
    }

    #[test]
    fn bad_partials_are_named_and_forgeries_fail_in_both_modes() {
        for keys in both_modes() {
            let (verifier, signers) = keys.threshold_group(3, params()).expect("dealt");
            let mut ignore = |_| {};
            let mut partials: Vec<PartialSignature> = signers
                .iter()
                .map(|s| s.sign_partial(b"m", &mut ignore))
                .collect();
            partials[0].signature.0[3] ^= 1;
            let mut charged = Vec::new();
            let combined = verifier
                .combine(b"m", &partials, &mut |w| charged.push(w))
                .expect("3 valid");
            assert_eq!(combined.invalid, vec![ShareIndex(1)], "{}", keys.mode());
            assert!(charged.contains(&CpuWork::ops(CostKind::ThresholdPartialVerify, 4)));
            assert_eq!(
                verifier.verify_partial(b"m", &partials[0], &mut ignore),
                Err(ThresholdError::InvalidPartial(ShareIndex(1)))
            );
            assert_eq!(
                verifier.verify_partial(b"m", &partials[1], &mut ignore),
                Ok(())
            );
            // A partial from another group's share of the same index does not count here.
            let (_, strangers) = keys.threshold_group(4, params()).expect("dealt");
            let foreign = strangers[2].sign_partial(b"m", &mut ignore);
            assert_eq!(
                verifier.combine(b"m", &[partials[0], foreign], &mut ignore),
                Err(ThresholdError::NotEnoughValidPartials {
                    valid: 0,
                    needed: 2,
                    invalid: vec![ShareIndex(1), ShareIndex(3)]
                })
            );
            // One participant alone cannot make the group signature.
            let lone = signers[0].sign_partial(b"m", &mut ignore);
            assert_eq!(
                verifier.verify(b"m", &lone.signature, &mut ignore),
                Err(ThresholdError::InvalidSignature)
            );
            assert_eq!(
                verifier.combine(b"m", &[lone, lone], &mut ignore),
                Err(ThresholdError::DuplicateParticipant(ShareIndex(1)))
            );
        }
    }
}
