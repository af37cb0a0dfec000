//! The daemon's subscribed control connections, by topic: a multicast goes to every one of them,
//! an anycast that chose this node to exactly one (taking turns). Each connection has a bounded
//! queue ([`SUBSCRIBER_MESSAGES_QUEUED_MAX`]); a connection that falls that far behind loses
//! messages rather than holding up the node.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::id::OverlayId;

/// Messages queued for one subscribed connection; beyond this, messages to it are dropped.
pub const SUBSCRIBER_MESSAGES_QUEUED_MAX: usize = 256;

/// One message for a subscribed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMessage {
    /// The data.
    pub data: Vec<u8>,
    /// An anycast that chose this connection (otherwise a multicast to all of them).
    pub anycast: bool,
}

/// Where an anycast that chose this node went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnycastHandOff {
    /// One connection took it; false when no open connection had room (it is lost).
    pub delivered: bool,
    /// Nobody here watches the topic any more: the node should leave it.
    pub abandoned: bool,
}

/// The subscribed connections of each topic. Closed connections are dropped whenever a
/// connection subscribes or closes or a message arrives, so the map holds at most the open
/// connections and the node leaves a topic once nobody here listens to it.
#[derive(Default)]
pub(super) struct Watchers {
    by_topic: BTreeMap<OverlayId, Vec<mpsc::Sender<TopicMessage>>>,
}

impl Watchers {
    /// Add a watcher; returns the topics nobody watches any more.
    pub fn add(
        &mut self,
        topic: OverlayId,
        messages: mpsc::Sender<TopicMessage>,
    ) -> Vec<OverlayId> {
        let mut abandoned = Vec::new();
        self.by_topic.retain(|t, list| {
            list.retain(|w| !w.is_closed());
            let keep = !list.is_empty() || *t == topic;
            if !keep {
                abandoned.push(*t);
            }
            keep
        });
        self.by_topic.entry(topic).or_default().push(messages);
        abandoned
    }

    /// Drop `topic`'s closed watchers (one just closed); true when nobody watches it any more.
    pub fn forget_closed(&mut self, topic: OverlayId) -> bool {
        self.by_topic.contains_key(&topic) && self.open_watchers(topic).is_none()
    }

    /// `topic`'s open watchers, after dropping the closed ones; `None` (and the topic forgotten)
    /// when there are none.
    fn open_watchers(&mut self, topic: OverlayId) -> Option<&mut Vec<mpsc::Sender<TopicMessage>>> {
        let list = self.by_topic.get_mut(&topic)?;
        list.retain(|w| !w.is_closed());
        if list.is_empty() {
            self.by_topic.remove(&topic);
            return None;
        }
        self.by_topic.get_mut(&topic)
    }

    /// Pass a multicast to `topic`'s watchers; true when nobody watches it any more.
    pub fn deliver(&mut self, topic: OverlayId, data: &[u8]) -> bool {
        if !self.by_topic.contains_key(&topic) {
            return false;
        }
        let Some(list) = self.open_watchers(topic) else {
            return true;
        };
        for watcher in list.iter() {
            let message = TopicMessage {
                data: data.to_vec(),
                anycast: false,
            };
            if watcher.try_send(message).is_err() {
                tracing::warn!(?topic, "a subscriber is behind by {SUBSCRIBER_MESSAGES_QUEUED_MAX} messages; dropped a multicast for it");
            }
        }
        false
    }

    /// Pass an anycast to one of `topic`'s watchers: the first with room, which then goes to the
    /// back of the line (paper 002, "Scribe: Anycast" delivers to one member; a daemon with
    /// several subscribed connections hands it to one of them).
    pub fn deliver_one(&mut self, topic: OverlayId, data: Vec<u8>) -> AnycastHandOff {
        let known = self.by_topic.contains_key(&topic);
        let Some(list) = self.open_watchers(topic) else {
            return AnycastHandOff {
                delivered: false,
                abandoned: known,
            };
        };
        let mut message = TopicMessage {
            data,
            anycast: true,
        };
        for index in 0..list.len() {
            match list[index].try_send(message) {
                Ok(()) => {
                    let chosen = list.remove(index);
                    list.push(chosen);
                    return AnycastHandOff {
                        delivered: true,
                        abandoned: false,
                    };
                }
                Err(
                    mpsc::error::TrySendError::Full(back) | mpsc::error::TrySendError::Closed(back),
                ) => message = back,
            }
        }
        AnycastHandOff {
            delivered: false,
            abandoned: false,
        }
    }

