//! TCP sequence numbers, RFC 9293 §3.4: arithmetic modulo 2^32.
//!
//! There is deliberately no `PartialOrd`: `<` on the raw value is wrong across wrap-around.
//! Comparisons are the kernel's `before`/`after` (include/net/tcp.h), which look at the signed
//! 32-bit difference and are therefore meaningful only for numbers less than 2^31 apart.

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A 32-bit sequence (or acknowledgment) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance `self - other` as the kernel computes it: positive when `self` is after.
    const fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` comes strictly before `other` (Linux `before(self, other)`).
    pub const fn before(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self` comes strictly after `other` (Linux `after(self, other)`).
    pub const fn after(self, other: SeqNum) -> bool {
        other.before(self)
    }

    /// `self` is before or equal to `other`.
    pub const fn before_eq(self, other: SeqNum) -> bool {
        !self.after(other)
    }

    /// `self` is after or equal to `other`.
    pub const fn after_eq(self, other: SeqNum) -> bool {
        !self.before(other)
    }

    /// `lo ≤ self ≤ hi` going forward from `lo` modulo 2^32, **inclusive at both ends** (Linux
    /// `between(self, lo, hi)`). Correct for any span `hi - lo` below 2^32, not just 2^31.
    pub const fn between(self, lo: SeqNum, hi: SeqNum) -> bool {
        hi.0.wrapping_sub(lo.0) >= self.0.wrapping_sub(lo.0)
    }

    /// `start ≤ self < start + len`, **half-open**: the shape of RFC 9293's acceptability
    /// tests (§3.10.7.4, `RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND`). An empty window holds nothing.
    pub const fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }

    /// Forward distance from `origin` to `self` modulo 2^32, e.g. bytes in flight as
    /// `snd_nxt.offset_from(snd_una)`. Never negative: if `self` is before `origin` the result
    /// wraps to a large number.
    pub const fn offset_from(self, origin: SeqNum) -> u32 {
        self.0.wrapping_sub(origin.0)
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;

    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;

    /// Adds modulo 2^32 (a length above 4 GiB wraps; the sequence space is 32 bits).
    fn add(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;

    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl SubAssign<u32> for SeqNum {
    fn sub_assign(&mut self, rhs: u32) {
        *self = *self - rhs;
    }
}

impl Sub for SeqNum {
    type Output = i32;

    /// Signed distance: positive when `self` is after `rhs`. See also
    /// [`SeqNum::offset_from`] for an unsigned forward distance.
    fn sub(self, rhs: SeqNum) -> i32 {
        self.diff(rhs)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    #[test]
    fn ordering_across_wrap() {
        let top = SeqNum(u32::MAX - 1);
        let wrapped = top + 4u32;
        assert_eq!(wrapped, SeqNum(2));
        assert!(top.before(wrapped) && wrapped.after(top));
        assert!(!top.after(wrapped) && !wrapped.before(top));
        assert!(top.before_eq(top) && top.after_eq(top));
        assert!(!top.before(top) && !top.after(top));
        assert_eq!(wrapped - top, 4);
        assert_eq!(top - wrapped, -4);
        assert_eq!(wrapped.offset_from(top), 4);
        assert_eq!(top.offset_from(wrapped), u32::MAX - 3);
        assert_eq!(wrapped - 4u32, top);
        assert_eq!(SeqNum(1) + 3usize, SeqNum(4));
        let mut s = top;
        s += 2u32;
        assert_eq!(s, SeqNum(0));
        s += 5usize;
        s -= 1u32;
        assert_eq!(s, SeqNum(4));
        assert_eq!(SeqNum(7).to_string(), "7");
    }

    #[test]
    fn between_is_inclusive_and_wraps() {
        let lo = SeqNum(u32::MAX - 10);
        let hi = lo + 20u32;
        assert!(lo.between(lo, hi) && hi.between(lo, hi));
        assert!(SeqNum(0).between(lo, hi));
        assert!(!(lo - 1u32).between(lo, hi) && !(hi + 1u32).between(lo, hi));
        assert!(lo.between(lo, lo) && !(lo + 1u32).between(lo, lo));
    }

    #[test]
    fn in_window_is_half_open() {
        let start = SeqNum(u32::MAX);
        assert!(start.in_window(start, 1));
        assert!(!start.in_window(start, 0));
        assert!((start + 9u32).in_window(start, 10));
        assert!(!(start + 10u32).in_window(start, 10));
        assert!(!(start - 1u32).in_window(start, 10));
    }

    proptest! {
        #[test]
        fn before_after_agree_with_offsets(base in any::<u32>(), d in 1u32..(1 << 31)) {
            let a = SeqNum(base);
            let b = a + d;
            prop_assert!(a.before(b) && b.after(a));
            prop_assert!(!a.after(b) && !b.before(a));
            prop_assert!(a.before_eq(b) && b.after_eq(a));
            prop_assert_eq!(b - a, d as i32);
            prop_assert_eq!(b.offset_from(a), d);
            prop_assert!(b.between(a, b) && a.between(a, b));
            prop_assert!(!(b + 1u32).between(a, b) && !(a - 1u32).between(a, b));
            prop_assert!((a + d / 2).between(a, b));
            prop_assert!(b.in_window(a, d + 1) && !b.in_window(a, d));
        }

        #[test]
        fn exactly_one_relation_holds(x in any::<u32>(), y in any::<u32>()) {
            let (a, b) = (SeqNum(x), SeqNum(y));
            // Except at a distance of exactly 2^31, where both directions are "before".
            if x.wrapping_sub(y) != 1 << 31 {
                let relations = [a.before(b), a == b, a.after(b)];
                prop_assert_eq!(relations.iter().filter(|r| **r).count(), 1);
            }
        }
    }
}
