//! TIME-WAIT (RFC 9293 3.10.7.4, "TIME-WAIT STATE"; RFC 6191 reuse by a new SYN) in compact
//! entries instead of full connections, as Linux's `inet_timewait_sock` does — but smaller.
//!
//! An entry is 44 bytes: the remote address and both ports, the local address as an index
//! into a small table of the shard's addresses (a server has few), our SND.NXT and RCV.NXT,
//! the peer's last TSval, our last window, a 32-bit millisecond expiry and the link of an
//! intrusive FIFO. Entries live in a slab; the hash table holds slab indices only.
//!
//! Every entry lives 2 × MSL from its last (re)start, so expiry is a FIFO in insertion order.
//! A restart (a retransmitted FIN) only moves the entry's deadline; when its old FIFO
//! position comes up, the entry goes to the back instead of expiring, so it is never expired
//! early (at worst a little late). Removed entries leave their slot in the FIFO, which frees
//! it when it comes up. Bounded by `max_tw_buckets`.

use crate::chunked::Chunked;
use crate::time::Instant;
use crate::tuple::FourTuple;
use ahash::RandomState;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tern_wire::SeqNum;

/// What a closed connection leaves behind for 2 × MSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeWait {
    /// Our SND.NXT (our FIN is acknowledged: this is one past it).
    pub snd_nxt: SeqNum,
    /// Our RCV.NXT (one past the peer's FIN).
    pub rcv_nxt: SeqNum,
    /// The peer's last TSval, if timestamps were in use (for RFC 6191 and our ACKs).
    pub ts_recent: Option<u32>,
    /// When the entry expires.
    pub expires: Instant,
    /// The window field of our last ACK, repeated in TIME-WAIT ACKs (Linux's `tw_rcv_wnd`).
    pub window: u16,
}

const NIL: u32 = u32::MAX;
const F_V6: u8 = 1;
const F_TS: u8 = 2;
const F_LIVE: u8 = 4;

/// One TIME-WAIT entry as stored (44 bytes).
#[derive(Debug, Clone, Copy)]
struct Entry {
    remote: [u8; 16],
    remote_port: u16,
    local_port: u16,
    local: u8,
    flags: u8,
    window: u16,
    snd_nxt: u32,
    rcv_nxt: u32,
    ts_recent: u32,
    /// Milliseconds, wrapping; compared by signed difference (entries live far less than the
    /// 24 days that allows).
    expires_ms: u32,
    /// Next entry in the FIFO.
    next: u32,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 44);

/// The TIME-WAIT table of one shard.
#[derive(Debug)]
pub(crate) struct TimeWaitTable {
    entries: Chunked<Entry>,
    free: Vec<u32>,
    index: hashbrown::HashTable<u32>,
    hasher: RandomState,
    /// The shard's local addresses, interned (a `u8` index per entry).
    locals: Vec<IpAddr>,
    fifo_head: u32,
    fifo_tail: u32,
    live: usize,
    limit: usize,
    /// A recent time in milliseconds, to turn 32-bit expiries back into instants.
    now_ms: u64,
}

