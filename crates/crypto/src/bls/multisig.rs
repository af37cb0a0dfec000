//! Multi-signatures: many members sign ONE message; the signatures sum into one, and a
//! [`SignerBitmap`] says whose keys to sum when verifying.
//!
//! LA-groups' membership transcript (paper 000, section on views: "nodes individually generate
//! signatures aggregated multiplying signatures ... compact representation length equal single
//! signature") is exactly this: 64 members cost one 96-byte signature plus a 9-byte bitmap.

use stockade_core::wire::{DecodeError, Reader, Wire};

use super::bitmap::{SignerBitmap, SIGNER_BITMAP_MEMBERS_MAX};
use super::{check, BlsError, BlsSignature, VerifiedPublicKey, SIGNATURE_DST};
use blst::min_pk;

/// One aggregate signature and the members whose signatures it sums.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MultiSignature {
    /// Who signed, as positions in the ordered membership.
    pub signers: SignerBitmap,
    /// The sum of their signatures.
    pub signature: BlsSignature,
}

impl MultiSignature {
    /// Sum the signatures of members `(position, signature)` of a membership of `members`.
    /// Each signature must decompress to a curve point; the subgroup check and whether they
    /// sign the right message are checked once, on the sum, by [`verify_multi`] (as the IETF
    /// draft's Aggregate does: a bad part makes the aggregate fail, it cannot make it pass).
    pub fn aggregate(
        members: usize,
        signatures: &[(usize, &BlsSignature)],
    ) -> Result<MultiSignature, BlsError> {
        let signers = signer_bitmap(members, signatures)?;
        let ((_, first), rest) = signatures.split_first().ok_or(BlsError::NoSigners)?;
        let mut sum = min_pk::AggregateSignature::from_signature(&first.point()?);
        for (_, signature) in rest {
            sum.add_signature(&signature.point()?, false)
                .map_err(|_| BlsError::InvalidSignature)?;
        }
        Ok(MultiSignature {
            signers,
            signature: BlsSignature::from_raw(sum.to_signature()),
        })
    }
}

/// The bitmap of `signatures`' positions, refusing positions outside `members` and repeats.
pub(crate) fn signer_bitmap(
    members: usize,
    signatures: &[(usize, &BlsSignature)],
) -> Result<SignerBitmap, BlsError> {
    let mut signers = SignerBitmap::new(members).ok_or(BlsError::TooManyMembers {
        members,
        max: SIGNER_BITMAP_MEMBERS_MAX,
    })?;
    for &(index, _) in signatures {
        if index >= members {
            return Err(BlsError::SignerOutOfRange { index, members });
        }
        if signers.contains(index) {
            return Err(BlsError::DuplicateSigner { index });
        }
        signers.insert(index);
    }
    Ok(signers)
}

/// Refuse a multi-signature whose bitmap does not range over `members` or names nobody.
pub(crate) fn check_signers(members: usize, multi: &MultiSignature) -> Result<(), BlsError> {
    if multi.signers.len() != members {
        return Err(BlsError::MembershipMismatch {
            bitmap_members: multi.signers.len(),
            keys: members,
        });
    }
    match multi.signers.count() {
        0 => Err(BlsError::NoSigners),
        _ => Ok(()),
    }
}

/// Check that the members marked in `multi.signers` all signed `message`. `members` is the ordered
/// membership the bitmap indexes, every key proven possessed. The caller decides whether the number
/// of signers (`multi.signers.count()`) is enough.
pub fn verify_multi(
    members: &[VerifiedPublicKey],
    message: &[u8],
    multi: &MultiSignature,
) -> Result<(), BlsError> {
    check_signers(members.len(), multi)?;
    let keys: Vec<&min_pk::PublicKey> = multi
        .signers
        .iter()
        .map(|i| members[i].public_key().raw())
        .collect();
    // Keys are proven possessed (so also subgroup-checked): the fast aggregate check is sound.
    check(
        multi
            .signature
            .point()?
            .fast_aggregate_verify(true, message, SIGNATURE_DST, &keys),
        BlsError::InvalidSignature,
    )
}

