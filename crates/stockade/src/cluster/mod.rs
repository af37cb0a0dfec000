//! Bracha broadcast as a real local cluster: the node process (`broadcast-node`), its config, the
//! faults it can inject, and the controller that starts a committee of processes on loopback.

pub mod config;
pub mod faults;
pub mod node;
pub mod process;
