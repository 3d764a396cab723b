//! The transmission control block: one connection's state (RFC 9293 §3.3.1) and the shared
//! context its input, output and timer code runs in.
//!
//! The TCB is split over modules the way Linux splits `tcp_input.c`, `tcp_output.c` and
//! `tcp_timer.c`: [`crate::input`] processes arriving segments, [`crate::output`] builds the
//! next segment, [`crate::timers`] handles expiries. This module holds the state and the small
//! helpers all three use.

use crate::assembler::Assembler;
use crate::buffer::RingBuffer;
use crate::cc::{Congestion, CongestionControl, NewReno};
use crate::config::{KeepaliveConfig, TcpConfig};
use crate::counters::Counters;
use crate::event::{CloseReason, ConnHandle, Event};
use crate::pool::BufferPool;
use crate::rtt::RttEstimator;
use crate::state::State;
use crate::time::{Duration, Instant};
use crate::timer::TimerHandle;
use crate::tuple::FourTuple;
use std::collections::VecDeque;
use tern_wire::{SackBlock, SeqNum, TcpFlags, TcpTimestamp};

/// Largest window scale shift (RFC 7323 2.3).
pub(crate) const MAX_WSCALE: u8 = 14;

/// Everything a TCB may touch outside itself while handling one input, output or timer.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub config: &'a TcpConfig,
    pub counters: &'a mut Counters,
    pub events: &'a mut VecDeque<Event>,
    pub tx_pool: &'a mut BufferPool,
    pub rx_pool: &'a mut BufferPool,
    /// Stateless replies (RSTs) to send for this connection's peer.
    pub replies: &'a mut VecDeque<Reply>,
}

/// A segment to send that belongs to no connection state: a RST, or a RST/ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub tuple: FourTuple,
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
    pub flags: TcpFlags,
    /// Timestamps to carry (TIME-WAIT ACKs of connections that negotiated them).
    pub ts: Option<TcpTimestamp>,
    /// The window field (0 for RSTs).
    pub window: u16,
}

impl Reply {
    /// `<SEQ=seq><CTL=RST>`: the reset RFC 9293 sends for an unacceptable ACK (SEQ = SEG.ACK).
    pub fn rst(tuple: FourTuple, seq: SeqNum) -> Reply {
        Reply {
            tuple,
            seq,
            ack: None,
            flags: TcpFlags::RST,
            ts: None,
            window: 0,
        }
    }
}

/// What the shard must do with a connection after a TCB method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Keep it.
    Keep,
    /// Both FINs are acknowledged and this side closed first: move it to the TIME-WAIT table.
    TimeWait,
    /// It is gone (the Closed event, if any, has been queued): free it.
    Free,
}

/// The out-of-order assembler, allocated only while data is out of order: its 80 bytes are
/// never needed by a connection whose data arrives in order, which is nearly all of them.
#[derive(Debug, Default)]
pub(crate) struct OfoRanges(Option<Box<Assembler>>);

impl OfoRanges {
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|a| a.is_empty())
    }

    pub fn add(&mut self, offset: u32, len: u32) -> Result<(), crate::assembler::TooManyHoles> {
        self.0.get_or_insert_with(Box::default).add(offset, len)
    }

    /// Takes the in-order bytes at offset 0; frees the assembler once nothing is held.
    pub fn remove_front(&mut self) -> u32 {
        let n = self.0.as_mut().map_or(0, |a| a.remove_front());
        if self.0.as_ref().is_some_and(|a| a.is_empty()) {
            self.0 = None;
        }
        n
    }

    pub fn sack_ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().flat_map(|a| a.sack_ranges())
    }
}

/// Timestamp state of a connection that negotiated RFC 7323 timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamps {
    /// TS.Recent (RFC 7323 4.3).
    pub recent: u32,
    /// When TS.Recent was last updated, for the 24-day validity rule (RFC 7323 5.5).
    pub recent_at: Instant,
    /// Added to our millisecond clock to form TSval.
    pub offset: u32,
}

/// Per-connection options the application can change (socket options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnOptions {
    /// Nagle's algorithm (RFC 9293 3.7.4); `false` is `TCP_NODELAY`.
    pub nagle: bool,
    /// Keepalive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
    pub keepalive: KeepaliveConfig,
    /// RFC 1122 4.2.3.5 / RFC 5482 user timeout (`TCP_USER_TIMEOUT`): abort when data stays
    /// unacknowledged this long. `None` leaves it to `retries2`.
    pub user_timeout: Option<Duration>,
}

