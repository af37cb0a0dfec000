//! Errors a command can fail with, each rendered exactly as Redis renders it where Redis has one.
//!
//! The `Display` text is what goes to the client after the `-` of a RESP error, so the first word
//! is the error code (`ERR`, `WRONGTYPE`, `OOM`, `NOPROTO`).

use thiserror::Error;

/// Why a command was rejected at parse time or failed when executed.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum KvError {
    /// The command name is not one stockade knows.
    #[error("ERR unknown command '{name}', with args beginning with: {args_preview}")]
    UnknownCommand {
        /// The name as the client sent it.
        name: String,
        /// The first arguments, quoted, as Redis shows them.
        args_preview: String,
    },
    /// A known command with an unknown subcommand.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The command (upper case).
        command: String,
        /// The subcommand as sent.
        sub: String,
    },
    /// Too few or too many arguments for the command.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// Options that do not parse or do not combine.
    #[error("ERR syntax error")]
    Syntax,
    /// The key holds a value of another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument or stored string is not a 64-bit signed integer.
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    /// A hash field's value is not a 64-bit signed integer.
    #[error("ERR hash value is not an integer")]
    HashValueNotAnInteger,
    /// INCR-family arithmetic left the 64-bit range.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// DECRBY of the most negative integer.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// An expiry that is zero, negative where not allowed, or out of range.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// EXPIRE's NX combined with XX, GT or LT.
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxWithOthers,
    /// EXPIRE's GT combined with LT.
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtWithLt,
    /// An option the command does not have.
    #[error("ERR Unsupported option {0}")]
    UnsupportedOption(String),
    /// A SCAN cursor that is not an unsigned 64-bit integer.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// The write would take the keyspace over its memory budget.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    /// APPEND would make a string longer than the value limit.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// A key or hash field name longer than the key limit.
    #[error("ERR key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than the value limit.
    #[error("ERR value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A reply larger than any reply may be (`crate::large_reply::LARGE_REPLY_BYTES_MAX`).
    #[error(
        "ERR reply of {len} bytes exceeds the limit of {max} bytes; ask for fewer keys or use SCAN"
    )]
    ReplyTooLarge {
        /// Its encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More arguments, or more argument bytes, than one command may carry.
    #[error("ERR command with {count} arguments and {bytes} bytes exceeds the limits ({args_max} arguments, {bytes_max} bytes)")]
    CommandTooLarge {
        /// Arguments sent.
        count: usize,
        /// Bytes sent.
        bytes: usize,
        /// Argument limit.
        args_max: usize,
        /// Byte limit.
        bytes_max: usize,
    },
    /// SELECT of a database other than 0.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// HELLO with a protocol version that is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    ProtocolVersionNotAnInteger,
    /// HELLO with a protocol version other than 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// AUTH against a server that has no password.
    #[error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")]
    AuthNotConfigured,
    /// CLIENT SETNAME with spaces or control characters.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    /// CONFIG SET: the configuration is fixed for the whole cluster.
    #[error("ERR CONFIG SET is not supported: every replica must run the same configuration")]
    ConfigFixed,
    /// A connection-local command reached the replicated state machine.
    #[error("ERR '{0}' is answered by the connection, not by the replicated state")]
    NotReplicated(String),
    /// A write reached the read-only query path.
    #[error("ERR '{0}' is a write and must be ordered")]
    WriteOnReadPath(String),
}
