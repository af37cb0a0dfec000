//! The LA-group protocol: the API of paper 000, Fig. 1, as a sans-IO [`Protocol`].
//!
//! One [`LaGroups`] instance runs on each node and serves every group the node belongs to. It
//! creates and joins groups, signs and refreshes this node's attestations, floods link-state
//! announcements of what changed, sends a snapshot of the whole view to a node it starts attesting,
//! expires stale attestations, and reports views and lost attestations to the application.

mod api;
mod monitoring;
mod state;
mod transcripts;

use std::collections::{BTreeMap, BTreeSet};

use stockade_core::time::duration_nanos;
use stockade_core::{Context, CostKind, CpuWork, InvariantViolation, NodeId, Protocol, Time};

use crate::attestation::{
    Accepted, Attestation, AttestationStore, GroupId, Rejected, SignedAttestation, GROUP_ID_BYTES,
    INFO_BYTES_MAX,
};
use crate::graph::AttestationGraph;
use crate::keys::NodeKeys;
use crate::messages::{announce_mac_bytes, AnnounceKind, GroupMessage, ANNOUNCE_ITEMS_MAX};
use crate::robust::{robust_members, Threshold};
pub use api::{
    ConfigError, GroupConfig, GroupError, GroupOutput, GroupRequest, GroupStats, GroupTimer,
};
use state::{GroupState, Membership};
use stockade_crypto::scheme::MultiSigner;

/// One node's LA-group layer.
///
/// # How to drive it
///
/// Build it with [`LaGroups::new`], call `on_start`, then feed messages, timers and
/// [`GroupRequest`]s as the [`Protocol`] contract says. Results and notifications arrive as
/// [`GroupOutput`] deliveries. Queries of paper 000's Fig. 1 that return at once ([`groups`],
/// [`view`], [`attestations_about`], [`graph`]) are methods taking the current time, which must be
/// the time of the last call into the protocol or later.
///
/// [`groups`]: LaGroups::groups
/// [`view`]: LaGroups::view
/// [`attestations_about`]: LaGroups::attestations_about
/// [`graph`]: LaGroups::graph
pub struct LaGroups {
    me: NodeId,
    config: GroupConfig,
    keys: Box<dyn NodeKeys>,
    groups: BTreeMap<GroupId, GroupState>,
    monitors: BTreeMap<(GroupId, NodeId), monitoring::MonitorSlot>,
    view_signer: Option<MultiSigner>,
    /// At most one per group.
    transcripts: BTreeMap<GroupId, transcripts::PendingTranscript>,
    next_probe_nonce: u64,
    stats: GroupStats,
}

impl LaGroups {
    /// The layer for node `me`, signing with `keys`.
    pub fn new(me: NodeId, config: GroupConfig, keys: Box<dyn NodeKeys>) -> Self {
        LaGroups {
            me,
            config,
            keys,
            groups: BTreeMap::new(),
            monitors: BTreeMap::new(),
            view_signer: None,
            transcripts: BTreeMap::new(),
            next_probe_nonce: 0,
            stats: GroupStats::default(),
        }
    }

    /// Give this node a view-signing key (BLS in production), needed to collect and to sign
    /// compact transcripts.
    pub fn with_view_signing(mut self, signer: MultiSigner) -> Self {
        self.view_signer = Some(signer);
        self
    }

    /// The groups this node is a member of (joins still pending are left out).
    pub fn groups(&self) -> Vec<GroupId> {
        self.groups
            .iter()
            .filter(|(_, g)| g.membership == Membership::Member)
            .map(|(&id, _)| id)
            .collect()
    }

    /// This node's current view of `group`: the nodes it reaches along live attestations.
    pub fn view(&self, group: GroupId, now: Time) -> Option<BTreeSet<NodeId>> {
        let now = self.group_time(now);
        self.groups.get(&group).map(|g| g.view(self.me, now))
    }

