//! Round-trip time estimation and the retransmission timeout, RFC 6298.
//!
//! SRTT and RTTVAR are kept in microseconds. The clock-granularity term G of RFC 6298 (2.2)
//! is 1 ms (the timer wheel's resolution); the result is clamped to `[rto_min, rto_max]`. Like
//! Linux, the floor is `rto_min` (200 ms by default), not RFC 6298's recommended 1 s (2.4):
//! a deliberate deviation listed in docs/rfc-compliance.md.

use crate::time::Duration;

const GRANULARITY_US: u64 = 1_000;

/// RTT estimator and retransmission timer value of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    /// Smoothed RTT in µs; 0 until the first sample.
    srtt_us: u32,
    /// RTT variation in µs.
    rttvar_us: u32,
    /// The RTO before backoff, in µs.
    rto_us: u32,
    /// Consecutive timeouts; the RTO in force is `rto << backoff`.
    backoff: u8,
}

impl RttEstimator {
    /// An estimator with no sample yet: RTO = `initial` (RFC 6298 (2.1)).
    pub fn new(initial: Duration) -> RttEstimator {
        RttEstimator {
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: clamp_us(initial.as_micros()),
            backoff: 0,
        }
    }

    /// Takes an RTT measurement (RFC 6298 (2.2), (2.3)) and clears the backoff (5.7 note:
    /// a valid sample after backoff means the path works again).
    pub fn sample(&mut self, rtt: Duration, rto_min: Duration, rto_max: Duration) {
        let r = clamp_us(rtt.as_micros().max(1));
        if self.srtt_us == 0 {
            // (2.2) first measurement: SRTT <- R, RTTVAR <- R/2
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            // (2.3) RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'
            let delta = self.srtt_us.abs_diff(r);
            self.rttvar_us = ((3 * u64::from(self.rttvar_us) + u64::from(delta)) / 4) as u32;
            self.srtt_us = ((7 * u64::from(self.srtt_us) + u64::from(r)) / 8) as u32;
        }
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4, then (2.4)/(2.5) bounds.
        let rto = u64::from(self.srtt_us) + GRANULARITY_US.max(4 * u64::from(self.rttvar_us));
        self.rto_us = clamp_us(rto.clamp(rto_min.as_micros(), rto_max.as_micros()));
        self.backoff = 0;
    }

    /// The estimator for data after a handshake whose SYN (or SYN-ACK) timed out and gave no
    /// sample: RFC 6298 (5.7) "the RTO MUST be re-initialized to 3 seconds when data
    /// transmission begins" (when it was below that), with no backoff; at most `rto_max`.
    pub fn after_syn_timeout(initial: Duration, rto_max: Duration) -> RttEstimator {
        RttEstimator::new(initial.max(Duration::from_secs(3)).min(rto_max))
    }

    /// The smoothed RTT, if any sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt_us != 0).then(|| Duration::from_micros(u64::from(self.srtt_us)))
    }

    /// The RTT variation.
    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(u64::from(self.rttvar_us))
    }

    /// The retransmission timeout in force, with backoff, at most `rto_max` (RFC 6298 (5.5)).
    pub fn rto(&self, rto_max: Duration) -> Duration {
        let backed_off = u64::from(self.rto_us)
            .checked_shl(u32::from(self.backoff))
            .unwrap_or(u64::MAX);
        Duration::from_micros(backed_off.min(rto_max.as_micros()))
    }

    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        Duration::from_micros(u64::from(self.rto_us))
    }

    /// A retransmission timeout fired: RTO <- RTO * 2 (RFC 6298 (5.5)).
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(63);
    }

    /// Consecutive timeouts since the last good sample or new ACK.
    pub fn backoff(&self) -> u8 {
        self.backoff
    }

    /// Ends the backoff without a sample: zero-window probing stopped because the window opened
    /// (Linux's `tcp_ack_probe`). An ACK without a sample does not end it (Karn's algorithm,
    /// RFC 6298 §5: only a new measurement collapses a backed-off RTO).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }
}

fn clamp_us(us: u64) -> u32 {
    us.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(120);

    #[test]
    fn initial_rto_is_one_second_and_backs_off_to_the_cap() {
        let mut r = RttEstimator::new(Duration::from_secs(1));
        assert_eq!(r.rto(MAX), Duration::from_secs(1));
        let expected = [2, 4, 8, 16, 32, 64, 120, 120];
        for secs in expected {
            r.back_off();
            assert_eq!(r.rto(MAX), Duration::from_secs(secs));
        }
    }

    #[test]
    fn first_and_later_samples_follow_rfc6298() {
        let mut r = RttEstimator::new(Duration::from_secs(1));
        r.sample(Duration::from_millis(100), MIN, MAX);
        // SRTT = 100 ms, RTTVAR = 50 ms, RTO = 100 + 4*50 = 300 ms.
        assert_eq!(r.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(r.rto(MAX), Duration::from_millis(300));
        r.sample(Duration::from_millis(200), MIN, MAX);
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5 ms; SRTT = 7/8*100 + 1/8*200 = 112.5 ms.
        assert_eq!(r.rttvar(), Duration::from_micros(62_500));
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rto(MAX), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn rto_min_floors_small_rtts_and_a_sample_clears_backoff() {
        let mut r = RttEstimator::new(Duration::from_secs(1));
        r.back_off();
        r.sample(Duration::from_micros(50), MIN, MAX);
        assert_eq!(r.backoff(), 0);
        assert_eq!(r.rto(MAX), MIN);
    }
}
