//! The figures behind `stockade bench transcript --members M`: size and verification time of a
//! compact transcript (one BLS multi-signature) against the naive one (one Ed25519-signed
//! attestation per member), with real cryptography.
//!
//! This is measurement code, not protocol code: it reads the host clock.

use std::time::{Duration, Instant};

use stockade_core::{NodeId, Time, Wire};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;

use super::{
    AttestationListTranscript, CompactTranscript, MemberDirectory, TranscriptError, ViewStatement,
};
use crate::attestation::{Attestation, GroupId, GROUP_ID_BYTES};
use crate::keys::SchemeKeys;

/// Verifications timed per figure; the median is reported.
pub const BENCH_ITERATIONS: usize = 21;
/// The seed of the benchmark's keys (any fixed value: the figures do not depend on it).
const BENCH_RUN_SEED: u64 = 0x5eed;

/// One run of the transcript benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptBench {
    /// Members in the view.
    pub members: usize,
    /// Encoded size of the compact transcript, every member signing.
    pub compact_bytes: usize,
    /// Median time to verify it (bitmap decoding, public-key aggregation, one pairing check).
    pub compact_verify_us: f64,
    /// Encoded size of the naive transcript: one attestation per member (a ring).
    pub naive_bytes: usize,
    /// Median time to verify it (one Ed25519 verification per attestation, then reachability).
    pub naive_verify_us: f64,
}

impl TranscriptBench {
    /// The figures as one JSON object (the last line `stockade bench` prints).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"members\":{},\"compact_bytes\":{},\"compact_verify_us\":{:.1},\"naive_bytes\":{},\"naive_verify_us\":{:.1}}}",
            self.members, self.compact_bytes, self.compact_verify_us, self.naive_bytes, self.naive_verify_us
        )
    }
}

fn median_us(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Build both transcripts for a view of `members` nodes (2 to the directory limit) with real
/// Ed25519 and BLS keys, check that both verify, and time [`BENCH_ITERATIONS`] verifications of
/// each.
pub fn bench_transcript(members: usize) -> Result<TranscriptBench, TranscriptError> {
    let count = u32::try_from(members)
        .ok()
        .filter(|&c| (2..=super::DIRECTORY_NODES_MAX as u32).contains(&c))
        .ok_or(TranscriptError::BadDirectory {
            nodes: members,
            keys: members,
        })?;
    let keys = SimulationKeys::new(CryptoMode::Real, BENCH_RUN_SEED);
    let ids: Vec<u32> = (0..count).collect();
    let nodes: Vec<NodeId> = ids.iter().map(|&i| NodeId(i)).collect();
    let group = GroupId([0x42; GROUP_ID_BYTES]);
    let now = Time::from_secs(1);

    let directory = MemberDirectory::new(nodes.iter().copied(), keys.membership(&ids))?;
    let statement = ViewStatement {
        group,
        epoch: 1,
        members: nodes.iter().copied().collect(),
    };
    let message = statement.signing_bytes();
    let shares: Vec<_> = ids
        .iter()
        .map(|&i| (NodeId(i), keys.multi_signer(i).sign(&message, &mut |_| {})))
        .collect();
    let compact = CompactTranscript::build(&statement, &shares, &directory, &mut |_| {})?;
    let mut compact_samples = Vec::with_capacity(BENCH_ITERATIONS);
    for _ in 0..BENCH_ITERATIONS {
        let start = Instant::now();
        compact.verify(NodeId(count - 1), members, &directory, &mut |_| {})?;
        compact_samples.push(start.elapsed());
    }

    let node_keys: Vec<SchemeKeys> = nodes
        .iter()
        .map(|&me| SchemeKeys::for_simulation(&keys, me, nodes.iter().copied()))
        .collect();
    let attestations = nodes
        .iter()
        .zip(node_keys.iter())
        .map(|(&attester, signer)| {
            let attestee = NodeId((attester.0 + 1) % count);
            let expires = now + Duration::from_secs(30);
            Attestation {
                group,
                attester,
                attestee,
                info: Vec::new(),
                issued: now,
                expires,
            }
            .sign(signer)
        })
        .collect();
    let naive = AttestationListTranscript { attestations };
    let verifier = &node_keys[0];
    let mut naive_samples = Vec::with_capacity(BENCH_ITERATIONS);
    for _ in 0..BENCH_ITERATIONS {
        let start = Instant::now();
        naive.verify(group, NodeId(0), NodeId(count - 1), now, verifier)?;
        naive_samples.push(start.elapsed());
    }

    Ok(TranscriptBench {
        members,
        compact_bytes: compact.to_bytes().len(),
        compact_verify_us: median_us(compact_samples),
        naive_bytes: naive.to_bytes().len(),
        naive_verify_us: median_us(naive_samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_builds_and_verifies_both_forms() {
        let figures = bench_transcript(8).expect("runs");
        // 20 + 8 + 2 x (1 + 1) + 96.
        assert_eq!(figures.compact_bytes, 128);
        // Per attestation: 20 + 4 + 4 + 1 + 8 + 8 + 64 = 109, plus the length prefix.
        assert_eq!(figures.naive_bytes, 1 + 8 * 109);
        assert!(figures.compact_verify_us > 0.0 && figures.naive_verify_us > 0.0);
        assert!(figures
            .to_json()
            .starts_with("{\"members\":8,\"compact_bytes\":128,"));
        assert!(bench_transcript(1).is_err(), "a view of one proves nothing");
    }
}
