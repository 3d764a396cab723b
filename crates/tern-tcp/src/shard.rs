//! The shard: everything one worker owns — connections, listeners, the SYN and accept queues,
//! TIME-WAIT entries, one timer wheel, buffer pools and counters — behind a sans-IO interface.
//!
//! Inputs: [`Shard::on_packet`] / [`Shard::on_segment`], [`Shard::on_timeout`], and the
//! application calls (`connect`, `listen`, `accept`, `send`, `recv`, `shutdown`, `close`,
//! `abort`). Outputs: [`Shard::poll_transmit`], [`Shard::poll_timeout`], [`Shard::poll_event`].
//! Segments for no connection follow RFC 9293 3.10.7.1 (CLOSED) and 3.10.7.2 (LISTEN).

use crate::config::{ConfigError, SyncookieMode, TcpConfig};
use crate::counters::{Counters, DropReason};
use crate::event::{CloseReason, ConnError, ConnHandle, Event};
use crate::input::seg_len;
use crate::isn::IsnGenerator;
use crate::listen::{ListenConfig, ListenTable, ListenerId, ListenerInfo, Request};
use crate::output::{emit_reply, emit_segment};
use crate::pool::BufferPool;
use crate::rtt::RttEstimator;
use crate::slab::Slab;
use crate::state::State;
use crate::syncookie::{CookieOptions, SynCookies};
use crate::tcb::{ConnOptions, Ctx, Disposition, Handshake, PackedOptions, Reply, Tcb, MAX_WSCALE};
use crate::time::Instant;
use crate::timer::TimerWheel;
use crate::timewait::{TimeWait, TimeWaitTable};
use crate::tuple::FourTuple;
use ahash::RandomState;
use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;
use tern_wire::{
    ChecksumMode, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, SackBlocks, SeqNum,
    TcpFlags, TcpPacket, TcpRepr, TcpTimestamp,
};

/// A SYN-ACK to send.
#[derive(Debug, Clone, Copy)]
enum SynAck {
    /// Of the request in this SYN-queue slot (gone by then: nothing is sent).
    Request(u32),
    /// Of a SYN answered with a cookie: everything the SYN-ACK needs, and no state kept.
    Cookie(CookieSynAck),
}

#[derive(Debug, Clone, Copy)]
struct CookieSynAck {
    tuple: FourTuple,
    iss: SeqNum,
    irs: SeqNum,
    /// Whether the client offered window scaling (we then announce ours).
    scaling: bool,
    sack: bool,
    /// Our TSval and the client's, when the client offered timestamps.
    ts: Option<(u32, u32)>,
}

/// Cookie SYN-ACKs waiting at most; a flood beyond what one loop turn transmits is dropped
/// here rather than queued without bound.
const MAX_PENDING_SYNACKS: usize = 1 << 16;

/// The SYN-cookie master secret, derived from the host secret (so shards given the same
/// secret make and check the same cookies) but independent of the ISN and table keys.
fn cookie_master(secret: &[u8; 32]) -> [u8; 32] {
    use core::hash::Hasher;
    let key: [u8; 16] = secret[..16].try_into().expect("16 bytes");
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write(b"tern syncookie master");
        h.write(&secret[16..]);
        h.write_u8(i as u8);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// What a wheel entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKey {
    Conn(u32),
    Request(u32),
}

/// First and last ephemeral port for active opens (Linux `ip_local_port_range`).
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// Read-only view of a connection's state, for tests, metrics and invariant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    pub tuple: FourTuple,
    pub state: State,
    pub snd_una: SeqNum,
    pub snd_nxt: SeqNum,
    pub snd_max: SeqNum,
    pub snd_wnd: u32,
    pub rcv_nxt: SeqNum,
    pub rcv_wnd: u32,
    pub cwnd: u32,
    pub mss: u16,
    pub rto: crate::time::Duration,
    /// Bytes queued to send (unacknowledged and unsent).
    pub send_queue: usize,
    /// Bytes received in order and not yet read.
    pub recv_queue: usize,
    pub timestamps: bool,
    pub sack: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// Whether the connection holds send / receive buffer memory right now.
    pub buffers: (bool, bool),
}

/// One worker's TCP engine.
#[derive(Debug)]
pub struct Shard {
    config: TcpConfig,
    isn: IsnGenerator,
    conns: Slab<Tcb>,
    /// The connections by 4-tuple: slab indices only; the tuple itself lives in the TCB.
    table: TupleIndex,
    listen: ListenTable,
    requests: Slab<Request>,
    request_table: TupleIndex,
    timewait: TimeWaitTable,
    wheel: TimerWheel<TimerKey>,
    tx_pool: BufferPool,
    rx_pool: BufferPool,
    /// Connections that may have something to send, in order.
    tx_queue: VecDeque<u32>,
    /// SYN-ACKs due: of requests in the SYN queue, or stateless ones carrying a cookie.
    synack_queue: VecDeque<SynAck>,
    /// SYN cookies, keyed from the host secret so every shard checks any shard's cookies.
    cookies: SynCookies,
    /// RSTs sent for failed cookies in the current one-second window.
    cookie_rsts: (Instant, u32),
    replies: VecDeque<Reply>,
    events: VecDeque<Event>,
    counters: Counters,
    next_port: u16,
    /// The configuration's per-connection defaults, packed once.
    default_opts: PackedOptions,
}

