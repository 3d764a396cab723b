//! Flow control scenarios: the peer's window bounds what we send (RFC 9293 3.8.6, RFC 7323
//! window scaling), zero windows are probed (3.8.6.1), silly windows are avoided on both sides
//! (3.8.6.2), and the window we offer follows the application's reads.

mod harness;

use harness::{config, ms, secs, Harness, Seg, A, RA, SA};
use tern_tcp::{CloseReason, ConnHandle, Event, State, TcpConfig};

/// A passive open whose final ACK announces `wnd` (scaled by the peer's shift `ws`, if any).
fn open_with_window(h: &mut Harness, ws: Option<u8>, wnd: u16) -> (ConnHandle, u32) {
    let l = h.shard.listen(harness::US, Default::default()).unwrap();
    let mut syn = Seg::syn(1000);
    syn.ws = ws;
    h.send(syn);
    let synack = h.recv_one();
    assert!(synack.is(SA));
    h.send(Seg::ack(1001, synack.seq + 1).wnd(wnd));
    let conn = h.shard.accept(l).unwrap();
    h.events();
    (conn, synack.seq)
}

#[test]
fn nothing_goes_beyond_the_peers_scaled_window() {
    let mut h = Harness::new(config());
    // RFC 7323 2.3: the peer's shift of 3 makes its window field of 375 mean 3000 bytes.
    let (conn, iss) = open_with_window(&mut h, Some(3), 375);
    assert_eq!(h.shard.info(conn).unwrap().snd_wnd, 3000);
    h.shard.send(h.now, conn, &[1; 4 * 2920]).unwrap();
    let out = h.recv();
    // Two full segments fit; the 80 bytes left of the window would be a silly segment.
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![1460, 1460]);
    let mut acked = iss + 1;
    for _ in 0..3 {
        acked += 2920;
        h.send(Seg::ack(1001, acked).wnd(375));
        let out = h.recv();
        let sent: usize = out.iter().map(|s| s.payload.len()).sum();
        assert_eq!(sent, 2920, "{out:?}");
        let i = h.shard.info(conn).unwrap();
        assert!(i.snd_nxt.offset_from(i.snd_una) <= 3000);
    }
}

/// Opens a connection, lets it send 1000 bytes acknowledged after 100 ms (RTO 300 ms) with a
/// zero window, and queues more data behind it.
fn behind_a_zero_window(h: &mut Harness) -> (ConnHandle, u32) {
    let l = h.shard.listen(harness::US, Default::default()).unwrap();
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, &[1; 1000]).unwrap();
    h.recv_one();
    h.advance(ms(100));
    h.send(Seg::ack(1001, iss + 1001).wnd(0));
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(300));
    h.shard.send(h.now, conn, b"waiting for room").unwrap();
    h.recv_none();
    (conn, iss)
}

/// Persist timer expiries: RTO, then doubling up to rto_max (RFC 9293 3.8.6.1, RFC 6298 (5.5)).
fn probe_times_ms(first_rto_ms: u64, count: usize) -> Vec<u64> {
    let (mut t, mut gap) = (0, first_rto_ms);
    let mut out = Vec::new();
    for _ in 0..count {
        t += gap;
        out.push(t);
        gap = (gap * 2).min(120_000);
    }
    out
}

