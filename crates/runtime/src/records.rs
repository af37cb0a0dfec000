//! What travels inside a sealed data datagram: records that each carry a whole message or one
//! fragment of a message, the packer that fills datagrams with them, and bounded reassembly.
//!
//! Small messages to the same peer share a datagram (each datagram is still sealed and
//! authenticated as a whole); a message larger than a datagram is split into fragments that are
//! reassembled at the receiver within a bounded number of partial messages per peer and a timeout.
//!
//! Record layout (integers little-endian):
//! - whole message: `1, len: u32, bytes`
//! - fragment: `2, message_id: u32, index: u16, count: u16, total_len: u32, len: u32, bytes`
//!
//! An empty plaintext is a keepalive.

use std::time::Duration;

use stockade_core::Time;
use thiserror::Error;

const TAG_WHOLE: u8 = 1;
const TAG_FRAGMENT: u8 = 2;

/// Bytes of a whole-message record before the message.
pub const WHOLE_HEADER_LEN: usize = 1 + 4;
/// Bytes of a fragment record before its slice of the message.
pub const FRAGMENT_HEADER_LEN: usize = 1 + 4 + 2 + 2 + 4 + 4;
/// Most fragments one message may be split into; bounds a receiver's per-message bookkeeping.
pub const FRAGMENTS_PER_MESSAGE_MAX: usize = 1024;

/// One record of a datagram.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Record<'a> {
    /// A whole message.
    Whole(&'a [u8]),
    /// One piece of a larger message.
    Fragment(Fragment<'a>),
}

/// One piece of a fragmented message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Fragment<'a> {
    /// Identifies the message among the sender's messages to this peer.
    pub message_id: u32,
    /// This piece's position.
    pub index: u16,
    /// How many pieces the message has.
    pub count: u16,
    /// The whole message's length.
    pub total_len: u32,
    /// The piece.
    pub bytes: &'a [u8],
}

/// A record that could not be parsed; the rest of its datagram is dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
pub enum RecordError {
    /// The datagram ended inside a record.
    #[error("record truncated")]
    Truncated,
    /// A record tag no sender writes.
    #[error("unknown record tag {0}")]
    UnknownTag(u8),
    /// A fragment's fields contradict each other or exceed the limits.
    #[error("invalid fragment: {0}")]
    BadFragment(&'static str),
}

/// Iterates over the records of a datagram's plaintext.
pub struct RecordReader<'a> {
    rest: &'a [u8],
}

impl<'a> RecordReader<'a> {
    /// Records of `plaintext`.
    pub fn new(plaintext: &'a [u8]) -> Self {
        RecordReader { rest: plaintext }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn next_record(&mut self) -> Result<Record<'a>, RecordError> {
        match self.take(1)?[0] {
            TAG_WHOLE => {
                let len = self.u32()? as usize;
                Ok(Record::Whole(self.take(len)?))
            }
            TAG_FRAGMENT => {
                let message_id = self.u32()?;
                let index = self.u16()?;
                let count = self.u16()?;
                let total_len = self.u32()?;
                let len = self.u32()? as usize;
                let bytes = self.take(len)?;
                if count == 0 || index >= count {
                    return Err(RecordError::BadFragment("index outside count"));
                }
                if count as usize > FRAGMENTS_PER_MESSAGE_MAX {
                    return Err(RecordError::BadFragment("too many fragments"));
                }
                if bytes.len() > total_len as usize {
                    return Err(RecordError::BadFragment("piece longer than the message"));
                }
                Ok(Record::Fragment(Fragment {
                    message_id,
                    index,
                    count,
                    total_len,
                    bytes,
                }))
            }
            tag => Err(RecordError::UnknownTag(tag)),
        }
    }
}

impl<'a> Iterator for RecordReader<'a> {
    type Item = Result<Record<'a>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let record = self.next_record();
        if record.is_err() {
            // Stop at the first bad record: nothing after it can be trusted to be aligned.
            self.rest = &[];
        }
        Some(record)
    }
}

