//! Determinism: replicas fed the same ordered commands at the same agreed times answer alike and
//! hold equal states (paper 004, section 3.2), including a replica restored from a snapshot
//! midway and one recovered from its persisted store.

use proptest::prelude::*;
use stockade_core::MemStore;
use stockade_kv::{Command, Limits, StateMachine};

/// One random command over a small keyspace, so commands collide on keys and types.
fn command() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![Just("k0"), Just("k1"), Just("k2"), Just("h0"), Just("h1")]
        .prop_map(String::from);
    let num = -3i64..40;
    prop_oneof![
        (key.clone(), num.clone()).prop_map(|(k, v)| vec!["SET".into(), k, v.to_string()]),
        (
            key.clone(),
            1i64..50,
            prop_oneof![Just("NX"), Just("XX"), Just("GET")]
        )
            .prop_map(|(k, ms, opt)| vec![
                "SET".into(),
                k,
                "v".into(),
                opt.into(),
                "PX".into(),
                ms.to_string()
            ]),
        key.clone()
            .prop_map(|k| vec!["SET".into(), k, "w".into(), "KEEPTTL".into()]),
        key.clone().prop_map(|k| vec!["GET".into(), k]),
        key.clone().prop_map(|k| vec!["DEL".into(), k]),
        key.clone().prop_map(|k| vec!["INCR".into(), k]),
        (key.clone(), num.clone()).prop_map(|(k, n)| vec!["INCRBY".into(), k, n.to_string()]),
        key.clone()
            .prop_map(|k| vec!["APPEND".into(), k, "x".into()]),
        (key.clone(), num.clone()).prop_map(|(k, n)| vec!["PEXPIRE".into(), k, n.to_string()]),
        key.clone().prop_map(|k| vec!["PERSIST".into(), k]),
        key.clone().prop_map(|k| vec!["PTTL".into(), k]),
        (key.clone(), prop_oneof![Just("f"), Just("g")], num.clone()).prop_map(|(k, f, v)| vec![
            "HSET".into(),
            k,
            f.into(),
            v.to_string()
        ]),
        (key.clone(), prop_oneof![Just("f"), Just("g")]).prop_map(|(k, f)| vec![
            "HDEL".into(),
            k,
            f.into()
        ]),
        (key.clone(), num.clone()).prop_map(|(k, n)| vec![
            "HINCRBY".into(),
            k,
            "f".into(),
            n.to_string()
        ]),
        key.clone().prop_map(|k| vec!["HGETALL".into(), k]),
        (key.clone(), key.clone()).prop_map(|(a, b)| vec![
            "MSET".into(),
            a,
            "1".into(),
            b,
            "2".into()
        ]),
        Just(vec!["KEYS".into(), "*".into()]),
        (0u64..u64::MAX).prop_map(|c| vec![
            "SCAN".into(),
            c.to_string(),
            "COUNT".into(),
            "2".into()
        ]),
        Just(vec!["DBSIZE".into()]),
        Just(vec!["FLUSHDB".into()]),
    ]
}

fn parse(words: &[String]) -> Command {
    let args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
    Command::parse(&args, &Limits::DEFAULT).expect("generated commands are valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replicas_agree_on_replies_and_digests(
        steps in proptest::collection::vec((0u64..20, command()), 1..120),
        restore_at in 0usize..120,
    ) {
        let mut a = StateMachine::new(Limits::DEFAULT);
        let mut b = StateMachine::new(Limits::DEFAULT);
        let mut store = MemStore::new();
        let mut now = 1_000u64;
        for (i, (advance, words)) in steps.iter().enumerate() {
            now += advance;
            let c = parse(words);
            if i == restore_at {
                // b is replaced by a snapshot of a: from here on they must still agree.
                b = StateMachine::restore(&a.checkpoint(), Limits::DEFAULT).expect("snapshot restores");
            }
            let ra = a.exec(now, &c);
            let rb = b.exec(now, &c);
            prop_assert_eq!(&ra, &rb, "replies differ at step {} ({:?})", i, words);
            store.apply(&a.take_persist_ops());
            a.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(a.digest(), b.digest());
        let recovered = StateMachine::recover(&store, Limits::DEFAULT).expect("store recovers");
        prop_assert_eq!(recovered.digest(), a.digest(), "the persisted state is the executed state");
    }
}

#[test]
fn identical_histories_give_identical_digests_and_different_ones_do_not() {
    let history: Vec<Vec<String>> = [
        "SET a 1",
        "SET b 2 PX 100",
        "HSET h f 1",
        "INCR a",
        "PEXPIRE a 50",
        "HINCRBY h f 5",
    ]
    .iter()
    .map(|l| l.split(' ').map(String::from).collect())
    .collect();
    let run = |times: &[u64]| {
        let mut s = StateMachine::new(Limits::DEFAULT);
        for (words, t) in history.iter().zip(times) {
            s.exec(*t, &parse(words));
        }
        s.digest()
    };
    let same = [1, 2, 3, 4, 5, 6];
    assert_eq!(run(&same), run(&same));
    // The same commands at other agreed times give other deadlines: a different state.
    assert_ne!(run(&same), run(&[1, 2, 3, 4, 5, 7]));
}
