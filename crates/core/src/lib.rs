//! The protocol core: the sans-IO boundary that every stockade protocol is written against.
//!
//! A protocol is a plain synchronous state machine ([`Protocol`]). It never reads a clock, a socket,
//! a disk or OS randomness: a driver (the simulator in `stockade-sim`, or the tokio runtime in
//! `stockade-runtime`) feeds it inputs through a [`Context`] and carries out the [`Effect`]s it
//! emits. The same protocol code therefore runs bit-for-bit reproducibly in simulation and for real.
//!
//! Start reading at [`protocol`]; the wire format helpers are in [`wire`].

pub mod cost;
pub mod id;
pub mod protocol;
pub mod store;
pub mod time;
pub mod wire;

pub use cost::{CostKind, CostTable, CpuWork};
pub use id::NodeId;
pub use protocol::{Context, Effect, InvariantViolation, PersistToken, Protocol};
pub use store::{MemStore, StoreOp, StoreRead};
pub use time::Time;
pub use wire::{DecodeError, DecodeLimits, Reader, Wire};

/// Re-exported so protocols name one RNG trait: the driver's seeded RNG is reached as `dyn RngCore`.
pub use rand_core::RngCore;