#[test]
fn a_zero_window_is_probed_with_backoff_for_as_long_as_the_peer_answers() {
    let mut h = Harness::new(config());
    let (conn, iss) = behind_a_zero_window(&mut h);
    let start = h.now;
    let mut at = Vec::new();
    for _ in 0..20 {
        let sent = h.advance_until_sent(secs(200));
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (t, probe) = &sent[0];
        // Linux's tcp_xmit_probe_skb: SEG.SEQ = SND.UNA − 1 and no data, so the peer must
        // answer with its window.
        assert_eq!(probe.flags, A);
        assert_eq!((probe.seq, probe.ack), (iss + 1000, Some(1001)));
        assert!(probe.payload.is_empty());
        at.push((*t - start).as_millis());
        h.send(Seg::ack(1001, iss + 1001).wnd(0));
        h.recv_none();
    }
    assert_eq!(at, probe_times_ms(300, 20));
    assert_eq!(h.counters().tcp_win_probe, 20);
    assert_eq!(h.shard.info(conn).unwrap().state, State::Established);
    assert_eq!(h.counters().tcp_abort_on_timeout, 0);

    // The window opens: the data goes at once...
    h.send(Seg::ack(1001, iss + 1001).wnd(65_535));
    let data = h.recv_one();
    assert_eq!(
        (data.seq, data.payload.as_slice()),
        (iss + 1001, &b"waiting for room"[..])
    );
    // ...timed with the plain RTO again: the probes' backoff ended with them.
    let sent_at = h.now;
    let sent = h.advance(ms(300));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].0 - sent_at, sent[0].1.seq), (ms(300), iss + 1001));
}

#[test]
fn a_silent_peer_behind_a_zero_window_is_given_up_after_retries2_probes() {
    let mut h = Harness::new(config());
    let (conn, iss) = behind_a_zero_window(&mut h);
    let start = h.now;
    let sent = h.advance(secs(2_000));
    let at: Vec<u64> = sent.iter().map(|(t, _)| (*t - start).as_millis()).collect();
    // 15 unanswered probes (tcp_retries2), then the 16th expiry gives up (Linux's
    // tcp_probe_timer).
    assert_eq!(at, probe_times_ms(300, 16));
    let (_, rst) = sent.last().unwrap();
    assert_eq!(rst.flags, RA);
    assert_eq!((rst.seq, rst.ack), (iss + 1001, Some(1001)));
    assert!(sent[..15].iter().all(|(_, p)| p.seq == iss + 1000));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::TimedOut)]);
    assert_eq!(h.counters().tcp_win_probe, 15);
    assert_eq!(h.counters().tcp_abort_on_timeout, 1);
}

#[test]
fn sender_sws_avoidance_holds_a_tiny_segment_until_the_override_timeout() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    // The peer's application is slow: its window shrinks to 100 bytes (the largest it ever
    // offered is 65535).
    h.send(Seg::ack(1001, iss + 1).wnd(100));
    assert_eq!(h.shard.info(conn).unwrap().snd_wnd, 100);
    h.shard.send(h.now, conn, &[2; 1000]).unwrap();
    // RFC 9293 3.8.6.2.1: 100 bytes is not a full segment, not all the queued data, and not
    // half the largest window: do not send it now...
    h.recv_none();
    // ...but when the override timeout (the persist timer, one RTO) expires, send what fits
    // (Linux's tcp_write_wakeup: "must have been a result SWS avoidance").
    let start = h.now;
    let sent = h.advance(secs(1));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].0 - start).as_millis(), 1_000);
    assert_eq!((sent[0].1.seq, sent[0].1.payload.len()), (iss + 1, 100));
    // Then the window is full: nothing more until it opens.
    assert!(h.advance(ms(500)).is_empty());
    h.send(Seg::ack(1001, iss + 101).wnd(65_535));
    let rest: usize = h.recv().iter().map(|s| s.payload.len()).sum();
    assert_eq!(rest, 900);
}

#[test]
fn all_the_queued_data_goes_into_a_small_window_when_nothing_is_in_flight() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::ack(1001, iss + 1).wnd(100));
    h.shard.send(h.now, conn, &[3; 60]).unwrap();
    // RFC 9293 3.8.6.2.1 (2): everything queued fits and nothing is outstanding.
    let s = h.recv_one();
    assert_eq!((s.seq, s.payload.len()), (iss + 1, 60));
}

