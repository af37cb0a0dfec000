//! Measuring what each kind of CPU work costs on the running machine: [`calibrate`] feeds the
//! simulator's virtual CPU, [`bench_report`] feeds `stockade bench crypto`.
//!
//! Both time the real operations of this crate with `std::time::Instant` (this module is the only
//! place in the crate that reads a clock; protocols never call it). Costs are means over repeated
//! runs within a time slice, so a busy machine gives pessimistic figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use blst::min_pk;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stockade_core::{CostKind, CostTable};

use crate::bls::{verify_multi, BlsSecretKey, BlsSignature, MultiSignature, VerifiedPublicKey};
use crate::ed25519::{verify_batch, BatchItem, Signature, SigningKey, VerifyingKey};
use crate::erasure::ErasureCode;
use crate::hash::sha256;
use crate::mac::MacKey;
use crate::merkle::sign_batch_with;
use crate::scheme::{CryptoMode, SimulationKeys};
use crate::threshold::{deal, DealtKeys, PartialSignature, ThresholdParameters};

/// Signers in the batch and aggregate measurements (DESIGN.md section 5 uses 64).
const GROUP_SIZE: usize = 64;
/// Message length for signatures (a typical small protocol message).
const MESSAGE_BYTES: usize = 200;
/// Small and large inputs for per-byte kinds: the slope between them is the per-byte cost.
const SMALL_INPUT_BYTES: usize = 64;
const LARGE_INPUT_BYTES: usize = 8 * 1024;
/// Measurements [`calibrate`] shares its budget between.
const CALIBRATION_MEASUREMENTS: u32 = 24;
/// Upper bound on repetitions of one operation, whatever the budget.
const REPETITIONS_MAX: u32 = 100_000;

/// One line of `stockade bench crypto`.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchLine {
    /// What was measured.
    pub name: String,
    /// Mean time per operation, in microseconds.
    pub per_op_us: f64,
    /// DESIGN.md section 5's figure for the same operation on the reference machine, or a note.
    pub reference: String,
}

