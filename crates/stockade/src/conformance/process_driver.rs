//! The conformance suite's real driver: `3f + 1` `stockade broadcast-node` processes on loopback,
//! talking over the runtime's Noise/UDP links; loss and the Byzantine attack are injected by the
//! nodes themselves ([`crate::cluster::faults`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stockade_broadcast::BroadcastConfig;
use stockade_core::NodeId;

use super::{Committee, CommitteeSpec, ConformanceDriver, Deliveries};
use crate::cluster::faults::InjectedFaults;
use crate::cluster::process::{ClusterPlan, NodeEvent, ProcessCluster};

/// Runs conformance cases as real processes of the `stockade` binary at `exe`.
pub struct ProcessDriver {
    /// The `stockade` binary.
    pub exe: PathBuf,
    /// A directory for keys, configs and logs (one sub-directory per committee).
    pub dir: PathBuf,
}

struct ProcessCommittee {
    cluster: ProcessCluster,
    deliveries: Deliveries,
}

impl ConformanceDriver for ProcessDriver {
    fn start(&self, spec: &CommitteeSpec) -> anyhow::Result<Box<dyn Committee>> {
        BroadcastConfig::for_faults(spec.f).validate()?;
        let n = 3 * spec.f + 1;
        let faults: BTreeMap<NodeId, InjectedFaults> = (0..n as u32)
            .map(|i| {
                let byzantine = spec.byzantine == Some(NodeId(i));
                (
                    NodeId(i),
                    InjectedFaults {
                        inbound_loss: spec.loss,
                        byzantine,
                    },
                )
            })
            .collect();
        let dir = tempfile_dir(&self.dir)?;
        let cluster = ProcessCluster::start(
            &self.exe,
            &dir,
            &ClusterPlan {
                f: spec.f,
                base_port: None,
                faults,
            },
        )?;
        Ok(Box::new(ProcessCommittee {
            cluster,
            deliveries: Deliveries::new(),
        }))
    }
}

/// A fresh numbered sub-directory of `parent`.
fn tempfile_dir(parent: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    for i in 0..10_000 {
        let dir = parent.join(format!("committee-{i}"));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    anyhow::bail!("no free committee directory under {}", parent.display())
}

impl Committee for ProcessCommittee {
    fn broadcast(&mut self, origin: NodeId, payload: Vec<u8>) -> anyhow::Result<()> {
        self.cluster.broadcast(origin, &payload)
    }

    fn run_until(
        &mut self,
        timeout: Duration,
        done: &dyn Fn(&Deliveries) -> bool,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        while !done(&self.deliveries) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            if let Some((node, _, NodeEvent::Delivered { instance, payload })) =
                self.cluster.next_event(left)
            {
                self.deliveries
                    .entry(node)
                    .or_default()
                    .insert(instance, payload);
            }
        }
        Ok(true)
    }

    fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    fn finish(&mut self) -> anyhow::Result<BTreeMap<NodeId, serde_json::Value>> {
        let stats = self.cluster.quit_all(|_, _, _| {});
        Ok(stats
            .into_iter()
            .map(|(node, s)| (node, s["broadcast"].clone()))
            .collect())
    }
}
