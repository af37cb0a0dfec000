//! Whole-protocol tests: N in-memory Prime nodes wired by the in-test pump of
//! [`crate::test_support`], checking agreement, total order and execution of every update.

use std::time::Duration;

use stockade_core::Time;

use crate::app::Application;
use crate::config::PrimeConfig;
use crate::messages::PrimeMessage;
use crate::replica::PrimeOutput;
use crate::test_support::{node_with_auth, real_auth, update, Pump};

fn replies(pump: &Pump, i: usize) -> usize {
    pump.outputs[i]
        .iter()
        .filter(|o| matches!(o, PrimeOutput::Reply(_)))
        .count()
}

/// PRIME.md steps 1-11 end to end: updates submitted at every server are pre-ordered, globally
/// ordered and executed in the same order everywhere; each originator replies to its own clients.
#[test]
fn normal_case_executes_every_update_in_one_order() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    for seq in 1..=5 {
        for server in 0..4 {
            pump.submit(server, update(server as u64 * 10, seq));
        }
        pump.run_for(Duration::from_millis(3));
    }
    pump.run_until(Time::from_millis(400));
    pump.check_agreement();
    let reference = &pump.nodes[0].app().log;
    assert_eq!(reference.len(), 20, "all 20 updates executed");
    for node in &pump.nodes {
        assert_eq!(
            &node.app().log,
            reference,
            "same execution order everywhere"
        );
        assert!(node.executed_seq() >= 1);
        assert_eq!(node.last_executed(), &[5, 5, 5, 5]);
        assert!(node.misbehaving().is_empty());
    }
    for i in 0..4 {
        assert_eq!(
            replies(&pump, i),
            5,
            "server {i} replies to each of its client's updates"
        );
    }
    // Each client's updates run in its own order.
    let c10: Vec<u64> = reference
        .iter()
        .filter(|e| e.1 .0 == 10)
        .map(|e| e.2)
        .collect();
    assert_eq!(c10, vec![1, 2, 3, 4, 5]);
}

/// The same normal case with real Ed25519 signatures over Merkle batches.
#[test]
fn normal_case_with_real_signatures() {
    let cfg = PrimeConfig::new(1, 0);
    let nodes = (0..4u16)
        .map(|i| node_with_auth(&cfg, i, real_auth(4, i)))
        .collect();
    let mut pump = Pump::with_nodes(nodes, Duration::from_millis(1));
    for seq in 1..=3 {
        pump.submit(seq as usize, update(seq, 1));
        pump.run_for(Duration::from_millis(5));
    }
    pump.run_until(Time::from_millis(200));
    pump.check_agreement();
    for node in &pump.nodes {
        assert_eq!(node.app().log.len(), 3);
        assert_eq!(node.drops().bad_signature, 0);
    }
}

