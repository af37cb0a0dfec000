//! CPU work a protocol charges for the expensive operations it performs.
//!
//! The simulator turns each charge into busy time on the node's virtual CPU, using costs calibrated
//! from the real crypto crate on the running machine, so that CPU-bound runs look CPU-bound. The
//! runtime ignores charges: real work costs real time there.

/// Kinds of expensive operation. The cost of one charge is
/// `count * per_call(kind) + bytes * per_byte(kind)` in the driver's cost model.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum CostKind {
    Ed25519Sign,
    Ed25519Verify,
    /// One signature's share of a batch verification.
    Ed25519BatchVerifyItem,
    BlsSign,
    BlsVerify,
    /// Adding one signature into an aggregate.
    BlsAggregateSignature,
    /// Adding one public key into an aggregate key.
    BlsAggregatePublicKey,
    ThresholdPartialSign,
    ThresholdPartialVerify,
    /// Combining one share by Lagrange interpolation.
    ThresholdCombineShare,
    ThresholdVerify,
    /// Hashing: `bytes` is what was hashed.
    Sha256,
    /// Keyed MAC: `bytes` is what was authenticated.
    Mac,
    /// One leaf of a Merkle batch (hashing it and its path), beyond the one signature.
    MerkleLeaf,
    /// Erasure coding: `bytes` is the data encoded.
    ErasureEncode,
    /// Erasure decoding: `bytes` is the data reconstructed.
    ErasureDecode,
    /// Application work (for example executing a command): `count` calls.
    Execute,
}

impl CostKind {
    /// Every kind, for cost tables and reports.
    pub const ALL: [CostKind; 17] = [
        CostKind::Ed25519Sign,
        CostKind::Ed25519Verify,
        CostKind::Ed25519BatchVerifyItem,
        CostKind::BlsSign,
        CostKind::BlsVerify,
        CostKind::BlsAggregateSignature,
        CostKind::BlsAggregatePublicKey,
        CostKind::ThresholdPartialSign,
        CostKind::ThresholdPartialVerify,
        CostKind::ThresholdCombineShare,
        CostKind::ThresholdVerify,
        CostKind::Sha256,
        CostKind::Mac,
        CostKind::MerkleLeaf,
        CostKind::ErasureEncode,
        CostKind::ErasureDecode,
        CostKind::Execute,
    ];
}

/// One charge of CPU work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CpuWork {
    /// `count` operations of `kind` over `bytes` bytes in total.
    Op {
        /// What was done.
        kind: CostKind,
        /// How many times.
        count: u32,
        /// Over how many bytes in total (for hashing, MACs, coding).
        bytes: u64,
    },
    /// A fixed amount of busy time, in nanoseconds.
    Nanos(u64),
}

impl CpuWork {
    /// `count` operations of a per-call kind (signatures, verifications).
    pub fn ops(kind: CostKind, count: u32) -> CpuWork {
        CpuWork::Op { kind, count, bytes: 0 }
    }
    /// One operation of a per-byte kind over `bytes` bytes.
    pub fn bytes(kind: CostKind, bytes: usize) -> CpuWork {
        CpuWork::Op { kind, count: 1, bytes: bytes as u64 }
    }
}
