//! A protocol that does nothing, for unit tests of the simulator's own machinery (Byzantine
//! wrappers, fault schedules) where the protocol's behaviour must not matter.

use stockade_core::{Context, NodeId, Protocol};

/// Ignores every input and emits no effect; its messages are bare `u64`s.
pub(crate) struct Inert;

impl Protocol for Inert {
    type Message = u64;
    type Timer = ();
    type Request = ();
    type Output = ();
    fn on_start(&mut self, _cx: &mut Context<'_, Self>) {}
    fn on_message(&mut self, _cx: &mut Context<'_, Self>, _from: NodeId, _m: u64) {}
    fn on_timer(&mut self, _cx: &mut Context<'_, Self>, _t: ()) {}
    fn on_request(&mut self, _cx: &mut Context<'_, Self>, _r: ()) {}
}
