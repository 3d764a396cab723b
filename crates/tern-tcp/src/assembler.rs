//! Out-of-order reassembly bookkeeping: which byte ranges beyond RCV.NXT have arrived
//! (RFC 9293 §3.10.7.4, SHLD-31: segments beyond RCV.NXT are queued for later processing),
//! and the SACK blocks they yield, most recent first (RFC 2018 §4).
//!
//! The [`Assembler`] only tracks offsets; the bytes themselves are placed in the receive
//! [`RingBuffer`](crate::buffer::RingBuffer) with `write_at` and committed with
//! `advance_write` once [`Assembler::remove_front`] reports them in order.
//!
//! # Overflow policy
//!
//! The assembler holds at most [`MAX_RANGES`] ranges that start beyond offset 0, i.e. at most
//! `MAX_RANGES` holes, in a fixed array. A segment that would open one more hole is rejected
//! with [`TooManyHoles`]: the caller drops it (and counts the drop); the sender retransmits it
//! once the earlier holes are filled. A segment that overlaps or abuts an existing range, or
//! that starts at offset 0, never opens a hole and is always accepted, so in-order data always
//! makes progress and the receive path cannot deadlock. Nothing accepted is ever evicted, so
//! the receiver never reneges on a SACK block.

use core::fmt;

/// Most out-of-order ranges (each preceded by a hole) tracked at once; as many as Linux keeps
/// SACK blocks for, and twice what fits in one SACK option.
pub const MAX_RANGES: usize = 8;

/// The segment would open more than [`MAX_RANGES`] holes; drop it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TooManyHoles;

impl fmt::Display for TooManyHoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment would open more than {MAX_RANGES} holes in the receive sequence space"
        )
    }
}

impl std::error::Error for TooManyHoles {}

/// Received byte ranges at offsets relative to the in-order point (RCV.NXT). See the
/// [module docs](self) for the overflow policy.
#[derive(Clone, Copy)]
pub struct Assembler {
    /// `(start, end)` with `end` exclusive: disjoint, not adjacent, most recently touched
    /// first. One slot beyond `MAX_RANGES` so that a range at offset 0 never costs a hole.
    ranges: [(u32, u32); MAX_RANGES + 1],
    len: usize,
}

impl Assembler {
    /// Nothing received out of order.
    pub const fn new() -> Self {
        Assembler {
            ranges: [(0, 0); MAX_RANGES + 1],
            len: 0,
        }
    }

    /// Whether no range is held: the fast path for in-order data, which then needs no
    /// assembler call at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of ranges held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets every range.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Records that bytes `offset..offset + len` arrived (the end saturates at `u32::MAX`),
    /// merging with overlapping and adjacent ranges; the resulting range becomes the most
    /// recent. In-order data (offset 0) while ranges are held goes through here too, followed
    /// by [`remove_front`](Self::remove_front). Empty segments change nothing.
    pub fn add(&mut self, offset: u32, len: u32) -> Result<(), TooManyHoles> {
        if len == 0 {
            return Ok(());
        }
        let (start, end) = (offset, offset.saturating_add(len));
        let touches = |&(s, e): &(u32, u32)| s <= end && start <= e;
        let (mut lo, mut hi) = (start, end);
        let (mut touching, mut zero_kept) = (0, false);
        for r in &self.ranges[..self.len] {
            if touches(r) {
                (lo, hi) = (lo.min(r.0), hi.max(r.1));
                touching += 1;
            } else {
                zero_kept |= r.0 == 0;
            }
        }
        // Ranges are disjoint and non-adjacent, so anything touching the union also touches
        // the new segment: one pass finds them all.
        let kept = self.len - touching;
        if kept + 1 - usize::from(lo == 0 || zero_kept) > MAX_RANGES {
            return Err(TooManyHoles);
        }
        let mut w = 0;
        for i in 0..self.len {
            if !touches(&self.ranges[i]) {
                self.ranges[w] = self.ranges[i];
                w += 1;
            }
        }
        self.ranges.copy_within(0..kept, 1);
        self.ranges[0] = (lo, hi);
        self.len = kept + 1;
        Ok(())
    }

    /// Removes the range starting at offset 0, if any, and returns its length: the bytes that
    /// just became in order. Remaining offsets are rebased on the new in-order point.
    pub fn remove_front(&mut self) -> u32 {
        let Some(i) = self.ranges[..self.len].iter().position(|r| r.0 == 0) else {
            return 0;
        };
        let n = self.ranges[i].1;
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
        for r in &mut self.ranges[..self.len] {
            // Other ranges start after `n`: they are neither overlapping nor adjacent.
            *r = (r.0 - n, r.1 - n);
        }
        n
    }