/// PRIME.md "Reconciliation": a faulty originator sends its PO-REQUESTs to only some servers; the
/// designated holders send them on once they become eligible, so every server executes them.
#[test]
fn reconciliation_delivers_requests_an_originator_withheld() {
    use std::cell::Cell;
    use std::rc::Rc;
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let forwarded_to_0 = Rc::new(Cell::new(0));
    let counter = forwarded_to_0.clone();
    pump.drop_rule = Box::new(move |from, to, m| {
        match m {
            // The originator withholds its requests from server 0.
            PrimeMessage::PoRequest(r) => r.signer.0 == 3 && from.0 == 3 && to.0 == 0,
            PrimeMessage::PoCertificate(c) => {
                if c.request.signer.0 == 3 && to.0 == 0 {
                    counter.set(counter.get() + 1);
                }
                false
            }
            _ => false,
        }
    });
    for seq in 1..=3 {
        pump.submit(3, update(30, seq));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_until(Time::from_millis(400));
    pump.check_agreement();
    assert!(
        forwarded_to_0.get() >= 1,
        "someone other than the originator sent server 0 the requests"
    );
    for node in &pump.nodes {
        assert_eq!(node.app().log.len(), 3);
        assert_eq!(node.last_executed()[3], pump.nodes[3].last_executed()[3]);
    }
}

/// PRIME.md "Catch-up": a server cut off while the others order slots asks for what it missed and
/// executes from the ordering certificates and PO-REQUESTs it receives.
#[test]
fn cut_off_server_catches_up_from_certificates() {
    use std::cell::Cell;
    use std::rc::Rc;
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let cut = Rc::new(Cell::new(true));
    let certificates = Rc::new(Cell::new(0));
    let (cut_rule, cert_count) = (cut.clone(), certificates.clone());
    pump.drop_rule = Box::new(move |from, to, m| {
        if matches!(m, PrimeMessage::OrderCertificate(_)) && to.0 == 2 {
            cert_count.set(cert_count.get() + 1);
        }
        cut_rule.get() && (from.0 == 2 || to.0 == 2)
    });
    for seq in 1..=6 {
        pump.submit(seq as usize % 2, update(seq % 2, seq));
        pump.run_for(Duration::from_millis(15));
    }
    pump.run_until(Time::from_millis(300));
    assert_eq!(
        pump.nodes[0].app().log.len(),
        6,
        "three servers order and execute without the fourth"
    );
    assert_eq!(pump.nodes[2].executed_seq(), 0);
    cut.set(false);
    pump.run_until(Time::from_millis(1500));
    pump.check_agreement();
    assert!(
        certificates.get() >= 1,
        "server 2 received ordering certificates"
    );
    assert_eq!(pump.nodes[2].app().log, pump.nodes[0].app().log);
    assert_eq!(pump.nodes[2].executed_seq(), pump.nodes[0].executed_seq());
}

/// Step 11: a client's update submitted twice (to two servers) executes once; every server sends a
/// signed reply to the client's `reply_to` address.
#[test]
fn duplicate_updates_execute_once_and_every_server_replies_to_reply_to() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let mut u = update(77, 1);
    u.reply_to = Some(stockade_core::NodeId(500));
    pump.submit(1, u.clone());
    pump.submit(2, u);
    pump.run_until(Time::from_millis(300));
    pump.check_agreement();
    for node in &pump.nodes {
        assert_eq!(node.app().log.len(), 1, "executed once");
    }
    let replies: Vec<_> = pump
        .to_clients
        .iter()
        .filter_map(|(to, m)| match m {
            PrimeMessage::Reply(r) if to.0 == 500 => Some(r.signer),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies.len(),
        4,
        "one signed reply from each server: {replies:?}"
    );
}

/// Signed replies to `reply_to` address 500 in `pump.to_clients`.
fn replies_to_500(pump: &Pump) -> usize {
    pump.to_clients
        .iter()
        .filter(|(to, m)| to.0 == 500 && matches!(m, PrimeMessage::Reply(_)))
        .count()
}

/// PRIME.md step 11 (each server keeps the last reply per client): a client whose replies were
/// lost re-submits an update that already executed; the servers it asks answer with the cached
/// reply instead of staying silent, and the update does not execute again.
#[test]
fn a_re_submitted_executed_update_gets_the_cached_reply() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let mut u = update(77, 1);
    u.reply_to = Some(stockade_core::NodeId(500));
    pump.submit(1, u.clone());
    pump.run_until(Time::from_millis(300));
    assert_eq!(replies_to_500(&pump), 4, "every server replied once");
    let first = pump.to_clients.clone();
    pump.submit(1, u.clone());
    pump.submit(3, u);
    pump.run_for(Duration::from_millis(100));
    let again: Vec<_> = pump.to_clients[first.len()..]
        .iter()
        .filter_map(|(_, m)| match m {
            PrimeMessage::Reply(r) => Some((r.signer.0, r.body.seq, r.body.global_seq)),
            _ => None,
        })
        .collect();
    let global_seq = again.first().map_or(0, |r| r.2);
    assert_eq!(again, vec![(1, 1, global_seq), (3, 1, global_seq)]);
    for node in &pump.nodes {
        assert_eq!(node.app().log.len(), 1, "executed once");
        assert!(
            !pump.outputs[node.me.index()]
                .iter()
                .any(|o| matches!(o, PrimeOutput::Rejected { .. })),
            "answered, not rejected"
        );
    }

    // A server's own client (no reply_to) re-submitting through another server, while the
    // first is still ordering it: the second server's PO-REQUEST repeats the update, execution
    // skips it, and the second server delivers the cached reply to its client.
    let own = update(78, 1);
    pump.submit(0, own.clone());
    pump.submit(2, own);
    pump.run_for(Duration::from_millis(300));
    for server in [0, 2] {
        let replies = pump.outputs[server]
            .iter()
            .filter(|o| matches!(o, PrimeOutput::Reply(r) if r.client.0 == 78))
            .count();
        assert_eq!(replies, 1, "server {server} answered its client");
    }
    assert_eq!(pump.nodes[0].app().log.len(), 2, "executed once");
}

