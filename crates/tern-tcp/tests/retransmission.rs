//! Retransmission timeout scenarios (RFC 6298; RFC 1122 4.2.3.5 R1/R2; RFC 5482 user timeout),
//! written as traces: the test plays a peer that stops acknowledging, the shard retransmits.

mod harness;

use harness::{config, config_ts, ms, secs, Harness, Seg, PA, RA};
use tern_tcp::{CloseReason, ConnOptions, Duration, Event, Instant, State};

/// Milliseconds from `start` to each segment's send time.
fn times_ms(start: Instant, sent: &[(Instant, Seg)]) -> Vec<u64> {
    sent.iter().map(|(t, _)| (*t - start).as_millis()).collect()
}

#[test]
fn unacknowledged_data_backs_off_from_one_second_to_rto_max_then_retries2_aborts() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let start = h.now;
    h.shard.send(h.now, conn, b"hello").unwrap();
    let first = h.recv_one();
    let out_segs = h.counters().out_segs;
    assert_eq!(
        (first.seq, first.payload.as_slice()),
        (iss + 1, &b"hello"[..])
    );

    // RFC 6298 (2.1): RTO = 1 s before any RTT sample; (5.5) it doubles on each expiry; (2.5)
    // it is capped at rto_max = 120 s.
    let sent = h.advance(ms(6_999));
    assert_eq!(times_ms(start, &sent), vec![1_000, 3_000]);
    assert!(h.events().is_empty());
    // RFC 1122 R1: the third retransmission (retries1 = 3) tells the application, once.
    let sent = h.advance(ms(1));
    assert_eq!(times_ms(start, &sent), vec![7_000]);
    assert_eq!(h.events(), vec![Event::DeliveryProblem(conn)]);
    assert_eq!(h.counters().tcp_retrans_fail, 1);

    let sent = h.advance(secs(1_000));
    let (retransmissions, rst) = sent.split_at(sent.len() - 1);
    assert_eq!(
        times_ms(start, retransmissions),
        vec![15_000, 31_000, 63_000, 127_000, 247_000, 367_000, 487_000, 607_000, 727_000, 847_000]
    );
    for (_, s) in retransmissions {
        assert_eq!(s.flags, PA, "{s:?}");
        assert_eq!((s.seq, s.payload.as_slice()), (iss + 1, &b"hello"[..]));
    }
    // RFC 1122 R2 as Linux bounds it (tcp_retries2 = 15): the time 15 backed-off
    // retransmissions from rto_min take, 924.6 s, counted from the first retransmission
    // (Linux's retrans_stamp). At 847 s, 846 s have passed; the expiry at 967 s gives up.
    assert_eq!(
        tern_tcp::retries_timeout(15, ms(200), secs(120)),
        ms(924_600)
    );
    let (at, rst) = &rst[0];
    assert_eq!((*at - start).as_millis(), 967_000);
    assert_eq!(rst.flags, RA);
    assert_eq!((rst.seq, rst.ack), (iss + 6, Some(1001)));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::TimedOut)]);
    assert_eq!(h.shard.info(conn), Err(tern_tcp::ConnError::InvalidHandle));

    let c = h.counters();
    assert_eq!(c.retrans_segs, 13);
    assert_eq!(
        c.out_segs,
        out_segs + 1,
        "OutSegs counts the RST, not retransmissions"
    );
    assert_eq!(c.tcp_timeouts, 14, "every expiry, the last one included");
    assert_eq!(c.tcp_retrans_fail, 1, "one delivery problem per series");
    assert_eq!(c.tcp_abort_on_timeout, 1);
    assert_eq!(c.out_rsts, 1);
    assert_eq!(c.curr_estab, 0);
    assert_eq!(h.shard.buffers_in_use(), 0);
}

