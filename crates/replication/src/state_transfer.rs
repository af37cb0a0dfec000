//! Chunked state transfer: how a server that received a JUMP fetches a stable checkpoint's
//! snapshot when it is larger than one message (PRIME.md "Catch-up and recovery": "the
//! application performs state transfer from a checkpoint").
//!
//! A snapshot is cut into numbered chunks of at most [`SNAPSHOT_CHUNK_BYTES`], and the CHECKPOINT
//! digest that 2f+k+1 servers sign is a Merkle root over the chunks bound to the snapshot's length
//! ([`SnapshotImage`]). A JUMP carries the checkpoint proof and the length only; the receiver then
//! asks the servers of the proof for chunks, spreading the requests over them, and checks every
//! chunk against the certified root with the sibling path it carries, so a Byzantine server cannot
//! slip in a bad chunk: the chunk is dropped, that server is asked no more in this transfer, and
//! the chunk is fetched from another. Reassembly is bounded by `PrimeConfig::snapshot_bytes_max`.

use std::collections::{BTreeMap, BTreeSet};

use stockade_core::wire::{DecodeError, Reader, Wire};
use stockade_core::{Context, CostKind, CpuWork, Protocol};
use stockade_crypto::merkle::{BatchProof, MerkleTree, PATH_LEN_MAX};
use stockade_crypto::Digest as TreeDigest;

use crate::app::Application;
use crate::auth::{hash_parts, Digest, Signed};
use crate::checkpoint::Checkpoint;
use crate::config::ParticipantId;
use crate::messages::PrimeMessage;
use crate::replica::{Prime, PrimeTimer};

/// Bytes of one snapshot chunk: with its path and header, a chunk message stays well under the
/// release's 32,000-byte packet.
pub const SNAPSHOT_CHUNK_BYTES: usize = 16 * 1024;
/// Chunk indices one SNAPSHOT-CHUNK-REQUEST may name on the wire.
pub const CHUNK_REQUEST_INDICES_WIRE_MAX: usize = 64;
/// Chunks requested from one server per fetch round (bounds what is in flight to one server).
pub const CHUNKS_PER_SERVER_PER_ROUND_MAX: usize = 8;

/// The domain of a snapshot's certified digest.
const SNAPSHOT_DOMAIN: &[u8] = b"prime/snapshot";

/// Chunks of a snapshot of `total_bytes` (at least one, so an empty snapshot has a root too).
pub fn chunk_count(total_bytes: u64) -> u64 {
    total_bytes.div_ceil(SNAPSHOT_CHUNK_BYTES as u64).max(1)
}

fn certified_digest(total_bytes: u64, tree_digest: &TreeDigest) -> Digest {
    hash_parts(
        SNAPSHOT_DOMAIN,
        &[&total_bytes.to_le_bytes(), &tree_digest.0],
    )
}

/// A snapshot with its chunk tree: what a server keeps of its checkpoints to serve chunks.
#[derive(Clone, Debug)]
pub struct SnapshotImage {
    bytes: Vec<u8>,
    tree: MerkleTree,
    digest: Digest,
}

impl SnapshotImage {
    /// Cut `bytes` into chunks and build the tree; `None` past the Merkle tree's leaf bound.
    pub fn new(bytes: Vec<u8>) -> Option<SnapshotImage> {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(SNAPSHOT_CHUNK_BYTES).collect()
        };
        let tree = MerkleTree::build(&chunks).ok()?;
        let digest = certified_digest(bytes.len() as u64, &tree.signed_digest());
        Some(SnapshotImage {
            bytes,
            tree,
            digest,
        })
    }

    /// The digest CHECKPOINT messages sign.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The snapshot.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Chunk `index` with its sibling path, for checkpoint `seq`.
    pub fn chunk(&self, seq: u64, index: u32) -> Option<SnapshotChunk> {
        if index as u64 >= chunk_count(self.bytes.len() as u64) {
            return None;
        }
        let start = index as usize * SNAPSHOT_CHUNK_BYTES;
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(self.bytes.len());
        Some(SnapshotChunk {
            seq,
            index,
            bytes: self.bytes.get(start..end)?.to_vec(),
            siblings: self.tree.path(index as usize)?,
        })
    }
}