/// Packs messages into datagram plaintexts of at most `plaintext_bytes_max` bytes each.
pub struct RecordPacker {
    plaintext_bytes_max: usize,
    datagrams: Vec<Vec<u8>>,
}

impl RecordPacker {
    /// A packer for plaintexts of at most `plaintext_bytes_max` bytes (must exceed
    /// [`FRAGMENT_HEADER_LEN`]; the link's config validation guarantees it).
    pub fn new(plaintext_bytes_max: usize) -> Self {
        debug_assert!(plaintext_bytes_max > FRAGMENT_HEADER_LEN);
        RecordPacker {
            plaintext_bytes_max,
            datagrams: Vec::new(),
        }
    }

    /// Room left in the datagram being filled.
    fn room(&self) -> usize {
        match self.datagrams.last() {
            Some(d) => self.plaintext_bytes_max - d.len(),
            None => 0,
        }
    }

    fn current(&mut self, need: usize) -> &mut Vec<u8> {
        if self.room() < need {
            self.datagrams
                .push(Vec::with_capacity(self.plaintext_bytes_max));
        }
        let last = self.datagrams.len() - 1;
        &mut self.datagrams[last]
    }

    /// Add `message`; `message_id` numbers it if it must be fragmented. The caller has checked
    /// that the message is within the link's message limit.
    pub fn push(&mut self, message: &[u8], message_id: u32) {
        if WHOLE_HEADER_LEN + message.len() <= self.plaintext_bytes_max {
            let out = self.current(WHOLE_HEADER_LEN + message.len());
            out.push(TAG_WHOLE);
            out.extend_from_slice(&(message.len() as u32).to_le_bytes());
            out.extend_from_slice(message);
            return;
        }
        let piece_max = self.plaintext_bytes_max - FRAGMENT_HEADER_LEN;
        let count = message.len().div_ceil(piece_max);
        for (index, piece) in message.chunks(piece_max).enumerate() {
            let out = self.current(FRAGMENT_HEADER_LEN + piece.len());
            out.push(TAG_FRAGMENT);
            out.extend_from_slice(&message_id.to_le_bytes());
            out.extend_from_slice(&(index as u16).to_le_bytes());
            out.extend_from_slice(&(count as u16).to_le_bytes());
            out.extend_from_slice(&(message.len() as u32).to_le_bytes());
            out.extend_from_slice(&(piece.len() as u32).to_le_bytes());
            out.extend_from_slice(piece);
        }
    }

    /// Fragments `message` of `len` bytes needs at this plaintext size (1 if it fits whole).
    pub fn fragments_needed(&self, len: usize) -> usize {
        if WHOLE_HEADER_LEN + len <= self.plaintext_bytes_max {
            1
        } else {
            len.div_ceil(self.plaintext_bytes_max - FRAGMENT_HEADER_LEN)
        }
    }

    /// The filled plaintexts, in order.
    pub fn finish(self) -> Vec<Vec<u8>> {
        self.datagrams
    }
}

/// Why a fragment was dropped by reassembly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReassemblyDrop {
    /// The peer already has the maximum number of partial messages in progress.
    Overflow,
    /// The fragment claims a message longer than the limit.
    TooLarge,
    /// The fragment contradicts earlier fragments of the same message.
    Inconsistent,
}

struct Partial {
    message_id: u32,
    total_len: usize,
    pieces: Vec<Option<Vec<u8>>>,
    received_bytes: usize,
    received_pieces: usize,
    started: Time,
}

/// Reassembles the fragmented messages of one peer.
pub struct Reassembler {
    partials: Vec<Partial>,
    partials_max: usize,
    message_bytes_max: usize,
    timeout: Duration,
}

