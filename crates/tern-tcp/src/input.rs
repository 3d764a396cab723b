//! Segment arrival on a connection: RFC 9293 3.10.7.3 (SYN-SENT) and 3.10.7.4 (other states),
//! with RFC 5961 (blind RST/SYN/ACK attacks), RFC 7323 (window scaling, PAWS, RTTM),
//! RFC 2018/2883 (SACK and D-SACK generation), RFC 5681/6582 (duplicate ACKs, fast retransmit,
//! NewReno recovery) and RFC 1122 4.2.3.2 (when to ACK).

use crate::cc::CongestionControl;
use crate::counters::DropReason;
use crate::event::{CloseReason, Event};
use crate::rtt::RttEstimator;
use crate::state::State;
use crate::tcb::{Ctx, Disposition, Reply, RtxMode, Tcb, Timestamps};
use crate::time::Duration;
use tern_wire::{SackBlock, SeqNum, TcpFlags, TcpRepr};

/// RFC 7323 5.5: TS.Recent older than this is invalid (24 days).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

impl Tcb {
    /// Processes one segment addressed to this connection.
    pub(crate) fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Disposition {
        if self.state == State::SynSent {
            return self.on_segment_syn_sent(ctx, seg);
        }
        let rst = seg.flags.contains(TcpFlags::RST);

        // RFC 7323 5.3 R1: PAWS, before the sequence check. A RST is exempt (5.2).
        if let (Some(ts), Some(seg_ts)) = (self.ts, seg.timestamp) {
            let stale = ctx.now.saturating_duration_since(ts.recent_at) > PAWS_IDLE;
            if !rst && !stale && (seg_ts.tsval.wrapping_sub(ts.recent) as i32) < 0 {
                ctx.counters.paws_estab += 1;
                ctx.counters.drop(DropReason::Paws);
                self.send_oow_ack(ctx, seg);
                return Disposition::Keep;
            }
        }

        // RFC 9293 3.10.7.4 first: the four-case acceptability test.
        let seg_len = seg_len(seg);
        let wnd = self.rcv_wnd();
        let seq = seg.seq_number;
        let in_window = |s: SeqNum| s.after_eq(self.rcv_nxt) && s.before(self.rcv_nxt + wnd);
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => in_window(seq),
            (_, 0) => false,
            (_, _) => in_window(seq) || in_window(seq + (seg_len - 1)),
        };
        // "If the RCV.WND is zero, no segments will be acceptable, but special allowance should
        // be made to accept valid ACKs, URGs, and RSTs": a zero-window probe at RCV.NXT keeps its
        // control fields, loses its text.
        let zero_window_probe = !acceptable && wnd == 0 && seq == self.rcv_nxt;
        if !acceptable && !zero_window_probe {
            if seg.flags.contains(TcpFlags::SYN) && !rst {
                // RFC 5961 §4: a SYN gets a challenge ACK "irrespective of the sequence number"
                // (Linux's tcp_validate_incoming takes the same path for an out-of-window SYN).
                ctx.counters.tcp_syn_challenge += 1;
                ctx.counters.drop(DropReason::SynInWindow);
                self.send_challenge_ack(ctx);
                return Disposition::Keep;
            }
            if !rst {
                // Old duplicate data: report it as a D-SACK (RFC 2883 4.1.1).
                if seg_len > 0 && self.sack_ok && seq.before(self.rcv_nxt) {
                    let end = seq + seg_len.min(self.rcv_nxt.offset_from(seq));
                    self.dsack = Some(SackBlock {
                        left: seq,
                        right: end,
                    });
                    ctx.counters.tcp_dsack_sent += 1;
                }
                self.send_oow_ack(ctx, seg);
            }
            ctx.counters.drop(DropReason::OutOfWindow);
            return Disposition::Keep;
        }

        // Second: RST (RFC 5961 §3.2). Out-of-window RSTs were dropped above.
        if rst {
            if seq != self.rcv_nxt {
                ctx.counters.drop(DropReason::BadRst);
                self.send_challenge_ack(ctx);
                return Disposition::Keep;
            }
            return self.on_reset(ctx);
        }