/// Charge the virtual CPU for hashing a snapshot of `bytes` into its Merkle tree (taking a
/// checkpoint, or checking a transferred snapshot once more before restoring it).
pub(crate) fn charge_snapshot_hashing<P: Protocol>(cx: &mut Context<'_, P>, bytes: usize) {
    let leaves = u32::try_from(chunk_count(bytes as u64)).unwrap_or(u32::MAX);
    cx.charge(CpuWork::bytes(CostKind::Sha256, bytes));
    cx.charge(CpuWork::ops(CostKind::MerkleLeaf, leaves));
}

/// Whether `chunk` is chunk `chunk.index` of the snapshot of `total_bytes` certified as `digest`.
pub fn chunk_is_valid(chunk: &SnapshotChunk, total_bytes: u64, digest: &Digest) -> bool {
    let count = chunk_count(total_bytes);
    if chunk.index as u64 >= count {
        return false;
    }
    let expected_len = if chunk.index as u64 + 1 == count {
        total_bytes - (count - 1) * SNAPSHOT_CHUNK_BYTES as u64
    } else {
        SNAPSHOT_CHUNK_BYTES as u64
    };
    if chunk.bytes.len() as u64 != expected_len {
        return false;
    }
    let proof = BatchProof {
        signature: (),
        leaf_index: chunk.index,
        leaf_count: count as u32,
        siblings: chunk.siblings.clone(),
    };
    proof
        .signed_digest(&chunk.bytes)
        .is_ok_and(|tree_digest| certified_digest(total_bytes, &tree_digest) == *digest)
}

/// SNAPSHOT-CHUNK-REQUEST: the sender asks for these chunks of checkpoint `seq`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SnapshotChunkRequest {
    /// The checkpoint's slot.
    pub seq: u64,
    /// The chunks wanted.
    pub indices: Vec<u32>,
}

impl Wire for SnapshotChunkRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.seq.encode(out);
        self.indices.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SnapshotChunkRequest {
            seq: u64::decode(r)?,
            indices: r.vec_of("chunk request indices", CHUNK_REQUEST_INDICES_WIRE_MAX)?,
        })
    }
}

/// SNAPSHOT-CHUNK: one chunk of checkpoint `seq`'s snapshot with its Merkle sibling path. Not
/// signed: it is checked against the certified digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SnapshotChunk {
    /// The checkpoint's slot.
    pub seq: u64,
    /// Which chunk.
    pub index: u32,
    /// The chunk.
    pub bytes: Vec<u8>,
    /// Sibling digests from the chunk's leaf to the root, bottom up.
    pub siblings: Vec<TreeDigest>,
}

impl Wire for SnapshotChunk {
    fn encode(&self, out: &mut Vec<u8>) {
        self.seq.encode(out);
        self.index.encode(out);
        self.bytes.encode(out);
        self.siblings.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SnapshotChunk {
            seq: u64::decode(r)?,
            index: u32::decode(r)?,
            bytes: r.byte_vec("snapshot chunk", SNAPSHOT_CHUNK_BYTES)?,
            siblings: r.vec_of("snapshot chunk path", PATH_LEN_MAX)?,
        })
    }
}

/// A snapshot being fetched after a JUMP.
#[derive(Debug)]
pub(crate) struct Reassembly {
    /// The checkpoint and its proof.
    pub(crate) checkpoint: Checkpoint,
    proof: Vec<Signed<Checkpoint>>,
    total_bytes: u64,
    /// Chunks received and checked (at most `chunk_count(total_bytes)`, which the reassembly
    /// bound `snapshot_bytes_max` limits).
    chunks: BTreeMap<u32, Vec<u8>>,
    /// Servers asked for chunks, in rotation order (the JUMP's sender first).
    sources: Vec<ParticipantId>,
    /// Servers that sent a bad chunk in this transfer: asked no more.
    pub(crate) refused: BTreeSet<ParticipantId>,
    /// Fetch rounds so far (rotates which server is asked for which chunk).
    round: usize,
}

impl Reassembly {
    fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..chunk_count(self.total_bytes) as u32).filter(|i| !self.chunks.contains_key(i))
    }
}

