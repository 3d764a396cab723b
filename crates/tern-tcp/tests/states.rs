//! Scenario tests for every RFC 9293 state and transition, written as traces: the test plays
//! the peer, the shard answers.

mod harness;

use harness::{config, ms, secs, Harness, Seg, PEER, US};
use tern_tcp::{CloseReason, Event, State, TcpConfig};
use tern_wire::TcpFlags;

const SA: TcpFlags = TcpFlags::SYN.union(TcpFlags::ACK);
const A: TcpFlags = TcpFlags::ACK;
const FA: TcpFlags = TcpFlags::FIN.union(TcpFlags::ACK);
const RA: TcpFlags = TcpFlags::RST.union(TcpFlags::ACK);

#[test]
fn passive_open_listen_syn_received_established() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000).ws(7).sack_perm());
    let synack = h.recv_one();
    assert!(synack.is(SA), "{synack:?}");
    assert_eq!(synack.ack, Some(1001));
    assert_eq!(synack.mss, Some(1460));
    assert_eq!(
        synack.ws,
        Some(2),
        "128 KiB of rmem needs a shift of 2 to fit 16 bits"
    );
    assert!(synack.sack_perm);
    assert_eq!(synack.wnd, 65_535, "a SYN-ACK's window is unscaled");
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    assert_eq!(
        h.shard.connection_count(),
        0,
        "SYN-RECEIVED is a compact request, not a connection"
    );

    h.send(Seg::ack(1001, synack.seq + 1));
    h.recv_none();
    assert_eq!(h.events(), vec![Event::Acceptable(l)]);
    let info = h.shard.listener_info(l).unwrap();
    assert_eq!((info.syn_queue, info.accept_queue), (0, 1));
    let conn = h.shard.accept(l).unwrap();
    let i = h.shard.info(conn).unwrap();
    assert_eq!(i.state, State::Established);
    assert_eq!((i.snd_wscale, i.rcv_wscale, i.sack), (7, 2, true));
    assert_eq!(i.tuple.remote(), PEER);
    assert_eq!(h.shard.counters().passive_opens, 1);
    assert_eq!(h.shard.counters().curr_estab, 1);
}

#[test]
fn active_open_syn_sent_established() {
    let mut h = Harness::new(config());
    let conn = h.shard.connect(h.now, US, PEER).unwrap();
    let syn = h.recv_one();
    assert!(syn.is(TcpFlags::SYN), "{syn:?}");
    assert_eq!(
        (syn.mss, syn.ws, syn.sack_perm),
        (Some(1460), Some(2), true)
    );
    assert_eq!(h.shard.info(conn).unwrap().state, State::SynSent);

    h.send(Seg::syn_ack(5000, syn.seq + 1).ws(2).sack_perm());
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!((ack.seq, ack.ack), (syn.seq + 1, Some(5001)));
    assert_eq!(h.events(), vec![Event::Connected(conn)]);
    let i = h.shard.info(conn).unwrap();
    assert_eq!(
        (i.state, i.snd_wscale, i.sack),
        (State::Established, 2, true)
    );
    assert_eq!(h.shard.counters().active_opens, 1);
}

#[test]
fn options_are_off_unless_both_sides_offer_them() {
    let mut h = Harness::new(config());
    let conn = h.shard.connect(h.now, US, PEER).unwrap();
    let syn = h.recv_one();
    h.send(Seg::syn_ack(5000, syn.seq + 1).no_mss());
    h.recv_one();
    let i = h.shard.info(conn).unwrap();
    // RFC 7323 2.2: no window scale option from the peer means no scaling either way.
    assert_eq!((i.snd_wscale, i.rcv_wscale, i.sack), (0, 0, false));
    // RFC 9293 3.7.1: no MSS option means 536.
    assert_eq!(i.mss, 536);
}

#[test]
fn syn_retransmissions_back_off_then_the_connect_times_out() {
    let mut h = Harness::new(config());
    let start = h.now;
    let conn = h.shard.connect(h.now, US, PEER).unwrap();
    h.recv_one();
    let sent = h.advance(secs(200));
    let at: Vec<u64> = sent.iter().map(|(t, _)| (*t - start).as_millis()).collect();
    // tcp_syn_retries = 6: retransmissions after 1, 3, 7, 15, 31, 63 s; failure at 127 s.
    assert_eq!(at, vec![1_000, 3_000, 7_000, 15_000, 31_000, 63_000]);
    assert!(sent.iter().all(|(_, s)| s.is(TcpFlags::SYN)));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::TimedOut)]);
    assert_eq!(h.shard.connection_count(), 0);
    assert_eq!(h.shard.counters().attempt_fails, 1);
    assert_eq!(h.shard.counters().retrans_segs, 6);
}

