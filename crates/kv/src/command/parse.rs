//! Parsing an argument vector (`[name, arg, ...]`) into a [`Command`], with Redis's arity rules,
//! option grammar and error strings, and stockade's size limits.

use super::{
    Bytes, Command, ExpireFlags, LocalCommand, SetCondition, SetExpiry, TimeUnit,
    SCAN_COUNT_DEFAULT,
};
use crate::error::KvError;
use crate::limits::Limits;
use crate::number::{parse_i64, parse_u64};

/// How many bytes of arguments Redis quotes in an unknown-command error.
const UNKNOWN_PREVIEW_BYTES_MAX: usize = 128;

/// The error for a command name stockade does not know, formatted as Redis formats it.
pub fn unknown_command(args: &[Bytes]) -> KvError {
    let name = args
        .first()
        .map(|n| lossy_prefix(n, UNKNOWN_PREVIEW_BYTES_MAX))
        .unwrap_or_default();
    let mut args_preview = String::new();
    for arg in args.iter().skip(1) {
        if args_preview.len() >= UNKNOWN_PREVIEW_BYTES_MAX {
            break;
        }
        let room = UNKNOWN_PREVIEW_BYTES_MAX - args_preview.len();
        args_preview.push('\'');
        args_preview.push_str(&lossy_prefix(arg, room));
        args_preview.push_str("' ");
    }
    KvError::UnknownCommand { name, args_preview }
}

fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// Arity as Redis declares it: exactly `n` arguments (name included), or at least `n`.
#[derive(Clone, Copy)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

/// The arguments of one command being parsed, with the limits they must meet.
struct Args<'a> {
    name: &'static str,
    items: &'a [Bytes],
    limits: &'a Limits,
}

impl<'a> Args<'a> {
    fn check_arity(&self, arity: Arity) -> Result<(), KvError> {
        let ok = match arity {
            Arity::Exactly(n) => self.items.len() == n,
            Arity::AtLeast(n) => self.items.len() >= n,
        };
        if ok {
            Ok(())
        } else {
            Err(KvError::WrongArity(self.name.to_string()))
        }
    }

    fn key(&self, i: usize) -> Result<Bytes, KvError> {
        let key = &self.items[i];
        if key.len() > self.limits.key_bytes_max {
            return Err(KvError::KeyTooLarge {
                len: key.len(),
                max: self.limits.key_bytes_max,
            });
        }
        Ok(key.clone())
    }

    fn value(&self, i: usize) -> Result<Bytes, KvError> {
        let value = &self.items[i];
        if value.len() > self.limits.value_bytes_max {
            return Err(KvError::ValueTooLarge {
                len: value.len(),
                max: self.limits.value_bytes_max,
            });
        }
        Ok(value.clone())
    }

    fn keys_from(&self, start: usize) -> Result<Vec<Bytes>, KvError> {
        (start..self.items.len()).map(|i| self.key(i)).collect()
    }

    /// Pairs from `start` on; an odd count is an arity error, as Redis reports it.
    fn pairs_from(&self, start: usize) -> Result<Vec<(Bytes, Bytes)>, KvError> {
        if !(self.items.len() - start).is_multiple_of(2) {
            return Err(KvError::WrongArity(self.name.to_string()));
        }
        (start..self.items.len())
            .step_by(2)
            .map(|i| Ok((self.key(i)?, self.value(i + 1)?)))
            .collect()
    }

    fn integer(&self, i: usize) -> Result<i64, KvError> {
        parse_i64(&self.items[i]).ok_or(KvError::NotAnInteger)
    }

    fn upper(&self, i: usize) -> Vec<u8> {
        self.items[i].to_ascii_uppercase()
    }

    fn rest(&self, start: usize) -> Vec<Bytes> {
        self.items[start..].to_vec()
    }
}

impl Command {
    /// Parse `args` (`[name, arg, ...]`) within `limits`.
    pub fn parse(args: &[Bytes], limits: &Limits) -> Result<Command, KvError> {
        let bytes: usize = args.iter().map(Vec::len).sum();
        if args.len() > limits.args_max || bytes > limits.command_bytes_max {
            return Err(KvError::CommandTooLarge {
                count: args.len(),
                bytes,
                args_max: limits.args_max,
                bytes_max: limits.command_bytes_max,
            });
        }
        let Some(name) = args.first() else {
            return Err(unknown_command(args));
        };
        let upper = name.to_ascii_uppercase();
        let Some((canonical, arity)) = lookup(&upper) else {
            return Err(unknown_command(args));
        };
        let a = Args {
            name: canonical,
            items: args,
            limits,
        };
        a.check_arity(arity)?;
        parse_known(&upper, &a)
    }
}

