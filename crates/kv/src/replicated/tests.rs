//! Tests of the replicated application: execution at agreed times, snapshots, persistence and
//! recovery (Prime itself drives it in `tests/replicated_sim.rs`).

use stockade_core::{MemStore, Wire};
use stockade_replication::app::{Application, ExecutedUpdate};
use stockade_replication::{ClientId, Update};

use super::*;

fn op(line: &str) -> Vec<u8> {
    let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
    Command::parse(&args, &Limits::DEFAULT)
        .expect("valid command")
        .to_bytes()
}

fn update(seq: u64, op: Vec<u8>) -> Update {
    Update {
        client: ClientId(1),
        incarnation: 1,
        seq,
        reply_to: None,
        op,
    }
}

/// Execute `lines` as one slot at `timestamp_ms`; returns the decoded replies.
fn run_slot(app: &mut ReplicatedKv, slot: u64, timestamp_ms: u64, lines: &[&str]) -> Vec<Reply> {
    let updates: Vec<Update> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| update(slot * 100 + i as u64, op(l)))
        .collect();
    let executed: Vec<ExecutedUpdate<'_>> = updates
        .iter()
        .map(|update| ExecutedUpdate {
            update,
            global_seq: slot,
        })
        .collect();
    app.execute(&executed, timestamp_ms)
        .iter()
        .map(|r| Reply::from_bytes(r, DecodeLimits::MESSAGE).expect("a reply"))
        .collect()
}

#[test]
fn updates_run_in_order_at_the_agreed_time() {
    let mut app = ReplicatedKv::new(Limits::DEFAULT);
    let replies = run_slot(&mut app, 1, 1_000, &["SET k v PX 100", "GET k", "INCR n"]);
    assert_eq!(
        replies,
        vec![Reply::ok(), Reply::bulk("v"), Reply::Integer(1)]
    );
    assert_eq!(
        run_slot(&mut app, 2, 1_099, &["GET k"]),
        vec![Reply::bulk("v")]
    );
    assert_eq!(
        run_slot(&mut app, 3, 1_100, &["GET k"]),
        vec![Reply::Nil],
        "expired exactly at the agreed deadline"
    );
    assert_eq!(app.executed_slot(), 3);
    assert_eq!(app.state().clock_ms(), 1_100);
}

#[test]
fn a_malformed_op_gets_an_error_and_changes_nothing_else() {
    let mut app = ReplicatedKv::new(Limits::DEFAULT);
    let garbage = update(1, vec![0xff, 0xff, 0xff]);
    let results = app.execute(
        &[ExecutedUpdate {
            update: &garbage,
            global_seq: 1,
        }],
        5,
    );
    assert_eq!(
        Reply::from_bytes(&results[0], DecodeLimits::MESSAGE),
        Ok(Reply::Error(MALFORMED_OP_ERROR.into()))
    );
    assert_eq!(app.state().stored_keys(), 0);
}

#[test]
fn digests_follow_what_executed() {
    let mut a = ReplicatedKv::new(Limits::DEFAULT);
    let mut b = ReplicatedKv::new(Limits::DEFAULT);
    run_slot(&mut a, 1, 10, &["SET k 1"]);
    run_slot(&mut b, 1, 10, &["SET k 1"]);
    assert_eq!(a.digest(), b.digest());
    run_slot(&mut a, 2, 20, &["SET k 2"]);
    run_slot(&mut b, 2, 20, &["SET k 3"]);
    assert_ne!(a.digest(), b.digest(), "a divergent replica shows at once");
}

#[test]
fn checkpoint_and_restore_round_trip() {
    let mut a = ReplicatedKv::new(Limits::DEFAULT);
    run_slot(&mut a, 1, 10, &["SET k 1", "HSET h f v", "SET t x EX 100"]);
    let snapshot = a.checkpoint();
    let mut b = ReplicatedKv::new(Limits::DEFAULT);
    b.restore(&snapshot).expect("restores");
    assert_eq!(b.digest(), a.digest());
    assert_eq!(b.executed_slot(), 1);
    assert_eq!(b.state().digest(), a.state().digest());
    // Both go on identically.
    assert_eq!(
        run_slot(&mut a, 2, 20, &["INCR k"]),
        run_slot(&mut b, 2, 20, &["INCR k"])
    );
    assert_eq!(a.digest(), b.digest());

    let mut c = ReplicatedKv::new(Limits::DEFAULT);
    assert!(c.restore(b"SKR1 too short").is_err());
    let mut bad = snapshot.clone();
    bad[0] = b'X';
    assert!(c.restore(&bad).is_err());
    let truncated = &snapshot[..snapshot.len() - 1];
    assert!(c.restore(truncated).is_err());
    assert_eq!(c.executed_slot(), 0, "a failed restore changes nothing");
}