/// [`ConnOptions`] as a connection stores them: 16 bytes instead of 48, times in
/// milliseconds as Linux's socket options take them (`TCP_KEEPIDLE` and `TCP_KEEPINTVL` in
/// seconds, `TCP_USER_TIMEOUT` in milliseconds), which `Shard::set_options` checks fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedOptions {
    keepalive_time_ms: u32,
    keepalive_interval_ms: u32,
    /// 0: no user timeout.
    user_timeout_ms: u32,
    keepalive_probes: u8,
    pub nagle: bool,
    keepalive_enabled: bool,
    garbage_octet: bool,
}

fn to_ms(d: Duration) -> Option<u32> {
    u32::try_from(d.as_millis()).ok()
}

impl PackedOptions {
    /// Packs `opts`; `None` when a time does not fit 32 bits of milliseconds (49 days) or
    /// the probe count 8 bits.
    pub fn pack(opts: &ConnOptions) -> Option<PackedOptions> {
        let ka = &opts.keepalive;
        Some(PackedOptions {
            keepalive_time_ms: to_ms(ka.time)?,
            keepalive_interval_ms: to_ms(ka.interval)?,
            user_timeout_ms: match opts.user_timeout {
                Some(d) => to_ms(d)?.max(1),
                None => 0,
            },
            keepalive_probes: u8::try_from(ka.probes).ok()?,
            nagle: opts.nagle,
            keepalive_enabled: ka.enabled,
            garbage_octet: ka.garbage_octet,
        })
    }

    pub fn unpack(&self) -> ConnOptions {
        ConnOptions {
            nagle: self.nagle,
            keepalive: self.keepalive(),
            user_timeout: self.user_timeout(),
        }
    }

    pub fn keepalive(&self) -> KeepaliveConfig {
        KeepaliveConfig {
            enabled: self.keepalive_enabled,
            time: Duration::from_millis(u64::from(self.keepalive_time_ms)),
            interval: Duration::from_millis(u64::from(self.keepalive_interval_ms)),
            probes: u32::from(self.keepalive_probes),
            garbage_octet: self.garbage_octet,
        }
    }

    pub fn keepalive_enabled(&self) -> bool {
        self.keepalive_enabled
    }

    pub fn user_timeout(&self) -> Option<Duration> {
        (self.user_timeout_ms != 0).then(|| Duration::from_millis(u64::from(self.user_timeout_ms)))
    }
}

impl ConnOptions {
    /// The engine-wide defaults.
    pub fn from_config(config: &TcpConfig) -> ConnOptions {
        ConnOptions {
            nagle: config.nagle,
            keepalive: config.keepalive,
            user_timeout: None,
        }
    }
}

/// Per-connection timer deadlines. The shard keeps one wheel entry per connection, armed at the
/// earliest of these; a deadline moving later costs nothing (the entry fires early and re-arms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// Retransmission of SYN, data or FIN; or the persist timer while the peer's window is zero.
    pub rtx: Option<Instant>,
    /// Delayed ACK.
    pub delack: Option<Instant>,
    /// Keepalive probing, or the orphaned FIN-WAIT-2 timeout (`fin_timeout`).
    pub idle: Option<Instant>,
}

