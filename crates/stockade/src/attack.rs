//! The one Byzantine attack on Bracha broadcast that every driver replays: the attacker re-signs
//! its messages with a different payload for a third of the receivers, so as an origin it
//! equivocates (different INITIALs to different nodes) and as a voter it lies. The simulator
//! applies it through its `Byzantine` wrapper; a real process applies it in
//! [`crate::cluster::faults`].

use stockade_broadcast::{BroadcastMessage, KeyRing};
use stockade_core::NodeId;

/// Which receivers the attacker lies to about a broadcast: about a third of the nodes, a different
/// third for each sequence number, so that some equivocated broadcasts still reach a quorum (and
/// must then be delivered everywhere) and others never do.
pub fn lied_to(to: NodeId, m: &BroadcastMessage) -> bool {
    (u64::from(to.0) + m.instance.seq).is_multiple_of(3)
}

/// What the attacker (holding `keys`) sends to `to` instead of `m`, or `None` to send `m`.
pub fn equivocate(keys: &KeyRing, to: NodeId, m: &BroadcastMessage) -> Option<BroadcastMessage> {
    if !lied_to(to, m) {
        return None;
    }
    let mut other = m.payload.clone();
    other.extend_from_slice(b"/forged");
    Some(BroadcastMessage::signed(keys, m.phase, m.instance, other))
}