/// Suspect-leader: a correct leader under steady load stays leader (its turnaround stays under
/// K_lat * TAT_acceptable + period), and the measurements did happen.
#[test]
fn timely_leader_is_not_suspected() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(2));
    for step in 0..150u64 {
        pump.submit((step % 4) as usize, update(step % 4, step / 4 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(200));
    pump.check_agreement();
    assert_eq!(pump.nodes[1].app().log.len(), 150);
    for (i, outs) in pump.outputs.iter().enumerate() {
        assert!(
            !outs
                .iter()
                .any(|o| matches!(o, PrimeOutput::LeaderSuspected { .. })),
            "server {i} suspected"
        );
        let node = &pump.nodes[i];
        assert_eq!(
            node.tat_acceptable_ns(),
            Some(8_000_000),
            "RTT 4 ms is below the 8 ms floor"
        );
    }
    let measured = pump.nodes[1].suspect.max_tat_ns;
    assert!(
        measured > 0 && measured <= 40_000_000,
        "turnaround measured: {measured} ns"
    );
}

/// Suspect-leader: a leader that stops proposing leaves challenges unanswered; 2f+k+1 servers ask
/// for a new view and the NEW-LEADER proof forms.
#[test]
fn silent_leader_is_suspected_and_new_leader_proof_forms() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(2));
    pump.drop_rule = Box::new(|from, _, m| from.0 == 0 && matches!(m, PrimeMessage::PrePrepare(_)));
    for step in 0..200u64 {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.check_agreement();
    for i in 1..4 {
        let outs = &pump.outputs[i];
        assert!(
            outs.contains(&PrimeOutput::LeaderSuspected { view: 0 }),
            "server {i} suspects"
        );
        assert!(
            outs.contains(&PrimeOutput::NewLeaderProven { view: 1 }),
            "server {i} holds the proof"
        );
    }
}

/// View change: after the NEW-LEADER proof against a silent leader, reports are reliably broadcast,
/// the replay is agreed, and the next leader orders everything that was waiting.
#[test]
fn view_change_replaces_a_silent_leader_and_ordering_resumes() {
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(2));
    pump.drop_rule = Box::new(|from, _, m| from.0 == 0 && matches!(m, PrimeMessage::PrePrepare(_)));
    for step in 0..200u64 {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(300));
    pump.check_agreement();
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.view(), 1, "server {i} moved to view 1");
        assert!(
            !node.installing_view(),
            "server {i} finished the view change"
        );
        assert_eq!(node.app().log.len(), 200, "server {i} executed everything");
    }
    assert!(pump.outputs[2].contains(&PrimeOutput::NewLeaderProven { view: 1 }));
}

