//! The tokio runtime that runs any [`stockade_core::Protocol`] for real.

pub mod config;
pub mod keys;
pub mod link;
pub mod noise;
pub mod packet;
pub mod records;
pub mod replay;
pub mod session;
pub mod stats;
pub mod storage;
pub mod timers;
