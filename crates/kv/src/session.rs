//! One client connection's local state (RESP version, name, id) and the answers to
//! connection-local commands, shared by the server's RESP port and the voting proxy.
//!
//! Transparency (paper 003: a tool is adopted when applications need no change; DESIGN.md
//! section 7): redis-cli, redis-benchmark and client libraries send PING, HELLO, CLIENT SETINFO,
//! COMMAND DOCS, CONFIG GET save/appendonly and the like while connecting. They get the answers
//! Redis would give, or harmless ones, never an error that makes a tool give up.

use crate::command::{Bytes, LocalCommand};
use crate::error::KvError;
use crate::glob::glob_match;
use crate::reply::Reply;
use crate::resp::RespVersion;

/// The Redis version stockade reports, so clients enable the features it implements (HELLO,
/// RESP3, SET's GET and EXAT options, EXPIRE's NX/XX/GT/LT).
pub const REDIS_COMPATIBLE_VERSION: &str = "7.2.0";

/// The configuration parameters CONFIG GET reports, with fixed values: redis-benchmark asks for
/// `save` and `appendonly` before it starts.
const CONFIG_PARAMETERS: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory-policy", "noeviction"),
];

/// Commands reported by COMMAND LIST and COMMAND COUNT.
const COMMAND_NAMES: &[&str] = &[
    "get", "set", "getset", "del", "exists", "incr", "decr", "incrby", "decrby", "append",
    "strlen", "mget", "mset", "expire", "pexpire", "ttl", "pttl", "persist", "keys", "scan",
    "dbsize", "flushdb", "hset", "hmset", "hget", "hdel", "hgetall", "hincrby", "ping", "echo",
    "quit", "select", "hello", "auth", "info", "command", "client", "config", "reset",
];

/// What a connection does after a local command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LocalAnswer {
    /// The reply to send.
    pub reply: Reply,
    /// Close the connection once the reply is sent (QUIT).
    pub close: bool,
}

impl From<Reply> for LocalAnswer {
    fn from(reply: Reply) -> LocalAnswer {
        LocalAnswer {
            reply,
            close: false,
        }
    }
}

/// One connection's local state.
#[derive(Clone, Debug)]
pub struct Session {
    id: u64,
    protocol: RespVersion,
    client_name: Option<Bytes>,
}

impl Session {
    /// A fresh RESP2 connection numbered `id` (CLIENT ID reports it).
    pub fn new(id: u64) -> Session {
        Session {
            id,
            protocol: RespVersion::Resp2,
            client_name: None,
        }
    }

    /// The RESP version replies must be encoded in.
    pub fn protocol(&self) -> RespVersion {
        self.protocol
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Answer a connection-local command.
    pub fn answer(&mut self, command: &LocalCommand) -> LocalAnswer {
        let result = match command {
            LocalCommand::Ping { message: None } => Ok(Reply::Simple("PONG".into())),
            LocalCommand::Ping { message: Some(m) } => Ok(Reply::bulk(m)),
            LocalCommand::Echo { message } => Ok(Reply::bulk(message)),
            LocalCommand::Quit => {
                return LocalAnswer {
                    reply: Reply::ok(),
                    close: true,
                }
            }
            LocalCommand::Select { index: 0 } => Ok(Reply::ok()),
            LocalCommand::Select { .. } => Err(KvError::DbIndexOutOfRange),
            LocalCommand::Hello {
                protocol,
                client_name,
            } => self.hello(*protocol, client_name.as_ref()),
            LocalCommand::Auth {
                with_username: true,
            } => Ok(Reply::ok()),
            LocalCommand::Auth {
                with_username: false,
            } => Err(KvError::AuthNotConfigured),
            LocalCommand::Info => Ok(Reply::Bulk(self.info().into_bytes())),
            LocalCommand::Command { args } => command_command(args),
            LocalCommand::Client { args } => self.client(args),
            LocalCommand::Config { args } => config(args),
            LocalCommand::Reset => {
                self.protocol = RespVersion::Resp2;
                self.client_name = None;
                Ok(Reply::Simple("RESET".into()))
            }
        };
        LocalAnswer::from(Reply::from(result))
    }

    fn hello(
        &mut self,
        protocol: Option<i64>,
        client_name: Option<&Bytes>,
    ) -> Result<Reply, KvError> {
        match protocol {
            None => {}
            Some(2) => self.protocol = RespVersion::Resp2,
            Some(3) => self.protocol = RespVersion::Resp3,
            Some(_) => return Err(KvError::NoProto),
        }
        if let Some(name) = client_name {
            self.set_name(name)?;
        }
        let proto = if self.protocol == RespVersion::Resp3 {
            3
        } else {
            2
        };
        Ok(Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (
                Reply::bulk("version"),
                Reply::bulk(REDIS_COMPATIBLE_VERSION),
            ),
            (Reply::bulk("proto"), Reply::Integer(proto)),
            (Reply::bulk("id"), Reply::Integer(self.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(vec![])),
        ]))
    }

