//! The listen path (RFC 9293 3.10.7.2 LISTEN, 3.10.7.4 SYN-RECEIVED; Linux's request socks,
//! SYN queue and accept queue): SYN-ACK retransmission, queue overflows, bad final ACKs and
//! RSTs, data on the final ACK, IPv6 and wildcard listeners.

mod harness;

use harness::{config, ms, secs, Harness, Seg, A, PEER, PEER2, PEER3, PEER6, R, RA, SA, US, US6};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tern_tcp::{Event, ListenConfig, State, SyncookieMode, TcpConfig};

#[test]
fn the_syn_ack_is_retransmitted_at_1_3_7_15_31_s_and_the_request_dropped_at_63_s() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    let start = h.now;
    let sent = h.advance(secs(62) + ms(999));
    let at: Vec<u64> = sent.iter().map(|(t, _)| (*t - start).as_millis()).collect();
    // tcp_synack_retries = 5: 1 s doubling.
    assert_eq!(at, vec![1_000, 3_000, 7_000, 15_000, 31_000]);
    assert!(
        sent.iter().all(|(_, s)| *s == synack),
        "the same SYN-ACK each time"
    );
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    // 63 s: the last one went unanswered for 32 s; the request is dropped.
    assert!(h.advance(ms(1)).is_empty());
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 0);
    assert_eq!(h.counters().attempt_fails, 1);
    assert_eq!(h.counters().retrans_segs, 5);
    // A final ACK now finds only the listener: RST (<SEQ=SEG.ACK><CTL=RST>).
    h.send(Seg::ack(1001, synack.seq + 1));
    let rst = h.recv_one();
    assert!(rst.is(R));
    assert_eq!(rst.seq, synack.seq + 1);
    assert!(h.events().is_empty());
}

#[test]
fn a_retransmitted_syn_gets_the_syn_ack_again() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000).sack_perm().ws(5));
    let synack = h.recv_one();
    h.advance(ms(300));
    h.send(Seg::syn(1000).sack_perm().ws(5));
    assert_eq!(
        h.recv_one(),
        synack,
        "our SYN-ACK was lost: the same one again"
    );
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    h.send(Seg::ack(1001, synack.seq + 1));
    assert!(h.shard.accept(l).is_some());
}

#[test]
fn a_full_accept_queue_drops_syns_and_final_acks_until_the_application_accepts() {
    let listen = ListenConfig {
        backlog: 1,
        syn_backlog: 16,
    };
    let (mut h, l) = Harness::listening_with(config(), listen);
    // PEER2 starts a handshake while there is room.
    h.peer = PEER2;
    h.send(Seg::syn(2000));
    let synack2 = h.recv_one();
    // PEER completes one: the accept queue (backlog 1) is full.
    h.peer = PEER;
    h.send(Seg::syn(1000));
    let synack1 = h.recv_one();
    h.send(Seg::ack(1001, synack1.seq + 1));
    assert_eq!(h.events(), vec![Event::Acceptable(l)]);
    // Linux drops a new SYN while the accept queue is full (tcp_conn_request)...
    h.peer = PEER3;
    h.send(Seg::syn(3000));
    h.recv_none();
    assert_eq!(
        (h.counters().listen_overflows, h.counters().listen_drops),
        (1, 1)
    );
    // ...and a final ACK (tcp_v4_syn_recv_sock), leaving the request in SYN-RECEIVED.
    h.peer = PEER2;
    h.send(Seg::ack(2001, synack2.seq + 1));
    h.recv_none();
    assert_eq!(
        (h.counters().listen_overflows, h.counters().listen_drops),
        (2, 2)
    );
    let info = h.shard.listener_info(l).unwrap();
    assert_eq!((info.accept_queue, info.syn_queue), (1, 1));
    // The application accepts; the client's retransmitted ACK now completes.
    let first = h.shard.accept(l).unwrap();
    assert_eq!(h.shard.info(first).unwrap().tuple.remote(), PEER);
    h.send(Seg::ack(2001, synack2.seq + 1));
    h.recv_none();
    assert_eq!(h.events(), vec![Event::Acceptable(l)]);
    let second = h.shard.accept(l).unwrap();
    assert_eq!(h.shard.info(second).unwrap().tuple.remote(), PEER2);
    assert_eq!(h.counters().passive_opens, 2);
}