/// Mean nanoseconds per call of `op`: one warm-up call, then calls until `slice` has passed.
fn per_op_ns(slice: Duration, mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < REPETITIONS_MAX && (calls == 0 || start.elapsed() < slice) {
        op();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// Everything the measurements operate on, built once (outside the timed loops).
struct Fixture {
    message: Vec<u8>,
    ed_key: SigningKey,
    ed_public: VerifyingKey,
    ed_signature: Signature,
    ed_batch: Vec<(VerifyingKey, Vec<u8>, Signature)>,
    bls_key: BlsSecretKey,
    bls_signature: BlsSignature,
    members: Vec<VerifiedPublicKey>,
    member_signatures: Vec<BlsSignature>,
    transcript: MultiSignature,
    threshold: DealtKeys,
    partials: Vec<PartialSignature>,
    threshold_signature: BlsSignature,
    mac_key: MacKey,
    merkle_messages: Vec<Vec<u8>>,
    erasure: ErasureCode,
}

impl Fixture {
    fn new() -> Fixture {
        let message = vec![0xa5; MESSAGE_BYTES];
        let ed_key = SigningKey::for_simulation(0, 0);
        let ed_batch = (0..GROUP_SIZE as u32)
            .map(|i| {
                let key = SigningKey::for_simulation(0, i);
                let m = [&message[..], &i.to_le_bytes()].concat();
                let s = key.sign(&m);
                (key.verifying_key(), m, s)
            })
            .collect();
        let secrets: Vec<BlsSecretKey> = (0..GROUP_SIZE as u32)
            .map(|i| BlsSecretKey::for_simulation(0, i))
            .collect();
        let members = secrets
            .iter()
            .map(BlsSecretKey::verified_public_key)
            .collect();
        let member_signatures: Vec<BlsSignature> =
            secrets.iter().map(|s| s.sign(&message)).collect();
        let pairs: Vec<(usize, &BlsSignature)> = member_signatures.iter().enumerate().collect();
        let transcript = MultiSignature::aggregate(GROUP_SIZE, &pairs)
            .unwrap_or_else(|e| unreachable!("own signatures aggregate: {e}"));
        let parameters = ThresholdParameters::for_faults(2)
            .unwrap_or_else(|e| unreachable!("3 of 7 is valid: {e}"));
        let threshold = deal(parameters, &mut ChaCha20Rng::seed_from_u64(0))
            .unwrap_or_else(|e| unreachable!("dealing 3 of 7 succeeds: {e}"));
        let partials: Vec<PartialSignature> = threshold.secret_shares[..3]
            .iter()
            .map(|s| s.sign_partial(&message))
            .collect();
        let threshold_signature = threshold
            .public
            .combine(&message, &partials)
            .unwrap_or_else(|e| unreachable!("own partials combine: {e}"))
            .signature;
        Fixture {
            ed_public: ed_key.verifying_key(),
            ed_signature: ed_key.sign(&message),
            ed_key,
            ed_batch,
            bls_signature: secrets[0].sign(&message),
            bls_key: secrets[0].clone(),
            members,
            member_signatures,
            transcript,
            threshold,
            partials,
            threshold_signature,
            mac_key: MacKey::from_bytes([7; 32]),
            merkle_messages: (0..GROUP_SIZE)
                .map(|i| [&message[..], &[i as u8]].concat())
                .collect(),
            erasure: ErasureCode::for_faults(2).unwrap_or_else(|e| unreachable!("3 + 4: {e}")),
            message,
        }
    }

    fn ed25519_batch_64(&self, slice: Duration) -> f64 {
        let items: Vec<BatchItem<'_>> = self
            .ed_batch
            .iter()
            .map(|(key, message, signature)| BatchItem {
                key,
                message,
                signature,
            })
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        per_op_ns(slice, || {
            let _ = black_box(verify_batch(&items, &mut rng));
        })
    }

    fn bls_aggregate_64(&self, slice: Duration) -> f64 {
        let pairs: Vec<(usize, &BlsSignature)> =
            self.member_signatures.iter().enumerate().collect();
        per_op_ns(slice, || {
            let _ = black_box(MultiSignature::aggregate(GROUP_SIZE, &pairs));
        })
    }

    /// Aggregation alone, of signatures already decompressed (how DESIGN.md measured it).
    fn bls_aggregate_points_64(&self, slice: Duration) -> f64 {
        let points: Vec<min_pk::Signature> = self
            .member_signatures
            .iter()
            .filter_map(|s| s.point().ok())
            .collect();
        let refs: Vec<&min_pk::Signature> = points.iter().collect();
        per_op_ns(slice, || {
            let _ = black_box(min_pk::AggregateSignature::aggregate(&refs, false));
        })
    }

    fn bls_aggregate_keys_64(&self, slice: Duration) -> f64 {
        let keys: Vec<&min_pk::PublicKey> =
            self.members.iter().map(|k| k.public_key().raw()).collect();
        per_op_ns(slice, || {
            let _ = black_box(min_pk::AggregatePublicKey::aggregate(&keys, false));
        })
    }

    fn transcript_verify_64(&self, slice: Duration) -> f64 {
        per_op_ns(slice, || {
            let _ = black_box(verify_multi(&self.members, &self.message, &self.transcript));
        })
    }

    fn threshold_combine(&self, slice: Duration) -> f64 {
        per_op_ns(slice, || {
            let _ = black_box(self.threshold.public.combine(&self.message, &self.partials));
        })
    }

    fn threshold_verify(&self, slice: Duration) -> f64 {
        per_op_ns(slice, || {
            let group = self.threshold.public.group_key();
            let _ = black_box(group.verify(&self.message, &self.threshold_signature));
        })
    }

    fn merkle_batch_64(&self, slice: Duration, with_signature: bool) -> f64 {
        per_op_ns(slice, || {
            let _ = black_box(sign_batch_with(&self.merkle_messages, |digest| {
                with_signature.then(|| self.ed_key.sign(&digest.0))
            }));
        })
    }

    fn erasure_encode(&self, slice: Duration, bytes: usize) -> f64 {
        let data = vec![0x3c; bytes];
        per_op_ns(slice, || {
            let _ = black_box(self.erasure.encode(&data));
        })
    }

    fn erasure_decode(&self, slice: Duration, bytes: usize) -> f64 {
        let parts = self.erasure.encode(&vec![0x3c; bytes]).unwrap_or_default();
        // The worst case: only parity parts survive, so every data part is reconstructed.
        let chosen: Vec<(usize, &[u8])> = (4..7)
            .filter_map(|i| Some((i, parts.get(i)?.as_slice())))
            .collect();
        per_op_ns(slice, || {
            let _ = black_box(self.erasure.decode(&chosen));
        })
    }
}

/// `(per_call_ns, per_byte_ps)` from timings at two input sizes.
fn split_per_byte(small_ns: f64, large_ns: f64) -> (u64, u64) {
    let per_byte_ns =
        ((large_ns - small_ns) / (LARGE_INPUT_BYTES - SMALL_INPUT_BYTES) as f64).max(0.0);
    let per_call_ns = (small_ns - per_byte_ns * SMALL_INPUT_BYTES as f64).max(0.0);
    (
        per_call_ns.round() as u64,
        (per_byte_ns * 1_000.0).round() as u64,
    )
}

/// Measure every [`CostKind`] on this machine within about `budget` (plus a few tens of
/// milliseconds of key setup). `Execute` is application work, not crypto: it keeps the design
/// default. 0.5 s gives stable figures; the simulator's default run uses that.
pub fn calibrate(budget: Duration) -> CostTable {
    let slice = budget / CALIBRATION_MEASUREMENTS;
    let fx = Fixture::new();
    let mut table = CostTable::design_defaults();
    table.source = format!(
        "calibrated on this machine ({} ms budget)",
        budget.as_millis()
    );
    let per_call = |table: &mut CostTable, kind, ns: f64| table.set(kind, ns.round() as u64, 0);
    let m = &fx.message;

    per_call(
        &mut table,
        CostKind::Ed25519Sign,
        per_op_ns(slice, || {
            black_box(fx.ed_key.sign(m));
        }),
    );
    per_call(
        &mut table,
        CostKind::Ed25519Verify,
        per_op_ns(slice, || {
            let _ = black_box(fx.ed_public.verify(m, &fx.ed_signature));
        }),
    );
    per_call(
        &mut table,
        CostKind::Ed25519BatchVerifyItem,
        fx.ed25519_batch_64(slice) / GROUP_SIZE as f64,
    );
    per_call(
        &mut table,
        CostKind::BlsSign,
        per_op_ns(slice, || {
            black_box(fx.bls_key.sign(m));
        }),
    );
    let bls_verify = per_op_ns(slice, || {
        let _ = black_box(fx.bls_key.public_key().verify(m, &fx.bls_signature));
    });
    per_call(&mut table, CostKind::BlsVerify, bls_verify);
    per_call(
        &mut table,
        CostKind::BlsAggregateSignature,
        fx.bls_aggregate_64(slice) / GROUP_SIZE as f64,
    );
    per_call(
        &mut table,
        CostKind::BlsAggregatePublicKey,
        fx.bls_aggregate_keys_64(slice) / GROUP_SIZE as f64,
    );
    let share = &fx.threshold.secret_shares[0];
    per_call(
        &mut table,
        CostKind::ThresholdPartialSign,
        per_op_ns(slice, || {
            black_box(share.sign_partial(m));
        }),
    );
    per_call(
        &mut table,
        CostKind::ThresholdPartialVerify,
        per_op_ns(slice, || {
            let _ = black_box(fx.threshold.public.verify_partial(m, &fx.partials[0]));
        }),
    );
    let threshold_verify = fx.threshold_verify(slice);
    per_call(&mut table, CostKind::ThresholdVerify, threshold_verify);
    // Combining includes one verification of the result; the difference of two noisy timings can
    // come out at or below zero on a busy machine, so each is the best of a few runs, and a
    // difference that is still not positive falls back to the whole combine spread over the
    // shares (an upper bound, never a zero cost).
    let best_of = |measure: &dyn Fn() -> f64| (0..3).map(|_| measure()).fold(f64::MAX, f64::min);
    let combine = best_of(&|| fx.threshold_combine(slice));
    let combine_verify = best_of(&|| fx.threshold_verify(slice));
    let shares = fx.partials.len() as f64;
    let combine_share = match combine - combine_verify {
        extra if extra > 0.0 => extra / shares,
        _ => combine / shares,
    };
    per_call(&mut table, CostKind::ThresholdCombineShare, combine_share);

    let (small, large) = (vec![1u8; SMALL_INPUT_BYTES], vec![1u8; LARGE_INPUT_BYTES]);
    let sha = |input: &[u8]| {
        per_op_ns(slice, || {
            black_box(sha256(input));
        })
    };
    let (call, byte) = split_per_byte(sha(&small), sha(&large));
    table.set(CostKind::Sha256, call, byte);
    let mac = |input: &[u8]| {
        per_op_ns(slice, || {
            black_box(fx.mac_key.tag(input));
        })
    };
    let (call, byte) = split_per_byte(mac(&small), mac(&large));
    table.set(CostKind::Mac, call, byte);
    per_call(
        &mut table,
        CostKind::MerkleLeaf,
        fx.merkle_batch_64(slice, false) / GROUP_SIZE as f64,
    );
    let (call, byte) = split_per_byte(
        fx.erasure_encode(slice, SMALL_INPUT_BYTES),
        fx.erasure_encode(slice, LARGE_INPUT_BYTES),
    );
    table.set(CostKind::ErasureEncode, call, byte);
    let (call, byte) = split_per_byte(
        fx.erasure_decode(slice, SMALL_INPUT_BYTES),
        fx.erasure_decode(slice, LARGE_INPUT_BYTES),
    );
    table.set(CostKind::ErasureDecode, call, byte);
    table
}

/// The figures `stockade bench crypto` prints, each beside DESIGN.md section 5's reference
/// figure. Takes about 1.5 s.
pub fn bench_report() -> Vec<BenchLine> {
    let slice = Duration::from_millis(80);
    let fx = Fixture::new();
    let m = &fx.message;
    let line = |name: &str, ns: f64, reference: &str| BenchLine {
        name: name.to_string(),
        per_op_us: ns / 1_000.0,
        reference: reference.to_string(),
    };
    let stand_in = SimulationKeys::new(CryptoMode::SimFast, 0);
    let (stand_in_signer, stand_in_verifier) = (stand_in.signer(0), stand_in.verifier(0));
    let stand_in_signature = stand_in_signer.sign(m, &mut |_| {});
    vec![
        line(
            "ed25519 sign (200 B)",
            per_op_ns(slice, || {
                black_box(fx.ed_key.sign(m));
            }),
            "14 us",
        ),
        line(
            "ed25519 verify (200 B)",
            per_op_ns(slice, || {
                let _ = black_box(fx.ed_public.verify(m, &fx.ed_signature));
            }),
            "28 us",
        ),
        line(
            "ed25519 batch verify, 64 signatures",
            fx.ed25519_batch_64(slice),
            "0.8 ms",
        ),
        line(
            "bls sign",
            per_op_ns(slice, || {
                black_box(fx.bls_key.sign(m));
            }),
            "(none)",
        ),
        line(
            "bls verify, one signature",
            per_op_ns(slice, || {
                let _ = black_box(fx.bls_key.public_key().verify(m, &fx.bls_signature));
            }),
            "(none)",
        ),
        line(
            "bls aggregate 64 same-message signatures, from wire bytes",
            fx.bls_aggregate_64(slice),
            "0.03-0.06 ms (decompressed points)",
        ),
        line(
            "bls aggregate 64 same-message signatures, decompressed",
            fx.bls_aggregate_points_64(slice),
            "0.03-0.06 ms",
        ),
        line(
            "bls verify 64-member transcript (aggregate + bitmap)",
            fx.transcript_verify_64(slice),
            "0.7-0.9 ms",
        ),
        line(
            "threshold 3-of-7 partial sign",
            per_op_ns(slice, || {
                black_box(fx.threshold.secret_shares[0].sign_partial(m));
            }),
            "0.26 ms",
        ),
        line(
            "threshold 3-of-7 partial verify",
            per_op_ns(slice, || {
                let _ = black_box(fx.threshold.public.verify_partial(m, &fx.partials[0]));
            }),
            "(none)",
        ),
        line(
            "threshold 3-of-7 combine (includes one verify)",
            fx.threshold_combine(slice),
            "0.32 ms",
        ),
        line("threshold verify", fx.threshold_verify(slice), "0.66 ms"),
        line(
            "merkle batch: 64 messages + one ed25519 signature",
            fx.merkle_batch_64(slice, true),
            "27 us",
        ),
        line(
            "erasure (3+4) encode, 3 KB message (1 KB parts)",
            fx.erasure_encode(slice, 3 * 1024 - 4),
            "0.23 us",
        ),
        line(
            "erasure (3+4) decode from parity, 3 KB message",
            fx.erasure_decode(slice, 3 * 1024 - 4),
            "0.35 us",
        ),
        line(
            "sha256, 1 KiB",
            per_op_ns(slice, || {
                black_box(sha256(&[0u8; 1024]));
            }),
            "(none)",
        ),
        line(
            "hmac-sha256, 1 KiB",
            per_op_ns(slice, || {
                black_box(fx.mac_key.tag(&[0u8; 1024]));
            }),
            "(none)",
        ),
        line(
            "sim-fast stand-in sign (charges ed25519 sign)",
            per_op_ns(slice, || {
                black_box(stand_in_signer.sign(m, &mut |_| {}));
            }),
            "stand-in, no reference",
        ),
        line(
            "sim-fast stand-in verify (charges ed25519 verify)",
            per_op_ns(slice, || {
                let _ = black_box(stand_in_verifier.verify(m, &stand_in_signature, &mut |_| {}));
            }),
            "stand-in, no reference",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_fills_every_crypto_kind_and_names_its_source() {
        let table = calibrate(Duration::from_millis(24));
        assert!(table.source.starts_with("calibrated on this machine"));
        for kind in CostKind::ALL {
            let (call, byte) = table.get(kind);
            assert!(call > 0 || byte > 0, "{kind:?} was not measured");
        }
        // Orders of magnitude that hold on any machine: a pairing check costs more than an
        // Ed25519 check, which costs more than hashing a short message.
        let cost = |k| table.get(k).0;
        assert!(cost(CostKind::BlsVerify) > cost(CostKind::Ed25519Verify));
        assert!(cost(CostKind::Ed25519Verify) > cost(CostKind::MerkleLeaf));
    }

    #[test]
    fn per_byte_split_recovers_a_linear_cost() {
        let at = |bytes: usize| 500.0 + 2.5 * bytes as f64;
        assert_eq!(
            split_per_byte(at(SMALL_INPUT_BYTES), at(LARGE_INPUT_BYTES)),
            (500, 2_500)
        );
        assert_eq!(
            split_per_byte(100.0, 50.0),
            (100, 0),
            "noise never gives negative costs"
        );
    }
}