    fn set_name(&mut self, name: &[u8]) -> Result<(), KvError> {
        // Redis refuses names that would break CLIENT LIST's one-line format.
        if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            return Err(KvError::BadClientName);
        }
        self.client_name = (!name.is_empty()).then(|| name.to_vec());
        Ok(())
    }

    fn info(&self) -> String {
        format!(
            "# Server\r\nredis_version:{REDIS_COMPATIBLE_VERSION}\r\nredis_mode:standalone\r\n\
             stockade_version:{}\r\n\r\n# Clients\r\nclient_id:{}\r\nresp:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            self.id,
            if self.protocol == RespVersion::Resp3 {
                3
            } else {
                2
            }
        )
    }

    fn client(&mut self, args: &[Bytes]) -> Result<Reply, KvError> {
        let sub = args
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(KvError::WrongArity(format!(
                    "client|{}",
                    String::from_utf8_lossy(&sub).to_lowercase()
                )))
            }
        };
        match &sub[..] {
            b"SETNAME" => {
                arity(2)?;
                self.set_name(&args[1])?;
                Ok(Reply::ok())
            }
            b"GETNAME" => {
                arity(1)?;
                Ok(self.client_name.as_ref().map_or(Reply::Nil, Reply::bulk))
            }
            b"ID" => {
                arity(1)?;
                Ok(Reply::Integer(self.id as i64))
            }
            // Library name and version, and eviction/touch flags: accepted, nothing to do.
            b"SETINFO" => {
                arity(3)?;
                Ok(Reply::ok())
            }
            b"NO-EVICT" | b"NO-TOUCH" => {
                arity(2)?;
                Ok(Reply::ok())
            }
            b"INFO" | b"LIST" => {
                let name = self
                    .client_name
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let line = format!(
                    "id={} name={} db=0 resp={}\n",
                    self.id,
                    name,
                    if self.protocol == RespVersion::Resp3 {
                        3
                    } else {
                        2
                    }
                );
                Ok(Reply::Bulk(line.into_bytes()))
            }
            _ => Err(unknown_subcommand("CLIENT", &args[0])),
        }
    }
}

fn unknown_subcommand(command: &str, sub: &[u8]) -> KvError {
    KvError::UnknownSubcommand {
        command: command.to_string(),
        sub: String::from_utf8_lossy(sub).into_owned(),
    }
}

fn command_command(args: &[Bytes]) -> Result<Reply, KvError> {
    let sub = args.first().map(|s| s.to_ascii_uppercase());
    match sub.as_deref() {
        // The full command table is not reproduced: an empty one makes clients fall back to
        // plain behaviour (redis-cli loses hints, nothing else).
        None | Some(b"DOCS") => Ok(Reply::Map(vec![])),
        Some(b"INFO") => Ok(Reply::Array(args[1..].iter().map(|_| Reply::Nil).collect())),
        Some(b"COUNT") => Ok(Reply::Integer(COMMAND_NAMES.len() as i64)),
        Some(b"LIST") => Ok(Reply::Array(
            COMMAND_NAMES.iter().map(Reply::bulk).collect(),
        )),
        Some(_) => Err(unknown_subcommand("COMMAND", &args[0])),
    }
}