#[test]
fn rst_to_a_syn_means_refused() {
    let mut h = Harness::new(config());
    let conn = h.shard.connect(h.now, US, PEER).unwrap();
    let syn = h.recv_one();
    // A RST without an acceptable ACK is ignored in SYN-SENT (RFC 9293 3.10.7.3).
    h.send(Seg {
        ack: None,
        ..Seg::rst(0)
    });
    assert!(h.events().is_empty());
    h.send(Seg {
        ack: Some(syn.seq + 1),
        flags: RA,
        ..Seg::rst(0)
    });
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::Refused)]);
}

#[test]
fn simultaneous_open_goes_through_syn_received() {
    let mut h = Harness::new(config());
    let conn = h.shard.connect(h.now, US, PEER).unwrap();
    let syn = h.recv_one();
    // The peer's SYN crosses ours.
    h.send(Seg::syn(7000));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    assert_eq!(
        (synack.seq, synack.ack),
        (syn.seq, Some(7001)),
        "same ISS, now acknowledging"
    );
    assert_eq!(h.shard.info(conn).unwrap().state, State::SynReceived);
    // The peer's SYN-ACK for our SYN completes it.
    h.send(Seg::syn_ack(7000, syn.seq + 1));
    // A SYN in SYN-RECEIVED of a simultaneous open is a challenge (synchronized-state rule);
    // the plain ACK completes the handshake.
    h.recv();
    h.send(Seg::ack(7001, syn.seq + 1));
    assert_eq!(h.shard.info(conn).unwrap().state, State::Established);
    assert!(h.events().contains(&Event::Connected(conn)));
}

#[test]
fn syn_to_a_closed_port_gets_rst_ack_and_ack_gets_rst() {
    let mut h = Harness::new(config());
    h.send(Seg::syn(1000));
    let rst = h.recv_one();
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    assert!(rst.is(RA));
    assert_eq!((rst.seq, rst.ack), (0, Some(1001)));
    h.send(Seg::ack(1001, 777));
    let rst = h.recv_one();
    // <SEQ=SEG.ACK><CTL=RST>
    assert!(rst.is(TcpFlags::RST));
    assert_eq!(rst.seq, 777);
    // A RST is never answered.
    h.send(Seg::rst(5));
    h.recv_none();
    assert_eq!(h.shard.counters().out_rsts, 2);
}

#[test]
fn in_order_data_is_acked_late_unless_two_full_segments_arrive() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"hello"));
    h.recv_none();
    assert_eq!(h.events(), vec![Event::Readable(conn)]);
    // RFC 1122 4.2.3.2: the delayed ACK goes out after the 40 ms delay.
    let sent = h.advance(ms(39));
    assert!(sent.is_empty());
    let sent = h.advance(ms(1));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.ack, Some(1006));
    assert_eq!(h.shard.counters().delayed_acks, 1);
    assert_eq!(h.read_all(conn), b"hello");

    // Two full-sized segments: ACK at once.
    let big = vec![7u8; 1460];
    h.send(Seg::data(1006, iss + 1, &big));
    h.recv_none();
    h.send(Seg::data(1006 + 1460, iss + 1, &big));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(1006 + 2920));
}

#[test]
fn out_of_order_data_is_acked_at_once_with_sack_and_holes_fill() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000).sack_perm());
    let iss = h.recv_one().seq;
    h.send(Seg::ack(1001, iss + 1));
    let conn = h.shard.accept(l).unwrap();
    h.send(Seg::data(1011, iss + 1, b"world"));
    let dup = h.recv_one();
    assert_eq!(dup.ack, Some(1001), "duplicate ACK for the hole");
    assert_eq!(dup.sack, vec![(1011, 1016)]);
    h.send(Seg::data(1001, iss + 1, b"0123456789"));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(1016), "filling the hole is ACKed at once");
    assert!(ack.sack.is_empty());
    assert_eq!(h.read_all(conn), b"0123456789world");
    assert_eq!(h.shard.counters().tcp_ofo_queue, 1);
}

