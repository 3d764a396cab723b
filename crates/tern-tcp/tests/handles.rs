//! Connection handles: a handle outlives its connection safely (every call fails with
//! `InvalidHandle`, even once the slot holds a new connection), and each call refuses what the
//! connection's state does not allow.

mod harness;

use harness::{config, Harness, Seg};
use tern_tcp::{CloseReason, ConnError, ConnHandle, ConnOptions, Event, Shard};

/// Every per-connection call of the shard with `h`, and what each returned.
fn every_call(shard: &mut Shard, h: ConnHandle, now: tern_tcp::Instant) -> Vec<ConnError> {
    let opts = ConnOptions::from_config(shard.config());
    let mut buf = [0u8; 16];
    vec![
        shard.send(now, h, b"x").unwrap_err(),
        shard.recv(now, h, &mut buf).unwrap_err(),
        shard.shutdown(now, h).unwrap_err(),
        shard.close(now, h).unwrap_err(),
        shard.abort(now, h).unwrap_err(),
        shard.set_options(now, h, opts).unwrap_err(),
        shard.options(h).unwrap_err(),
        shard.info(h).unwrap_err(),
    ]
}

#[test]
fn every_call_with_a_stale_handle_fails_even_after_the_slot_is_reused() {
    let (mut h, l) = Harness::listening(config());
    let (old, _) = h.open_passive(l);
    h.shard.abort(h.now, old).unwrap();
    h.recv();
    let now = h.now;
    assert_eq!(
        every_call(&mut h.shard, old, now),
        vec![ConnError::InvalidHandle; 8]
    );
    // A new connection takes the freed slot; the old handle must not reach it.
    h.peer = harness::PEER2;
    let (new, new_iss) = h.open_passive(l);
    assert_ne!(old, new);
    assert_eq!(
        every_call(&mut h.shard, old, now),
        vec![ConnError::InvalidHandle; 8]
    );
    let info = h.shard.info(new).unwrap();
    assert_eq!(info.tuple.remote(), harness::PEER2);
    assert_eq!(info.snd_una.0, new_iss + 1);
    h.shard.send(h.now, new, b"still mine").unwrap();
    assert_eq!(h.recv_one().payload, b"still mine");
}

#[test]
fn a_reset_connection_with_nothing_to_read_invalidates_its_handle_at_once() {
    let (mut h, l) = Harness::listening(config());
    let (conn, _) = h.open_passive(l);
    h.send(Seg::rst(1001));
    assert_eq!(h.events(), vec![Event::Closed(conn, CloseReason::Reset)]);
    let now = h.now;
    assert_eq!(
        every_call(&mut h.shard, conn, now),
        vec![ConnError::InvalidHandle; 8]
    );
}

#[test]
fn data_received_before_a_reset_can_still_be_read_then_the_handle_goes() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    h.send(Seg::data(1001, iss + 1, b"last words"));
    h.send(Seg::rst(1011));
    assert_eq!(
        h.events(),
        vec![
            Event::Readable(conn),
            Event::Closed(conn, CloseReason::Reset)
        ]
    );
    let mut buf = [0u8; 64];
    assert_eq!(h.shard.send(h.now, conn, b"x"), Err(ConnError::NotWritable));
    assert_eq!(h.shard.recv(h.now, conn, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(h.shard.recv(h.now, conn, &mut buf), Ok(0));
    assert_eq!(
        h.shard.recv(h.now, conn, &mut buf),
        Err(ConnError::InvalidHandle)
    );
    h.recv_none();
}

#[test]
fn sending_after_shutdown_or_close_is_refused() {
    let (mut h, l) = Harness::listening(config());
    let (conn, _) = h.open_passive(l);
    h.shard.shutdown(h.now, conn).unwrap();
    h.recv_one();
    assert_eq!(h.shard.send(h.now, conn, b"x"), Err(ConnError::NotWritable));
    // Shutting down twice is harmless.
    assert_eq!(h.shard.shutdown(h.now, conn), Ok(()));
    h.recv_none();

    h.peer = harness::PEER2;
    let (conn, _) = h.open_passive(l);
    h.shard.close(h.now, conn).unwrap();
    h.recv_one();
    assert_eq!(h.shard.send(h.now, conn, b"x"), Err(ConnError::NotWritable));
}

#[test]
fn recv_returns_the_data_before_the_peers_fin_then_end_of_stream() {
    let (mut h, l) = Harness::listening(config());
    let (conn, iss) = h.open_passive(l);
    let mut buf = [0u8; 4];
    assert_eq!(
        h.shard.recv(h.now, conn, &mut buf),
        Err(ConnError::WouldBlock),
        "nothing yet, and no FIN"
    );
    h.send(Seg::data(1001, iss + 1, b"abcdef").with_flags(tern_wire::TcpFlags::FIN));
    h.recv();
    assert_eq!(h.shard.recv(h.now, conn, &mut buf), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(h.shard.recv(h.now, conn, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ef");
    for _ in 0..3 {
        assert_eq!(
            h.shard.recv(h.now, conn, &mut buf),
            Ok(0),
            "end of stream, again"
        );
    }
    // Half-closed: our side can still send.
    h.shard.send(h.now, conn, b"ok").unwrap();
    assert_eq!(h.recv_one().payload, b"ok");
}

#[test]
fn sending_with_nothing_to_send_and_a_full_buffer() {
    let (mut h, l) = Harness::listening(config());
    let (conn, _) = h.open_passive(l);
    assert_eq!(h.shard.send(h.now, conn, b""), Ok(0));
    // wmem is 16 KiB: a larger write is taken in part, then refused until ACKs free room.
    assert_eq!(h.shard.send(h.now, conn, &[0; 20_000]), Ok(16_384));
    assert_eq!(
        h.shard.send(h.now, conn, b"more"),
        Err(ConnError::WouldBlock)
    );
    let sent = h.recv();
    let acked: u32 = sent.iter().map(|s| s.payload.len() as u32).sum();
    h.send(Seg::ack(1001, sent[0].seq + acked));
    assert_eq!(h.events(), vec![Event::Writable(conn)]);
    assert_eq!(h.shard.send(h.now, conn, b"more"), Ok(4));
}
