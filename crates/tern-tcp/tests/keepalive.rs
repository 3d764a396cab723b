//! Keepalive (RFC 1122 4.2.3.6; Linux's SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
//! TCP_KEEPCNT): off by default; when on, probes after `time` of silence from the peer, every
//! `interval`, and gives up after `probes` unanswered ones.

mod harness;

use harness::{config, secs, Harness, Seg, A, RA};
use tern_tcp::{CloseReason, ConnHandle, ConnOptions, Event, Instant, KeepaliveConfig, State};

/// Keepalive as Linux's defaults have it, switched on.
fn keepalive_on(h: &mut Harness, conn: ConnHandle, garbage_octet: bool) {
    let opts = ConnOptions {
        keepalive: KeepaliveConfig {
            enabled: true,
            garbage_octet,
            ..KeepaliveConfig::default()
        },
        ..h.shard.options(conn).unwrap()
    };
    assert_eq!(
        (
            opts.keepalive.time,
            opts.keepalive.interval,
            opts.keepalive.probes
        ),
        (secs(7200), secs(75), 9)
    );
    h.shard.set_options(h.now, conn, opts).unwrap();
}

fn secs_since(start: Instant, t: Instant) -> u64 {
    (t - start).as_secs()
}

#[test]
fn an_idle_connection_sends_nothing_for_hours_by_default() {
    let (mut h, l) = Harness::listening(config());
    let (conn, _) = h.open_passive(l);
    assert!(!h.shard.options(conn).unwrap().keepalive.enabled);
    assert!(h.advance(secs(10 * 3600)).is_empty());
    assert!(h.shard.poll_timeout().is_none(), "no timer at all");
    assert_eq!(h.shard.info(conn).unwrap().state, State::Established);
}

#[test]
fn unanswered_probes_end_the_connection() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    // The last segment from the peer was the handshake's ACK, now.
    let last_heard = h.now;
    h.advance(secs(100));
    keepalive_on(&mut h, conn, false);
    let sent = h.advance(secs(9000));
    let at: Vec<u64> = sent
        .iter()
        .map(|(t, _)| secs_since(last_heard, *t))
        .collect();
    // The first probe keepalive_time after the last segment received (not after the option
    // was set), then every 75 s; after the 9th goes unanswered for 75 s, a RST.
    let mut expected: Vec<u64> = (0..9).map(|i| 7200 + 75 * i).collect();
    expected.push(7200 + 75 * 9);
    assert_eq!(at, expected);
    for (_, probe) in &sent[..9] {
        // Linux's tcp_xmit_probe_skb: SEG.SEQ = SND.UNA − 1, no data: the peer must answer
        // with an ACK.
        assert_eq!(probe.flags, A);
        assert_eq!((probe.seq, probe.ack), (iss, Some(1001)));
        assert!(probe.payload.is_empty());
    }
    let rst = &sent[9].1;
    assert_eq!(rst.flags, RA);
    assert_eq!((rst.seq, rst.ack), (iss + 1, Some(1001)));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::TimedOut)]);
    assert_eq!(h.counters().tcp_keep_alive, 9);
    assert_eq!(h.counters().tcp_abort_on_timeout, 1);
    assert_eq!(h.shard.connection_count(), 0);
}

#[test]
fn an_answer_resets_the_count_and_the_idle_time() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    keepalive_on(&mut h, conn, false);
    let start = h.now;
    // Three probes go unanswered...
    let sent = h.advance(secs(7200 + 150));
    assert_eq!(sent.len(), 3);
    // ...the peer answers the third.
    h.send(Seg::ack(1001, iss + 1));
    h.recv_none();
    let answered = h.now;
    assert_eq!(secs_since(start, answered), 7350);
    // The next probe is keepalive_time after that answer, and the count starts again: nine
    // more probes before the RST.
    let sent = h.advance(secs(7200 + 9 * 75));
    let at: Vec<u64> = sent.iter().map(|(t, _)| secs_since(answered, *t)).collect();
    let mut expected: Vec<u64> = (0..9).map(|i| 7200 + 75 * i).collect();
    expected.push(7200 + 9 * 75);
    assert_eq!(at, expected);
    assert_eq!(sent[9].1.flags, RA);
    assert_eq!(h.counters().tcp_keep_alive, 12);
}

#[test]
fn traffic_from_the_peer_postpones_the_first_probe() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    keepalive_on(&mut h, conn, false);
    h.advance(secs(7000));
    h.send(Seg::data(1001, iss + 1, b"still here"));
    let heard = h.now;
    h.read_all(conn);
    let sent = h.advance(secs(7250));
    // The delayed ACK for the data, then the first probe 7200 s after the data arrived.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].1.payload.is_empty() && sent[0].1.seq == iss + 1);
    assert_eq!(secs_since(heard, sent[1].0), 7200);
    assert_eq!(sent[1].1.seq, iss, "a probe");
}

#[test]
fn probes_may_carry_one_garbage_octet() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    keepalive_on(&mut h, conn, true);
    let sent = h.advance(secs(7200));
    assert_eq!(sent.len(), 1);
    let probe = &sent[0].1;
    // RFC 1122 4.2.3.6: "a single octet of garbage" at SND.UNA − 1, for peers that ignore
    // zero-length probes.
    assert_eq!((probe.seq, probe.payload.as_slice()), (iss, &[0u8][..]));
}

#[test]
fn keepalive_waits_while_data_is_in_flight() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let opts = ConnOptions {
        keepalive: KeepaliveConfig {
            enabled: true,
            time: secs(10),
            interval: secs(5),
            probes: 3,
            garbage_octet: false,
        },
        ..h.shard.options(conn).unwrap()
    };
    h.shard.set_options(h.now, conn, opts).unwrap();
    h.shard.send(h.now, conn, b"data").unwrap();
    h.recv_one();
    // Only retransmissions (1, 3, 7, 15 s ...) while data is unacknowledged: no probes.
    let sent = h.advance(secs(20));
    assert!(sent.iter().all(|(_, s)| s.payload == b"data"), "{sent:?}");
    assert_eq!(h.counters().tcp_keep_alive, 0);
    // Acknowledged: probing starts keepalive_time after that ACK.
    h.send(Seg::ack(1001, iss + 5));
    let acked = h.now;
    let sent = h.advance(secs(10));
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0 - acked, sent[0].1.seq), (secs(10), iss + 4));
}
