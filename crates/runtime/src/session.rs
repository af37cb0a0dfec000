//! One established Noise session with a peer (snow's stateless transport, an explicit nonce per
//! datagram, a replay window) and one handshake this node initiated and awaits an answer to.

use snow::{HandshakeState, StatelessTransportState};
use stockade_core::Time;

use crate::noise::Mac16;
use crate::packet::{DataHeader, DATA_HEADER_LEN};
use crate::replay::{ReplayVerdict, ReplayWindow};

/// A session never seals more than this many datagrams (far below where the 64-bit nonce could
/// wrap); the link rekeys long before.
pub const SESSION_MESSAGES_MAX: u64 = u64::MAX - (1 << 16);

/// An established session.
pub struct Session {
    transport: StatelessTransportState,
    /// Our index: datagrams to us on this session carry it.
    pub local_index: u32,
    /// The peer's index: datagrams we send on this session carry it.
    pub remote_index: u32,
    /// The nonce of the next datagram we seal.
    pub send_nonce: u64,
    replay: ReplayWindow,
    /// When the handshake completed.
    pub born: Time,
    /// Whether this node initiated the handshake (only the initiator rekeys on age).
    pub initiator: bool,
}

/// Why an incoming datagram was refused by its session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpenError {
    /// The nonce was accepted before.
    Replayed,
    /// The nonce is behind the replay window.
    TooOld,
    /// The tag did not verify.
    BadAuth,
}

impl Session {
    /// A session from a finished handshake.
    pub fn new(
        transport: StatelessTransportState,
        local_index: u32,
        remote_index: u32,
        born: Time,
        initiator: bool,
    ) -> Session {
        Session {
            transport,
            local_index,
            remote_index,
            send_nonce: 0,
            replay: ReplayWindow::new(),
            born,
            initiator,
        }
    }

    /// Seal `plaintext` into a data datagram with the next nonce.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, snow::Error> {
        let nonce = self.send_nonce;
        let mut out = vec![0u8; DATA_HEADER_LEN + plaintext.len() + crate::noise::AEAD_TAG_LEN];
        DataHeader::write(&mut out, self.remote_index, nonce);
        let written =
            self.transport
                .write_message(nonce, plaintext, &mut out[DATA_HEADER_LEN..])?;
        out.truncate(DATA_HEADER_LEN + written);
        self.send_nonce += 1;
        Ok(out)
    }

    /// Authenticate and decrypt a data datagram: replay check first (no AEAD work for replays),
    /// then the tag, then the window moves.
    pub fn open(&mut self, header: &DataHeader<'_>) -> Result<Vec<u8>, OpenError> {
        match self.replay.check(header.nonce) {
            ReplayVerdict::Fresh => {}
            ReplayVerdict::Replayed => return Err(OpenError::Replayed),
            ReplayVerdict::TooOld => return Err(OpenError::TooOld),
        }
        let mut plaintext = vec![0u8; header.ciphertext.len()];
        let len = self
            .transport
            .read_message(header.nonce, header.ciphertext, &mut plaintext)
            .map_err(|_| OpenError::BadAuth)?;
        plaintext.truncate(len);
        self.replay.accept(header.nonce);
        Ok(plaintext)
    }
}

/// A handshake this node initiated.
pub struct PendingHandshake {
    /// The Noise state awaiting the response.
    pub state: HandshakeState,
    /// Our index for the session it will create.
    pub local_index: u32,
    /// The initiation as sent (resent with a `mac2` once a cookie arrives).
    pub packet: Vec<u8>,
    /// The initiation's `mac1`: a cookie reply must be bound to it.
    pub mac1: Mac16,
    /// When the last initiation for this peer left.
    pub sent_at: Time,
    /// Initiations sent so far.
    pub attempts: u32,
}
