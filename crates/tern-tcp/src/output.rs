//! Building the next segment of a connection: RFC 9293 3.8.6 (window management and silly
//! window avoidance), 3.7.4 (Nagle), RFC 7323 (window scale and timestamps on every segment),
//! RFC 2018/2883 (SACK and D-SACK blocks), RFC 5681 (cwnd, limited transmit of RFC 3042, idle
//! restart), RFC 6298 (starting the retransmission timer), RFC 1122 4.2.3.6 (keepalive probes).

use crate::state::State;
use crate::tcb::{Ctx, Reply, RtxMode, Tcb};
use crate::tuple::FourTuple;
use tern_wire::{
    ChecksumMode, IpProtocol, IpRepr, Ipv4Repr, Ipv6Repr, SackBlocks, SeqNum, TcpFlags, TcpPacket,
    TcpRepr, TcpTimestamp,
};

/// Time to live / hop limit of our packets (Linux's default `ip_default_ttl`).
const HOP_LIMIT: u8 = 64;

/// What a segment carries beyond its header.
enum Payload {
    None,
    /// `len` bytes of the send buffer starting at buffer offset `offset`.
    Data {
        offset: usize,
        len: usize,
    },
    /// One garbage octet (keepalive probes for peers that ignore empty ones).
    Garbage,
}

