//! A per-shard pool of equally sized byte buffers, lent to connections for their send and
//! receive [`RingBuffer`](crate::buffer::RingBuffer)s while they have data in flight, so that
//! idle connections (and half-open ones under a SYN flood) hold no buffer memory and the
//! total stays bounded.

use core::fmt;

/// Hands out `Box<[u8]>` buffers of one size, at most `max_buffers` at a time. Returned
/// buffers are kept for reuse, not freed, so steady state allocates nothing.
pub struct BufferPool {
    free: Vec<Box<[u8]>>,
    buffer_size: usize,
    max_buffers: usize,
    outstanding: usize,
}

impl BufferPool {
    /// A pool of buffers of `buffer_size` bytes, lending at most `max_buffers` at once.
    /// Nothing is allocated until buffers are taken.
    pub fn new(buffer_size: usize, max_buffers: usize) -> Self {
        BufferPool {
            free: Vec::new(),
            buffer_size,
            max_buffers,
            outstanding: 0,
        }
    }

    /// Lends a buffer: a reused one if any, else a new zeroed one; `None` when `max_buffers`
    /// are already out. Reused buffers keep their old contents.
    pub fn take(&mut self) -> Option<Box<[u8]>> {
        if self.outstanding == self.max_buffers {
            return None;
        }
        self.outstanding += 1;
        Some(
            self.free
                .pop()
                .unwrap_or_else(|| vec![0; self.buffer_size].into_boxed_slice()),
        )
    }

    /// Returns a buffer taken from this pool.
    ///
    /// # Panics
    ///
    /// If the buffer has the wrong size or no buffer is outstanding: both mean it did not
    /// come from this pool.
    pub fn give(&mut self, buffer: Box<[u8]>) {
        assert_eq!(
            buffer.len(),
            self.buffer_size,
            "buffer not from this pool: wrong size"
        );
        self.outstanding = self
            .outstanding
            .checked_sub(1)
            .expect("buffer not from this pool: none outstanding");
        self.free.push(buffer);
    }

    /// Buffers currently lent out.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Buffers that can still be taken.
    pub fn available(&self) -> usize {
        self.max_buffers - self.outstanding
    }

    /// Returned buffers kept for reuse.
    pub fn idle(&self) -> usize {
        self.free.len()
    }

    /// Size of every buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Most buffers lent at once.
    pub fn max_buffers(&self) -> usize {
        self.max_buffers
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("buffer_size", &self.buffer_size)
            .field("max_buffers", &self.max_buffers)
            .field("outstanding", &self.outstanding)
            .field("idle", &self.free.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::RingBuffer;

    #[test]
    fn bounded_and_counted() {
        let mut pool = BufferPool::new(1024, 2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!((a.len(), b.len()), (1024, 1024));
        assert!(pool.take().is_none());
        assert_eq!(
            (pool.outstanding(), pool.available(), pool.idle()),
            (2, 0, 0)
        );
        pool.give(a);
        assert_eq!(
            (pool.outstanding(), pool.available(), pool.idle()),
            (1, 1, 1)
        );
        assert!(pool.take().is_some());
        assert!(pool.take().is_none());
    }

    #[test]
    fn buffers_are_reused_through_ring_buffers() {
        let mut pool = BufferPool::new(64, 1);
        let storage = pool.take().unwrap();
        let ptr = storage.as_ptr();
        let mut rx = RingBuffer::from_storage(storage);
        rx.enqueue_slice(b"data");
        pool.give(core::mem::take(&mut rx).into_storage());
        assert_eq!(rx.capacity(), 0, "the idle connection holds nothing");
        let again = pool.take().unwrap();
        assert_eq!(again.as_ptr(), ptr);
    }

    #[test]
    #[should_panic(expected = "wrong size")]
    fn foreign_buffer_panics() {
        let mut pool = BufferPool::new(64, 1);
        pool.give(vec![0; 32].into_boxed_slice());
    }

    #[test]
    #[should_panic(expected = "none outstanding")]
    fn over_return_panics() {
        let mut pool = BufferPool::new(64, 1);
        pool.give(vec![0; 64].into_boxed_slice());
    }
}
