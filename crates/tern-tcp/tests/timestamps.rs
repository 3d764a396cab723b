//! RFC 7323 timestamps: negotiation, TSval/TSecr on every segment, TS.Recent updates (4.3),
//! PAWS (5), and the segments PAWS must not drop.

mod harness;

use harness::{config_ts, ms, secs, Harness, Seg, A, FA, SA};
use tern_tcp::{CloseReason, ConnError, DropReason, Event, TcpConfig};

#[test]
fn a_passive_open_echoes_the_syns_tsval_and_keeps_timestamps_on() {
    let (mut h, l) = Harness::listening(config_ts());
    h.send(Seg::syn(1000).ts(100, 0));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    let (tsval, tsecr) = synack.ts.expect("timestamps offered back");
    assert_eq!(tsecr, 100);
    let offset = tsval.wrapping_sub(h.now.as_millis() as u32);
    h.send(Seg::ack(1001, synack.seq + 1).ts(101, tsval));
    let conn = h.shard.accept(l).unwrap();
    assert!(h.shard.info(conn).unwrap().timestamps);
    // RFC 7323 3.2: every segment now carries TSopt; TSval ticks once per millisecond.
    h.advance(ms(250));
    h.shard.send(h.now, conn, b"x").unwrap();
    let data = h.recv_one();
    assert_eq!(data.ts, Some((h.tsval(offset), 101)));
}

#[test]
fn no_timestamps_unless_both_syns_carry_them() {
    // The peer's SYN has none: neither has our SYN-ACK, nor anything after.
    let (mut h, l) = Harness::listening(config_ts());
    let (conn, _) = h.open_passive(l);
    assert_eq!(h.sent[0].1.seg.ts, None);
    assert!(!h.shard.info(conn).unwrap().timestamps);
    h.shard.send(h.now, conn, b"x").unwrap();
    assert_eq!(h.recv_one().ts, None);

    // Our SYN offers them, the SYN-ACK does not: off.
    let mut h = Harness::new(config_ts());
    let o = h.open_active_with(Seg::syn_ack(5000, 0));
    assert!(h.sent[0].1.seg.ts.is_some(), "our SYN offers timestamps");
    assert_eq!(h.sent[0].1.seg.tsecr(), 0, "TSecr of a SYN is zero");
    assert_eq!(h.sent[1].1.seg.ts, None, "the handshake's ACK has none");
    assert!(!h.shard.info(o.conn).unwrap().timestamps);

    // Timestamps off here (tcp_timestamps = 0): a SYN offering them gets none back.
    let (mut h, _) = Harness::listening(TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    });
    h.send(Seg::syn(1000).ts(100, 0));
    assert_eq!(h.recv_one().ts, None);
}

#[test]
fn every_segment_echoes_ts_recent() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(100, 0));
    let conn = o.conn;

    // Data from the peer with TSval 200: the delayed ACK echoes it.
    h.send(Seg::data(1001, o.iss + 1, b"hi").ts(200, 0));
    let sent = h.advance(ms(40));
    assert_eq!(sent[0].1.ts, Some((h.tsval(o.ts_offset), 200)));

    // Our data, its retransmission one second later (with a fresh TSval), our FIN: all carry
    // TSopt with TSecr = TS.Recent.
    h.shard.send(h.now, conn, b"reply").unwrap();
    let data = h.recv_one();
    assert_eq!(data.ts, Some((h.tsval(o.ts_offset), 200)));
    let sent = h.advance(secs(1));
    assert_eq!(sent[0].1.payload, b"reply");
    assert_eq!(sent[0].1.ts, Some((data.tsval() + 1000, 200)));
    h.send(Seg::ack(1003, o.iss + 6).ts(300, sent[0].1.tsval()));
    h.read_all(conn);
    h.shard.close(h.now, conn).unwrap();
    let fin = h.recv_one();
    assert!(fin.is(FA));
    assert_eq!(fin.ts, Some((h.tsval(o.ts_offset), 300)));
}

#[test]
fn the_mss_leaves_room_for_the_timestamp_option() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(100, 0));
    h.shard.send(h.now, o.conn, &[0; 3 * 1448]).unwrap();
    let lens: Vec<usize> = h.recv().iter().map(|s| s.payload.len()).collect();
    // RFC 6691: the 1460-byte MSS includes the 12 bytes of TSopt every segment carries.
    assert_eq!(lens, vec![1448, 1448, 1448]);
}