    /// Topics watched.
    #[cfg(test)]
    fn topics(&self) -> usize {
        self.by_topic.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(receiver: &mut mpsc::Receiver<TopicMessage>) -> Vec<TopicMessage> {
        let mut got = Vec::new();
        while let Ok(message) = receiver.try_recv() {
            got.push(message);
        }
        got
    }

    #[test]
    fn a_slow_subscriber_loses_multicasts_beyond_its_queue_and_closed_ones_are_forgotten() {
        let mut watchers = Watchers::default();
        let topic = OverlayId(1);
        let (slow_tx, mut slow) = mpsc::channel(SUBSCRIBER_MESSAGES_QUEUED_MAX);
        assert!(watchers.add(topic, slow_tx).is_empty());
        for i in 0..SUBSCRIBER_MESSAGES_QUEUED_MAX + 10 {
            assert!(!watchers.deliver(topic, &i.to_be_bytes()));
        }
        assert_eq!(
            drain(&mut slow).len(),
            SUBSCRIBER_MESSAGES_QUEUED_MAX,
            "the rest were dropped"
        );

        // Once its only watcher closes, the topic is reported abandoned: by the next multicast,
        // or by the next subscription to another topic.
        drop(slow);
        assert!(watchers.deliver(topic, b"x"), "nobody listens any more");
        let (closed_tx, closed) = mpsc::channel(1);
        watchers.add(OverlayId(2), closed_tx);
        drop(closed);
        let (open_tx, _open) = mpsc::channel(1);
        assert_eq!(watchers.add(OverlayId(3), open_tx), vec![OverlayId(2)]);
        assert_eq!(watchers.topics(), 1);
    }

    #[test]
    fn an_anycast_goes_to_one_watcher_in_turn_and_skips_full_and_closed_ones() {
        let mut watchers = Watchers::default();
        let topic = OverlayId(7);
        let (a_tx, mut a) = mpsc::channel(1);
        let (b_tx, mut b) = mpsc::channel(1);
        watchers.add(topic, a_tx);
        watchers.add(topic, b_tx);
        let delivered = AnycastHandOff {
            delivered: true,
            abandoned: false,
        };
        let one = |data: &[u8]| {
            vec![TopicMessage {
                data: data.to_vec(),
                anycast: true,
            }]
        };
        assert_eq!(watchers.deliver_one(topic, b"1".to_vec()), delivered);
        assert_eq!(watchers.deliver_one(topic, b"2".to_vec()), delivered);
        assert_eq!(
            drain(&mut a),
            one(b"1"),
            "a first, then b (whose queue is now full)"
        );
        assert_eq!(watchers.deliver_one(topic, b"3".to_vec()), delivered);
        assert_eq!(drain(&mut a), one(b"3"), "a's turn again");
        // b's turn, but its queue is full: a takes it.
        assert_eq!(watchers.deliver_one(topic, b"4".to_vec()), delivered);
        let nobody_has_room = watchers.deliver_one(topic, b"5".to_vec());
        assert_eq!(
            nobody_has_room,
            AnycastHandOff {
                delivered: false,
                abandoned: false
            }
        );
        assert_eq!(drain(&mut a), one(b"4"));
        assert_eq!(drain(&mut b), one(b"2"), "b only ever got one");

        // Both close: the anycast is lost and the node should leave the topic.
        drop((a, b));
        assert_eq!(
            watchers.deliver_one(topic, b"6".to_vec()),
            AnycastHandOff {
                delivered: false,
                abandoned: true
            }
        );
        assert_eq!(watchers.topics(), 0);
        assert_eq!(
            watchers.deliver_one(topic, b"7".to_vec()),
            AnycastHandOff {
                delivered: false,
                abandoned: false
            },
            "already left"
        );
    }

    #[test]
    fn a_closed_connection_is_forgotten_at_once_and_the_last_one_abandons_the_topic() {
        let mut watchers = Watchers::default();
        let topic = OverlayId(9);
        let (a_tx, a) = mpsc::channel(1);
        let (b_tx, b) = mpsc::channel(1);
        watchers.add(topic, a_tx);
        watchers.add(topic, b_tx);
        drop(a);
        assert!(!watchers.forget_closed(topic), "b still listens");
        drop(b);
        assert!(watchers.forget_closed(topic), "nobody listens");
        assert_eq!(watchers.topics(), 0);
    }
}
