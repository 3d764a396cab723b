//! TIME-WAIT (RFC 9293 3.10.7.4, "TIME-WAIT STATE"; RFC 6191 reuse by a new SYN) in compact
//! entries instead of full connections, as Linux's `inet_timewait_sock` does.
//!
//! Every entry lives exactly 2 × MSL after its last (re)start, so expiry is a FIFO: entries are
//! appended in deadline order and a restarted entry is appended again, its older queue position
//! recognised as stale by its deadline. Bounded by `max_tw_buckets`.

use crate::time::Instant;
use crate::tuple::FourTuple;
use ahash::RandomState;
use std::collections::{HashMap, VecDeque};
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

/// The TIME-WAIT table of one shard.
#[derive(Debug)]
pub(crate) struct TimeWaitTable {
    entries: HashMap<FourTuple, TimeWait, RandomState>,
    expiry: VecDeque<(Instant, FourTuple)>,
    limit: usize,
}

impl TimeWaitTable {
    pub fn new(limit: usize, hasher: RandomState) -> TimeWaitTable {
        TimeWaitTable {
            entries: HashMap::with_hasher(hasher),
            expiry: VecDeque::new(),
            limit,
        }
    }

    /// Adds an entry; `false` if the table is full (the caller counts the overflow).
    pub fn insert(&mut self, tuple: FourTuple, entry: TimeWait) -> bool {
        if self.entries.len() >= self.limit && !self.entries.contains_key(&tuple) {
            return false;
        }
        self.entries.insert(tuple, entry);
        self.expiry.push_back((entry.expires, tuple));
        true
    }

    pub fn get(&self, tuple: &FourTuple) -> Option<&TimeWait> {
        self.entries.get(tuple)
    }

    /// Restarts the 2 × MSL timer (a retransmitted FIN arrived).
    pub fn restart(&mut self, tuple: &FourTuple, expires: Instant) {
        if let Some(e) = self.entries.get_mut(tuple) {
            e.expires = expires;
            self.expiry.push_back((expires, *tuple));
        }
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<TimeWait> {
        self.entries.remove(tuple)
    }

    /// Drops every entry whose 2 × MSL has passed; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some(&(at, tuple)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            // A restarted or removed entry left a stale queue position behind.
            if self.entries.get(&tuple).is_some_and(|e| e.expires == at) {
                self.entries.remove(&tuple);
                expired += 1;
            }
        }
        // Stale positions of removed entries must not pile up without bound.
        if self.expiry.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.expiry
                .retain(|(at, t)| entries.get(t).is_some_and(|e| e.expires == *at));
        }
        expired
    }

    /// When the next entry expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.front().map(|(at, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