#[test]
fn paws_drops_an_old_segment_and_acknowledges_it() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(100, 0));
    h.send(Seg::data(1001, o.iss + 1, b"new").ts(200, 0));
    h.advance(ms(40));
    assert_eq!(h.read_all(o.conn), b"new");
    // RFC 7323 5.3 R1: TSval 150 < TS.Recent 200: an old duplicate. Dropped, and an ACK
    // (RFC 7323 5.3 R1: "send an acknowledgment in reply") tells the sender where we are.
    h.send(Seg::data(1004, o.iss + 1, b"old").ts(150, 0));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!(ack.ack, Some(1004));
    assert_eq!(ack.tsecr(), 200);
    let mut buf = [0; 8];
    assert_eq!(
        h.shard.recv(h.now, o.conn, &mut buf),
        Err(ConnError::WouldBlock)
    );
    assert_eq!(h.counters().paws_estab, 1);
    assert_eq!(h.counters().drops[DropReason::Paws.index()], 1);
    // The same bytes with a current TSval are taken.
    h.send(Seg::data(1004, o.iss + 1, b"old").ts(201, 0));
    assert_eq!(h.read_all(o.conn), b"old");
}

#[test]
fn a_rst_is_exempt_from_paws() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(100, 0));
    h.send(Seg::data(1001, o.iss + 1, b"x").ts(5_000, 0));
    h.advance(ms(40));
    h.read_all(o.conn);
    h.events();
    // RFC 7323 5.2: a RST with an old TSval still resets (its sequence number is exact).
    h.send(Seg::rst(1002).ts(10, 0));
    assert_eq!(h.events(), vec![Event::Closed(o.conn, CloseReason::Reset)]);
    assert_eq!(h.counters().paws_estab, 0);
}

#[test]
fn ts_recent_is_taken_only_from_segments_that_cover_last_ack_sent() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(100, 0));
    // Last.ACK.sent = 1001. An out-of-order segment does not cover it: its TSval is not
    // recorded, and the duplicate ACK echoes the handshake's 101 (RFC 7323 4.3 (2)).
    h.send(Seg::data(1101, o.iss + 1, &[1; 100]).ts(300, 0));
    let dup = h.recv_one();
    assert_eq!((dup.ack, dup.tsecr()), (Some(1001), 101));
    // The segment at RCV.NXT = Last.ACK.sent covers it: recorded.
    h.send(Seg::data(1001, o.iss + 1, &[0; 100]).ts(301, 0));
    let ack = h.recv_one();
    assert_eq!((ack.ack, ack.tsecr()), (Some(1201), 301));

    // With the ACK delayed, the first of two segments sets TS.Recent; the second starts
    // beyond Last.ACK.sent and does not: the ACK echoes the earlier TSval (RFC 7323 4.3,
    // "the TSval of the earliest segment it acknowledges").
    h.send(Seg::data(1201, o.iss + 1, b"a").ts(400, 0));
    h.send(Seg::data(1202, o.iss + 1, b"b").ts(401, 0));
    let sent = h.advance(ms(40));
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].1.ack, sent[0].1.tsecr()), (Some(1203), 400));
}

#[test]
fn probes_and_syn_ack_retransmissions_carry_timestamps_too() {
    let (mut h, l) = Harness::listening(config_ts());
    h.send(Seg::syn(1000).ts(100, 0));
    let synack = h.recv_one();
    let offset = synack.tsval().wrapping_sub(h.now.as_millis() as u32);
    let sent = h.advance(tern_tcp::Duration::from_secs(1));
    // A fresh TSval, the SYN's TSval echoed.
    assert_eq!(sent[0].1.ts, Some((h.tsval(offset), 100)));
    h.send(Seg::ack(1001, synack.seq + 1).ts(101, synack.tsval()));
    let conn = h.shard.accept(l).unwrap();
    // A zero window, data behind it: the persist probe carries TSopt (RFC 7323 3.2: every
    // non-RST segment).
    h.send(Seg::ack(1001, synack.seq + 1).ts(102, 0).wnd(0));
    h.shard.send(h.now, conn, b"x").unwrap();
    h.recv_none();
    // The SYN-ACK was retransmitted: RTO 3 s (RFC 6298 (5.7)), the first probe then.
    let sent = h.advance(secs(3));
    assert_eq!(sent.len(), 1, "{sent:?}");
    let probe = &sent[0].1;
    assert_eq!(probe.seq, synack.seq);
    assert_eq!(probe.tsecr(), 102);
    assert_eq!(
        probe.tsval(),
        (sent[0].0.as_millis() as u32).wrapping_add(offset)
    );
}
