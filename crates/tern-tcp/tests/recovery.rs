//! Loss recovery scenarios: fast retransmit and fast recovery (RFC 5681 3.2), NewReno partial
//! ACKs (RFC 6582), limited transmit (RFC 3042), and the loss window after a timeout (RFC 5681
//! (5)). The peer drops the first segments of a flight and answers the rest with duplicate ACKs.

mod harness;

use harness::{config, secs, Harness, Seg};
use tern_tcp::{ConnHandle, TcpConfig};

const MSS: u32 = 1460;

/// A bigger send buffer, so a flight of 20 segments fits.
fn config_big() -> TcpConfig {
    TcpConfig {
        wmem: 64 * 1024,
        ..config()
    }
}

/// An established connection that has sent its initial window (10 segments, RFC 6928) of the
/// 20 segments queued; returns it and SND.UNA.
fn flight_of_ten(h: &mut Harness, syn: Seg) -> (ConnHandle, u32) {
    let l = h.shard.listen(harness::US, Default::default()).unwrap();
    let o = h.open_passive_with(l, syn);
    let una = o.iss + 1;
    h.shard.send(h.now, o.conn, &[7; 20 * 1460]).unwrap();
    let flight = h.recv();
    assert_eq!(flight.len(), 10, "the initial window is 10 segments");
    for (i, s) in flight.iter().enumerate() {
        assert_eq!((s.seq, s.payload.len()), (una + i as u32 * MSS, 1460));
    }
    assert_eq!(h.shard.info(o.conn).unwrap().cwnd, 10 * MSS);
    (o.conn, una)
}

#[test]
fn three_duplicate_acks_retransmit_once_and_newreno_recovers() {
    let mut h = Harness::new(config_big());
    let (conn, una) = flight_of_ten(&mut h, Seg::syn(1000));
    let dupack = Seg::ack(1001, una);
    let seg = |i: u32| una + i * MSS;

    // Segment 0 is lost. RFC 3042: the first two duplicate ACKs each release one new segment,
    // cwnd unchanged.
    h.send(dupack.clone());
    let lt = h.recv_one();
    assert_eq!((lt.seq, lt.payload.len()), (seg(10), 1460));
    h.send(dupack.clone());
    assert_eq!(h.recv_one().seq, seg(11));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, 10 * MSS);
    assert_eq!(h.counters().retrans_segs, 0);

    // The third: fast retransmit of the first unacknowledged segment, and nothing else
    // (RFC 5681 3.2 (2)-(3): ssthresh = FlightSize / 2 = 12 × 1460 / 2 = 8760, cwnd =
    // ssthresh + 3 × SMSS = 13140, below the 17520 in flight).
    h.send(dupack.clone());
    let rtx = h.recv_one();
    assert_eq!((rtx.seq, rtx.payload.len()), (una, 1460));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, 8760 + 3 * MSS);
    let c = h.counters();
    assert_eq!(
        (c.tcp_fast_retrans, c.tcp_reno_recovery, c.tcp_sack_recovery),
        (1, 1, 0)
    );
    assert_eq!(c.retrans_segs, 1);

    // (4): every further duplicate inflates cwnd by one SMSS; new data goes once cwnd exceeds
    // the flight, and segment 0 is not sent again.
    for expected_cwnd in [14_600, 16_060, 17_520] {
        h.send(dupack.clone());
        h.recv_none();
        assert_eq!(h.shard.info(conn).unwrap().cwnd, expected_cwnd);
    }
    h.send(dupack.clone());
    let new = h.recv_one();
    assert_eq!((new.seq, new.payload.len()), (seg(12), 1460));
    assert_eq!(h.counters().tcp_fast_retrans, 1);

    // RFC 6582 3.2 (5): a partial ACK (segment 1 was lost too) retransmits the next hole at
    // once; cwnd deflates by the 1460 acknowledged and gets one SMSS back (18980), which leaves
    // room for one new segment beside the 13 × 1460 − 1460 = 17520 in flight.
    h.send(Seg::ack(1001, seg(1)));
    let out = h.recv();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((out[0].seq, out[0].payload.len()), (seg(1), 1460));
    assert_eq!(out[1].seq, seg(13));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, 18_980);
    assert_eq!(h.counters().retrans_segs, 2);

    // (6): the ACK covering "recover" (SND.MAX when recovery began: segment 12's start) ends
    // recovery with cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS): FlightSize is the two
    // segments 12 and 13 still out, so min(8760, 2920 + 1460) = 4380, and one more segment
    // fits beside them.
    h.send(Seg::ack(1001, seg(12)));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, 4380);
    let out = h.recv();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].seq, seg(14));
    assert_eq!(h.counters().tcp_fast_retrans, 1);
    assert_eq!(h.counters().tcp_reno_recovery, 1);
}