impl Shard {
    /// A shard with `config`, keyed with 32 secret random bytes (ISNs, timestamp offsets and
    /// the hash tables' seeds derive from them), starting at `now`.
    pub fn new(config: TcpConfig, secret: [u8; 32], now: Instant) -> Result<Shard, ConfigError> {
        config.validate()?;
        let word =
            |i: usize| u64::from_le_bytes(secret[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        // Seeds for the tables: an attacker who cannot guess them cannot aim collisions.
        let hasher =
            || RandomState::with_seeds(word(0) ^ 0x9e37, word(1), word(2) ^ 0x7f4a, word(3));
        Ok(Shard {
            tx_pool: BufferPool::new(config.wmem, config.max_buffers),
            rx_pool: BufferPool::new(config.rmem, config.max_buffers),
            timewait: TimeWaitTable::new(config.max_tw_buckets, hasher()),
            isn: IsnGenerator::new(secret),
            conns: Slab::default(),
            table: TupleIndex::new(hasher()),
            listen: ListenTable::default(),
            requests: Slab::default(),
            request_table: TupleIndex::new(hasher()),
            wheel: TimerWheel::new(now),
            tx_queue: VecDeque::new(),
            synack_queue: VecDeque::new(),
            cookies: SynCookies::new(cookie_master(&secret), config.syncookie_period),
            cookie_rsts: (now, 0),
            replies: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            default_opts: PackedOptions::pack(&ConnOptions::from_config(&config))
                .expect("TcpConfig::validate bounds the keepalive settings"),
            next_port: EPHEMERAL.0 + (word(0) % u64::from(EPHEMERAL.1 - EPHEMERAL.0)) as u16,
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TcpConfig {
        &self.config
    }

    /// The shard's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections (not counting TIME-WAIT entries and SYN-queue requests).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// TIME-WAIT entries.
    pub fn timewait_count(&self) -> usize {
        self.timewait.len()
    }

    /// Send and receive buffers lent out right now.
    pub fn buffers_in_use(&self) -> usize {
        self.tx_pool.outstanding() + self.rx_pool.outstanding()
    }

    // ---------------------------------------------------------------------------------------
    // Input

    /// Processes one IP packet (IPv4 or IPv6 header onward). Packets that are not TCP, not
    /// well-formed, or fragments are dropped and counted; the error says why.
    pub fn on_packet(&mut self, now: Instant, packet: &[u8]) -> Result<(), PacketError> {
        self.counters.in_segs += 1;
        let parsed = parse_ip_tcp(packet);
        match parsed {
            Ok((src, dst, tcp)) => {
                self.counters.in_segs -= 1; // on_segment counts it
                self.on_segment(now, src, dst, &tcp);
                Ok(())
            }
            Err(e) => {
                self.counters.in_errs += 1;
                self.counters.drop(DropReason::Malformed);
                Err(e)
            }
        }
    }

    /// Processes one parsed TCP segment from `src` to `dst`.
    pub fn on_segment(&mut self, now: Instant, src: IpAddr, dst: IpAddr, seg: &TcpRepr<'_>) {
        self.counters.in_segs += 1;
        let tuple = FourTuple {
            local_addr: dst,
            remote_addr: src,
            local_port: seg.dst_port,
            remote_port: seg.src_port,
        };
        if let Some(index) = self.table.find(&tuple, &self.conns) {
            self.with_conn(now, index, |tcb, ctx| (tcb.on_segment(ctx, seg), ()));
            return;
        }
        if self.timewait.get(&tuple).is_some() && self.on_timewait_segment(now, &tuple, seg) {
            return;
        }
        if let Some(index) = self.request_table.find(&tuple, &self.requests) {
            self.on_request_segment(now, index, seg);
            return;
        }
        if let Some(listener) = self.listen.lookup(dst, seg.dst_port) {
            self.on_listen_segment(now, listener, &tuple, seg);
            return;
        }
        self.reset_closed(&tuple, seg);
    }

    /// RFC 9293 3.10.7.1: a segment for no connection gets a RST unless it is one.
    fn reset_closed(&mut self, tuple: &FourTuple, seg: &TcpRepr<'_>) {
        if seg.flags.contains(TcpFlags::RST) {
            self.counters.drop(DropReason::NoSocket);
            return;
        }
        let reply = match seg.ack_number {
            // <SEQ=SEG.ACK><CTL=RST>
            Some(ack) => Reply::rst(*tuple, ack),
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            None => Reply {
                tuple: *tuple,
                seq: SeqNum(0),
                ack: Some(seg.seq_number + seg_len(seg)),
                flags: TcpFlags::RST | TcpFlags::ACK,
                ts: None,
                window: 0,
            },
        };
        self.counters.out_rsts += 1;
        self.replies.push_back(reply);
    }

    /// RFC 9293 3.10.7.2: a segment arrives for a listener.
    fn on_listen_segment(
        &mut self,
        now: Instant,
        listener: u32,
        tuple: &FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        let f = seg.flags;
        if f.contains(TcpFlags::RST) {
            self.counters.drop(DropReason::NoSocket);
            return;
        }
        if f.contains(TcpFlags::ACK) {
            if f.contains(TcpFlags::SYN) || self.config.syncookies == SyncookieMode::Off {
                // RFC 9293 3.10.7.2: an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST>.
                self.reset_closed(tuple, seg);
            } else {
                // No request for this tuple: it may complete a cookie handshake.
                self.on_cookie_ack(now, listener, tuple, seg);
            }
            return;
        }
        if !f.contains(TcpFlags::SYN) {
            self.counters.drop(DropReason::NoAck);
            return;
        }
        let Some(l) = self.listen.get(listener) else {
            return;
        };
        if l.accept_queue.len() >= l.config.backlog {
            // Linux drops a SYN while the accept queue is full (tcp_conn_request), cookies
            // or not: nobody would accept the connection.
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return;
        }
        let queue_full = l.syn_queue >= l.config.syn_backlog;
        match (self.config.syncookies, queue_full) {
            (SyncookieMode::Always, _) => return self.send_cookie(now, tuple, seg),
            (SyncookieMode::OnOverflow, true) => {
                self.counters.tcp_req_q_full_do_cookies += 1;
                return self.send_cookie(now, tuple, seg);
            }
            (SyncookieMode::Off, true) => {
                self.counters.tcp_req_q_full_drop += 1;
                self.counters.listen_drops += 1;
                return;
            }
            _ => {}
        }
        let c = &self.config;
        let ts_recent = seg.timestamp.filter(|_| c.timestamps).map(|ts| ts.tsval);
        let request = Request::new(
            listener,
            *tuple,
            self.isn.isn(now, tuple),
            seg.seq_number,
            seg.max_seg_size,
            seg.window_scale
                .filter(|_| c.window_scaling)
                .map(|s| s.min(MAX_WSCALE)),
            seg.sack_permitted && c.sack,
            ts_recent,
        );
        let (index, _) = self.requests.insert_with(|_, _| request);
        self.request_table.insert(tuple, index, &self.requests);
        if let Some(l) = self.listen.get_mut(listener) {
            l.syn_queue += 1;
        }
        self.arm_request_timer(now, index);
        self.synack_queue.push_back(SynAck::Request(index));
    }

    /// Answers a SYN with a cookie SYN-ACK and keeps nothing (RFC 4987 3.6).
    fn send_cookie(&mut self, now: Instant, tuple: &FourTuple, seg: &TcpRepr<'_>) {
        if self.synack_queue.len() >= MAX_PENDING_SYNACKS {
            self.counters.listen_drops += 1;
            return;
        }
        let c = &self.config;
        let client_ts = seg.timestamp.filter(|_| c.timestamps);
        let opts = CookieOptions {
            mss: seg
                .max_seg_size
                .unwrap_or(c.default_mss_for(tuple.is_ipv4()))
                .min(c.mss_for(tuple.is_ipv4())),
            window_scale: seg.window_scale.filter(|_| c.window_scaling),
            sack_permitted: seg.sack_permitted && c.sack,
            timestamps: client_ts.is_some(),
        };
        let ts_clock = (now.as_millis() as u32)
            .wrapping_add(self.isn.ts_offset(&tuple.local_addr, &tuple.remote_addr));
        let cookie = self
            .cookies
            .encode(now, tuple, seg.seq_number, &opts, ts_clock);
        self.counters.syncookies_sent += 1;
        self.synack_queue.push_back(SynAck::Cookie(CookieSynAck {
            tuple: *tuple,
            iss: cookie.isn,
            irs: seg.seq_number,
            scaling: opts.window_scale.is_some(),
            sack: opts.sack_permitted,
            ts: cookie.tsval.zip(client_ts.map(|t| t.tsval)),
        }));
    }

    /// An ACK to a listener with no request: a connection if it carries a valid cookie.
    fn on_cookie_ack(&mut self, now: Instant, listener: u32, tuple: &FourTuple, seg: &TcpRepr<'_>) {
        let ack = seg.ack_number.expect("called for ACKs");
        let tsecr = seg.timestamp.map(|t| t.tsecr);
        let opts = match self.cookies.decode(now, tuple, ack, seg.seq_number, tsecr) {
            Ok(opts) => opts,
            Err(_) => {
                self.counters.syncookies_failed += 1;
                self.cookie_reset(now, tuple, ack);
                return;
            }
        };
        self.counters.syncookies_recv += 1;
        let c = &self.config;
        let ipv4 = tuple.is_ipv4();
        let hs = Handshake {
            tuple: *tuple,
            iss: ack - 1u32,
            irs: seg.seq_number - 1u32,
            peer_mss: Some(opts.mss.min(c.mss_for(ipv4))),
            snd_wscale: opts.window_scale,
            rcv_wscale: opts.window_scale.map(|_| rcv_wscale_for(c.rmem)),
            sack_ok: opts.sack_permitted,
            // The cookie's TSval may lag our clock by up to 63 ms, so no RTT sample is taken
            // from it (the connection starts without one).
            ts: seg.timestamp.filter(|_| opts.timestamps).map(|t| {
                (
                    t.tsval,
                    self.isn.ts_offset(&tuple.local_addr, &tuple.remote_addr),
                )
            }),
            snd_wnd: u32::from(seg.window_len) << opts.window_scale.unwrap_or(0),
        };
        self.complete_passive(now, listener, &hs, seg, false);
    }

    /// A RST for a failed cookie: <SEQ=SEG.ACK><CTL=RST>, at most `syncookie_rst_rate` per
    /// second so a flood of forged ACKs is not reflected at full rate.
    fn cookie_reset(&mut self, now: Instant, tuple: &FourTuple, ack: SeqNum) {
        let (start, sent) = &mut self.cookie_rsts;
        if now.saturating_duration_since(*start) >= crate::time::Duration::from_secs(1) {
            (*start, *sent) = (now, 0);
        }
        if *sent >= self.config.syncookie_rst_rate {
            self.counters.drop(DropReason::NoSocket);
            return;
        }
        *sent += 1;
        self.counters.out_rsts += 1;
        self.replies.push_back(Reply::rst(*tuple, ack));
    }

    /// A segment for a request in the SYN queue (Linux `tcp_check_req`).
    fn on_request_segment(&mut self, now: Instant, index: u32, seg: &TcpRepr<'_>) {
        let Some(req) = self.requests.get(index).copied() else {
            return;
        };
        let f = seg.flags;
        if f.contains(TcpFlags::RST) {
            // RFC 5961 §3 for SYN-RECEIVED: only a RST at exactly RCV.NXT ends it.
            if seg.seq_number == req.irs + 1u32 {
                self.counters.attempt_fails += 1;
                self.remove_request(index);
            } else {
                self.counters.drop(DropReason::BadRst);
            }
            return;
        }
        if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
            if seg.seq_number == req.irs {
                // A retransmitted SYN: our SYN-ACK was lost, send it again.
                self.synack_queue.push_back(SynAck::Request(index));
            } else {
                self.counters.drop(DropReason::SynInWindow);
            }
            return;
        }
        let Some(ack) = seg.ack_number else {
            self.counters.drop(DropReason::NoAck);
            return;
        };
        if ack != req.iss + 1u32 {
            // RFC 9293 3.10.7.4 SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
            self.counters.out_rsts += 1;
            self.replies.push_back(Reply::rst(req.tuple, ack));
            return;
        }
        if !seg.seq_number.in_window(
            req.irs + 1u32,
            u32::from(u16::MAX).max(1) << req.snd_wscale.unwrap_or(0).min(14),
        ) {
            self.counters.drop(DropReason::OutOfWindow);
            return;
        }
        let scaling = req.snd_wscale.is_some();
        let hs = Handshake {
            tuple: req.tuple,
            iss: req.iss,
            irs: req.irs,
            peer_mss: req.peer_mss(),
            snd_wscale: req.snd_wscale,
            rcv_wscale: scaling.then(|| rcv_wscale_for(self.config.rmem)),
            sack_ok: req.sack_ok,
            ts: req.ts_recent().map(|recent| {
                let recent = seg.timestamp.map_or(recent, |t| t.tsval);
                (
                    recent,
                    self.isn
                        .ts_offset(&req.tuple.local_addr, &req.tuple.remote_addr),
                )
            }),
            snd_wnd: u32::from(seg.window_len) << req.snd_wscale.unwrap_or(0),
        };
        if self.complete_passive(now, req.listener, &hs, seg, req.retransmits > 0) {
            self.remove_request(index);
        }
    }

    /// The final ACK of a passive open (from the SYN queue or a cookie) arrived: the
    /// connection goes to the accept queue, or, if that is full, the ACK is dropped (the
    /// client's retransmission or our SYN-ACK timer retries) or answered with a RST under
    /// `abort_on_overflow`. Returns whether the connection was created.
    fn complete_passive(
        &mut self,
        now: Instant,
        listener: u32,
        hs: &Handshake,
        seg: &TcpRepr<'_>,
        synack_retransmitted: bool,
    ) -> bool {
        let Some(l) = self.listen.get(listener) else {
            return false;
        };
        if l.accept_queue.len() >= l.config.backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            if self.config.abort_on_overflow {
                self.counters.out_rsts += 1;
                let ack = seg.ack_number.unwrap_or_default();
                self.replies.push_back(Reply::rst(hs.tuple, ack));
                return true;
            }
            return false;
        }
        let handle = self.establish_passive(now, hs, seg, synack_retransmitted);
        let l = self.listen.get_mut(listener).expect("checked above");
        let was_empty = l.accept_queue.is_empty();
        l.accept_queue.push_back(handle);
        if was_empty {
            self.events
                .push_back(Event::Acceptable(ListenerId(listener)));
        }
        // The ACK may carry data or a FIN: process it on the new connection.
        if !seg.payload.is_empty() || seg.flags.contains(TcpFlags::FIN) {
            self.with_conn(now, handle.index, |tcb, ctx| (tcb.on_segment(ctx, seg), ()));
        }
        true
    }

    /// Creates an ESTABLISHED connection from a completed passive handshake: the hook the SYN
    /// queue and SYN cookies both use.
    fn establish_passive(
        &mut self,
        now: Instant,
        hs: &Handshake,
        seg: &TcpRepr<'_>,
        synack_retransmitted: bool,
    ) -> ConnHandle {
        let hs = *hs;
        let handle = self.insert_conn(now, State::Established, &hs);
        let tcb = self.conns.get_mut(handle.index).expect("just inserted");
        tcb.snd_una = hs.iss + 1u32;
        tcb.snd_nxt = tcb.snd_una;
        tcb.snd_max = tcb.snd_una;
        tcb.snd_wl1 = seg.seq_number;
        tcb.snd_wl2 = hs.iss + 1u32;
        tcb.unaccepted = true;
        if synack_retransmitted {
            // RFC 6298 (5.7): our SYN-ACK timed out, so data starts with a 3 s RTO.
            tcb.rtt = RttEstimator::after_syn_timeout(self.config.rto_initial, self.config.rto_max);
        }
        // The SYN-ACK announced our window unscaled: that is the right edge we promised.
        tcb.rcv_adv = tcb.rcv_nxt + initial_window(&self.config);
        self.counters.passive_opens += 1;
        self.counters.curr_estab += 1;
        self.after_conn(now, handle.index);
        handle
    }

    fn insert_conn(&mut self, now: Instant, state: State, hs: &Handshake) -> ConnHandle {
        let (config, opts) = (&self.config, self.default_opts);
        let (index, generation) = self.conns.insert_with(|index, generation| {
            Tcb::new(
                ConnHandle { index, generation },
                state,
                hs,
                now,
                config,
                opts,
            )
        });
        self.table.insert(&hs.tuple, index, &self.conns);
        ConnHandle { index, generation }
    }

    fn remove_request(&mut self, index: u32) {
        if let Some(req) = self.requests.remove(index) {
            self.request_table.remove(&req.tuple, index);
            if let Some(t) = req.timer {
                self.wheel.cancel(t);
            }
            if let Some(l) = self.listen.get_mut(req.listener) {
                l.syn_queue -= 1;
            }
        }
    }

    fn arm_request_timer(&mut self, now: Instant, index: u32) {
        let Some(req) = self.requests.get_mut(index) else {
            return;
        };
        // SYN-ACK retransmission: 1 s doubling (Linux: 1, 3, 7, 15, 31 s, given up at 63 s).
        let timeout = self.config.rto_initial * (1u32 << req.retransmits.min(20));
        req.timer = Some(self.wheel.insert(now + timeout, TimerKey::Request(index)));
    }

    fn on_request_timeout(&mut self, now: Instant, index: u32) {
        let Some(req) = self.requests.get_mut(index) else {
            return;
        };
        req.timer = None;
        if u32::from(req.retransmits) >= self.config.synack_retries {
            self.counters.attempt_fails += 1;
            self.remove_request(index);
            return;
        }
        req.retransmits += 1;
        self.counters.retrans_segs += 1;
        self.arm_request_timer(now, index);
        self.synack_queue.push_back(SynAck::Request(index));
    }

    /// RFC 9293 3.10.7.4 for TIME-WAIT, on the compact entry. Returns `false` when the segment
    /// is a new SYN that may reuse the tuple (RFC 6191): the entry is gone and the caller goes
    /// on to the listener.
    fn on_timewait_segment(&mut self, now: Instant, tuple: &FourTuple, seg: &TcpRepr<'_>) -> bool {
        let Some(tw) = self.timewait.get(tuple) else {
            return false;
        };
        let f = seg.flags;
        if f.contains(TcpFlags::RST) {
            // Linux's default (tcp_rfc1337 = 0): an in-window RST ends TIME-WAIT early.
            if seg.seq_number == tw.rcv_nxt {
                self.timewait.remove(tuple);
            }
            return true;
        }
        if f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::ACK) {
            // RFC 6191: a SYN whose timestamp (or, when the new incarnation will not use
            // timestamps, sequence number) is beyond the old connection's may start a new one.
            let newer = match (tw.ts_recent, seg.timestamp) {
                (Some(recent), Some(ts)) => (ts.tsval.wrapping_sub(recent) as i32) > 0,
                (None, _) | (Some(_), None) => seg.seq_number.after(tw.rcv_nxt),
            };
            if newer {
                self.timewait.remove(tuple);
                self.counters.tw_recycled += 1;
                return false;
            }
        }
        if f.contains(TcpFlags::FIN) {
            // A retransmitted FIN: our last ACK was lost. ACK again and restart 2 × MSL.
            self.timewait.restart(tuple, now + self.config.msl * 2);
        }
        if seg_len(seg) > 0 || f.contains(TcpFlags::SYN) {
            self.push_timewait_ack(now, tuple, &tw);
        }
        true
    }

    fn push_timewait_ack(&mut self, now: Instant, tuple: &FourTuple, tw: &TimeWait) {
        let ts = tw.ts_recent.map(|recent| TcpTimestamp {
            tsval: (now.as_millis() as u32)
                .wrapping_add(self.isn.ts_offset(&tuple.local_addr, &tuple.remote_addr)),
            tsecr: recent,
        });
        self.replies.push_back(Reply {
            tuple: *tuple,
            seq: tw.snd_nxt,
            ack: Some(tw.rcv_nxt),
            flags: TcpFlags::ACK,
            ts,
            window: tw.window,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Connection plumbing

    /// Runs `f` on connection `index` with a fresh context, then applies the disposition it
    /// returns beside its result.
    fn with_conn<R>(
        &mut self,
        now: Instant,
        index: u32,
        f: impl FnOnce(&mut Tcb, &mut Ctx<'_>) -> (Disposition, R),
    ) -> Option<R> {
        let tcb = self.conns.get_mut(index)?;
        let mut ctx = Ctx {
            now,
            config: &self.config,
            counters: &mut self.counters,
            events: &mut self.events,
            tx_pool: &mut self.tx_pool,
            rx_pool: &mut self.rx_pool,
            replies: &mut self.replies,
        };
        let (disposition, r) = f(tcb, &mut ctx);
        match disposition {
            Disposition::Keep => self.after_conn(now, index),
            Disposition::TimeWait => self.enter_timewait(now, index),
            Disposition::Free => self.free_conn(index),
        }
        Some(r)
    }

    /// After any work on a connection: queue it for output if it asked, re-arm its wheel
    /// entry, and give back buffers it no longer needs.
    fn after_conn(&mut self, now: Instant, index: u32) {
        let Some(tcb) = self.conns.get_mut(index) else {
            return;
        };
        if tcb.wants_output {
            tcb.wants_output = false;
            if !tcb.queued {
                tcb.queued = true;
                self.tx_queue.push_back(index);
            }
        }
        if tcb.opts.keepalive_enabled() && tcb.deadlines.idle.is_none() {
            tcb.arm_keepalive(now);
        }
        tcb.shed_idle_buffers(&mut self.tx_pool, &mut self.rx_pool);
        // The wheel fires at millisecond granularity and never before a deadline's millisecond;
        // arming at the deadline rounded up keeps it from firing before the deadline itself.
        let want = tcb.deadlines.earliest().map(ceil_ms);
        match (tcb.wheel, want) {
            (None, None) => {}
            (Some((handle, _)), None) => {
                self.wheel.cancel(handle);
                tcb.wheel = None;
            }
            (None, Some(at)) => {
                tcb.wheel = Some((self.wheel.insert(at, TimerKey::Conn(index)), at));
            }
            (Some((handle, armed)), Some(at)) if at < armed => {
                if self.wheel.reset(handle, at).is_ok() {
                    tcb.wheel = Some((handle, at));
                } else {
                    tcb.wheel = Some((self.wheel.insert(at, TimerKey::Conn(index)), at));
                }
            }
            // Later than armed: the entry fires early and is re-armed then; nothing to do now.
            (Some(_), Some(_)) => {}
        }
    }

    fn enter_timewait(&mut self, now: Instant, index: u32) {
        let Some(tcb) = self.conns.get(index) else {
            return;
        };
        let tw = TimeWait {
            snd_nxt: tcb.snd_max,
            rcv_nxt: tcb.rcv_nxt,
            ts_recent: tcb.ts.map(|t| t.recent),
            expires: now + self.config.msl * 2,
            window: tcb.last_window,
        };
        let tuple = tcb.tuple;
        let ack_owed = tcb.last_ack_sent != tcb.rcv_nxt || tcb.ack_now;
        if self.timewait.insert(tuple, tw) {
            self.counters.tw += 1;
        } else {
            self.counters.tcp_time_wait_overflow += 1;
        }
        if ack_owed {
            self.push_timewait_ack(now, &tuple, &tw);
        }
        self.with_conn(now, index, |tcb, ctx| {
            (tcb.close(ctx, CloseReason::Normal), ())
        });
    }

    /// Takes a connection off the wire (its tuple, its timers). It is freed at once unless it
    /// lingers with unread data for its application; then `recv` or `close` frees it.
    fn free_conn(&mut self, index: u32) {
        let Some(tuple) = self.conns.get(index).map(|t| t.tuple) else {
            return;
        };
        self.table.remove(&tuple, index);
        let Some(tcb) = self.conns.get_mut(index) else {
            return;
        };
        if let Some((handle, _)) = tcb.wheel.take() {
            self.wheel.cancel(handle);
        }
        tcb.queued = false;
        tcb.wants_output = false;
        if !tcb.lingers() {
            self.release(index);
        }
    }

    /// Frees a connection that is off the wire.
    fn release(&mut self, index: u32) {
        if let Some(mut tcb) = self.conns.remove(index) {
            tcb.release_buffers(&mut self.tx_pool, &mut self.rx_pool);
        }
    }

    fn conn(&self, h: ConnHandle) -> Result<&Tcb, ConnError> {
        self.conns
            .get_checked(h.index, h.generation)
            .ok_or(ConnError::InvalidHandle)
    }

    fn conn_mut(&mut self, h: ConnHandle) -> Result<&mut Tcb, ConnError> {
        self.conns
            .get_checked_mut(h.index, h.generation)
            .ok_or(ConnError::InvalidHandle)
    }

    // ---------------------------------------------------------------------------------------
    // Output and time

    /// Writes the next segment to send (IP header onward, checksums done) into `buf` and
    /// returns its length; `None` when nothing is due. Call until `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        while let Some(reply) = self.replies.pop_front() {
            if let Some(len) = emit_reply(buf, &reply) {
                self.counters.out_segs += 1;
                return Some(len);
            }
        }
        while let Some(synack) = self.synack_queue.pop_front() {
            if let Some(len) = self.emit_synack(now, synack, buf) {
                self.counters.out_segs += 1;
                return Some(len);
            }
        }
        while let Some(&index) = self.tx_queue.front() {
            let sent = self.with_conn(now, index, |tcb, ctx| {
                let sent = tcb.transmit(ctx, buf);
                if sent.is_none() {
                    tcb.queued = false;
                    tcb.wants_output = false;
                }
                (Disposition::Keep, sent)
            });
            match sent {
                Some(Some(len)) => return Some(len),
                _ => {
                    self.tx_queue.pop_front();
                }
            }
        }
        None
    }

    fn emit_synack(&mut self, now: Instant, synack: SynAck, buf: &mut [u8]) -> Option<usize> {
        let spec = match synack {
            SynAck::Cookie(c) => c,
            SynAck::Request(index) => {
                let req = self.requests.get(index)?;
                let tsval = (now.as_millis() as u32).wrapping_add(
                    self.isn
                        .ts_offset(&req.tuple.local_addr, &req.tuple.remote_addr),
                );
                CookieSynAck {
                    tuple: req.tuple,
                    iss: req.iss,
                    irs: req.irs,
                    scaling: req.snd_wscale.is_some(),
                    sack: req.sack_ok,
                    ts: req.ts_recent().map(|recent| (tsval, recent)),
                }
            }
        };
        let repr = TcpRepr {
            src_port: spec.tuple.local_port,
            dst_port: spec.tuple.remote_port,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            seq_number: spec.iss,
            ack_number: Some(spec.irs + 1u32),
            window_len: initial_window(&self.config).min(u32::from(u16::MAX)) as u16,
            urgent_pointer: 0,
            max_seg_size: Some(self.config.mss_for(spec.tuple.is_ipv4())),
            window_scale: spec.scaling.then(|| rcv_wscale_for(self.config.rmem)),
            sack_permitted: spec.sack,
            sack_blocks: SackBlocks::default(),
            timestamp: spec.ts.map(|(tsval, tsecr)| TcpTimestamp { tsval, tsecr }),
            payload: &[],
        };
        emit_segment(buf, &spec.tuple, &repr, 0, |_| {})
    }

    /// Whether something may be waiting for [`Shard::poll_transmit`] (a worker that ran out
    /// of transmit frames uses this to count the stall).
    pub fn transmit_pending(&self) -> bool {
        !self.replies.is_empty() || !self.synack_queue.is_empty() || !self.tx_queue.is_empty()
    }

    /// The earliest time [`Shard::on_timeout`] has work to do, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.wheel.next_expiration(), self.timewait.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.wheel.poll(now) {
            match key {
                TimerKey::Conn(index) => {
                    if let Some(tcb) = self.conns.get_mut(index) {
                        tcb.wheel = None;
                    }
                    self.with_conn(now, index, |tcb, ctx| (tcb.on_timer(ctx), ()));
                }
                TimerKey::Request(index) => self.on_request_timeout(now, index),
            }
        }
        self.timewait.expire(now);
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------------------------------
    // Application calls

    /// Starts an active open from `local` (port 0: an ephemeral port) to `remote`.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<ConnHandle, ConnError> {
        if local.is_ipv4() != remote.is_ipv4()
            || remote.ip().is_unspecified()
            || local.ip().is_unspecified()
            || remote.port() == 0
        {
            return Err(ConnError::InvalidAddress);
        }
        let tuple = if local.port() != 0 {
            let t = FourTuple::new(local, remote);
            if self.tuple_in_use(&t) {
                return Err(ConnError::AddrInUse);
            }
            t
        } else {
            self.pick_ephemeral(local.ip(), remote)?
        };
        let c = &self.config;
        let hs = Handshake {
            tuple,
            iss: self.isn.isn(now, &tuple),
            irs: SeqNum(0),
            peer_mss: Some(c.mss),
            snd_wscale: None,
            rcv_wscale: c.window_scaling.then(|| rcv_wscale_for(c.rmem)),
            sack_ok: c.sack,
            ts: c
                .timestamps
                .then(|| (0, self.isn.ts_offset(&tuple.local_addr, &tuple.remote_addr))),
            snd_wnd: 0,
        };
        let handle = self.insert_conn(now, State::SynSent, &hs);
        self.counters.active_opens += 1;
        let tcb = self.conns.get_mut(handle.index).expect("just inserted");
        tcb.queue_output();
        self.after_conn(now, handle.index);
        Ok(handle)
    }

    fn tuple_in_use(&self, t: &FourTuple) -> bool {
        self.table.find(t, &self.conns).is_some()
            || self.timewait.get(t).is_some()
            || self.request_table.find(t, &self.requests).is_some()
    }

    fn pick_ephemeral(
        &mut self,
        local: IpAddr,
        remote: SocketAddr,
    ) -> Result<FourTuple, ConnError> {
        let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= EPHEMERAL.1 {
                EPHEMERAL.0
            } else {
                port + 1
            };
            let t = FourTuple::new(SocketAddr::new(local, port), remote);
            if !self.tuple_in_use(&t) && self.listen.lookup(local, port).is_none() {
                return Ok(t);
            }
        }
        Err(ConnError::AddrInUse)
    }

    /// Starts listening on `local` (an unspecified address listens on every address of its
    /// family).
    pub fn listen(
        &mut self,
        local: SocketAddr,
        config: ListenConfig,
    ) -> Result<ListenerId, ConnError> {
        if local.port() == 0 || config.backlog == 0 {
            return Err(ConnError::InvalidAddress);
        }
        self.listen.add(local, config).ok_or(ConnError::AddrInUse)
    }

    /// Takes the next completed connection of `listener`'s accept queue.
    pub fn accept(&mut self, listener: ListenerId) -> Option<ConnHandle> {
        loop {
            let handle = self.listen.get_mut(listener.0)?.accept_queue.pop_front()?;
            let Some(tcb) = self.conns.get_checked_mut(handle.index, handle.generation) else {
                // Closed (reset) while it waited: skip it.
                continue;
            };
            tcb.unaccepted = false;
            if !tcb.rx.is_empty() {
                self.events.push_back(Event::Readable(handle));
            }
            if tcb.peer_closed {
                self.events.push_back(Event::PeerClosed(handle));
            }
            return Some(handle);
        }
    }

    /// A listener's queue depths and limits.
    pub fn listener_info(&self, listener: ListenerId) -> Option<ListenerInfo> {
        let l = self.listen.get(listener.0)?;
        Some(ListenerInfo {
            local: l.local,
            accept_queue: l.accept_queue.len(),
            backlog: l.config.backlog,
            syn_queue: l.syn_queue,
            syn_backlog: l.config.syn_backlog,
        })
    }

    /// Queues `data` for sending; returns how much fit (`WouldBlock` if nothing did).
    pub fn send(&mut self, now: Instant, h: ConnHandle, data: &[u8]) -> Result<usize, ConnError> {
        let tcb = self
            .conns
            .get_checked_mut(h.index, h.generation)
            .ok_or(ConnError::InvalidHandle)?;
        if tcb.fin_queued
            || !(tcb.state.can_send() || matches!(tcb.state, State::SynSent | State::SynReceived))
        {
            return Err(ConnError::NotWritable);
        }
        if data.is_empty() {
            return Ok(0);
        }
        if tcb.tx.capacity() == 0 {
            let storage = self.tx_pool.take().ok_or(ConnError::NoBuffers)?;
            tcb.tx = crate::buffer::RingBuffer::from_storage(storage);
        }
        let n = tcb.tx.enqueue_slice(data);
        if n < data.len() {
            tcb.want_writable = true;
        }
        if n == 0 {
            return Err(ConnError::WouldBlock);
        }
        tcb.queue_output();
        self.after_conn(now, h.index);
        Ok(n)
    }

    /// Reads received data into `buf`. `Ok(0)` means end of stream (the peer closed and all
    /// its data was read); `WouldBlock` means nothing to read yet.
    pub fn recv(
        &mut self,
        now: Instant,
        h: ConnHandle,
        buf: &mut [u8],
    ) -> Result<usize, ConnError> {
        let tcb = self
            .conns
            .get_checked_mut(h.index, h.generation)
            .ok_or(ConnError::InvalidHandle)?;
        if tcb.rx.is_empty() {
            if tcb.state == State::Closed {
                // A lingering connection read to its end: end-of-stream, and the handle goes.
                self.release(h.index);
                return Ok(0);
            }
            return if tcb.peer_closed {
                Ok(0)
            } else {
                Err(ConnError::WouldBlock)
            };
        }
        let n = tcb.rx.dequeue_slice(buf);
        if tcb.state != State::Closed {
            // Reading may open the window enough to announce (receiver SWS avoidance decides).
            tcb.queue_output();
            self.after_conn(now, h.index);
        }
        Ok(n)
    }

    /// Closes the sending side: a FIN follows the queued data (half-close).
    pub fn shutdown(&mut self, now: Instant, h: ConnHandle) -> Result<(), ConnError> {
        let tcb = self.conn_mut(h)?;
        match tcb.state {
            State::SynSent => {
                // Linux's inet_shutdown disconnects a connect in progress: nothing was promised
                // to the peer yet. The application still holds the handle, so it hears of it.
                self.with_conn(now, h.index, |tcb, ctx| {
                    (tcb.close(ctx, CloseReason::Aborted), ())
                });
                return Ok(());
            }
            State::SynReceived | State::Established | State::CloseWait => {
                tcb.fin_queued = true;
                tcb.queue_output();
            }
            _ => {}
        }
        self.after_conn(now, h.index);
        Ok(())
    }

    /// Closes the connection gracefully: like `shutdown`, and the application gives the
    /// connection up (no more events). Unread data makes it a RST instead (RFC 9293 3.10.4 /
    /// RFC 2525 2.17, as Linux does).
    pub fn close(&mut self, now: Instant, h: ConnHandle) -> Result<(), ConnError> {
        let tcb = self.conn_mut(h)?;
        if tcb.state == State::Closed {
            // Off the wire already (lingering with unread data): just let it go.
            self.release(h.index);
            return Ok(());
        }
        if !tcb.rx.is_empty() {
            self.counters.tcp_abort_on_close += 1;
            return self.abort(now, h);
        }
        let fin_timeout = self.config.fin_timeout;
        let tcb = self.conn_mut(h)?;
        tcb.orphan = true;
        if tcb.state == State::FinWait2 {
            tcb.deadlines.idle = Some(now + fin_timeout);
        }
        self.shutdown(now, h)
    }

    /// Aborts the connection with a RST (SO_LINGER with a zero timeout).
    pub fn abort(&mut self, now: Instant, h: ConnHandle) -> Result<(), ConnError> {
        let tcb = self.conn(h)?;
        if tcb.state == State::Closed {
            self.release(h.index);
            return Ok(());
        }
        if tcb.state != State::SynSent {
            self.counters.tcp_abort_on_linger += 1;
        }
        self.abort_quietly(now, h)
    }

    fn abort_quietly(&mut self, now: Instant, h: ConnHandle) -> Result<(), ConnError> {
        self.with_conn(now, h.index, |tcb, ctx| {
            if tcb.state.is_synchronized() || tcb.state == State::SynReceived {
                tcb.send_rst_now(ctx);
            }
            tcb.orphan = true;
            (tcb.close(ctx, CloseReason::Aborted), ())
        });
        Ok(())
    }

    /// Changes a connection's options.
    pub fn set_options(
        &mut self,
        now: Instant,
        h: ConnHandle,
        opts: ConnOptions,
    ) -> Result<(), ConnError> {
        let tcb = self.conn_mut(h)?;
        tcb.opts = PackedOptions::pack(&opts).ok_or(ConnError::InvalidOption)?;
        tcb.deadlines.idle = None;
        tcb.queue_output();
        self.after_conn(now, h.index);
        Ok(())
    }

    /// A connection's options.
    pub fn options(&self, h: ConnHandle) -> Result<ConnOptions, ConnError> {
        Ok(self.conn(h)?.opts.unpack())
    }

    /// A connection's state and sequence variables.
    pub fn info(&self, h: ConnHandle) -> Result<ConnInfo, ConnError> {
        let t = self.conn(h)?;
        Ok(ConnInfo {
            tuple: t.tuple,
            state: t.state,
            snd_una: t.snd_una,
            snd_nxt: t.snd_nxt,
            snd_max: t.snd_max,
            snd_wnd: t.snd_wnd,
            rcv_nxt: t.rcv_nxt,
            rcv_wnd: t.rcv_wnd(),
            cwnd: t.cwnd(),
            mss: t.mss,
            rto: t.rtt.rto(self.config.rto_max),
            send_queue: t.tx.len(),
            recv_queue: t.rx.len(),
            timestamps: t.ts.is_some(),
            sack: t.sack_ok,
            snd_wscale: t.snd_wscale,
            rcv_wscale: t.rcv_wscale,
            buffers: (t.tx.capacity() != 0, t.rx.capacity() != 0),
        })
    }

    /// Every live connection's handle.
    pub fn connections(&self) -> impl Iterator<Item = ConnHandle> + '_ {
        self.conns.iter().map(|(_, t)| t.handle)
    }
}

