//! The canonical argument vector of a [`Command`] and its binary encoding.
//!
//! `to_args` writes each command in one canonical spelling (upper-case name, INCR/DECR/DECRBY as
//! INCRBY, options in a fixed order), so equal commands have equal bytes on every replica. Decoding
//! reads the argument vector within [`Limits::DEFAULT`] and re-parses it.

use stockade_core::wire::{put_bytes, put_varint, varint_len};
use stockade_core::{DecodeError, Reader, Wire};

use super::{Bytes, Command, ExpireFlags, LocalCommand, SetCondition, SetExpiry, TimeUnit};
use crate::limits::Limits;

fn word(s: &str) -> Bytes {
    s.as_bytes().to_vec()
}

fn int(v: impl ToString) -> Bytes {
    v.to_string().into_bytes()
}

fn with_keys(name: &str, keys: &[Bytes]) -> Vec<Bytes> {
    let mut args = Vec::with_capacity(1 + keys.len());
    args.push(word(name));
    args.extend(keys.iter().cloned());
    args
}

fn with_pairs(mut head: Vec<Bytes>, pairs: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    for (k, v) in pairs {
        head.push(k.clone());
        head.push(v.clone());
    }
    head
}

impl Command {
    /// The canonical argument vector, name first; `Command::parse` of it gives `self` back.
    pub fn to_args(&self) -> Vec<Bytes> {
        match self {
            Command::Get { key } => vec![word("GET"), key.clone()],
            Command::Set {
                key,
                value,
                condition,
                expiry,
                get,
            } => {
                let mut args = vec![word("SET"), key.clone(), value.clone()];
                match condition {
                    SetCondition::Always => {}
                    SetCondition::IfAbsent => args.push(word("NX")),
                    SetCondition::IfPresent => args.push(word("XX")),
                }
                if *get {
                    args.push(word("GET"));
                }
                match expiry {
                    SetExpiry::Clear => {}
                    SetExpiry::Keep => args.push(word("KEEPTTL")),
                    SetExpiry::Seconds(n) => args.extend([word("EX"), int(n)]),
                    SetExpiry::Millis(n) => args.extend([word("PX"), int(n)]),
                    SetExpiry::AtSeconds(n) => args.extend([word("EXAT"), int(n)]),
                    SetExpiry::AtMillis(n) => args.extend([word("PXAT"), int(n)]),
                }
                args
            }
            Command::GetSet { key, value } => vec![word("GETSET"), key.clone(), value.clone()],
            Command::Del { keys } => with_keys("DEL", keys),
            Command::Exists { keys } => with_keys("EXISTS", keys),
            Command::IncrBy { key, delta } => vec![word("INCRBY"), key.clone(), int(delta)],
            Command::Append { key, value } => vec![word("APPEND"), key.clone(), value.clone()],
            Command::Strlen { key } => vec![word("STRLEN"), key.clone()],
            Command::MGet { keys } => with_keys("MGET", keys),
            Command::MSet { pairs } => with_pairs(vec![word("MSET")], pairs),
            Command::Expire {
                key,
                amount,
                unit,
                flags,
            } => {
                let name = if *unit == TimeUnit::Seconds {
                    "EXPIRE"
                } else {
                    "PEXPIRE"
                };
                let mut args = vec![word(name), key.clone(), int(amount)];
                let ExpireFlags { nx, xx, gt, lt } = *flags;
                for (set, flag) in [(nx, "NX"), (xx, "XX"), (gt, "GT"), (lt, "LT")] {
                    if set {
                        args.push(word(flag));
                    }
                }
                args
            }
            Command::Ttl { key, unit } => {
                vec![
                    word(if *unit == TimeUnit::Seconds {
                        "TTL"
                    } else {
                        "PTTL"
                    }),
                    key.clone(),
                ]
            }
            Command::Persist { key } => vec![word("PERSIST"), key.clone()],
            Command::Keys { pattern } => vec![word("KEYS"), pattern.clone()],
            Command::Scan {
                cursor,
                pattern,
                count,
            } => {
                let mut args = vec![word("SCAN"), int(cursor)];
                if let Some(p) = pattern {
                    args.extend([word("MATCH"), p.clone()]);
                }
                args.extend([word("COUNT"), int(count)]);
                args
            }
            Command::DbSize => vec![word("DBSIZE")],
            Command::FlushDb => vec![word("FLUSHDB")],
            Command::HSet { key, pairs } => with_pairs(vec![word("HSET"), key.clone()], pairs),
            Command::HMSet { key, pairs } => with_pairs(vec![word("HMSET"), key.clone()], pairs),
            Command::HGet { key, field } => vec![word("HGET"), key.clone(), field.clone()],
            Command::HDel { key, fields } => {
                let mut args = vec![word("HDEL"), key.clone()];
                args.extend(fields.iter().cloned());
                args
            }
            Command::HGetAll { key } => vec![word("HGETALL"), key.clone()],
            Command::HIncrBy { key, field, delta } => {
                vec![word("HINCRBY"), key.clone(), field.clone(), int(delta)]
            }
            Command::Local(local) => local_args(local),
        }
    }
}