#[test]
fn an_rtt_sample_sets_rto_to_srtt_plus_four_rttvar() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"ping").unwrap();
    h.recv_one();
    h.advance(ms(100));
    h.send(Seg::ack(1001, iss + 5));
    // RFC 6298 (2.2): SRTT = R = 100 ms, RTTVAR = R/2 = 50 ms, RTO = SRTT + 4 RTTVAR = 300 ms.
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(300));

    h.shard.send(h.now, conn, b"pong").unwrap();
    h.recv_one();
    h.advance(ms(40));
    h.send(Seg::ack(1001, iss + 9));
    // (2.3): RTTVAR = 3/4 × 50 + 1/4 × |100 − 40| = 52.5 ms; SRTT = 7/8 × 100 + 1/8 × 40 =
    // 92.5 ms; RTO = 92.5 + 4 × 52.5 = 302.5 ms.
    assert_eq!(
        h.shard.info(conn).unwrap().rto,
        Duration::from_micros(302_500)
    );

    // The timer runs on that value: the next segment is retransmitted 302.5 ms after it left
    // (the wheel ticks in whole milliseconds and never fires early).
    h.shard.send(h.now, conn, b"lost").unwrap();
    let sent_at = h.now;
    h.recv_one();
    let sent = h.advance(ms(303));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0 - sent_at, ms(303));
    assert_eq!(sent[0].1.seq, iss + 9);
}

#[test]
fn rto_is_floored_at_rto_min() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"ping").unwrap();
    h.recv_one();
    h.advance(ms(10));
    h.send(Seg::ack(1001, iss + 5));
    // SRTT + 4 RTTVAR = 10 + 20 = 30 ms, below rto_min (Linux's 200 ms; RFC 6298 (2.4)).
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(200));
    h.shard.send(h.now, conn, b"lost").unwrap();
    let sent_at = h.now;
    h.recv_one();
    let sent = h.advance(ms(200));
    assert_eq!(times_ms(sent_at, &sent), vec![200]);
}

#[test]
fn an_ack_for_new_data_restarts_the_timer() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let start = h.now;
    // Two full segments at once.
    h.shard.send(h.now, conn, &[1; 2 * 1460]).unwrap();
    assert_eq!(h.recv().len(), 2);
    h.advance(ms(500));
    h.send(Seg::ack(1001, iss + 1 + 1460));
    // RFC 6298 (5.3): restart the timer for the rest. The sample (500 ms) makes RTO =
    // 500 + 4 × 250 = 1.5 s, so the second segment goes again at 0.5 + 1.5 = 2 s.
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(1_500));
    let sent = h.advance(secs(2));
    assert_eq!(times_ms(start, &sent), vec![2_000]);
    assert_eq!(sent[0].1.seq, iss + 1 + 1460);
    assert_eq!(sent[0].1.payload.len(), 1460);
}

#[test]
fn karn_no_sample_from_an_acknowledged_retransmission_and_the_backoff_stays() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"once").unwrap();
    h.recv_one();
    let sent = h.advance(secs(1));
    assert_eq!(sent.len(), 1, "the retransmission after 1 s");
    // The ACK 50 ms after the retransmission could be for either copy: Karn's algorithm takes
    // no sample (RFC 6298 §3), and the backed-off RTO stays until a new measurement collapses it
    // (RFC 6298 §5, after (5.7)). A sample would have made it 200 ms; no backoff, 1 s.
    h.advance(ms(50));
    h.send(Seg::ack(1001, iss + 5));
    assert_eq!(h.shard.info(conn).unwrap().rto, secs(2));
    h.shard.send(h.now, conn, b"twice").unwrap();
    let sent_at = h.now;
    h.recv_one();
    let sent = h.advance(secs(2));
    assert_eq!(times_ms(sent_at, &sent), vec![2_000]);

    // "twice" was retransmitted too: its ACK measures nothing either. A segment sent once and
    // acknowledged 100 ms later is measured, and the RTO collapses to 100 + 4 × 50 = 300 ms.
    h.send(Seg::ack(1001, iss + 10));
    h.shard.send(h.now, conn, b"fresh").unwrap();
    h.recv_one();
    h.advance(ms(100));
    h.send(Seg::ack(1001, iss + 15));
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(300));
}

#[test]
fn with_timestamps_an_acknowledged_retransmission_is_measured() {
    let (mut h, l) = Harness::listening(config_ts());
    let o = h.open_passive_with(l, Seg::syn(1000).ts(500, 0));
    h.shard.send(h.now, o.conn, b"once").unwrap();
    h.recv_one();
    let sent = h.advance(secs(1));
    let rtx = &sent[0].1;
    // RFC 7323 4.1 (RTTM): the echoed TSval names the copy that is acknowledged.
    h.advance(ms(50));
    h.send(Seg::ack(1001, o.iss + 5).ts(600, rtx.tsval()));
    // RTT 50 ms: RTO = 50 + 4 × 25 = 150 ms, floored at 200 ms; the backoff is gone.
    assert_eq!(h.shard.info(o.conn).unwrap().rto, ms(200));
}