/// PRIME.md view change step 3 with real BLS threshold keys: a Byzantine server sends a bad
/// threshold share. The new leader's combine identifies it (paper 004 section 3), ignores it, and
/// completes the VC-PROOF from the valid shares (one of them delayed, so the bad share is surely
/// among the first the leader combines); the view is installed everywhere.
#[test]
fn bad_threshold_share_is_identified_and_the_view_change_completes() {
    use std::cell::Cell;
    use std::rc::Rc;
    let cfg = PrimeConfig::new(1, 0);
    let mut nodes: Vec<_> = (0..4u16)
        .map(|i| node_with_auth(&cfg, i, real_auth(4, i)))
        .collect();
    nodes[3].set_attack(crate::Attack {
        bad_vc_shares: true,
        ..crate::Attack::default()
    });
    let mut pump = Pump::with_nodes(nodes, Duration::from_millis(2));
    let held_back = Rc::new(Cell::new(false));
    let flag = held_back.clone();
    pump.drop_rule = Box::new(move |from, to, m| {
        let first_share_of_0 = from.0 == 0
            && to.0 == 1
            && matches!(m, PrimeMessage::VcPartialSig(_))
            && !flag.replace(true);
        first_share_of_0 || (from.0 == 0 && matches!(m, PrimeMessage::PrePrepare(_)))
    });
    for step in 0..30u64 {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(2000));
    assert!(held_back.get(), "participant 0's first share was held back");
    pump.check_agreement();
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.view(), 1, "server {i} moved to view 1");
        assert!(!node.installing_view(), "server {i} installed view 1");
        assert_eq!(node.app().log.len(), 30, "server {i} executed everything");
    }
    let leader = &pump.nodes[1];
    assert!(leader.misbehaving().contains(&crate::ParticipantId(3)));
    assert!(pump.outputs[1].contains(&PrimeOutput::Misbehaviour {
        participant: crate::ParticipantId(3),
        evidence: crate::replica::Misbehaviour::BadThresholdShare { view: 1 },
    }));
}

/// View change safety: slots prepared in the old view but never committed are replayed with the
/// same content in the new view and executed.
#[test]
fn view_change_replays_prepared_slots() {
    use std::cell::Cell;
    use std::rc::Rc;
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let block_commits = Rc::new(Cell::new(true));
    let rule = block_commits.clone();
    pump.drop_rule = Box::new(move |_, _, m| rule.get() && matches!(m, PrimeMessage::Commit(_)));
    for seq in 1..=4 {
        pump.submit(2, update(5, seq));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(100));
    let prepared = pump.nodes[1].vc_prepared.len();
    assert!(prepared >= 1, "slots were prepared");
    assert_eq!(
        pump.nodes[1].executed_seq(),
        0,
        "nothing committed in view 0"
    );
    block_commits.set(false);
    for i in 1..4 {
        pump.run_on(i, |p, cx| p.suspect_leader(cx));
    }
    pump.run_for(Duration::from_millis(500));
    pump.check_agreement();
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.view(), 1, "server {i}");
        assert_eq!(
            node.app().log.len(),
            4,
            "server {i} executed the replayed updates"
        );
        assert!(node.executed_seq() >= prepared as u64);
    }
}

/// PRIME.md "Catch-up and recovery": a server cut off for longer than the certificates others
/// retain receives a JUMP to a stable checkpoint, restores the application from it, and then
/// executes the rest from ordering certificates.
#[test]
fn far_behind_server_jumps_to_a_stable_checkpoint() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut cfg = PrimeConfig::new(1, 0);
    cfg.retained_slots_max = 6;
    cfg.checkpoint_interval = 4;
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    let cut = Rc::new(Cell::new(true));
    let jumps = Rc::new(Cell::new(0));
    let (cut_rule, jump_count) = (cut.clone(), jumps.clone());
    pump.drop_rule = Box::new(move |from, to, m| {
        if matches!(m, PrimeMessage::Jump(_)) && to.0 == 2 {
            jump_count.set(jump_count.get() + 1);
        }
        cut_rule.get() && (from.0 == 2 || to.0 == 2)
    });
    for seq in 1..=30 {
        pump.submit(seq as usize % 2, update(seq % 2, seq));
        pump.run_for(Duration::from_millis(25));
    }
    let ahead = pump.nodes[0].executed_seq();
    assert!(
        ahead > 12,
        "others ordered well past the retained slots: {ahead}"
    );
    cut.set(false);
    pump.run_for(Duration::from_millis(1500));
    pump.check_agreement_from_state();
    assert!(jumps.get() >= 1, "server 2 was sent a JUMP");
    assert_eq!(pump.nodes[2].checkpoints.jumps, 1);
    assert_eq!(pump.nodes[2].executed_seq(), pump.nodes[0].executed_seq());
    assert_eq!(pump.nodes[2].app().digest(), pump.nodes[0].app().digest());
}