impl Reassembler {
    /// At most `partials_max` messages in progress, each at most `message_bytes_max` long and
    /// abandoned `timeout` after its first fragment.
    pub fn new(partials_max: usize, message_bytes_max: usize, timeout: Duration) -> Self {
        Reassembler {
            partials: Vec::new(),
            partials_max,
            message_bytes_max,
            timeout,
        }
    }

    /// Messages in progress.
    pub fn partials(&self) -> usize {
        self.partials.len()
    }

    /// Abandon partial messages older than the timeout; returns how many.
    pub fn expire(&mut self, now: Time) -> usize {
        let before = self.partials.len();
        let timeout = self.timeout;
        self.partials.retain(|p| now.since(p.started) < timeout);
        before - self.partials.len()
    }

    /// Take one fragment; returns the message when it completes.
    pub fn on_fragment(
        &mut self,
        now: Time,
        f: &Fragment<'_>,
    ) -> Result<Option<Vec<u8>>, ReassemblyDrop> {
        let total_len = f.total_len as usize;
        if total_len > self.message_bytes_max {
            return Err(ReassemblyDrop::TooLarge);
        }
        let slot = match self
            .partials
            .iter()
            .position(|p| p.message_id == f.message_id)
        {
            Some(i) => i,
            None => {
                self.expire(now);
                if self.partials.len() >= self.partials_max {
                    return Err(ReassemblyDrop::Overflow);
                }
                self.partials.push(Partial {
                    message_id: f.message_id,
                    total_len,
                    pieces: vec![None; f.count as usize],
                    received_bytes: 0,
                    received_pieces: 0,
                    started: now,
                });
                self.partials.len() - 1
            }
        };
        let partial = &mut self.partials[slot];
        let index = f.index as usize;
        let consistent = partial.total_len == total_len
            && partial.pieces.len() == f.count as usize
            && partial.pieces[index].is_none()
            && partial.received_bytes + f.bytes.len() <= total_len;
        if !consistent {
            self.partials.swap_remove(slot);
            return Err(ReassemblyDrop::Inconsistent);
        }
        partial.pieces[index] = Some(f.bytes.to_vec());
        partial.received_bytes += f.bytes.len();
        partial.received_pieces += 1;
        if partial.received_pieces < partial.pieces.len() {
            return Ok(None);
        }
        let partial = self.partials.swap_remove(slot);
        if partial.received_bytes != partial.total_len {
            return Err(ReassemblyDrop::Inconsistent);
        }
        let mut message = Vec::with_capacity(partial.total_len);
        for piece in partial.pieces.into_iter().flatten() {
            message.extend_from_slice(&piece);
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(plaintext: &[u8]) -> Vec<Record<'_>> {
        RecordReader::new(plaintext)
            .collect::<Result<_, _>>()
            .expect("valid records")
    }

    #[test]
    fn small_messages_share_a_datagram() {
        let mut packer = RecordPacker::new(100);
        packer.push(b"one", 0);
        packer.push(b"two", 1);
        packer.push(&[7; 90], 2);
        let datagrams = packer.finish();
        assert_eq!(datagrams.len(), 2);
        assert_eq!(
            records(&datagrams[0]),
            vec![Record::Whole(b"one"), Record::Whole(b"two")]
        );
        assert_eq!(records(&datagrams[1]), vec![Record::Whole(&[7; 90])]);
        assert!(datagrams.iter().all(|d| d.len() <= 100));
    }

    #[test]
    fn a_large_message_fragments_and_reassembles_out_of_order() {
        let message: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut packer = RecordPacker::new(1400);
        packer.push(&message, 9);
        let datagrams = packer.finish();
        assert_eq!(datagrams.len(), packer_count(1400, message.len()));
        let mut r = Reassembler::new(4, 64 * 1024, Duration::from_secs(1));
        let mut done = None;
        for d in datagrams.iter().rev() {
            for record in records(d) {
                let Record::Fragment(f) = record else {
                    panic!("expected fragments")
                };
                if let Some(m) = r.on_fragment(Time::ZERO, &f).expect("accepted") {
                    done = Some(m);
                }
            }
        }
        assert_eq!(done, Some(message));
        assert_eq!(r.partials(), 0);
    }

    fn packer_count(plaintext_max: usize, len: usize) -> usize {
        RecordPacker::new(plaintext_max).fragments_needed(len)
    }

    fn fragment(message_id: u32, index: u16, total_len: u32) -> Fragment<'static> {
        Fragment {
            message_id,
            index,
            count: 2,
            total_len,
            bytes: &[0; 10],
        }
    }