#[test]
fn duplicate_data_gets_a_dsack() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000).sack_perm());
    let iss = h.recv_one().seq;
    h.send(Seg::ack(1001, iss + 1));
    h.shard.accept(l).unwrap();
    h.send(Seg::data(1001, iss + 1, b"abc"));
    h.advance(ms(40));
    h.send(Seg::data(1001, iss + 1, b"abc"));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(1004));
    assert_eq!(
        ack.sack,
        vec![(1001, 1004)],
        "RFC 2883 D-SACK names the duplicate"
    );
}

#[test]
fn active_close_fin_wait_1_fin_wait_2_time_wait() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.close(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    assert_eq!(fin.seq, iss + 1);
    assert_eq!(h.shard.info(conn).unwrap().state, State::FinWait1);
    h.send(Seg::ack(1001, iss + 2));
    assert_eq!(h.shard.info(conn).unwrap().state, State::FinWait2);
    h.send(Seg::fin(1001, iss + 2));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!((ack.seq, ack.ack), (iss + 2, Some(1002)));
    assert_eq!(h.shard.connection_count(), 0);
    assert_eq!(h.shard.timewait_count(), 1);
    assert!(
        h.shard.info(conn).is_err(),
        "the handle is gone once in TIME-WAIT"
    );

    // A retransmitted FIN is ACKed again.
    h.send(Seg::fin(1001, iss + 2));
    assert_eq!(h.recv_one().ack, Some(1002));
    // 2 x MSL = 120 s after the last FIN, the entry is gone.
    h.advance(secs(119));
    assert_eq!(h.shard.timewait_count(), 1);
    h.advance(secs(1));
    assert_eq!(h.shard.timewait_count(), 0);
    // Then the tuple is closed: an ACK gets a RST.
    h.send(Seg::ack(1002, iss + 2));
    assert!(h.recv_one().is(TcpFlags::RST));
}

#[test]
fn passive_close_close_wait_last_ack_closed() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"bye").with_flags(TcpFlags::FIN));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(1005), "data and FIN acknowledged at once");
    assert_eq!(h.shard.info(conn).unwrap().state, State::CloseWait);
    assert_eq!(
        h.events(),
        vec![Event::Readable(conn), Event::PeerClosed(conn)]
    );
    assert_eq!(h.read_all(conn), b"bye");
    let mut buf = [0u8; 8];
    assert_eq!(h.shard.recv(h.now, conn, &mut buf), Ok(0), "end of stream");

    // Half-closed: we may still send.
    h.shard.send(h.now, conn, b"last words").unwrap();
    let data = h.recv_one();
    assert_eq!(data.payload, b"last words");
    h.shard.shutdown(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    assert_eq!(fin.seq, iss + 1 + 10);
    assert_eq!(h.shard.info(conn).unwrap().state, State::LastAck);
    h.send(Seg::ack(1005, iss + 12));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::Normal)]);
    assert_eq!(h.shard.connection_count(), 0);
    assert_eq!(
        h.shard.timewait_count(),
        0,
        "the passive closer skips TIME-WAIT"
    );
    assert_eq!(h.shard.counters().curr_estab, 0);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.shutdown(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    // The peer's FIN crosses ours, not acknowledging it.
    h.send(Seg::fin(1001, iss + 1));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(1002));
    assert_eq!(h.shard.info(conn).unwrap().state, State::Closing);
    h.send(Seg::ack(1002, iss + 2));
    assert_eq!(h.shard.timewait_count(), 1);
    assert!(h
        .events()
        .contains(&Event::Closed(conn, CloseReason::Normal)));
}

#[test]
fn fin_wait_2_of_an_orphan_times_out_but_a_half_closed_socket_waits() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.shutdown(h.now, conn).unwrap();
    h.recv_one();
    h.send(Seg::ack(1001, iss + 2));
    assert_eq!(h.shard.info(conn).unwrap().state, State::FinWait2);
    h.advance(secs(300));
    assert_eq!(
        h.shard.info(conn).unwrap().state,
        State::FinWait2,
        "shutdown() waits for the peer"
    );
    // Once closed (orphaned), fin_timeout (60 s) applies and ends it with a RST.
    h.shard.close(h.now, conn).unwrap();
    let sent = h.advance(secs(59));
    assert!(sent.is_empty());
    let sent = h.advance(secs(1));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.flags.contains(TcpFlags::RST));
    assert_eq!(h.shard.connection_count(), 0);
}