    /// The live, verified attestations about `node` in `group`.
    pub fn attestations_about(
        &self,
        group: GroupId,
        node: NodeId,
        now: Time,
    ) -> Vec<SignedAttestation> {
        let now = self.group_time(now);
        self.groups
            .get(&group)
            .map(|g| g.store.about(node, now).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every live attestation held for `group` (what a membership transcript is built from).
    pub fn attestations(&self, group: GroupId, now: Time) -> Vec<SignedAttestation> {
        let now = self.group_time(now);
        self.groups
            .get(&group)
            .map(|g| g.store.live(now).cloned().collect())
            .unwrap_or_default()
    }

    /// The attestation graph of `group` with unit costs, for the queries of [`crate::graph`].
    pub fn graph(&self, group: GroupId, now: Time) -> Option<AttestationGraph> {
        let now = self.group_time(now);
        self.groups.get(&group).map(|g| g.graph(self.me, now))
    }

    /// The robust membership of `group` under `threshold` (section "Robust group membership
    /// protocol"): the largest set of nodes each attested by enough other members.
    pub fn robust_members(
        &self,
        group: GroupId,
        threshold: Threshold,
        now: Time,
    ) -> Option<BTreeSet<NodeId>> {
        self.graph(group, now)
            .map(|g| robust_members(&g, threshold))
    }

    /// Whom this node attests in `group`.
    pub fn attesting(&self, group: GroupId) -> Vec<NodeId> {
        self.groups
            .get(&group)
            .map(|g| g.attesting.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The time attestations carry when the context's clock reads `now`: `now` plus
    /// [`GroupConfig::clock_offset`]. Every query method takes the context's time and converts it.
    pub fn group_time(&self, now: Time) -> Time {
        now + self.config.clock_offset
    }

    /// The counters.
    pub fn stats(&self) -> &GroupStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn new_group_state(&self, group: GroupId, membership: Membership) -> GroupState {
        let store = AttestationStore::new(
            group,
            self.config.links_max,
            duration_nanos(self.config.attestation_validity),
        );
        GroupState::new(store, membership, self.me)
    }

    fn start_group_timers(&self, cx: &mut Context<'_, Self>, group: GroupId) {
        cx.set_timer(GroupTimer::Refresh(group), self.config.refresh_interval);
        cx.set_timer(GroupTimer::Sweep(group), self.config.sweep_interval);
    }

    fn create(&mut self, cx: &mut Context<'_, Self>) {
        if self.groups.len() >= self.config.groups_max {
            cx.deliver(GroupOutput::RequestFailed(GroupError::TooManyGroups(
                self.config.groups_max,
            )));
            return;
        }
        // Paper 000, section "LA-groups abstraction": "a new globally unique identifier, a random
        // 160-bit value".
        let mut id = [0u8; GROUP_ID_BYTES];
        cx.rng().fill_bytes(&mut id);
        let group = GroupId(id);
        let state = self.new_group_state(group, Membership::Member);
        self.groups.insert(group, state);
        self.start_group_timers(cx, group);
        cx.deliver(GroupOutput::Created { group });
    }

    fn join(&mut self, cx: &mut Context<'_, Self>, group: GroupId, contacts: Vec<NodeId>) {
        let contacts: BTreeSet<NodeId> = contacts.into_iter().filter(|&c| c != self.me).collect();
        let error = if self.groups.contains_key(&group) {
            Some(GroupError::AlreadyInGroup(group))
        } else if self.groups.len() >= self.config.groups_max {
            Some(GroupError::TooManyGroups(self.config.groups_max))
        } else if contacts.is_empty() || contacts.len() > self.config.join_contacts_max {
            Some(GroupError::BadContacts {
                got: contacts.len(),
                max: self.config.join_contacts_max,
            })
        } else {
            None
        };
        if let Some(e) = error {
            cx.deliver(GroupOutput::RequestFailed(e));
            return;
        }
        let state = self.new_group_state(group, Membership::Joining);
        self.groups.insert(group, state);
        // Paper 000, Fig. 2b: the new node joins by sending an attestation to an existing member
        // and begins monitoring it.
        for contact in contacts {
            if let Some(attestation) = self.sign_own(cx, group, contact, Vec::new(), false) {
                cx.send(contact, GroupMessage::JoinRequest { group, attestation });
            }
        }
        self.start_group_timers(cx, group);
        cx.set_timer(GroupTimer::JoinTimeout(group), self.config.join_timeout);
    }

    /// Record that this node attests `node` and sign a fresh attestation; with `announce`, queue it
    /// for flooding. Returns the signed attestation.
    fn sign_own(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        node: NodeId,
        info: Vec<u8>,
        announce: bool,
    ) -> Option<SignedAttestation> {
        let now = self.group_time(cx.now());
        let state = self.groups.get_mut(&group)?;
        // Issue times of one link strictly increase, so a second statement within one instant
        // supersedes the first everywhere instead of looking like an equivocation.
        let issued = match state.store.get((self.me, node), Time::ZERO) {
            Some(held) if held.attestation.issued >= now => {
                Time::from_nanos(held.attestation.issued.as_nanos() + 1)
            }
            _ => now,
        };
        let expires = issued + self.config.attestation_validity;
        let attestation = Attestation {
            group,
            attester: self.me,
            attestee: node,
            info: info.clone(),
            issued,
            expires,
        };
        let signed = attestation.sign(self.keys.as_ref());
        cx.charge(CpuWork::ops(CostKind::Ed25519Sign, 1));
        match state.store.insert_own(signed.clone(), now) {
            Ok(_) => {
                state.attesting.insert(node, info);
                if announce {
                    state.queue(signed.clone(), None);
                }
                Some(signed)
            }
            Err(e) => {
                cx.deliver(GroupOutput::RequestFailed(GroupError::Store(e)));
                None
            }
        }
    }

    /// Start (or refresh the info of) attesting `node`; a node newly attested gets a snapshot.
    fn attest(&mut self, cx: &mut Context<'_, Self>, group: GroupId, node: NodeId, info: Vec<u8>) {
        let error = match self.groups.get(&group) {
            None => Some(GroupError::UnknownGroup(group)),
            Some(_) if node == self.me => Some(GroupError::SelfAttestation),
            Some(_) if info.len() > INFO_BYTES_MAX => Some(GroupError::InfoTooLong(info.len())),
            Some(_) => None,
        };
        if let Some(e) = error {
            cx.deliver(GroupOutput::RequestFailed(e));
            return;
        }
        let newly = !self
            .groups
            .get(&group)
            .is_some_and(|g| g.attesting.contains_key(&node));
        if self.sign_own(cx, group, node, info, true).is_none() {
            return;
        }
        if newly {
            self.send_snapshot(cx, group, node);
        }
        self.arm_flush(cx, group);
        self.report_view(cx, group);
    }

    fn stop_attesting(&mut self, cx: &mut Context<'_, Self>, group: GroupId, node: NodeId) {
        let Some(state) = self.groups.get_mut(&group) else {
            cx.deliver(GroupOutput::RequestFailed(GroupError::UnknownGroup(group)));
            return;
        };
        if state.attesting.remove(&node).is_some() {
            state.store.remove((self.me, node));
            state.pending.remove(&(self.me, node));
            cx.deliver(GroupOutput::AttestationLost {
                group,
                attester: self.me,
                attestee: node,
            });
            self.report_view(cx, group);
        }
    }

    /// Paper 000, section "Compact signature representation": a node that starts attesting another
    /// sends it "a snapshot of the attestation graph" instead of letting it wait for individual
    /// announcements.
    fn send_snapshot(&mut self, cx: &mut Context<'_, Self>, group: GroupId, to: NodeId) {
        let Some(state) = self.groups.get(&group) else {
            return;
        };
        let all: Vec<SignedAttestation> = state
            .store
            .live(self.group_time(cx.now()))
            .cloned()
            .collect();
        self.stats.snapshots_sent += 1;
        self.send_announcements(cx, group, to, AnnounceKind::Snapshot, &all);
    }

    /// Send `attestations` to `to` in announcements of at most [`ANNOUNCE_ITEMS_MAX`], each MACed
    /// when a key with `to` was negotiated.
    fn send_announcements(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        to: NodeId,
        kind: AnnounceKind,
        attestations: &[SignedAttestation],
    ) {
        for chunk in attestations.chunks(ANNOUNCE_ITEMS_MAX) {
            let bytes = announce_mac_bytes(&group, kind, chunk);
            let mac = self.keys.mac(to, &bytes);
            if mac.is_some() {
                cx.charge(CpuWork::bytes(CostKind::Mac, bytes.len()));
            }
            self.stats.announcements_sent += 1;
            cx.send(
                to,
                GroupMessage::Announce {
                    group,
                    kind,
                    attestations: chunk.to_vec(),
                    mac,
                },
            );
        }
    }

    fn arm_flush(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        if let Some(state) = self.groups.get_mut(&group) {
            if !state.pending.is_empty() && !state.flush_armed {
                state.flush_armed = true;
                cx.set_timer(GroupTimer::Flush(group), self.config.announce_delay);
            }
        }
    }

    /// Flood the collected changes to every neighbour, except each change's source and attester
    /// (who already hold it).
    fn flush(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let now = self.group_time(cx.now());
        let Some(state) = self.groups.get_mut(&group) else {
            return;
        };
        state.flush_armed = false;
        let pending = std::mem::take(&mut state.pending);
        let neighbours = state.neighbours(self.me, now);
        for to in neighbours {
            let items: Vec<SignedAttestation> = pending
                .values()
                .filter(|p| p.learned_from != Some(to) && p.attestation.attestation.attester != to)
                .filter(|p| p.attestation.attestation.is_live(now))
                .map(|p| p.attestation.clone())
                .collect();
            if !items.is_empty() {
                self.send_announcements(cx, group, to, AnnounceKind::Changes, &items);
            }
        }
    }

    fn on_join_request(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        group: GroupId,
        attestation: SignedAttestation,
    ) {
        let Some(state) = self.groups.get(&group) else {
            self.stats.messages_for_unknown_groups += 1;
            return;
        };
        let a = &attestation.attestation;
        // Only the joiner itself may ask, with its attestation of this member.
        if state.membership != Membership::Member || a.attester != from || a.attestee != self.me {
            self.stats.rejected_other += 1;
            return;
        }
        if !self.accept(cx, group, from, attestation, false) {
            return;
        }
        cx.deliver(GroupOutput::JoinRequested { group, node: from });
        if self.config.attest_joiners {
            self.attest(cx, group, from, Vec::new());
        }
        self.arm_flush(cx, group);
        self.report_view(cx, group);
    }

    fn on_announce(
        &mut self,
        cx: &mut Context<'_, Self>,
        from: NodeId,
        group: GroupId,
        kind: AnnounceKind,
        attestations: Vec<SignedAttestation>,
        mac: Option<crate::keys::MacTag>,
    ) {
        if !self.groups.contains_key(&group) {
            self.stats.messages_for_unknown_groups += 1;
            return;
        }
        let vouched = match (self.config.mac_vouching, mac) {
            (true, Some(tag)) => {
                let bytes = announce_mac_bytes(&group, kind, &attestations);
                cx.charge(CpuWork::bytes(CostKind::Mac, bytes.len()));
                self.keys.verify_mac(from, &bytes, &tag)
            }
            _ => false,
        };
        if vouched {
            self.stats.mac_vouched_announcements += 1;
        }
        for attestation in attestations {
            // A neighbour's MAC proves what the neighbour itself says, exactly as its signature
            // would, so its OWN attestations need no signature check (paper 000's optimization).
            // Attestations it relays from others keep theirs: otherwise one Byzantine neighbour
            // could put a node into this node's view with no real attestation chain.
            let own_link = vouched && attestation.attestation.attester == from;
            self.accept(cx, group, from, attestation, own_link);
        }
        self.check_joined(cx, group);
        self.arm_flush(cx, group);
        self.report_view(cx, group);
    }

    /// Store a received attestation and queue it for flooding when it changed something. Returns
    /// whether it is held now.
    fn accept(
        &mut self,
        cx: &mut Context<'_, Self>,
        group: GroupId,
        from: NodeId,
        attestation: SignedAttestation,
        vouched: bool,
    ) -> bool {
        let now = self.group_time(cx.now());
        let Some(state) = self.groups.get_mut(&group) else {
            return false;
        };
        // This node's own links are decided here, never by what others relay.
        if attestation.attestation.attester == self.me {
            return false;
        }
        let (outcome, verified) =
            state
                .store
                .insert(attestation.clone(), now, self.keys.as_ref(), vouched);
        if verified {
            self.stats.signatures_verified += 1;
            cx.charge(CpuWork::ops(CostKind::Ed25519Verify, 1));
        }
        match outcome {
            Ok(Accepted::Duplicate) => true,
            Ok(Accepted::NewLink | Accepted::Refreshed) => {
                self.stats.attestations_accepted += 1;
                state.queue(attestation, Some(from));
                true
            }
            Err(e) => {
                match e {
                    Rejected::Forged { .. } => self.stats.rejected_forged += 1,
                    Rejected::Replayed { .. } => self.stats.rejected_replayed += 1,
                    Rejected::Expired { .. } => self.stats.rejected_expired += 1,
                    _ => self.stats.rejected_other += 1,
                }
                false
            }
        }
    }

    fn check_joined(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let now = self.group_time(cx.now());
        let Some(state) = self.groups.get_mut(&group) else {
            return;
        };
        if state.membership == Membership::Joining && !state.store.about(self.me, now).is_empty() {
            state.membership = Membership::Member;
            cx.cancel_timer(GroupTimer::JoinTimeout(group));
            cx.deliver(GroupOutput::JoinResult {
                group,
                joined: true,
            });
            self.report_view(cx, group);
        }
    }

    fn report_view(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let now = self.group_time(cx.now());
        let Some(state) = self.groups.get_mut(&group) else {
            return;
        };
        // A joiner's view holds only the contacts it attests until a member attests it back.
        if state.membership != Membership::Member {
            return;
        }
        let view = state.view(self.me, now);
        if view != state.reported_view {
            state.reported_view = view.clone();
            cx.deliver(GroupOutput::ViewChanged { group, view });
        }
    }

    fn refresh(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let Some(state) = self.groups.get(&group) else {
            return;
        };
        let attesting: Vec<(NodeId, Vec<u8>)> = state
            .attesting
            .iter()
            .map(|(&n, i)| (n, i.clone()))
            .collect();
        for (node, info) in attesting {
            self.sign_own(cx, group, node, info, true);
        }
        cx.set_timer(GroupTimer::Refresh(group), self.config.refresh_interval);
        self.arm_flush(cx, group);
    }

    fn sweep(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        let now = self.group_time(cx.now());
        let Some(state) = self.groups.get_mut(&group) else {
            return;
        };
        for lost in state.store.expire(now) {
            let (attester, attestee) = lost.link();
            cx.deliver(GroupOutput::AttestationLost {
                group,
                attester,
                attestee,
            });
        }
        cx.set_timer(GroupTimer::Sweep(group), self.config.sweep_interval);
        self.report_view(cx, group);
    }

    fn join_timeout(&mut self, cx: &mut Context<'_, Self>, group: GroupId) {
        if self
            .groups
            .get(&group)
            .is_some_and(|g| g.membership == Membership::Joining)
        {
            self.groups.remove(&group);
            self.monitors.retain(|(g, _), _| *g != group);
            self.transcripts.remove(&group);
            cx.cancel_timer(GroupTimer::Refresh(group));
            cx.cancel_timer(GroupTimer::Sweep(group));
            cx.cancel_timer(GroupTimer::Flush(group));
            cx.deliver(GroupOutput::JoinResult {
                group,
                joined: false,
            });
        }
    }
}

impl Protocol for LaGroups {
    type Message = GroupMessage;
    type Timer = GroupTimer;
    type Request = GroupRequest;
    type Output = GroupOutput;

    fn on_start(&mut self, _cx: &mut Context<'_, Self>) {}

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: GroupMessage) {
        match message {
            GroupMessage::JoinRequest { group, attestation } => {
                self.on_join_request(cx, from, group, attestation)
            }
            GroupMessage::Announce {
                group,
                kind,
                attestations,
                mac,
            } => self.on_announce(cx, from, group, kind, attestations, mac),
            GroupMessage::Probe { group, nonce } => {
                if self.groups.contains_key(&group) {
                    cx.send(from, GroupMessage::ProbeReply { group, nonce });
                }
            }
            GroupMessage::ViewSignRequest {
                group,
                epoch,
                view_digest,
            } => self.on_view_sign_request(cx, from, group, epoch, view_digest),
            GroupMessage::ViewSignShare {
                group,
                epoch,
                view_digest,
                signature,
            } => self.on_view_sign_share(cx, from, group, epoch, view_digest, signature),
            GroupMessage::ProbeReply { group, nonce } => {
                self.on_probe_reply(cx, from, group, nonce)
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: GroupTimer) {
        match timer {
            GroupTimer::Refresh(group) => self.refresh(cx, group),
            GroupTimer::Sweep(group) => self.sweep(cx, group),
            GroupTimer::Flush(group) => self.flush(cx, group),
            GroupTimer::JoinTimeout(group) => self.join_timeout(cx, group),
            GroupTimer::Probe(group, node) => self.probe(cx, group, node),
            GroupTimer::TranscriptTimeout(group) => self.finish_transcript(cx, group),
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: GroupRequest) {
        match request {
            GroupRequest::Create => self.create(cx),
            GroupRequest::Join { group, contacts } => self.join(cx, group, contacts),
            GroupRequest::Attest { group, node, info } => self.attest(cx, group, node, info),
            GroupRequest::StopAttesting { group, node } => self.stop_attesting(cx, group, node),
            GroupRequest::Monitor {
                group,
                node,
                monitor,
            } => self.start_monitor(cx, group, node, monitor),
            GroupRequest::StopMonitoring { group, node } => self.stop_monitor(cx, group, node),
            GroupRequest::BuildTranscript { group, directory } => {
                self.start_transcript(cx, group, directory)
            }
            GroupRequest::Observe { group, observation } => self.observe(cx, group, &observation),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (id, g) in &self.groups {
            if g.store.group() != *id {
                return Err(InvariantViolation(format!(
                    "store of {id} holds group {}",
                    g.store.group()
                )));
            }
            if g.store.len() > self.config.links_max || g.pending.len() > self.config.links_max {
                return Err(InvariantViolation(format!(
                    "{id} holds more than links_max attestations"
                )));
            }
            if g.attesting.contains_key(&self.me) {
                return Err(InvariantViolation(format!(
                    "{} attests itself in {id}",
                    self.me
                )));
            }
        }
        if self.groups.len() > self.config.groups_max {
            return Err(InvariantViolation(
                "more groups than groups_max".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
