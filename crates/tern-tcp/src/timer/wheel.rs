//! A hierarchical timing wheel with millisecond resolution: one per shard, holding every
//! per-connection timer (RTO, delayed ACK, persist, keepalive, TIME-WAIT, SYN-ACK retransmit).
//! The design and its guarantees are documented on [`TimerWheel`].

use core::fmt;

use crate::chunked::Chunked;
use crate::time::Instant;

/// Number of levels; 6 levels of 64 slots cover 2^36 ms (about 795 days).
pub const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// A deadline whose bits above these differ from the current time's lies in a later epoch.
const EPOCH_MASK: u64 = (1 << (SLOT_BITS * LEVELS as u32)) - 1;
/// List index of the overflow list, after the `LEVELS * SLOTS` slot lists.
const OVERFLOW: u16 = (LEVELS * SLOTS) as u16;
/// End of list, and "no free entry".
const NIL: u32 = u32::MAX;

/// Names one inserted timer. Carries a generation, so a handle outliving its timer (fired or
/// cancelled, entry reused) is recognised as stale instead of touching someone else's timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

/// The handle names a timer that already fired or was cancelled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StaleHandle;

impl fmt::Display for StaleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timer handle is stale: the timer already fired or was cancelled")
    }
}

impl std::error::Error for StaleHandle {}

struct Entry<T> {
    /// Exact deadline in microseconds; the wheel files it by `deadline / 1000`.
    deadline: u64,
    prev: u32,
    /// Next in the slot list, or next free entry while vacant.
    next: u32,
    /// Bumped when the entry is vacated, which invalidates outstanding handles.
    generation: u32,
    /// Which list the entry is on: `level * 64 + slot`, or `OVERFLOW`.
    list: u16,
    /// `None` while the entry is on the free list.
    value: Option<T>,
}