const IPV6_HEADER_LEN: usize = 40;

/// Why [`Shard::on_packet`] dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// The packet is malformed, a fragment, or fails a checksum.
    Malformed(tern_wire::Error),
    /// The packet is not TCP (the XDP program should not have steered it here).
    NotTcp,
}

impl From<tern_wire::Error> for PacketError {
    fn from(e: tern_wire::Error) -> Self {
        PacketError::Malformed(e)
    }
}

impl core::fmt::Display for PacketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PacketError::Malformed(e) => write!(f, "malformed packet: {e}"),
            PacketError::NotTcp => f.write_str("not a TCP packet"),
        }
    }
}

impl std::error::Error for PacketError {}

/// Something stored in a slab that knows its own 4-tuple.
trait Keyed {
    fn tuple(&self) -> &FourTuple;
}

impl Keyed for Tcb {
    fn tuple(&self) -> &FourTuple {
        &self.tuple
    }
}

impl Keyed for Request {
    fn tuple(&self) -> &FourTuple {
        &self.tuple
    }
}

/// A hash table of slab indices keyed by the entries' own 4-tuples, so an entry costs the
/// table 4 bytes and a control byte instead of another copy of its tuple. Used for the
/// connections and for the SYN queue's requests.
#[derive(Debug)]
struct TupleIndex {
    table: hashbrown::HashTable<u32>,
    hasher: RandomState,
}

