//! A fixed-capacity byte ring for a connection's send and receive data.
//!
//! Send side: the application enqueues at the tail; the engine reads unacknowledged bytes
//! with [`RingBuffer::read_at`] (offset from SND.UNA) to transmit and retransmit them, and
//! [`RingBuffer::consume`]s them when they are acknowledged.
//!
//! Receive side: segments are placed with [`RingBuffer::write_at`] (offset from RCV.NXT, the
//! tail) wherever they land in the window; the [`Assembler`](crate::assembler::Assembler)
//! says when bytes become in order and [`RingBuffer::advance_write`] commits them; the
//! application dequeues from the head. [`RingBuffer::window`] is the receive window.
//!
//! The storage is a plain `Box<[u8]>` lent by a [`BufferPool`](crate::pool::BufferPool) and
//! handed back with [`RingBuffer::into_storage`], so an idle connection holds the empty
//! default ring and no buffer memory. Indices are `u32` (buffers are at most 1 GiB, the
//! largest scaled TCP window) to keep the ring at 24 bytes inside every connection.

use core::fmt;

/// A byte ring over borrowed-from-the-pool storage; see the [module docs](self). The
/// default ring has no storage.
#[derive(Default)]
pub struct RingBuffer {
    /// Never resized: its length is the capacity (at most `u32::MAX`).
    storage: Box<[u8]>,
    /// Index of the first committed byte.
    head: u32,
    /// Committed bytes, from `head` onwards (wrapping).
    len: u32,
}

impl RingBuffer {
    /// An empty ring using `storage`, whose length is the capacity. Old contents are not
    /// cleared (pool buffers are reused as they are); they are unreachable until overwritten,
    /// except through [`advance_write`](Self::advance_write) over unwritten bytes.
    pub fn from_storage(storage: Box<[u8]>) -> Self {
        assert!(
            u32::try_from(storage.len()).is_ok(),
            "ring storage above 4 GiB"
        );
        RingBuffer {
            storage,
            head: 0,
            len: 0,
        }
    }

    /// Gives the storage back (for the pool), discarding the contents.
    pub fn into_storage(self) -> Box<[u8]> {
        self.storage
    }

    /// Total size of the storage.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Committed bytes: unacknowledged data (send) or unread in-order data (receive).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no byte is committed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no free space is left.
    pub fn is_full(&self) -> bool {
        self.len as usize == self.capacity()
    }

    /// Free space after the committed bytes: the receive window, or room for more send data.
    pub fn window(&self) -> usize {
        self.capacity() - self.len as usize
    }

    /// Drops every committed byte.
    pub fn clear(&mut self) {
        (self.head, self.len) = (0, 0);
    }

    /// Appends as much of `data` as fits and returns how much that was.
    pub fn enqueue_slice(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.len += n as u32;
        n
    }

    /// Moves up to `out.len()` committed bytes from the head into `out`; returns the count.
    pub fn dequeue_slice(&mut self, out: &mut [u8]) -> usize {
        let n = self.read_at(0, out);
        self.consume(n);
        n
    }

    /// Copies committed bytes starting `offset` bytes after the head into `out`, without
    /// consuming them, and returns the count: `out.len()` or what is left after `offset`.
    pub fn read_at(&self, offset: usize, out: &mut [u8]) -> usize {
        let n = out.len().min((self.len as usize).saturating_sub(offset));
        if n == 0 {
            return 0;
        }
        let start = self.wrap(self.head as usize + offset);
        let first = n.min(self.capacity() - start);
        out[..first].copy_from_slice(&self.storage[start..start + first]);
        out[first..n].copy_from_slice(&self.storage[..n - first]);
        n
    }

    /// Copies `data` into free space starting `offset` bytes after the committed tail, without
    /// committing it, and returns the count: `data.len()` or what fits in the window after
    /// `offset`.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let n = data.len().min(self.window().saturating_sub(offset));
        if n == 0 {
            return 0;
        }
        let start = self.wrap(self.head as usize + self.len as usize + offset);
        let first = n.min(self.capacity() - start);
        self.storage[start..start + first].copy_from_slice(&data[..first]);
        self.storage[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Commits `n` bytes after the tail, previously placed with [`write_at`](Self::write_at).
    ///
    /// # Panics
    ///
    /// If `n` exceeds the window.
    pub fn advance_write(&mut self, n: usize) {
        assert!(
            n <= self.window(),
            "advance_write({n}) past the window ({})",
            self.window()
        );
        self.len += n as u32;
    }

    /// Drops `n` committed bytes from the head (acknowledged, or read by the application).
    ///
    /// # Panics
    ///
    /// If `n` exceeds [`len`](Self::len).
    pub fn consume(&mut self, n: usize) {
        assert!(
            n <= self.len as usize,
            "consume({n}) beyond the {} committed bytes",
            self.len
        );
        self.len -= n as u32;
        // The head does not jump back to 0 when drained: out-of-order bytes may already sit
        // beyond the tail, at positions relative to it.
        self.head = self.wrap(self.head as usize + n) as u32;
    }

    /// Maps a logical index below twice the capacity onto the storage.
    fn wrap(&self, i: usize) -> usize {
        if i >= self.capacity() {
            i - self.capacity()
        } else {
            i
        }
    }
}

impl fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn ring(capacity: usize) -> RingBuffer {
        RingBuffer::from_storage(vec![0; capacity].into_boxed_slice())
    }

