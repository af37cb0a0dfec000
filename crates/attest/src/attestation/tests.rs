//! Acceptance rules for attestations: refresh, replay, forgery, expiry, bounds, wire decoding.

use super::*;
use crate::keys::test_only::node_keys;
use crate::keys::SchemeKeys;
use stockade_core::DecodeLimits;

const GROUP: GroupId = GroupId([7; GROUP_ID_BYTES]);
const VALIDITY_NS: u64 = 10_000_000_000;

fn keys() -> Vec<SchemeKeys> {
    node_keys(4)
}

fn attest(keys: &[SchemeKeys], from: u32, to: u32, issued_s: u64) -> SignedAttestation {
    Attestation {
        group: GROUP,
        attester: NodeId(from),
        attestee: NodeId(to),
        info: b"up".to_vec(),
        issued: Time::from_secs(issued_s),
        expires: Time::from_secs(issued_s) + std::time::Duration::from_nanos(VALIDITY_NS),
    }
    .sign(&keys[from as usize])
}

fn store() -> AttestationStore {
    AttestationStore::new(GROUP, 8, VALIDITY_NS)
}

#[test]
fn new_then_duplicate_then_refresh() {
    let k = keys();
    let mut s = store();
    let now = Time::from_secs(1);
    assert_eq!(
        s.insert(attest(&k, 1, 2, 0), now, &k[0], false),
        (Ok(Accepted::NewLink), true)
    );
    assert_eq!(
        s.insert(attest(&k, 1, 2, 0), now, &k[0], false),
        (Ok(Accepted::Duplicate), false)
    );
    assert_eq!(
        s.insert(attest(&k, 1, 2, 1), now, &k[0], false),
        (Ok(Accepted::Refreshed), true)
    );
    assert_eq!(
        s.get((NodeId(1), NodeId(2)), now)
            .map(|a| a.attestation.issued),
        Some(Time::from_secs(1))
    );
}

#[test]
fn replay_of_an_older_attestation_is_rejected() {
    let k = keys();
    let mut s = store();
    let now = Time::from_secs(3);
    s.insert(attest(&k, 1, 2, 2), now, &k[0], false)
        .0
        .expect("fresh");
    let (outcome, verified) = s.insert(attest(&k, 1, 2, 1), now, &k[0], false);
    assert_eq!(
        outcome,
        Err(Rejected::Replayed {
            attester: NodeId(1),
            attestee: NodeId(2),
            issued: Time::from_secs(1),
            held: Time::from_secs(2)
        })
    );
    assert!(!verified, "a replay is caught before any signature check");
}

#[test]
fn forged_signature_is_rejected_and_not_stored() {
    let k = keys();
    let mut s = store();
    let mut forged = attest(&k, 1, 2, 0);
    forged.attestation.info = b"fast".to_vec();
    let (outcome, verified) = s.insert(forged, Time::from_secs(1), &k[0], false);
    assert_eq!(
        outcome,
        Err(Rejected::Forged {
            attester: NodeId(1),
            attestee: NodeId(2)
        })
    );
    assert!(verified);
    assert!(s.is_empty());
    // Signed by node 3 but claiming node 1 as attester.
    let mut impostor = attest(&k, 3, 2, 0);
    impostor.attestation.attester = NodeId(1);
    assert!(matches!(
        s.insert(impostor, Time::from_secs(1), &k[0], false).0,
        Err(Rejected::Forged { .. })
    ));
}

#[test]
fn vouched_signature_is_not_checked() {
    let k = keys();
    let mut s = store();
    let (outcome, verified) = s.insert(attest(&k, 1, 2, 0), Time::from_secs(1), &k[0], true);
    assert_eq!(outcome, Ok(Accepted::NewLink));
    assert!(!verified, "the MAC-authenticated neighbour vouched for it");
}

