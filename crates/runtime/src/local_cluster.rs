//! Files for a local cluster on loopback (what `stockade cluster up` needs): one key file and one
//! TOML config per node, every node listing every other as a peer.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{ConfigError, LinkConfig, NodeConfig, PeerConfig};
use crate::keys::{KeyError, StaticKeypair};

/// Why the cluster's files could not be written.
#[derive(Debug, Error)]
pub enum LocalClusterError {
    /// A key could not be generated or saved.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A config could not be rendered.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ports would run past 65535.
    #[error("{nodes} nodes from port {base_port} run past port 65535; choose a lower base port")]
    Ports {
        /// Nodes asked for.
        nodes: u32,
        /// The first port.
        base_port: u16,
    },
}

/// What to write.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalClusterPlan {
    /// Number of nodes (ids 0..nodes).
    pub nodes: u32,
    /// Node `i` listens on UDP `127.0.0.1:base_port + i`.
    pub base_port: u16,
    /// Node `i` serves metrics on TCP `127.0.0.1:metrics_base_port + i`, if set.
    pub metrics_base_port: Option<u16>,
    /// Link limits of every node.
    pub link: LinkConfig,
}

fn port(base: u16, i: u32, plan: &LocalClusterPlan) -> Result<u16, LocalClusterError> {
    u16::try_from(u32::from(base) + i).map_err(|_| LocalClusterError::Ports {
        nodes: plan.nodes,
        base_port: base,
    })
}

/// Write `node{i}.key` and `node{i}.toml` for every node into `dir` (data in `node{i}-data`);
/// returns the config paths in id order.
pub fn write_local_cluster(
    dir: &Path,
    plan: &LocalClusterPlan,
) -> Result<Vec<PathBuf>, LocalClusterError> {
    std::fs::create_dir_all(dir).map_err(|source| LocalClusterError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut keys = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..plan.nodes {
        let keypair = StaticKeypair::generate()?;
        keypair.save(&dir.join(format!("node{i}.key")))?;
        keys.push(keypair);
        addrs.push(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port(plan.base_port, i, plan)?,
        )));
    }
    let mut paths = Vec::new();
    for i in 0..plan.nodes {
        let peers = (0..plan.nodes)
            .filter(|&j| j != i)
            .map(|j| PeerConfig {
                id: j,
                addr: addrs[j as usize],
                public_key: keys[j as usize].public().to_string(),
            })
            .collect();
        let metrics = match plan.metrics_base_port {
            Some(base) => Some(SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                port(base, i, plan)?,
            ))),
            None => None,
        };
        let config = NodeConfig {
            id: i,
            listen: addrs[i as usize],
            key_file: format!("node{i}.key").into(),
            peers,
            data_dir: format!("node{i}-data").into(),
            metrics,
            link: plan.link.clone(),
        };
        let path = dir.join(format!("node{i}.toml"));
        std::fs::write(&path, config.to_toml()?).map_err(|source| LocalClusterError::Io {
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_config_loads_and_knows_every_other_node() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let plan = LocalClusterPlan {
            nodes: 4,
            base_port: 7100,
            metrics_base_port: Some(9100),
            link: LinkConfig::default(),
        };
        let paths = write_local_cluster(dir.path(), &plan)?;
        assert_eq!(paths.len(), 4);
        let configs: Vec<NodeConfig> = paths
            .iter()
            .map(|p| NodeConfig::load(p))
            .collect::<Result<_, _>>()?;
        for (i, config) in configs.iter().enumerate() {
            assert_eq!(config.listen.port(), 7100 + i as u16);
            assert_eq!(config.metrics.map(|m| m.port()), Some(9100 + i as u16));
            let me = StaticKeypair::load(&config.key_file)?;
            for other in configs.iter().filter(|c| c.id != config.id) {
                let entry = other
                    .parsed_peers()?
                    .into_iter()
                    .find(|p| p.id == config.node_id());
                assert_eq!(
                    entry.map(|p| (p.addr, p.public_key)),
                    Some((config.listen, me.public()))
                );
            }
        }
        let too_high = LocalClusterPlan {
            base_port: 65_534,
            ..plan
        };
        assert!(matches!(
            write_local_cluster(dir.path(), &too_high),
            Err(LocalClusterError::Ports { .. })
        ));
        Ok(())
    }
}
