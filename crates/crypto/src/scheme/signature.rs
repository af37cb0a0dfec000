//! Per-node signatures (Ed25519 or its stand-in) and Merkle batches over them.

use std::fmt;
use std::sync::Arc;

use rand_core::RngCore;
use stockade_core::{CostKind, CpuWork};

use super::registry::{pad_stand_in, stand_in_mac, tags_match, SimFastKeyRegistry, StandInScheme};
use super::CryptoMode;
use crate::ed25519::{
    self, BatchItem, BatchVerifyError, InvalidSignature, Signature, SigningKey, VerifyingKey,
    BATCH_ITEMS_MAX, SIGNATURE_BYTES,
};
use crate::mac::MacKey;
use crate::merkle::{sign_batch_with, BatchProof, MerkleError};

/// The stand-in for one node's Ed25519 key: makes 64-byte keyed-hash tags.
#[derive(Clone)]
pub struct SimFastSigner {
    node: u32,
    key: MacKey,
}

impl SimFastSigner {
    pub(crate) fn new(registry: &Arc<SimFastKeyRegistry>, node: u32) -> SimFastSigner {
        SimFastSigner {
            node,
            key: registry.key(StandInScheme::Ed25519, node),
        }
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(pad_stand_in::<SIGNATURE_BYTES>(stand_in_mac(
            &self.key, message,
        )))
    }
}

/// The stand-in for one node's Ed25519 public key: checks its tags. It holds the node's key in a
/// private field and exposes no way to make a tag.
#[derive(Clone)]
pub struct SimFastVerifier {
    node: u32,
    key: MacKey,
}

impl SimFastVerifier {
    pub(crate) fn new(registry: &Arc<SimFastKeyRegistry>, node: u32) -> SimFastVerifier {
        SimFastVerifier {
            node,
            key: registry.key(StandInScheme::Ed25519, node),
        }
    }

    fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), InvalidSignature> {
        let expected = pad_stand_in::<SIGNATURE_BYTES>(stand_in_mac(&self.key, message));
        match tags_match(&expected, &signature.0) {
            true => Ok(()),
            false => Err(InvalidSignature),
        }
    }
}

/// A node's signing key in either mode. Give each node only its own.
#[derive(Clone)]
pub enum Signer {
    /// Real Ed25519.
    Real(SigningKey),
    /// The simulation stand-in.
    SimFast(SimFastSigner),
}

impl Signer {
    /// Which mode this signer is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            Signer::Real(_) => CryptoMode::Real,
            Signer::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// Sign `message`; charges one `Ed25519Sign`.
    pub fn sign(&self, message: &[u8], charge: &mut impl FnMut(CpuWork)) -> Signature {
        charge(CpuWork::ops(CostKind::Ed25519Sign, 1));
        match self {
            Signer::Real(key) => key.sign(message),
            Signer::SimFast(key) => key.sign(message),
        }
    }

    /// Sign a batch with one signature over its Merkle root; one proof per message, in order.
    /// Charges one `MerkleLeaf` per message and one `Ed25519Sign`.
    pub fn sign_batch<M: AsRef<[u8]>>(
        &self,
        messages: &[M],
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<Vec<BatchProof>, MerkleError> {
        let proofs = sign_batch_with(messages, |digest| self.sign(&digest.0, &mut *charge))?;
        charge(CpuWork::ops(CostKind::MerkleLeaf, proofs.len() as u32));
        Ok(proofs)
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        match self {
            Signer::Real(key) => Verifier::Real(key.verifying_key()),
            Signer::SimFast(key) => Verifier::SimFast(SimFastVerifier {
                node: key.node,
                key: key.key.clone(),
            }),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Real(key) => write!(f, "Signer::Real({:?})", key.verifying_key()),
            Signer::SimFast(key) => write!(f, "Signer::SimFast(node {})", key.node),
        }
    }
}

/// A node's public verification key in either mode.
#[derive(Clone)]
pub enum Verifier {
    /// Real Ed25519.
    Real(VerifyingKey),
    /// The simulation stand-in.
    SimFast(SimFastVerifier),
}

/// One signature to check in [`Verifier::verify_batch`].
#[derive(Clone, Copy)]
pub struct SchemeBatchItem<'a> {
    /// Who claims to have signed.
    pub verifier: &'a Verifier,
    /// What was signed.
    pub message: &'a [u8],
    /// The claimed signature.
    pub signature: &'a Signature,
}

impl Verifier {
    /// Which mode this verifier is.
    pub fn mode(&self) -> CryptoMode {
        match self {
            Verifier::Real(_) => CryptoMode::Real,
            Verifier::SimFast(_) => CryptoMode::SimFast,
        }
    }

