//! The simulation's key registry: where every node's keys come from in a simulated run, in either
//! mode, and the holder of the stand-in's secret.

use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;

use super::multisig::{Membership, MultiSigner, SimFastMembership, SimFastMultiSigner};
use super::signature::{Signer, SimFastSigner, SimFastVerifier, Verifier};
use super::threshold::{
    SimFastShareSigner, SimFastThresholdGroup, ThresholdSigner, ThresholdVerifier,
};
use super::CryptoMode;
use crate::bls::BlsSecretKey;
use crate::ed25519::SigningKey;
use crate::hash::hash_parts;
use crate::mac::MacKey;
use crate::threshold::{deal, ThresholdError, ThresholdParameters};

/// Fills a stand-in tag past its 32 MAC bytes, so tags have the real scheme's size and are easy to
/// recognise in a dump.
const STAND_IN_MARKER: &[u8; 16] = b"SIMFAST-STANDIN!";

/// Which stand-in scheme a key belongs to (keys of different schemes are independent).
#[derive(Clone, Copy)]
pub(crate) enum StandInScheme {
    Ed25519,
    BlsMulti,
    ThresholdShare { group: u32 },
    ThresholdGroup { group: u32 },
}

/// The stand-in's secret for one simulated run. Hand out signers and verifiers through
/// [`SimulationKeys`]; nothing reads the secret back out.
pub struct SimFastKeyRegistry {
    master: MacKey,
}

impl SimFastKeyRegistry {
    /// The registry of the run seeded by `run_seed`.
    pub fn new(run_seed: u64) -> Arc<SimFastKeyRegistry> {
        let master = hash_parts(b"stockade/simfast/master", &[&run_seed.to_le_bytes()]);
        Arc::new(SimFastKeyRegistry {
            master: MacKey::from_bytes(master.0),
        })
    }

    /// The secret key of `owner` in `scheme`.
    pub(crate) fn key(&self, scheme: StandInScheme, owner: u32) -> MacKey {
        let (label, group): (&[u8], u32) = match scheme {
            StandInScheme::Ed25519 => (b"ed25519", 0),
            StandInScheme::BlsMulti => (b"bls-multi", 0),
            StandInScheme::ThresholdShare { group } => (b"threshold-share", group),
            StandInScheme::ThresholdGroup { group } => (b"threshold-group", group),
        };
        // Ordered fields (not a pairwise key, which is symmetric): group 3's share 5 and group
        // 5's share 3 must get different keys.
        let derived = self.master.tag_parts(&[
            b"stockade/simfast/key",
            &(label.len() as u64).to_le_bytes(),
            label,
            &group.to_le_bytes(),
            &owner.to_le_bytes(),
        ]);
        MacKey::from_bytes(derived.0)
    }
}

/// The MAC part of a stand-in tag.
pub(crate) fn stand_in_mac(key: &MacKey, message: &[u8]) -> [u8; 32] {
    key.tag_parts(&[b"stockade/simfast/tag", message]).0
}

/// A full stand-in tag of `N` bytes: the MAC, then the marker repeated.
pub(crate) fn pad_stand_in<const N: usize>(mac: [u8; 32]) -> [u8; N] {
    let mut tag = [0u8; N];
    tag[..32].copy_from_slice(&mac);
    for (i, byte) in tag[32..].iter_mut().enumerate() {
        *byte = STAND_IN_MARKER[i % STAND_IN_MARKER.len()];
    }
    tag
}

/// Constant-time comparison of a received tag with the expected one.
pub(crate) fn tags_match(expected: &[u8], received: &[u8]) -> bool {
    bool::from(expected.ct_eq(received))
}

/// Every key of one simulated run, in the run's [`CryptoMode`]: the simulation builds one and
/// hands each node its own signers and everyone's verifiers. Same seed, same keys.
#[derive(Clone)]
pub struct SimulationKeys {
    mode: CryptoMode,
    run_seed: u64,
    registry: Arc<SimFastKeyRegistry>,
}

impl SimulationKeys {
    /// Keys of the run seeded by `run_seed` in `mode`.
    pub fn new(mode: CryptoMode, run_seed: u64) -> SimulationKeys {
        SimulationKeys {
            mode,
            run_seed,
            registry: SimFastKeyRegistry::new(run_seed),
        }
    }