    #[test]
    fn empty_ring_holds_nothing() {
        let mut r = RingBuffer::default();
        assert_eq!((r.capacity(), r.len(), r.window()), (0, 0, 0));
        assert!(r.is_empty() && r.is_full());
        assert_eq!(r.enqueue_slice(b"abc"), 0);
        assert_eq!(r.write_at(0, b"abc"), 0);
        assert_eq!(r.dequeue_slice(&mut [0; 3]), 0);
        assert_eq!(r.into_storage().len(), 0);
    }

    #[test]
    fn wraps_around() {
        let mut r = ring(8);
        assert_eq!(r.enqueue_slice(b"abcdef"), 6);
        let mut out = [0; 4];
        assert_eq!(r.dequeue_slice(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.enqueue_slice(b"ghijklmn"), 6, "only the window fits");
        assert!(r.is_full());
        let mut all = [0; 8];
        assert_eq!(r.read_at(0, &mut all), 8);
        assert_eq!(&all, b"efghijkl");
        assert_eq!(r.read_at(5, &mut all), 3);
        assert_eq!(&all[..3], b"jkl");
        assert_eq!(r.read_at(8, &mut all), 0);
    }

    #[test]
    fn out_of_order_placement() {
        let mut r = ring(8);
        r.enqueue_slice(b"ab");
        r.consume(1);
        assert_eq!(r.write_at(3, b"ZZZZZZ"), 4, "clipped to the window");
        assert_eq!(r.write_at(7, b"x"), 0, "beyond the window");
        assert_eq!(r.write_at(0, b"cde"), 3);
        r.advance_write(7);
        let mut out = [0; 8];
        assert_eq!(r.dequeue_slice(&mut out), 8);
        assert_eq!(&out, b"bcdeZZZZ");
        assert!(r.is_empty());
        // Bytes placed beyond the tail stay put when the ring drains.
        assert_eq!(r.write_at(2, b"yz"), 2);
        r.enqueue_slice(b"w");
        r.consume(1);
        assert_eq!(r.write_at(0, b"x"), 1);
        r.advance_write(3);
        assert_eq!(r.dequeue_slice(&mut out), 3);
        assert_eq!(&out[..3], b"xyz");
    }

    #[test]
    fn storage_round_trip_keeps_allocation() {
        let storage = vec![0; 16].into_boxed_slice();
        let ptr = storage.as_ptr();
        let mut r = RingBuffer::from_storage(storage);
        r.enqueue_slice(b"hello");
        let back = r.into_storage();
        assert_eq!((back.as_ptr(), back.len()), (ptr, 16));
    }

    #[test]
    #[should_panic(expected = "past the window")]
    fn advance_write_past_window_panics() {
        let mut r = ring(4);
        r.enqueue_slice(b"abc");
        r.advance_write(2);
    }

    #[test]
    #[should_panic(expected = "beyond the")]
    fn consume_too_much_panics() {
        let mut r = ring(4);
        r.enqueue_slice(b"abc");
        r.consume(4);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Enqueue(Vec<u8>),
        Dequeue(usize),
        ReadAt(usize, usize),
        Consume(usize),
        /// Write `data` out of order, the part after `split` first, then commit it.
        Place(Vec<u8>, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let data = proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            data.clone().prop_map(Op::Enqueue),
            (0usize..40).prop_map(Op::Dequeue),
            (0usize..70, 0usize..40).prop_map(|(o, n)| Op::ReadAt(o, n)),
            (0usize..40).prop_map(Op::Consume),
            (data, 0usize..40).prop_map(|(d, s)| Op::Place(d, s)),
        ]
    }

    proptest! {
        #[test]
        fn matches_vecdeque_oracle(capacity in 0usize..64, ops in proptest::collection::vec(op(), 1..200)) {
            let mut r = ring(capacity);
            let mut oracle = VecDeque::new();
            for op in ops {
                match op {
                    Op::Enqueue(data) => {
                        let n = r.enqueue_slice(&data);
                        prop_assert_eq!(n, data.len().min(capacity - oracle.len()));
                        oracle.extend(&data[..n]);
                    }
                    Op::Dequeue(k) => {
                        let mut out = vec![0; k];
                        let n = r.dequeue_slice(&mut out);
                        let expected: Vec<u8> = oracle.drain(..k.min(oracle.len())).collect();
                        prop_assert_eq!(&out[..n], &expected[..]);
                    }
                    Op::ReadAt(offset, k) => {
                        let mut out = vec![0; k];
                        let n = r.read_at(offset, &mut out);
                        let expected: Vec<u8> = oracle.iter().skip(offset).take(k).copied().collect();
                        prop_assert_eq!(&out[..n], &expected[..]);
                    }
                    Op::Consume(k) => {
                        let k = k.min(oracle.len());
                        r.consume(k);
                        oracle.drain(..k);
                    }
                    Op::Place(data, split) => {
                        let fits = data.len().min(r.window());
                        let split = split.min(fits);
                        prop_assert_eq!(r.write_at(split, &data[split..]), fits - split);
                        prop_assert_eq!(r.write_at(0, &data[..split]), split);
                        r.advance_write(fits);
                        oracle.extend(&data[..fits]);
                    }
                }
                prop_assert_eq!(r.len(), oracle.len());
                prop_assert_eq!(r.window(), capacity - oracle.len());
                let mut all = vec![0; capacity];
                let n = r.read_at(0, &mut all);
                prop_assert_eq!(&all[..n], &oracle.iter().copied().collect::<Vec<_>>()[..]);
            }
        }
    }
}
