//! Arbitrary argument vectors from a vocabulary of names, options and edge numbers: parsing never
//! panics, every parsed command survives its binary encoding unchanged, execution never panics
//! and leaves the state consistent, and replies survive their encoding.

use proptest::prelude::*;
use stockade_core::{DecodeLimits, Wire};
use stockade_kv::{Command, CommandClass, Limits, Reply, Session, StateMachine};

const NAMES: &[&str] = &[
    "GET", "SET", "GETSET", "DEL", "EXISTS", "INCR", "DECR", "INCRBY", "DECRBY", "APPEND",
    "STRLEN", "MGET", "MSET", "EXPIRE", "PEXPIRE", "TTL", "PTTL", "PERSIST", "KEYS", "SCAN",
    "DBSIZE", "FLUSHDB", "HSET", "HMSET", "HGET", "HDEL", "HGETALL", "HINCRBY", "PING", "ECHO",
    "SELECT", "HELLO", "AUTH", "INFO", "COMMAND", "CLIENT", "CONFIG", "RESET", "QUIT", "LPUSH",
    "set", "hSet",
];

const WORDS: &[&str] = &[
    "k",
    "h",
    "f",
    "g",
    "v",
    "1",
    "-1",
    "0",
    "2",
    "3",
    "9223372036854775807",
    "-9223372036854775808",
    "NX",
    "XX",
    "GET",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "GT",
    "LT",
    "MATCH",
    "COUNT",
    "*",
    "k*",
    "[a-z]",
    "abc",
    "",
    "SETNAME",
    "AUTH",
    "GETNAME",
    "SETINFO",
    "DOCS",
    "save",
];

fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        proptest::sample::select(NAMES),
        proptest::collection::vec(proptest::sample::select(WORDS), 0..7),
    )
        .prop_map(|(name, words)| {
            std::iter::once(name)
                .chain(words)
                .map(|w| w.as_bytes().to_vec())
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_encode_exec_never_break(requests in proptest::collection::vec(args(), 1..60)) {
        let mut state = StateMachine::new(Limits::DEFAULT);
        let mut session = Session::new(1);
        for (i, args) in requests.iter().enumerate() {
            let reply = match Command::parse(args, &Limits::DEFAULT) {
                Err(e) => Reply::from(e),
                Ok(command) => {
                    let back = Command::from_bytes(&command.to_bytes(), DecodeLimits::MESSAGE);
                    prop_assert_eq!(back.as_ref(), Ok(&command), "wire roundtrip of {:?}", args);
                    match (&command, command.class()) {
                        (Command::Local(local), _) => session.answer(local).reply,
                        (_, CommandClass::Read) => {
                            let read = state.query(i as u64, &command);
                            let ordered = state.exec(i as u64, &command);
                            prop_assert_eq!(&read, &ordered, "fast read path agrees with ordered read");
                            ordered
                        }
                        _ => state.exec(i as u64, &command),
                    }
                }
            };
            prop_assert_eq!(Reply::from_bytes(&reply.to_bytes(), DecodeLimits::MESSAGE), Ok(reply.clone()));
            state.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
}