/// Chunked state transfer (PRIME.md "Catch-up and recovery"): a server cut off past the retained
/// certificates jumps to a checkpoint whose snapshot is several hundred KiB, far over one message.
/// It fetches the chunks from the other servers; server 3 serves corrupted chunks, which are
/// rejected against the certified Merkle root and fetched from another server.
#[test]
fn far_behind_server_fetches_a_large_snapshot_in_chunks_despite_a_corrupting_server() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut cfg = PrimeConfig::new(1, 0);
    cfg.retained_slots_max = 6;
    cfg.checkpoint_interval = 4;
    let ballast_bytes = 400 * 1024;
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    for node in &mut pump.nodes {
        node.app.ballast_bytes = ballast_bytes;
    }
    pump.nodes[3].set_attack(crate::Attack {
        corrupt_snapshot_chunks: true,
        ..crate::Attack::default()
    });
    let cut = Rc::new(Cell::new(true));
    let chunks_from_3 = Rc::new(Cell::new(0));
    let (cut_rule, bad_chunks) = (cut.clone(), chunks_from_3.clone());
    pump.drop_rule = Box::new(move |from, to, m| {
        if matches!(m, PrimeMessage::SnapshotChunk(_)) && from.0 == 3 && to.0 == 2 {
            bad_chunks.set(bad_chunks.get() + 1);
        }
        cut_rule.get() && (from.0 == 2 || to.0 == 2)
    });
    for seq in 1..=30 {
        pump.submit(seq as usize % 2, update(seq % 2, seq));
        pump.run_for(Duration::from_millis(25));
    }
    assert!(
        pump.nodes[0].executed_seq() > 12,
        "others moved past the retained slots"
    );
    cut.set(false);
    pump.run_for(Duration::from_millis(2000));
    pump.check_agreement_from_state();
    let snapshot_bytes = pump.nodes[2]
        .checkpoints
        .stable
        .as_ref()
        .map_or(0, |(_, _, image)| image.bytes().len());
    assert!(
        snapshot_bytes > ballast_bytes,
        "a {snapshot_bytes}-byte snapshot"
    );
    assert_eq!(
        pump.nodes[2].checkpoints.jumps, 1,
        "server 2 restored a checkpoint"
    );
    assert!(
        chunks_from_3.get() >= 1,
        "server 3 served chunks to server 2"
    );
    assert!(
        pump.nodes[2].drops().malformed >= 1,
        "the corrupted chunks were rejected"
    );
    assert_eq!(pump.nodes[2].app().ballast_bytes, ballast_bytes);
    assert_eq!(pump.nodes[2].executed_seq(), pump.nodes[0].executed_seq());
    assert_eq!(pump.nodes[2].app().digest(), pump.nodes[0].app().digest());
    // Checking each chunk is charged to the receiver's CPU: one chunk-sized hash per chunk.
    let chunk_hashes = |i: usize| {
        pump.charges[i]
            .iter()
            .filter(|w| {
                **w == stockade_core::CpuWork::bytes(
                    stockade_core::CostKind::Sha256,
                    crate::state_transfer::SNAPSHOT_CHUNK_BYTES,
                )
            })
            .count()
    };
    assert!(
        chunk_hashes(2) >= snapshot_bytes / crate::state_transfer::SNAPSHOT_CHUNK_BYTES,
        "{} chunk checks charged",
        chunk_hashes(2)
    );
    assert_eq!(chunk_hashes(0), 0, "server 0 fetched nothing");
}

fn is_view_change_message(m: &PrimeMessage) -> bool {
    matches!(
        m,
        PrimeMessage::NewLeaderProof(_)
            | PrimeMessage::VcReport(_)
            | PrimeMessage::VcRelay(_)
            | PrimeMessage::VcCertificate(_)
            | PrimeMessage::VcList(_)
            | PrimeMessage::VcPartialSig(_)
            | PrimeMessage::Replay(_)
    )
}