impl TupleIndex {
    fn new(hasher: RandomState) -> TupleIndex {
        TupleIndex {
            table: hashbrown::HashTable::new(),
            hasher,
        }
    }

    fn find<T: Keyed>(&self, tuple: &FourTuple, slab: &Slab<T>) -> Option<u32> {
        let hash = self.hasher.hash_one(tuple);
        self.table
            .find(hash, |&i| slab.get(i).is_some_and(|t| t.tuple() == tuple))
            .copied()
    }

    fn insert<T: Keyed>(&mut self, tuple: &FourTuple, index: u32, slab: &Slab<T>) {
        let hash = self.hasher.hash_one(tuple);
        let hasher = &self.hasher;
        self.table.insert_unique(hash, index, |&i| {
            hasher.hash_one(
                slab.get(i)
                    .map(|t| *t.tuple())
                    .expect("indexed entries exist"),
            )
        });
    }

    /// Removes the entry of slab slot `index`, whose tuple is `tuple`.
    fn remove(&mut self, tuple: &FourTuple, index: u32) {
        let hash = self.hasher.hash_one(tuple);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == index) {
            entry.remove();
        }
    }
}

/// `t` rounded up to a whole millisecond.
fn ceil_ms(t: Instant) -> Instant {
    Instant::from_millis(t.as_micros().div_ceil(1_000))
}

