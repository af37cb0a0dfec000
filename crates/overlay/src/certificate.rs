//! Certified node ids (paper 002, "One solution: certified node IDs"; Castro et al. OSDI'02): a
//! certificate authority picks each node's id at random and signs (id, address, public key), so
//! an attacker can neither choose ids near a key nor mint many (the Sybil attack).
//!
//! A Pastry node configured with the authority's public key admits a peer into its leaf set,
//! routing table or neighbourhood set only after the peer's probe answer carried a certificate
//! for exactly that id and address.

use rand::RngCore;
use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::NodeId;
use stockade_crypto::ed25519::{Signature, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::handle::NodeHandle;
use crate::id::OverlayId;

/// Domain separation for certificate signatures.
const CERTIFICATE_DOMAIN: &[u8] = b"stockade-overlay/node-certificate/v1";

/// A node's certified identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCertificate {
    /// The id the authority assigned.
    pub id: OverlayId,
    /// The node's transport address.
    pub addr: NodeId,
    /// The node's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The authority's signature over the three.
    pub signature: [u8; 64],
}

/// Why a certificate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// No certificate came with the answer.
    #[error("the peer sent no certificate, and this overlay requires certified node ids")]
    Missing,
    /// It certifies another id or address than the one the peer claims.
    #[error("the certificate is for another node id or address than the peer claims")]
    WrongIdentity,
    /// The authority did not sign it.
    #[error("the certificate is not signed by this overlay's certificate authority")]
    BadSignature,
}

fn signed_bytes(id: OverlayId, addr: NodeId, public_key: &[u8; 32]) -> Vec<u8> {
    let mut out = CERTIFICATE_DOMAIN.to_vec();
    id.encode(&mut out);
    addr.encode(&mut out);
    public_key.encode(&mut out);
    out
}

impl NodeCertificate {
    /// Check the authority's signature and that the certificate is for `claimed`.
    pub fn verify_for(
        &self,
        claimed: NodeHandle,
        authority: &[u8; 32],
    ) -> Result<(), CertificateError> {
        if self.id != claimed.id || self.addr != claimed.addr {
            return Err(CertificateError::WrongIdentity);
        }
        let authority =
            VerifyingKey::from_bytes(*authority).map_err(|_| CertificateError::BadSignature)?;
        authority
            .verify(
                &signed_bytes(self.id, self.addr, &self.public_key),
                &Signature(self.signature),
            )
            .map_err(|_| CertificateError::BadSignature)
    }

    /// The handle this certificate vouches for.
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            id: self.id,
            addr: self.addr,
        }
    }
}

impl Wire for NodeCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.addr.encode(out);
        self.public_key.encode(out);
        self.signature.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeCertificate {
            id: OverlayId::decode(r)?,
            addr: NodeId::decode(r)?,
            public_key: r.array()?,
            signature: r.array()?,
        })
    }
}

/// The authority that assigns and certifies node ids.
pub struct CertificateAuthority {
    key: SigningKey,
}

impl CertificateAuthority {
    /// An authority signing with `key`.
    pub fn new(key: SigningKey) -> CertificateAuthority {
        CertificateAuthority { key }
    }

    /// The public key every node is configured with.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Assign a random id to the node at `addr` with `public_key`, and certify it. The id comes
    /// from the authority's randomness, never from the node.
    pub fn issue(
        &self,
        rng: &mut dyn RngCore,
        addr: NodeId,
        public_key: [u8; 32],
    ) -> NodeCertificate {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        self.certify(OverlayId(u128::from_be_bytes(bytes)), addr, public_key)
    }

    /// Certify a given id (for drivers that already drew the id from the authority's RNG).
    pub fn certify(&self, id: OverlayId, addr: NodeId, public_key: [u8; 32]) -> NodeCertificate {
        let signature = self.key.sign(&signed_bytes(id, addr, &public_key)).0;
        NodeCertificate {
            id,
            addr,
            public_key,
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use stockade_core::wire::DecodeLimits;

    #[test]
    fn certificates_bind_id_address_and_authority() {
        let ca = CertificateAuthority::new(SigningKey::from_bytes([1; 32]));
        let rogue = CertificateAuthority::new(SigningKey::from_bytes([2; 32]));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cert = ca.issue(&mut rng, NodeId(7), [3; 32]);
        assert_eq!(cert.verify_for(cert.handle(), &ca.public_key()), Ok(()));
        let elsewhere = NodeHandle {
            id: cert.id,
            addr: NodeId(8),
        };
        assert_eq!(
            cert.verify_for(elsewhere, &ca.public_key()),
            Err(CertificateError::WrongIdentity)
        );
        let forged = rogue.certify(cert.id, NodeId(7), [3; 32]);
        assert_eq!(
            forged.verify_for(cert.handle(), &ca.public_key()),
            Err(CertificateError::BadSignature)
        );
        assert_eq!(
            NodeCertificate::from_bytes(&cert.to_bytes(), DecodeLimits::MESSAGE),
            Ok(cert)
        );
    }
}
