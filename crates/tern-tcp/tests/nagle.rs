//! Nagle's algorithm (RFC 9293 3.7.4, on by default as in Linux) against `TCP_NODELAY`
//! (`ConnOptions::nagle = false`): a small write waits while data is unacknowledged.

mod harness;

use harness::{config, ms, Harness, Seg};
use tern_tcp::ConnOptions;

#[test]
fn with_nagle_a_small_write_waits_for_the_outstanding_data_to_be_acknowledged() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    assert!(h.shard.options(conn).unwrap().nagle, "on by default");
    // Nothing in flight: the first small write goes at once.
    h.shard.send(h.now, conn, b"a").unwrap();
    let a = h.recv_one();
    assert_eq!((a.seq, a.payload.as_slice()), (iss + 1, &b"a"[..]));
    // "a" is unacknowledged: the next small writes wait, and coalesce.
    h.shard.send(h.now, conn, b"b").unwrap();
    h.recv_none();
    h.shard.send(h.now, conn, b"c").unwrap();
    assert!(h.advance(ms(500)).is_empty());
    // The ACK releases them as one segment.
    h.send(Seg::ack(1001, iss + 2));
    let bc = h.recv_one();
    assert_eq!((bc.seq, bc.payload.as_slice()), (iss + 2, &b"bc"[..]));
}

#[test]
fn with_nodelay_every_write_goes_at_once() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let opts = ConnOptions {
        nagle: false,
        ..h.shard.options(conn).unwrap()
    };
    h.shard.set_options(h.now, conn, opts).unwrap();
    for (i, byte) in [b"a", b"b", b"c"].into_iter().enumerate() {
        h.shard.send(h.now, conn, byte).unwrap();
        let s = h.recv_one();
        assert_eq!(
            (s.seq, s.payload.as_slice()),
            (iss + 1 + i as u32, &byte[..])
        );
    }
}

#[test]
fn nagle_holds_only_the_partial_tail_full_segments_go() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"a").unwrap();
    h.recv_one();
    // With "a" outstanding, two full segments can go; the 80-byte tail waits.
    h.shard.send(h.now, conn, &[1; 3000]).unwrap();
    let lens: Vec<usize> = h.recv().iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![1460, 1460]);
    // Acknowledging only "a" leaves the two segments outstanding: still waiting.
    h.send(Seg::ack(1001, iss + 2));
    h.recv_none();
    h.send(Seg::ack(1001, iss + 2 + 2920));
    let tail = h.recv_one();
    assert_eq!((tail.seq, tail.payload.len()), (iss + 2 + 2920, 80));
}

#[test]
fn turning_nagle_off_releases_what_it_held() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"a").unwrap();
    h.recv_one();
    h.shard.send(h.now, conn, b"b").unwrap();
    h.recv_none();
    // Linux's TCP_NODELAY pushes pending data when it is set.
    let opts = ConnOptions {
        nagle: false,
        ..h.shard.options(conn).unwrap()
    };
    h.shard.set_options(h.now, conn, opts).unwrap();
    let b = h.recv_one();
    assert_eq!((b.seq, b.payload.as_slice()), (iss + 2, &b"b"[..]));
}

#[test]
fn closing_sends_a_held_tail_with_the_fin_at_once() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.shard.send(h.now, conn, b"a").unwrap();
    h.recv_one();
    h.shard.send(h.now, conn, b"tail").unwrap();
    h.recv_none();
    // Nothing can follow a FIN, so Nagle has nothing to wait for (Linux pushes with Nagle off
    // when closing): the tail and the FIN leave together without waiting for the ACK of "a".
    h.shard.close(h.now, conn).unwrap();
    let seg = h.recv_one();
    assert_eq!((seg.seq, seg.payload.as_slice()), (iss + 2, &b"tail"[..]));
    assert!(seg.flags.contains(tern_wire::TcpFlags::FIN), "{seg:?}");
}