/// The canonical name and arity of each known command.
fn lookup(upper: &[u8]) -> Option<(&'static str, Arity)> {
    use Arity::*;
    Some(match upper {
        b"GET" => ("get", Exactly(2)),
        b"SET" => ("set", AtLeast(3)),
        b"GETSET" => ("getset", Exactly(3)),
        b"DEL" => ("del", AtLeast(2)),
        b"EXISTS" => ("exists", AtLeast(2)),
        b"INCR" => ("incr", Exactly(2)),
        b"DECR" => ("decr", Exactly(2)),
        b"INCRBY" => ("incrby", Exactly(3)),
        b"DECRBY" => ("decrby", Exactly(3)),
        b"APPEND" => ("append", Exactly(3)),
        b"STRLEN" => ("strlen", Exactly(2)),
        b"MGET" => ("mget", AtLeast(2)),
        b"MSET" => ("mset", AtLeast(3)),
        b"EXPIRE" => ("expire", AtLeast(3)),
        b"PEXPIRE" => ("pexpire", AtLeast(3)),
        b"TTL" => ("ttl", Exactly(2)),
        b"PTTL" => ("pttl", Exactly(2)),
        b"PERSIST" => ("persist", Exactly(2)),
        b"KEYS" => ("keys", Exactly(2)),
        b"SCAN" => ("scan", AtLeast(2)),
        b"DBSIZE" => ("dbsize", Exactly(1)),
        b"FLUSHDB" => ("flushdb", AtLeast(1)),
        b"HSET" => ("hset", AtLeast(4)),
        b"HMSET" => ("hmset", AtLeast(4)),
        b"HGET" => ("hget", Exactly(3)),
        b"HDEL" => ("hdel", AtLeast(3)),
        b"HGETALL" => ("hgetall", Exactly(2)),
        b"HINCRBY" => ("hincrby", Exactly(4)),
        b"PING" => ("ping", AtLeast(1)),
        b"ECHO" => ("echo", Exactly(2)),
        b"QUIT" => ("quit", AtLeast(1)),
        b"SELECT" => ("select", Exactly(2)),
        b"HELLO" => ("hello", AtLeast(1)),
        b"AUTH" => ("auth", AtLeast(2)),
        b"INFO" => ("info", AtLeast(1)),
        b"COMMAND" => ("command", AtLeast(1)),
        b"CLIENT" => ("client", AtLeast(2)),
        b"CONFIG" => ("config", AtLeast(2)),
        b"RESET" => ("reset", Exactly(1)),
        _ => return None,
    })
}

