//! Driving the pluggable monitors: probe on a timer, feed replies, misses and observations, and
//! attest or withdraw as each monitor's verdict says (paper 000, section "Discussion: stateful
//! monitoring").

use stockade_core::{Context, NodeId, Time};

use super::{GroupError, GroupOutput, GroupTimer, LaGroups};
use crate::attestation::GroupId;
use crate::messages::GroupMessage;
use crate::monitor::{Monitor, Observation, Verdict};

/// One running monitor and its unanswered probe.
#[derive(Debug)]
pub(crate) struct MonitorSlot {
    pub monitor: Box<dyn Monitor>,
    /// The nonce and send time of the probe not yet answered.
    pub outstanding: Option<(u64, Time)>,
}

impl LaGroups {
    pub(super) fn start_monitor(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        node: NodeId,
        monitor: Box<dyn Monitor>,
    ) {
        let error = if !self.groups.contains_key(&group) {
            Some(GroupError::UnknownGroup(group))
        } else if node == self.me {
            Some(GroupError::SelfAttestation)
        } else if !self.monitors.contains_key(&(group, node))
            && self.monitors.len() >= self.config.monitors_max
        {
            Some(GroupError::TooManyMonitors(self.config.monitors_max))
        } else {
            None
        };
        if let Some(e) = error {
            cx.deliver(GroupOutput::RequestFailed(e));
            return;
        }
        self.monitors.insert(
            (group, node),
            MonitorSlot {
                monitor,
                outstanding: None,
            },
        );
        self.probe(cx, group, node);
    }

    pub(super) fn stop_monitor(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        node: NodeId,
    ) {
        if self.monitors.remove(&(group, node)).is_some() {
            cx.cancel_timer(GroupTimer::Probe(group, node));
        }
    }

    /// Count the previous probe as missed if still unanswered, then send a new one.
    pub(super) fn probe(&mut self, cx: &mut Context<'_, Self>, group: GroupId, node: NodeId) {
        let now = cx.now();
        let Some(slot) = self.monitors.get_mut(&(group, node)) else {
            return;
        };
        if slot.outstanding.take().is_some() {
            slot.monitor.on_timeout(now);
        }
        self.next_probe_nonce += 1;
        let nonce = self.next_probe_nonce;
        slot.outstanding = Some((nonce, now));
        cx.send(node, GroupMessage::Probe { group, nonce });
        cx.set_timer(GroupTimer::Probe(group, node), self.config.probe_interval);
        self.apply_verdict(cx, group, node);
    }

    pub(super) fn on_probe_reply(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        group: GroupId,
        nonce: u64,
    ) {
        let now = cx.now();
        let Some(slot) = self.monitors.get_mut(&(group, from)) else {
            return;
        };
        // Only the answer to the outstanding probe counts; a late or forged nonce is ignored.
        match slot.outstanding {
            Some((expected, sent)) if expected == nonce => {
                slot.outstanding = None;
                slot.monitor.on_reply(now, now - sent);
            }
            _ => return,
        }
        self.apply_verdict(cx, group, from);
    }

    pub(super) fn observe(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        observation: &Observation,
    ) {
        if !self.groups.contains_key(&group) {
            cx.deliver(GroupOutput::RequestFailed(GroupError::UnknownGroup(group)));
            return;
        }
        let now = cx.now();
        let watched: Vec<NodeId> = self
            .monitors
            .keys()
            .filter(|(g, _)| *g == group)
            .map(|&(_, n)| n)
            .collect();
        for node in watched {
            if let Some(slot) = self.monitors.get_mut(&(group, node)) {
                slot.monitor.on_observation(now, node, observation);
            }
            self.apply_verdict(cx, group, node);
        }
    }

    /// Attest or withdraw as the monitor of `node` now says; nothing when that is already so.
    fn apply_verdict(&mut self, cx: &mut Context<'_, Self>, group: GroupId, node: NodeId) {
        let Some(slot) = self.monitors.get(&(group, node)) else {
            return;
        };
        let current = self.groups.get(&group).and_then(|g| g.attesting.get(&node));
        match slot.monitor.verdict() {
            Verdict::Attest { info } if current != Some(&info) => {
                self.attest(cx, group, node, info)
            }
            Verdict::Withdraw if current.is_some() => self.stop_attesting(cx, group, node),
            _ => {}
        }
    }
}
