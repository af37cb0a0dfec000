//! [`Command`]: a client request parsed and validated into a typed value, shared by the server's
//! RESP port and the voting proxy, and its classification ([`CommandClass`]).
//!
//! Parsing ([`Command::parse`]) checks arity, options and size limits once, at the edge, so the
//! state machine only ever sees well-formed commands. The binary encoding (`Wire`) is the canonical
//! argument vector ([`Command::to_args`]), decoded by re-parsing: a decoded command has passed the
//! same validation as one parsed from a client.

mod encode;
mod parse;

pub use parse::unknown_command;

/// A byte string key, value, field or pattern.
pub type Bytes = Vec<u8>;

/// How a command may be served.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommandClass {
    /// Reads the state only: may take a fast read path that skips ordering.
    Read,
    /// Changes the state (or its reply depends on ordering): must be ordered by replication.
    Write,
    /// Answered by the connection itself (PING, HELLO, ...): never reaches the state machine.
    Local,
}

/// SET's NX / XX condition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetCondition {
    /// Set unconditionally.
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// SET's expiry option, as the client gave it (relative times resolve against the agreed time).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetExpiry {
    /// No option: the key loses any time to live.
    Clear,
    /// KEEPTTL: the key keeps its time to live.
    Keep,
    /// EX seconds (positive).
    Seconds(i64),
    /// PX milliseconds (positive).
    Millis(i64),
    /// EXAT unix-seconds (positive).
    AtSeconds(i64),
    /// PXAT unix-milliseconds (positive).
    AtMillis(i64),
}

/// Seconds or milliseconds, for EXPIRE/PEXPIRE and TTL/PTTL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeUnit {
    /// Seconds (EXPIRE, TTL).
    Seconds,
    /// Milliseconds (PEXPIRE, PTTL).
    Millis,
}

/// EXPIRE's NX / XX / GT / LT options (only the combinations Redis allows: one of them, or XX
/// with GT or LT).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ExpireFlags {
    /// Only if the key has no time to live.
    pub nx: bool,
    /// Only if the key has a time to live.
    pub xx: bool,
    /// Only if the new deadline is later than the current one (none counts as infinite).
    pub gt: bool,
    /// Only if the new deadline is earlier than the current one (none counts as infinite).
    pub lt: bool,
}

/// A connection-local command: answered by [`crate::session::Session`] without the state machine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LocalCommand {
    /// `PING [message]`.
    Ping {
        /// Echoed back instead of PONG.
        message: Option<Bytes>,
    },
    /// ECHO message.
    Echo {
        /// Echoed back.
        message: Bytes,
    },
    /// QUIT: reply OK, then close.
    Quit,
    /// SELECT index: only database 0 exists.
    Select {
        /// The database index.
        index: i64,
    },
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    Hello {
        /// Requested RESP version.
        protocol: Option<i64>,
        /// SETNAME's argument.
        client_name: Option<Bytes>,
    },
    /// `AUTH [username] password`.
    Auth {
        /// A username was given (`AUTH default x` succeeds on a server without passwords).
        with_username: bool,
    },
    /// `INFO [section ...]`.
    Info,
    /// `COMMAND [subcommand ...]`: the arguments after the name.
    Command {
        /// Subcommand and arguments.
        args: Vec<Bytes>,
    },
    /// CLIENT subcommand ...: the arguments after the name.
    Client {
        /// Subcommand and arguments.
        args: Vec<Bytes>,
    },
    /// CONFIG subcommand ...: the arguments after the name.
    Config {
        /// Subcommand and arguments.
        args: Vec<Bytes>,
    },
    /// RESET: back to a fresh connection.
    Reset,
}

