//! Transcripts: valid ones verify, and each way of breaking one is caught with its own error.

use stockade_core::DecodeLimits;

use super::*;
use crate::attestation::{Attestation, GROUP_ID_BYTES};
use crate::keys::test_only::{node_keys, simulation_keys};
use crate::keys::SchemeKeys;
use crate::test_graphs::{n, path, set};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;

const GROUP: GroupId = GroupId([5; GROUP_ID_BYTES]);
const NOW: Time = Time::from_secs(5);

fn keys(count: u32) -> Vec<SchemeKeys> {
    node_keys(count)
}

fn attest(keys: &[SchemeKeys], from: u32, to: u32) -> SignedAttestation {
    Attestation {
        group: GROUP,
        attester: n(from),
        attestee: n(to),
        info: vec![],
        issued: Time::ZERO,
        expires: Time::from_secs(30),
    }
    .sign(&keys[from as usize])
}

/// 0 -> 1 -> 2 -> 3, plus 3 -> 0.
fn ring_attestations(keys: &[SchemeKeys]) -> Vec<SignedAttestation> {
    vec![
        attest(keys, 0, 1),
        attest(keys, 1, 2),
        attest(keys, 2, 3),
        attest(keys, 3, 0),
    ]
}

#[test]
fn path_transcript_verifies_and_roundtrips() {
    let k = keys(4);
    let t = PathTranscript::for_path(&ring_attestations(&k), &path(&[0, 1, 2]))
        .expect("every hop held");
    assert_eq!(t.verify(GROUP, n(0), n(2), NOW, &k[3]), Ok(()));
    assert_eq!(
        PathTranscript::from_bytes(&t.to_bytes(), DecodeLimits::MESSAGE),
        Ok(t)
    );
    assert_eq!(
        PathTranscript::for_path(&ring_attestations(&k), &path(&[0, 2])),
        None,
        "no 0 -> 2 attestation"
    );
}

#[test]
fn path_transcript_rejects_each_kind_of_defect() {
    let k = keys(4);
    let good = PathTranscript::for_path(&ring_attestations(&k), &path(&[0, 1, 2])).expect("held");
    let not_a_path = |a, s| {
        Err(TranscriptError::NotAPath {
            anchor: n(a),
            subject: n(s),
        })
    };
    assert_eq!(
        good.verify(GROUP, n(1), n(2), NOW, &k[3]),
        not_a_path(1, 2),
        "wrong anchor"
    );
    assert_eq!(
        good.verify(GROUP, n(0), n(3), NOW, &k[3]),
        not_a_path(0, 3),
        "wrong subject"
    );
    let looping =
        PathTranscript::for_path(&ring_attestations(&k), &path(&[0, 1, 2, 3, 0])).expect("held");
    assert_eq!(
        looping.verify(GROUP, n(0), n(0), NOW, &k[3]),
        not_a_path(0, 0),
        "revisits the anchor"
    );
    let mut forged = good.clone();
    forged.attestations[1].attestation.info = b"x".to_vec();
    assert_eq!(
        forged.verify(GROUP, n(0), n(2), NOW, &k[3]),
        Err(TranscriptError::BadSignature {
            attester: n(1),
            attestee: n(2)
        })
    );
    assert_eq!(
        good.verify(GROUP, n(0), n(2), Time::from_secs(30), &k[3]),
        Err(TranscriptError::Expired {
            attester: n(0),
            attestee: n(1)
        })
    );
    let other = GroupId([6; GROUP_ID_BYTES]);
    assert_eq!(
        good.verify(other, n(0), n(2), NOW, &k[3]),
        Err(TranscriptError::WrongGroup {
            expected: other,
            found: GROUP
        })
    );
    let empty = PathTranscript {
        attestations: vec![],
    };
    assert_eq!(
        empty.verify(GROUP, n(0), n(2), NOW, &k[3]),
        Err(TranscriptError::Empty)
    );
}

#[test]
fn attestation_list_proves_the_anchors_view() {
    let k = keys(5);
    let t = AttestationListTranscript {
        attestations: ring_attestations(&k),
    };
    assert_eq!(
        t.verify(GROUP, n(1), n(0), NOW, &k[4]),
        Ok(set(&[0, 1, 2, 3]))
    );
    assert_eq!(
        t.verify(GROUP, n(1), n(4), NOW, &k[4]),
        Err(TranscriptError::NotAMember(n(4)))
    );
    let mut bad = t.clone();
    bad.attestations[3].signature.0[0] ^= 1;
    assert!(matches!(
        bad.verify(GROUP, n(1), n(0), NOW, &k[4]),
        Err(TranscriptError::BadSignature { .. })
    ));
}

fn statement(members: &[u32]) -> ViewStatement {
    ViewStatement {
        group: GROUP,
        epoch: 7,
        members: set(members),
    }
}

fn directory(keys: &SimulationKeys, count: u32) -> MemberDirectory {
    let ids: Vec<u32> = (0..count).collect();
    MemberDirectory::new(ids.iter().map(|&i| n(i)), keys.membership(&ids)).expect("small directory")
}

