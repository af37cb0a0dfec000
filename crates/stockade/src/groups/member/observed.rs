//! [`LaGroups`] wrapped so the daemon can show what it sees: every `view_publish` period (and
//! never more often) it delivers a [`PublishedView`] of each group, taken inside the protocol
//! where the state lives, while the runtime owns the protocol. Publishing per event instead would
//! copy the whole graph on every message, which a busy group sends many of per second.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use stockade_attest::attestation::GroupId;
use stockade_attest::group::{GroupOutput, GroupRequest, GroupTimer, LaGroups};
use stockade_core::{Context, NodeId, PersistToken, Protocol, Time};

/// One group as the member saw it when it published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The nodes reachable along attestations, this member included.
    pub view: BTreeSet<NodeId>,
    /// Live attestations, `(attester, attestee)`.
    pub attestations: BTreeSet<(NodeId, NodeId)>,
}

/// What the member published: each group it is in, at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedView {
    /// When it was taken (the runtime's clock).
    pub at: Time,
    /// Per group.
    pub groups: BTreeMap<GroupId, GroupSnapshot>,
}

/// What [`ObservedGroups`] delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOutput {
    /// The protocol's own output.
    Group(GroupOutput),
    /// The periodic picture of the groups.
    Published(PublishedView),
}

/// [`ObservedGroups`]' timers: the protocol's, and the publication period.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObservedTimer {
    /// A timer of [`LaGroups`].
    Group(GroupTimer),
    /// Publish the view.
    Publish,
}

/// [`LaGroups`] that publishes its view every `publish_period`.
pub struct ObservedGroups {
    inner: LaGroups,
    publish_period: Duration,
}

impl ObservedGroups {
    /// Wrap `inner`, publishing every `publish_period` (which must be positive).
    pub fn new(inner: LaGroups, publish_period: Duration) -> ObservedGroups {
        ObservedGroups {
            inner,
            publish_period,
        }
    }

    fn step(
        &mut self,
        cx: &mut Context<'_, Self>,
        run: impl FnOnce(&mut LaGroups, &mut Context<'_, LaGroups>),
    ) {
        let inner = &mut self.inner;
        let outputs = cx.child(|m| m, ObservedTimer::Group, |child| run(inner, child));
        for output in outputs {
            cx.deliver(MemberOutput::Group(output));
        }
    }

    /// The groups as the protocol holds them now.
    fn snapshot(&self, now: Time) -> PublishedView {
        let groups = self
            .inner
            .groups()
            .into_iter()
            .map(|group| {
                let view = self.inner.view(group, now).unwrap_or_default();
                let attestations = self
                    .inner
                    .graph(group, now)
                    .map(|g| g.edges().map(|(from, to, _)| (from, to)).collect())
                    .unwrap_or_default();
                (group, GroupSnapshot { view, attestations })
            })
            .collect();
        PublishedView { at: now, groups }
    }
}

impl Protocol for ObservedGroups {
    type Message = <LaGroups as Protocol>::Message;
    type Timer = ObservedTimer;
    type Request = GroupRequest;
    type Output = MemberOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        self.step(cx, |p, c| p.on_start(c));
        cx.set_timer(ObservedTimer::Publish, self.publish_period);
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: Self::Message) {
        self.step(cx, |p, c| p.on_message(c, from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: Self::Timer) {
        match timer {
            ObservedTimer::Group(timer) => self.step(cx, |p, c| p.on_timer(c, timer)),
            ObservedTimer::Publish => {
                let published = self.snapshot(cx.now());
                cx.deliver(MemberOutput::Published(published));
                cx.set_timer(ObservedTimer::Publish, self.publish_period);
            }
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: Self::Request) {
        self.step(cx, |p, c| p.on_request(c, request));
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        self.step(cx, |p, c| p.on_persisted(c, token));
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use stockade_attest::group::GroupConfig;
    use stockade_attest::keys::SchemeKeys;
    use stockade_attest::messages::GroupMessage;
    use stockade_core::Effect;
    use stockade_crypto::scheme::SimulationKeys;
    use stockade_crypto::CryptoMode;

    use super::*;

    const PERIOD: Duration = Duration::from_millis(500);

    fn member() -> ObservedGroups {
        let keys = SimulationKeys::new(CryptoMode::SimFast, 1);
        let scheme = SchemeKeys::for_simulation(&keys, NodeId(0), [0, 1].map(NodeId));
        ObservedGroups::new(
            LaGroups::new(NodeId(0), GroupConfig::default(), Box::new(scheme)),
            PERIOD,
        )
    }

    /// Run one call at `now`; returns its effects.
    fn call(
        protocol: &mut ObservedGroups,
        now: Time,
        run: impl FnOnce(&mut ObservedGroups, &mut Context<'_, ObservedGroups>),
    ) -> Vec<Effect<ObservedGroups>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut token = 0;
        let mut cx = Context::new(now, NodeId(0), &mut rng, &mut token, Vec::new());
        run(protocol, &mut cx);
        cx.into_effects()
    }

    fn published(effects: &[Effect<ObservedGroups>]) -> Vec<&PublishedView> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver(MemberOutput::Published(p)) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn arms_publish(effects: &[Effect<ObservedGroups>], at: Time) -> bool {
        effects.iter().any(|e| {
            matches!(e, Effect::SetTimer { timer: ObservedTimer::Publish, at: when } if *when == at)
        })
    }

    #[test]
    fn publishes_only_on_its_period_never_per_event() {
        let mut p = member();
        let start = call(&mut p, Time::ZERO, |p, c| p.on_start(c));
        assert!(arms_publish(&start, Time::ZERO + PERIOD));
        assert!(published(&start).is_empty());

        let t1 = Time::from_nanos(1_000_000);
        let create = call(&mut p, t1, |p, c| p.on_request(c, GroupRequest::Create));
        let group = create
            .iter()
            .find_map(|e| match e {
                Effect::Deliver(MemberOutput::Group(GroupOutput::Created { group })) => {
                    Some(*group)
                }
                _ => None,
            })
            .expect("the group is created");
        assert!(
            create.iter().any(|e| matches!(
                e,
                Effect::SetTimer {
                    timer: ObservedTimer::Group(_),
                    ..
                }
            )),
            "the protocol's timers are wrapped"
        );
        // Many events in one period: none publishes.
        for nonce in 0..50 {
            let probe = GroupMessage::Probe { group, nonce };
            let effects = call(&mut p, t1, |p, c| p.on_message(c, NodeId(1), probe));
            assert!(published(&effects).is_empty());
        }

        let due = Time::ZERO + PERIOD;
        let tick = call(&mut p, due, |p, c| p.on_timer(c, ObservedTimer::Publish));
        let views = published(&tick);
        assert_eq!(views.len(), 1, "one publication per period");
        assert_eq!(views[0].at, due);
        assert_eq!(views[0].groups[&group].view, [NodeId(0)].into());
        assert!(arms_publish(&tick, due + PERIOD), "the period re-arms");
    }
}