/// A parsed, validated command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// GET key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL]`.
    Set {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// NX / XX.
        condition: SetCondition,
        /// Expiry option.
        expiry: SetExpiry,
        /// GET: reply with the old value.
        get: bool,
    },
    /// GETSET key value.
    GetSet {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// `DEL key [key ...]`.
    Del {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// `EXISTS key [key ...]`.
    Exists {
        /// The keys (duplicates count twice).
        keys: Vec<Bytes>,
    },
    /// INCR, DECR, INCRBY, DECRBY: add `delta`.
    IncrBy {
        /// The key.
        key: Bytes,
        /// What to add.
        delta: i64,
    },
    /// APPEND key value.
    Append {
        /// The key.
        key: Bytes,
        /// Appended bytes.
        value: Bytes,
    },
    /// STRLEN key.
    Strlen {
        /// The key.
        key: Bytes,
    },
    /// `MGET key [key ...]`.
    MGet {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// `MSET key value [key value ...]`.
    MSet {
        /// The pairs, in order (a later duplicate wins).
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `EXPIRE / PEXPIRE key amount [NX|XX|GT|LT]`.
    Expire {
        /// The key.
        key: Bytes,
        /// Relative time to live (may be zero or negative: the key is deleted).
        amount: i64,
        /// Unit of `amount`.
        unit: TimeUnit,
        /// Conditions.
        flags: ExpireFlags,
    },
    /// TTL / PTTL key.
    Ttl {
        /// The key.
        key: Bytes,
        /// Unit of the reply.
        unit: TimeUnit,
    },
    /// PERSIST key.
    Persist {
        /// The key.
        key: Bytes,
    },
    /// KEYS pattern.
    Keys {
        /// Glob pattern.
        pattern: Bytes,
    },
    /// `SCAN cursor [MATCH pattern] [COUNT count]`.
    Scan {
        /// Where to continue (0 starts).
        cursor: u64,
        /// Glob filter applied to the keys examined.
        pattern: Option<Bytes>,
        /// Keys to examine (at least 1; Redis's default is 10).
        count: u64,
    },
    /// DBSIZE.
    DbSize,
    /// `FLUSHDB [ASYNC|SYNC]`.
    FlushDb,
    /// `HSET key field value [field value ...]`.
    HSet {
        /// The key.
        key: Bytes,
        /// Field-value pairs.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `HMSET key field value [field value ...]`: HSET answering OK (deprecated in Redis, still
    /// sent by client libraries).
    HMSet {
        /// The key.
        key: Bytes,
        /// Field-value pairs.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// HGET key field.
    HGet {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// `HDEL key field [field ...]`.
    HDel {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// HGETALL key.
    HGetAll {
        /// The key.
        key: Bytes,
    },
    /// HINCRBY key field increment.
    HIncrBy {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// What to add.
        delta: i64,
    },
    /// A connection-local command.
    Local(LocalCommand),
}

/// SCAN's COUNT when none is given (Redis's default).
pub const SCAN_COUNT_DEFAULT: u64 = 10;

impl Command {
    /// How the command may be served.
    pub fn class(&self) -> CommandClass {
        match self {
            Command::Get { .. }
            | Command::Exists { .. }
            | Command::Strlen { .. }
            | Command::MGet { .. }
            | Command::Ttl { .. }
            | Command::Keys { .. }
            | Command::Scan { .. }
            | Command::DbSize
            | Command::HGet { .. }
            | Command::HGetAll { .. } => CommandClass::Read,
            Command::Set { .. }
            | Command::GetSet { .. }
            | Command::Del { .. }
            | Command::IncrBy { .. }
            | Command::Append { .. }
            | Command::MSet { .. }
            | Command::Expire { .. }
            | Command::Persist { .. }
            | Command::FlushDb
            | Command::HSet { .. }
            | Command::HMSet { .. }
            | Command::HDel { .. }
            | Command::HIncrBy { .. } => CommandClass::Write,
            Command::Local(_) => CommandClass::Local,
        }
    }

    /// The canonical (lower-case) name, as Redis uses it in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Get { .. } => "get",
            Command::Set { .. } => "set",
            Command::GetSet { .. } => "getset",
            Command::Del { .. } => "del",
            Command::Exists { .. } => "exists",
            Command::IncrBy { .. } => "incrby",
            Command::Append { .. } => "append",
            Command::Strlen { .. } => "strlen",
            Command::MGet { .. } => "mget",
            Command::MSet { .. } => "mset",
            Command::Expire {
                unit: TimeUnit::Seconds,
                ..
            } => "expire",
            Command::Expire {
                unit: TimeUnit::Millis,
                ..
            } => "pexpire",
            Command::Ttl {
                unit: TimeUnit::Seconds,
                ..
            } => "ttl",
            Command::Ttl {
                unit: TimeUnit::Millis,
                ..
            } => "pttl",
            Command::Persist { .. } => "persist",
            Command::Keys { .. } => "keys",
            Command::Scan { .. } => "scan",
            Command::DbSize => "dbsize",
            Command::FlushDb => "flushdb",
            Command::HSet { .. } => "hset",
            Command::HMSet { .. } => "hmset",
            Command::HGet { .. } => "hget",
            Command::HDel { .. } => "hdel",
            Command::HGetAll { .. } => "hgetall",
            Command::HIncrBy { .. } => "hincrby",
            Command::Local(local) => match local {
                LocalCommand::Ping { .. } => "ping",
                LocalCommand::Echo { .. } => "echo",
                LocalCommand::Quit => "quit",
                LocalCommand::Select { .. } => "select",
                LocalCommand::Hello { .. } => "hello",
                LocalCommand::Auth { .. } => "auth",
                LocalCommand::Info => "info",
                LocalCommand::Command { .. } => "command",
                LocalCommand::Client { .. } => "client",
                LocalCommand::Config { .. } => "config",
                LocalCommand::Reset => "reset",
            },
        }
    }
}
