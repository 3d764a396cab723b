//! The open-loop schedule of `tern-bench connect`.
//!
//! Attempt *i* is due at `start + i / rate`, computed from *i* alone (never by adding intervals,
//! so there is no drift), whatever happened to earlier attempts: a slow or stalled server does
//! not slow the offered load down, which is what keeps the measurement free of coordinated
//! omission. When the client itself falls behind (a descheduled thread), every overdue attempt
//! is still started, as soon as possible, and keeps its due time, so the lag is visible
//! ([`Dispatch::lag`]) instead of silently thinning the schedule.
//!
//! Attempts are dealt to `lanes` threads round-robin: lane *k* owns attempts *k*, *k + lanes*,
//! ... so the union over lanes is exactly the single-threaded schedule.
//!
//! Everything here is pure: time is a [`Duration`] since the start, passed in by the caller,
//! so tests drive it with a fake clock.

use std::time::Duration;

use anyhow::{bail, Result};

/// The whole schedule: a rate, and a bound in time and (optionally) in count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Attempts per 1000 seconds (the rate in milli-attempts/s), so due times are exact
    /// integer arithmetic.
    rate_milli: u64,
    /// No attempt is due at or after this offset.
    duration: Duration,
    /// At most this many attempts.
    count: Option<u64>,
}

impl Schedule {
    /// `rate` attempts per second (at least 0.001), for `duration`, at most `count` attempts.
    pub fn new(rate: f64, duration: Duration, count: Option<u64>) -> Result<Schedule> {
        if !(rate.is_finite() && rate >= 0.001) {
            bail!("the rate must be at least 0.001 attempts/s, got {rate}");
        }
        if rate > 1e9 {
            bail!("the rate must be at most 1e9 attempts/s, got {rate}");
        }
        Ok(Schedule {
            rate_milli: (rate * 1000.0).round() as u64,
            duration,
            count,
        })
    }

    /// The rate in attempts per second.
    pub fn rate(&self) -> f64 {
        self.rate_milli as f64 / 1000.0
    }

    /// When attempt `i` is due, as an offset from the start: `i / rate`, rounded down to the
    /// nanosecond.
    pub fn due(&self, i: u64) -> Duration {
        let ns = u128::from(i) * 1_000_000_000_000 / u128::from(self.rate_milli);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Whether attempt `i` is part of the schedule.
    pub fn contains(&self, i: u64) -> bool {
        self.count.is_none_or(|c| i < c) && self.due(i) < self.duration
    }

    /// How many attempts the schedule has in all.
    pub fn total(&self) -> u64 {
        // Attempts with due(i) < duration: i < duration * rate, rounded up.
        let d = self.duration.as_nanos();
        let by_time = (d * u128::from(self.rate_milli)).div_ceil(1_000_000_000_000);
        let by_time = u64::try_from(by_time).unwrap_or(u64::MAX);
        self.count.map_or(by_time, |c| c.min(by_time))
    }
}

/// One scheduled attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Its index in the whole schedule.
    pub index: u64,
    /// When it is due, from the start.
    pub due: Duration,
}

/// What to do with an attempt that has come due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Start it now.
    Start {
        /// The attempt.
        attempt: Attempt,
        /// How late it starts: `now - due`.
        lag: Duration,
    },
    /// Do not start it: the lane already has `cap` attempts in flight. It counts as a failed
    /// attempt (reason `capped`), not as one that never existed.
    Capped {
        /// The attempt.
        attempt: Attempt,
    },
}

impl Dispatch {
    /// The attempt.
    pub fn attempt(&self) -> Attempt {
        match *self {
            Dispatch::Start { attempt, .. } | Dispatch::Capped { attempt } => attempt,
        }
    }

    /// The start lag (zero for a capped attempt).
    pub fn lag(&self) -> Duration {
        match *self {
            Dispatch::Start { lag, .. } => lag,
            Dispatch::Capped { .. } => Duration::ZERO,
        }
    }
}

/// One lane's share of a [`Schedule`], handed out as it comes due.
#[derive(Debug, Clone)]
pub struct Pacer {
    schedule: Schedule,
    next: u64,
    lanes: u64,
    cap: usize,
}

impl Pacer {
    /// Lane `lane` of `lanes`, with at most `cap` attempts in flight.
    pub fn new(schedule: Schedule, lane: u64, lanes: u64, cap: usize) -> Pacer {
        assert!(lanes >= 1 && lane < lanes, "lane {lane} of {lanes}");
        Pacer {
            schedule,
            next: lane,
            lanes,
            cap: cap.max(1),
        }
    }

    /// The lane's next attempt, due or not; `None` when the lane is done.
    pub fn peek(&self) -> Option<Attempt> {
        self.schedule.contains(self.next).then(|| Attempt {
            index: self.next,
            due: self.schedule.due(self.next),
        })
    }

    /// Whether every attempt of the lane has been handed out.
    pub fn is_done(&self) -> bool {
        self.peek().is_none()
    }

    /// The next attempt if it is due at `now` (offset from the start), given `in_flight`
    /// attempts of this lane still running. Call until it returns `None`.
    pub fn poll(&mut self, now: Duration, in_flight: usize) -> Option<Dispatch> {
        let attempt = self.peek().filter(|a| a.due <= now)?;
        self.next += self.lanes;
        Some(if in_flight >= self.cap {
            Dispatch::Capped { attempt }
        } else {
            Dispatch::Start {
                attempt,
                lag: now - attempt.due,
            }
        })
    }
}