impl Tcb {
    /// Writes the next segment this connection wants to send into `buf` (IP header onward) and
    /// returns its length, or `None` when it has nothing to send now.
    pub(crate) fn transmit(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8]) -> Option<usize> {
        match self.state {
            State::Closed | State::Listen | State::TimeWait => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return self.send_syn(ctx, buf);
            }
            _ => {}
        }
        if self.retransmit_head {
            self.retransmit_head = false;
            let (seq, limit) = (self.snd_una, self.smss());
            if let Some(len) = self.send_from(ctx, buf, seq, limit) {
                return Some(len);
            }
        }
        if let Some(len) = self.send_new_data(ctx, buf) {
            return Some(len);
        }
        if self.probe_pending {
            self.probe_pending = false;
            return self.send_probe(ctx, buf);
        }
        if self.ack_now || self.window_update_due(ctx) {
            // A segment without data carries SND.MAX, never the SND.NXT a timeout pulled back:
            // the peer's SND.WL1 test would otherwise ignore the window it announces (BSD and
            // Linux do the same).
            let seq = self.snd_max;
            return self.emit_own(ctx, buf, seq, TcpFlags::ACK, Payload::None);
        }
        None
    }

    /// SYN (SYN-SENT) or SYN,ACK (simultaneous open) with our options (RFC 9293 3.7.1 MSS,
    /// RFC 7323 window scale and timestamps, RFC 2018 SACK-permitted).
    fn send_syn(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8]) -> Option<usize> {
        let flags = if self.state == State::SynSent {
            TcpFlags::SYN
        } else {
            TcpFlags::SYN | TcpFlags::ACK
        };
        let retransmission = self.snd_max != self.iss;
        let len = self.emit_own(ctx, buf, self.iss, flags, Payload::None)?;
        self.snd_nxt = self.iss + 1u32;
        self.snd_max = self.snd_nxt;
        if retransmission {
            ctx.counters.retrans_segs += 1;
        }
        if self.deadlines.rtx.is_none() {
            self.deadlines.rtx = Some(ctx.now + self.rtt.rto(ctx.config.rto_max));
        }
        Some(len)
    }

    /// New data (and the FIN after it) within the windows, subject to Nagle and SWS avoidance.
    fn send_new_data(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8]) -> Option<usize> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            return None;
        }
        let data_end = self.tx_seq + self.tx.len();
        let unsent = if data_end.after(self.snd_nxt) {
            data_end.offset_from(self.snd_nxt)
        } else {
            0
        };
        // Judged against SND.NXT: after a timeout pulls it back, a FIN sent before is due again.
        let fin_unsent = self.fin_queued && !self.snd_nxt.after(data_end);
        if unsent == 0 && !fin_unsent {
            return None;
        }

        // The usable window: min(SND.WND, cwnd) less what is in flight; RFC 3042 limited
        // transmit lets each of the first two duplicate ACKs release one more segment.
        let smss = self.smss();
        let mut cwnd = self.cwnd();
        if !self.in_recovery && self.dupacks > 0 && self.dupacks < 3 {
            cwnd = cwnd.saturating_add(self.dupacks * smss);
        }
        let in_flight = self.snd_nxt.offset_from(self.snd_una);
        let window = self.snd_wnd.min(cwnd);
        let usable = window.saturating_sub(in_flight);

        // RFC 5681 4.1: after an idle period longer than an RTO, restart from the initial window.
        if in_flight == 0
            && ctx.now.saturating_duration_since(self.last_send) > self.rtt.rto(ctx.config.rto_max)
        {
            use crate::cc::CongestionControl;
            self.cc.on_idle_restart(ctx.config.initial_cwnd * smss);
        }

        if unsent == 0 {
            // Only the FIN is left; it occupies one sequence number of window like Linux's.
            if usable == 0 && self.snd_wnd == 0 {
                self.enter_persist(ctx);
                return None;
            }
            let seq = self.snd_nxt;
            return self.send_from(ctx, buf, seq, 0);
        }

        let len = unsent.min(smss).min(usable);
        if len == 0 {
            if self.snd_wnd == 0 || self.snd_wnd <= in_flight {
                self.enter_persist(ctx);
            }
            return None;
        }
        // RFC 9293 3.8.6.2.1 sender SWS avoidance, with Nagle (3.7.4) deciding the "all queued
        // data can be sent" case: send a full segment, or everything if nothing is in flight
        // (or Nagle is off), or at least half the largest window the peer offered.
        let full = len == smss;
        // Nagle holds a small tail only while more may be written; once the FIN is queued
        // nothing will follow it (Linux pushes with Nagle off when closing).
        let all_of_it = len == unsent && (in_flight == 0 || !self.opts.nagle || self.fin_queued);
        let half_window = len >= self.max_snd_wnd / 2 && self.max_snd_wnd > 0;
        let override_timeout = core::mem::take(&mut self.sws_override);
        // Data below SND.MAX was sent before (a timeout pulled SND.NXT back): resending it is
        // not a new small segment, and holding it back could stall the connection for good.
        let resend = self.snd_nxt.before(self.snd_max);
        if !(full || all_of_it || half_window || override_timeout || resend) {
            // The persist timer overrides a stall where the window itself is too small.
            if in_flight == 0 && self.snd_wnd < smss && self.deadlines.rtx.is_none() {
                self.enter_persist(ctx);
            }
            return None;
        }
        let seq = self.snd_nxt;
        self.send_from(ctx, buf, seq, len)
    }

    /// Sends (or resends) one segment starting at `seq` with at most `limit` bytes of data, plus
    /// the FIN if the data ends where the FIN goes.
    fn send_from(
        &mut self,
        ctx: &mut Ctx<'_>,
        buf: &mut [u8],
        seq: SeqNum,
        limit: u32,
    ) -> Option<usize> {
        let data_end = self.tx_seq + self.tx.len();
        let available = if data_end.after(seq) {
            data_end.offset_from(seq)
        } else {
            0
        };
        let len = available.min(limit);
        let fin = self.fin_queued && seq + len == data_end;
        if len == 0 && !fin {
            return None;
        }
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && seq + len == data_end {
            // RFC 9293 3.9.1: PSH on the segment that empties the send buffer, as Linux does.
            flags |= TcpFlags::PSH;
        }
        let payload = if len > 0 {
            Payload::Data {
                offset: seq.offset_from(self.tx_seq) as usize,
                len: len as usize,
            }
        } else {
            Payload::None
        };
        let out = self.emit_own(ctx, buf, seq, flags, payload)?;

        let end = seq + len + u32::from(fin);
        let retransmission = seq.before(self.snd_max);
        if retransmission {
            ctx.counters.retrans_segs += 1;
            // Karn: a retransmitted range cannot be timed.
            if self
                .rtt_probe
                .is_some_and(|(probe_end, _)| probe_end.after(seq))
            {
                self.rtt_probe = None;
            }
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((end, ctx.now));
        }
        if end.after(self.snd_nxt) {
            self.snd_nxt = end;
        }
        if end.after(self.snd_max) {
            self.snd_max = end;
        }
        if len > 0 {
            self.last_send = ctx.now;
        }
        // RFC 6298 (5.1): start the timer when sending data with none running.
        if self.deadlines.rtx.is_none() || self.rtx_mode == RtxMode::Persist {
            self.rtx_mode = RtxMode::Retransmit;
            self.deadlines.rtx = Some(ctx.now + self.rtt.rto(ctx.config.rto_max));
        }
        if fin && self.state == State::Established {
            self.set_state(ctx.counters, State::FinWait1);
        } else if fin && self.state == State::CloseWait {
            self.set_state(ctx.counters, State::LastAck);
        }
        Some(out)
    }

    /// The peer's window is too small for anything: probe it on the persist timer.
    fn enter_persist(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_max && self.deadlines.rtx.is_none() {
            self.rtx_mode = RtxMode::Persist;
            self.deadlines.rtx = Some(ctx.now + self.rtt.rto(ctx.config.rto_max));
        }
    }

    /// A keepalive or zero-window probe: SEG.SEQ = SND.UNA − 1 so the peer must answer with an
    /// ACK carrying its window (RFC 1122 4.2.3.6; Linux's `tcp_xmit_probe_skb`).
    fn send_probe(&mut self, ctx: &mut Ctx<'_>, buf: &mut [u8]) -> Option<usize> {
        let garbage = self.rtx_mode != RtxMode::Persist && self.opts.keepalive().garbage_octet;
        let payload = if garbage {
            Payload::Garbage
        } else {
            Payload::None
        };
        let seq = self.snd_una - 1u32;
        self.emit_own(ctx, buf, seq, TcpFlags::ACK, payload)
    }

    /// RFC 9293 3.8.6.2.2 receiver SWS avoidance: announce a larger window only when the right
    /// edge can move by min(RCV.BUFF / 2, MSS) and the window we announced has shrunk below it.
    fn window_update_due(&self, ctx: &Ctx<'_>) -> bool {
        if !self.state.can_receive() {
            return false;
        }
        let space = self.rcv_space(ctx.config);
        let threshold = (ctx.config.rmem as u32 / 2).min(u32::from(self.mss));
        let current = self.rcv_wnd();
        space >= current + threshold && current < threshold.max(2 * u32::from(self.mss))
    }

    /// The window to advertise, scaled, never moving the right edge left (RFC 9293 3.8.6.2.2;
    /// RFC 7323 2.4: the shift rounds down, so round the edge back up when it would shrink).
    fn select_window(&mut self, ctx: &Ctx<'_>, syn: bool) -> u16 {
        let space = self.rcv_space(ctx.config);
        let current = self.rcv_wnd();
        let shift = if syn { 0 } else { self.rcv_wscale };
        let max = 0xffffu32 << shift;
        let mut wnd = space.min(max);
        // Receiver SWS avoidance: do not offer a window smaller than min(buffer/2, MSS) beyond
        // what we already offered.
        let threshold = (ctx.config.rmem as u32 / 2).min(u32::from(self.mss));
        if wnd < current + threshold && wnd > current {
            wnd = current;
        }
        wnd = wnd.max(current);
        let scaled = (wnd + (1 << shift) - 1) >> shift;
        let scaled = scaled.min(0xffff);
        let advertised = scaled << shift;
        let edge = self.rcv_nxt + advertised;
        if edge.after(self.rcv_adv) {
            self.rcv_adv = edge;
        }
        scaled as u16
    }

    /// SACK blocks for an outgoing ACK: a pending D-SACK first (RFC 2883), then out-of-order
    /// ranges, most recently changed first (RFC 2018 §4).
    fn sack_blocks(&mut self) -> SackBlocks {
        let mut blocks = SackBlocks::default();
        if !self.sack_ok {
            return blocks;
        }
        if let Some(d) = self.dsack.take() {
            blocks.push(d.left, d.right);
        }
        for (start, end) in self.ofo.sack_ranges() {
            blocks.push(self.rcv_nxt + start, self.rcv_nxt + end);
        }
        blocks
    }

    /// Emits one segment of this connection and does the bookkeeping every ACK-bearing segment
    /// needs (the delayed ACK is satisfied, Last.ACK.sent moves).
    fn emit_own(
        &mut self,
        ctx: &mut Ctx<'_>,
        buf: &mut [u8],
        seq: SeqNum,
        flags: TcpFlags,
        payload: Payload,
    ) -> Option<usize> {
        let syn = flags.contains(TcpFlags::SYN);
        let window_len = self.select_window(ctx, syn);
        let ack = flags.contains(TcpFlags::ACK).then_some(self.rcv_nxt);
        let mut repr = TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            flags,
            seq_number: seq,
            ack_number: ack,
            window_len,
            urgent_pointer: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_blocks: SackBlocks::default(),
            timestamp: None,
            payload: &[],
        };
        if let Some(ts) = self.ts {
            let tsecr = if flags.contains(TcpFlags::ACK) {
                ts.recent
            } else {
                0
            };
            repr.timestamp = Some(TcpTimestamp {
                tsval: self.ts_val(ctx.now),
                tsecr,
            });
        }
        if syn {
            repr.max_seg_size = Some(ctx.config.mss_for(self.tuple.is_ipv4()));
            if ctx.config.window_scaling
                && (self.state == State::SynSent || self.snd_wscale != 0 || self.rcv_wscale != 0)
            {
                repr.window_scale = Some(self.rcv_wscale);
            }
            repr.sack_permitted = self.sack_ok;
        } else {
            repr.sack_blocks = self.sack_blocks();
        }
        let payload_len = match payload {
            Payload::None => 0,
            Payload::Garbage => 1,
            Payload::Data { len, .. } => len as u32,
        };
        let seq_len = payload_len + u32::from(syn) + u32::from(flags.contains(TcpFlags::FIN));
        let len = match payload {
            Payload::None => emit_segment(buf, &self.tuple, &repr, 0, |_| {})?,
            Payload::Garbage => emit_segment(buf, &self.tuple, &repr, 1, |out| out[0] = 0)?,
            Payload::Data { offset, len } => {
                let tx = &self.tx;
                emit_segment(buf, &self.tuple, &repr, len, |out| {
                    tx.read_at(offset, out);
                })?
            }
        };
        self.last_window = window_len;
        if ack.is_some() {
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.segs_unacked = 0;
            self.deadlines.delack = None;
        }
        // OutSegs leaves retransmissions out (they count in RetransSegs): like Linux's
        // __tcp_transmit_skb, count segments that occupy no sequence space or reach past
        // everything sent before.
        if seq_len == 0 || (seq + seq_len).after(self.snd_max) {
            ctx.counters.out_segs += 1;
        }
        Some(len)
    }
}

