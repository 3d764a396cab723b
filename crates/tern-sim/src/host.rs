//! The contract between the simulator and an endpoint: the [`Host`] trait.

use tern_tcp::time::Instant;

/// An endpoint the simulator drives: a sans-IO stack that takes IP packets and time and gives
/// back IP packets and a timer deadline.
///
/// The simulator calls these in a fixed pattern (see the crate docs): at each instant with
/// work it first hands over every packet due then, in the order they were scheduled, then calls
/// [`on_timeout`](Host::on_timeout) on each host whose [`poll_timeout`](Host::poll_timeout) is
/// due, and then drains [`poll_transmit`](Host::poll_transmit) of every host until it returns
/// `None`. It also drains every host before looking for the next instant, so packets a test
/// causes by calling a host's application API between steps leave at the current time.
pub trait Host {
    /// An IP packet (IPv4/IPv6 header onward) arrives.
    fn on_packet(&mut self, now: Instant, packet: &[u8]);
    /// The next packet to send, written into `buf` (IP header onward); its length.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;
    /// When `on_timeout` next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Run timers due at `now`.
    fn on_timeout(&mut self, now: Instant);
}