    #[test]
    fn partials_are_bounded_and_expire() {
        let mut r = Reassembler::new(2, 1000, Duration::from_millis(50));
        assert_eq!(r.on_fragment(Time::ZERO, &fragment(1, 0, 20)), Ok(None));
        assert_eq!(r.on_fragment(Time::ZERO, &fragment(2, 0, 20)), Ok(None));
        assert_eq!(
            r.on_fragment(Time::ZERO, &fragment(3, 0, 20)),
            Err(ReassemblyDrop::Overflow)
        );
        // After the timeout the old partials make room.
        assert_eq!(
            r.on_fragment(Time::from_millis(60), &fragment(3, 0, 20)),
            Ok(None)
        );
        assert_eq!(r.partials(), 1);
        assert_eq!(
            r.on_fragment(Time::from_millis(60), &fragment(4, 0, 2000)),
            Err(ReassemblyDrop::TooLarge)
        );
    }

    #[test]
    fn contradicting_or_duplicate_fragments_drop_the_message() {
        let mut r = Reassembler::new(2, 1000, Duration::from_secs(1));
        assert_eq!(r.on_fragment(Time::ZERO, &fragment(1, 0, 20)), Ok(None));
        assert_eq!(
            r.on_fragment(Time::ZERO, &fragment(1, 0, 20)),
            Err(ReassemblyDrop::Inconsistent)
        );
        assert_eq!(r.partials(), 0);
        assert_eq!(r.on_fragment(Time::ZERO, &fragment(2, 0, 20)), Ok(None));
        assert_eq!(
            r.on_fragment(Time::ZERO, &fragment(2, 1, 30)),
            Err(ReassemblyDrop::Inconsistent)
        );
    }

    #[test]
    fn malformed_records_stop_the_reader() {
        let mut bad = vec![TAG_WHOLE];
        bad.extend_from_slice(&100u32.to_le_bytes());
        bad.extend_from_slice(b"short");
        assert_eq!(
            RecordReader::new(&bad).collect::<Vec<_>>(),
            vec![Err(RecordError::Truncated)]
        );
        assert_eq!(
            RecordReader::new(&[9, 1, 2]).collect::<Vec<_>>(),
            vec![Err(RecordError::UnknownTag(9))]
        );
        let mut frag = vec![TAG_FRAGMENT];
        for field in [
            &1u32.to_le_bytes()[..],
            &5u16.to_le_bytes(),
            &2u16.to_le_bytes(),
            &4u32.to_le_bytes(),
            &0u32.to_le_bytes(),
        ] {
            frag.extend_from_slice(field);
        }
        let mut too_many = vec![TAG_FRAGMENT];
        let count = FRAGMENTS_PER_MESSAGE_MAX as u16 + 1;
        for field in [
            &1u32.to_le_bytes()[..],
            &0u16.to_le_bytes(),
            &count.to_le_bytes(),
            &4u32.to_le_bytes(),
            &0u32.to_le_bytes(),
        ] {
            too_many.extend_from_slice(field);
        }
        assert_eq!(
            RecordReader::new(&too_many).next(),
            Some(Err(RecordError::BadFragment("too many fragments")))
        );
        assert!(matches!(
            RecordReader::new(&frag).next(),
            Some(Err(RecordError::BadFragment(_)))
        ));
    }
}