#[test]
fn fin_wait_2_keeps_receiving_data() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.shutdown(h.now, conn).unwrap();
    h.recv_one();
    h.send(Seg::ack(1001, iss + 2));
    h.send(Seg::data(1001, iss + 2, b"more"));
    h.advance(ms(40));
    assert_eq!(h.read_all(conn), b"more");
    h.send(Seg::fin(1005, iss + 2));
    assert_eq!(h.recv_one().ack, Some(1006));
    assert_eq!(h.shard.timewait_count(), 1);
}

#[test]
fn close_with_unread_data_resets() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"unread"));
    h.shard.close(h.now, conn).unwrap();
    let rst = h.recv_one();
    assert!(rst.is(RA), "{rst:?}");
    assert_eq!((rst.seq, rst.ack), (iss + 1, Some(1007)));
    assert_eq!(h.shard.counters().tcp_abort_on_close, 1);
    assert_eq!(h.shard.connection_count(), 0);
}

#[test]
fn abort_sends_rst_and_frees_everything() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, &[1; 5000]).unwrap();
    h.recv();
    assert!(h.shard.buffers_in_use() > 0);
    h.shard.abort(h.now, conn).unwrap();
    let rst = h.recv_one();
    assert!(rst.flags.contains(TcpFlags::RST));
    assert_eq!(rst.ack, Some(1001));
    assert_eq!(h.shard.connection_count(), 0);
    assert_eq!(h.shard.buffers_in_use(), 0);
    let _ = iss;
}

#[test]
fn exact_rst_resets_in_window_rst_is_challenged_and_others_dropped() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    // Out of window: silently dropped.
    h.send(Seg::rst(1001 + 1_000_000));
    h.recv_none();
    // In window but not RCV.NXT: challenge ACK (RFC 5961 3.2).
    h.send(Seg::rst(1002));
    let challenge = h.recv_one();
    assert!(challenge.is(A));
    assert_eq!((challenge.seq, challenge.ack), (iss + 1, Some(1001)));
    assert_eq!(h.shard.counters().tcp_challenge_ack, 1);
    assert_eq!(h.shard.info(conn).unwrap().state, State::Established);
    // Exactly RCV.NXT: reset.
    h.send(Seg::rst(1001));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::Reset)]);
    assert_eq!(h.shard.counters().estab_resets, 1);
}

#[test]
fn syn_on_an_established_connection_gets_a_challenge_ack() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::syn(5_000_000));
    let challenge = h.recv_one();
    assert!(challenge.is(A));
    assert_eq!(challenge.ack, Some(1001));
    assert_eq!(h.shard.info(conn).unwrap().state, State::Established);
    // Challenge ACKs are throttled per connection (tcp_invalid_ratelimit, 500 ms).
    h.send(Seg::syn(5_000_000));
    h.recv_none();
    h.advance(ms(500));
    h.send(Seg::syn(5_000_000));
    assert_eq!(h.recv_one().ack, Some(1001));
    assert_eq!(h.shard.counters().tcp_syn_challenge, 3);
    let _ = iss;
}

#[test]
fn ack_for_unsent_data_is_answered_and_dropped() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 100, b"x"));
    let ack = h.recv_one();
    assert_eq!(
        (ack.seq, ack.ack),
        (iss + 1, Some(1001)),
        "the data was not accepted"
    );
    assert!(h.read_all(conn).is_empty());
}

#[test]
fn config_validation_names_the_key() {
    let bad = TcpConfig {
        delack_timeout: secs(1),
        ..TcpConfig::default()
    };
    let err = tern_tcp::Shard::new(bad, [0; 32], tern_tcp::Instant::ZERO).unwrap_err();
    assert_eq!(err.key, "delack_timeout");
    assert!(err.to_string().contains("500 ms"));
}

#[test]
fn an_ipv6_peer_without_mss_option_gets_1220() {
    let mut h = Harness::new(config());
    h.us = harness::US6;
    h.peer = harness::PEER6;
    let conn = h.shard.connect(h.now, h.us, h.peer).unwrap();
    let syn = h.recv_one();
    assert_eq!(
        syn.mss,
        Some(1440),
        "IPv6 announces 20 bytes less than IPv4 on the same link"
    );
    h.send(Seg::syn_ack(5000, syn.seq + 1).no_mss());
    h.recv_one();
    // RFC 9293 MUST-15: without an MSS option, assume 1220 (1280 - 60) for IPv6.
    assert_eq!(h.shard.info(conn).unwrap().mss, 1220);
}
