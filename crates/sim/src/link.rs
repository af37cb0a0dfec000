//! One directed link's behaviour ([`LinkSpec`]) and the FIFO drop-tail serializer shared by links
//! and site uplinks.
//!
//! A serializer stores no packets: it keeps only the time its transmitter becomes free. A packet
//! entering at `t` leaves at `max(t, busy_until) + bytes / bandwidth`, and the bytes queued ahead
//! of it are `(busy_until - t) * bandwidth`. That is exact for FIFO service as long as packets enter
//! in time order, which the event loop guarantees.

use std::time::Duration;

use stockade_core::time::duration_nanos;

use crate::rng::probability_threshold;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Behaviour of one directed link.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct LinkSpec {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Transmit rate in bits per second; `0` means unlimited (no serialization delay, no queue).
    pub bandwidth_bps: u64,
    /// Drop-tail buffer: a packet is dropped when the bytes queued ahead of it plus its own size
    /// exceed this. `u64::MAX` never drops.
    pub buffer_bytes: u64,
    /// Probability that a packet is lost after it was serialized.
    pub loss: f64,
    /// Probability that a packet is delivered twice (the copy takes its own jitter).
    pub duplicate: f64,
    /// Each delivery is delayed by a uniform extra `0..=jitter`: packets sent close together may
    /// arrive reordered.
    pub jitter: Duration,
}

/// The default drop-tail buffer: 1 MiB, about a bandwidth-delay product of a 10 Mbps, 800 ms path.
pub const BUFFER_BYTES_DEFAULT: u64 = 1 << 20;

impl LinkSpec {
    /// A perfect link: `latency`, unlimited bandwidth, no loss.
    pub fn ideal(latency: Duration) -> LinkSpec {
        LinkSpec {
            latency,
            bandwidth_bps: 0,
            buffer_bytes: BUFFER_BYTES_DEFAULT,
            loss: 0.0,
            duplicate: 0.0,
            jitter: Duration::ZERO,
        }
    }

    /// A wide-area link of `bandwidth_bps` and `latency` with the default buffer.
    pub fn wan(latency: Duration, bandwidth_bps: u64) -> LinkSpec {
        LinkSpec {
            bandwidth_bps,
            ..LinkSpec::ideal(latency)
        }
    }

    /// With this drop-tail buffer.
    pub fn with_buffer_bytes(self, buffer_bytes: u64) -> LinkSpec {
        LinkSpec {
            buffer_bytes,
            ..self
        }
    }
    /// With this loss probability.
    pub fn with_loss(self, loss: f64) -> LinkSpec {
        LinkSpec { loss, ..self }
    }
    /// With this duplication probability.
    pub fn with_duplicate(self, duplicate: f64) -> LinkSpec {
        LinkSpec { duplicate, ..self }
    }
    /// With this reordering jitter.
    pub fn with_jitter(self, jitter: Duration) -> LinkSpec {
        LinkSpec { jitter, ..self }
    }

    pub(crate) fn compile(&self) -> LinkParams {
        LinkParams {
            latency_ns: duration_nanos(self.latency),
            bandwidth_bps: self.bandwidth_bps,
            buffer_bytes: self.buffer_bytes,
            loss_threshold: probability_threshold(self.loss),
            duplicate_threshold: probability_threshold(self.duplicate),
            jitter_ns: duration_nanos(self.jitter),
        }
    }
}

/// A [`LinkSpec`] in the form the hot path uses (all integers, so it can key a map).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct LinkParams {
    pub latency_ns: u64,
    pub bandwidth_bps: u64,
    pub buffer_bytes: u64,
    pub loss_threshold: u64,
    pub duplicate_threshold: u64,
    pub jitter_ns: u64,
}

/// Nanoseconds to put `bytes` on a wire of `bandwidth_bps` (zero for unlimited bandwidth).
#[inline]
pub fn serialization_ns(bytes: u64, bandwidth_bps: u64) -> u64 {
    if bandwidth_bps == 0 {
        return 0;
    }
    // 64-bit division on the hot path; 128-bit only for packets beyond 2 GB.
    match bytes.checked_mul(8 * NANOS_PER_SEC as u64) {
        Some(bit_ns) => bit_ns / bandwidth_bps,
        None => {
            (bytes as u128 * 8 * NANOS_PER_SEC / bandwidth_bps as u128).min(u64::MAX as u128) as u64
        }
    }
}

/// A FIFO transmitter with a drop-tail buffer, stored as the time it becomes free.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Serializer {
    /// When the last admitted packet finishes serializing, in nanoseconds of true time.
    pub busy_until_ns: u64,
}

impl Serializer {
    /// Bytes queued ahead of a packet entering at `at_ns`.
    #[inline]
    pub fn queued_bytes(&self, at_ns: u64, bandwidth_bps: u64) -> u64 {
        let backlog_ns = self.busy_until_ns.saturating_sub(at_ns) as u128;
        if backlog_ns == 0 {
            return 0;
        }
        (backlog_ns * bandwidth_bps as u128 / (8 * NANOS_PER_SEC)).min(u64::MAX as u128) as u64
    }

    /// Admit a packet of `bytes` entering at `at_ns`: the time its last bit leaves, or `None` when
    /// the buffer cannot hold it (drop-tail). Unlimited bandwidth admits everything at once.
    #[inline]
    pub fn admit(
        &mut self,
        at_ns: u64,
        bytes: u64,
        bandwidth_bps: u64,
        buffer_bytes: u64,
    ) -> Option<u64> {
        if bandwidth_bps == 0 {
            return Some(at_ns);
        }
        let queued = self.queued_bytes(at_ns, bandwidth_bps);
        if queued.saturating_add(bytes) > buffer_bytes {
            return None;
        }
        let start = self.busy_until_ns.max(at_ns);
        self.busy_until_ns = start.saturating_add(serialization_ns(bytes, bandwidth_bps));
        Some(self.busy_until_ns)
    }
}

/// An aggregate outgoing bandwidth cap shared by every packet leaving one site (paper 004,
/// section 5: "aggregate outgoing bandwidth from each site").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SiteCap {
    /// The site uplink's rate in bits per second.
    pub bandwidth_bps: u64,
    /// The uplink's drop-tail buffer.
    pub buffer_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializer_is_fifo_and_drops_at_the_tail() {
        // 8 Mbps: one byte per microsecond.
        let mut s = Serializer::default();
        assert_eq!(s.admit(0, 1000, 8_000_000, 2500), Some(1_000_000));
        assert_eq!(s.admit(0, 1000, 8_000_000, 2500), Some(2_000_000));
        assert_eq!(s.queued_bytes(0, 8_000_000), 2000);
        assert_eq!(
            s.admit(0, 1000, 8_000_000, 2500),
            None,
            "2000 queued + 1000 > 2500"
        );
        assert_eq!(
            s.busy_until_ns, 2_000_000,
            "a dropped packet takes no wire time"
        );
        // Later the queue drained: admitted again, starting when the wire frees.
        assert_eq!(s.admit(1_500_000, 1000, 8_000_000, 2500), Some(3_000_000));
        // Idle wire: starts at once.
        assert_eq!(s.admit(10_000_000, 500, 8_000_000, 2500), Some(10_500_000));
    }

    #[test]
    fn unlimited_bandwidth_never_queues() {
        let mut s = Serializer::default();
        assert_eq!(s.admit(7, u64::MAX, 0, 0), Some(7));
        assert_eq!(serialization_ns(1_250_000, 10_000_000), 1_000_000_000);
    }
}
