//! SYN cookies in the listen path (RFC 4987 3.6, Linux's `tcp_syncookies`): which SYNs get a
//! cookie, what the cookie keeps (MSS, window scale and SACK even without timestamps), when its
//! ACK is accepted (two key periods), what a forged or expired one gets, and the accept-queue
//! rules that apply to cookie connections too.

mod harness;

use harness::{config, ms, secs, Harness, Seg, PEER, PEER2, PEER3, R, SA};
use tern_tcp::{ListenConfig, State, SyncookieMode, TcpConfig};

fn cookies(mode: SyncookieMode) -> TcpConfig {
    TcpConfig {
        syncookies: mode,
        ..config()
    }
}

/// A listener whose SYN queue holds one request, already taken by PEER3.
fn full_syn_queue(cfg: TcpConfig) -> (Harness, tern_tcp::ListenerId) {
    let (mut h, l) = Harness::listening_with(
        cfg,
        ListenConfig {
            backlog: 16,
            syn_backlog: 1,
        },
    );
    h.peer = PEER3;
    h.send(Seg::syn(77));
    assert!(h.recv_one().is(SA));
    h.peer = PEER;
    (h, l)
}

#[test]
fn a_full_syn_queue_answers_with_a_cookie_that_keeps_every_option() {
    let (mut h, l) = full_syn_queue(cookies(SyncookieMode::OnOverflow));
    h.send(Seg::syn(1000).ws(7).sack_perm());
    let synack = h.recv_one();
    assert!(synack.is(SA), "{synack:?}");
    assert_eq!(
        (synack.ack, synack.mss, synack.ws, synack.sack_perm),
        (Some(1001), Some(1460), Some(2), true)
    );
    // Nothing was kept: the SYN queue still holds only the first request.
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    assert_eq!(
        (
            h.counters().tcp_req_q_full_do_cookies,
            h.counters().syncookies_sent
        ),
        (1, 1)
    );

    h.send(Seg::ack(1001, synack.seq + 1));
    let conn = h
        .shard
        .accept(l)
        .expect("the cookie completed the handshake");
    let i = h.shard.info(conn).unwrap();
    assert_eq!(i.state, State::Established);
    // Without timestamps, window scale and SACK still survive (Linux would lose them).
    assert_eq!(
        (i.snd_wscale, i.rcv_wscale, i.sack, i.mss, i.timestamps),
        (7, 2, true, 1460, false)
    );
    assert_eq!(
        (h.counters().syncookies_recv, h.counters().passive_opens),
        (1, 1)
    );
}

#[test]
fn the_cookie_mss_is_the_largest_table_entry_not_above_the_clients() {
    let (mut h, l) = Harness::listening(cookies(SyncookieMode::Always));
    h.send(Seg {
        mss: Some(1400),
        ..Seg::syn(1000)
    });
    let synack = h.recv_one();
    h.send(Seg::ack(1001, synack.seq + 1));
    let conn = h.shard.accept(l).unwrap();
    assert_eq!(
        h.shard.info(conn).unwrap().mss,
        1220,
        "1400 falls to the 1220 entry"
    );
}

#[test]
fn always_mode_never_uses_the_syn_queue_and_timestamps_carry_more_tag_bits() {
    let (mut h, l) = Harness::listening(TcpConfig {
        syncookies: SyncookieMode::Always,
        ..harness::config_ts()
    });
    h.send(Seg::syn(1000).ts(5000, 0).sack_perm());
    let synack = h.recv_one();
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 0);
    let (tsval, tsecr) = synack.ts.expect("timestamps negotiated");
    assert_eq!(tsecr, 5000);
    h.send(Seg::ack(1001, synack.seq + 1).ts(5001, tsval));
    let conn = h.shard.accept(l).expect("accepted");
    assert!(h.shard.info(conn).unwrap().timestamps);
    // Our next segment's TSval is not behind the cookie's (RFC 7323: monotonic).
    h.advance(ms(5));
    h.shard.send(h.now, conn, b"x").unwrap();
    let data = h.recv_one();
    assert!((data.ts.unwrap().0.wrapping_sub(tsval) as i32) >= 0);
    assert_eq!(data.ts.unwrap().1, 5001, "TS.Recent is the ACK's TSval");

    // A TSecr that does not echo the cookie's tag bits is refused.
    h.peer = PEER2;
    h.send(Seg::syn(1000).ts(7000, 0));
    let synack = h.recv_one();
    let (tsval, _) = synack.ts.unwrap();
    h.send(Seg::ack(1001, synack.seq + 1).ts(7001, tsval ^ 1));
    assert!(h.recv_one().is(R));
    assert_eq!(h.counters().syncookies_failed, 1);
}

