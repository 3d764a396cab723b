//! Arbitrary segments against a connection in every state: whatever arrives, in whatever order,
//! at whatever time, the engine neither panics nor breaks an invariant (SND.UNA ≤ SND.NXT ≤
//! SND.MAX, buffers within their sizes, nothing leaked once all is closed).

mod harness;

use harness::{config, ms, secs, Harness, Seg};
use proptest::prelude::*;
use tern_tcp::{ConnHandle, ListenerId, State};
use tern_wire::TcpFlags;

/// How to bring the connection under test into its state.
#[derive(Debug, Clone, Copy)]
enum Start {
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

const STARTS: [Start; 10] = [
    Start::Listen,
    Start::SynSent,
    Start::SynReceived,
    Start::Established,
    Start::FinWait1,
    Start::FinWait2,
    Start::CloseWait,
    Start::Closing,
    Start::LastAck,
    Start::TimeWait,
];

/// The harness with a connection in `start`; returns it with the listener, the peer's next sequence number and
/// our ISS (the numbers random segments are drawn around).
fn setup(start: Start) -> (Harness, ListenerId, Option<ConnHandle>, u32, u32) {
    let (mut h, l): (Harness, ListenerId) = Harness::listening(config());
    if let Start::Listen = start {
        return (h, l, None, 1000, 0);
    }
    if let Start::SynSent | Start::SynReceived = start {
        let conn = h.shard.connect(h.now, harness::US, harness::PEER).unwrap();
        let syn = h.recv_one();
        if let Start::SynReceived = start {
            h.send(Seg::syn(7000));
            h.recv();
            assert_eq!(h.shard.info(conn).unwrap().state, State::SynReceived);
        }
        return (h, l, Some(conn), 7001, syn.seq);
    }
    let (conn, iss) = h.open_passive(l);
    let data = b"some data";
    h.shard.send(h.now, conn, data).unwrap();
    h.recv();
    let (mut peer, mut ours) = (1001u32, iss + 1 + data.len() as u32);
    match start {
        Start::Established => {}
        Start::FinWait1 => {
            h.shard.shutdown(h.now, conn).unwrap();
            h.recv();
            ours += 1;
        }
        Start::FinWait2 | Start::TimeWait => {
            h.shard.shutdown(h.now, conn).unwrap();
            h.recv();
            ours += 1;
            h.send(Seg::ack(peer, ours));
            if let Start::TimeWait = start {
                h.send(Seg::fin(peer, ours));
                h.recv();
                peer += 1;
                assert_eq!(h.shard.timewait_count(), 1);
                return (h, l, None, peer, ours);
            }
        }
        Start::CloseWait | Start::LastAck => {
            h.send(Seg::fin(peer, ours));
            h.recv();
            peer += 1;
            if let Start::LastAck = start {
                h.shard.shutdown(h.now, conn).unwrap();
                h.recv();
                ours += 1;
            }
        }
        Start::Closing => {
            h.shard.shutdown(h.now, conn).unwrap();
            h.recv();
            h.send(Seg::fin(peer, iss + 1));
            h.recv();
            peer += 1;
            ours += 1;
        }
        _ => unreachable!(),
    }
    (h, l, Some(conn), peer, ours)
}

#[derive(Debug, Clone)]
enum Step {
    Segment {
        flags: u16,
        seq_off: i64,
        ack_off: i64,
        wnd: u16,
        len: usize,
        ts: Option<(u32, u32)>,
        ws: Option<u8>,
        mss: Option<u16>,
        sack: Vec<(i64, i64)>,
    },
    Wait(u64),
    AppRead,
    AppSend(usize),
    AppClose,
}

/// Offsets concentrated where the interesting edges are (exact, just off, in window, far).
fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        3 => -3i64..=3,
        2 => -70_000i64..70_000,
        1 => any::<u32>().prop_map(i64::from),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let segment = (
        0u16..0x200,
        offset(),
        offset(),
        any::<u16>(),
        prop_oneof![3 => Just(0usize), 2 => 1usize..100, 1 => 1000usize..2000],
        prop::option::of((any::<u32>(), any::<u32>())),
        prop::option::of(0u8..20),
        prop::option::of(0u16..9000),
        prop::collection::vec((offset(), offset()), 0..3),
    )
        .prop_map(
            |(flags, seq_off, ack_off, wnd, len, ts, ws, mss, sack)| Step::Segment {
                flags,
                seq_off,
                ack_off,
                wnd,
                len,
                ts,
                ws,
                mss,
                sack,
            },
        );
    prop_oneof![
        8 => segment,
        2 => prop_oneof![Just(1u64), Just(40), Just(200), Just(1_000), Just(60_000), Just(400_000)].prop_map(Step::Wait),
        1 => Just(Step::AppRead),
        1 => (1usize..5000).prop_map(Step::AppSend),
        1 => Just(Step::AppClose),
    ]
}

