//! Storage in fixed-size chunks for the engine's slabs (connections, requests, TIME-WAIT
//! entries, timers): growing never moves existing entries — a million-connection slab that
//! doubled would copy hundreds of megabytes on the worker's fast path — and at most one chunk
//! is ever unused (a doubling `Vec` can leave half its capacity idle).

/// Entries per chunk.
const CHUNK: usize = 4096;

/// Storage in fixed-size chunks: growing never copies the entries, and at most one chunk is
/// slack (a `Vec` doubling would leave up to half its capacity unused).
#[derive(Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// Appends `value`; returns its index.
    pub fn push(&mut self, value: T) -> u32 {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("just ensured").push(value);
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The entry at `i`, if it exists.
    pub fn get(&self, i: u32) -> Option<&T> {
        self.chunks.get(i as usize / CHUNK)?.get(i as usize % CHUNK)
    }

    /// The entry at `i`, mutably, if it exists.
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.chunks
            .get_mut(i as usize / CHUNK)?
            .get_mut(i as usize % CHUNK)
    }

    /// Every entry in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> core::ops::Index<u32> for Chunked<T> {
    type Output = T;
    fn index(&self, i: u32) -> &T {
        &self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }
}

impl<T> core::ops::IndexMut<u32> for Chunked<T> {
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }
}