#[test]
fn a_cookie_lives_two_periods_across_a_key_rotation_and_then_fails() {
    let period = TcpConfig::default().syncookie_period;
    let (mut h, l) = Harness::listening(cookies(SyncookieMode::Always));
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    // Accepted after more than one period: the key rotated in between.
    h.advance(period + secs(1));
    h.send(Seg::ack(1001, synack.seq + 1));
    assert!(h.shard.accept(l).is_some());

    h.peer = PEER2;
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    h.advance(period * 2 + secs(1));
    h.send(Seg::ack(1001, synack.seq + 1));
    let rst = h.recv_one();
    assert!(rst.is(R));
    assert_eq!(rst.seq, synack.seq + 1, "<SEQ=SEG.ACK><CTL=RST>");
    assert!(h.shard.accept(l).is_none());
    assert_eq!(h.counters().syncookies_failed, 1);
}

#[test]
fn a_cookie_ack_carrying_data_delivers_it() {
    let (mut h, l) = Harness::listening(cookies(SyncookieMode::Always));
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    h.send(Seg::data(1001, synack.seq + 1, b"GET / HTTP/1.1\r\n\r\n"));
    let conn = h.shard.accept(l).expect("accepted");
    assert_eq!(h.read_all(conn), b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn forged_acks_are_counted_and_answered_by_a_rate_limited_rst() {
    let (mut h, l) = Harness::listening(TcpConfig {
        syncookie_rst_rate: 2,
        ..cookies(SyncookieMode::Always)
    });
    for i in 0..5u32 {
        h.send(Seg::ack(1001, 0x1234_5678 + i));
    }
    let rsts = h.recv();
    assert_eq!(rsts.len(), 2, "two RSTs per second at most");
    assert!(rsts.iter().all(|r| r.is(R)));
    assert_eq!(h.counters().syncookies_failed, 5);
    assert!(h.shard.accept(l).is_none());
    h.advance(secs(1));
    h.send(Seg::ack(1001, 0x1234_0000));
    assert_eq!(h.recv().len(), 1, "the limit is per second");

    let (mut h, _) = Harness::listening(TcpConfig {
        syncookie_rst_rate: 0,
        ..cookies(SyncookieMode::Always)
    });
    h.send(Seg::ack(1001, 0x1234_5678));
    h.recv_none();
    assert_eq!(h.counters().syncookies_failed, 1);
}

#[test]
fn with_cookies_off_an_ack_to_a_listener_gets_a_rst_without_validation() {
    let (mut h, _) = Harness::listening(cookies(SyncookieMode::Off));
    h.send(Seg::ack(1001, 0x1234_5678));
    assert!(h.recv_one().is(R));
    assert_eq!(h.counters().syncookies_failed, 0);
}

#[test]
fn a_full_accept_queue_drops_cookie_syns_and_acks_or_resets_them() {
    let listen = ListenConfig {
        backlog: 1,
        syn_backlog: 16,
    };
    for abort_on_overflow in [false, true] {
        let cfg = TcpConfig {
            abort_on_overflow,
            ..cookies(SyncookieMode::Always)
        };
        let (mut h, l) = Harness::listening_with(cfg, listen);
        h.send(Seg::syn(1000));
        let first = h.recv_one();
        // A second client gets its cookie before the first one's ACK fills the queue.
        h.peer = PEER2;
        h.send(Seg::syn(1000));
        let second = h.recv_one();
        h.peer = PEER;
        h.send(Seg::ack(1001, first.seq + 1));
        assert_eq!(h.shard.listener_info(l).unwrap().accept_queue, 1);
        // A SYN while the accept queue is full is dropped, cookies or not.
        h.peer = PEER3;
        h.send(Seg::syn(1000));
        h.recv_none();
        // The second client's ACK finds the queue full.
        h.peer = PEER2;
        h.send(Seg::ack(1001, second.seq + 1));
        if abort_on_overflow {
            assert!(
                h.recv_one().is(R),
                "tcp_abort_on_overflow answers with a RST"
            );
        } else {
            h.recv_none();
            // Once the application accepts, the client's retransmitted ACK (same cookie)
            // succeeds: the cookie is still valid.
            let _ = h.shard.accept(l).unwrap();
            h.send(Seg::ack(1001, second.seq + 1));
            assert!(
                h.shard.accept(l).is_some(),
                "the retransmitted ACK completed it"
            );
        }
        assert_eq!(h.counters().listen_overflows, 2);
    }
}
