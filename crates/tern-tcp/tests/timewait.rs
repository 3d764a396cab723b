//! TIME-WAIT (RFC 9293 3.10.7.4 "TIME-WAIT STATE"): 2 × MSL restarted by a retransmitted FIN,
//! reuse by a new SYN (RFC 6191), the `max_tw_buckets` bound, and TIME-WAIT assassination by
//! RST (Linux's default, tcp_rfc1337 = 0).

mod harness;

use harness::{config, config_ts, ms, secs, Harness, Seg, A, FA, PEER2, R, SA};
use tern_tcp::{ListenerId, TcpConfig};

/// Opens a passive connection from [`Harness::peer`] and closes it actively: we FIN first,
/// the peer ACKs and FINs, we ACK and enter TIME-WAIT. Returns our ISS (our FIN is
/// ISS + 1, the peer's is 1001).
fn into_timewait(h: &mut Harness, l: ListenerId) -> u32 {
    let (conn, iss) = h.open_passive(l);
    h.shard.close(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    h.send(Seg::ack(1001, iss + 2));
    h.send(Seg::fin(1001, iss + 2));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!((ack.seq, ack.ack), (iss + 2, Some(1002)));
    iss
}

#[test]
fn time_wait_lasts_two_msl_and_a_retransmitted_fin_restarts_it() {
    let (mut h, l) = Harness::listening(config());
    let iss = into_timewait(&mut h, l);
    let last_ack = h.sent.last().unwrap().1.seg.clone();
    assert_eq!((h.shard.timewait_count(), h.counters().tw), (1, 1));
    h.advance(secs(50));
    // Our last ACK was lost: the peer's FIN again. ACK it again (the same ACK, window
    // included, as Linux's tw_rcv_wnd), and wait 2 × MSL from now.
    h.send(Seg::fin(1001, iss + 2));
    let ack = h.recv_one();
    assert_eq!(ack, last_ack);
    h.advance(secs(119) + ms(999));
    assert_eq!(
        h.shard.timewait_count(),
        1,
        "120 s after the FIN, not after entering"
    );
    h.advance(ms(1));
    assert_eq!(h.shard.timewait_count(), 0);
}

#[test]
fn a_syn_with_a_higher_sequence_number_reuses_the_tuple() {
    let (mut h, l) = Harness::listening(config());
    let iss = into_timewait(&mut h, l);
    // RFC 6191 without timestamps: an old SYN (at or below the old connection's RCV.NXT) is
    // answered from TIME-WAIT with an ACK for the old connection...
    h.send(Seg::syn(900));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!((ack.seq, ack.ack), (iss + 2, Some(1002)));
    assert_eq!(h.shard.timewait_count(), 1);
    // ...a SYN beyond it starts a new connection at once.
    h.send(Seg::syn(5000));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    assert_eq!(synack.ack, Some(5001));
    assert_eq!(h.shard.timewait_count(), 0);
    assert_eq!(h.counters().tw_recycled, 1);
    h.send(Seg::ack(5001, synack.seq + 1));
    assert!(h.shard.accept(l).is_some());
}

#[test]
fn with_timestamps_the_syns_tsval_decides_reuse() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(1_000, 0));
    h.shard.close(h.now, o.conn).unwrap();
    h.recv_one();
    h.send(Seg::ack(1001, o.iss + 2).ts(1_010, 0));
    h.send(Seg::fin(1001, o.iss + 2).ts(1_020, 0));
    h.recv_one();
    assert_eq!(h.shard.timewait_count(), 1);

    // A higher sequence number but an older TSval: an old duplicate (RFC 6191), answered with
    // an ACK that carries timestamps like every segment of the old connection (RFC 7323 3.2).
    h.advance(ms(5));
    h.send(Seg::syn(9000).ts(900, 0));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!(ack.ack, Some(1002));
    assert_eq!(ack.ts, Some((h.tsval(o.ts_offset), 1_020)));
    assert_eq!(h.counters().tw_recycled, 0);

    // A newer TSval reuses the tuple even with a lower sequence number.
    h.send(Seg::syn(500).ts(2_000, 0));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    assert_eq!((synack.ack, synack.tsecr()), (Some(501), 2_000));
    assert_eq!(h.counters().tw_recycled, 1);
}

#[test]
fn a_syn_without_timestamps_into_a_timestamped_time_wait_is_judged_by_its_sequence_number() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(1_000, 0));
    h.shard.close(h.now, o.conn).unwrap();
    h.recv_one();
    h.send(Seg::ack(1001, o.iss + 2).ts(1_010, 0));
    h.send(Seg::fin(1001, o.iss + 2).ts(1_020, 0));
    h.recv_one();
    // RFC 6191: "If TCP Timestamps would not be enabled for the new incarnation of the
    // connection, but the sequence number of the incoming SYN segment is greater than the last
    // sequence number seen in the previous incarnation", honour it (Linux likewise).
    h.send(Seg::syn(900));
    assert!(
        h.recv_one().is(A),
        "an old one is still answered from TIME-WAIT"
    );
    h.send(Seg::syn(5000));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    assert_eq!((synack.ack, synack.ts), (Some(5001), None));
    assert_eq!(h.counters().tw_recycled, 1);
}

#[test]
fn past_max_tw_buckets_a_connection_skips_time_wait() {
    let cfg = TcpConfig {
        max_tw_buckets: 1,
        ..config()
    };
    let (mut h, l) = Harness::listening(cfg);
    into_timewait(&mut h, l);
    // A second connection from another host closes the same way: its final ACK still goes,
    // but there is no room to remember it.
    h.peer = PEER2;
    let iss2 = into_timewait(&mut h, l);
    assert_eq!(h.shard.timewait_count(), 1);
    assert_eq!(h.counters().tw, 1);
    assert_eq!(h.counters().tcp_time_wait_overflow, 1);
    assert_eq!(h.shard.connection_count(), 0);
    // Its tuple is closed: a retransmitted FIN now meets the listener and gets a RST
    // (<SEQ=SEG.ACK><CTL=RST>).
    h.send(Seg::fin(1001, iss2 + 2));
    let rst = h.recv_one();
    assert!(rst.is(R));
    assert_eq!(rst.seq, iss2 + 2);
}

#[test]
fn a_rst_at_rcv_nxt_ends_time_wait_early() {
    let (mut h, l) = Harness::listening(config());
    into_timewait(&mut h, l);
    // Not exactly at RCV.NXT: ignored.
    h.send(Seg::rst(1003));
    h.recv_none();
    assert_eq!(h.shard.timewait_count(), 1);
    // At RCV.NXT: TIME-WAIT assassination, which Linux allows by default (tcp_rfc1337 = 0).
    h.send(Seg::rst(1002));
    h.recv_none();
    assert_eq!(h.shard.timewait_count(), 0);
}

#[test]
fn only_the_side_that_closes_first_waits_in_time_wait() {
    // Only the side that closes first waits in TIME-WAIT (RFC 9293 3.6).
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::fin(1001, iss + 1));
    h.recv_one();
    h.shard.close(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    h.send(Seg::ack(1002, iss + 2));
    assert_eq!((h.shard.timewait_count(), h.counters().tw), (0, 0));
    assert_eq!(h.shard.connection_count(), 0);
}