#[test]
fn the_advertised_window_is_the_free_space_shifted_by_our_scale() {
    let (mut h, l) = Harness::listening(config());
    let o = h.open_passive_with(l, Seg::syn(1000).ws(0));
    assert_eq!(h.shard.info(o.conn).unwrap().rcv_wscale, 2);
    h.send(Seg::data(1001, o.iss + 1, &[0; 1000]));
    let sent = h.advance(ms(40));
    // RFC 7323 2.3: SEG.WND = free space >> Rcv.Wind.Shift = (131072 − 1000) >> 2.
    assert_eq!(sent[0].1.wnd, ((131_072 - 1000) >> 2) as u16);
    assert_eq!(h.read_all(o.conn).len(), 1000);
    // Reading 1000 bytes could move the right edge by less than an MSS: no window update, and
    // receiver SWS avoidance (RFC 9293 3.8.6.2.2) keeps the edge where that ACK put it,
    // 2001 + 130072, while two full segments arrive: (132073 − 4921) >> 2.
    h.recv_none();
    h.send(Seg::data(2001, o.iss + 1, &[0; 1460]));
    h.send(Seg::data(3461, o.iss + 1, &[0; 1460]));
    let ack = h.recv_one();
    assert_eq!(ack.ack, Some(4921));
    assert_eq!(ack.wnd, ((132_073 - 4921) >> 2) as u16);
    // Once everything is read, the next ACK offers the whole buffer less the new data.
    h.read_all(o.conn);
    h.send(Seg::data(4921, o.iss + 1, &[0; 4]));
    let sent = h.advance(ms(40));
    assert_eq!(sent[0].1.wnd, ((131_072 - 4) >> 2) as u16);
}

/// A receiver with a 4-segment buffer and no window scaling.
fn small_receiver() -> (Harness, ConnHandle, u32) {
    let cfg = TcpConfig {
        rmem: 4 * 1460,
        ..config()
    };
    let (mut h, l) = Harness::listening(cfg);
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    assert_eq!(synack.wnd, 5840);
    h.send(Seg::ack(1001, synack.seq + 1));
    let conn = h.shard.accept(l).unwrap();
    h.events();
    (h, conn, synack.seq)
}

#[test]
fn the_window_closes_as_data_arrives_and_reopens_in_mss_steps_as_it_is_read() {
    let (mut h, conn, iss) = small_receiver();
    let seg = [5u8; 1460];
    h.send(Seg::data(1001, iss + 1, &seg));
    h.send(Seg::data(2461, iss + 1, &seg));
    let ack = h.recv_one();
    assert_eq!((ack.ack, ack.wnd), (Some(3921), 2920));
    h.send(Seg::data(3921, iss + 1, &seg));
    h.send(Seg::data(5381, iss + 1, &seg));
    let ack = h.recv_one();
    assert_eq!((ack.ack, ack.wnd), (Some(6841), 0));

    // RFC 9293 3.8.6.2.2 receiver SWS avoidance: 1000 bytes of room is less than
    // min(buffer / 2, MSS) = 1460: keep the window closed.
    assert_eq!(h.read(conn, 1000).len(), 1000);
    h.recv_none();
    // 2000 bytes is enough: announce it at once.
    assert_eq!(h.read(conn, 1000).len(), 1000);
    let update = h.recv_one();
    assert!(update.is(A));
    assert_eq!((update.ack, update.wnd), (Some(6841), 2000));
    // The rest read: the window is announced whole.
    assert_eq!(h.read_all(conn).len(), 3840);
    let update = h.recv_one();
    assert_eq!((update.ack, update.wnd), (Some(6841), 5840));
}

#[test]
fn data_beyond_the_window_is_trimmed_and_a_probe_into_a_zero_window_is_answered() {
    let (mut h, conn, iss) = small_receiver();
    let seg = [6u8; 1460];
    for i in 0..3u32 {
        h.send(Seg::data(1001 + i * 1460, iss + 1, &seg));
    }
    h.recv();
    // 1460 bytes of window left; this segment straddles the right edge by 100: only the part
    // inside is taken (RFC 9293 3.10.7.4), and the ACK goes at once.
    h.send(Seg::data(5381, iss + 1, &[6; 1560]));
    h.recv();
    let i = h.shard.info(conn).unwrap();
    assert_eq!((i.rcv_nxt.0, i.recv_queue, i.rcv_wnd), (6841, 5840, 0));

    // A zero-window probe with one byte of new data is not acceptable, but it must be
    // answered with RCV.NXT and the (zero) window (RFC 9293 3.8.6.1).
    h.send(Seg::data(6841, iss + 1, b"?"));
    let ack = h.recv_one();
    assert_eq!((ack.seq, ack.ack, ack.wnd), (iss + 1, Some(6841), 0));
    assert_eq!(h.shard.info(conn).unwrap().recv_queue, 5840);
    // Linux's probe, SEG.SEQ = RCV.NXT − 1 without data, is answered the same way.
    h.advance(ms(500));
    h.send(Seg::ack(6840, iss + 1));
    let ack = h.recv_one();
    assert_eq!((ack.ack, ack.wnd), (Some(6841), 0));
}