fn local_args(local: &LocalCommand) -> Vec<Bytes> {
    match local {
        LocalCommand::Ping { message } => {
            let mut args = vec![word("PING")];
            args.extend(message.iter().cloned());
            args
        }
        LocalCommand::Echo { message } => vec![word("ECHO"), message.clone()],
        LocalCommand::Quit => vec![word("QUIT")],
        LocalCommand::Select { index } => vec![word("SELECT"), int(index)],
        LocalCommand::Hello {
            protocol,
            client_name,
        } => {
            let mut args = vec![word("HELLO")];
            args.extend(protocol.map(int));
            if let Some(name) = client_name {
                args.extend([word("SETNAME"), name.clone()]);
            }
            args
        }
        // The credentials are not kept: there are none to check.
        LocalCommand::Auth {
            with_username: false,
        } => vec![word("AUTH"), word("-")],
        LocalCommand::Auth {
            with_username: true,
        } => vec![word("AUTH"), word("default"), word("-")],
        LocalCommand::Info => vec![word("INFO")],
        LocalCommand::Command { args } => with_keys("COMMAND", args),
        LocalCommand::Client { args } => with_keys("CLIENT", args),
        LocalCommand::Config { args } => with_keys("CONFIG", args),
        LocalCommand::Reset => vec![word("RESET")],
    }
}

impl Command {
    /// Decode one command and validate it against `limits` (the cluster's, which every replica
    /// shares), exactly as if a client had sent it.
    pub fn decode_within(r: &mut Reader<'_>, limits: &Limits) -> Result<Command, DecodeError> {
        let n = r.len("command arguments", limits.args_max)?;
        r.reserve(n.saturating_mul(std::mem::size_of::<Bytes>()))?;
        let arg_bytes_max = limits.key_bytes_max.max(limits.value_bytes_max);
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            args.push(r.byte_vec("command argument", arg_bytes_max)?);
        }
        Command::parse(&args, limits).map_err(|_| DecodeError::Invalid("command"))
    }
}

impl Wire for Command {
    fn encode(&self, out: &mut Vec<u8>) {
        let args = self.to_args();
        put_varint(out, args.len() as u64);
        for arg in &args {
            put_bytes(out, arg);
        }
    }

