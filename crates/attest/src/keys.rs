//! The signing and MAC operations LA-groups need, behind one small trait.
//!
//! Paper 000, section "LA-groups abstraction": "LA-groups assume nodes use digital signatures to
//! authenticate communication", and symmetric MACs "to authenticate communication between
//! directly connected nodes" as a performance optimization. The protocol only calls [`NodeKeys`];
//! [`SchemeKeys`] implements it with `stockade-crypto` (Ed25519 and HMAC-SHA256 for real, or the
//! simulation's stand-in in `CryptoMode::SimFast` runs), so the protocol code does not change with
//! the key source (key files in the runtime, seeded keys in the simulator).

use std::collections::BTreeMap;
use std::fmt;

use stockade_core::NodeId;
use stockade_crypto::mac::MacKey;
use stockade_crypto::scheme::{Signer, SimulationKeys, Verifier};

pub use stockade_crypto::ed25519::{Signature, SIGNATURE_BYTES};
pub use stockade_crypto::mac::{MacTag, MAC_TAG_BYTES};

/// The keys one node holds: its own signing key, the verifying keys of the nodes it may hear
/// about, and the MAC keys it negotiated with direct neighbours. Implementations do not charge
/// CPU work: the protocol charges each operation itself.
pub trait NodeKeys: Send {
    /// Sign `message` with this node's key.
    fn sign(&self, message: &[u8]) -> Signature;
    /// Whether `signature` is `signer`'s signature over `message` (false for an unknown signer).
    fn verify(&self, signer: NodeId, message: &[u8], signature: &Signature) -> bool;
    /// A MAC over `message` for `peer`, or `None` when no key was negotiated with `peer`.
    fn mac(&self, peer: NodeId, message: &[u8]) -> Option<MacTag>;
    /// Whether `tag` is `peer`'s MAC over `message` (false when no key was negotiated).
    fn verify_mac(&self, peer: NodeId, message: &[u8], tag: &MacTag) -> bool;
}

/// [`NodeKeys`] over `stockade-crypto`'s signing schemes.
#[derive(Clone)]
pub struct SchemeKeys {
    signer: Signer,
    verifiers: BTreeMap<NodeId, Verifier>,
    mac_keys: BTreeMap<NodeId, MacKey>,
}

impl SchemeKeys {
    /// This node's `signer` and the `verifiers` of the nodes it may hear about.
    pub fn new(signer: Signer, verifiers: BTreeMap<NodeId, Verifier>) -> SchemeKeys {
        SchemeKeys {
            signer,
            verifiers,
            mac_keys: BTreeMap::new(),
        }
    }

    /// Node `me`'s keys in a simulated run, knowing the verifiers of `nodes`.
    pub fn for_simulation(
        keys: &SimulationKeys,
        me: NodeId,
        nodes: impl IntoIterator<Item = NodeId>,
    ) -> SchemeKeys {
        let verifiers = nodes.into_iter().map(|n| (n, keys.verifier(n.0))).collect();
        SchemeKeys::new(keys.signer(me.0), verifiers)
    }

    /// Use `key` to MAC announcements to and from `peer` (a key the two negotiated).
    pub fn with_mac_key(mut self, peer: NodeId, key: MacKey) -> SchemeKeys {
        self.mac_keys.insert(peer, key);
        self
    }
}

impl fmt::Debug for SchemeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemeKeys")
            .field("signer", &self.signer)
            .field("verifiers", &self.verifiers.len())
            .field("mac_peers", &self.mac_keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NodeKeys for SchemeKeys {
    fn sign(&self, message: &[u8]) -> Signature {
        self.signer.sign(message, &mut |_| {})
    }
    fn verify(&self, signer: NodeId, message: &[u8], signature: &Signature) -> bool {
        self.verifiers
            .get(&signer)
            .is_some_and(|v| v.verify(message, signature, &mut |_| {}).is_ok())
    }
    fn mac(&self, peer: NodeId, message: &[u8]) -> Option<MacTag> {
        self.mac_keys.get(&peer).map(|k| k.tag(message))
    }
    fn verify_mac(&self, peer: NodeId, message: &[u8], tag: &MacTag) -> bool {
        self.mac_keys
            .get(&peer)
            .is_some_and(|k| k.verify(message, tag).is_ok())
    }
}

/// Keys for unit tests: the simulation's stand-in crypto (fast, and unforgeable by code that was
/// not handed a signer), seeded so runs repeat.
#[cfg(test)]
pub mod test_only {
    use stockade_crypto::CryptoMode;

    use super::*;

    /// The seed of every unit test's keys.
    pub const TEST_RUN_SEED: u64 = 0xa77e57;

    /// The run's keys in `mode`.
    pub fn simulation_keys(mode: CryptoMode) -> SimulationKeys {
        SimulationKeys::new(mode, TEST_RUN_SEED)
    }

    /// Keys for nodes `0..count`, each knowing every verifier, no MAC keys.
    pub fn node_keys(count: u32) -> Vec<SchemeKeys> {
        let keys = simulation_keys(CryptoMode::SimFast);
        (0..count)
            .map(|i| SchemeKeys::for_simulation(&keys, NodeId(i), (0..count).map(NodeId)))
            .collect()
    }

    /// The MAC key nodes `a` and `b` negotiated in tests.
    pub fn pair_mac_key(a: NodeId, b: NodeId) -> MacKey {
        MacKey::from_bytes([0x5a; 32]).derive_pairwise(
            b"stockade-attest/test",
            a.0 as u64,
            b.0 as u64,
        )
    }
}