#[test]
fn a_sack_connection_counts_sack_recovery() {
    let mut h = Harness::new(config_big());
    let (_, una) = flight_of_ten(&mut h, Seg::syn(1000).sack_perm());
    for i in 1..=3u32 {
        // Duplicate ACKs naming the segments that did arrive (RFC 2018).
        h.send(Seg::ack(1001, una).sack(&[(una + MSS, una + (i + 1) * MSS)]));
        h.recv();
    }
    let c = h.counters();
    assert_eq!(
        (c.tcp_fast_retrans, c.tcp_sack_recovery, c.tcp_reno_recovery),
        (1, 1, 0)
    );
    let rtx = h
        .sent
        .iter()
        .filter(|(_, p)| p.seg.seq == una && !p.seg.payload.is_empty())
        .count();
    assert_eq!(rtx, 2, "the original and one fast retransmission");
}

#[test]
fn duplicate_acks_that_change_the_window_or_carry_data_are_not_counted() {
    let mut h = Harness::new(config_big());
    let (_, una) = flight_of_ten(&mut h, Seg::syn(1000));
    // RFC 5681 §2: a duplicate ACK carries no data, does not move the window and arrives while
    // data is outstanding. Three ACKs that each announce a new window are window updates.
    for wnd in [60_000, 61_000, 62_000] {
        h.send(Seg::ack(1001, una).wnd(wnd));
    }
    // Three that carry data are not duplicates either.
    for i in 0..3u32 {
        h.send(Seg::data(1001 + i, una, b"x").wnd(62_000));
    }
    h.recv();
    assert_eq!(h.counters().tcp_fast_retrans, 0);
    assert_eq!(h.counters().retrans_segs, 0);
    let copies = h
        .sent
        .iter()
        .filter(|(_, p)| p.seg.seq == una && !p.seg.payload.is_empty())
        .count();
    assert_eq!(copies, 1, "segment 0 went once");
}

#[test]
fn after_a_timeout_cwnd_is_one_segment_and_slow_start_resends_the_rest() {
    let mut h = Harness::new(config_big());
    let (conn, una) = flight_of_ten(&mut h, Seg::syn(1000));
    let sent = h.advance(secs(1));
    // RFC 5681 (5): the loss window is one segment; only segment 0 goes again.
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].1.seq, sent[0].1.payload.len()), (una, 1460));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, MSS);

    // Its ACK doubles cwnd (slow start: ssthresh = 10 × 1460 / 2 = 7300): segments 1 and 2
    // go again (go-back-N from SND.UNA).
    h.send(Seg::ack(1001, una + MSS));
    assert_eq!(h.shard.info(conn).unwrap().cwnd, 2 * MSS);
    let out = h.recv();
    let seqs: Vec<u32> = out.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![una + MSS, una + 2 * MSS]);
    assert_eq!(h.counters().retrans_segs, 3);
    assert_eq!(h.counters().tcp_fast_retrans, 0);
}

#[test]
fn duplicate_acks_for_a_window_sent_before_a_timeout_do_not_start_recovery() {
    let mut h = Harness::new(config_big());
    let (_, una) = flight_of_ten(&mut h, Seg::syn(1000));
    h.advance(secs(1));
    h.send(Seg::ack(1001, una + MSS));
    assert_eq!(h.recv().len(), 2);
    // RFC 6582 §4: the timeout set "recover" to SND.MAX (segment 10's start). Duplicate ACKs
    // for SND.UNA = segment 1, below it, are echoes of the old window: no fast retransmit. The
    // first two still release one segment each (RFC 3042): segments 3 and 4, the next ones
    // after go-back-N.
    let mut out = Vec::new();
    for _ in 0..3 {
        h.send(Seg::ack(1001, una + MSS));
        out.push(h.recv().iter().map(|s| s.seq).collect::<Vec<_>>());
    }
    assert_eq!(out, vec![vec![una + 3 * MSS], vec![una + 4 * MSS], vec![]]);
    assert_eq!(h.counters().tcp_fast_retrans, 0);
    assert_eq!(h.counters().tcp_reno_recovery, 0);
}