fn parse_known(upper: &[u8], a: &Args<'_>) -> Result<Command, KvError> {
    let n = a.items.len();
    Ok(match upper {
        b"GET" => Command::Get { key: a.key(1)? },
        b"SET" => parse_set(a)?,
        b"GETSET" => Command::GetSet {
            key: a.key(1)?,
            value: a.value(2)?,
        },
        b"DEL" => Command::Del {
            keys: a.keys_from(1)?,
        },
        b"EXISTS" => Command::Exists {
            keys: a.keys_from(1)?,
        },
        b"INCR" => Command::IncrBy {
            key: a.key(1)?,
            delta: 1,
        },
        b"DECR" => Command::IncrBy {
            key: a.key(1)?,
            delta: -1,
        },
        b"INCRBY" => Command::IncrBy {
            key: a.key(1)?,
            delta: a.integer(2)?,
        },
        b"DECRBY" => {
            let by = a.integer(2)?;
            Command::IncrBy {
                key: a.key(1)?,
                delta: by.checked_neg().ok_or(KvError::DecrementOverflow)?,
            }
        }
        b"APPEND" => Command::Append {
            key: a.key(1)?,
            value: a.value(2)?,
        },
        b"STRLEN" => Command::Strlen { key: a.key(1)? },
        b"MGET" => Command::MGet {
            keys: a.keys_from(1)?,
        },
        b"MSET" => Command::MSet {
            pairs: a.pairs_from(1)?,
        },
        b"EXPIRE" => parse_expire(a, TimeUnit::Seconds)?,
        b"PEXPIRE" => parse_expire(a, TimeUnit::Millis)?,
        b"TTL" => Command::Ttl {
            key: a.key(1)?,
            unit: TimeUnit::Seconds,
        },
        b"PTTL" => Command::Ttl {
            key: a.key(1)?,
            unit: TimeUnit::Millis,
        },
        b"PERSIST" => Command::Persist { key: a.key(1)? },
        b"KEYS" => Command::Keys { pattern: a.key(1)? },
        b"SCAN" => parse_scan(a)?,
        b"DBSIZE" => Command::DbSize,
        b"FLUSHDB" => {
            match n {
                1 => {}
                2 if matches!(&a.upper(1)[..], b"ASYNC" | b"SYNC") => {}
                _ => return Err(KvError::Syntax),
            }
            Command::FlushDb
        }
        b"HSET" => Command::HSet {
            key: a.key(1)?,
            pairs: a.pairs_from(2)?,
        },
        b"HMSET" => Command::HMSet {
            key: a.key(1)?,
            pairs: a.pairs_from(2)?,
        },
        b"HGET" => Command::HGet {
            key: a.key(1)?,
            field: a.key(2)?,
        },
        b"HDEL" => Command::HDel {
            key: a.key(1)?,
            fields: a.keys_from(2)?,
        },
        b"HGETALL" => Command::HGetAll { key: a.key(1)? },
        b"HINCRBY" => Command::HIncrBy {
            key: a.key(1)?,
            field: a.key(2)?,
            delta: a.integer(3)?,
        },
        _ => Command::Local(parse_local(upper, a)?),
    })
}

fn parse_local(upper: &[u8], a: &Args<'_>) -> Result<LocalCommand, KvError> {
    let n = a.items.len();
    Ok(match upper {
        b"PING" => match n {
            1 => LocalCommand::Ping { message: None },
            2 => LocalCommand::Ping {
                message: Some(a.value(1)?),
            },
            _ => return Err(KvError::WrongArity(a.name.to_string())),
        },
        b"ECHO" => LocalCommand::Echo {
            message: a.value(1)?,
        },
        b"QUIT" => LocalCommand::Quit,
        b"SELECT" => LocalCommand::Select {
            index: a.integer(1)?,
        },
        b"HELLO" => parse_hello(a)?,
        b"AUTH" => {
            if n > 3 {
                return Err(KvError::Syntax);
            }
            LocalCommand::Auth {
                with_username: n == 3,
            }
        }
        b"INFO" => LocalCommand::Info,
        b"COMMAND" => LocalCommand::Command { args: a.rest(1) },
        b"CLIENT" => LocalCommand::Client { args: a.rest(1) },
        b"CONFIG" => LocalCommand::Config { args: a.rest(1) },
        b"RESET" => LocalCommand::Reset,
        _ => return Err(unknown_command(a.items)),
    })
}