#[test]
fn a_full_syn_queue_drops_syns_when_cookies_are_off() {
    let listen = ListenConfig {
        backlog: 16,
        syn_backlog: 1,
    };
    let cookies_off = TcpConfig {
        syncookies: SyncookieMode::Off,
        ..config()
    };
    let (mut h, l) = Harness::listening_with(cookies_off, listen);
    h.send(Seg::syn(1000));
    assert!(h.recv_one().is(SA));
    h.peer = PEER2;
    h.send(Seg::syn(2000));
    h.recv_none();
    assert_eq!(h.counters().tcp_req_q_full_drop, 1);
    assert_eq!(h.counters().listen_drops, 1);
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
}

#[test]
fn a_final_ack_for_the_wrong_sequence_number_gets_a_rst() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    // RFC 9293 3.10.7.4 SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
    h.send(Seg::ack(1001, synack.seq + 7));
    let rst = h.recv_one();
    assert!(rst.is(R));
    assert_eq!(rst.seq, synack.seq + 7);
    // The request is untouched: the right ACK still completes it.
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    h.send(Seg::ack(1001, synack.seq + 1));
    assert!(h.shard.accept(l).is_some());
}

#[test]
fn only_a_rst_at_rcv_nxt_removes_a_request() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    // RFC 5961 §3: not exactly RCV.NXT (1001): no effect.
    h.send(Seg::rst(1002));
    h.recv_none();
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 1);
    h.send(Seg::rst(1001));
    h.recv_none();
    assert_eq!(h.shard.listener_info(l).unwrap().syn_queue, 0);
    assert_eq!(h.counters().attempt_fails, 1);
    // No more SYN-ACK retransmissions for it.
    assert!(h.advance(secs(70)).is_empty());
    h.send(Seg::ack(1001, synack.seq + 1));
    assert!(h.recv_one().is(R));
}

#[test]
fn the_final_ack_may_carry_data_and_a_fin() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    h.send(Seg::data(1001, synack.seq + 1, b"hello").with_flags(tern_wire::TcpFlags::FIN));
    // The FIN is acknowledged at once, data included.
    let ack = h.recv_one();
    assert!(ack.is(A));
    assert_eq!((ack.seq, ack.ack), (synack.seq + 1, Some(1007)));
    // Nothing is reported before accept; then the data and the FIN are.
    assert_eq!(h.events(), vec![Event::Acceptable(l)]);
    let conn = h.shard.accept(l).unwrap();
    assert_eq!(
        h.events(),
        vec![Event::Readable(conn), Event::PeerClosed(conn)]
    );
    assert_eq!(h.shard.info(conn).unwrap().state, State::CloseWait);
    assert_eq!(h.read_all(conn), b"hello");
}

#[test]
fn data_on_the_final_ack_is_acknowledged_like_any_data() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    h.send(Seg::data(1001, synack.seq + 1, b"GET /"));
    h.recv_none();
    let sent = h.advance(ms(40));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.ack, Some(1006));
    let conn = h.shard.accept(l).unwrap();
    assert_eq!(h.read_all(conn), b"GET /");
}

