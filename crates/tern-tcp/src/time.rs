//! Engine time: an opaque [`Instant`] and [`Duration`] with microsecond resolution.
//!
//! There is deliberately no `now()`: the worker reads the clock once per loop turn and passes
//! the reading in, so the engine is deterministic and a simulator can drive it with virtual time.
//! The origin of `Instant` is whatever the caller chooses (boot, process start, zero in tests).
//!
//! Arithmetic saturates instead of panicking or wrapping: a stale or bogus timestamp must
//! degrade to "now" or "never", not abort a shard. `checked_*` exist where overflow matters.
//! Both types are totally ordered; only TCP sequence numbers are not.

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Mul, MulAssign, Sub, SubAssign};

/// A point in time, in microseconds since a caller-chosen origin.
///
/// Stored as microseconds + 1 in a `NonZeroU64`, so `Option<Instant>` — a connection has a
/// dozen optional deadlines and timestamps — takes 8 bytes rather than 16. The largest
/// representable instant is therefore `u64::MAX - 1` µs after the origin ([`Instant::MAX`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    plus_one: NonZeroU64,
}

/// A span of time, in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    micros: u64,
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant::from_micros(0);
    /// The latest representable instant; useful as "never".
    pub const MAX: Instant = Instant::from_micros(u64::MAX);

    /// An instant `micros` microseconds after the origin (saturating at [`Instant::MAX`]).
    pub const fn from_micros(micros: u64) -> Instant {
        match NonZeroU64::new(micros.saturating_add(1)) {
            Some(plus_one) => Instant { plus_one },
            None => Instant {
                plus_one: NonZeroU64::MIN,
            },
        }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Instant {
        Instant::from_micros(millis.saturating_mul(1_000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.plus_one.get() - 1
    }

    /// Whole milliseconds since the origin (truncated).
    pub const fn as_millis(self) -> u64 {
        self.as_micros() / 1_000
    }

    /// `self + d`, or `None` beyond [`Instant::MAX`].
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.as_micros().checked_add(d.micros) {
            Some(micros) if micros < u64::MAX => Some(Instant::from_micros(micros)),
            _ => None,
        }
    }

    /// `self - d`, or `None` if that would precede the origin.
    pub const fn checked_sub(self, d: Duration) -> Option<Instant> {
        match self.as_micros().checked_sub(d.micros) {
            Some(micros) => Some(Instant::from_micros(micros)),
            None => None,
        }
    }

    /// `self + d`, clamped to [`Instant::MAX`].
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant::from_micros(self.as_micros().saturating_add(d.micros))
    }

    /// `self - d`, clamped to [`Instant::ZERO`].
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant::from_micros(self.as_micros().saturating_sub(d.micros))
    }

    /// Time elapsed from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.as_micros().checked_sub(earlier.as_micros()) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.as_micros().saturating_sub(earlier.as_micros()),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };
    /// The longest representable span; useful as "infinite".
    pub const MAX: Duration = Duration { micros: u64::MAX };

    /// `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Duration {
        Duration {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration { micros }
    }

    /// Total microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Whole milliseconds (truncated).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// Whole seconds (truncated).
    pub const fn as_secs(self) -> u64 {
        self.micros / 1_000_000
    }

    /// Whether this is [`Duration::ZERO`].
    pub const fn is_zero(self) -> bool {
        self.micros == 0
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Duration) -> Option<Duration> {
        match self.micros.checked_add(rhs.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self - rhs`, or `None` if `rhs` is longer.
    pub const fn checked_sub(self, rhs: Duration) -> Option<Duration> {
        match self.micros.checked_sub(rhs.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self * rhs`, or `None` on overflow.
    pub const fn checked_mul(self, rhs: u32) -> Option<Duration> {
        match self.micros.checked_mul(rhs as u64) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self + rhs`, clamped to [`Duration::MAX`].
    pub const fn saturating_add(self, rhs: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }

    /// `self - rhs`, clamped to [`Duration::ZERO`].
    pub const fn saturating_sub(self, rhs: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(rhs.micros),
        }
    }

    /// `self * rhs`, clamped to [`Duration::MAX`] (RTO backoff doubles without bound checks).
    pub const fn saturating_mul(self, rhs: u32) -> Duration {
        Duration {
            micros: self.micros.saturating_mul(rhs as u64),
        }
    }
}

/// Saturates at [`Instant::MAX`].
impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

/// Saturates at [`Instant::ZERO`].
impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

/// Saturates at [`Duration::ZERO`] when `rhs` is later than `self`.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// Saturates at [`Duration::MAX`].
impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

/// Saturates at [`Duration::ZERO`].
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Duration {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

/// Saturates at [`Duration::MAX`].
impl Mul<u32> for Duration {
    type Output = Duration;
    fn mul(self, rhs: u32) -> Duration {
        self.saturating_mul(rhs)
    }
}

impl MulAssign<u32> for Duration {
    fn mul_assign(&mut self, rhs: u32) {
        *self = *self * rhs;
    }
}

/// Truncates below one microsecond and saturates above [`Duration::MAX`].
impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Duration {
        Duration {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> core::time::Duration {
        core::time::Duration::from_micros(d.micros)
    }
}

/// Prints in the largest unit that keeps the value at or above one, with only the decimals
/// needed: `1.234s`, `40ms`, `40.5ms`, `7us`, `0s`.
fn fmt_micros(micros: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (unit, scale, width) = match micros {
        0 => return f.write_str("0s"),
        1_000_000.. => ("s", 1_000_000, 6),
        1_000.. => ("ms", 1_000, 3),
        _ => ("us", 1, 0),
    };
    let (whole, mut frac) = (micros / scale, micros % scale);
    if frac == 0 {
        return write!(f, "{whole}{unit}");
    }
    let mut width = width;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    write!(f, "{whole}.{frac:0width$}{unit}")
}

/// Time since the origin, e.g. `12.5s`.
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.as_micros(), f)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("t=")?;
        fmt_micros(self.as_micros(), f)
    }
}

/// E.g. `1.234s`, `40ms`, `250us`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.micros, f)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.micros, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_truncate() {
        let t = Instant::from_micros(1_234_567);
        assert_eq!(t.as_micros(), 1_234_567);
        assert_eq!(t.as_millis(), 1_234);
        assert_eq!(Instant::from_millis(40).as_micros(), 40_000);
        let d = Duration::from_micros(2_999_999);
        assert_eq!(
            (d.as_secs(), d.as_millis(), d.as_micros()),
            (2, 2_999, 2_999_999)
        );
        assert_eq!(Duration::from_secs(3), Duration::from_millis(3_000));
        assert_eq!(Duration::from_millis(3), Duration::from_micros(3_000));
        assert!(Duration::ZERO.is_zero() && !Duration::from_micros(1).is_zero());
    }

    #[test]
    fn constructors_saturate() {
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(Duration::from_millis(u64::MAX), Duration::MAX);
    }

    #[test]
    fn instant_arithmetic() {
        let t = Instant::from_millis(100);
        let d = Duration::from_millis(30);
        assert_eq!(t + d, Instant::from_millis(130));
        assert_eq!(t - d, Instant::from_millis(70));
        assert_eq!(Instant::from_millis(130) - t, d);
        let mut u = t;
        u += d;
        u -= Duration::from_millis(10);
        assert_eq!(u, Instant::from_millis(120));
        // Saturation rather than panics or wrap-around.
        assert_eq!(t - Instant::from_millis(500), Duration::ZERO);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::MAX + d, Instant::MAX);
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(t.checked_sub(Duration::from_secs(1)), None);
        assert_eq!(t.checked_sub(d), Some(Instant::from_millis(70)));
        assert_eq!(t.checked_duration_since(Instant::from_millis(101)), None);
        assert_eq!(
            t.checked_duration_since(Instant::from_millis(99)),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn duration_arithmetic() {
        let rto = Duration::from_millis(200);
        assert_eq!(rto * 2, Duration::from_millis(400));
        assert_eq!(
            Duration::from_secs(u64::MAX / 2_000_000) * u32::MAX,
            Duration::MAX
        );
        assert_eq!(
            rto.checked_mul(u32::MAX),
            Some(Duration::from_millis(200 * u32::MAX as u64))
        );
        assert_eq!(Duration::MAX.checked_mul(2), None);
        let mut backoff = rto;
        backoff *= 2;
        backoff += Duration::from_millis(1);
        backoff -= Duration::from_millis(2);
        assert_eq!(backoff, Duration::from_millis(399));
        assert_eq!(rto - Duration::from_secs(1), Duration::ZERO);
        assert_eq!(Duration::MAX + rto, Duration::MAX);
        assert_eq!(rto.checked_sub(Duration::from_secs(1)), None);
        assert_eq!(Duration::MAX.checked_add(rto), None);
        assert_eq!(rto.checked_add(rto), Some(Duration::from_millis(400)));
    }

    #[test]
    fn ordered_with_min_max() {
        let (a, b) = (Duration::from_millis(1), Duration::from_micros(999));
        assert!(b < a);
        assert_eq!(a.min(b), b);
        assert_eq!(a.max(b), a);
        assert_eq!(
            Instant::from_millis(5).max(Instant::from_micros(5_001)),
            Instant::from_micros(5_001)
        );
    }

    #[test]
    fn display() {
        let s = |micros| Duration::from_micros(micros).to_string();
        assert_eq!(s(1_234_000), "1.234s");
        assert_eq!(s(1_234_567), "1.234567s");
        assert_eq!(s(2_000_000), "2s");
        assert_eq!(s(40_000), "40ms");
        assert_eq!(s(40_500), "40.5ms");
        assert_eq!(s(1_001), "1.001ms");
        assert_eq!(s(7), "7us");
        assert_eq!(s(0), "0s");
        assert_eq!(Instant::from_millis(12_500).to_string(), "12.5s");
        assert_eq!(format!("{:?}", Instant::from_millis(3)), "t=3ms");
    }

    #[test]
    fn core_duration_round_trip() {
        let core = core::time::Duration::from_nanos(1_500_999);
        let ours = Duration::from(core);
        assert_eq!(ours, Duration::from_micros(1_500));
        assert_eq!(
            core::time::Duration::from(ours),
            core::time::Duration::from_micros(1_500)
        );
        assert_eq!(Duration::from(core::time::Duration::MAX), Duration::MAX);
    }
}