    /// Decodes within [`Limits::DEFAULT`]; a cluster running other limits decodes with
    /// [`Command::decode_within`].
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Command::decode_within(r, &Limits::DEFAULT)
    }

    fn wire_len(&self) -> usize {
        let args = self.to_args();
        varint_len(args.len() as u64)
            + args
                .iter()
                .map(|a| varint_len(a.len() as u64) + a.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_core::DecodeLimits;

    const SAMPLES: &[&str] = &[
        "get k",
        "SET k v",
        "set k v nx get ex 10",
        "set k v xx keepttl",
        "set k v pxat 123456",
        "set k v exat 99",
        "getset k v",
        "del a b c",
        "exists a a",
        "incr k",
        "decrby k 7",
        "append k tail",
        "strlen k",
        "mget a b",
        "mset a 1 b 2",
        "pexpire k -5 xx lt",
        "expire k 10 nx",
        "ttl k",
        "pttl k",
        "persist k",
        "keys user:*",
        "scan 17 match a? count 3",
        "scan 0",
        "dbsize",
        "flushdb async",
        "hset h f v g w",
        "hget h f",
        "hmset h f v",
        "hdel h f g",
        "hgetall h",
        "hincrby h f -3",
        "ping",
        "ping hi",
        "echo x",
        "quit",
        "select 0",
        "hello 3 auth u p setname n",
        "auth secret",
        "auth default secret",
        "info server",
        "command docs",
        "client setinfo lib-name x",
        "config get save",
        "reset",
    ];

    fn parse(words: &str) -> Command {
        let args: Vec<Bytes> = words.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        Command::parse(&args, &Limits::DEFAULT).expect(words)
    }

    #[test]
    fn canonical_args_parse_back_to_the_same_command() {
        for s in SAMPLES {
            let c = parse(s);
            assert_eq!(
                Command::parse(&c.to_args(), &Limits::DEFAULT).as_ref(),
                Ok(&c),
                "{s}"
            );
        }
    }

    #[test]
    fn wire_roundtrip_with_exact_length() {
        for s in SAMPLES {
            let c = parse(s);
            let bytes = c.to_bytes();
            assert_eq!(bytes.len(), c.wire_len(), "{s}");
            assert_eq!(
                Command::from_bytes(&bytes, DecodeLimits::MESSAGE).as_ref(),
                Ok(&c),
                "{s}"
            );
        }
    }

    #[test]
    fn equal_commands_have_equal_bytes_whatever_the_spelling() {
        assert_eq!(parse("decr k").to_bytes(), parse("INCRBY k -1").to_bytes());
        assert_eq!(
            parse("set k v get nx").to_bytes(),
            parse("SET k v NX GET").to_bytes()
        );
    }

    #[test]
    fn decoding_applies_the_cluster_limits() {
        let bytes = parse("set key value").to_bytes();
        let tight = Limits {
            key_bytes_max: 2,
            ..Limits::DEFAULT
        };
        let mut r = Reader::new(&bytes, DecodeLimits::MESSAGE).expect("reader");
        assert_eq!(
            Command::decode_within(&mut r, &tight),
            Err(DecodeError::Invalid("command"))
        );
        let mut r = Reader::new(&bytes, DecodeLimits::MESSAGE).expect("reader");
        assert_eq!(
            Command::decode_within(&mut r, &Limits::DEFAULT),
            Ok(parse("set key value"))
        );
    }

    #[test]
    fn decoding_rejects_invalid_commands_and_lying_lengths() {
        let mut bogus = Vec::new();
        put_varint(&mut bogus, 2);
        put_bytes(&mut bogus, b"GET");
        put_bytes(&mut bogus, b"");
        put_bytes(&mut bogus, b"");
        // Three args where GET takes two: the re-parse refuses it.
        let mut three = Vec::new();
        put_varint(&mut three, 3);
        for a in [&b"GET"[..], b"a", b"b"] {
            put_bytes(&mut three, a);
        }
        assert_eq!(
            Command::from_bytes(&three, DecodeLimits::MESSAGE),
            Err(DecodeError::Invalid("command"))
        );
        let mut huge = Vec::new();
        put_varint(&mut huge, (Limits::DEFAULT.args_max + 1) as u64);
        assert!(matches!(
            Command::from_bytes(&huge, DecodeLimits::MESSAGE),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(Command::from_bytes(&bogus, DecodeLimits::MESSAGE).is_err());
    }
}