        // Fourth: SYN in a synchronized state, whatever its sequence number (RFC 5961 §4, RFC
        // 9293 3.10.7.4). SYN-RECEIVED here came from a simultaneous open, so the same applies.
        if seg.flags.contains(TcpFlags::SYN) {
            ctx.counters.tcp_syn_challenge += 1;
            ctx.counters.drop(DropReason::SynInWindow);
            self.send_challenge_ack(ctx);
            return Disposition::Keep;
        }

        // Fifth: without ACK the segment is dropped.
        let Some(ack) = seg.ack_number else {
            ctx.counters.drop(DropReason::NoAck);
            return Disposition::Keep;
        };

        // RFC 5961 §5.2: acceptable only in [SND.UNA − MAX.SND.WND, SND.NXT]; otherwise ACK and
        // drop. SND.MAX stands for SND.NXT because SND.NXT is pulled back on a timeout.
        if ack.after(self.snd_max) || ack.before(self.snd_una - self.max_snd_wnd) {
            if ack.after(self.snd_max) {
                ctx.counters.tcp_ack_unsent += 1;
            }
            ctx.counters.drop(DropReason::BadAck);
            self.send_oow_ack(ctx, seg);
            return Disposition::Keep;
        }

        if self.state == State::SynReceived {
            // Our SYN must be acknowledged; otherwise "form a reset segment <SEQ=SEG.ACK>".
            if !ack.after(self.snd_una) {
                ctx.replies.push_back(Reply::rst(self.tuple, ack));
                ctx.counters.out_rsts += 1;
                return Disposition::Keep;
            }
            self.set_state(ctx.counters, State::Established);
            self.notify(ctx.events, Event::Connected(self.handle));
        }

        // RFC 7323 4.3 (2): remember TSval when the segment covers Last.ACK.sent.
        if let (Some(ts), Some(seg_ts)) = (self.ts.as_mut(), seg.timestamp) {
            if (seg_ts.tsval.wrapping_sub(ts.recent) as i32) >= 0
                && seq.before_eq(self.last_ack_sent)
            {
                ts.recent = seg_ts.tsval;
                ts.recent_at = ctx.now;
            }
        }
        self.last_recv = ctx.now;
        self.probes = 0;

        self.process_ack(ctx, seg, ack);

        // States whose FIN got acknowledged move on (RFC 9293 3.10.7.4 fifth, per state).
        if self.fin_acked() {
            match self.state {
                State::FinWait1 => {
                    self.set_state(ctx.counters, State::FinWait2);
                    if self.orphan {
                        // Linux's tcp_fin_timeout applies to orphans only: an application that
                        // merely shut its side down may wait for the peer as long as it likes.
                        self.deadlines.idle = Some(ctx.now + ctx.config.fin_timeout);
                    }
                }
                State::Closing => return Disposition::TimeWait,
                State::LastAck => return self.close(ctx, CloseReason::Normal),
                _ => {}
            }
        }