fn signed_by(
    keys: &SimulationKeys,
    st: &ViewStatement,
    who: &[u32],
) -> Vec<(NodeId, BlsSignature)> {
    let message = st.signing_bytes();
    who.iter()
        .map(|&i| (n(i), keys.multi_signer(i).sign(&message, &mut |_| {})))
        .collect()
}

fn no_charge() -> impl FnMut(CpuWork) {
    |_| {}
}

#[test]
fn compact_transcript_verifies_with_one_real_bls_aggregate() {
    let keys = simulation_keys(CryptoMode::Real);
    let dir = directory(&keys, 6);
    let st = statement(&[0, 1, 2, 3]);
    // Node 5 is outside the view: its signature is left out of the aggregate.
    let sigs = signed_by(&keys, &st, &[0, 1, 3, 5]);
    let mut charged = Vec::new();
    let t =
        CompactTranscript::build(&st, &sigs, &dir, &mut |w| charged.push(w)).expect("aggregates");
    assert_eq!(dir.nodes_of(&t.multi.signers), Some(set(&[0, 1, 3])));
    assert_eq!(dir.nodes_of(&t.members), Some(set(&[0, 1, 2, 3])));
    assert_eq!(
        charged,
        vec![CpuWork::ops(
            stockade_core::CostKind::BlsAggregateSignature,
            3
        )]
    );
    assert_eq!(t.verify(n(2), 3, &dir, &mut no_charge()), Ok(st.clone()));
    let bytes = t.to_bytes();
    assert_eq!(
        CompactTranscript::from_bytes(&bytes, DecodeLimits::MESSAGE),
        Ok(t)
    );
}

#[test]
fn compact_transcript_rejects_each_kind_of_defect() {
    let keys = simulation_keys(CryptoMode::SimFast);
    let dir = directory(&keys, 6);
    let st = statement(&[0, 1, 2, 3]);
    let t = CompactTranscript::build(
        &st,
        &signed_by(&keys, &st, &[0, 1, 3]),
        &dir,
        &mut no_charge(),
    )
    .expect("aggregates");
    assert_eq!(
        t.verify(n(4), 1, &dir, &mut no_charge()),
        Err(TranscriptError::NotAMember(n(4)))
    );
    assert_eq!(
        t.verify(n(2), 4, &dir, &mut no_charge()),
        Err(TranscriptError::TooFewSigners {
            signers: 3,
            required: 4
        })
    );
    let mut claims_more = t.clone();
    claims_more.multi.signers.insert(2);
    assert_eq!(
        claims_more.verify(n(2), 1, &dir, &mut no_charge()),
        Err(TranscriptError::BadAggregate(4))
    );
    let mut other_epoch = t.clone();
    other_epoch.epoch = 8;
    assert_eq!(
        other_epoch.verify(n(2), 1, &dir, &mut no_charge()),
        Err(TranscriptError::BadAggregate(3))
    );
    let mut outsider = t.clone();
    outsider.multi.signers.insert(4);
    assert_eq!(
        outsider.verify(n(2), 1, &dir, &mut no_charge()),
        Err(TranscriptError::BadBitmap { directory_nodes: 6 }),
        "a signer outside the view"
    );
    let small = directory(&keys, 3);
    assert!(matches!(
        t.verify(n(2), 1, &small, &mut no_charge()),
        Err(TranscriptError::BadBitmap { .. })
    ));
    assert!(matches!(
        CompactTranscript::build(&st, &[], &dir, &mut no_charge()),
        Err(TranscriptError::Aggregation(_))
    ));
}

#[test]
fn compact_transcript_of_64_members_is_under_200_bytes() {
    let keys = simulation_keys(CryptoMode::SimFast);
    let dir = directory(&keys, 64);
    let members: Vec<u32> = (0..64).collect();
    let st = statement(&members);
    let t = CompactTranscript::build(
        &st,
        &signed_by(&keys, &st, &members),
        &dir,
        &mut no_charge(),
    )
    .expect("aggregates");
    // 20 (group) + 8 (epoch) + 2 x (1 + 8) (bitmaps) + 96 (signature).
    assert_eq!(t.to_bytes().len(), 142);
    assert!(t.verify(n(63), 64, &dir, &mut no_charge()).is_ok());
    let k = node_keys(64);
    let naive = AttestationListTranscript {
        attestations: (0..64).map(|i| attest(&k, i, (i + 1) % 64)).collect(),
    };
    assert!(
        naive.to_bytes().len() > 64 * 100,
        "the naive form pays one signature per attestation"
    );
}

#[test]
fn directory_needs_one_key_per_node() {
    let keys = simulation_keys(CryptoMode::SimFast);
    assert_eq!(
        MemberDirectory::new((0..3).map(n), keys.membership(&[0, 1])).map(|d| d.len()),
        Err(TranscriptError::BadDirectory { nodes: 3, keys: 2 })
    );
    // Duplicates collapse, so the key count must match the distinct nodes.
    assert!(MemberDirectory::new([n(1), n(0), n(1)], keys.membership(&[0, 1])).is_ok());
}