/// SET's option grammar, after Redis 7's `parseExtendedStringArgumentsOrReply`.
fn parse_set(a: &Args<'_>) -> Result<Command, KvError> {
    let key = a.key(1)?;
    let value = a.value(2)?;
    let mut condition = SetCondition::Always;
    let mut expiry = SetExpiry::Clear;
    let mut get = false;
    let mut i = 3;
    while i < a.items.len() {
        let opt = a.upper(i);
        let has_next = i + 1 < a.items.len();
        match &opt[..] {
            b"NX" if condition != SetCondition::IfPresent => condition = SetCondition::IfAbsent,
            b"XX" if condition != SetCondition::IfAbsent => condition = SetCondition::IfPresent,
            b"GET" => get = true,
            b"KEEPTTL" if matches!(expiry, SetExpiry::Clear | SetExpiry::Keep) => {
                expiry = SetExpiry::Keep
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if expiry == SetExpiry::Clear && has_next => {
                i += 1;
                let amount = a.integer(i)?;
                let seconds = matches!(&opt[..], b"EX" | b"EXAT");
                if amount <= 0 || (seconds && amount > i64::MAX / 1000) {
                    return Err(KvError::InvalidExpireTime("set"));
                }
                expiry = match &opt[..] {
                    b"EX" => SetExpiry::Seconds(amount),
                    b"PX" => SetExpiry::Millis(amount),
                    b"EXAT" => SetExpiry::AtSeconds(amount),
                    _ => SetExpiry::AtMillis(amount),
                };
            }
            _ => return Err(KvError::Syntax),
        }
        i += 1;
    }
    Ok(Command::Set {
        key,
        value,
        condition,
        expiry,
        get,
    })
}

/// EXPIRE/PEXPIRE options, after Redis 7's `parseExtendedExpireArgumentsOrReply`.
fn parse_expire(a: &Args<'_>, unit: TimeUnit) -> Result<Command, KvError> {
    let key = a.key(1)?;
    let amount = a.integer(2)?;
    let mut flags = ExpireFlags::default();
    for i in 3..a.items.len() {
        match &a.upper(i)[..] {
            b"NX" => flags.nx = true,
            b"XX" => flags.xx = true,
            b"GT" => flags.gt = true,
            b"LT" => flags.lt = true,
            _ => {
                return Err(KvError::UnsupportedOption(
                    String::from_utf8_lossy(&a.items[i]).into_owned(),
                ))
            }
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(KvError::ExpireNxWithOthers);
    }
    if flags.gt && flags.lt {
        return Err(KvError::ExpireGtWithLt);
    }
    if unit == TimeUnit::Seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&amount) {
        return Err(KvError::InvalidExpireTime("expire"));
    }
    Ok(Command::Expire {
        key,
        amount,
        unit,
        flags,
    })
}

fn parse_scan(a: &Args<'_>) -> Result<Command, KvError> {
    let cursor = parse_u64(&a.items[1]).ok_or(KvError::InvalidCursor)?;
    let mut pattern = None;
    let mut count = SCAN_COUNT_DEFAULT;
    let mut i = 2;
    while i < a.items.len() {
        let has_next = i + 1 < a.items.len();
        match &a.upper(i)[..] {
            b"MATCH" if has_next => pattern = Some(a.key(i + 1)?),
            b"COUNT" if has_next => {
                let c = a.integer(i + 1)?;
                if c < 1 {
                    return Err(KvError::Syntax);
                }
                count = c as u64;
            }
            _ => return Err(KvError::Syntax),
        }
        i += 2;
    }
    Ok(Command::Scan {
        cursor,
        pattern,
        count,
    })
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]].
fn parse_hello(a: &Args<'_>) -> Result<LocalCommand, KvError> {
    let mut protocol = None;
    let mut client_name = None;
    if a.items.len() >= 2 {
        protocol = Some(parse_i64(&a.items[1]).ok_or(KvError::ProtocolVersionNotAnInteger)?);
    }
    let mut i = 2;
    while i < a.items.len() {
        let left = a.items.len() - i - 1;
        match &a.upper(i)[..] {
            b"AUTH" if left >= 2 => i += 3,
            b"SETNAME" if left >= 1 => {
                client_name = Some(a.value(i + 1)?);
                i += 2;
            }
            _ => return Err(KvError::Syntax),
        }
    }
    Ok(LocalCommand::Hello {
        protocol,
        client_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandClass;

    fn parse(words: &str) -> Result<Command, KvError> {
        let args: Vec<Bytes> = words.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        Command::parse(&args, &Limits::DEFAULT)
    }

    fn err(words: &str) -> String {
        parse(words).expect_err(words).to_string()
    }

    #[test]
    fn set_options_parse_and_combine_as_in_redis() {
        assert_eq!(
            parse("set k v nx get px 100"),
            Ok(Command::Set {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition: SetCondition::IfAbsent,
                expiry: SetExpiry::Millis(100),
                get: true
            })
        );
        assert!(matches!(
            parse("SET k v KEEPTTL XX"),
            Ok(Command::Set {
                expiry: SetExpiry::Keep,
                ..
            })
        ));
        assert_eq!(err("set k v nx xx"), "ERR syntax error");
        assert_eq!(err("set k v ex 1 px 1"), "ERR syntax error");
        assert_eq!(err("set k v ex 1 keepttl"), "ERR syntax error");
        assert_eq!(err("set k v ex"), "ERR syntax error");
        assert_eq!(err("set k v bogus"), "ERR syntax error");
        assert_eq!(
            err("set k v ex abc"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err("set k v ex 0"),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            err("set k v px -5"),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            err("set k v ex 9223372036854776"),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            err("set k"),
            "ERR wrong number of arguments for 'set' command"
        );
    }

    #[test]
    fn arity_and_pairs() {
        assert_eq!(
            err("get"),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            err("GET a b"),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            err("mset a 1 b"),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(
            err("hset h f"),
            "ERR wrong number of arguments for 'hset' command"
        );
        assert_eq!(
            err("hset h f v g"),
            "ERR wrong number of arguments for 'hset' command"
        );
        assert_eq!(
            err("ping a b"),
            "ERR wrong number of arguments for 'ping' command"
        );
        assert_eq!(
            err("dbsize x"),
            "ERR wrong number of arguments for 'dbsize' command"
        );
    }

    #[test]
    fn integers_and_overflowing_decrements() {
        assert_eq!(
            parse("decrby k 5"),
            Ok(Command::IncrBy {
                key: b"k".to_vec(),
                delta: -5
            })
        );
        assert_eq!(
            err("incrby k 1.5"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err("decrby k -9223372036854775808"),
            "ERR decrement would overflow"
        );
        assert_eq!(
            err("hincrby h f x"),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn expire_options() {
        assert!(matches!(
            parse("expire k 10 xx gt"),
            Ok(Command::Expire {
                flags: ExpireFlags {
                    xx: true,
                    gt: true,
                    ..
                },
                ..
            })
        ));
        assert_eq!(
            err("expire k 10 nx xx"),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            err("expire k 10 gt lt"),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            err("expire k 10 sometimes"),
            "ERR Unsupported option sometimes"
        );
        assert_eq!(
            err("expire k 9223372036854776"),
            "ERR invalid expire time in 'expire' command"
        );
        assert!(parse("pexpire k 9223372036854776").is_ok());
    }

    #[test]
    fn scan_options() {
        assert_eq!(
            parse("scan 42 MATCH a* COUNT 5"),
            Ok(Command::Scan {
                cursor: 42,
                pattern: Some(b"a*".to_vec()),
                count: 5
            })
        );
        assert_eq!(err("scan x"), "ERR invalid cursor");
        assert_eq!(err("scan 0 count 0"), "ERR syntax error");
        assert_eq!(
            err("scan 0 count x"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(err("scan 0 match"), "ERR syntax error");
    }

    #[test]
    fn unknown_commands_quote_their_arguments_like_redis() {
        assert_eq!(
            err("foo a b"),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            err("FOO"),
            "ERR unknown command 'FOO', with args beginning with: "
        );
        let long = format!("foo {}", "x".repeat(300));
        let msg = err(&long);
        assert!(msg.len() < 220, "preview is bounded: {}", msg.len());
    }

    #[test]
    fn size_limits_are_enforced_at_parse_time() {
        let limits = Limits {
            key_bytes_max: 4,
            value_bytes_max: 8,
            args_max: 5,
            command_bytes_max: 40,
            ..Limits::DEFAULT
        };
        let p = |words: &[&[u8]]| {
            Command::parse(
                &words.iter().map(|w| w.to_vec()).collect::<Vec<_>>(),
                &limits,
            )
        };
        assert!(p(&[b"set", b"kkkk", b"vvvvvvvv"]).is_ok());
        assert_eq!(
            p(&[b"set", b"kkkkk", b"v"]),
            Err(KvError::KeyTooLarge { len: 5, max: 4 })
        );
        assert_eq!(
            p(&[b"set", b"k", b"vvvvvvvvv"]),
            Err(KvError::ValueTooLarge { len: 9, max: 8 })
        );
        assert!(matches!(
            p(&[b"del", b"a", b"b", b"c", b"d", b"e"]),
            Err(KvError::CommandTooLarge { count: 6, .. })
        ));
        assert!(matches!(
            p(&[b"get", &[b'x'; 41]]),
            Err(KvError::CommandTooLarge { bytes: 44, .. })
        ));
    }

    #[test]
    fn classification() {
        assert_eq!(parse("get k").map(|c| c.class()), Ok(CommandClass::Read));
        assert_eq!(parse("incr k").map(|c| c.class()), Ok(CommandClass::Write));
        assert_eq!(parse("scan 0").map(|c| c.class()), Ok(CommandClass::Read));
        assert_eq!(parse("ping").map(|c| c.class()), Ok(CommandClass::Local));
        assert_eq!(
            parse("config get save").map(|c| c.class()),
            Ok(CommandClass::Local)
        );
        assert_eq!(
            parse("select 0").map(|c| c.class()),
            Ok(CommandClass::Local)
        );
    }
}
