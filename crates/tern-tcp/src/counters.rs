//! Per-shard counters, named as Linux's `nstat` names them so operators' alerts carry over, and
//! the reasons a segment is dropped, which double as indices into a drop-counter array.
//!
//! Counters are plain `u64`s owned by one shard (one worker thread): no atomics on the fast path.
//! A daemon sums the shards' snapshots.

macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident => $name:literal, )*) => {
        /// Event counts of one shard (Linux `nstat` names in [`Counters::NAMES`]).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: u64, )*
            /// Segments dropped, indexed by [`DropReason::index`].
            pub drops: [u64; DropReason::COUNT],
        }

        impl Counters {
            /// The `nstat` name of every counter field, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// Every counter with its `nstat` name, then every drop reason with its name.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( ($name, self.$field) ),*]
                    .into_iter()
                    .chain(DropReason::ALL.iter().map(|r| (r.name(), self.drops[r.index()])))
            }

            /// Adds another shard's counts to these.
            pub fn merge(&mut self, other: &Counters) {
                $( self.$field += other.$field; )*
                for (a, b) in self.drops.iter_mut().zip(other.drops) {
                    *a += b;
                }
            }
        }
    };
}

counters! {
    /// Connections that went SYN-SENT (active opens).
    active_opens => "ActiveOpens",
    /// Connections that went SYN-RECEIVED → ESTABLISHED from a listener (passive opens).
    passive_opens => "PassiveOpens",
    /// Failed connection attempts: SYN-SENT/SYN-RECEIVED → CLOSED, or SYN-RECEIVED → LISTEN.
    attempt_fails => "AttemptFails",
    /// Resets received in ESTABLISHED or CLOSE-WAIT.
    estab_resets => "EstabResets",
    /// Connections in ESTABLISHED or CLOSE-WAIT now (a gauge).
    curr_estab => "CurrEstab",
    /// Segments received, including those dropped.
    in_segs => "InSegs",
    /// Segments sent, excluding retransmissions.
    out_segs => "OutSegs",
    /// Segments retransmitted.
    retrans_segs => "RetransSegs",
    /// Segments received with errors (bad checksum, malformed header or options).
    in_errs => "InErrs",
    /// Resets sent.
    out_rsts => "OutRsts",
    /// Retransmission timeouts that fired.
    tcp_timeouts => "TCPTimeouts",
    /// Challenge ACKs sent (RFC 5961).
    tcp_challenge_ack => "TCPChallengeACK",
    /// SYNs in a synchronized state answered with a challenge ACK (RFC 5961 §4).
    tcp_syn_challenge => "TCPSYNChallenge",
    /// Segments dropped by PAWS on an established connection.
    paws_estab => "PAWSEstab",
    /// Connections aborted because retransmissions or probes went unanswered.
    tcp_abort_on_timeout => "TCPAbortOnTimeout",
    /// Connections reset because data arrived after the application closed them.
    tcp_abort_on_data => "TCPAbortOnData",
    /// Connections reset because the application closed them with unread data.
    tcp_abort_on_close => "TCPAbortOnClose",
    /// Connections aborted by the application (`abort`, like SO_LINGER 0).
    tcp_abort_on_linger => "TCPAbortOnLinger",
    /// Delayed ACKs sent by the delayed-ACK timer.
    delayed_acks => "DelayedACKs",
    /// Fast retransmits (RFC 5681 3.2).
    tcp_fast_retrans => "TCPFastRetrans",
    /// Fast recoveries entered with NewReno (no SACK scoreboard).
    tcp_reno_recovery => "TCPRenoRecovery",
    /// Fast recoveries entered on a connection that negotiated SACK.
    tcp_sack_recovery => "TCPSackRecovery",
    /// Out-of-order segments queued.
    tcp_ofo_queue => "TCPOFOQueue",
    /// Out-of-order segments dropped because the assembler was full.
    tcp_ofo_drop => "TCPOFODrop",
    /// D-SACK blocks sent for duplicate data (RFC 2883).
    tcp_dsack_sent => "TCPDSACKOldSent",
    /// Retransmissions that went unanswered past `retries1`: "delivery problem" events.
    tcp_retrans_fail => "TCPRetransFail",
    /// Zero-window probes sent.
    tcp_win_probe => "TCPWinProbe",
    /// Keepalive probes sent.
    tcp_keep_alive => "TCPKeepAlive",
    /// Connections that entered TIME-WAIT.
    tw => "TW",
    /// TIME-WAIT entries recycled by a new SYN (RFC 6191).
    tw_recycled => "TWRecycled",
    /// Connections that skipped TIME-WAIT because `max_tw_buckets` was reached.
    tcp_time_wait_overflow => "TCPTimeWaitOverflow",
    /// SYNs or final ACKs dropped because a listener's accept queue was full.
    listen_overflows => "ListenOverflows",
    /// SYNs or final ACKs dropped by a listener for any reason (overflows included).
    listen_drops => "ListenDrops",
    /// SYNs dropped because the SYN queue was full and SYN cookies were off.
    tcp_req_q_full_drop => "TCPReqQFullDrop",
    /// SYNs answered with a cookie because the SYN queue was full.
    tcp_req_q_full_do_cookies => "TCPReqQFullDoCookies",
    /// SYN-ACKs sent with a SYN cookie.
    syncookies_sent => "SyncookiesSent",
    /// ACKs that completed a connection with a valid SYN cookie.
    syncookies_recv => "SyncookiesRecv",
    /// ACKs to a listener whose cookie did not validate (forged, or expired).
    syncookies_failed => "SyncookiesFailed",
    /// Acknowledgments for data not yet sent (RFC 9293 3.10.7.4: ACK and drop).
    tcp_ack_unsent => "TCPACKUnsentData",
}

