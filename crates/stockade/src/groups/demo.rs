//! `stockade groups demo`: a live LA-group of N members in the deterministic simulator (paper 000).
//!
//! The network is a ring where each member is linked to its two neighbours on each side. Member 0
//! creates the group, the others join one after another through their predecessor, and every
//! member monitors the members it has a link to (section "Discussion: stateful monitoring"), so
//! attestations appear exactly where links work. Optionally one member then crashes: its
//! neighbours' monitors withdraw and every view drops it once the attestations expire. The command
//! prints member 0's view and attestation graph, checks that every member holds the same view,
//! and writes the graph as `graph.dot` and `graph.svg` under `--out`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::json;
use stockade_attest::attestation::GroupId;
use stockade_attest::group::{GroupConfig, GroupOutput, GroupRequest, LaGroups};
use stockade_attest::keys::SchemeKeys;
use stockade_attest::monitor::LivenessMonitor;
use stockade_core::{CostTable, NodeId};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_sim::{Adjacency, LinkSpec, SimConfig, Topology, World};

use super::render::GraphPicture;
use crate::cli::GroupsDemoArgs;
use crate::headline::{print_headline, Verdict};

/// Most members `groups demo` runs (the picture stops being readable well before).
pub const DEMO_MEMBERS_MAX: u32 = 64;
/// Links on each side of a member along the ring.
const RING_REACH: u32 = 2;
/// One-way latency of every link.
const LINK_LATENCY: Duration = Duration::from_millis(20);
/// Bandwidth of every link.
const LINK_BANDWIDTH_BPS: u64 = 10_000_000;
/// Time a join is given to settle before the next member joins.
const JOIN_SETTLE: Duration = Duration::from_millis(500);
/// Attestations' validity in the demo (short, so a crash shows within simulated seconds).
const ATTESTATION_VALIDITY: Duration = Duration::from_secs(6);
/// Missed probes before a monitor withdraws its attestation.
const MONITOR_MISSES_MAX: u32 = 2;
/// Time the monitors are given to attest every working link.
const MONITOR_SETTLE: Duration = Duration::from_secs(3);

/// What a demo run showed.
#[derive(Clone, Debug)]
pub struct DemoResult {
    /// The group.
    pub group: GroupId,
    /// Member 0's picture of the group: view and attestations.
    pub picture: GraphPicture,
    /// Members whose view differs from member 0's.
    pub disagreeing: Vec<NodeId>,
    /// Strongly connected components of the attestation graph.
    pub components: usize,
    /// Vertex connectivity of the attestation graph (failures the group survives connected, + 1).
    pub vertex_connectivity: usize,
    /// Simulated seconds the run took.
    pub sim_seconds: f64,
}