/// View change under loss: a quarter of all view-change messages are lost (every fourth one, so the
/// run is deterministic). Each is sent once, so without re-sending the change stalls; with the
/// periodic re-send of the view change's state every server installs view 1 and ordering resumes.
#[test]
fn view_change_completes_when_a_quarter_of_its_messages_are_lost() {
    use std::cell::Cell;
    let cfg = PrimeConfig::new(1, 0);
    let mut pump = Pump::new(&cfg, Duration::from_millis(2));
    let seen = Cell::new(0u64);
    pump.drop_rule = Box::new(move |from, _, m| {
        if from.0 == 0 && matches!(m, PrimeMessage::PrePrepare(_)) {
            return true;
        }
        if !is_view_change_message(m) {
            return false;
        }
        seen.set(seen.get() + 1);
        seen.get().is_multiple_of(4)
    });
    for step in 0..200u64 {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(1000));
    pump.check_agreement();
    let resends: u32 = pump.nodes.iter().map(|n| n.vc.resends).sum();
    assert!(resends > 0, "the view change's state was re-sent");
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.view(), 1, "server {i} moved to view 1");
        assert!(!node.installing_view(), "server {i} installed view 1");
        assert_eq!(node.app().log.len(), 200, "server {i} executed everything");
    }
}

/// The re-send is bounded: a server alone in a view change (nobody answers) re-sends
/// `view_change_resends_max` rounds and then stops.
#[test]
fn view_change_resends_stop_at_their_bound() {
    let mut cfg = PrimeConfig::new(1, 0);
    cfg.view_change_resends_max = 5;
    let mut pump = Pump::new(&cfg, Duration::from_millis(2));
    // Server 0 is cut off from everyone after the proof reaches it.
    pump.drop_rule = Box::new(|from, to, m| {
        (from.0 == 0 && matches!(m, PrimeMessage::PrePrepare(_)))
            || (to.0 == 0 || from.0 == 0)
                && is_view_change_message(m)
                && !matches!(m, PrimeMessage::NewLeaderProof(_))
    });
    for step in 0..200u64 {
        pump.submit(1 + (step % 3) as usize, update(step % 3, step / 3 + 1));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(2000));
    let isolated = &pump.nodes[0];
    assert!(
        isolated.installing_view(),
        "server 0 never completes the change"
    );
    assert_eq!(isolated.vc.resends, 5, "and re-sent exactly the bound");
}

/// The `last_executed` vectors kept for PO garbage collection are bounded: while no checkpoint
/// becomes stable (every CHECKPOINT vote is lost), execution goes on, each checkpoint slot adds a
/// vector, and only the newest [`crate::execute::CHECKPOINT_VECTORS_MAX`] are kept.
#[test]
fn checkpoint_vectors_stay_bounded_while_no_checkpoint_becomes_stable() {
    use crate::execute::CHECKPOINT_VECTORS_MAX;
    let mut cfg = PrimeConfig::new(1, 0);
    cfg.checkpoint_interval = 2;
    let mut pump = Pump::new(&cfg, Duration::from_millis(1));
    pump.drop_rule = Box::new(|_, _, m| matches!(m, PrimeMessage::Checkpoint(_)));
    for seq in 1..=40 {
        pump.submit(seq as usize % 4, update(seq % 4, seq));
        pump.run_for(Duration::from_millis(10));
    }
    pump.run_for(Duration::from_millis(300));
    pump.check_agreement();
    let checkpoint_slots = pump.nodes[0].executed_seq() / cfg.checkpoint_interval;
    assert!(
        checkpoint_slots > CHECKPOINT_VECTORS_MAX as u64,
        "{checkpoint_slots} checkpoint slots, the bound must be passed"
    );
    for (i, node) in pump.nodes.iter().enumerate() {
        assert_eq!(node.app().log.len(), 40, "server {i} executed every update");
        assert!(node.checkpoints.stable.is_none(), "no vote got through");
        let kept = &node.exec.last_executed_at_checkpoints;
        assert_eq!(kept.len(), CHECKPOINT_VECTORS_MAX, "server {i}");
        let newest = node.executed_seq() / cfg.checkpoint_interval * cfg.checkpoint_interval;
        assert_eq!(kept.last_key_value().map(|(s, _)| *s), Some(newest));
    }
}
