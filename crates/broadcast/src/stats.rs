//! Counters of what one node's broadcast did and what misbehaviour it saw: drivers export them as
//! metrics, and reports say from them what was detected.

/// Counters since the node started. Every dropped input is counted under exactly one reason.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct BroadcastStats {
    /// Broadcasts this node originated (INITIALs sent).
    pub broadcasts_started: u64,
    /// Broadcasts delivered to the application (from every origin).
    pub delivered: u64,
    /// Local requests refused (payload too large, or the request queue full).
    pub requests_refused: u64,
    /// Messages whose signature did not verify.
    pub invalid_signatures: u64,
    /// Messages whose named signer is not the authenticated sender, or names an unknown node, or an
    /// INITIAL not signed by its origin, or a payload over the limit.
    pub malformed: u64,
    /// Messages for sequence numbers beyond the origin's window (or behind it and forgotten).
    pub outside_window: u64,
    /// A signer's second, different vote for the same broadcast and phase (equivocation proven by
    /// two signatures), or a second, different INITIAL from an origin.
    pub equivocations_detected: u64,
    /// ECHO or READY votes naming a payload other than the INITIAL this node received: evidence
    /// that the origin sent different payloads to different nodes (or that the voter lies).
    pub conflicting_votes: u64,
    /// Messages re-sent by retransmission rounds.
    pub retransmissions: u64,
    /// Rounds that stopped early because they reached `retransmit_messages_per_round_max`.
    pub retransmit_rounds_truncated: u64,
    /// READYs re-sent to a peer that asked about a broadcast this node already delivered.
    pub catch_up_replies: u64,
}