#[test]
fn expired_attestations_are_ignored_and_swept() {
    let k = keys();
    let mut s = store();
    let at_expiry = Time::from_secs(10);
    assert_eq!(
        s.insert(attest(&k, 1, 2, 0), at_expiry, &k[0], false).0,
        Err(Rejected::Expired {
            attester: NodeId(1),
            attestee: NodeId(2),
            expires: at_expiry
        })
    );
    s.insert(attest(&k, 1, 2, 0), Time::from_secs(9), &k[0], false)
        .0
        .expect("live");
    s.insert(attest(&k, 2, 3, 5), Time::from_secs(9), &k[0], false)
        .0
        .expect("live");
    assert_eq!(s.live(at_expiry).count(), 1, "the first expired");
    let swept = s.expire(at_expiry);
    assert_eq!(
        swept.iter().map(|a| a.link()).collect::<Vec<_>>(),
        vec![(NodeId(1), NodeId(2))]
    );
    assert_eq!(s.len(), 1);
}

#[test]
fn equivocation_self_links_wrong_group_and_long_validity_are_rejected() {
    let k = keys();
    let mut s = store();
    let now = Time::from_secs(1);
    s.insert(attest(&k, 1, 2, 0), now, &k[0], false)
        .0
        .expect("fresh");
    let mut twin = attest(&k, 1, 2, 0);
    twin.attestation.info = b"other".to_vec();
    let twin = twin.attestation.sign(&k[1]);
    assert_eq!(
        s.insert(twin, now, &k[0], false).0,
        Err(Rejected::Equivocation {
            attester: NodeId(1),
            attestee: NodeId(2)
        })
    );
    assert_eq!(
        s.insert(attest(&k, 2, 2, 0), now, &k[0], false).0,
        Err(Rejected::SelfAttestation(NodeId(2)))
    );
    let mut elsewhere = attest(&k, 1, 3, 0).attestation;
    elsewhere.group = GroupId([9; GROUP_ID_BYTES]);
    assert!(matches!(
        s.insert(elsewhere.sign(&k[1]), now, &k[0], false).0,
        Err(Rejected::WrongGroup { .. })
    ));
    let mut forever = attest(&k, 1, 3, 0).attestation;
    forever.expires = Time::MAX;
    assert!(matches!(
        s.insert(forever.sign(&k[1]), now, &k[0], false).0,
        Err(Rejected::ValidityTooLong { .. })
    ));
}

#[test]
fn store_bound_is_enforced() {
    let k = node_keys(5);
    let mut s = AttestationStore::new(GROUP, 3, VALIDITY_NS);
    let now = Time::from_secs(1);
    for to in 1..4 {
        s.insert(attest(&k, 0, to, 0), now, &k[0], false)
            .0
            .expect("room");
    }
    assert_eq!(
        s.insert(attest(&k, 0, 4, 0), now, &k[0], false).0,
        Err(Rejected::StoreFull(3))
    );
    // A refresh of a held pair still fits.
    assert_eq!(
        s.insert(attest(&k, 0, 1, 1), now, &k[0], false).0,
        Ok(Accepted::Refreshed)
    );
}

#[test]
fn graph_and_queries_see_only_live_attestations() {
    let k = keys();
    let mut s = store();
    s.insert(attest(&k, 1, 2, 0), Time::from_secs(1), &k[0], false)
        .0
        .expect("live");
    s.insert(attest(&k, 3, 2, 5), Time::from_secs(6), &k[0], false)
        .0
        .expect("live");
    let now = Time::from_secs(12);
    assert_eq!(s.about(NodeId(2), now).len(), 1);
    let g = s.graph(now);
    assert!(g.has_edge(NodeId(3), NodeId(2)) && !g.has_edge(NodeId(1), NodeId(2)));
}

#[test]
fn wire_roundtrip_and_info_bound() {
    let k = keys();
    let a = attest(&k, 1, 2, 0);
    let bytes = a.to_bytes();
    assert_eq!(
        SignedAttestation::from_bytes(&bytes, DecodeLimits::MESSAGE),
        Ok(a.clone())
    );
    let mut big = a.attestation.clone();
    big.info = vec![0; INFO_BYTES_MAX + 1];
    let bytes = big.sign(&k[1]).to_bytes();
    assert!(matches!(
        SignedAttestation::from_bytes(&bytes, DecodeLimits::MESSAGE),
        Err(DecodeError::TooLong {
            what: "attestation info",
            ..
        })
    ));
}