/// Why the engine dropped a segment. The value is its index in [`Counters::drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// The frame did not parse or its checksum failed (see the wire error).
    Malformed,
    /// Not acceptable under RFC 9293 3.10.7.4 (outside the receive window).
    OutOfWindow,
    /// Rejected by PAWS (RFC 7323 §5).
    Paws,
    /// A RST that was not exactly at RCV.NXT (RFC 5961 §3).
    BadRst,
    /// An ACK outside [SND.UNA − MAX.SND.WND, SND.NXT] (RFC 5961 §5).
    BadAck,
    /// A SYN in a synchronized state (answered with a challenge ACK).
    SynInWindow,
    /// A segment without ACK on a synchronized connection (RFC 9293: drop).
    NoAck,
    /// Out-of-order data the assembler had no room for.
    OfoFull,
    /// No receive buffer could be lent.
    NoBuffer,
    /// A segment for a connection in a state that ignores it (e.g. data after FIN).
    Ignored,
    /// A segment for no connection and no listener that gets no RST (it was itself a RST).
    NoSocket,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 11;
    /// Every reason, in index order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::OutOfWindow,
        DropReason::Paws,
        DropReason::BadRst,
        DropReason::BadAck,
        DropReason::SynInWindow,
        DropReason::NoAck,
        DropReason::OfoFull,
        DropReason::NoBuffer,
        DropReason::Ignored,
        DropReason::NoSocket,
    ];

    /// Index into [`Counters::drops`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "DropMalformed",
            DropReason::OutOfWindow => "DropOutOfWindow",
            DropReason::Paws => "DropPaws",
            DropReason::BadRst => "DropBadRst",
            DropReason::BadAck => "DropBadAck",
            DropReason::SynInWindow => "DropSynInWindow",
            DropReason::NoAck => "DropNoAck",
            DropReason::OfoFull => "DropOfoFull",
            DropReason::NoBuffer => "DropNoBuffer",
            DropReason::Ignored => "DropIgnored",
            DropReason::NoSocket => "DropNoSocket",
        }
    }
}

impl Counters {
    /// Counts a dropped segment.
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_index_their_own_slot() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: std::collections::HashSet<_> =
            DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn iter_names_every_counter_and_merge_adds() {
        let mut a = Counters {
            in_segs: 3,
            ..Counters::default()
        };
        a.drop(DropReason::Paws);
        let mut b = a.clone();
        b.merge(&a);
        let get = |c: &Counters, n: &str| c.iter().find(|(k, _)| *k == n).unwrap().1;
        assert_eq!(get(&b, "InSegs"), 6);
        assert_eq!(get(&b, "DropPaws"), 2);
        assert_eq!(b.iter().count(), Counters::NAMES.len() + DropReason::COUNT);
    }
}