/// A hierarchical timing wheel mapping deadlines to values `T`.
///
/// # Layout
///
/// [`LEVELS`] levels of 64 slots; a slot of level `k` spans `64^k` ms, so level 0 is exact to
/// the millisecond and the whole wheel spans `64^6` ms (about 795 days, an *epoch*). A timer is
/// filed at the level of the highest base-64 digit in which its deadline differs from the
/// wheel's current time (as tokio's wheel does), so every timer at level `k` shares
/// all digits above `k` with the current time and every lower level only holds earlier
/// timers. Deadlines in a later epoch wait in an unordered overflow list that is re-filed when
/// time reaches their epoch.
///
/// Timers live in a slab (`Vec` of entries plus a free list), and each slot is an intrusive
/// doubly-linked list of slab indices, so insert, cancel and reset are O(1) and allocate only
/// when the slab grows past its high-water mark. A 64-bit occupancy mask per level finds the
/// next non-empty slot with one `trailing_zeros`, so [`TimerWheel::poll`] skips empty time
/// however far `now` jumps: its cost is bounded by the timers it touches, each of which is
/// moved down at most `LEVELS - 1` times before it fires. (Timers in the overflow list are
/// scanned whenever time reaches the epoch of one of them: rare, as epochs last 795 days.)
///
/// # Granularity guarantee
///
/// A timer fires at the first [`TimerWheel::poll`] whose `now.as_millis()` is at least
/// `deadline.as_millis()`: never before its deadline truncated to the millisecond, and never
/// later than the first poll at or after that truncated deadline.
///
/// # Memory
///
/// Each entry costs 22 bytes of bookkeeping (deadline, two links, generation, slot) plus an
/// `Option<T>`, rounded up to alignment: 32 bytes in all for a `u32` or a `(u32, enum)`
/// payload, whose spare enum values hold the `None`. The wheel itself adds about 1.6 KiB of
/// slot heads and occupancy masks.
pub struct TimerWheel<T> {
    entries: Chunked<Entry<T>>,
    free: u32,
    len: usize,
    /// Current time of the wheel in ms: every slot before it has been processed. Never ahead
    /// of the latest `now` the caller passed in.
    elapsed: u64,
    heads: [u32; LEVELS * SLOTS + 1],
    occupied: [u64; LEVELS],
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose current time is `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_capacity(now, 0)
    }

    /// An empty wheel. `capacity` is a hint kept for API stability: entries live in fixed
    /// chunks that never move, so there is nothing to reserve.
    pub fn with_capacity(now: Instant, capacity: usize) -> Self {
        let _ = capacity;
        TimerWheel {
            entries: Chunked::default(),
            free: NIL,
            len: 0,
            elapsed: now.as_millis(),
            heads: [NIL; LEVELS * SLOTS + 1],
            occupied: [0; LEVELS],
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` for `deadline`. A deadline at or before the wheel's current time fires
    /// at the next [`poll`](Self::poll).
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` timers are pending at once.
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerHandle {
        let deadline = deadline.as_micros();
        let index = match self.free {
            NIL => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("timer wheel holds at most u32::MAX - 1 timers");
                self.entries.push(Entry {
                    deadline,
                    prev: NIL,
                    next: NIL,
                    generation: 0,
                    list: 0,
                    value: Some(value),
                });
                index
            }
            index => {
                let entry = &mut self.entries[index];
                self.free = entry.next;
                entry.deadline = deadline;
                entry.value = Some(value);
                index
            }
        };
        self.len += 1;
        self.link(index, self.list_for(deadline / 1_000));
        TimerHandle {
            index,
            generation: self.entries[index].generation,
        }
    }

    /// Removes the timer and returns its value, or `None` if the handle is stale.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        self.live(handle)?;
        Some(self.remove(handle.index))
    }

    /// Moves the timer to `deadline`, keeping its handle valid. Costs one list move at most,
    /// none when the new deadline files into the same slot.
    pub fn reset(&mut self, handle: TimerHandle, deadline: Instant) -> Result<(), StaleHandle> {
        let entry = self.live(handle).ok_or(StaleHandle)?;
        let old_list = entry.list;
        let deadline = deadline.as_micros();
        let list = self.list_for(deadline / 1_000);
        self.entries[handle.index].deadline = deadline;
        if list != old_list {
            self.unlink(handle.index);
            self.link(handle.index, list);
        }
        Ok(())
    }

    /// The exact deadline of a pending timer, or `None` if the handle is stale.
    pub fn deadline(&self, handle: TimerHandle) -> Option<Instant> {
        self.live(handle).map(|e| Instant::from_micros(e.deadline))
    }

    /// When [`poll`](Self::poll) next has work: a millisecond boundary no later than the
    /// earliest deadline truncated to the millisecond (or than the wheel's current time, if a
    /// timer is already due). It is exactly that truncated deadline when the earliest timer is
    /// filed at level 0, i.e. due within the current 64 ms window; otherwise it is the start
    /// of the coarser slot holding it, where `poll` moves that slot's timers down a level
    /// without firing. So sleeping until this instant and polling converges on the deadline in
    /// at most `LEVELS` wake-ups and never oversleeps. Costs `O(LEVELS)`, except while the
    /// only timers lie in a later epoch (over 795 days away), when it scans those.
    pub fn next_expiration(&self) -> Option<Instant> {
        self.next_slot().map(|(ms, _)| Instant::from_millis(ms))
    }

    /// Removes and returns the next timer due at `now` (see the [granularity
    /// guarantee](TimerWheel#granularity-guarantee)), in order of millisecond deadline; timers with
    /// the same millisecond, or inserted already due, come out in unspecified order. Call it
    /// until it returns `None`. Returns the fired timer's (now stale) handle with its value.
    pub fn poll(&mut self, now: Instant) -> Option<(TimerHandle, T)> {
        let now = now.as_millis();
        loop {
            // The level-0 slot of the current millisecond holds exactly the due timers.
            let head = self.heads[(self.elapsed & SLOT_MASK) as usize];
            if head != NIL {
                let generation = self.entries[head].generation;
                let value = self.remove(head);
                return Some((
                    TimerHandle {
                        index: head,
                        generation,
                    },
                    value,
                ));
            }
            match self.next_slot() {
                Some((start, level)) if start <= now => self.advance_to(start, level),
                _ => {
                    // Nothing is due before `now`, so no slot lies between the two times.
                    self.elapsed = self.elapsed.max(now);
                    return None;
                }
            }
        }
    }

    /// Start (in ms) and level of the earliest non-empty slot; level `LEVELS` means the
    /// overflow list, for which the start is the earliest epoch it holds.
    fn next_slot(&self) -> Option<(u64, usize)> {
        // Every timer at a level lies beyond every timer at the levels below, so the first
        // occupied slot of the lowest occupied level is the earliest.
        for (level, &mask) in self.occupied.iter().enumerate() {
            if mask != 0 {
                let shift = SLOT_BITS * level as u32;
                let above = shift + SLOT_BITS;
                let slot = u64::from(mask.trailing_zeros());
                let start = (self.elapsed >> above << above) | (slot << shift);
                return Some((start, level));
            }
        }
        let mut index = self.heads[OVERFLOW as usize];
        let mut earliest = None::<u64>;
        while index != NIL {
            let entry = &self.entries[index];
            let epoch = (entry.deadline / 1_000) & !EPOCH_MASK;
            earliest = Some(earliest.map_or(epoch, |e| e.min(epoch)));
            index = entry.next;
        }
        earliest.map(|start| (start, LEVELS))
    }

    /// Moves the current time to `start`, the earliest non-empty slot (at `level`), and
    /// re-files that slot's timers relative to it: they land at lower levels, or in the
    /// current millisecond's slot if due at `start`. A level-0 slot simply becomes current.
    fn advance_to(&mut self, start: u64, level: usize) {
        self.elapsed = start;
        if level == 0 {
            return;
        }
        let list = if level == LEVELS {
            OVERFLOW
        } else {
            slot_list(level, start)
        };
        let mut index = std::mem::replace(&mut self.heads[list as usize], NIL);
        if level < LEVELS {
            self.occupied[level] &= !(1 << (list as usize % SLOTS));
        }
        while index != NIL {
            let entry = &self.entries[index];
            let (next, ms) = (entry.next, entry.deadline / 1_000);
            self.link(index, self.list_for(ms));
            index = next;
        }
    }

    /// The list a deadline of `ms` belongs on, given the current time.
    fn list_for(&self, ms: u64) -> u16 {
        let ms = ms.max(self.elapsed);
        // Highest base-64 digit where the deadline differs from now; `| SLOT_MASK` maps
        // "due now" to level 0, the current millisecond's slot.
        let level = (63 - ((self.elapsed ^ ms) | SLOT_MASK).leading_zeros()) / SLOT_BITS;
        if level as usize >= LEVELS {
            return OVERFLOW;
        }
        slot_list(level as usize, ms)
    }

    fn live(&self, handle: TimerHandle) -> Option<&Entry<T>> {
        self.entries
            .get(handle.index)
            .filter(|e| e.generation == handle.generation && e.value.is_some())
    }

    /// Pushes entry `index` at the front of `list`.
    fn link(&mut self, index: u32, list: u16) {
        let head = self.heads[list as usize];
        if head != NIL {
            self.entries[head].prev = index;
        }
        let entry = &mut self.entries[index];
        entry.prev = NIL;
        entry.next = head;
        entry.list = list;
        self.heads[list as usize] = index;
        if list != OVERFLOW {
            self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
        }
    }

    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, list, ..
        } = self.entries[index];
        if next != NIL {
            self.entries[next].prev = prev;
        }
        if prev != NIL {
            self.entries[prev].next = next;
        } else {
            self.heads[list as usize] = next;
            if next == NIL && list != OVERFLOW {
                self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
            }
        }
    }

    /// Unlinks a live entry, puts it on the free list and returns its value.
    fn remove(&mut self, index: u32) -> T {
        self.unlink(index);
        self.len -= 1;
        let entry = &mut self.entries[index];
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = self.free;
        self.free = index;
        entry
            .value
            .take()
            .expect("linked timer entries hold a value")
    }
}

/// The list of the slot of `level` that millisecond `ms` falls in: `level * 64 + digit`.
fn slot_list(level: usize, ms: u64) -> u16 {
    let digit = (ms >> (SLOT_BITS * level as u32)) & SLOT_MASK;
    (level * SLOTS) as u16 | digit as u16
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len)
            .field("now", &Instant::from_millis(self.elapsed))
            .field("slab", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn drain<T>(wheel: &mut TimerWheel<T>, now: Instant) -> Vec<T> {
        std::iter::from_fn(|| wheel.poll(now).map(|(_, v)| v)).collect()
    }

    #[test]
    fn entry_is_small() {
        // The shape the engine will use: connection index plus timer kind.
        #[expect(dead_code, reason = "only the layout matters")]
        enum Kind {
            Rto,
            DelayedAck,
        }
        assert_eq!(core::mem::size_of::<Entry<(u32, Kind)>>(), 32);
        assert_eq!(core::mem::size_of::<Entry<u32>>(), 32);
    }

    #[test]
    fn fires_in_deadline_order_and_not_before() {
        let mut w = TimerWheel::new(ms(0));
        for (d, v) in [(300, 'c'), (5, 'a'), (70, 'b'), (5_000, 'd')] {
            w.insert(ms(d), v);
        }
        assert_eq!(w.len(), 4);
        assert_eq!(drain(&mut w, ms(4)), []);
        assert_eq!(drain(&mut w, ms(300)), ['a', 'b', 'c']);
        assert_eq!(drain(&mut w, Instant::from_micros(4_999_999)), []);
        assert_eq!(drain(&mut w, ms(5_000)), ['d']);
        assert!(w.is_empty());
    }

    #[test]
    fn millisecond_truncation() {
        let mut w = TimerWheel::new(ms(0));
        w.insert(Instant::from_micros(10_700), ());
        assert_eq!(w.next_expiration(), Some(ms(10)));
        assert!(w.poll(Instant::from_micros(9_999)).is_none());
        assert!(w.poll(ms(10)).is_some());
    }

    #[test]
    fn cancel_and_stale_handles() {
        let mut w = TimerWheel::new(ms(0));
        let a = w.insert(ms(10), "a");
        let b = w.insert(ms(20), "b");
        assert_eq!(w.cancel(a), Some("a"));
        assert_eq!(w.cancel(a), None, "double cancel");
        // The freed entry is reused; the old handle must not reach the new timer.
        let c = w.insert(ms(10), "c");
        assert_eq!(c.index, a.index);
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.reset(a, ms(1)), Err(StaleHandle));
        assert_eq!(w.deadline(a), None);
        let (fired, v) = w.poll(ms(10)).unwrap();
        assert_eq!((fired, v), (c, "c"));
        assert_eq!(w.cancel(c), None, "fired handles are stale");
        assert_eq!(w.deadline(b), Some(ms(20)));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn reset_moves_both_ways() {
        let mut w = TimerWheel::new(ms(0));
        let rto = w.insert(ms(1_000), 1);
        let other = w.insert(ms(500), 2);
        w.reset(rto, ms(200)).unwrap();
        assert_eq!(w.deadline(rto), Some(ms(200)));
        assert_eq!(drain(&mut w, ms(200)), [1]);
        w.reset(other, ms(90_000)).unwrap();
        assert_eq!(drain(&mut w, ms(89_999)), []);
        assert_eq!(drain(&mut w, ms(90_000)), [2]);
    }

    #[test]
    fn past_deadline_fires_at_next_poll() {
        let mut w = TimerWheel::new(ms(1_000));
        w.insert(ms(3), 'x');
        w.insert(ms(1_000), 'y');
        assert_eq!(w.next_expiration(), Some(ms(1_000)));
        let mut got = drain(&mut w, ms(1_000));
        got.sort_unstable();
        assert_eq!(got, ['x', 'y']);
        // A poll with an older `now` neither rewinds the wheel nor loses due timers.
        w.insert(ms(999), 'z');
        assert_eq!(drain(&mut w, ms(0)), ['z']);
    }

    #[test]
    fn far_future_and_large_jumps() {
        let keepalive = Duration::from_secs(7_200) + Duration::from_secs(75) * 9;
        let mut w = TimerWheel::new(ms(0));
        w.insert(Instant::ZERO + keepalive, "keepalive");
        w.insert(Instant::ZERO + Duration::from_secs(120), "time-wait");
        w.insert(
            Instant::ZERO + Duration::from_secs(86_400 * 1_000),
            "beyond the top level",
        );
        w.insert(Instant::from_micros(u64::MAX), "never");
        assert_eq!(drain(&mut w, ms(119_999)), Vec::<&str>::new());
        assert_eq!(
            drain(&mut w, Instant::ZERO + Duration::from_secs(3 * 3_600)),
            ["time-wait", "keepalive"]
        );
        assert_eq!(
            drain(&mut w, Instant::ZERO + Duration::from_secs(86_400 * 999)),
            Vec::<&str>::new()
        );
        assert_eq!(
            drain(&mut w, Instant::ZERO + Duration::from_secs(86_400 * 1_000)),
            ["beyond the top level"]
        );
        // Hundreds of thousands of years in one step: only the occupied epoch is visited.
        assert_eq!(
            w.next_expiration(),
            Some(ms((u64::MAX / 1_000) & !EPOCH_MASK))
        );
        assert_eq!(drain(&mut w, Instant::from_micros(u64::MAX - 1)), ["never"]);
    }

    #[test]
    fn next_expiration_converges() {
        let mut w = TimerWheel::new(ms(0));
        assert_eq!(w.next_expiration(), None);
        w.insert(ms(3 * 4_096 + 70), ());
        // Filed at level 2 (slots of 4096 ms): first the slot start, then finer.
        assert_eq!(w.next_expiration(), Some(ms(3 * 4_096)));
        assert!(w.poll(ms(3 * 4_096)).is_none());
        assert_eq!(w.next_expiration(), Some(ms(3 * 4_096 + 64)));
        assert!(w.poll(ms(3 * 4_096 + 64)).is_none());
        assert_eq!(w.next_expiration(), Some(ms(3 * 4_096 + 70)));
        assert!(w.poll(ms(3 * 4_096 + 70)).is_some());
        assert_eq!(w.next_expiration(), None);
    }

    #[test]
    fn slab_is_reused() {
        let mut w = TimerWheel::with_capacity(ms(0), 4);
        for round in 0..100u64 {
            let hs: Vec<_> = (0..4).map(|i| w.insert(ms(round * 10 + i), i)).collect();
            w.cancel(hs[1]).unwrap();
            assert_eq!(drain(&mut w, ms(round * 10 + 9)), [0, 2, 3]);
        }
        assert_eq!(w.entries.len(), 4);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(i64),
        Cancel(usize),
        Reset(usize, i64),
        Advance(u64),
        /// Jump to `next_expiration()` and poll there.
        JumpToNext,
    }

    /// Deadline offsets from now (µs): mostly near, sometimes in the past, hours or days out,
    /// or beyond the top level.
    fn offset() -> impl Strategy<Value = i64> {
        prop_oneof![
            6 => -2_000_000i64..10_000_000,
            1 => 0i64..10_000_000_000,
            1 => 0i64..100_000_000_000_000,
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => offset().prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Cancel),
            2 => (any::<usize>(), offset()).prop_map(|(i, d)| Op::Reset(i, d)),
            4 => prop_oneof![
                8 => 0u64..10_000_000,
                1 => 0u64..100_000_000_000_000,
            ]
            .prop_map(Op::Advance),
            1 => Just(Op::JumpToNext),
        ]
    }

    /// The oracle orders timers by effective deadline in ms: a deadline already past when
    /// set counts as due at that moment, matching "fires at the next poll".
    struct Oracle {
        timers: BTreeMap<(u64, u64), u64>,
        by_id: BTreeMap<u64, (u64, u64)>,
        seq: u64,
    }

    impl Oracle {
        fn set(&mut self, id: u64, deadline: Instant, now: Instant) {
            let key = (deadline.as_millis().max(now.as_millis()), self.seq);
            self.seq += 1;
            self.timers.insert(key, id);
            self.by_id.insert(id, key);
        }

        fn remove(&mut self, id: u64) -> bool {
            self.by_id
                .remove(&id)
                .map(|key| self.timers.remove(&key))
                .is_some()
        }
    }

    fn at(now: Instant, offset: i64) -> Instant {
        if offset < 0 {
            now - Duration::from_micros(offset.unsigned_abs())
        } else {
            now + Duration::from_micros(offset as u64)
        }
    }

    proptest! {
        #[test]
        fn matches_btreemap_oracle(start in 0u64..1_000_000_000, ops in proptest::collection::vec(op(), 1..300)) {
            let mut now = Instant::from_micros(start);
            let mut wheel = TimerWheel::new(now);
            let mut oracle = Oracle { timers: BTreeMap::new(), by_id: BTreeMap::new(), seq: 0 };
            let mut handles: Vec<(TimerHandle, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(off) => {
                        let id = handles.len() as u64;
                        let deadline = at(now, off);
                        handles.push((wheel.insert(deadline, id), id));
                        oracle.set(id, deadline, now);
                        prop_assert_eq!(wheel.deadline(handles[id as usize].0), Some(deadline));
                    }
                    Op::Cancel(i) if !handles.is_empty() => {
                        let (h, id) = handles[i % handles.len()];
                        let live = oracle.remove(id);
                        prop_assert_eq!(wheel.cancel(h), live.then_some(id));
                    }
                    Op::Reset(i, off) if !handles.is_empty() => {
                        let (h, id) = handles[i % handles.len()];
                        let deadline = at(now, off);
                        let live = oracle.remove(id);
                        if live {
                            oracle.set(id, deadline, now);
                        }
                        prop_assert_eq!(wheel.reset(h, deadline).is_ok(), live);
                    }
                    Op::Cancel(_) | Op::Reset(..) => {}
                    Op::Advance(_) | Op::JumpToNext => {
                        if let Op::Advance(d) = op {
                            now += Duration::from_micros(d);
                        } else if let Some(next) = wheel.next_expiration() {
                            now = now.max(next);
                        }
                        let mut last = 0;
                        while let Some((h, id)) = wheel.poll(now) {
                            let key = oracle.by_id[&id];
                            prop_assert!(key.0 <= now.as_millis(), "fired early: {:?} at {:?}", key, now);
                            prop_assert!(key.0 >= last, "out of order");
                            prop_assert_eq!(h, handles[id as usize].0);
                            last = key.0;
                            oracle.remove(id);
                        }
                        if let Some((&(due, _), _)) = oracle.timers.first_key_value() {
                            prop_assert!(due > now.as_millis(), "timer due at {} ms lost at {:?}", due, now);
                        }
                    }
                }
                prop_assert_eq!(wheel.len(), oracle.timers.len());
                match (wheel.next_expiration(), oracle.timers.first_key_value()) {
                    (None, None) => {}
                    (Some(next), Some((&(due, _), _))) => {
                        prop_assert_eq!(next.as_micros() % 1_000, 0);
                        prop_assert!(next.as_millis() <= due, "next {:?} after earliest {} ms", next, due);
                        prop_assert!(next.as_millis() >= now.as_millis());
                        // Within the current 64 ms window the answer is exact.
                        if due >> SLOT_BITS == now.as_millis() >> SLOT_BITS {
                            prop_assert_eq!(next.as_millis(), due);
                        }
                    }
                    (next, earliest) => prop_assert!(false, "next {:?} vs oracle {:?}", next, earliest),
                }
            }
        }

        /// Sleeping until `next_expiration()` and polling fires every timer in order, never
        /// early, and needs at most `LEVELS` wake-ups per fired batch.
        #[test]
        fn next_expiration_drives_to_completion(
            deadlines in proptest::collection::vec(0u64..100_000_000_000_000, 1..50),
        ) {
            let mut wheel = TimerWheel::new(Instant::ZERO);
            for (i, &d) in deadlines.iter().enumerate() {
                wheel.insert(Instant::from_micros(d), i);
            }
            let mut fired = Vec::new();
            let mut idle_wakeups = 0;
            while let Some(next) = wheel.next_expiration() {
                let before = fired.len();
                while let Some((_, i)) = wheel.poll(next) {
                    prop_assert!(deadlines[i] / 1_000 <= next.as_millis());
                    fired.push(deadlines[i] / 1_000);
                }
                idle_wakeups = if fired.len() == before { idle_wakeups + 1 } else { 0 };
                prop_assert!(idle_wakeups <= LEVELS, "no progress at {:?}", next);
            }
            let mut expected: Vec<u64> = deadlines.iter().map(|d| d / 1_000).collect();
            expected.sort_unstable();
            prop_assert_eq!(fired, expected);
        }
    }
}