#[test]
fn the_user_timeout_aborts_before_retries2() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let opts = ConnOptions {
        user_timeout: Some(secs(10)),
        ..h.shard.options(conn).unwrap()
    };
    h.shard.set_options(h.now, conn, opts).unwrap();
    let start = h.now;
    h.shard.send(h.now, conn, b"hello").unwrap();
    h.recv_one();
    let sent = h.advance(secs(60));
    // Retransmissions at 1, 3 and 7 s; the user timeout runs from the first of them (Linux's
    // retrans_stamp) and the timer is clamped to it (tcp_clamp_rto_to_user_timeout): the
    // connection is given up at 1 + 10 = 11 s, not at the next backed-off expiry (15 s).
    assert_eq!(times_ms(start, &sent), vec![1_000, 3_000, 7_000, 11_000]);
    let rst = &sent[3].1;
    assert_eq!(rst.flags, RA);
    assert_eq!((rst.seq, rst.ack), (iss + 6, Some(1001)));
    assert_eq!(
        h.events(),
        vec![
            Event::DeliveryProblem(conn),
            Event::Closed(conn, CloseReason::TimedOut)
        ]
    );
    assert_eq!(h.counters().tcp_abort_on_timeout, 1);
    assert_eq!(h.shard.connection_count(), 0);
}

#[test]
fn progress_resets_the_give_up_clock() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let opts = ConnOptions {
        user_timeout: Some(secs(10)),
        ..h.shard.options(conn).unwrap()
    };
    h.shard.set_options(h.now, conn, opts).unwrap();
    h.shard.send(h.now, conn, b"one").unwrap();
    h.recv_one();
    // Retransmissions at 1, 3 and 7 s; the ACK at 8 s ends the series.
    assert_eq!(h.advance(secs(8)).len(), 3);
    h.send(Seg::ack(1001, iss + 4));
    h.events();
    // A new series starts from scratch: the backed-off RTO (8 s, no sample) first, then the
    // user timeout counts from that new first retransmission.
    h.shard.send(h.now, conn, b"two").unwrap();
    let start = h.now;
    h.recv_one();
    let sent = h.advance(secs(30));
    assert_eq!(times_ms(start, &sent), vec![8_000, 18_000]);
    assert_eq!(sent[0].1.payload, b"two");
    assert_eq!(sent[1].1.flags, RA);
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::TimedOut)]);
}

#[test]
fn data_of_an_active_open_is_retransmitted_until_acknowledged() {
    // Retransmission works the same after an active open; the state stays ESTABLISHED while
    // retransmitting, and an ACK stops the timer (RFC 6298 (5.2)).
    let mut h = Harness::new(config());
    let o = h.open_active_with(Seg::syn_ack(5000, 0));
    h.shard.send(h.now, o.conn, b"x").unwrap();
    h.recv_one();
    let sent = h.advance(secs(3));
    assert_eq!(sent.len(), 2);
    assert_eq!(h.shard.info(o.conn).unwrap().state, State::Established);
    h.send(Seg::ack(5001, o.iss + 2));
    assert_eq!(h.shard.info(o.conn).unwrap().send_queue, 0);
    assert!(
        h.advance(secs(300)).is_empty(),
        "nothing left to retransmit"
    );
}

#[test]
fn after_a_syn_timeout_data_starts_with_a_three_second_rto() {
    let mut h = Harness::new(config());
    let conn = h.shard.connect(h.now, harness::US, harness::PEER).unwrap();
    let syn = h.recv_one();
    let sent = h.advance(secs(1));
    assert_eq!(sent.len(), 1, "the SYN again after 1 s");
    h.send(Seg::syn_ack(5000, syn.seq + 1));
    h.recv_one();
    // RFC 6298 (5.7): the SYN timed out and nothing was measured, so RTO = 3 s, no backoff.
    assert_eq!(h.shard.info(conn).unwrap().rto, secs(3));
    h.shard.send(h.now, conn, b"data").unwrap();
    let sent_at = h.now;
    h.recv_one();
    assert_eq!(times_ms(sent_at, &h.advance(secs(3))), vec![3_000]);
}