fn check(h: &Harness) {
    for conn in h.shard.connections() {
        let i = h.shard.info(conn).unwrap();
        assert!(
            !i.snd_una.after(i.snd_nxt) && !i.snd_nxt.after(i.snd_max),
            "sequence order broken: {i:?}"
        );
        assert!(
            i.send_queue <= h.shard.config().wmem && i.recv_queue <= h.shard.config().rmem,
            "{i:?}"
        );
    }
    assert_eq!(
        h.shard.counters().curr_estab as usize,
        h.shard
            .connections()
            .filter(|c| {
                h.shard
                    .info(*c)
                    .is_ok_and(|i| matches!(i.state, State::Established | State::CloseWait))
            })
            .count(),
        "CurrEstab matches the connections in ESTABLISHED and CLOSE-WAIT"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5e65_0e57),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_segments_in_every_state(start in prop::sample::select(&STARTS[..]), steps in prop::collection::vec(step(), 1..40)) {
        let (mut h, listener, conn, peer, ours) = setup(start);
        for step in steps {
            match step {
                Step::Segment { flags, seq_off, ack_off, wnd, len, ts, ws, mss, sack } => {
                    let flags = TcpFlags::from_bits_truncate(flags);
                    let mut seg = Seg::ack(peer.wrapping_add(seq_off as u32), ours.wrapping_add(ack_off as u32));
                    seg.flags = flags;
                    if !flags.contains(TcpFlags::ACK) {
                        seg.ack = None;
                    }
                    seg.wnd = wnd;
                    seg.payload = vec![0xab; len];
                    seg.ts = ts;
                    let syn = flags.contains(TcpFlags::SYN);
                    seg.ws = ws.filter(|_| syn);
                    seg.mss = mss.filter(|_| syn);
                    seg.sack = if syn { Vec::new() } else {
                        sack.iter().map(|(l, r)| (peer.wrapping_add(*l as u32), peer.wrapping_add(*r as u32))).collect()
                    };
                    h.send(seg);
                    h.recv();
                }
                Step::Wait(n) => {
                    h.advance(ms(n));
                }
                Step::AppRead => {
                    if let Some(c) = conn {
                        h.read_all(c);
                    }
                }
                Step::AppSend(n) => {
                    if let Some(c) = conn {
                        let _ = h.shard.send(h.now, c, &vec![1u8; n]);
                        h.recv();
                    }
                }
                Step::AppClose => {
                    if let Some(c) = conn {
                        let _ = h.shard.close(h.now, c);
                        h.recv();
                    }
                }
            }
            check(&h);
        }
        // Whatever happened, aborting every connection (including any the random segments
        // opened through the listener) and waiting long enough frees everything.
        while h.shard.accept(listener).is_some() {}
        let all: Vec<_> = h.shard.connections().collect();
        for c in all {
            h.shard.abort(h.now, c).unwrap();
        }
        h.recv();
        h.advance(secs(3600));
        prop_assert_eq!(h.shard.connection_count(), 0);
        prop_assert_eq!(h.shard.timewait_count(), 0);
        prop_assert_eq!(h.shard.buffers_in_use(), 0);
        prop_assert_eq!(h.shard.counters().curr_estab, 0);
    }

    #[test]
    fn arbitrary_bytes_are_dropped_and_counted(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut h = Harness::new(config());
        let before = h.shard.counters().in_errs;
        if h.shard.on_packet(h.now, &bytes).is_err() {
            prop_assert_eq!(h.shard.counters().in_errs, before + 1);
        }
        h.recv();
    }
}
