//! Whole-connection scenarios in the simulator: a receiver that stops reading (zero window and
//! persist probing), keepalive over a live and then a dead link, and the RTO's exponential
//! backoff when the path dies (RFC 6298 5.5) until `retries2` gives up.

mod common;

use common::{pair, pattern, C, CLIENT, S, SERVER};
use std::cell::RefCell;
use std::rc::Rc;
use tern_sim::{Duration, Instant, LinkConfig, Sim, TraceKind};
use tern_tcp::{
    CloseReason, ConnError, ConnHandle, Event, KeepaliveConfig, Shard, State, TcpConfig,
};

fn link() -> LinkConfig {
    LinkConfig::new()
        .delay(Duration::from_millis(10))
        .bandwidth(100_000_000)
        .queue_packets(1000)
}

/// Connects the client to the server and returns both handles once established.
fn connect(sim: &mut Sim<Shard>, listener: tern_tcp::ListenerId) -> (ConnHandle, ConnHandle) {
    let now = sim.now();
    let c = sim.host_mut(C).connect(now, CLIENT, SERVER).unwrap();
    let mut s = None;
    sim.run_until_cond(sim.now() + Duration::from_secs(10), |sim| {
        while let Some(ev) = sim.host_mut(S).poll_event() {
            if let Event::Acceptable(l) = ev {
                s = sim.host_mut(S).accept(l);
            }
        }
        s.is_some()
            && sim
                .host(C)
                .info(c)
                .is_ok_and(|i| i.state == State::Established)
    })
    .unwrap();
    let _ = listener;
    while sim.host_mut(C).poll_event().is_some() {}
    (c, s.unwrap())
}

