//! BLS multi-signatures (or their stand-in): many members sign one message, one aggregate and a
//! signer bitmap travel (LA-groups' membership transcripts, paper 000).

use std::fmt;
use std::sync::Arc;

use stockade_core::{CostKind, CpuWork};

use super::registry::{pad_stand_in, stand_in_mac, tags_match, SimFastKeyRegistry, StandInScheme};
use super::CryptoMode;
use crate::bls::multisig::{check_signers, signer_bitmap};
use crate::bls::{
    verify_multi, BlsError, BlsSecretKey, BlsSignature, MultiSignature, VerifiedPublicKey,
    BLS_SIGNATURE_BYTES,
};
use crate::mac::MacKey;

/// The stand-in for one member's BLS key.
#[derive(Clone)]
pub struct SimFastMultiSigner {
    node: u32,
    key: MacKey,
}

impl SimFastMultiSigner {
    pub(crate) fn new(registry: &Arc<SimFastKeyRegistry>, node: u32) -> SimFastMultiSigner {
        SimFastMultiSigner {
            node,
            key: registry.key(StandInScheme::BlsMulti, node),
        }
    }
}

/// The stand-in for an ordered membership's public keys.
#[derive(Clone)]
pub struct SimFastMembership {
    keys: Vec<MacKey>,
}

impl SimFastMembership {
    pub(crate) fn new(registry: &Arc<SimFastKeyRegistry>, nodes: &[u32]) -> SimFastMembership {
        SimFastMembership {
            keys: nodes
                .iter()
                .map(|&n| registry.key(StandInScheme::BlsMulti, n))
                .collect(),
        }
    }
}

/// XOR of 32-byte MACs: the stand-in's aggregation (like BLS addition, order-free).
fn xor_into(sum: &mut [u8; 32], mac: &[u8]) {
    sum.iter_mut().zip(mac).for_each(|(s, m)| *s ^= m);
}

/// A member's multi-signature key in either mode.
#[derive(Clone)]
pub enum MultiSigner {
    /// Real BLS.
    Real(BlsSecretKey),
    /// The simulation stand-in.
    SimFast(SimFastMultiSigner),
}

impl MultiSigner {
    /// Which mode this signer is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            MultiSigner::Real(_) => CryptoMode::Real,
            MultiSigner::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// Sign `message`; charges one `BlsSign`.
    pub fn sign(&self, message: &[u8], charge: &mut impl FnMut(CpuWork)) -> BlsSignature {
        charge(CpuWork::ops(CostKind::BlsSign, 1));
        match self {
            MultiSigner::Real(key) => key.sign(message),
            MultiSigner::SimFast(key) => BlsSignature(pad_stand_in::<BLS_SIGNATURE_BYTES>(
                stand_in_mac(&key.key, message),
            )),
        }
    }
}

impl fmt::Debug for MultiSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultiSigner::Real(key) => write!(f, "MultiSigner::Real({:?})", key.public_key()),
            MultiSigner::SimFast(key) => write!(f, "MultiSigner::SimFast(node {})", key.node),
        }
    }
}

/// An ordered membership whose multi-signatures can be aggregated and verified, in either mode.
/// Bitmap position `i` is member `i`.
#[derive(Clone)]
pub enum Membership {
    /// Real BLS keys, each with a verified proof of possession.
    Real(Vec<VerifiedPublicKey>),
    /// The simulation stand-in.
    SimFast(SimFastMembership),
}

