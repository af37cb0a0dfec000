//! Run the unreplicated baseline server on 127.0.0.1 (for redis-cli and redis-benchmark).
//!
//! Run: `cargo run --release -p stockade-kv --features net --example unreplicated_server [port]`
//! (default port 6399). It is the baseline of paper 001's comparison, not the product.

use std::net::{Ipv4Addr, SocketAddr};

use stockade_kv::unreplicated::{UnreplicatedConfig, UnreplicatedServer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(6399u16);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = UnreplicatedServer::bind(addr, UnreplicatedConfig::default()).await?;
    println!(
        "unreplicated stockade-kv listening on {}",
        server.local_addr()?
    );
    server.run().await
}
