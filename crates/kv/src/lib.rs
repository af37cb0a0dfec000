//! The Redis-compatible key-value service that stockade replicates (paper 004, section 5: the
//! replicated service; DESIGN.md section 7: unmodified Redis clients must work).
//!
//! - [`command`]: RESP argument vectors parsed into typed, validated [`Command`]s, classified as
//!   read, write or connection-local, with a canonical binary encoding.
//! - [`state`]: the deterministic [`StateMachine`] that executes ordered commands at agreed times.
//! - [`reply`]: [`Reply`], independent of RESP version, with a binary encoding for votes.
//! - [`resp`]: the server-side RESP2/RESP3 codec with bounded frames and pipelining.
//! - [`session`]: one client connection's local state and the answers to PING, HELLO, CONFIG, ...
//! - [`checkpoint`]: deterministic snapshots, digests, restore, and incremental persistence.
//! - [`large_reply`]: replies over one Prime reply's size, voted on by digest and fetched.
//! - [`replicated`]: the state machine as a Prime application; [`replica`]: one Prime server
//!   running it, with persistence.
//! - [`attack`]: a schedule that makes a server misbehave on purpose (demonstrations, tests);
//!   `attack_control` (feature `net`) changes a running server's attack from a file.
//! - [`voting`]: the voting client (f+1 matching signed replies), sans-IO; [`verified_roots`]: the
//!   servers' batch signatures, each checked once.
//! - Feature `net` (tokio): `server` (a Prime replica on `stockade-runtime` with its own RESP
//!   port), `proxy` (the voting proxy for unmodified Redis clients), `cluster` (a local cluster of
//!   processes), and their shared `connection` front end and `service_config`.
//! - `unreplicated` (feature `net`): a single-node TCP server, the baseline for paper 001's
//!   "replicated within 25% of unreplicated" comparison. Not the product.

pub mod attack;
#[cfg(feature = "net")]
pub mod attack_control;
pub mod checkpoint;
#[cfg(feature = "net")]
pub mod cluster;
pub mod command;
#[cfg(feature = "net")]
pub mod connection;
pub mod error;
pub mod glob;
pub mod large_reply;
#[cfg(feature = "net")]
pub mod large_reply_fetch;
pub mod limits;
pub mod number;
#[cfg(feature = "net")]
pub mod proxy;
pub mod replica;
pub mod replicated;
pub mod reply;
pub mod resp;
#[cfg(feature = "net")]
pub mod server;
#[cfg(feature = "net")]
pub mod service_config;
pub mod session;
pub mod state;
#[cfg(feature = "net")]
pub mod unreplicated;
pub mod verified_roots;
pub mod voting;

pub use checkpoint::{CheckpointError, Digest};
pub use command::{Command, CommandClass, LocalCommand};
pub use error::KvError;
pub use limits::Limits;
pub use reply::Reply;
pub use resp::{ProtocolError, RequestDecoder, RespLimits, RespVersion};
pub use session::Session;
pub use state::StateMachine;
