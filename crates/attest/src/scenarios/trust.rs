//! `la-trust`: cooperative worm containment on a trust network (paper 000, section "Partitioned
//! trust networks"). A member accepts a worm signature only when it reaches the signature's origin
//! along at least `byzantine + 1` vertex-disjoint attestation paths. Byzantine members attest a
//! bad origin; a correct origin is accepted everywhere and the bad one nowhere.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use stockade_core::NodeId;
use stockade_sim::{RunOptions, Scenario, ScenarioError, ScenarioOutcome, Topology};

use super::{chain_joins, create_group, finish, group_world, join_all, scenario_link};
use crate::group::{GroupConfig, GroupRequest};
use crate::robust::trusted_by_disjoint_paths;

/// The scenario.
pub struct TrustScenario;

impl Scenario for TrustScenario {
    fn name(&self) -> &'static str {
        "la-trust"
    }

    fn description(&self) -> &'static str {
        "LA-groups: accept a worm signature only over byzantine+1 vertex-disjoint attestation paths; \
         Byzantine members attesting a bad origin cannot get it accepted [--members 10 --byzantine 2]"
    }

    fn run(&self, options: &RunOptions) -> Result<ScenarioOutcome, ScenarioError> {
        options.reject_unknown(&["members", "byzantine"])?;
        let members = options.u64_arg("members", 10)?;
        let byzantine = options.u64_arg("byzantine", 2)?;
        if !(5..=15).contains(&members) {
            return Err(ScenarioError::OutOfRange {
                name: "members".into(),
                reason: "between 5 and 15".into(),
            });
        }
        // Each member attests four others, so at most four disjoint paths reach any origin.
        if byzantine == 0 || byzantine > 3 || 3 * byzantine >= members {
            return Err(ScenarioError::OutOfRange {
                name: "byzantine".into(),
                reason: "between 1 and 3, and fewer than a third of --members".into(),
            });
        }
        let (count, f) = (members as u32, byzantine as u32);
        let bad_origin = NodeId(count);
        let good_origin = NodeId(count / 2);
        let liars: BTreeSet<NodeId> = (0..f).map(|j| NodeId(j * count / f + 1)).collect();
        let topology = Topology::full_mesh(count + 1, scenario_link());
        let repro_args = format!(" --members {members} --byzantine {byzantine}");
        let mut world = group_world(
            self.name(),
            options.seed,
            &repro_args,
            topology,
            GroupConfig::default(),
        )?;
        let run = (|| {
            let group = create_group(&mut world, NodeId(0))?;
            let chain = chain_joins(count);
            join_all(&mut world, group, &chain)?;
            // Close the ring and add the second neighbours: every member attests i +- 1 and i +- 2.
            for i in 0..count {
                for step in [1, 2, count - 1, count - 2] {
                    let node = NodeId((i + step) % count);
                    world.request(
                        NodeId(i),
                        GroupRequest::Attest {
                            group,
                            node,
                            info: Vec::new(),
                        },
                    );
                }
            }
            // The Byzantine members vouch for the bad origin, which joins through one of them.
            let Some(&contact) = liars.iter().next() else {
                return Err("no Byzantine member".to_string());
            };
            join_all(&mut world, group, &[(bad_origin, contact)])?;
            for &liar in &liars {
                world.request(
                    liar,
                    GroupRequest::Attest {
                        group,
                        node: bad_origin,
                        info: Vec::new(),
                    },
                );
            }
            world
                .run_for(Duration::from_secs(2))
                .map_err(|e| e.to_string())?;
            Ok(group)
        })();
        let group = match run {
            Ok(group) => group,
            Err(e) => return finish(&world, options, json!({}), Some(e)),
        };
        let now = world.now();
        let paths_min = (f + 1) as usize;
        let verifiers: Vec<NodeId> = (0..count)
            .map(NodeId)
            .filter(|v| !liars.contains(v) && *v != good_origin)
            .collect();
        let (mut accepted_good, mut accepted_bad, mut failure) = (0, 0, None);
        for &v in &verifiers {
            let Some(graph) = world.protocol(v).and_then(|p| p.graph(group, now)) else {
                failure = Some(format!("{v} holds no view"));
                continue;
            };
            let accepts =
                |origin| trusted_by_disjoint_paths(&graph, v, origin, paths_min).unwrap_or(false);
            accepted_good += accepts(good_origin) as u32;
            accepted_bad += accepts(bad_origin) as u32;
        }
        if accepted_bad > 0 {
            failure = Some(format!(
                "{accepted_bad} correct members accepted the bad origin's signature"
            ));
        } else if accepted_good as usize != verifiers.len() {
            failure = Some(format!(
                "only {accepted_good} of {} accepted the good origin",
                verifiers.len()
            ));
        }
        let headline = json!({
            "members": members,
            "byzantine": byzantine,
            "paths_required": paths_min,
            "verifiers": verifiers.len(),
            "accepted_good_origin": accepted_good,
            "accepted_bad_origin": accepted_bad,
        });
        finish(&world, options, headline, failure)
    }
}
