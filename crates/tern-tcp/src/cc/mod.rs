//! Congestion control behind a small trait (RFC 5681), so CUBIC and others can follow NewReno.
//!
//! The split follows Linux's `tcp_congestion_ops`: the algorithm owns cwnd growth and the
//! reaction to congestion signals; loss detection and recovery (duplicate-ACK counting, fast
//! retransmit, NewReno's partial ACKs of RFC 6582) live in the connection and call in here.
//! Connections hold a [`Congestion`] enum rather than a trait object, keeping them free of
//! allocation and indirect calls.

mod newreno;

pub use newreno::NewReno;

use crate::time::Instant;

/// What a congestion-control algorithm must provide. Windows are in bytes.
pub trait CongestionControl {
    /// The congestion window.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// `acked` new bytes were acknowledged outside recovery.
    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32);
    /// Three duplicate ACKs: fast retransmit and enter fast recovery (RFC 5681 3.2 steps 2–3).
    fn on_fast_retransmit(&mut self, flight_size: u32, mss: u32);
    /// A further duplicate ACK during fast recovery (RFC 5681 3.2 step 4: inflate).
    fn on_recovery_dupack(&mut self, mss: u32);
    /// A partial ACK during fast recovery (RFC 6582 3.2 step 5: deflate by the amount acked,
    /// add back one MSS if at least one MSS was acked).
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// Recovery ends: the full ACK arrived (RFC 6582 3.2 step 6).
    fn on_recovery_exit(&mut self, flight_size: u32, mss: u32);
    /// A retransmission timeout (RFC 5681 (4): ssthresh from FlightSize, cwnd to one segment).
    fn on_rto(&mut self, flight_size: u32, mss: u32);
    /// The connection was idle for more than an RTO (RFC 5681 4.1: restart window).
    fn on_idle_restart(&mut self, restart_window: u32);
}

/// The algorithms a connection can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Congestion {
    /// RFC 5681 with RFC 6582's NewReno recovery.
    NewReno(NewReno),
}

impl Congestion {
    fn algo(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }

    fn algo_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }
}

impl CongestionControl for Congestion {
    fn cwnd(&self) -> u32 {
        self.algo().cwnd()
    }
    fn ssthresh(&self) -> u32 {
        self.algo().ssthresh()
    }
    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32) {
        self.algo_mut().on_ack(now, acked, mss)
    }
    fn on_fast_retransmit(&mut self, flight_size: u32, mss: u32) {
        self.algo_mut().on_fast_retransmit(flight_size, mss)
    }
    fn on_recovery_dupack(&mut self, mss: u32) {
        self.algo_mut().on_recovery_dupack(mss)
    }
    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.algo_mut().on_partial_ack(acked, mss)
    }
    fn on_recovery_exit(&mut self, flight_size: u32, mss: u32) {
        self.algo_mut().on_recovery_exit(flight_size, mss)
    }
    fn on_rto(&mut self, flight_size: u32, mss: u32) {
        self.algo_mut().on_rto(flight_size, mss)
    }
    fn on_idle_restart(&mut self, restart_window: u32) {
        self.algo_mut().on_idle_restart(restart_window)
    }
}