impl Membership {
    /// Which mode this membership is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            Membership::Real(_) => CryptoMode::Real,
            Membership::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// Members.
    pub fn len(&self) -> usize {
        match self {
            Membership::Real(keys) => keys.len(),
            Membership::SimFast(keys) => keys.keys.len(),
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Aggregate members' signatures `(position, signature)`; charges one `BlsAggregateSignature`
    /// per signature.
    pub fn aggregate(
        &self,
        signatures: &[(usize, &BlsSignature)],
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<MultiSignature, BlsError> {
        charge(CpuWork::ops(
            CostKind::BlsAggregateSignature,
            signatures.len() as u32,
        ));
        match self {
            Membership::Real(_) => MultiSignature::aggregate(self.len(), signatures),
            Membership::SimFast(_) => {
                let signers = signer_bitmap(self.len(), signatures)?;
                if signatures.is_empty() {
                    return Err(BlsError::NoSigners);
                }
                let mut sum = [0u8; 32];
                for (_, signature) in signatures {
                    // The marker stands for "a valid curve point": garbage is refused, as real
                    // aggregation refuses a non-point.
                    let marked = pad_stand_in::<BLS_SIGNATURE_BYTES>([0; 32]);
                    if !tags_match(&marked[32..], &signature.0[32..]) {
                        return Err(BlsError::InvalidSignature);
                    }
                    xor_into(&mut sum, &signature.0[..32]);
                }
                Ok(MultiSignature {
                    signers,
                    signature: BlsSignature(pad_stand_in(sum)),
                })
            }
        }
    }

    /// Check that every member marked in `multi` signed `message`. Charges one
    /// `BlsAggregatePublicKey` per signer and one `BlsVerify`.
    pub fn verify(
        &self,
        message: &[u8],
        multi: &MultiSignature,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), BlsError> {
        charge(CpuWork::ops(
            CostKind::BlsAggregatePublicKey,
            multi.signers.count() as u32,
        ));
        charge(CpuWork::ops(CostKind::BlsVerify, 1));
        match self {
            Membership::Real(keys) => verify_multi(keys, message, multi),
            Membership::SimFast(members) => {
                check_signers(self.len(), multi)?;
                let mut expected = [0u8; 32];
                for i in multi.signers.iter() {
                    xor_into(&mut expected, &stand_in_mac(&members.keys[i], message));
                }
                let expected = pad_stand_in::<BLS_SIGNATURE_BYTES>(expected);
                match tags_match(&expected, &multi.signature.0) {
                    true => Ok(()),
                    false => Err(BlsError::InvalidSignature),
                }
            }
        }
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Membership::{:?}({} members)", self.mode(), self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::SimulationKeys;
    use super::*;

    fn both_modes() -> [SimulationKeys; 2] {
        [
            SimulationKeys::new(CryptoMode::Real, 3),
            SimulationKeys::new(CryptoMode::SimFast, 3),
        ]
    }

    #[test]
    fn transcripts_verify_and_forgeries_fail_in_both_modes() {
        for keys in both_modes() {
            let nodes: Vec<u32> = (10..26).collect();
            let members = keys.membership(&nodes);
            assert_eq!(members.len(), 16);
            let mut charged = Vec::new();
            let sigs: Vec<BlsSignature> = [0, 3, 7]
                .iter()
                .map(|&i| {
                    keys.multi_signer(nodes[i])
                        .sign(b"view", &mut |w| charged.push(w))
                })
                .collect();
            let pairs: Vec<(usize, &BlsSignature)> = [0, 3, 7].into_iter().zip(&sigs).collect();
            let multi = members
                .aggregate(&pairs, &mut |w| charged.push(w))
                .expect("aggregates");
            assert_eq!(
                members.verify(b"view", &multi, &mut |w| charged.push(w)),
                Ok(()),
                "{}",
                keys.mode()
            );
            assert_eq!(
                charged,
                vec![
                    CpuWork::ops(CostKind::BlsSign, 1),
                    CpuWork::ops(CostKind::BlsSign, 1),
                    CpuWork::ops(CostKind::BlsSign, 1),
                    CpuWork::ops(CostKind::BlsAggregateSignature, 3),
                    CpuWork::ops(CostKind::BlsAggregatePublicKey, 3),
                    CpuWork::ops(CostKind::BlsVerify, 1),
                ]
            );
            let mut ignore = |_| {};
            assert_eq!(
                members.verify(b"other", &multi, &mut ignore),
                Err(BlsError::InvalidSignature)
            );
            // Claiming an extra signer, or a non-member signing in a member's place, fails.
            let mut overclaim = multi.clone();
            overclaim.signers.insert(5);
            assert_eq!(
                members.verify(b"view", &overclaim, &mut ignore),
                Err(BlsError::InvalidSignature)
            );
            let outsider = keys.multi_signer(99).sign(b"view", &mut ignore);
            let swapped = members
                .aggregate(&[(0, &sigs[0]), (3, &outsider)], &mut ignore)
                .expect("aggregates");
            assert_eq!(
                members.verify(b"view", &swapped, &mut ignore),
                Err(BlsError::InvalidSignature)
            );
            let mut tampered = multi.clone();
            tampered.signature.0[5] ^= 1;
            assert_eq!(
                members.verify(b"view", &tampered, &mut ignore),
                Err(BlsError::InvalidSignature)
            );
            // Shape errors are the same in both modes.
            let smaller = keys.membership(&nodes[..15]);
            assert_eq!(
                smaller.verify(b"view", &multi, &mut ignore),
                Err(BlsError::MembershipMismatch {
                    bitmap_members: 16,
                    keys: 15
                })
            );
            assert_eq!(
                members.aggregate(&[(0, &sigs[0]), (0, &sigs[0])], &mut ignore),
                Err(BlsError::DuplicateSigner { index: 0 })
            );
            assert_eq!(
                members.aggregate(&[], &mut ignore),
                Err(BlsError::NoSigners)
            );
        }
    }

    #[test]
    fn stand_in_aggregation_refuses_unmarked_garbage() {
        let keys = SimulationKeys::new(CryptoMode::SimFast, 3);
        let members = keys.membership(&[1, 2]);
        let garbage = BlsSignature([7; 96]);
        assert_eq!(
            members.aggregate(&[(0, &garbage)], &mut |_| {}),
            Err(BlsError::InvalidSignature)
        );
        assert_eq!(members.mode(), CryptoMode::SimFast);
    }
}