impl<A: Application> Prime<A> {
    /// A JUMP's proof checked out: fetch its snapshot, unless it is beyond the reassembly bound or
    /// an equal or newer transfer is under way.
    pub(crate) fn start_state_transfer(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: ParticipantId,
        proof: Vec<Signed<Checkpoint>>,
        total_bytes: u64,
    ) {
        let Some(checkpoint) = proof.first().map(|v| v.body) else {
            return;
        };
        if total_bytes > self.cfg.snapshot_bytes_max {
            self.drops.out_of_window += 1;
            return;
        }
        if self
            .transfer
            .as_ref()
            .is_some_and(|t| t.checkpoint.seq >= checkpoint.seq)
        {
            return;
        }
        let mut sources: Vec<ParticipantId> = vec![from];
        sources.extend(
            proof
                .iter()
                .map(|v| v.signer)
                .filter(|p| *p != from && *p != self.me),
        );
        self.transfer = Some(Reassembly {
            checkpoint,
            proof,
            total_bytes,
            chunks: BTreeMap::new(),
            sources,
            refused: BTreeSet::new(),
            round: 0,
        });
        self.request_chunks(cx);
        cx.set_timer(PrimeTimer::SnapshotFetch, self.cfg.catchup_period);
    }

    /// One fetch round: spread the missing chunks over the servers not refused, at most
    /// `CHUNKS_PER_SERVER_PER_ROUND_MAX` each, rotating the assignment every round so a silent
    /// server's chunks are asked of another next time.
    pub(crate) fn request_chunks(&mut self, cx: &mut Context<'_, Self>) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        let sources: Vec<ParticipantId> = t
            .sources
            .iter()
            .copied()
            .filter(|p| !t.refused.contains(p))
            .collect();
        if sources.is_empty() {
            return;
        }
        let budget = sources.len() * CHUNKS_PER_SERVER_PER_ROUND_MAX;
        let mut asks: BTreeMap<ParticipantId, Vec<u32>> = BTreeMap::new();
        for (k, index) in t.missing().take(budget).enumerate() {
            let source = sources[(k + t.round) % sources.len()];
            asks.entry(source).or_default().push(index);
        }
        t.round += 1;
        let seq = t.checkpoint.seq;
        for (to, indices) in asks {
            let request = SnapshotChunkRequest { seq, indices };
            self.send_to(cx, to, PrimeMessage::SnapshotChunkRequest(request));
        }
    }

    /// The fetch timer: ask again for what is still missing.
    pub(crate) fn on_snapshot_fetch_timer(&mut self, cx: &mut Context<'_, Self>) {
        if self.transfer.is_some() {
            self.request_chunks(cx);
            cx.set_timer(PrimeTimer::SnapshotFetch, self.cfg.catchup_period);
        }
    }

