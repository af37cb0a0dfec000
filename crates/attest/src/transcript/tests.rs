//! Transcripts: valid ones verify, and each way of breaking one is caught with its own error.

use stockade_core::DecodeLimits;

use super::*;
use crate::attestation::{Attestation, GROUP_ID_BYTES};
use crate::keys::test_only::TestOnlySharedSecretKeys;
use crate::test_graphs::{n, path, set};

const GROUP: GroupId = GroupId([5; GROUP_ID_BYTES]);
const NOW: Time = Time::from_secs(5);

fn keys(count: u32) -> Vec<TestOnlySharedSecretKeys> {
    TestOnlySharedSecretKeys::for_nodes((0..count).map(n))
}

fn attest(keys: &[TestOnlySharedSecretKeys], from: u32, to: u32) -> SignedAttestation {
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
fn ring_attestations(keys: &[TestOnlySharedSecretKeys]) -> Vec<SignedAttestation> {
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

fn signed_by(
    k: &[TestOnlySharedSecretKeys],
    st: &ViewStatement,
    who: &[u32],
) -> Vec<(NodeId, ViewSignature)> {
    let message = st.signing_bytes();
    who.iter()
        .map(|&i| (n(i), ViewMultiSignature::sign(&k[i as usize], &message)))
        .collect()
}

#[test]
fn compact_transcript_verifies_with_one_aggregate() {
    let k = keys(6);
    let directory = MemberDirectory::new((0..6).map(n)).expect("small");
    let st = statement(&[0, 1, 2, 3]);
    // Node 5 is outside the view: its signature is left out of the aggregate.
    let sigs = signed_by(&k, &st, &[0, 1, 3, 5]);
    let t = CompactTranscript::build(&st, &sigs, &directory, &k[0]).expect("aggregates");
    assert_eq!(t.signers, NodeBitmap(vec![0b0000_1011]));
    assert_eq!(t.members, NodeBitmap(vec![0b0000_1111]));
    assert_eq!(t.verify(n(2), 3, &directory, &k[4]), Ok(st.clone()));
    let bytes = t.to_bytes();
    assert_eq!(
        CompactTranscript::from_bytes(&bytes, DecodeLimits::MESSAGE),
        Ok(t)
    );
}

#[test]
fn compact_transcript_rejects_each_kind_of_defect() {
    let k = keys(6);
    let directory = MemberDirectory::new((0..6).map(n)).expect("small");
    let st = statement(&[0, 1, 2, 3]);
    let t = CompactTranscript::build(&st, &signed_by(&k, &st, &[0, 1, 3]), &directory, &k[0])
        .expect("aggregates");
    assert_eq!(
        t.verify(n(4), 1, &directory, &k[4]),
        Err(TranscriptError::NotAMember(n(4)))
    );
    assert_eq!(
        t.verify(n(2), 4, &directory, &k[4]),
        Err(TranscriptError::TooFewSigners {
            signers: 3,
            required: 4
        })
    );
    let mut claims_more = t.clone();
    claims_more.signers = NodeBitmap(vec![0b0000_1111]);
    assert_eq!(
        claims_more.verify(n(2), 1, &directory, &k[4]),
        Err(TranscriptError::BadAggregate(4))
    );
    let mut other_epoch = t.clone();
    other_epoch.epoch = 8;
    assert_eq!(
        other_epoch.verify(n(2), 1, &directory, &k[4]),
        Err(TranscriptError::BadAggregate(3))
    );
    let mut outsider = t.clone();
    outsider.signers = NodeBitmap(vec![0b0001_1011]);
    assert_eq!(
        outsider.verify(n(2), 1, &directory, &k[4]),
        Err(TranscriptError::BadBitmap { directory_nodes: 6 }),
        "a signer outside the view"
    );
    let small = MemberDirectory::new((0..3).map(n)).expect("small");
    assert!(matches!(
        t.verify(n(2), 1, &small, &k[4]),
        Err(TranscriptError::BadBitmap { .. })
    ));
    let beyond = MemberDirectory::new((0..5).map(n)).expect("small");
    let mut past_end = t.clone();
    past_end.members = NodeBitmap(vec![0b1000_1111]);
    assert!(matches!(
        past_end.verify(n(2), 1, &beyond, &k[4]),
        Err(TranscriptError::BadBitmap { .. })
    ));
    assert_eq!(
        CompactTranscript::build(&st, &[], &directory, &k[0]),
        Err(TranscriptError::Aggregation("no signatures".to_string()))
    );
}

#[test]
fn compact_transcript_of_64_members_is_under_200_bytes() {
    let k = keys(64);
    let directory = MemberDirectory::new((0..64).map(n)).expect("small");
    let members: Vec<u32> = (0..64).collect();
    let st = statement(&members);
    let t = CompactTranscript::build(&st, &signed_by(&k, &st, &members), &directory, &k[0])
        .expect("aggregates");
    // 20 (group) + 8 (epoch) + 2 x (1 + 8) (bitmaps) + 96 (signature).
    assert_eq!(t.to_bytes().len(), 142);
    assert!(t.verify(n(63), 64, &directory, &k[0]).is_ok());
    let naive = AttestationListTranscript {
        attestations: (0..64).map(|i| attest(&k, i, (i + 1) % 64)).collect(),
    };
    assert!(
        naive.to_bytes().len() > 64 * 100,
        "the naive form pays one signature per attestation"
    );
}

#[test]
fn directory_bound_is_enforced() {
    assert!(MemberDirectory::new((0..DIRECTORY_NODES_MAX as u32).map(n)).is_some());
    assert!(MemberDirectory::new((0..DIRECTORY_NODES_MAX as u32 + 1).map(n)).is_none());
    let huge = NodeBitmap(vec![0; DIRECTORY_NODES_MAX / 8 + 1]).to_bytes();
    assert!(matches!(
        NodeBitmap::from_bytes(&huge, DecodeLimits::MESSAGE),
        Err(DecodeError::TooLong {
            what: "node bitmap",
            ..
        })
    ));
}