fn remote_bytes(addr: &IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn ms32(t: Instant) -> u32 {
    t.as_millis() as u32
}

impl TimeWaitTable {
    pub fn new(limit: usize, hasher: RandomState) -> TimeWaitTable {
        TimeWaitTable {
            entries: Chunked::default(),
            free: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher,
            locals: Vec::new(),
            fifo_head: NIL,
            fifo_tail: NIL,
            live: 0,
            limit,
            now_ms: 0,
        }
    }

    fn local_index(&self, addr: &IpAddr) -> Option<u8> {
        self.locals
            .iter()
            .position(|a| a == addr)
            .and_then(|i| u8::try_from(i).ok())
    }

    fn hash(&self, tuple: &FourTuple) -> u64 {
        self.hasher.hash_one(tuple)
    }

    fn matches(e: &Entry, tuple: &FourTuple, local: u8) -> bool {
        e.flags & F_LIVE != 0
            && e.local == local
            && e.remote_port == tuple.remote_port
            && e.local_port == tuple.local_port
            && e.remote == remote_bytes(&tuple.remote_addr)
            && (e.flags & F_V6 != 0) == tuple.remote_addr.is_ipv6()
    }

    fn tuple_of(&self, e: &Entry) -> FourTuple {
        Self::rebuild(e, &self.locals)
    }

    fn find(&self, tuple: &FourTuple) -> Option<u32> {
        let local = self.local_index(&tuple.local_addr)?;
        let entries = &self.entries;
        self.index
            .find(self.hash(tuple), |&i| {
                Self::matches(&entries[i], tuple, local)
            })
            .copied()
    }

    fn instant(&self, expires_ms: u32) -> Instant {
        let delta = i64::from(expires_ms.wrapping_sub(self.now_ms as u32) as i32);
        Instant::from_millis((self.now_ms as i64 + delta).max(0) as u64)
    }

    /// Adds an entry; `false` if the table is full (the caller counts the overflow).
    pub fn insert(&mut self, tuple: FourTuple, tw: TimeWait) -> bool {
        // Any recent instant serves as the base for reading 32-bit expiries back (they are
        // compared by signed distance); the newest expiry is as good as any.
        self.now_ms = self.now_ms.max(tw.expires.as_millis());
        if let Some(i) = self.find(&tuple) {
            self.unlink_live(i);
        }
        if self.live >= self.limit {
            return false;
        }
        let local = match self.local_index(&tuple.local_addr) {
            Some(l) => l,
            None if self.locals.len() < 256 => {
                self.locals.push(tuple.local_addr);
                (self.locals.len() - 1) as u8
            }
            // More than 256 local addresses in TIME-WAIT at once: skip TIME-WAIT, counted.
            None => return false,
        };
        let entry = Entry {
            remote: remote_bytes(&tuple.remote_addr),
            remote_port: tuple.remote_port,
            local_port: tuple.local_port,
            local,
            flags: F_LIVE
                | if tuple.remote_addr.is_ipv6() { F_V6 } else { 0 }
                | if tw.ts_recent.is_some() { F_TS } else { 0 },
            window: tw.window,
            snd_nxt: tw.snd_nxt.0,
            rcv_nxt: tw.rcv_nxt.0,
            ts_recent: tw.ts_recent.unwrap_or(0),
            expires_ms: ms32(tw.expires),
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i] = entry;
                i
            }
            None => self.entries.push(entry),
        };
        let hash = self.hash(&tuple);
        let (entries, hasher, locals) = (&self.entries, &self.hasher, &self.locals);
        self.index.insert_unique(hash, i, |&j| {
            let e = &entries[j];
            let t = Self::rebuild(e, locals);
            hasher.hash_one(t)
        });
        self.push_fifo(i);
        self.live += 1;
        true
    }

    fn rebuild(e: &Entry, locals: &[IpAddr]) -> FourTuple {
        let remote = if e.flags & F_V6 != 0 {
            IpAddr::V6(Ipv6Addr::from(e.remote))
        } else {
            let o = e.remote;
            IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
        };
        FourTuple {
            local_addr: locals[usize::from(e.local)],
            remote_addr: remote,
            local_port: e.local_port,
            remote_port: e.remote_port,
        }
    }

    fn push_fifo(&mut self, i: u32) {
        self.entries[i].next = NIL;
        if self.fifo_tail == NIL {
            self.fifo_head = i;
        } else {
            self.entries[self.fifo_tail].next = i;
        }
        self.fifo_tail = i;
    }

    fn pop_fifo(&mut self) -> Option<u32> {
        let i = self.fifo_head;
        if i == NIL {
            return None;
        }
        self.fifo_head = self.entries[i].next;
        if self.fifo_head == NIL {
            self.fifo_tail = NIL;
        }
        Some(i)
    }

    /// Takes a live entry out of the hash index; its slot is freed when the FIFO reaches it.
    fn unlink_live(&mut self, i: u32) {
        let e = self.entries[i];
        let tuple = self.tuple_of(&e);
        if let Ok(entry) = self.index.find_entry(self.hash(&tuple), |&j| j == i) {
            entry.remove();
        }
        self.entries[i].flags &= !F_LIVE;
        self.live -= 1;
    }

    pub fn get(&self, tuple: &FourTuple) -> Option<TimeWait> {
        let e = &self.entries[self.find(tuple)?];
        Some(TimeWait {
            snd_nxt: SeqNum(e.snd_nxt),
            rcv_nxt: SeqNum(e.rcv_nxt),
            ts_recent: (e.flags & F_TS != 0).then_some(e.ts_recent),
            expires: self.instant(e.expires_ms),
            window: e.window,
        })
    }

    /// Restarts the 2 × MSL timer (a retransmitted FIN arrived).
    pub fn restart(&mut self, tuple: &FourTuple, expires: Instant) {
        if let Some(i) = self.find(tuple) {
            self.entries[i].expires_ms = ms32(expires);
        }
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<TimeWait> {
        let tw = self.get(tuple)?;
        let i = self.find(tuple)?;
        self.unlink_live(i);
        Some(tw)
    }

    /// Drops every entry whose 2 × MSL has passed; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        self.now_ms = self.now_ms.max(now.as_millis());
        let now32 = ms32(now);
        let mut expired = 0;
        // Bounded: each entry is moved to the back at most once per call.
        let mut budget = self.entries.len();
        while let Some(i) = (self.fifo_head != NIL).then_some(self.fifo_head) {
            let e = self.entries[i];
            let live = e.flags & F_LIVE != 0;
            let due = (now32.wrapping_sub(e.expires_ms) as i32) >= 0;
            if live && !due {
                // The head is either not due (then nothing behind it is, barring restarts) or
                // was restarted: move it back and look again, once.
                if budget == 0 || !self.restarted_since_queued(i) {
                    break;
                }
                budget -= 1;
                self.pop_fifo();
                self.push_fifo(i);
                continue;
            }
            self.pop_fifo();
            if live {
                self.unlink_live(i);
                expired += 1;
            }
            self.free.push(i);
        }
        expired
    }

    /// Whether the FIFO position of `i` is older than its deadline: true when a restart moved
    /// the deadline past those of entries queued behind it.
    fn restarted_since_queued(&self, i: u32) -> bool {
        let e = &self.entries[i];
        let next = e.next;
        next != NIL && (self.entries[next].expires_ms.wrapping_sub(e.expires_ms) as i32) < 0
    }

    /// When the next entry expires (possibly earlier than any real expiry, never later).
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.fifo_head == NIL {
            return None;
        }
        let mut earliest = self.entries[self.fifo_head].expires_ms;
        // A restarted head hides the entry behind it: look one further.
        let next = self.entries[self.fifo_head].next;
        if next != NIL {
            let n = self.entries[next].expires_ms;
            if (n.wrapping_sub(earliest) as i32) < 0 {
                earliest = n;
            }
        }
        Some(self.instant(earliest))
    }

    pub fn len(&self) -> usize {
        self.live
    }
}
