//! A member's keys: its own secrets from the files `stockade keygen` wrote, and its peers' public
//! keys from the configuration's `[[peer]]` entries, each BLS key checked against its proof of
//! possession before it may be aggregated (paper 000, section "Compact signature
//! representation": the verifier aggregates members' view signatures).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use stockade_attest::keys::SchemeKeys;
use stockade_attest::transcript::MemberDirectory;
use stockade_core::wire::{DecodeLimits, Wire};
use stockade_core::NodeId;
use stockade_crypto::bls::{BlsPublicKey, ProofOfPossession, VerifiedPublicKey};
use stockade_crypto::ed25519::VerifyingKey;
use stockade_crypto::scheme::{Membership, MultiSigner, Signer, Verifier};

use super::config::PeerEntry;
use crate::keygen::{load_bls, load_ed25519, BLS_KEY_FILE, ED25519_KEY_FILE, NOISE_KEY_FILE};

/// Everything a member signs and verifies with.
pub struct MemberKeys {
    /// Ed25519: this member's attestation key and every peer's verifying key.
    pub attestation_keys: SchemeKeys,
    /// This member's BLS key, for signing view statements.
    pub view_signer: MultiSigner,
    /// Every member's BLS key (possession proven), for aggregating and checking transcripts.
    pub directory: MemberDirectory,
}

impl MemberKeys {
    /// Load member `me`'s secrets from `keys_dir` and its `peers`' public keys.
    pub fn load(keys_dir: &Path, me: NodeId, peers: &[PeerEntry]) -> anyhow::Result<MemberKeys> {
        let hint = || {
            format!(
                "this member's keys are missing from {}; write them with `stockade keygen --dir {}`",
                keys_dir.display(),
                keys_dir.display()
            )
        };
        for file in [NOISE_KEY_FILE, ED25519_KEY_FILE, BLS_KEY_FILE] {
            if !keys_dir.join(file).exists() {
                bail!(
                    "{} does not exist: {}",
                    keys_dir.join(file).display(),
                    hint()
                );
            }
        }
        let ed25519 = load_ed25519(&keys_dir.join(ED25519_KEY_FILE))?;
        let bls = load_bls(&keys_dir.join(BLS_KEY_FILE))?;

        let mut verifiers = BTreeMap::from([(me, Verifier::Real(ed25519.verifying_key()))]);
        let mut bls_keys: BTreeMap<NodeId, VerifiedPublicKey> =
            BTreeMap::from([(me, bls.verified_public_key())]);
        for peer in peers {
            let id = NodeId(peer.id);
            let (verifier, bls_key) =
                peer_keys(peer).with_context(|| format!("[[peer]] id = {}", peer.id))?;
            verifiers.insert(id, Verifier::Real(verifier));
            bls_keys.insert(id, bls_key);
        }
        let directory = MemberDirectory::new(
            bls_keys.keys().copied(),
            Membership::Real(bls_keys.values().copied().collect()),
        )
        .context("building the members' BLS key directory")?;
        Ok(MemberKeys {
            attestation_keys: SchemeKeys::new(Signer::Real(ed25519), verifiers),
            view_signer: MultiSigner::Real(bls),
            directory,
        })
    }
}

/// A peer's Ed25519 verifying key and its BLS key with the proof of possession checked.
fn peer_keys(peer: &PeerEntry) -> anyhow::Result<(VerifyingKey, VerifiedPublicKey)> {
    let copy_hint = "copy it from that member's public.toml";
    let ed25519 = VerifyingKey::from_hex(&peer.ed25519)
        .map_err(|e| anyhow::anyhow!("ed25519: {e}; {copy_hint}"))?;
    let bls =
        BlsPublicKey::from_hex(&peer.bls).map_err(|e| anyhow::anyhow!("bls: {e}; {copy_hint}"))?;
    let pop_bytes = hex::decode(peer.bls_pop.trim())
        .map_err(|e| anyhow::anyhow!("bls_pop is not hex ({e}); {copy_hint}"))?;
    let pop = ProofOfPossession::from_bytes(&pop_bytes, DecodeLimits::default())
        .map_err(|e| anyhow::anyhow!("bls_pop: {e}; {copy_hint}"))?;
    let verified = bls.verify_possession(&pop).map_err(|e| {
        anyhow::anyhow!("bls_pop does not prove possession of bls ({e}): the two must come from the same public.toml")
    })?;
    Ok((ed25519, verified))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use stockade_attest::keys::NodeKeys;

    use super::*;
    use crate::keygen::{write_node_keys, PublicKeys};

    fn entry(id: u32, public: &PublicKeys) -> PeerEntry {
        PeerEntry {
            id,
            addr: "127.0.0.1:1".parse().expect("address"),
            noise: public.noise.clone(),
            ed25519: public.ed25519.clone(),
            bls: public.bls.clone(),
            bls_pop: public.bls_pop.clone(),
        }
    }

    #[test]
    fn keygen_files_load_and_peers_verify_each_others_signatures() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
        let a_public = write_node_keys(&a_dir, false).expect("keygen a");
        let b_public = write_node_keys(&b_dir, false).expect("keygen b");
        let a = MemberKeys::load(&a_dir, NodeId(0), &[entry(1, &b_public)]).expect("a loads");
        let b = MemberKeys::load(&b_dir, NodeId(1), &[entry(0, &a_public)]).expect("b loads");
        let signature = a.attestation_keys.sign(b"attestation");
        assert!(b
            .attestation_keys
            .verify(NodeId(0), b"attestation", &signature));
        assert!(!b
            .attestation_keys
            .verify(NodeId(1), b"attestation", &signature));
        assert_eq!(b.directory.len(), 2);
        assert_eq!(b.directory.position(NodeId(1)), Some(1));
    }

    #[test]
    fn missing_files_bad_keys_and_a_foreign_proof_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a_dir, b_dir, c_dir) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        write_node_keys(&a_dir, false).expect("keygen a");
        let b = write_node_keys(&b_dir, false).expect("keygen b");
        let c = write_node_keys(&c_dir, false).expect("keygen c");
        let error = |keys_dir: &Path, peer: PeerEntry| {
            let result = MemberKeys::load(keys_dir, NodeId(0), &[peer]);
            format!("{:#}", result.err().expect("refused"))
        };

        let missing = error(&dir.path().join("nowhere"), entry(1, &b));
        assert!(missing.contains("stockade keygen --dir"), "{missing}");

        let foreign_pop = PeerEntry {
            bls_pop: c.bls_pop.clone(),
            ..entry(1, &b)
        };
        let e = error(&a_dir, foreign_pop);
        assert!(
            e.contains("[[peer]] id = 1") && e.contains("does not prove possession"),
            "{e}"
        );
        let bad_ed = PeerEntry {
            ed25519: "zz".into(),
            ..entry(1, &b)
        };
        assert!(error(&a_dir, bad_ed).contains("ed25519"));
        let short_pop = PeerEntry {
            bls_pop: "abcd".into(),
            ..entry(1, &b)
        };
        assert!(error(&a_dir, short_pop).contains("bls_pop"));

        let secret = a_dir.join(BLS_KEY_FILE);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = error(&a_dir, entry(1, &b));
        assert!(e.contains("chmod 600"), "{e}");
    }
}
