//! Counters of a link layer and of a node driver, readable by tests and published as Prometheus
//! metrics (`stockade_link_*`, `stockade_node_*`, labelled with the node id).

use stockade_core::NodeId;

macro_rules! counters {
    ($(#[$doc:meta])* $name:ident, $prefix:literal { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: u64,)*
        }

        impl $name {
            /// Every counter with its metric name.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((concat!($prefix, stringify!($field)), self.$field),)*]
            }

            /// Set the node's Prometheus counters to these values (a no-op without a recorder).
            pub fn publish(&self, node: NodeId) {
                let label = node.0.to_string();
                for (name, value) in self.fields() {
                    metrics::counter!(name, "node" => label.clone()).absolute(value);
                }
            }
        }
    };
}

counters! {
    /// What a link layer saw and did.
    LinkStats, "stockade_link_" {
        /// Datagrams received.
        datagrams_in,
        /// Datagrams sent.
        datagrams_out,
        /// UDP payload bytes received.
        bytes_in,
        /// UDP payload bytes sent.
        bytes_out,
        /// Protocol messages handed up (after reassembly).
        messages_in,
        /// Protocol messages accepted for sending.
        messages_out,
        /// Handshake initiations sent (including retries).
        handshakes_initiated,
        /// Handshakes completed, as initiator or responder.
        handshakes_completed,
        /// Handshakes started because a session reached its rekey limit.
        rekeys,
        /// Handshakes whose initiator's static key is not a configured peer.
        dropped_unknown_key,
        /// Datagrams naming a session index that does not exist.
        dropped_unknown_session,
        /// Handshake packets whose mac1 is wrong (sender does not know our public key).
        dropped_bad_mac,
        /// Datagrams whose nonce was already accepted, and replayed handshake initiations.
        dropped_replay,
        /// Datagrams whose nonce is behind the replay window.
        dropped_too_old,
        /// Datagrams that failed authentication (tampered, truncated ciphertext, wrong key).
        dropped_bad_auth,
        /// Handshake messages that failed Noise processing.
        dropped_handshake_failed,
        /// Datagrams shorter than their type's fixed layout, or empty.
        dropped_truncated,
        /// Datagrams of unknown type and authenticated records that do not parse.
        dropped_malformed,
        /// Fragments refused because the peer had too many partial messages.
        dropped_reassembly_overflow,
        /// Partial messages abandoned at the reassembly timeout.
        dropped_reassembly_timeout,
        /// Fragments contradicting earlier ones, or claiming a message over the limit.
        dropped_reassembly_invalid,
        /// Messages refused for sending because they exceed the message limit.
        dropped_too_large,
        /// Messages dropped because the peer's handshake queue was full.
        dropped_queue_full,
        /// Messages dropped because the handshake never completed.
        dropped_handshake_timeout,
        /// Messages for a node that is not a configured peer.
        dropped_no_such_peer,
        /// Cookie replies sent to initiations that arrived under load without a valid mac2.
        cookie_replies_sent,
        /// Cookie replies received and accepted.
        cookies_received,
        /// Initiations processed under load because they carried a valid cookie.
        handshakes_with_cookie,
    }
}

counters! {
    /// What a node driver did.
    DriverStats, "stockade_node_" {
        /// Messages handed to the protocol.
        messages_delivered,
        /// Messages that failed to decode and were dropped.
        messages_malformed,
        /// Messages the protocol sent.
        messages_sent,
        /// Sends held until a persist batch became durable.
        sends_held,
        /// Sends dropped because `held_sends_max` sends were already held.
        sends_dropped_held_full,
        /// Turns that ended with messages to itself still waiting (`local_messages_per_turn_max`).
        local_messages_deferred,
        /// Persist batches made durable.
        persists,
        /// Bytes of persist batches made durable.
        persist_bytes,
        /// Timers armed.
        timers_set,
        /// Timers that fired.
        timers_fired,
        /// Requests taken from the application.
        requests,
        /// Outputs handed to the application.
        outputs,
    }
}