fn drain(shard: &mut Shard, now: Instant, conn: ConnHandle, into: &mut Vec<u8>) {
    let mut buf = [0u8; 16384];
    loop {
        match shard.recv(now, conn, &mut buf) {
            Ok(0) | Err(ConnError::WouldBlock) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn a_receiver_that_stops_reading_is_probed_and_the_transfer_resumes() {
    let config = TcpConfig {
        rmem: 64 * 1024,
        wmem: 256 * 1024,
        ..TcpConfig::default()
    };
    let (mut sim, l) = pair(11, config, link());
    let (c, s) = connect(&mut sim, l);
    let data = pattern(11, 1 << 20);
    let (mut sent, mut received) = (0usize, Vec::new());
    let pause_until = sim.now() + Duration::from_secs(60);
    let mut window_seen_zero = false;
    sim.run_while(sim.now() + Duration::from_secs(600), |sim| {
        let now = sim.now();
        if sent < data.len() {
            if let Ok(n) = sim.host_mut(C).send(now, c, &data[sent..]) {
                sent += n;
            }
        }
        window_seen_zero |= sim.host(C).info(c).is_ok_and(|i| i.snd_wnd == 0);
        // The server's application reads nothing for a minute.
        if now >= pause_until {
            drain(sim.host_mut(S), now, s, &mut received);
        }
        received.len() < data.len()
    })
    .unwrap();
    assert!(
        received == data,
        "{} of {} bytes",
        received.len(),
        data.len()
    );
    assert!(window_seen_zero, "the receiver's window closed");
    let probes = sim.host(C).counters().tcp_win_probe;
    // Probes back off from the RTO (about 200 ms here) doubling: 0.2+0.4+...+25.6 s < 60 s,
    // so about eight probes fit in the pause, and never more than one per 200 ms.
    assert!(
        (5..=12).contains(&probes),
        "{probes} zero-window probes in 60 s"
    );
    assert_eq!(
        sim.host(C).counters().tcp_abort_on_timeout,
        0,
        "an answering peer is never given up"
    );
    assert_eq!(sim.host(C).info(c).unwrap().state, State::Established);
}

#[test]
fn keepalive_probes_a_live_peer_forever_and_declares_a_dead_one_dead() {
    let (mut sim, l) = pair(12, TcpConfig::default(), link());
    let (c, _s) = connect(&mut sim, l);
    let mut opts = sim.host(C).options(c).unwrap();
    opts.keepalive = KeepaliveConfig {
        enabled: true,
        time: Duration::from_secs(10),
        interval: Duration::from_secs(2),
        probes: 3,
        garbage_octet: false,
    };
    let now = sim.now();
    sim.host_mut(C).set_options(now, c, opts).unwrap();

    // An hour of silence on a working link: a probe every 10 s, each answered.
    sim.run_for(Duration::from_secs(3600)).unwrap();
    assert_eq!(sim.host(C).info(c).unwrap().state, State::Established);
    let probes = sim.host(C).counters().tcp_keep_alive;
    assert!(
        (355..=360).contains(&probes),
        "{probes} keepalive probes in an hour of 10 s idle"
    );

    // The path dies. The last answer came at most 10 s ago; three probes 2 s apart go unanswered,
    // then the connection is dead: at most 10 + 3 x 2 = 16 s from the last answer.
    sim.set_links(C, S, link().loss(1.0));
    let died = sim.now();
    let mut closed_at = None;
    sim.run_while(died + Duration::from_secs(60), |sim| {
        while let Some(ev) = sim.host_mut(C).poll_event() {
            if let Event::Closed(h, reason) = ev {
                assert_eq!((h, reason), (c, CloseReason::TimedOut));
                closed_at = Some(sim.now());
            }
        }
        closed_at.is_none()
    })
    .unwrap();
    let after = closed_at.unwrap() - died;
    assert!(
        after >= Duration::from_secs(6) && after <= Duration::from_secs(16),
        "declared dead {after} after the link died"
    );
    assert_eq!(sim.host(C).counters().tcp_abort_on_timeout, 1);
    assert_eq!(sim.host(C).connection_count(), 0);
}

#[test]
fn the_rto_doubles_on_a_dead_path_until_retries2_gives_up() {
    let (mut sim, l) = pair(13, TcpConfig::default(), link());
    let (c, _s) = connect(&mut sim, l);
    // A little data so the RTT estimator has samples, then the path dies.
    let now = sim.now();
    sim.host_mut(C).send(now, c, b"first").unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    let una = sim.host(C).info(c).unwrap().snd_una;
    sim.set_links(C, S, link().loss(1.0));
    let sends: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let log = sends.clone();
    sim.set_trace(move |ev| {
        if let (TraceKind::Sent | TraceKind::Dropped(_), Some((_, _, tcp))) = (ev.kind, ev.tcp()) {
            if ev.from == C
                && tcp.seq_number == una
                && !tcp.payload.is_empty()
                && matches!(ev.kind, TraceKind::Sent)
            {
                log.borrow_mut().push(ev.at);
            }
        }
    });
    let now = sim.now();
    sim.host_mut(C).send(now, c, b"second").unwrap();
    let mut closed = None;
    sim.run_while(now + Duration::from_secs(2000), |sim| {
        while let Some(ev) = sim.host_mut(C).poll_event() {
            if let Event::Closed(_, reason) = ev {
                closed = Some((reason, sim.now()));
            }
        }
        closed.is_none()
    })
    .unwrap();
    let sends = sends.borrow();
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // RFC 6298 5.5: each gap doubles the last, until rto_max (120 s) caps it.
    for pair in gaps.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            b == (2 * a).min(120_000) || (a == 120_000 && b == 120_000),
            "gaps {gaps:?}"
        );
    }
    assert_eq!(
        *gaps.last().unwrap(),
        120_000,
        "the RTO reaches rto_max: {gaps:?}"
    );
    let (reason, at) = closed.unwrap();
    assert_eq!(reason, CloseReason::TimedOut);
    // Linux's tcp_retries2 = 15: 924.6 s = (2^10 - 1) x 200 ms + 6 x 120 s, counted from the
    // first retransmission (tcp_retransmit_skb saves retrans_stamp after restamping the
    // segment). The connection is given up at the first expiry at least that long after it;
    // the wheel fires on whole milliseconds, never early.
    let bound = tern_tcp::retries_timeout(15, Duration::from_millis(200), Duration::from_secs(120));
    let first_rtx = sends[1];
    let last_rtx = *sends.last().unwrap();
    assert!(
        last_rtx - first_rtx < bound,
        "retransmitted past the bound: {}",
        last_rtx - first_rtx
    );
    assert!(
        at - first_rtx >= bound,
        "gave up too early: {}",
        at - first_rtx
    );
    assert!(
        at - last_rtx <= Duration::from_millis(120_001),
        "gave up later than one capped RTO"
    );
    let delivery_problems = sim.host(C).counters().tcp_retrans_fail;
    assert_eq!(delivery_problems, 1, "retries1 reported once");
}
