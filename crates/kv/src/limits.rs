//! The bounds every replica enforces on keys, values, commands and memory.
//!
//! All replicas of one cluster must run with the same [`Limits`]: a command that one replica
//! rejects and another executes would make their states diverge.

/// Largest key, in bytes (hash field names share this bound).
pub const KEY_BYTES_MAX: usize = 8 * 1024;
/// Largest string value or hash field value, in bytes. One replicated command carries at most
/// `stockade_replication::messages::UPDATE_OP_BYTES_MAX` (16 KiB) encoded, so a SET of more is
/// refused with an error naming that limit; larger values are built with APPEND. Replies of any
/// size up to `crate::large_reply::LARGE_REPLY_BYTES_MAX` are served.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;
/// Most arguments in one command, the command name included.
pub const ARGS_MAX: usize = 64 * 1024;
/// Most bytes of all arguments of one command together.
pub const COMMAND_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Memory budget of the keyspace as [`crate::state::StateMachine`] accounts it.
pub const MEMORY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Accounted overhead of one key beyond its bytes (map node, expiry and scan index entries).
pub const ENTRY_OVERHEAD_BYTES: usize = 96;
/// Accounted overhead of one hash field beyond its bytes.
pub const FIELD_OVERHEAD_BYTES: usize = 48;
/// Expired keys reclaimed before each executed command (active expiry, deterministic).
pub const RECLAIM_PER_EXEC_MAX: usize = 16;

/// The bounds one state machine and its command parser enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest key or hash field name, in bytes.
    pub key_bytes_max: usize,
    /// Largest string value or hash field value, in bytes.
    pub value_bytes_max: usize,
    /// Most arguments in one command, the name included.
    pub args_max: usize,
    /// Most bytes of all arguments of one command.
    pub command_bytes_max: usize,
    /// Memory budget of the keyspace; writes that would exceed it get an OOM error.
    pub memory_bytes_max: usize,
    /// Expired keys reclaimed before each executed command.
    pub reclaim_per_exec_max: usize,
}

impl Limits {
    /// The documented defaults above.
    pub const DEFAULT: Limits = Limits {
        key_bytes_max: KEY_BYTES_MAX,
        value_bytes_max: VALUE_BYTES_MAX,
        args_max: ARGS_MAX,
        command_bytes_max: COMMAND_BYTES_MAX,
        memory_bytes_max: MEMORY_BYTES_MAX,
        reclaim_per_exec_max: RECLAIM_PER_EXEC_MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