impl Deadlines {
    pub fn earliest(&self) -> Option<Instant> {
        [self.rtx, self.delack, self.idle]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What the retransmission timer is timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RtxMode {
    /// Unacknowledged SYN, data or FIN.
    Retransmit,
    /// The peer advertised a zero window and we have data: probe it (RFC 9293 3.8.6.1).
    Persist,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Tcb {
    pub handle: ConnHandle,
    pub tuple: FourTuple,
    pub state: State,

    // RFC 9293 3.3.1 send sequence variables.
    pub iss: SeqNum,
    pub snd_una: SeqNum,
    pub snd_nxt: SeqNum,
    /// The highest sequence number sent so far, plus one: SND.NXT is pulled back to SND.UNA on a
    /// timeout (go-back-N), this is not.
    pub snd_max: SeqNum,
    /// The peer's window, scaled (SND.WND).
    pub snd_wnd: u32,
    /// The largest window the peer ever offered (RFC 5961 §5, RFC 9293 3.8.6.2.1).
    pub max_snd_wnd: u32,
    pub snd_wl1: SeqNum,
    pub snd_wl2: SeqNum,
    /// Sequence number of `tx`'s first byte.
    pub tx_seq: SeqNum,

    // Receive sequence variables.
    pub irs: SeqNum,
    pub rcv_nxt: SeqNum,
    /// Right edge of the last window we advertised; the window never shrinks below it
    /// (RFC 9293 3.8.6.2.2).
    pub rcv_adv: SeqNum,
    /// RCV.NXT as of the last ACK we sent ("Last.ACK.sent", RFC 7323 4.3).
    pub last_ack_sent: SeqNum,
    /// A FIN that arrived beyond RCV.NXT (out of order), waiting for the gap to fill.
    pub rcv_fin: Option<SeqNum>,

    // Negotiated options.
    /// Shift applied to windows the peer advertises.
    pub snd_wscale: u8,
    /// Shift we apply to windows we advertise.
    pub rcv_wscale: u8,
    /// Effective send MSS: the peer's MSS capped by ours (RFC 9293 3.7.1), before options.
    pub mss: u16,
    pub sack_ok: bool,
    pub ts: Option<Timestamps>,

    // Data.
    /// Data from `tx_seq` on: unacknowledged, then unsent.
    pub tx: RingBuffer,
    /// In-order data not yet read, then out-of-order data placed at its offset.
    pub rx: RingBuffer,
    /// Out-of-order ranges beyond RCV.NXT.
    pub ofo: OfoRanges,
    /// The application shut the sending side: a FIN follows the data in `tx`.
    pub fin_queued: bool,
    /// A D-SACK block to report once (RFC 2883).
    pub dsack: Option<SackBlock>,

    // RTT estimation and congestion control.
    pub rtt: RttEstimator,
    /// A segment being timed without timestamps: (its end sequence, when it was sent).
    pub rtt_probe: Option<(SeqNum, Instant)>,
    pub cc: Congestion,
    pub dupacks: u32,
    /// RFC 6582 "recover": SND.MAX when fast recovery started.
    pub recover: SeqNum,
    pub in_recovery: bool,
    /// Retransmit the first unacknowledged segment at the next output (fast retransmit).
    pub retransmit_head: bool,

    // Timers.
    pub deadlines: Deadlines,
    pub rtx_mode: RtxMode,
    /// The connection's one wheel entry and when it fires.
    pub wheel: Option<(TimerHandle, Instant)>,
    /// Consecutive retransmission timeouts (or persist probes) without progress.
    pub retransmits: u32,
    /// When the first retransmission of the current series happened, for retries2 and the user
    /// timeout.
    pub rtx_since: Option<Instant>,
    /// Keepalive probes sent without answer.
    pub probes: u32,
    /// Last time a segment from the peer was accepted (keepalive idle time).
    pub last_recv: Instant,
    /// Last time we sent data (RFC 5681 4.1 idle restart).
    pub last_send: Instant,
    /// Last challenge ACK or out-of-window duplicate ACK (RFC 5961 §10 throttling).
    pub last_oow_ack: Option<Instant>,

    // ACK generation.
    /// An ACK must go out at the next output, not later.
    pub ack_now: bool,
    /// Full-sized segments received since our last ACK (RFC 1122 4.2.3.2: ACK every second).
    pub segs_unacked: u32,
    /// The largest segment the peer has sent, which defines "full-sized" for delayed ACKs.
    pub rcv_mss: u16,
    /// The window field of the last segment we sent (repeated by TIME-WAIT ACKs).
    pub last_window: u16,
    /// Send a keepalive or window probe at the next output.
    pub probe_pending: bool,
    /// The persist timer expired on a window too small for sender SWS avoidance: the next
    /// output sends what fits anyway (RFC 9293 3.8.6.2.1 (4), the override timeout).
    pub sws_override: bool,
    /// Something may be ready to send: the shard queues the connection for output.
    pub wants_output: bool,

    // The application side.
    pub opts: PackedOptions,
    /// The application closed the connection; it receives no more events.
    pub orphan: bool,
    /// A `send` found the buffer full: report Writable when room frees up.
    pub want_writable: bool,
    /// The connection waits in the shard's transmit queue.
    pub queued: bool,
    /// The peer's FIN was reported (PeerClosed).
    pub peer_closed: bool,
    /// A passive open waiting in the accept queue (no events until accepted).
    pub unaccepted: bool,
}

/// What the handshake settled, for building a connection from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The connection's addresses.
    pub tuple: FourTuple,
    /// Our initial sequence number.
    pub iss: SeqNum,
    /// The peer's initial sequence number.
    pub irs: SeqNum,
    /// The MSS the peer announced (`None`: it sent none, RFC 9293 3.7.1 default applies).
    pub peer_mss: Option<u16>,
    /// The peer's window scale shift, if both sides agreed to scale.
    pub snd_wscale: Option<u8>,
    /// Our window scale shift, if both sides agreed to scale.
    pub rcv_wscale: Option<u8>,
    /// Both sides agreed to SACK.
    pub sack_ok: bool,
    /// The peer's last TSval and our timestamp offset, if both sides agreed to timestamps.
    pub ts: Option<(u32, u32)>,
    /// The peer's window as last advertised (already scaled).
    pub snd_wnd: u32,
}

impl Tcb {
    /// A connection in `state` with nothing sent or received yet beyond the handshake values.
    pub fn new(
        handle: ConnHandle,
        state: State,
        hs: &Handshake,
        now: Instant,
        config: &TcpConfig,
        opts: PackedOptions,
    ) -> Tcb {
        let peer_mss = hs
            .peer_mss
            .unwrap_or(config.default_mss_for(hs.tuple.is_ipv4()));
        let mss = peer_mss.min(config.mss_for(hs.tuple.is_ipv4())).max(64);
        Tcb {
            handle,
            tuple: hs.tuple,
            state,
            iss: hs.iss,
            snd_una: hs.iss,
            snd_nxt: hs.iss,
            snd_max: hs.iss,
            snd_wnd: hs.snd_wnd,
            max_snd_wnd: hs.snd_wnd,
            snd_wl1: hs.irs,
            snd_wl2: hs.iss,
            tx_seq: hs.iss + 1u32,
            irs: hs.irs,
            rcv_nxt: hs.irs + 1u32,
            rcv_adv: hs.irs + 1u32,
            last_ack_sent: hs.irs + 1u32,
            rcv_fin: None,
            snd_wscale: hs.snd_wscale.unwrap_or(0),
            rcv_wscale: hs.rcv_wscale.unwrap_or(0),
            mss,
            sack_ok: hs.sack_ok,
            ts: hs.ts.map(|(recent, offset)| Timestamps {
                recent,
                recent_at: now,
                offset,
            }),
            tx: RingBuffer::default(),
            rx: RingBuffer::default(),
            ofo: OfoRanges::default(),
            fin_queued: false,
            dsack: None,
            rtt: RttEstimator::new(config.rto_initial),
            rtt_probe: None,
            cc: Congestion::NewReno(NewReno::new(config.initial_cwnd * u32::from(mss))),
            dupacks: 0,
            recover: hs.iss,
            in_recovery: false,
            retransmit_head: false,
            deadlines: Deadlines::default(),
            rtx_mode: RtxMode::Retransmit,
            wheel: None,
            retransmits: 0,
            rtx_since: None,
            probes: 0,
            last_recv: now,
            last_send: now,
            last_oow_ack: None,
            ack_now: false,
            segs_unacked: 0,
            rcv_mss: 536u16.min(mss),
            probe_pending: false,
            sws_override: false,
            last_window: 0,
            wants_output: false,
            opts,
            orphan: false,
            want_writable: false,
            queued: false,
            peer_closed: false,
            unaccepted: false,
        }
    }

    /// Our TSval clock: milliseconds plus the connection's offset (RFC 7323 5.4: a 1 ms tick).
    pub fn ts_val(&self, now: Instant) -> u32 {
        let offset = self.ts.map_or(0, |t| t.offset);
        (now.as_millis() as u32).wrapping_add(offset)
    }

    /// The sequence number of our FIN, once the application has shut the sending side.
    pub fn fin_seq(&self) -> Option<SeqNum> {
        self.fin_queued.then(|| self.tx_seq + self.tx.len())
    }

    /// Whether our FIN has been acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.fin_seq().is_some_and(|fin| self.snd_una.after(fin))
    }

    /// Bytes sent and not yet acknowledged (FlightSize, RFC 5681), counting SYN and FIN.
    pub fn flight_size(&self) -> u32 {
        self.snd_max.offset_from(self.snd_una)
    }

    /// Room in the receive buffer, which is the window we can offer.
    pub fn rcv_space(&self, config: &TcpConfig) -> u32 {
        let (cap, used) = if self.rx.capacity() == 0 {
            (config.rmem, 0)
        } else {
            (self.rx.capacity(), self.rx.len())
        };
        (cap - used).min(u32::MAX as usize) as u32
    }

    /// RCV.WND: what remains of the window we advertised, never less than zero.
    pub fn rcv_wnd(&self) -> u32 {
        if self.rcv_adv.after(self.rcv_nxt) {
            self.rcv_adv.offset_from(self.rcv_nxt)
        } else {
            0
        }
    }

    /// The segment payload limit: the MSS less the options every segment carries (RFC 6691).
    pub fn smss(&self) -> u32 {
        let ts = if self.ts.is_some() { 12 } else { 0 };
        u32::from(self.mss) - ts
    }

    /// Queues an event unless the application gave the connection up.
    pub fn notify(&self, events: &mut VecDeque<Event>, event: Event) {
        if !self.orphan && !self.unaccepted {
            events.push_back(event);
        }
    }

    /// Ends the connection on the wire: counts it, reports it, returns its send buffer. Data
    /// received and not yet read stays readable (as in a closed Linux socket) until the
    /// application reads it to the end or closes the handle; see [`Tcb::lingers`].
    pub fn close(&mut self, ctx: &mut Ctx<'_>, reason: CloseReason) -> Disposition {
        self.leave_state(ctx.counters);
        self.state = State::Closed;
        if !self.orphan && !self.unaccepted {
            ctx.events.push_back(Event::Closed(self.handle, reason));
        }
        give_back(&mut self.tx, ctx.tx_pool);
        if !self.lingers() {
            self.release_buffers(ctx.tx_pool, ctx.rx_pool);
        }
        Disposition::Free
    }

    /// A closed connection whose application still has data to read keeps its handle.
    pub fn lingers(&self) -> bool {
        self.state == State::Closed && !self.orphan && !self.unaccepted && !self.rx.is_empty()
    }

    /// Moves to `state`, keeping CurrEstab right.
    pub fn set_state(&mut self, counters: &mut Counters, state: State) {
        let was = matches!(self.state, State::Established | State::CloseWait);
        let is = matches!(state, State::Established | State::CloseWait);
        match (was, is) {
            (false, true) => counters.curr_estab += 1,
            (true, false) => counters.curr_estab -= 1,
            _ => {}
        }
        self.state = state;
    }

    fn leave_state(&mut self, counters: &mut Counters) {
        if matches!(self.state, State::Established | State::CloseWait) {
            counters.curr_estab -= 1;
        }
    }

    /// Returns both buffers to their pools.
    pub fn release_buffers(&mut self, tx_pool: &mut BufferPool, rx_pool: &mut BufferPool) {
        give_back(&mut self.tx, tx_pool);
        give_back(&mut self.rx, rx_pool);
    }

    /// Returns idle buffers to the pools so an idle connection holds no buffer memory.
    pub fn shed_idle_buffers(&mut self, tx_pool: &mut BufferPool, rx_pool: &mut BufferPool) {
        if self.tx.is_empty() {
            give_back(&mut self.tx, tx_pool);
        }
        if self.rx.is_empty() && self.ofo.is_empty() {
            give_back(&mut self.rx, rx_pool);
        }
    }

    /// An ACK must go out at the next output.
    pub fn schedule_ack(&mut self) {
        self.ack_now = true;
        self.wants_output = true;
    }

    /// Asks the shard to run output for this connection.
    pub fn queue_output(&mut self) {
        self.wants_output = true;
    }

    /// The cwnd in force.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }
}

/// Hands a buffer's storage back to its pool (an empty default buffer holds none).
fn give_back(buffer: &mut RingBuffer, pool: &mut BufferPool) {
    if buffer.capacity() != 0 {
        pool.give(core::mem::take(buffer).into_storage());
    }
}
