//! NewReno: slow start and congestion avoidance of RFC 5681 §3.1, fast recovery of RFC 5681 §3.2
//! with the NewReno modification of RFC 6582 §3.2.

use super::CongestionControl;
use crate::time::Instant;

/// NewReno state. Windows are in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 (3): the
    /// byte-counting variant, one MSS per cwnd's worth of ACKed bytes).
    bytes_acked: u32,
}

impl NewReno {
    /// Starts with `initial_window` bytes (RFC 6928: 10 segments) and an "arbitrarily high"
    /// ssthresh (RFC 5681 3.1).
    pub fn new(initial_window: u32) -> NewReno {
        NewReno {
            cwnd: initial_window,
            ssthresh: u32::MAX,
            bytes_acked: 0,
        }
    }
}

/// RFC 5681 (4): ssthresh = max(FlightSize / 2, 2*SMSS).
fn half_flight(flight_size: u32, mss: u32) -> u32 {
    (flight_size / 2).max(2 * mss)
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: u32, mss: u32) {
        if self.cwnd < self.ssthresh {
            // RFC 5681 (2): slow start grows cwnd by min(N, SMSS) per ACK.
            self.cwnd = self.cwnd.saturating_add(acked.min(mss));
        } else {
            // RFC 5681 (3), appropriate byte counting: one SMSS per cwnd of acknowledged bytes.
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_fast_retransmit(&mut self, flight_size: u32, mss: u32) {
        self.ssthresh = half_flight(flight_size, mss);
        // RFC 5681 3.2 step 3: cwnd = ssthresh + 3*SMSS (the three segments that left).
        self.cwnd = self.ssthresh + 3 * mss;
        self.bytes_acked = 0;
    }

    fn on_recovery_dupack(&mut self, mss: u32) {
        self.cwnd = self.cwnd.saturating_add(mss);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.cwnd = self.cwnd.saturating_sub(acked);
        if acked >= mss {
            self.cwnd += mss;
        }
        self.cwnd = self.cwnd.max(mss);
    }

    fn on_recovery_exit(&mut self, flight_size: u32, mss: u32) {
        // RFC 6582 3.2 step 6, option (1): cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        self.cwnd = self.ssthresh.min(flight_size.max(mss) + mss);
    }

    fn on_rto(&mut self, flight_size: u32, mss: u32) {
        self.ssthresh = half_flight(flight_size, mss);
        // RFC 5681 (5): the loss window is one segment.
        self.cwnd = mss;
        self.bytes_acked = 0;
    }

    fn on_idle_restart(&mut self, restart_window: u32) {
        self.cwnd = self.cwnd.min(restart_window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn slow_start_then_congestion_avoidance() {
        let mut c = NewReno::new(10 * MSS);
        c.on_ack(Instant::ZERO, 2 * MSS, MSS);
        assert_eq!(
            c.cwnd(),
            11 * MSS,
            "slow start adds at most one MSS per ACK"
        );
        c.on_rto(20 * MSS, MSS);
        assert_eq!((c.cwnd(), c.ssthresh()), (MSS, 10 * MSS));
        for _ in 0..9 {
            c.on_ack(Instant::ZERO, MSS, MSS);
        }
        assert_eq!(c.cwnd(), 10 * MSS);
        // Congestion avoidance: one MSS per window of acknowledged bytes.
        for _ in 0..9 {
            c.on_ack(Instant::ZERO, MSS, MSS);
        }
        assert_eq!(c.cwnd(), 10 * MSS);
        c.on_ack(Instant::ZERO, MSS, MSS);
        assert_eq!(c.cwnd(), 11 * MSS);
    }

    #[test]
    fn fast_recovery_inflates_and_deflates() {
        let mut c = NewReno::new(10 * MSS);
        c.on_fast_retransmit(10 * MSS, MSS);
        assert_eq!((c.ssthresh(), c.cwnd()), (5 * MSS, 8 * MSS));
        c.on_recovery_dupack(MSS);
        assert_eq!(c.cwnd(), 9 * MSS);
        c.on_partial_ack(2 * MSS, MSS);
        assert_eq!(c.cwnd(), 8 * MSS);
        c.on_recovery_exit(4 * MSS, MSS);
        assert_eq!(c.cwnd(), 5 * MSS);
        // The ssthresh floor is two segments.
        c.on_fast_retransmit(MSS, MSS);
        assert_eq!(c.ssthresh(), 2 * MSS);
    }
}
