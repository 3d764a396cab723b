//! A slab: values in a `Vec` addressed by index, with a free list and a generation per slot so
//! a handle to a freed value can be recognised as stale.

use crate::chunked::Chunked;

/// Slab of `T`.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Chunked<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Chunked::default(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores the value `make(index, generation)` and returns where it went.
    pub fn insert_with(&mut self, make: impl FnOnce(u32, u32) -> T) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index];
        slot.value = Some(make(index, slot.generation));
        self.len += 1;
        (index, slot.generation)
    }

    /// Removes the value at `index`; later handles with the old generation are stale.
    pub fn remove(&mut self, index: u32) -> Option<T> {
        let slot = self.slots.get_mut(index)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    pub fn get(&self, index: u32) -> Option<&T> {
        self.slots.get(index)?.value.as_ref()
    }

    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.slots.get_mut(index)?.value.as_mut()
    }

    /// The value at `index` if it is still the one of `generation`.
    pub fn get_checked(&self, index: u32, generation: u32) -> Option<&T> {
        let slot = self.slots.get(index)?;
        (slot.generation == generation).then_some(())?;
        slot.value.as_ref()
    }

    pub fn get_checked_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let slot = self.slots.get_mut(index)?;
        (slot.generation == generation).then_some(())?;
        slot.value.as_mut()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.value.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_generations_are_refused() {
        let mut s = Slab::default();
        let (i, g) = s.insert_with(|_, _| "a");
        assert_eq!(s.get_checked(i, g), Some(&"a"));
        assert_eq!(s.remove(i), Some("a"));
        let (j, h) = s.insert_with(|_, _| "b");
        assert_eq!(j, i, "the slot is reused");
        assert_ne!(h, g);
        assert_eq!(s.get_checked(i, g), None);
        assert_eq!(s.get_checked(j, h), Some(&"b"));
        assert_eq!(s.len(), 1);
    }
}