/// The window scale we announce: the smallest shift that lets `rmem` fit the 16-bit field.
pub(crate) fn rcv_wscale_for(rmem: usize) -> u8 {
    let mut shift = 0;
    while (rmem >> shift) > 0xffff && shift < MAX_WSCALE {
        shift += 1;
    }
    shift
}

/// The window a SYN-ACK offers (unscaled, RFC 7323 2.2).
fn initial_window(config: &TcpConfig) -> u32 {
    (config.rmem as u32).min(0xffff)
}

/// Parses an IPv4 or IPv6 packet carrying TCP, verifying both checksums.
fn parse_ip_tcp(packet: &[u8]) -> Result<(IpAddr, IpAddr, TcpRepr<'_>), PacketError> {
    let version = packet.first().map(|b| b >> 4);
    let (src, dst, payload) = match version {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet)?;
            let repr = Ipv4Repr::parse(&ip, ChecksumMode::Verify)?;
            if repr.protocol != IpProtocol::Tcp {
                return Err(PacketError::NotTcp);
            }
            (
                IpAddr::V4(repr.src),
                IpAddr::V4(repr.dst),
                ip.into_payload(),
            )
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet)?;
            let repr = Ipv6Repr::parse(&ip)?;
            if repr.next_header != IpProtocol::Tcp {
                return Err(PacketError::NotTcp);
            }
            // The upper layer is the last `payload_len` bytes of the IPv6 payload.
            let end = IPV6_HEADER_LEN + usize::from(ip.payload_len());
            let upper = packet
                .get(end - repr.payload_len..end)
                .ok_or(tern_wire::Error::Truncated)?;
            (IpAddr::V6(repr.src), IpAddr::V6(repr.dst), upper)
        }
        _ => return Err(tern_wire::Error::BadVersion.into()),
    };
    let tcp = TcpPacket::new_checked(payload)?;
    let repr = TcpRepr::parse(&tcp, &src, &dst, ChecksumMode::Verify)?;
    Ok((src, dst, repr))
}
