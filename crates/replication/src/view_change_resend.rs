//! Re-sending a view change's state under message loss.
//!
//! Every view-change message (PRIME.md "View change": report, Bracha echo and ready, certificates,
//! VC-LIST, VC-PARTIAL-SIG, REPLAY) is sent once; one lost datagram can leave a server short of a
//! quorum, and the view change would stall until suspect-leader gives up on the new leader too.
//! Paper 004 section 5.1 assumes the timely traffic gets through; over lossy links we make it so:
//!
//! * while a view is being installed, every `view_change_resend_period` a server re-sends the
//!   NEW-LEADER proof, every view-change message it sent in this view change, and the prepare
//!   certificates it holds (at most `view_change_resends_max` rounds per view change);
//! * a server that already installed the view and hears a view-change message of that view from
//!   one still installing it (a laggard) answers it, at its next period, with the same state plus
//!   the REPLAY it accepted, so a laggard can finish although the others stopped re-sending. A
//!   server still in the previous view (restarted from a store written before the change, or it
//!   missed every NEW-LEADER proof) is answered the same way when its old-view ordering messages
//!   arrive: the NEW-LEADER proof moves it to this view, and the rest installs it.
//!
//! Everything re-sent is signed and idempotent at the receiver (duplicates are ignored), so
//! re-sending changes no outcome, only whether it is reached.

use stockade_core::Context;

use crate::app::Application;
use crate::config::ParticipantId;
use crate::messages::PrimeMessage;
use crate::replica::{Prime, PrimeTimer};

impl<A: Application> Prime<A> {
    /// Broadcast a view-change message and remember it for re-sending.
    pub(crate) fn broadcast_view_change(
        &mut self,
        cx: &mut Context<'_, Self>,
        message: PrimeMessage,
    ) {
        self.broadcast(cx, &message);
        self.vc.sent.push(message);
    }

    /// A view-change message of `view` arrived after this server installed `view`: its sender is
    /// still installing it and is answered at the next re-send period.
    pub(crate) fn note_laggard(
        &mut self,
        cx: &mut Context<'_, Self>,
        view: u64,
        sender: ParticipantId,
    ) {
        if view != self.view
            || self.vc.installing
            || sender == self.me
            || sender.index() >= self.n()
        {
            return;
        }
        if self.vc.laggards.is_empty() && self.vc.resends < self.cfg.view_change_resends_max {
            cx.set_timer(
                PrimeTimer::ViewChangeResend,
                self.cfg.view_change_resend_period,
            );
        }
        self.vc.laggards.insert(sender);
    }

    /// The re-send period: re-send to everyone while installing, else answer the laggards.
    pub(crate) fn resend_view_change(&mut self, cx: &mut Context<'_, Self>) {
        if self.vc.resends >= self.cfg.view_change_resends_max {
            return;
        }
        let targets: Vec<ParticipantId> = if self.vc.installing {
            self.membership
                .participants()
                .filter(|p| *p != self.me)
                .collect()
        } else {
            std::mem::take(&mut self.vc.laggards).into_iter().collect()
        };
        if targets.is_empty() {
            return;
        }
        self.vc.resends += 1;
        self.activity.view_change_resend_rounds += 1;
        let mut messages: Vec<PrimeMessage> = Vec::new();
        if let Some(proof) = &self.vc.proof {
            messages.push(PrimeMessage::NewLeaderProof(proof.clone()));
        }
        messages.extend(self.vc.sent.iter().cloned());
        messages.extend(
            self.vc
                .held_certificates()
                .map(|c| PrimeMessage::VcCertificate(c.clone())),
        );
        if let Some(replay) = &self.vc.replay {
            messages.push(PrimeMessage::Replay(replay.clone()));
        }
        for to in targets {
            for message in &messages {
                self.send_to(cx, to, message.clone());
            }
        }
        if self.vc.installing {
            cx.set_timer(
                PrimeTimer::ViewChangeResend,
                self.cfg.view_change_resend_period,
            );
        }
    }
}