#[test]
fn the_right_edge_of_the_offered_window_never_moves_left() {
    let (mut h, l) = Harness::listening(config());
    let o = h.open_passive_with(l, Seg::syn(1000).ws(0));
    let shift = 2;
    let mut edge = 1001u32 + 65_535;
    let mut seq = 1001u32;
    // Odd segment sizes, odd reads, some left unread: the window moves in all directions
    // but its right edge (SEG.ACK + SEG.WND << shift) never goes back (RFC 9293 3.8.6.2.2).
    for round in 0..200u32 {
        let len = 1 + (round * 337) % 1460;
        h.send(Seg::data(seq, o.iss + 1, &vec![9; len as usize]));
        seq += len;
        if round % 3 == 0 {
            // Reads of 1..3000 bytes every third round: a little slower than the sender.
            let mut buf = vec![0; 1 + (round as usize * 211) % 3000];
            h.shard.recv(h.now, o.conn, &mut buf).unwrap();
        }
        for (_, s) in h.advance(ms(40)) {
            let right = s.ack.unwrap() + (u32::from(s.wnd) << shift);
            assert!(
                (right.wrapping_sub(edge) as i32) >= 0,
                "round {round}: right edge {right} before {edge} ({s:?})"
            );
            edge = right;
        }
    }
    assert!(h.sent.len() > 100, "the trace saw many ACKs");
}

#[test]
fn a_window_scale_above_14_is_used_as_14() {
    let mut h = Harness::new(config());
    // RFC 7323 2.3: "If a Window Scale option is received with a shift.cnt value larger than
    // 14, the TCP SHOULD log the error but MUST use 14 instead of the specified value."
    let (conn, _) = open_with_window(&mut h, Some(15), 1);
    let i = h.shard.info(conn).unwrap();
    assert_eq!((i.snd_wscale, i.snd_wnd), (14, 1 << 14));
}

#[test]
fn without_scaling_our_window_is_capped_at_65535() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    assert_eq!(h.shard.info(conn).unwrap().rcv_wscale, 0);
    h.send(Seg::data(1001, iss + 1, &[0; 1460]));
    h.send(Seg::data(2461, iss + 1, &[0; 1460]));
    let ack = h.recv_one();
    // 128 KiB − 2920 of room, but no shift was agreed (the peer's SYN had no option): the
    // field's largest value.
    assert_eq!((ack.ack, ack.wnd), (Some(3921), 65_535));
}

#[test]
fn a_bare_fin_is_taken_even_into_a_zero_window() {
    let (mut h, conn, iss) = small_receiver();
    for i in 0..4u32 {
        h.send(Seg::data(1001 + i * 1460, iss + 1, &[7; 1460]));
    }
    h.recv();
    assert_eq!(h.shard.info(conn).unwrap().rcv_wnd, 0);
    // A FIN holds no data: accepting it costs no buffer (Linux's tcp_data_queue does the same).
    h.send(Seg::fin(6841, iss + 1));
    let ack = h.recv_one();
    assert_eq!((ack.ack, ack.wnd), (Some(6842), 0));
    assert_eq!(
        h.events(),
        vec![Event::Readable(conn), Event::PeerClosed(conn)]
    );
    assert_eq!(h.read_all(conn).len(), 5840);
}