    /// Serve the chunks asked for, from our stable checkpoint of that slot (at most
    /// `CHUNKS_PER_SERVER_PER_ROUND_MAX` per request).
    pub(crate) fn on_snapshot_chunk_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: ParticipantId,
        request: SnapshotChunkRequest,
    ) {
        let Some(image) = self.checkpoints.stable_image(request.seq).cloned() else {
            self.drops.out_of_window += 1;
            return;
        };
        for index in request.indices.iter().take(CHUNKS_PER_SERVER_PER_ROUND_MAX) {
            if let Some(mut chunk) = image.chunk(request.seq, *index) {
                self.attack_corrupt_chunk(&mut chunk);
                self.send_to(cx, from, PrimeMessage::SnapshotChunk(chunk));
            }
        }
    }

    /// A chunk: keep it if it is valid for the transfer under way; a bad one refuses its sender
    /// for the rest of the transfer and is asked of another server at once.
    pub(crate) fn on_snapshot_chunk(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: ParticipantId,
        chunk: SnapshotChunk,
    ) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        // Chunks still in flight from a refused server are ignored, not re-blamed: one bad
        // chunk costs one extra fetch round, however many more that server sends.
        if chunk.seq != t.checkpoint.seq
            || t.chunks.contains_key(&chunk.index)
            || t.refused.contains(&from)
        {
            return;
        }
        cx.charge(CpuWork::bytes(CostKind::Sha256, chunk.bytes.len()));
        cx.charge(CpuWork::ops(CostKind::MerkleLeaf, 1));
        if !chunk_is_valid(&chunk, t.total_bytes, &t.checkpoint.digest) {
            self.drops.malformed += 1;
            t.refused.insert(from);
            return self.request_chunks(cx);
        }
        t.chunks.insert(chunk.index, chunk.bytes);
        if t.missing().next().is_some() {
            return;
        }
        let Some(t) = self.transfer.take() else {
            return;
        };
        cx.cancel_timer(PrimeTimer::SnapshotFetch);
        let bytes: Vec<u8> = t.chunks.into_values().flatten().collect();
        self.restore_checkpoint(cx, t.checkpoint, t.proof, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_chunk_verifies_against_the_digest_and_altered_ones_do_not() {
        for len in [0, 1, SNAPSHOT_CHUNK_BYTES, 300 * 1024 + 5] {
            let image = SnapshotImage::new(state(len)).expect("image");
            let count = chunk_count(len as u64);
            let mut rebuilt = Vec::new();
            for i in 0..count as u32 {
                let chunk = image.chunk(9, i).expect("chunk");
                assert!(chunk.bytes.len() <= SNAPSHOT_CHUNK_BYTES);
                let message = PrimeMessage::SnapshotChunk(chunk.clone());
                assert!(message.to_bytes().len() < 32_000, "a chunk fits a packet");
                assert!(
                    chunk_is_valid(&chunk, len as u64, &image.digest()),
                    "{len}/{i}"
                );
                rebuilt.extend_from_slice(&chunk.bytes);
            }
            assert_eq!(rebuilt, state(len));
            assert!(image.chunk(9, count as u32).is_none());
        }
        let image = SnapshotImage::new(state(100_000)).expect("image");
        let good = image.chunk(1, 2).expect("chunk");
        let mut flipped = good.clone();
        flipped.bytes[10] ^= 1;
        assert!(!chunk_is_valid(&flipped, 100_000, &image.digest()));
        let mut moved = good.clone();
        moved.index = 3;
        assert!(!chunk_is_valid(&moved, 100_000, &image.digest()));
        assert!(
            !chunk_is_valid(&good, 100_001, &image.digest()),
            "the length is certified too"
        );
    }

    /// The reassembly bound: a JUMP announcing a snapshot over `snapshot_bytes_max` is refused
    /// before anything is fetched; one under it starts fetching, spread over the proof's servers.
    #[test]
    fn a_jump_beyond_the_reassembly_bound_is_refused() {
        use stockade_core::Time;

        use crate::checkpoint::Jump;
        use crate::config::PrimeConfig;
        use crate::test_support::{call, node, sends, signed_by};

        let mut cfg = PrimeConfig::new(1, 0);
        cfg.snapshot_bytes_max = 100_000;
        let mut p = node(&cfg, 2);
        let checkpoint = Checkpoint {
            seq: 8,
            digest: [3; 32],
        };
        let proof: Vec<_> = [0u16, 1, 3]
            .iter()
            .map(|i| signed_by(*i, checkpoint))
            .collect();
        let jump = |snapshot_bytes| Jump {
            proof: proof.clone(),
            snapshot_bytes,
        };
        let t = Time::from_millis(1);
        let refused = call(&mut p, t, |p, cx| {
            p.on_jump(cx, ParticipantId(1), jump(100_001))
        });
        assert!(sends(&refused).is_empty(), "nothing fetched");
        assert!(p.transfer.is_none());
        assert_eq!(p.drops().out_of_window, 1);
        let started = call(&mut p, t, |p, cx| {
            p.on_jump(cx, ParticipantId(1), jump(100_000))
        });
        let requests: Vec<(u32, Vec<u32>)> = sends(&started)
            .into_iter()
            .filter_map(|(to, m)| match m {
                PrimeMessage::SnapshotChunkRequest(r) => Some((to.0, r.indices)),
                _ => None,
            })
            .collect();
        // Seven chunks, dealt in turn to the JUMP's sender and the proof's other servers.
        assert_eq!(
            requests,
            vec![(0, vec![1, 4]), (1, vec![0, 3, 6]), (3, vec![2, 5])]
        );
        assert!(p.transfer.is_some());
    }
}
