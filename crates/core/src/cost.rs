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
        CpuWork::Op {
            kind,
            count,
            bytes: 0,
        }
    }
    /// One operation of a per-byte kind over `bytes` bytes.
    pub fn bytes(kind: CostKind, bytes: usize) -> CpuWork {
        CpuWork::Op {
            kind,
            count: 1,
            bytes: bytes as u64,
        }
    }
}

/// What each kind of work costs on some machine: `per_call_ns` per operation plus `per_byte_ps`
/// picoseconds per byte. The simulator charges from a table; `stockade-crypto` calibrates one on
/// the running machine, and [`CostTable::design_defaults`] holds the figures DESIGN.md section 5
/// reports for the reference machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostTable {
    per_call_ns: [u64; CostKind::ALL.len()],
    per_byte_ps: [u64; CostKind::ALL.len()],
    /// Where the figures came from, printed in every report ("calibrated", "design defaults", ...).
    pub source: String,
}

impl CostTable {
    /// A table where everything is free (for tests that do not model CPU).
    pub fn free() -> CostTable {
        CostTable {
            per_call_ns: [0; CostKind::ALL.len()],
            per_byte_ps: [0; CostKind::ALL.len()],
            source: "free (CPU not modelled)".to_string(),
        }
    }

    /// The figures measured on the reference 2-core machine (DESIGN.md section 5).
    pub fn design_defaults() -> CostTable {
        let mut t = CostTable::free();
        t.source = "DESIGN.md section 5 reference figures".to_string();
        t.set(CostKind::Ed25519Sign, 14_000, 0);
        t.set(CostKind::Ed25519Verify, 28_000, 0);
        t.set(CostKind::Ed25519BatchVerifyItem, 12_500, 0);
        t.set(CostKind::BlsSign, 260_000, 0);
        t.set(CostKind::BlsVerify, 700_000, 0);
        t.set(CostKind::BlsAggregateSignature, 1_000, 0);
        t.set(CostKind::BlsAggregatePublicKey, 1_000, 0);
        t.set(CostKind::ThresholdPartialSign, 260_000, 0);
        t.set(CostKind::ThresholdPartialVerify, 660_000, 0);
        t.set(CostKind::ThresholdCombineShare, 107_000, 0);
        t.set(CostKind::ThresholdVerify, 660_000, 0);
        t.set(CostKind::Sha256, 200, 2_000);
        t.set(CostKind::Mac, 300, 2_000);
        t.set(CostKind::MerkleLeaf, 400, 0);
        t.set(CostKind::ErasureEncode, 50, 30);
        t.set(CostKind::ErasureDecode, 80, 50);
        t.set(CostKind::Execute, 1_000, 0);
        t
    }

    /// Set one kind's cost.
    pub fn set(&mut self, kind: CostKind, per_call_ns: u64, per_byte_ps: u64) {
        self.per_call_ns[kind as usize] = per_call_ns;
        self.per_byte_ps[kind as usize] = per_byte_ps;
    }

    /// One kind's `(per_call_ns, per_byte_ps)`.
    pub fn get(&self, kind: CostKind) -> (u64, u64) {
        (
            self.per_call_ns[kind as usize],
            self.per_byte_ps[kind as usize],
        )
    }

    /// Busy time for `work`, in nanoseconds.
    pub fn nanos(&self, work: CpuWork) -> u64 {
        match work {
            CpuWork::Nanos(n) => n,
            CpuWork::Op { kind, count, bytes } => {
                let (call, byte_ps) = self.get(kind);
                (count as u64)
                    .saturating_mul(call)
                    .saturating_add(bytes.saturating_mul(byte_ps) / 1_000)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (i, k) in CostKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn nanos_adds_calls_and_bytes() {
        let mut t = CostTable::free();
        t.set(CostKind::Sha256, 100, 2_500);
        assert_eq!(
            t.nanos(CpuWork::bytes(CostKind::Sha256, 1_000)),
            100 + 2_500
        );
        assert_eq!(t.nanos(CpuWork::ops(CostKind::Sha256, 3)), 300);
        assert_eq!(t.nanos(CpuWork::Nanos(42)), 42);
        assert_eq!(
            CostTable::design_defaults().nanos(CpuWork::ops(CostKind::Ed25519Verify, 2)),
            56_000
        );
    }
}
