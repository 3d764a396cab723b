//! Connection timer expiry: retransmission (RFC 6298 §5, RFC 9293 3.8.3 and RFC 1122 4.2.3.5
//! R1/R2), persist (RFC 9293 3.8.6.1), delayed ACK (RFC 1122 4.2.3.2), keepalive
//! (RFC 1122 4.2.3.6) and the orphaned FIN-WAIT-2 timeout (Linux `tcp_fin_timeout`).

use crate::cc::CongestionControl;
use crate::event::{CloseReason, Event};
use crate::state::State;
use crate::tcb::{Ctx, Disposition, RtxMode, Tcb};
use crate::time::{Duration, Instant};

impl Tcb {
    /// Handles every deadline of this connection that is due at `ctx.now`.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        let now = ctx.now;
        if self.deadlines.delack.is_some_and(|t| t <= now) {
            self.deadlines.delack = None;
            if self.segs_unacked > 0 || self.last_ack_sent != self.rcv_nxt {
                ctx.counters.delayed_acks += 1;
                self.schedule_ack();
            }
        }
        if self.deadlines.rtx.is_some_and(|t| t <= now) {
            self.deadlines.rtx = None;
            let d = match self.rtx_mode {
                RtxMode::Retransmit => self.on_retransmit_timeout(ctx),
                RtxMode::Persist => self.on_persist_timeout(ctx),
            };
            if d != Disposition::Keep {
                return d;
            }
        }
        if self.deadlines.idle.is_some_and(|t| t <= now) {
            self.deadlines.idle = None;
            return self.on_idle_timeout(ctx);
        }
        Disposition::Keep
    }

    fn on_retransmit_timeout(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if self.snd_una == self.snd_max {
            return Disposition::Keep;
        }
        ctx.counters.tcp_timeouts += 1;
        let since = *self.rtx_since.get_or_insert(ctx.now);
        let elapsed = ctx.now.saturating_duration_since(since);

        // Give up? SYN: after syn_retries retransmissions (Linux counts tries, not time, here
        // for simplicity of the schedule: 1+2+4+...). Data: RFC 1122 R2 as a time bound, the
        // way Linux turns tcp_retries2 into one; or the user timeout (RFC 5482).
        let give_up = if self.state == State::SynSent || self.state == State::SynReceived {
            self.retransmits >= ctx.config.syn_retries
        } else if let Some(user_timeout) = self.opts.user_timeout() {
            elapsed >= user_timeout
        } else {
            elapsed >= retries_timeout(ctx.config.retries2, ctx.config.rto_min, ctx.config.rto_max)
        };
        if give_up {
            if self.state == State::SynSent || self.state == State::SynReceived {
                ctx.counters.attempt_fails += 1;
            }
            ctx.counters.tcp_abort_on_timeout += 1;
            if self.state.is_synchronized() {
                self.send_rst_now(ctx);
            }
            return self.close(ctx, CloseReason::TimedOut);
        }

        // RFC 1122 R1: past retries1, tell the application the path may be broken.
        if self.retransmits + 1 == ctx.config.retries1 && self.state.is_synchronized() {
            ctx.counters.tcp_retrans_fail += 1;
            self.notify(ctx.events, Event::DeliveryProblem(self.handle));
        }

        // RFC 5681 (4)/(5) on the first timeout of a series; RFC 6582 §4: recover <- SND.MAX.
        if self.retransmits == 0 {
            self.cc.on_rto(self.flight_size(), self.smss());
        }
        self.in_recovery = false;
        self.recover = self.snd_max;
        self.dupacks = 0;
        // Go back to SND.UNA and resend from there; Karn: nothing in flight can be timed.
        self.snd_nxt = self.snd_una;
        self.rtt_probe = None;
        self.rtt.back_off();
        self.retransmits += 1;
        // RFC 6298 (5.5)-(5.6): back off and restart the timer. The user timeout is a deadline
        // of its own: the timer never runs past it (Linux's tcp_clamp_rto_to_user_timeout).
        let mut next = ctx.now + self.rtt.rto(ctx.config.rto_max);
        if let Some(user_timeout) = self.opts.user_timeout() {
            if self.state.is_synchronized() {
                next = next.min(since + user_timeout);
            }
        }
        self.deadlines.rtx = Some(next);
        self.queue_output();
        Disposition::Keep
    }

    fn on_persist_timeout(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if self.snd_wnd > 0 || (self.tx.is_empty() && !self.fin_queued) {
            // A window that is open but too small for sender SWS avoidance: this expiry is the
            // override timeout of RFC 9293 3.8.6.2.1 (4), send what fits (Linux's
            // tcp_write_wakeup, "must have been a result SWS avoidance").
            self.sws_override = self.snd_wnd > 0;
            self.rtx_mode = RtxMode::Retransmit;
            self.queue_output();
            return Disposition::Keep;
        }
        // Linux's tcp_probe_timer: a peer that answers probes keeps the connection alive
        // forever; one that stays silent for retries2 probes is given up.
        if self.probes >= ctx.config.retries2 {
            ctx.counters.tcp_abort_on_timeout += 1;
            self.send_rst_now(ctx);
            return self.close(ctx, CloseReason::TimedOut);
        }
        self.probes += 1;
        ctx.counters.tcp_win_probe += 1;
        self.probe_pending = true;
        self.rtt.back_off();
        self.deadlines.rtx = Some(ctx.now + self.rtt.rto(ctx.config.rto_max));
        self.queue_output();
        Disposition::Keep
    }

    fn on_idle_timeout(&mut self, ctx: &mut Ctx<'_>) -> Disposition {
        if self.state == State::FinWait2 && self.orphan {
            // Linux: with tcp_fin_timeout not above the TIME-WAIT length, an orphan that waited
            // in vain for the peer's FIN is reset and destroyed.
            ctx.counters.tcp_abort_on_timeout += 1;
            self.send_rst_now(ctx);
            return self.close(ctx, CloseReason::TimedOut);
        }
        self.arm_keepalive(ctx.now);
        let ka = self.opts.keepalive();
        if !ka.enabled || self.deadlines.idle.is_some_and(|t| t > ctx.now) {
            return Disposition::Keep;
        }
        // Idle long enough (and nothing in flight, or arm_keepalive would have deferred):
        // probe, or give up after `probes` unanswered ones (RFC 1122 4.2.3.6).
        if self.probes >= ka.probes {
            ctx.counters.tcp_abort_on_timeout += 1;
            self.send_rst_now(ctx);
            return self.close(ctx, CloseReason::TimedOut);
        }
        self.probes += 1;
        ctx.counters.tcp_keep_alive += 1;
        self.probe_pending = true;
        self.deadlines.idle = Some(ctx.now + ka.interval);
        self.queue_output();
        Disposition::Keep
    }

    /// Sets the keepalive deadline from the last segment received: the first probe goes
    /// `keepalive_time` after it, later ones every `keepalive_intvl`.
    pub(crate) fn arm_keepalive(&mut self, now: Instant) {
        let ka = self.opts.keepalive();
        if !ka.enabled || !matches!(self.state, State::Established | State::CloseWait) {
            if self.state != State::FinWait2 {
                self.deadlines.idle = None;
            }
            return;
        }
        if self.snd_una != self.snd_max || !self.tx.is_empty() {
            // Data in flight is watched by the retransmission timer (Linux defers likewise).
            self.deadlines.idle = Some(now + ka.time);
            return;
        }
        let first = self.last_recv + ka.time;
        self.deadlines.idle = Some(if self.probes == 0 {
            first
        } else {
            (self.last_recv + ka.time + ka.interval * self.probes).max(now)
        });
    }
}

/// The time a connection keeps retransmitting before giving up after `retries` timeouts, the
/// way Linux's `tcp_model_timeout` computes it from `tcp_retries2`: the RTO doubles from
/// `rto_min` until it reaches `rto_max`, then stays there.
pub fn retries_timeout(retries: u32, rto_min: Duration, rto_max: Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut rto = rto_min;
    for _ in 0..=retries {
        total += rto;
        rto = (rto * 2).min(rto_max);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries2_default_is_linuxs_924_seconds() {
        // Linux: ((2 << 9) - 1) * 200 ms + (15 - 9) * 120 s = 924.6 s for tcp_retries2 = 15.
        let t = retries_timeout(15, Duration::from_millis(200), Duration::from_secs(120));
        assert_eq!(t, Duration::from_millis(924_600));
    }
}