        // Sixth is URG: RFC 6093 urgent data is delivered inline like any other data.
        // Seventh: segment text; eighth: FIN.
        self.process_data(ctx, seg)
    }

    /// RFC 9293 3.10.7.3: a segment arrives in SYN-SENT.
    fn on_segment_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Disposition {
        let rst = seg.flags.contains(TcpFlags::RST);
        // First: the ACK must acknowledge our SYN exactly (RFC 5961 §3: a RST in SYN-SENT is
        // acceptable only if it acknowledges the SYN).
        if let Some(ack) = seg.ack_number {
            if ack.before_eq(self.iss) || ack.after(self.snd_max) {
                if !rst {
                    ctx.replies.push_back(Reply::rst(self.tuple, ack));
                    ctx.counters.out_rsts += 1;
                }
                ctx.counters.drop(DropReason::BadAck);
                return Disposition::Keep;
            }
        }
        if rst {
            if seg.ack_number.is_some() {
                ctx.counters.attempt_fails += 1;
                return self.close(ctx, CloseReason::Refused);
            }
            ctx.counters.drop(DropReason::BadRst);
            return Disposition::Keep;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            ctx.counters.drop(DropReason::NoAck);
            return Disposition::Keep;
        }

        // Fourth: the SYN. Options are settled now (RFC 7323 2.2: scaling only if both sent
        // the option; timestamps likewise; RFC 2018: SACK-permitted likewise).
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1u32;
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.mss = seg
            .max_seg_size
            .unwrap_or(ctx.config.default_mss_for(self.tuple.is_ipv4()))
            .min(ctx.config.mss_for(self.tuple.is_ipv4()))
            .max(64);
        if let Some(shift) = seg.window_scale {
            // RFC 7323 2.3: a shift above 14 is used as 14.
            self.snd_wscale = shift.min(crate::tcb::MAX_WSCALE);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok &= seg.sack_permitted;
        match (self.ts, seg.timestamp) {
            (Some(ts), Some(seg_ts)) => {
                self.ts = Some(Timestamps {
                    recent: seg_ts.tsval,
                    recent_at: ctx.now,
                    offset: ts.offset,
                })
            }
            _ => self.ts = None,
        }
        // The window in a SYN is never scaled (RFC 7323 2.2).
        self.snd_wnd = u32::from(seg.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq_number;
        self.cc = crate::cc::Congestion::NewReno(crate::cc::NewReno::new(
            ctx.config.initial_cwnd * u32::from(self.mss),
        ));
        self.last_recv = ctx.now;

        if let Some(ack) = seg.ack_number {
            self.snd_wl2 = ack;
            let syn_timed_out = self.retransmits > 0;
            self.on_new_ack(ctx, ack, seg);
            if syn_timed_out && self.rtt.srtt().is_none() {
                self.rtt =
                    RttEstimator::after_syn_timeout(ctx.config.rto_initial, ctx.config.rto_max);
            }
            self.set_state(ctx.counters, State::Established);
            self.notify(ctx.events, Event::Connected(self.handle));
            self.schedule_ack();
            // Data in a SYN-ACK is accepted too (RFC 9293 3.10.7.3 sixth).
            let mut rest = *seg;
            rest.flags.remove(TcpFlags::SYN);
            rest.seq_number = seg.seq_number + 1u32;
            return self.process_data(ctx, &rest);
        }
        // Simultaneous open: SYN-RECEIVED, answer with SYN,ACK carrying the same ISS.
        self.set_state(ctx.counters, State::SynReceived);
        self.snd_nxt = self.iss;
        self.schedule_ack();
        Disposition::Keep
    }

    /// An acceptable RST (RFC 9293 3.10.7.4 second, per state).
    fn on_reset(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        match self.state {
            State::SynReceived => {
                ctx.counters.attempt_fails += 1;
                self.close(ctx, CloseReason::Refused)
            }
            State::Established | State::CloseWait => {
                ctx.counters.estab_resets += 1;
                self.close(ctx, CloseReason::Reset)
            }
            _ => self.close(ctx, CloseReason::Reset),
        }
    }

    /// RFC 9293 3.10.7.4 fifth, ESTABLISHED and the states that process ACKs like it.
    fn process_ack(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>, ack: SeqNum) {
        let wnd = u32::from(seg.window_len) << self.snd_wscale;
        let advances = ack.after(self.snd_una);
        if advances {
            self.on_new_ack(ctx, ack, seg);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.contains(TcpFlags::FIN)
            && wnd == self.snd_wnd
            && self.snd_max != self.snd_una
        {
            // RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": nothing new, same window, data outstanding.
            self.on_dupack(ctx);
        }

        // Window update: RFC 9293 3.10.7.4's rule (SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and
        // SND.WL2 =< SEG.ACK), plus Linux's `tcp_may_update_window` case of an ACK that moves
        // SND.UNA: the window is relative to SEG.ACK, so keeping an old window while SND.UNA
        // advances would let us send beyond the peer's right edge.
        let seq = seg.seq_number;
        if advances
            || self.snd_wl1.before(seq)
            || (self.snd_wl1 == seq && self.snd_wl2.before_eq(ack))
        {
            let opened = wnd > self.snd_wnd;
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if self.snd_wl1.before(seq) {
                self.snd_wl1 = seq;
            }
            self.snd_wl2 = ack;
            if wnd > 0 && self.rtx_mode == RtxMode::Persist {
                // The window opened: stop probing, time the data again. The probes' backoff
                // ends with them (Linux's tcp_ack_probe clears icsk_backoff): the data that
                // follows is timed with the plain RTO.
                self.rtx_mode = RtxMode::Retransmit;
                self.deadlines.rtx = None;
                self.retransmits = 0;
                self.rtx_since = None;
                self.rtt.reset_backoff();
                // Let output decide: if the window is still too small for sender SWS
                // avoidance it persists again; without this no timer would be left at all.
                self.queue_output();
            }
            if opened {
                self.queue_output();
            }
        }
    }

    /// SND.UNA < SEG.ACK =< SND.MAX: new data (or our SYN/FIN) acknowledged.
    fn on_new_ack(&mut self, ctx: &mut Ctx<'_>, ack: SeqNum, seg: &TcpRepr<'_>) {
        let acked = ack.offset_from(self.snd_una);

        // RTT measurement: timestamps (RFC 7323 4.1) when a retransmission spoils the timed
        // segment, otherwise the timed segment (Karn's algorithm, RFC 6298 §3).
        let mut sample = None;
        if let Some((end, sent)) = self.rtt_probe {
            if ack.after_eq(end) {
                sample = Some(ctx.now.saturating_duration_since(sent));
                self.rtt_probe = None;
            }
        }
        if sample.is_none() && self.retransmits > 0 {
            if let (Some(_), Some(seg_ts)) = (self.ts, seg.timestamp) {
                let elapsed = self.ts_val(ctx.now).wrapping_sub(seg_ts.tsecr);
                if seg_ts.tsecr != 0 && (elapsed as i32) >= 0 {
                    sample = Some(Duration::from_millis(u64::from(elapsed)));
                }
            }
        }
        // Without a sample the backed-off RTO stays: RFC 6298 §5 lets only a new measurement
        // "collapse" it (Karn's algorithm; Linux keeps icsk_rto likewise).
        if let Some(rtt) = sample {
            self.rtt.sample(rtt, ctx.config.rto_min, ctx.config.rto_max);
        }

        // Drop acknowledged data from the send buffer (a SYN or FIN occupies no buffer byte).
        let data_acked = if ack.after(self.tx_seq) {
            ack.offset_from(self.tx_seq).min(self.tx.len() as u32)
        } else {
            0
        };
        self.tx.consume(data_acked as usize);
        self.tx_seq += data_acked;
        self.snd_una = ack;
        if self.snd_nxt.before(ack) {
            self.snd_nxt = ack;
        }

        // Loss recovery and congestion control (RFC 5681 3.2, RFC 6582 3.2).
        let mss = self.smss();
        if self.in_recovery {
            if ack.after_eq(self.recover) {
                self.in_recovery = false;
                self.cc.on_recovery_exit(self.flight_size(), mss);
            } else {
                // Partial ACK: retransmit the next hole at once, deflate the window.
                self.cc.on_partial_ack(acked, mss);
                self.retransmit_head = true;
                self.queue_output();
            }
        } else {
            self.cc.on_ack(ctx.now, acked, mss);
        }
        self.dupacks = 0;

        // RFC 6298 (5.2)/(5.3): stop the timer when all is acknowledged, else restart it.
        self.retransmits = 0;
        self.rtx_since = None;
        if self.snd_una == self.snd_max {
            self.deadlines.rtx = None;
        } else {
            self.deadlines.rtx = Some(ctx.now + self.rtt.rto(ctx.config.rto_max));
        }
        self.rtx_mode = RtxMode::Retransmit;

        if data_acked > 0 {
            if self.want_writable {
                self.want_writable = false;
                self.notify(ctx.events, Event::Writable(self.handle));
            }
            self.queue_output();
        }
    }

    fn on_dupack(&mut self, ctx: &mut Ctx<'_>) {
        self.dupacks += 1;
        let mss = self.smss();
        if self.in_recovery {
            // RFC 5681 3.2 step 4: each further duplicate means a segment left the network.
            self.cc.on_recovery_dupack(mss);
            self.queue_output();
        } else if self.dupacks == 3 {
            // RFC 6582 3.2 step 2: enter recovery only if the ACK covers more than "recover",
            // which avoids a second window reduction for losses of the same window.
            if self.snd_una.after(self.recover) || self.recover == self.iss {
                self.in_recovery = true;
                self.recover = self.snd_max;
                self.cc.on_fast_retransmit(self.flight_size(), mss);
                self.retransmit_head = true;
                ctx.counters.tcp_fast_retrans += 1;
                if self.sack_ok {
                    ctx.counters.tcp_sack_recovery += 1;
                } else {
                    ctx.counters.tcp_reno_recovery += 1;
                }
                self.queue_output();
            }
        } else if self.dupacks < 3 {
            // RFC 3042 limited transmit: each of the first two duplicates may release one new
            // segment; output allows cwnd + dupacks * MSS while not in recovery.
            self.queue_output();
        }
    }

    /// RFC 9293 3.10.7.4 seventh (segment text) and eighth (FIN).
    fn process_data(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Disposition {
        let fin = seg.flags.contains(TcpFlags::FIN);
        if seg.payload.is_empty() && !fin {
            return Disposition::Keep;
        }
        if !self.state.can_receive() {
            // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent its FIN; ignore the text.
            if !seg.payload.is_empty() {
                ctx.counters.drop(DropReason::Ignored);
            }
            return Disposition::Keep;
        }
        if self.orphan && !seg.payload.is_empty() {
            // Data for a connection the application closed: nobody will read it (Linux's
            // tcp_rcv_state_process answers with a reset, TCPAbortOnData).
            ctx.counters.tcp_abort_on_data += 1;
            self.send_rst_now(ctx);
            return self.close(ctx, CloseReason::Aborted);
        }

        // Trim to [RCV.NXT, RCV.NXT + RCV.WND): "only the new parts are processed".
        let mut seq = seg.seq_number;
        let mut data = seg.payload;
        if seq.before(self.rcv_nxt) {
            let dup = self.rcv_nxt.offset_from(seq) as usize;
            if dup > data.len() {
                data = &[];
            } else {
                if self.sack_ok && dup > 0 {
                    // Partly duplicate: D-SACK the duplicate part (RFC 2883 4.1.2).
                    self.dsack = Some(SackBlock {
                        left: seq,
                        right: self.rcv_nxt,
                    });
                    ctx.counters.tcp_dsack_sent += 1;
                }
                data = &data[dup..];
            }
            seq = self.rcv_nxt;
        }
        let mut fin_in_window = fin;
        let space = self.rcv_wnd();
        let offset = seq.offset_from(self.rcv_nxt);
        if offset as usize + data.len() > space as usize {
            let keep = (space as usize).saturating_sub(offset as usize);
            if keep == 0 && !data.is_empty() {
                // Nothing of it fits (a probe into a zero window): RFC 9293 3.8.6.1, "the
                // receiving TCP ... must still send an acknowledgment showing its next
                // expected sequence number and current window (zero)".
                self.schedule_ack();
            }
            data = &data[..keep.min(data.len())];
            fin_in_window = false;
        }

        if !data.is_empty() {
            if self.rx.capacity() == 0 {
                match ctx.rx_pool.take() {
                    Some(storage) => self.rx = crate::buffer::RingBuffer::from_storage(storage),
                    None => {
                        ctx.counters.drop(DropReason::NoBuffer);
                        return Disposition::Keep;
                    }
                }
            }
            let was_readable = !self.rx.is_empty();
            if offset == 0 {
                self.deliver_in_order(ctx, data);
            } else {
                self.queue_out_of_order(ctx, offset, data);
            }
            if !was_readable && !self.rx.is_empty() {
                self.notify(ctx.events, Event::Readable(self.handle));
            }
        }

        // Eighth: FIN, once everything before it has arrived.
        if fin_in_window {
            let fin_seq = seg.seq_number + seg.payload.len();
            if fin_seq.after_eq(self.rcv_nxt) {
                self.rcv_fin = Some(fin_seq);
            }
        }
        self.try_consume_fin(ctx)
    }

    fn deliver_in_order(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) {
        let written = self.rx.write_at(0, data);
        // Whatever the assembler held right behind the new data becomes in-order too.
        let became_contiguous = if self.ofo.is_empty() {
            written as u32
        } else {
            // Offset 0 never opens a hole, so the assembler always accepts it.
            let _ = self.ofo.add(0, written as u32);
            self.ofo.remove_front()
        };
        self.rx.advance_write(became_contiguous as usize);
        self.rcv_nxt += became_contiguous;

        // RFC 1122 4.2.3.2: ACK at least every second full-sized segment; RFC 5681 4.2: ACK at
        // once when a segment fills (part of) a hole.
        let filled_hole = became_contiguous > written as u32 || !self.ofo.is_empty();
        // "Full-sized" by the segments the peer actually sends (Linux's tcp_measure_rcv_mss):
        // a peer with a smaller MSS than ours still gets an ACK every second segment.
        let len = u16::try_from(written).unwrap_or(u16::MAX);
        self.rcv_mss = self.rcv_mss.max(len.min(self.mss));
        if len >= self.rcv_mss {
            self.segs_unacked += 1;
        }
        if filled_hole || self.segs_unacked >= 2 {
            self.schedule_ack();
        } else if self.deadlines.delack.is_none() {
            self.deadlines.delack = Some(ctx.now + ctx.config.delack_timeout);
        }
    }

    fn queue_out_of_order(&mut self, ctx: &mut Ctx<'_>, offset: u32, data: &[u8]) {
        // RFC 5681 4.2: an out-of-order segment is ACKed at once (the duplicate ACK that drives
        // the sender's fast retransmit), with SACK blocks when negotiated.
        self.schedule_ack();
        // Place the bytes first: write_at clips them to the buffer, and only what was placed
        // may be recorded as received.
        let placed = self.rx.write_at(offset as usize, data);
        if placed == 0 {
            ctx.counters.drop(DropReason::NoBuffer);
            return;
        }
        if self.ofo.add(offset, placed as u32).is_err() {
            ctx.counters.tcp_ofo_drop += 1;
            ctx.counters.drop(DropReason::OfoFull);
            return;
        }
        ctx.counters.tcp_ofo_queue += 1;
    }

    /// Processes a FIN whose sequence number RCV.NXT has reached.
    fn try_consume_fin(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if self.rcv_fin != Some(self.rcv_nxt) {
            return Disposition::Keep;
        }
        self.rcv_fin = None;
        self.rcv_nxt += 1u32;
        self.schedule_ack();
        if !self.peer_closed {
            self.peer_closed = true;
            self.notify(ctx.events, Event::PeerClosed(self.handle));
        }
        match self.state {
            State::SynReceived | State::Established => {
                self.set_state(ctx.counters, State::CloseWait)
            }
            State::FinWait1 => {
                if self.fin_acked() {
                    return Disposition::TimeWait;
                }
                self.set_state(ctx.counters, State::Closing);
            }
            State::FinWait2 => return Disposition::TimeWait,
            _ => {}
        }
        Disposition::Keep
    }

    /// An ACK for an unacceptable segment (RFC 9293 3.10.7.4), throttled per connection when
    /// the segment holds no sequence space (RFC 5961 §10; Linux's `tcp_invalid_ratelimit`).
    /// One with data or a FIN is answered every time, as Linux's `tcp_oow_rate_limited` does:
    /// it cannot be part of an ACK loop, and its sender needs the ACK to stop retransmitting.
    fn send_oow_ack(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) {
        let occupies_space = seg_len(seg) > 0 && !seg.flags.contains(TcpFlags::SYN);
        if !occupies_space && self.oow_rate_limited(ctx) {
            return;
        }
        self.schedule_ack();
    }

    /// A challenge ACK (RFC 5961 §3.2, §4.2), throttled like other out-of-window ACKs.
    fn send_challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if self.oow_rate_limited(ctx) {
            return;
        }
        ctx.counters.tcp_challenge_ack += 1;
        self.schedule_ack();
    }

    fn oow_rate_limited(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if let Some(last) = self.last_oow_ack {
            if ctx.now.saturating_duration_since(last) < ctx.config.invalid_ratelimit {
                return true;
            }
        }
        self.last_oow_ack = Some(ctx.now);
        false
    }

    /// Queues a RST for this connection's current sequence numbers.
    pub(crate) fn send_rst_now(&mut self, ctx: &mut Ctx<'_>) {
        ctx.replies.push_back(Reply {
            tuple: self.tuple,
            seq: self.snd_nxt,
            ack: Some(self.rcv_nxt),
            flags: TcpFlags::RST | TcpFlags::ACK,
            ts: None,
            window: 0,
        });
        ctx.counters.out_rsts += 1;
    }
}

/// SEG.LEN: payload plus one for SYN and one for FIN.
pub(crate) fn seg_len(seg: &TcpRepr<'_>) -> u32 {
    seg.payload.len() as u32
        + u32::from(seg.flags.contains(TcpFlags::SYN))
        + u32::from(seg.flags.contains(TcpFlags::FIN))
}