    /// The ranges as `(start, end)` offsets, `end` exclusive, in ascending order.
    pub fn ranges(&self) -> impl Iterator<Item = (u32, u32)> {
        let mut sorted = self.ranges;
        sorted[..self.len].sort_unstable();
        sorted.into_iter().take(self.len)
    }

    /// The ranges to report as SACK blocks, most recently touched first: the first contains
    /// the latest accepted segment (RFC 2018 §4), then the others from most to least
    /// recently received, approximating "most recently reported". A range at offset 0 is
    /// excluded: it is for the cumulative ACK, once taken. Callers add RCV.NXT and take as
    /// many as fit in the option space.
    pub fn sack_ranges(&self) -> impl Iterator<Item = (u32, u32)> {
        let ranges = self.ranges;
        ranges.into_iter().take(self.len).filter(|r| r.0 != 0)
    }
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Assembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ranges[..self.len].iter().map(|&(s, e)| s..e))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::RingBuffer;
    use proptest::prelude::*;

    fn sorted(a: &Assembler) -> Vec<(u32, u32)> {
        a.ranges().collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut a = Assembler::new();
        a.add(10, 5).unwrap();
        a.add(20, 5).unwrap();
        assert_eq!(sorted(&a), [(10, 15), (20, 25)]);
        a.add(15, 5).unwrap(); // adjacent on both sides: bridges them
        assert_eq!(sorted(&a), [(10, 25)]);
        a.add(8, 30).unwrap(); // covers and extends
        assert_eq!(sorted(&a), [(8, 38)]);
        a.add(12, 3).unwrap(); // duplicate
        assert_eq!(sorted(&a), [(8, 38)]);
        a.add(100, 0).unwrap();
        assert_eq!(a.len(), 1);
        a.add(u32::MAX - 1, 10).unwrap();
        assert_eq!(sorted(&a), [(8, 38), (u32::MAX - 1, u32::MAX)]);
    }

    #[test]
    fn remove_front_rebases() {
        let mut a = Assembler::new();
        assert_eq!(a.remove_front(), 0);
        a.add(10, 10).unwrap();
        a.add(30, 10).unwrap();
        assert_eq!(a.remove_front(), 0, "hole at 0..10");
        a.add(0, 10).unwrap();
        assert_eq!(a.remove_front(), 20);
        assert_eq!(sorted(&a), [(10, 20)]);
        a.add(0, 10).unwrap();
        assert_eq!(a.remove_front(), 20);
        assert!(a.is_empty());
    }

    #[test]
    fn overflow_policy() {
        let mut a = Assembler::new();
        for i in 0..MAX_RANGES as u32 {
            a.add(10 + 20 * i, 10).unwrap();
        }
        // A new hole is refused; extending a range or filling a hole is not.
        assert_eq!(a.add(1_000, 1), Err(TooManyHoles));
        assert_eq!(a.add(5, 1), Err(TooManyHoles));
        a.add(20, 5).unwrap();
        a.add(160, 30).unwrap();
        assert_eq!(a.len(), MAX_RANGES);
        // In-order data is always accepted, even if it reaches no range.
        a.add(0, 3).unwrap();
        assert_eq!(a.len(), MAX_RANGES + 1);
        assert_eq!(a.add(4, 1), Err(TooManyHoles));
        assert_eq!(a.remove_front(), 3);
        assert_eq!(sorted(&a)[0], (7, 22));
        assert_eq!(sorted(&a)[MAX_RANGES - 1], (147, 187));
        a.add(0, 7).unwrap();
        assert_eq!(a.remove_front(), 22);
        assert_eq!(a.len(), MAX_RANGES - 1);
        a.add(1_000, 1).unwrap();
    }

    #[test]
    fn range_at_offset_zero_costs_no_hole() {
        let mut a = Assembler::new();
        a.add(0, 2).unwrap();
        for i in 1..MAX_RANGES as u32 {
            a.add(10 * i, 5).unwrap();
        }
        // Seven holes plus the in-order range: one more hole still fits.
        a.add(500, 5).unwrap();
        assert_eq!(a.len(), MAX_RANGES + 1);
        assert_eq!(a.add(600, 5), Err(TooManyHoles));
    }

    #[test]
    fn sack_order_is_most_recent_first() {
        let mut a = Assembler::new();
        a.add(10, 5).unwrap();
        a.add(30, 5).unwrap();
        a.add(50, 5).unwrap();
        let sack = |a: &Assembler| a.sack_ranges().collect::<Vec<_>>();
        assert_eq!(sack(&a), [(50, 55), (30, 35), (10, 15)]);
        a.add(11, 1).unwrap(); // a duplicate still marks its block as the latest
        assert_eq!(sack(&a), [(10, 15), (50, 55), (30, 35)]);
        a.add(35, 15).unwrap(); // merges 30..35 and 50..55
        assert_eq!(sack(&a), [(30, 55), (10, 15)]);
        a.add(0, 3).unwrap(); // a range at offset 0 is not a SACK block
        assert_eq!(sack(&a), [(30, 55), (10, 15)]);
        assert_eq!(format!("{a:?}"), "[0..3, 30..55, 10..15]");
    }

    /// A byte of the stream, as a function of its absolute position.
    fn byte_at(pos: usize) -> u8 {
        (pos.wrapping_mul(131) >> 3) as u8 ^ pos as u8
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A segment at `start` (absolute) of `len` bytes.
        Segment(usize, usize),
        /// The application reads up to this many bytes.
        Read(usize),
    }

    fn op(stream: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            // Short segments open many holes, so the MAX_RANGES limit is reached often.
            5 => (0..stream, prop_oneof![1usize..4, 1usize..40]).prop_map(|(s, l)| Op::Segment(s, l)),
            1 => (0usize..120).prop_map(Op::Read),
        ]
    }

    proptest! {
        /// The receive path — assembler plus ring buffer — against a `Vec<bool>` of received
        /// positions: segments in random order with duplicates and overlaps, clipped to the
        /// window; the in-order bytes, the held ranges, rejections and SACK order must all
        /// agree with the oracle.
        #[test]
        fn receive_path_matches_vec_oracle(
            capacity in 1usize..200,
            ops in proptest::collection::vec(op(600), 1..200),
        ) {
            let mut rx = RingBuffer::from_storage(vec![0; capacity].into_boxed_slice());
            let mut asm = Assembler::new();
            let mut received = vec![false; 700];
            // When each position was last covered by an accepted segment: a range's recency.
            let mut touched = vec![0usize; 700];
            let (mut rcv_nxt, mut read) = (0usize, 0usize);
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Segment(start, len) => {
                        // Trim to the receive window, as the engine will.
                        let lo = start.max(rcv_nxt);
                        let hi = (start + len).min(rcv_nxt + rx.window());
                        if lo >= hi {
                            continue;
                        }
                        let data: Vec<u8> = (lo..hi).map(byte_at).collect();
                        let offset = (lo - rcv_nxt) as u32;
                        match asm.add(offset, data.len() as u32) {
                            Ok(()) => {
                                prop_assert_eq!(rx.write_at(offset as usize, &data), data.len());
                                received[lo..hi].fill(true);
                                touched[lo..hi].fill(step + 1);
                                let n = asm.remove_front() as usize;
                                rx.advance_write(n);
                                rcv_nxt += n;
                            }
                            Err(TooManyHoles) => {
                                // Justified only if it would open hole number MAX_RANGES + 1.
                                let mut would = received.clone();
                                would[lo..hi].fill(true);
                                prop_assert!(runs(&would, rcv_nxt).iter().filter(|r| r.0 > 0).count() > MAX_RANGES);
                            }
                        }
                    }
                    Op::Read(k) => {
                        let mut out = vec![0; k];
                        let n = rx.dequeue_slice(&mut out);
                        prop_assert_eq!(n, k.min(rcv_nxt - read));
                        let expected: Vec<u8> = (read..read + n).map(byte_at).collect();
                        prop_assert_eq!(&out[..n], &expected[..]);
                        read += n;
                    }
                }
                let contiguous = received.iter().skip(rcv_nxt).take_while(|&&r| r).count();
                prop_assert_eq!(contiguous, 0, "in-order bytes left in the assembler");
                prop_assert_eq!(rx.len(), rcv_nxt - read);
                let mut held = vec![0; rx.len()];
                rx.read_at(0, &mut held);
                prop_assert!(held.iter().enumerate().all(|(i, &b)| b == byte_at(read + i)));
                let runs = runs(&received, rcv_nxt);
                prop_assert_eq!(asm.ranges().collect::<Vec<_>>(), runs.clone());
                // RFC 2018 §4: the block holding the latest segment first, then by recency.
                let mut sack = runs;
                sack.sort_by_key(|r| core::cmp::Reverse(touched[rcv_nxt..][r.0 as usize..r.1 as usize].iter().max().copied()));
                prop_assert_eq!(asm.sack_ranges().collect::<Vec<_>>(), sack);
                prop_assert!(asm.len() <= MAX_RANGES);
            }
        }
    }

    /// Maximal runs of received positions at or after `from`, as offsets from `from`.
    fn runs(received: &[bool], from: usize) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut i = from;
        while i < received.len() {
            if received[i] {
                let start = i;
                while i < received.len() && received[i] {
                    i += 1;
                }
                out.push(((start - from) as u32, (i - from) as u32));
            }
            i += 1;
        }
        out
    }
}