impl Wire for MultiSignature {
    fn encode(&self, out: &mut Vec<u8>) {
        self.signers.encode(out);
        self.signature.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MultiSignature {
            signers: SignerBitmap::decode(r)?,
            signature: BlsSignature::decode(r)?,
        })
    }
    fn wire_len(&self) -> usize {
        self.signers.wire_len() + self.signature.wire_len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BlsPublicKey, BlsSecretKey};
    use super::*;
    use stockade_core::DecodeLimits;

    fn group(n: u32) -> (Vec<BlsSecretKey>, Vec<VerifiedPublicKey>) {
        let secrets: Vec<BlsSecretKey> =
            (0..n).map(|i| BlsSecretKey::for_simulation(2, i)).collect();
        let verified = secrets
            .iter()
            .map(|s| {
                s.public_key()
                    .verify_possession(&s.prove_possession())
                    .expect("own proof")
            })
            .collect();
        (secrets, verified)
    }

    fn sign_all(secrets: &[BlsSecretKey], who: &[usize], message: &[u8]) -> MultiSignature {
        let sigs: Vec<BlsSignature> = who.iter().map(|&i| secrets[i].sign(message)).collect();
        let pairs: Vec<(usize, &BlsSignature)> = who.iter().copied().zip(sigs.iter()).collect();
        MultiSignature::aggregate(secrets.len(), &pairs).expect("aggregates")
    }

    #[test]
    fn sixty_four_member_transcript_is_small_and_verifies() {
        let (secrets, keys) = group(64);
        let who: Vec<usize> = (0..64).collect();
        let multi = sign_all(&secrets, &who, b"view 7 members ...");
        assert_eq!(multi.signers.count(), 64);
        assert!(
            multi.wire_len() < 200,
            "transcript is {} bytes",
            multi.wire_len()
        );
        assert_eq!(multi.to_bytes().len(), multi.wire_len());
        assert_eq!(verify_multi(&keys, b"view 7 members ...", &multi), Ok(()));
        let back =
            MultiSignature::from_bytes(&multi.to_bytes(), DecodeLimits::MESSAGE).expect("decodes");
        assert_eq!(verify_multi(&keys, b"view 7 members ...", &back), Ok(()));
    }

    #[test]
    fn subset_verifies_and_wrong_bitmap_or_message_fails() {
        let (secrets, keys) = group(8);
        let multi = sign_all(&secrets, &[1, 4, 6], b"m");
        assert_eq!(verify_multi(&keys, b"m", &multi), Ok(()));
        assert_eq!(
            verify_multi(&keys, b"other", &multi),
            Err(BlsError::InvalidSignature)
        );
        // Claiming a member who did not sign.
        let mut overclaim = multi.clone();
        overclaim.signers.insert(0);
        assert_eq!(
            verify_multi(&keys, b"m", &overclaim),
            Err(BlsError::InvalidSignature)
        );
        // Bitmap over a different membership size.
        assert_eq!(
            verify_multi(&keys[..7], b"m", &multi),
            Err(BlsError::MembershipMismatch {
                bitmap_members: 8,
                keys: 7
            })
        );
        let empty = MultiSignature {
            signers: SignerBitmap::new(8).expect("small"),
            signature: multi.signature,
        };
        assert_eq!(verify_multi(&keys, b"m", &empty), Err(BlsError::NoSigners));
    }

    #[test]
    fn aggregate_refuses_bad_positions() {
        let (secrets, _) = group(4);
        let s = secrets[0].sign(b"m");
        assert_eq!(MultiSignature::aggregate(4, &[]), Err(BlsError::NoSigners));
        let not_a_point = BlsSignature([0xff; 96]);
        assert_eq!(
            MultiSignature::aggregate(4, &[(0, &s), (1, &not_a_point)]),
            Err(BlsError::InvalidSignature)
        );
        assert_eq!(
            MultiSignature::aggregate(4, &[(4, &s)]),
            Err(BlsError::SignerOutOfRange {
                index: 4,
                members: 4
            })
        );
        assert_eq!(
            MultiSignature::aggregate(4, &[(1, &s), (1, &s)]),
            Err(BlsError::DuplicateSigner { index: 1 })
        );
        assert_eq!(
            MultiSignature::aggregate(SIGNER_BITMAP_MEMBERS_MAX + 1, &[(0, &s)]),
            Err(BlsError::TooManyMembers {
                members: SIGNER_BITMAP_MEMBERS_MAX + 1,
                max: SIGNER_BITMAP_MEMBERS_MAX
            })
        );
    }

    #[test]
    fn rogue_key_needs_a_possession_proof_it_cannot_make() {
        // The classic attack: publish pk_rogue = pk_attacker - pk_victim, then "both" signed with
        // the attacker's key alone. The rogue key has no proof, so it never becomes verified.
        let (secrets, _) = group(2);
        let (victim, attacker) = (&secrets[0], &secrets[1]);
        let victim_point =
            blstrs::G1Affine::from_compressed(&victim.public_key().to_bytes()).expect("point");
        let attacker_point =
            blstrs::G1Affine::from_compressed(&attacker.public_key().to_bytes()).expect("point");
        let rogue_point =
            blstrs::G1Projective::from(attacker_point) - blstrs::G1Projective::from(victim_point);
        let rogue = BlsPublicKey::from_bytes(&blstrs::G1Affine::from(rogue_point).to_compressed())
            .expect("valid point");
        // The attacker can only offer a proof made with some key it knows; none verifies.
        assert_eq!(
            rogue.verify_possession(&attacker.prove_possession()),
            Err(BlsError::InvalidPossessionProof)
        );
    }
}