    /// Check `signature` on `message`; charges one `Ed25519Verify`.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &Signature,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), InvalidSignature> {
        charge(CpuWork::ops(CostKind::Ed25519Verify, 1));
        match self {
            Verifier::Real(key) => key.verify(message, signature),
            Verifier::SimFast(key) => key.verify(message, signature),
        }
    }

    /// Check one message of a signed batch, alone. Charges one `MerkleLeaf` and one
    /// `Ed25519Verify`.
    pub fn verify_in_batch(
        &self,
        message: &[u8],
        proof: &BatchProof,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), MerkleError> {
        charge(CpuWork::ops(CostKind::MerkleLeaf, 1));
        let digest = proof.signed_digest(message)?;
        self.verify(&digest.0, &proof.signature, charge)
            .map_err(|_| MerkleError::InvalidSignature)
    }

    /// Check many signatures at once, reporting the bad positions (see [`ed25519::verify_batch`]).
    /// Charges one `Ed25519BatchVerifyItem` per item, plus one `Ed25519Verify` per item when the
    /// batch fails (each is then checked singly, as the real batch check does).
    pub fn verify_batch(
        items: &[SchemeBatchItem<'_>],
        rng: &mut dyn RngCore,
        charge: &mut impl FnMut(CpuWork),
    ) -> Result<(), BatchVerifyError> {
        if items.len() > BATCH_ITEMS_MAX {
            return Err(BatchVerifyError::TooMany {
                len: items.len(),
                max: BATCH_ITEMS_MAX,
            });
        }
        charge(CpuWork::ops(
            CostKind::Ed25519BatchVerifyItem,
            items.len() as u32,
        ));
        let real: Vec<(usize, BatchItem<'_>)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.verifier {
                Verifier::Real(key) => Some((
                    i,
                    BatchItem {
                        key,
                        message: item.message,
                        signature: item.signature,
                    },
                )),
                Verifier::SimFast(_) => None,
            })
            .collect();
        let batch: Vec<BatchItem<'_>> = real.iter().map(|(_, item)| *item).collect();
        let mut invalid: Vec<usize> = match ed25519::verify_batch(&batch, rng) {
            Ok(()) => Vec::new(),
            Err(BatchVerifyError::Invalid { invalid }) => {
                invalid.iter().map(|&j| real[j].0).collect()
            }
            Err(too_many) => return Err(too_many),
        };
        invalid.extend(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item.verifier {
                    Verifier::SimFast(key) => {
                        key.verify(item.message, item.signature).err().map(|_| i)
                    }
                    Verifier::Real(_) => None,
                }),
        );
        if invalid.is_empty() {
            return Ok(());
        }
        invalid.sort_unstable();
        charge(CpuWork::ops(CostKind::Ed25519Verify, items.len() as u32));
        Err(BatchVerifyError::Invalid { invalid })
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verifier::Real(key) => write!(f, "Verifier::Real({key:?})"),
            Verifier::SimFast(key) => write!(f, "Verifier::SimFast(node {})", key.node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SimulationKeys;
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn both_modes() -> [SimulationKeys; 2] {
        [
            SimulationKeys::new(CryptoMode::Real, 11),
            SimulationKeys::new(CryptoMode::SimFast, 11),
        ]
    }

    #[test]
    fn sign_and_verify_charge_the_real_costs_in_both_modes() {
        for keys in both_modes() {
            let mut charged = Vec::new();
            let signer = keys.signer(1);
            let sig = signer.sign(b"m", &mut |w| charged.push(w));
            assert_eq!(sig.0.len(), 64);
            assert_eq!(
                keys.verifier(1)
                    .verify(b"m", &sig, &mut |w| charged.push(w)),
                Ok(())
            );
            assert_eq!(
                signer
                    .verifier()
                    .verify(b"m", &sig, &mut |w| charged.push(w)),
                Ok(())
            );
            assert_eq!(
                charged,
                vec![
                    CpuWork::ops(CostKind::Ed25519Sign, 1),
                    CpuWork::ops(CostKind::Ed25519Verify, 1),
                    CpuWork::ops(CostKind::Ed25519Verify, 1)
                ],
                "mode {}",
                keys.mode()
            );
        }
    }

    #[test]
    fn forged_and_altered_tags_are_rejected_in_both_modes() {
        for keys in both_modes() {
            let mut ignore = |_| {};
            let sig = keys.signer(1).sign(b"m", &mut ignore);
            let (v1, v2) = (keys.verifier(1), keys.verifier(2));
            // A node signing with its own key cannot pass as another.
            let forged = keys.signer(2).sign(b"m", &mut ignore);
            assert_eq!(
                v1.verify(b"m", &forged, &mut ignore),
                Err(InvalidSignature),
                "{}",
                keys.mode()
            );
            assert_eq!(v2.verify(b"m", &sig, &mut ignore), Err(InvalidSignature));
            assert_eq!(
                v1.verify(b"other", &sig, &mut ignore),
                Err(InvalidSignature)
            );
            let mut altered = sig;
            altered.0[0] ^= 1;
            assert_eq!(
                v1.verify(b"m", &altered, &mut ignore),
                Err(InvalidSignature)
            );
            let mut padding = sig;
            padding.0[63] ^= 1;
            assert_eq!(
                v1.verify(b"m", &padding, &mut ignore),
                Err(InvalidSignature)
            );
            assert_eq!(
                v1.verify(b"m", &Signature([0; 64]), &mut ignore),
                Err(InvalidSignature)
            );
        }
    }

    #[test]
    fn stand_in_is_reproducible_per_seed_and_marked() {
        let mut ignore = |_| {};
        let a = SimulationKeys::new(CryptoMode::SimFast, 5)
            .signer(3)
            .sign(b"m", &mut ignore);
        let b = SimulationKeys::new(CryptoMode::SimFast, 5)
            .signer(3)
            .sign(b"m", &mut ignore);
        let c = SimulationKeys::new(CryptoMode::SimFast, 6)
            .signer(3)
            .sign(b"m", &mut ignore);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(&a.0[32..48], b"SIMFAST-STANDIN!");
        let other_run = SimulationKeys::new(CryptoMode::SimFast, 6).verifier(3);
        assert_eq!(
            other_run.verify(b"m", &a, &mut ignore),
            Err(InvalidSignature)
        );
    }

    #[test]
    fn batches_sign_once_and_verify_per_message() {
        for keys in both_modes() {
            let messages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
            let mut charged = Vec::new();
            let proofs = keys
                .signer(4)
                .sign_batch(&messages, &mut |w| charged.push(w))
                .expect("signs");
            assert_eq!(
                charged,
                vec![
                    CpuWork::ops(CostKind::Ed25519Sign, 1),
                    CpuWork::ops(CostKind::MerkleLeaf, 5)
                ]
            );
            let verifier = keys.verifier(4);
            let mut ignore = |_| {};
            for (m, p) in messages.iter().zip(&proofs) {
                assert_eq!(verifier.verify_in_batch(m, p, &mut ignore), Ok(()));
            }
            assert_eq!(
                verifier.verify_in_batch(&messages[0], &proofs[1], &mut ignore),
                Err(MerkleError::InvalidSignature)
            );
            assert_eq!(
                keys.verifier(5)
                    .verify_in_batch(&messages[0], &proofs[0], &mut ignore),
                Err(MerkleError::InvalidSignature)
            );
        }
    }

    #[test]
    fn batch_verification_names_bad_items_in_both_modes() {
        for keys in both_modes() {
            let mut ignore = |_| {};
            let verifiers: Vec<Verifier> = (0..6).map(|n| keys.verifier(n)).collect();
            let messages: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i]).collect();
            let mut sigs: Vec<Signature> = (0..6)
                .map(|n| keys.signer(n).sign(&messages[n as usize], &mut ignore))
                .collect();
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let items = |sigs: &[Signature]| -> Vec<(usize, Signature)> {
                sigs.iter().copied().enumerate().collect()
            };
            let check = |sigs: &[Signature], rng: &mut ChaCha8Rng, charged: &mut Vec<CpuWork>| {
                let owned = items(sigs);
                let batch: Vec<SchemeBatchItem<'_>> = owned
                    .iter()
                    .map(|(i, s)| SchemeBatchItem {
                        verifier: &verifiers[*i],
                        message: &messages[*i],
                        signature: s,
                    })
                    .collect();
                Verifier::verify_batch(&batch, rng, &mut |w| charged.push(w))
            };
            let mut charged = Vec::new();
            assert_eq!(check(&sigs, &mut rng, &mut charged), Ok(()));
            assert_eq!(
                charged,
                vec![CpuWork::ops(CostKind::Ed25519BatchVerifyItem, 6)]
            );
            sigs[2] = sigs[3];
            sigs[5].0[1] ^= 4;
            assert_eq!(
                check(&sigs, &mut rng, &mut Vec::new()),
                Err(BatchVerifyError::Invalid {
                    invalid: vec![2, 5]
                }),
                "{}",
                keys.mode()
            );
        }
    }

    #[test]
    fn modes_and_descriptions() {
        assert_eq!(CryptoMode::SimFast.to_string(), "sim-fast");
        assert!(CryptoMode::SimFast.describe().contains("stand-in"));
        let keys = SimulationKeys::new(CryptoMode::SimFast, 1);
        assert_eq!(keys.signer(0).mode(), CryptoMode::SimFast);
        assert_eq!(keys.verifier(0).mode(), CryptoMode::SimFast);
        assert_eq!(format!("{:?}", keys.signer(7)), "Signer::SimFast(node 7)");
    }
}