#[test]
fn persisted_batches_recover_the_state_and_skip_replayed_slots() {
    let outbox = PersistOutbox::default();
    let mut app = ReplicatedKv::persistent(Limits::DEFAULT, outbox.clone());
    run_slot(&mut app, 1, 10, &["SET a 1", "SET b 2"]);
    run_slot(&mut app, 2, 20, &["DEL a", "INCR b"]);
    let batches = outbox.drain();
    assert_eq!(batches.len(), 2, "one atomic batch per executed slot");
    assert!(outbox.drain().is_empty());
    let mut store = MemStore::new();
    for ops in &batches {
        store.apply(ops);
    }

    let recovered_outbox = PersistOutbox::default();
    let mut recovered =
        ReplicatedKv::recover(&store, Limits::DEFAULT, recovered_outbox.clone()).expect("recovers");
    assert_eq!(recovered.executed_slot(), 2);
    assert_eq!(recovered.digest(), app.digest());
    assert_eq!(recovered.state().digest(), app.state().digest());

    // Prime re-executes slots 1 and 2 after a restart: they are skipped with empty results.
    let replayed = update(1, op("SET a 1"));
    let results = recovered.execute(
        &[ExecutedUpdate {
            update: &replayed,
            global_seq: 2,
        }],
        20,
    );
    assert_eq!(results, vec![Vec::<u8>::new()]);
    assert_eq!(recovered.skipped_updates(), 1);
    assert!(recovered_outbox.drain().is_empty(), "nothing changed");
    assert_eq!(recovered.state().stored_keys(), 1, "a stays deleted");
    // Slot 3 executes normally.
    assert_eq!(
        run_slot(&mut recovered, 3, 30, &["GET b"]),
        vec![Reply::bulk("3")]
    );
    assert_eq!(recovered_outbox.drain().len(), 1);
}

#[test]
fn recovering_from_an_empty_store_starts_empty() {
    let app = ReplicatedKv::recover(&MemStore::new(), Limits::DEFAULT, PersistOutbox::default())
        .expect("recovers");
    assert_eq!(app.executed_slot(), 0);
    assert_eq!(app.state().stored_keys(), 0);
}

#[test]
fn a_jump_to_an_older_snapshot_after_recovery_re_executes_the_later_slots() {
    // A server executed slots 1..=3 and persisted them; a correct peer's checkpoint is at slot 1.
    let outbox = PersistOutbox::default();
    let mut app = ReplicatedKv::persistent(Limits::DEFAULT, outbox.clone());
    run_slot(&mut app, 1, 10, &["SET a 1"]);
    let snapshot_at_1 = app.checkpoint();
    run_slot(&mut app, 2, 20, &["INCR a"]);
    run_slot(&mut app, 3, 30, &["SET gone x"]);
    let mut store = MemStore::new();
    for ops in outbox.drain() {
        store.apply(&ops);
    }

    let recovered_outbox = PersistOutbox::default();
    let mut recovered =
        ReplicatedKv::recover(&store, Limits::DEFAULT, recovered_outbox.clone()).expect("recovers");
    assert_eq!(recovered.executed_slot(), 3);
    // Prime jumps the restarted server to slot 1, then executes slots 2 and 3 again.
    recovered.restore(&snapshot_at_1).expect("restores");
    let jump_batches = recovered_outbox.drain();
    assert_eq!(jump_batches.len(), 1, "the jump persists the whole state");
    for ops in &jump_batches {
        store.apply(ops);
    }
    assert_eq!(
        ReplicatedKv::recorded_slot(&store).expect("record"),
        1,
        "the store now describes the snapshot"
    );
    assert_eq!(
        run_slot(&mut recovered, 2, 20, &["INCR a"]),
        vec![Reply::Integer(2)]
    );
    assert_eq!(
        run_slot(&mut recovered, 3, 30, &["SET gone x"]),
        vec![Reply::ok()]
    );
    assert_eq!(
        recovered.skipped_updates(),
        0,
        "nothing skipped after the jump"
    );
    assert_eq!(recovered.state().digest(), app.state().digest());
    assert_eq!(
        recovered.digest(),
        app.digest(),
        "the chain is the peers' again"
    );
    for ops in recovered_outbox.drain() {
        store.apply(&ops);
    }
    let again =
        ReplicatedKv::recover(&store, Limits::DEFAULT, PersistOutbox::default()).expect("recovers");
    assert_eq!(again.executed_slot(), 3);
    assert_eq!(
        again.state().digest(),
        app.state().digest(),
        "a later restart recovers it"
    );
}
