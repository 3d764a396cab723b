//! The engine as a simulated host: a `tern_tcp::Shard` drives straight into the simulator.

use crate::{Host, Instant};
use tern_tcp::Shard;

impl Host for Shard {
    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        // A malformed or corrupted packet is dropped and counted by the shard itself (InErrs and
        // the Malformed drop counter): exactly what the datapath does with it.
        let _ = Shard::on_packet(self, now, packet);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        Shard::poll_transmit(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Shard::poll_timeout(self)
    }

    fn on_timeout(&mut self, now: Instant) {
        Shard::on_timeout(self, now)
    }
}