/// Writes an IP packet carrying `repr` (its payload field ignored) and `payload_len` bytes that
/// `fill` writes straight into place, then the TCP checksum over all of it. Returns the packet
/// length, or `None` if `buf` is too small.
pub(crate) fn emit_segment(
    buf: &mut [u8],
    tuple: &FourTuple,
    repr: &TcpRepr<'_>,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Option<usize> {
    let tcp_len = repr.header_len() + payload_len;
    let ip = match (tuple.local_addr, tuple.remote_addr) {
        (core::net::IpAddr::V4(src), core::net::IpAddr::V4(dst)) => IpRepr::Ipv4(Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            ttl: HOP_LIMIT,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
        }),
        (core::net::IpAddr::V6(src), core::net::IpAddr::V6(dst)) => IpRepr::Ipv6(Ipv6Repr {
            src,
            dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        }),
        _ => return None,
    };
    let ip_len = ip.header_len();
    let total = ip_len + tcp_len;
    let buf = buf.get_mut(..total)?;
    ip.emit(buf).ok()?;
    let (_, segment) = buf.split_at_mut(ip_len);
    fill(&mut segment[repr.header_len()..]);
    let mut packet = TcpPacket::new_unchecked(segment);
    // The header goes in front of the payload already in place; the checksum then covers both.
    repr.emit(
        &mut packet,
        &tuple.local_addr,
        &tuple.remote_addr,
        ChecksumMode::Ignore,
    )
    .ok()?;
    packet.fill_checksum(&tuple.local_addr, &tuple.remote_addr);
    Some(total)
}

/// Writes a stateless reply (RST or RST/ACK) into `buf`.
pub(crate) fn emit_reply(buf: &mut [u8], reply: &Reply) -> Option<usize> {
    let repr = TcpRepr {
        src_port: reply.tuple.local_port,
        dst_port: reply.tuple.remote_port,
        flags: reply.flags,
        seq_number: reply.seq,
        ack_number: reply.ack,
        window_len: reply.window,
        urgent_pointer: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_blocks: SackBlocks::default(),
        timestamp: reply.ts,
        payload: &[],
    };
    emit_segment(buf, &reply.tuple, &repr, 0, |_| {})
}