#[test]
fn an_ipv6_wildcard_listener_accepts_ipv6() {
    let mut h = Harness::new(config());
    let any6 = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 80);
    let l = h.shard.listen(any6, ListenConfig::default()).unwrap();
    h.us = US6;
    h.peer = PEER6;
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    assert!(synack.is(SA));
    // 1460 is the MSS of a 1500-byte link under IPv4; IPv6's header is 20 bytes longer.
    assert_eq!(synack.mss, Some(1440));
    h.send(Seg::ack(1001, synack.seq + 1));
    let conn = h.shard.accept(l).unwrap();
    let info = h.shard.info(conn).unwrap();
    assert_eq!((info.tuple.local(), info.tuple.remote()), (US6, PEER6));
    assert_eq!(info.mss, 1440);
    h.shard.send(h.now, conn, &[0; 3000]).unwrap();
    let lens: Vec<usize> = h.recv().iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![1440, 1440]);
    // An IPv4 SYN to the same port finds no IPv4 listener.
    h.send_from(PEER, US, Seg::syn(1000));
    let rst = h.recv_packets();
    assert_eq!(rst.len(), 1);
    assert_eq!((rst[0].dst, rst[0].seg.flags), (PEER, RA));
}

#[test]
fn an_ipv4_wildcard_listener_serves_every_local_address_and_an_exact_one_wins() {
    let mut h = Harness::new(config());
    let any4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80);
    let wildcard = h.shard.listen(any4, ListenConfig::default()).unwrap();
    let exact = h.shard.listen(US, ListenConfig::default()).unwrap();
    // To US: the exact listener.
    h.send(Seg::syn(1000));
    assert!(h.recv_one().is(SA));
    assert_eq!(h.shard.listener_info(exact).unwrap().syn_queue, 1);
    assert_eq!(h.shard.listener_info(wildcard).unwrap().syn_queue, 0);
    // To another local address: the wildcard, answering from that address.
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 99)), 80);
    h.send_from(PEER, other, Seg::syn(1000));
    let out = h.recv_packets();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].src, out[0].dst, out[0].seg.flags),
        (other, PEER, SA)
    );
    assert_eq!(h.shard.listener_info(wildcard).unwrap().syn_queue, 1);
    h.send_from(PEER, other, Seg::ack(1001, out[0].seg.seq + 1));
    let conn = h.shard.accept(wildcard).unwrap();
    assert_eq!(h.shard.info(conn).unwrap().tuple.local(), other);
}

#[test]
fn a_syn_to_a_port_nobody_listens_on_gets_rst_ack() {
    let (mut h, _) = Harness::listening(config());
    let closed_port = SocketAddr::new(US.ip(), 81);
    h.send_from(PEER, closed_port, Seg::syn(1000));
    let out = h.recv_packets();
    assert_eq!(out.len(), 1);
    // RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, from the port asked for.
    assert_eq!((out[0].src, out[0].dst), (closed_port, PEER));
    assert_eq!(out[0].seg.flags, RA);
    assert_eq!((out[0].seg.seq, out[0].seg.ack), (0, Some(1001)));
    assert_eq!(h.counters().out_rsts, 1);
}

#[test]
fn a_connection_reset_while_it_waits_in_the_accept_queue_is_skipped() {
    let (mut h, l) = Harness::listening(config());
    h.send(Seg::syn(1000));
    let synack = h.recv_one();
    h.send(Seg::ack(1001, synack.seq + 1));
    h.peer = PEER2;
    h.send(Seg::syn(2000));
    let synack2 = h.recv_one();
    h.send(Seg::ack(2001, synack2.seq + 1));
    assert_eq!(h.events(), vec![Event::Acceptable(l)]);
    assert_eq!(h.shard.listener_info(l).unwrap().accept_queue, 2);
    // PEER gives up before the application gets to it.
    h.peer = PEER;
    h.send(Seg::rst(1001));
    assert!(
        h.events().is_empty(),
        "nobody holds it yet: no Closed event"
    );
    let conn = h.shard.accept(l).unwrap();
    assert_eq!(h.shard.info(conn).unwrap().tuple.remote(), PEER2);
    assert!(h.shard.accept(l).is_none());
    assert_eq!(h.shard.connection_count(), 1);
}