    /// The run's mode (print it in the report).
    pub fn mode(&self) -> CryptoMode {
        self.mode
    }

    /// Node `node`'s Ed25519 signer (give it to that node only).
    pub fn signer(&self, node: u32) -> Signer {
        match self.mode {
            CryptoMode::Real => Signer::Real(SigningKey::for_simulation(self.run_seed, node)),
            CryptoMode::SimFast => Signer::SimFast(SimFastSigner::new(&self.registry, node)),
        }
    }

    /// The verifier of node `node`'s Ed25519 signatures (for everyone).
    pub fn verifier(&self, node: u32) -> Verifier {
        match self.mode {
            CryptoMode::Real => {
                Verifier::Real(SigningKey::for_simulation(self.run_seed, node).verifying_key())
            }
            CryptoMode::SimFast => Verifier::SimFast(SimFastVerifier::new(&self.registry, node)),
        }
    }

    /// Node `node`'s BLS multi-signature signer.
    pub fn multi_signer(&self, node: u32) -> MultiSigner {
        match self.mode {
            CryptoMode::Real => {
                MultiSigner::Real(BlsSecretKey::for_simulation(self.run_seed, node))
            }
            CryptoMode::SimFast => {
                MultiSigner::SimFast(SimFastMultiSigner::new(&self.registry, node))
            }
        }
    }

    /// The ordered membership `nodes` for verifying multi-signatures; bitmap position `i` is
    /// `nodes[i]`. The registry holds every secret, so keys need no proof of possession here;
    /// protocols that learn keys from the network check proofs with
    /// [`crate::bls::BlsPublicKey::verify_possession`].
    pub fn membership(&self, nodes: &[u32]) -> Membership {
        match self.mode {
            CryptoMode::Real => Membership::Real(
                nodes
                    .iter()
                    .map(|&node| {
                        BlsSecretKey::for_simulation(self.run_seed, node).verified_public_key()
                    })
                    .collect(),
            ),
            CryptoMode::SimFast => {
                Membership::SimFast(SimFastMembership::new(&self.registry, nodes))
            }
        }
    }

    /// Deal the threshold key of group (site) `group`: its verifier and one signer per
    /// participant (`signers[i]` is participant `i + 1`).
    pub fn threshold_group(
        &self,
        group: u32,
        parameters: ThresholdParameters,
    ) -> Result<(ThresholdVerifier, Vec<ThresholdSigner>), ThresholdError> {
        match self.mode {
            CryptoMode::Real => {
                let seed = hash_parts(
                    b"stockade/threshold/simulation-dealer",
                    &[&self.run_seed.to_le_bytes(), &group.to_le_bytes()],
                );
                let dealt = deal(parameters, &mut ChaCha20Rng::from_seed(seed.0))?;
                let signers = dealt
                    .secret_shares
                    .into_iter()
                    .map(ThresholdSigner::Real)
                    .collect();
                Ok((ThresholdVerifier::Real(dealt.public), signers))
            }
            CryptoMode::SimFast => {
                let group_keys = SimFastThresholdGroup::new(&self.registry, group, parameters);
                let signers = (1..=parameters.participants() as u16)
                    .map(|i| {
                        ThresholdSigner::SimFast(SimFastShareSigner::new(&self.registry, group, i))
                    })
                    .collect();
                Ok((ThresholdVerifier::SimFast(group_keys), signers))
            }
        }
    }
}

impl std::fmt::Debug for SimulationKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimulationKeys({}, seed {})", self.mode, self.run_seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_keys_are_distinct_across_schemes_groups_and_owners() {
        let registry = SimFastKeyRegistry::new(1);
        let keys = [
            registry.key(StandInScheme::ThresholdShare { group: 3 }, 5),
            registry.key(StandInScheme::ThresholdShare { group: 5 }, 3),
            registry.key(StandInScheme::ThresholdGroup { group: 3 }, 5),
            registry.key(StandInScheme::Ed25519, 5),
            registry.key(StandInScheme::BlsMulti, 5),
            registry.key(StandInScheme::Ed25519, 3),
            SimFastKeyRegistry::new(2).key(StandInScheme::Ed25519, 5),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
