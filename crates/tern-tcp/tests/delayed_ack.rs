//! When the receiver acknowledges (RFC 1122 4.2.3.2, RFC 5681 4.2, RFC 9293 3.8.6.3): at most
//! the 40 ms delay late, at least every second full-sized segment, and at once for a FIN, an
//! out-of-order segment or one that fills a hole.

mod harness;

use harness::{config, ms, Harness, Seg, A};

#[test]
fn the_delay_runs_from_the_first_unacknowledged_segment() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let start = h.now;
    h.send(Seg::data(1001, iss + 1, b"a"));
    h.advance(ms(30));
    // A second small segment does not push the ACK back.
    h.send(Seg::data(1002, iss + 1, b"b"));
    h.recv_none();
    let sent = h.advance(ms(100));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0 - start, ms(40));
    assert!(sent[0].1.is(A));
    assert_eq!(sent[0].1.ack, Some(1003));
    assert_eq!(h.counters().delayed_acks, 1);
    assert_eq!(h.read_all(conn), b"ab");
}

#[test]
fn every_second_full_sized_segment_is_acknowledged_at_once() {
    let (mut h, l) = Harness::listening(config());
    let (_, iss) = h.open_passive(l);
    let full = [3u8; 1460];
    let mut acks = Vec::new();
    for i in 0..4u32 {
        h.send(Seg::data(1001 + i * 1460, iss + 1, &full));
        acks.push(h.recv().iter().map(|s| s.ack.unwrap()).collect::<Vec<_>>());
    }
    assert_eq!(
        acks,
        vec![vec![], vec![1001 + 2920], vec![], vec![1001 + 4 * 1460]]
    );
    assert_eq!(h.counters().delayed_acks, 0);
}

#[test]
fn a_fin_is_acknowledged_at_once_with_the_data_before_it() {
    let (mut h, l) = Harness::listening(config());
    let (_, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"last"));
    h.recv_none();
    h.advance(ms(10));
    h.send(Seg::fin(1005, iss + 1));
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!(ack.ack, Some(1006), "data and FIN in one ACK");
    assert!(h.advance(ms(100)).is_empty(), "no delayed ACK left over");
}

#[test]
fn out_of_order_and_hole_filling_segments_are_acknowledged_at_once() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"0123"));
    h.recv_none();
    // Beyond RCV.NXT: a duplicate ACK at once (RFC 5681 4.2), the delayed one included.
    h.send(Seg::data(1009, iss + 1, b"89"));
    assert_eq!(h.recv_one().ack, Some(1005));
    // Filling part of the hole: at once again.
    h.send(Seg::data(1005, iss + 1, b"45"));
    assert_eq!(h.recv_one().ack, Some(1007));
    // Closing it: at once, up to the end of what was queued.
    h.send(Seg::data(1007, iss + 1, b"67"));
    assert_eq!(h.recv_one().ack, Some(1011));
    assert!(h.advance(ms(100)).is_empty());
    assert_eq!(h.read_all(conn), b"0123456789");
    assert_eq!(h.counters().delayed_acks, 0);
}

#[test]
fn data_we_send_carries_the_ack_and_cancels_the_delayed_one() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"question"));
    h.advance(ms(5));
    assert_eq!(h.read_all(conn), b"question");
    h.shard.send(h.now, conn, b"answer").unwrap();
    let answer = h.recv_one();
    assert_eq!(answer.ack, Some(1009));
    assert_eq!(answer.payload, b"answer");
    assert!(h.advance(ms(100)).is_empty());
    assert_eq!(h.counters().delayed_acks, 0);
}

#[test]
fn every_duplicate_data_segment_is_answered_but_stray_pure_acks_are_throttled() {
    let (mut h, l) = Harness::listening(config());
    let (_, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"abc"));
    h.advance(ms(40));
    // The peer did not hear our ACK and retransmits, twice: each copy is answered at once
    // (RFC 9293 3.10.7.4: "an acknowledgment should be sent in reply"); data segments are not
    // part of an ACK loop, so Linux's tcp_oow_rate_limited never throttles them.
    for _ in 0..2 {
        h.send(Seg::data(1001, iss + 1, b"abc"));
        let ack = h.recv_one();
        assert_eq!((ack.seq, ack.ack), (iss + 1, Some(1004)));
    }
    // Segments without data below the window are answered at most once per 500 ms
    // (tcp_invalid_ratelimit, RFC 5961 §10).
    h.advance(ms(500));
    h.send(Seg::ack(900, iss + 1));
    assert_eq!(h.recv_one().ack, Some(1004));
    h.send(Seg::ack(900, iss + 1));
    h.recv_none();
}

#[test]
fn a_peer_sending_smaller_segments_than_our_mss_is_still_acknowledged_every_second_one() {
    let (mut h, l) = Harness::listening(config());
    // The peer announces 1460 but its path carries 1000-byte segments: "full-sized" is what
    // it actually sends (Linux's tcp_measure_rcv_mss), not our MSS.
    let (_conn, iss) = h.open_passive(l);
    let chunk = [3u8; 1000];
    h.send(Seg::data(1001, iss + 1, &chunk));
    h.recv_none();
    h.send(Seg::data(2001, iss + 1, &chunk));
    let ack = h.recv_one();
    assert_eq!(
        ack.ack,
        Some(3001),
        "the second full-sized segment is acknowledged at once"
    );
}
