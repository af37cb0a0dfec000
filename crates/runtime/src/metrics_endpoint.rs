//! The Prometheus endpoint: one per process, serving every node's counters (labelled `node`).

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;
use thiserror::Error;

/// Why the endpoint could not start.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// Only loopback addresses are served: the endpoint has no authentication.
    #[error("metrics address {0} is not a loopback address; use 127.0.0.1")]
    NotLoopback(SocketAddr),
    /// The exporter failed (port in use, or a recorder already installed in this process).
    #[error("metrics endpoint on {addr}: {message}")]
    Exporter {
        /// The address.
        addr: SocketAddr,
        /// The exporter's description of the failure.
        message: String,
    },
}

/// Serve Prometheus metrics over HTTP on `addr` (any path answers with the text format).
/// Call once per process, from inside a tokio runtime.
pub fn serve_metrics(addr: SocketAddr) -> Result<(), MetricsError> {
    if !addr.ip().is_loopback() {
        return Err(MetricsError::NotLoopback(addr));
    }
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| MetricsError::Exporter {
            addr,
            message: e.to_string(),
        })
}
