//! Listening: RFC 9293 3.10.7.2 (a segment arrives in LISTEN), the SYN queue of compact request
//! entries (Linux's `request_sock`: a passive open's SYN-RECEIVED without a full connection) and
//! the accept queue of completed connections, bounded by `syn_backlog` and `backlog`.

use crate::event::ConnHandle;
use crate::timer::TimerHandle;
use crate::tuple::FourTuple;
use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;
use tern_wire::SeqNum;

/// A listening socket of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u32);

/// Per-listener settings (the `listen()` backlog and Linux's SYN-queue bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenConfig {
    /// Completed connections waiting for `accept` at most (`listen(fd, backlog)`; Linux caps
    /// it with `somaxconn`, default 4096).
    pub backlog: usize,
    /// Half-open connections (SYN-RECEIVED requests) at most (`tcp_max_syn_backlog`, Linux's
    /// default 1024 on small machines).
    pub syn_backlog: usize,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            backlog: 4096,
            syn_backlog: 1024,
        }
    }
}

/// A listener's queue depths, as `ss -lnt` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The listening address (unspecified for a wildcard).
    pub local: SocketAddr,
    /// Connections in the accept queue (`ss` Recv-Q).
    pub accept_queue: usize,
    /// The accept queue's bound (`ss` Send-Q).
    pub backlog: usize,
    /// Requests in the SYN queue.
    pub syn_queue: usize,
    /// The SYN queue's bound.
    pub syn_backlog: usize,
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub local: SocketAddr,
    pub config: ListenConfig,
    pub accept_queue: VecDeque<ConnHandle>,
    pub syn_queue: usize,
}

/// A passive open in SYN-RECEIVED: what the SYN said and what we answered, nothing more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub listener: u32,
    pub tuple: FourTuple,
    pub iss: SeqNum,
    pub irs: SeqNum,
    /// The MSS the SYN announced; 0 when it had no MSS option (packed: requests are many).
    peer_mss: u16,
    /// The peer's window scale, if it offered scaling and we accept it.
    pub snd_wscale: Option<u8>,
    pub sack_ok: bool,
    /// The peer's TSval, if it offered timestamps and we accept them.
    /// The peer's TSval, meaningful when `has_ts` (packed like `peer_mss`).
    ts_recent: u32,
    has_ts: bool,
    /// SYN-ACKs retransmitted so far.
    pub retransmits: u8,
    pub timer: Option<TimerHandle>,
}

impl Request {
    /// A request for a SYN from `tuple`.
    #[expect(
        clippy::too_many_arguments,
        reason = "a plain record of what the SYN said"
    )]
    pub fn new(
        listener: u32,
        tuple: FourTuple,
        iss: SeqNum,
        irs: SeqNum,
        peer_mss: Option<u16>,
        snd_wscale: Option<u8>,
        sack_ok: bool,
        ts_recent: Option<u32>,
    ) -> Request {
        Request {
            listener,
            tuple,
            iss,
            irs,
            peer_mss: peer_mss.unwrap_or(0),
            snd_wscale,
            sack_ok,
            ts_recent: ts_recent.unwrap_or(0),
            has_ts: ts_recent.is_some(),
            retransmits: 0,
            timer: None,
        }
    }

    /// The MSS the SYN announced, if it had the option.
    pub fn peer_mss(&self) -> Option<u16> {
        (self.peer_mss != 0).then_some(self.peer_mss)
    }

    /// The peer's TSval, if timestamps are in use.
    pub fn ts_recent(&self) -> Option<u32> {
        self.has_ts.then_some(self.ts_recent)
    }
}

/// Listeners of a shard, keyed by local address and port; an unspecified address is a wildcard.
#[derive(Debug, Default)]
pub(crate) struct ListenTable {
    pub listeners: Vec<Option<Listener>>,
}

impl ListenTable {
    pub fn add(&mut self, local: SocketAddr, config: ListenConfig) -> Option<ListenerId> {
        if self.listeners.iter().flatten().any(|l| l.local == local) {
            return None;
        }
        let listener = Listener {
            local,
            config,
            accept_queue: VecDeque::new(),
            syn_queue: 0,
        };
        let slot = self.listeners.iter().position(Option::is_none);
        let index = match slot {
            Some(i) => {
                self.listeners[i] = Some(listener);
                i
            }
            None => {
                self.listeners.push(Some(listener));
                self.listeners.len() - 1
            }
        };
        Some(ListenerId(index as u32))
    }

    /// The listener for a segment to `addr:port`: an exact address first, then a wildcard of
    /// the same family.
    pub fn lookup(&self, addr: IpAddr, port: u16) -> Option<u32> {
        let mut wildcard = None;
        for (i, l) in self.listeners.iter().enumerate() {
            let Some(l) = l else { continue };
            if l.local.port() != port {
                continue;
            }
            if l.local.ip() == addr {
                return Some(i as u32);
            }
            if l.local.ip().is_unspecified() && l.local.is_ipv4() == addr.is_ipv4() {
                wildcard = Some(i as u32);
            }
        }
        wildcard
    }

    pub fn get(&self, id: u32) -> Option<&Listener> {
        self.listeners.get(id as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Listener> {
        self.listeners.get_mut(id as usize)?.as_mut()
    }
}