fn config(args: &[Bytes]) -> Result<Reply, KvError> {
    let sub = args
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    match &sub[..] {
        b"GET" if args.len() >= 2 => {
            let pairs = CONFIG_PARAMETERS
                .iter()
                .filter(|(name, _)| {
                    args[1..]
                        .iter()
                        .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value)))
                .collect();
            Ok(Reply::Map(pairs))
        }
        b"GET" => Err(KvError::WrongArity("config|get".into())),
        b"RESETSTAT" => Ok(Reply::ok()),
        b"SET" => Err(KvError::ConfigFixed),
        _ => Err(unknown_subcommand("CONFIG", &args[0])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::limits::Limits;

    fn answer(s: &mut Session, line: &str) -> LocalAnswer {
        let args: Vec<Bytes> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        match Command::parse(&args, &Limits::DEFAULT) {
            Ok(Command::Local(local)) => s.answer(&local),
            other => panic!("{line} is not local: {other:?}"),
        }
    }

    fn reply(s: &mut Session, line: &str) -> Reply {
        answer(s, line).reply
    }

    #[test]
    fn what_redis_tools_send_while_connecting() {
        let mut s = Session::new(7);
        assert_eq!(reply(&mut s, "PING"), Reply::Simple("PONG".into()));
        assert_eq!(reply(&mut s, "ping hi"), Reply::bulk("hi"));
        assert_eq!(
            reply(&mut s, "CONFIG GET save"),
            Reply::Map(vec![(Reply::bulk("save"), Reply::bulk(""))])
        );
        assert_eq!(
            reply(&mut s, "CONFIG GET appendonly"),
            Reply::Map(vec![(Reply::bulk("appendonly"), Reply::bulk("no"))])
        );
        assert_eq!(
            reply(&mut s, "config get nothing-like-this"),
            Reply::Map(vec![])
        );
        assert_eq!(
            reply(&mut s, "CLIENT SETINFO LIB-NAME redis-rs"),
            Reply::ok()
        );
        assert_eq!(reply(&mut s, "COMMAND DOCS"), Reply::Map(vec![]));
        assert_eq!(reply(&mut s, "select 0"), Reply::ok());
        assert_eq!(
            reply(&mut s, "select 1"),
            Reply::Error("ERR DB index is out of range".into())
        );
        assert!(
            matches!(reply(&mut s, "info"), Reply::Bulk(b) if b.starts_with(b"# Server\r\nredis_version:"))
        );
        assert_eq!(
            answer(&mut s, "quit"),
            LocalAnswer {
                reply: Reply::ok(),
                close: true
            }
        );
    }

    #[test]
    fn hello_switches_protocol_and_names_the_client() {
        let mut s = Session::new(1);
        assert_eq!(s.protocol(), RespVersion::Resp2);
        let Reply::Map(pairs) = reply(&mut s, "HELLO 3 SETNAME app") else {
            panic!("HELLO answers a map")
        };
        assert!(pairs.contains(&(Reply::bulk("proto"), Reply::Integer(3))));
        assert_eq!(s.protocol(), RespVersion::Resp3);
        assert_eq!(reply(&mut s, "client getname"), Reply::bulk("app"));
        assert_eq!(
            reply(&mut s, "hello 4"),
            Reply::Error("NOPROTO unsupported protocol version".into())
        );
        assert_eq!(
            s.protocol(),
            RespVersion::Resp3,
            "a refused HELLO changes nothing"
        );
        assert_eq!(reply(&mut s, "reset"), Reply::Simple("RESET".into()));
        assert_eq!(s.protocol(), RespVersion::Resp2);
        assert_eq!(reply(&mut s, "client getname"), Reply::Nil);
    }

    #[test]
    fn errors_for_what_is_not_supported() {
        let mut s = Session::new(1);
        assert_eq!(
            reply(&mut s, "client kill x"),
            Reply::Error("ERR unknown subcommand 'kill'. Try CLIENT HELP.".into())
        );
        assert_eq!(
            reply(&mut s, "client setname a\tb"),
            Reply::Error(KvError::BadClientName.to_string())
        );
        assert!(reply(&mut s, "auth pw").is_error());
        assert_eq!(reply(&mut s, "auth default pw"), Reply::ok());
        assert!(reply(&mut s, "config set save x").is_error());
    }
}