#[test]
fn after_a_syn_ack_timeout_data_starts_with_a_three_second_rto() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    assert_eq!(h.advance(secs(1)).len(), 1, "the SYN-ACK again after 1 s");
    h.send(Seg::ack(1001, synack.seq + 1));
    let conn = h.shard.accept(l).unwrap();
    assert_eq!(h.shard.info(conn).unwrap().rto, secs(3));
}

#[test]
fn a_timestamp_echo_measures_even_a_retransmitted_syn() {
    let mut h = Harness::new(config_ts());
    let conn = h.shard.connect(h.now, harness::US, harness::PEER).unwrap();
    h.recv_one();
    let sent = h.advance(secs(1));
    let syn = &sent[0].1;
    h.advance(ms(80));
    h.send(
        Seg::syn_ack(5000, syn.seq + 1)
            .ts(7, syn.tsval())
            .ws(0)
            .sack_perm(),
    );
    h.recv_one();
    // RTT 80 ms from the echo (RFC 7323 4.1): RTO = 80 + 4 × 40 = 240 ms, and no fallback.
    assert_eq!(h.shard.info(conn).unwrap().rto, ms(240));
}

#[test]
fn an_unacknowledged_fin_is_retransmitted_like_data() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.shutdown(h.now, conn).unwrap();
    let start = h.now;
    let fin = h.recv_one();
    assert_eq!((fin.flags, fin.seq), (harness::FA, iss + 1));
    let sent = h.advance(secs(8));
    assert_eq!(times_ms(start, &sent), vec![1_000, 3_000, 7_000]);
    assert!(sent.iter().all(|(_, s)| *s == fin), "{sent:?}");
    h.send(Seg::ack(1001, iss + 2));
    assert_eq!(h.shard.info(conn).unwrap().state, State::FinWait2);
    assert!(h.advance(secs(300)).is_empty());
}

#[test]
fn each_new_series_of_timeouts_reports_its_delivery_problem() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"one").unwrap();
    h.recv_one();
    assert_eq!(h.advance(secs(7)).len(), 3);
    assert_eq!(h.events(), vec![Event::DeliveryProblem(conn)]);
    // Progress ends the series...
    h.send(Seg::ack(1001, iss + 4));
    // ...and the next one, at its own third retransmission, reports again. The RTO kept its
    // backoff (8 s, no sample): retransmissions at 8, 24 and 56 s.
    h.shard.send(h.now, conn, b"two").unwrap();
    let start = h.now;
    h.recv_one();
    assert_eq!(times_ms(start, &h.advance(secs(55))), vec![8_000, 24_000]);
    assert!(h.events().is_empty());
    assert_eq!(times_ms(start, &h.advance(secs(1))), vec![56_000]);
    assert_eq!(h.events(), vec![Event::DeliveryProblem(conn)]);
    assert_eq!(h.counters().tcp_retrans_fail, 2);
}

#[test]
fn retries2_counts_from_the_first_retransmission_not_the_original_send() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    // A 10 ms RTT: RTO = rto_min = 200 ms, exactly the model tcp_retries2 is computed from.
    h.shard.send(h.now, conn, b"ping").unwrap();
    h.recv_one();
    h.advance(ms(10));
    h.send(Seg::ack(1001, iss + 5));
    h.shard.send(h.now, conn, b"lost").unwrap();
    let start = h.now;
    h.recv_one();
    let sent = h.advance(secs(1_100));
    let (retransmissions, rst) = sent.split_at(sent.len() - 1);
    // 0.2, 0.6, 1.4 ... 102.2 s (doubling), then every 120 s.
    let mut expected = Vec::new();
    let (mut t, mut rto) = (0, 200);
    for _ in 0..16 {
        t += rto;
        expected.push(t);
        rto = (rto * 2).min(120_000);
    }
    assert_eq!(times_ms(start, retransmissions), expected);
    // The 16th expiry, at 924.6 s, is only 924.4 s after the first retransmission (Linux's
    // retrans_stamp is stamped by tcp_retransmit_skb after __tcp_transmit_skb restamped the
    // head): not yet 924.6 s, so a 16th retransmission; the next expiry gives up.
    assert_eq!(expected[15], 924_600);
    assert_eq!(times_ms(start, rst), vec![1_044_600]);
    assert_eq!(rst[0].1.flags, RA);
    assert_eq!(h.counters().tcp_abort_on_timeout, 1);
}
