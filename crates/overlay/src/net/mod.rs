//! The real overlay daemon (feature `net`): an [`crate::service::OverlayService`] node over the
//! runtime's Noise/UDP links, configured by a TOML file ([`config`]), with a local control
//! interface of JSON lines over TCP ([`control`]) served by [`daemon`], which passes multicasts
//! and anycasts to subscribed connections ([`watchers`]), and the blocking client the command
//! line uses ([`client`]).

pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(test)]
mod tests;
pub mod watchers;

use std::net::SocketAddr;

use stockade_runtime::config::ConfigError;
use stockade_runtime::keys::KeyError;
use stockade_runtime::NodeError;
use thiserror::Error;

pub use client::{ClientError, ControlClient};
pub use config::{OverlayNodeConfig, OverlaySettings};
pub use control::ControlRequest;
pub use daemon::OverlayDaemon;

/// Why a daemon could not start or stopped.
#[derive(Debug, Error)]
pub enum NetError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Noise key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The node could not start or failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The control interface could not listen.
    #[error("control interface {addr}: {source}; is another process using the port?")]
    Control {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