/// Run a group of `members` members (crashing `crash` once it formed) and report member 0's view.
pub fn simulate(members: u32, crash: Option<NodeId>, seed: u64) -> anyhow::Result<DemoResult> {
    if !(3..=DEMO_MEMBERS_MAX).contains(&members) {
        bail!("--members must be between 3 and {DEMO_MEMBERS_MAX}, got {members}");
    }
    if let Some(node) = crash {
        if node.0 == 0 || node.0 >= members {
            bail!(
                "--crash must name a member other than 0 (1 to {}), got {}",
                members - 1,
                node.0
            );
        }
    }
    let neighbours = |i: u32| -> Vec<NodeId> {
        let reach = RING_REACH.min((members - 1) / 2);
        (1..=reach)
            .flat_map(|d| [(i + d) % members, (i + members - d) % members])
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .map(NodeId)
            .collect()
    };
    let edges = (0..members).flat_map(|i| neighbours(i).into_iter().map(move |n| (NodeId(i), n)));
    let adjacency = Adjacency::from_edges(members, edges).context("building the ring")?;
    let topology = Topology::sparse(
        Arc::new(adjacency),
        LinkSpec::wan(LINK_LATENCY, LINK_BANDWIDTH_BPS),
    );
    let config = GroupConfig {
        attestation_validity: ATTESTATION_VALIDITY,
        refresh_interval: ATTESTATION_VALIDITY / 3,
        ..GroupConfig::default()
    };
    config
        .validate()
        .context("the demo's group configuration")?;
    let keys = SimulationKeys::new(CryptoMode::SimFast, seed);
    let mut sim_config = SimConfig::new("groups-demo", seed);
    sim_config.crypto_mode = CryptoMode::SimFast.describe().to_string();
    sim_config.cost_table = CostTable::design_defaults();
    let mut world = World::new(sim_config, topology, move |id, _store| {
        let node_keys = SchemeKeys::for_simulation(&keys, id, (0..members).map(NodeId));
        LaGroups::new(id, config.clone(), Box::new(node_keys))
            .with_view_signing(keys.multi_signer(id.0))
    })
    .context("building the simulated group")?;

    world.request(NodeId(0), GroupRequest::Create);
    world.run_for(Duration::from_millis(1))?;
    let group = world
        .take_outputs()
        .into_iter()
        .find_map(|d| match d.output {
            GroupOutput::Created { group } => Some(group),
            _ => None,
        })
        .context("member 0 did not create the group")?;
    for joiner in 1..members {
        world.request(
            NodeId(joiner),
            GroupRequest::Join {
                group,
                contacts: vec![NodeId(joiner - 1)],
            },
        );
        world.run_for(JOIN_SETTLE)?;
    }
    for member in 0..members {
        for node in neighbours(member) {
            world.request(
                NodeId(member),
                GroupRequest::Monitor {
                    group,
                    node,
                    monitor: Box::new(LivenessMonitor::new(MONITOR_MISSES_MAX)),
                },
            );
        }
    }
    world.run_for(MONITOR_SETTLE)?;
    if let Some(node) = crash {
        world.crash(node)?;
        world.run_for(ATTESTATION_VALIDITY * 2)?;
    }

    let now = world.now();
    let observer = world.protocol(NodeId(0)).context("member 0 exists")?;
    let view = observer.view(group, now).unwrap_or_default();
    let graph = observer.graph(group, now).unwrap_or_default();
    let disagreeing = (0..members)
        .map(NodeId)
        .filter(|&n| Some(n) != crash)
        .filter(|&n| world.protocol(n).and_then(|p| p.view(group, now)).as_ref() != Some(&view))
        .collect();
    let mut nodes: BTreeSet<NodeId> = (0..members).map(NodeId).collect();
    nodes.extend(graph.nodes());
    Ok(DemoResult {
        group,
        picture: GraphPicture {
            title: format!("LA-groups {group}: view of member 0"),
            nodes,
            view,
            attestations: graph.edges().map(|(from, to, _)| (from, to)).collect(),
        },
        disagreeing,
        components: graph.strongly_connected_components().len(),
        vertex_connectivity: graph.vertex_connectivity(),
        sim_seconds: now.as_secs_f64(),
    })
}

/// `stockade groups demo`: run the group, print its view and graph, write the pictures.
pub fn run(args: &GroupsDemoArgs) -> anyhow::Result<Verdict> {
    let result = simulate(args.members, args.crash.map(NodeId), args.seed)?;
    let picture = &result.picture;
    println!(
        "LA-groups {}: {} members, {:.1} simulated seconds{}",
        result.group,
        args.members,
        result.sim_seconds,
        args.crash
            .map(|n| format!(" (member {n} crashed)"))
            .unwrap_or_default()
    );
    print!("{}", picture.describe(NodeId(0)));
    println!(
        "attestation graph: {} attestations, {} strongly connected component(s), vertex connectivity {}",
        picture.attestations.len(),
        result.components,
        result.vertex_connectivity
    );
    let files = match &args.out {
        Some(dir) => write_pictures(picture, dir)?,
        None => {
            print!("{}", picture.to_dot());
            Vec::new()
        }
    };
    for file in &files {
        println!("wrote {file}");
    }
    let expected_view = args.members as usize - usize::from(args.crash.is_some());
    let passed = result.disagreeing.is_empty() && picture.view.len() == expected_view;
    if !passed {
        println!(
            "FAILED: member 0 sees {} members (expected {expected_view}); views differ at {:?}",
            picture.view.len(),
            result.disagreeing
        );
    }
    print_headline(&json!({
        "command": "groups demo",
        "members": args.members,
        "crashed": args.crash,
        "view_size": picture.view.len(),
        "views_agree": result.disagreeing.is_empty(),
        "attestations": picture.attestations.len(),
        "strongly_connected_components": result.components,
        "vertex_connectivity": result.vertex_connectivity,
        "sim_seconds": result.sim_seconds,
        "files": files,
    }));
    Ok(Verdict::from_passed(passed))
}

/// Write `graph.dot` and `graph.svg` into `dir`; returns their paths.
pub fn write_pictures(picture: &GraphPicture, dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("graph.dot", picture.to_dot()),
        ("graph.svg", picture.to_svg()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
