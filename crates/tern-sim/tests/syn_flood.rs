//! A SYN flood in the simulator: a million SYNs from random spoofed sources in 198.18.128.0/17
//! at a shard with `syn_backlog = 128` and SYN cookies on overflow, while 1,000 legitimate
//! clients connect, exchange data and close. Every legitimate client must succeed, the shard
//! must keep no per-SYN state beyond its SYN queue, and the counters must add up exactly.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use tern_sim::{Duration, Host, Instant, LinkConfig, Sim, TraceKind};
use tern_tcp::{ConnError, ConnHandle, Event, ListenConfig, Shard, TcpConfig};
use tern_wire::{IpProtocol, IpRepr, SeqNum, TcpFlags, TcpPacket, TcpRepr, TcpTimestamp};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FLOODER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

/// Sends `remaining` Linux-style SYNs, one every `interval`, from random addresses of
/// 198.18.128.0/17 and random ports; swallows the SYN-ACKs (the spoofed sources route here).
struct Flooder {
    next_at: Instant,
    interval: Duration,
    remaining: u64,
    rng: u64,
    synacks: u64,
}

impl Flooder {
    fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic and good enough to scatter addresses and ports.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Either a shard (server or client) or the flooder.
enum Node {
    Shard(Box<Shard>),
    Flooder(Flooder),
}

impl Node {
    fn shard(&mut self) -> &mut Shard {
        match self {
            Node::Shard(s) => s,
            Node::Flooder(_) => unreachable!("not a shard"),
        }
    }
}

impl Host for Node {
    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        match self {
            Node::Shard(s) => {
                let _ = s.on_packet(now, packet);
            }
            Node::Flooder(f) => f.synacks += 1,
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        match self {
            Node::Shard(s) => s.poll_transmit(now, buf),
            Node::Flooder(f) => {
                if f.remaining == 0 || now < f.next_at {
                    return None;
                }
                f.remaining -= 1;
                f.next_at += f.interval;
                let r = f.next_random();
                let src = Ipv4Addr::from(0xc612_8000 | (r as u32 & 0x7fff)); // 198.18.128.0/17
                let tcp = TcpRepr {
                    src_port: 1024 + (r >> 32) as u16 % 64_000,
                    dst_port: 80,
                    flags: TcpFlags::SYN,
                    seq_number: SeqNum((r >> 16) as u32),
                    window_len: 64_240,
                    max_seg_size: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamp: Some(TcpTimestamp {
                        tsval: r as u32,
                        tsecr: 0,
                    }),
                    ..TcpRepr::default()
                };
                let ip = IpRepr::new(
                    src.into(),
                    SERVER_IP.into(),
                    IpProtocol::Tcp,
                    tcp.buffer_len(),
                    64,
                )
                .unwrap();
                let len = ip.buffer_len();
                ip.emit(&mut buf[..len]).unwrap();
                let hl = ip.header_len();
                tcp.emit(
                    &mut TcpPacket::new_unchecked(&mut buf[hl..len]),
                    &src.into(),
                    &SERVER_IP.into(),
                    tern_wire::ChecksumMode::Verify,
                )
                .unwrap();
                Some(len)
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Node::Shard(s) => s.poll_timeout(),
            Node::Flooder(f) => (f.remaining > 0).then_some(f.next_at),
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if let Node::Shard(s) = self {
            s.on_timeout(now);
        }
    }
}

/// One legitimate client: connects at `start`, sends `MSG`, reads the echo, closes.
struct Legit {
    start: Instant,
    conn: Option<ConnHandle>,
    sent: bool,
    echoed: Vec<u8>,
    done: bool,
}

const MSG: &[u8] = b"hello from a legitimate client, please echo me back";
const FLOOD: u64 = 1_000_000;
const LEGIT: usize = 1_000;

#[test]
fn a_million_spoofed_syns_do_not_stop_a_thousand_legitimate_clients() {
    let start = Instant::from_millis(1_000);
    let config = TcpConfig::default();
    let mut server = Shard::new(config.clone(), [3; 32], start).unwrap();
    let listener = server
        .listen(
            SocketAddr::new(SERVER_IP.into(), 80),
            ListenConfig {
                backlog: 4096,
                syn_backlog: 128,
            },
        )
        .unwrap();
    let client = Shard::new(config, [4; 32], start).unwrap();
    let mut sim = Sim::with_start(99, start);
    let (s, c, f) = (0, 1, 2);
    sim.add_host(Node::Shard(Box::new(server)), [IpAddr::V4(SERVER_IP)]);
    sim.add_host(Node::Shard(Box::new(client)), [IpAddr::V4(CLIENT_IP)]);
    // 1,000,000 SYNs over 10 s of virtual time: 100,000 SYN/s.
    let flooder = Flooder {
        next_at: start,
        interval: Duration::from_micros(10),
        remaining: FLOOD,
        rng: 7,
        synacks: 0,
    };
    sim.add_host(Node::Flooder(flooder), [IpAddr::V4(FLOODER_IP)]);
    sim.set_default_route(Some(f));
    sim.set_links(s, c, LinkConfig::new().delay(Duration::from_millis(5)));
    sim.set_links(s, f, LinkConfig::new().delay(Duration::from_millis(1)));

    // Count every SYN that reaches the server, legitimate or spoofed.
    let syns_delivered = Rc::new(RefCell::new(0u64));
    let count = syns_delivered.clone();
    sim.set_trace(move |ev| {
        if ev.kind == TraceKind::Delivered && ev.to == Some(0) {
            if let Some((_, _, tcp)) = ev.tcp() {
                if tcp.flags.contains(TcpFlags::SYN) && !tcp.flags.contains(TcpFlags::ACK) {
                    *count.borrow_mut() += 1;
                }
            }
        }
    });

    // Legitimate clients start every 10 ms across the flood.
    let mut legit: Vec<Legit> = (0..LEGIT)
        .map(|i| Legit {
            start: start + Duration::from_millis(10 * i as u64),
            conn: None,
            sent: false,
            echoed: Vec::new(),
            done: false,
        })
        .collect();
    let (mut max_conns, mut max_syn_queue) = (0usize, 0usize);
    let limit = start + Duration::from_secs(120);
    sim.run_while(limit, |sim| {
        let now = sim.now();
        // The server echoes on every connection it accepts.
        {
            let server = sim.host_mut(s).shard();
            while let Some(ev) = server.poll_event() {
                if let Event::Acceptable(l) = ev {
                    while server.accept(l).is_some() {}
                }
            }
            let conns: Vec<ConnHandle> = server.connections().collect();
            let mut buf = [0u8; 256];
            for h in conns {
                match server.recv(now, h, &mut buf) {
                    Ok(0) => {
                        let _ = server.close(now, h);
                    }
                    Ok(n) => {
                        server.send(now, h, &buf[..n]).unwrap();
                    }
                    Err(ConnError::WouldBlock) | Err(ConnError::InvalidHandle) => {}
                    Err(e) => panic!("server recv: {e}"),
                }
            }
            max_conns = max_conns.max(server.connection_count());
            max_syn_queue = max_syn_queue.max(server.listener_info(listener).unwrap().syn_queue);
        }
        // The clients.
        let client = sim.host_mut(c).shard();
        while client.poll_event().is_some() {}
        for l in legit.iter_mut().filter(|l| !l.done && l.start <= now) {
            let conn = *l.conn.get_or_insert_with(|| {
                client
                    .connect(
                        now,
                        SocketAddr::new(CLIENT_IP.into(), 0),
                        SocketAddr::new(SERVER_IP.into(), 80),
                    )
                    .unwrap()
            });
            let Ok(info) = client.info(conn) else {
                panic!("a legitimate connection failed")
            };
            if info.state == tern_tcp::State::SynSent {
                continue;
            }
            if !l.sent {
                client.send(now, conn, MSG).unwrap();
                l.sent = true;
            }
            let mut buf = [0u8; 256];
            if let Ok(n) = client.recv(now, conn, &mut buf) {
                l.echoed.extend_from_slice(&buf[..n]);
            }
            if l.echoed.len() == MSG.len() {
                client.close(now, conn).unwrap();
                l.done = true;
            }
        }
        !(legit.iter().all(|l| l.done) && sim.host(f).poll_timeout().is_none())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {} of {LEGIT} clients done",
            legit.iter().filter(|l| l.done).count()
        )
    });
    // Let every request time out and every connection close.
    sim.run_for(Duration::from_secs(200)).unwrap();

    assert!(
        legit.iter().all(|l| l.echoed == MSG),
        "every legitimate client got its echo"
    );
    let server = sim.host_mut(s).shard();
    let k = server.counters().clone();
    let delivered = *syns_delivered.borrow();
    assert_eq!(
        delivered,
        FLOOD + LEGIT as u64,
        "every SYN reached the server exactly once (no loss, no retransmission)"
    );
    // No per-SYN state: the SYN queue never exceeds its bound, and connections are only the
    // legitimate ones.
    assert!(max_syn_queue <= 128, "SYN queue reached {max_syn_queue}");
    assert!(max_conns <= LEGIT, "{max_conns} connections at once");
    assert_eq!(server.connection_count(), 0);
    assert_eq!(
        server.listener_info(listener).unwrap().syn_queue,
        0,
        "every spoofed request timed out"
    );
    // The counters add up: every SYN became a request or a cookie; requests either completed
    // (legitimate) or timed out after their SYN-ACK retransmissions (spoofed).
    let requests = k.passive_opens - k.syncookies_recv + k.attempt_fails;
    assert_eq!(
        delivered,
        k.syncookies_sent + requests + k.listen_drops,
        "{k:?}"
    );
    assert_eq!(k.tcp_req_q_full_do_cookies, k.syncookies_sent);
    assert_eq!(k.passive_opens, LEGIT as u64);
    assert_eq!(k.syncookies_failed, 0);
    // The spoofed requests kept the SYN queue full: the legitimate clients got in on cookies.
    assert!(
        k.syncookies_recv >= LEGIT as u64 * 9 / 10,
        "{} cookie connections",
        k.syncookies_recv
    );
    assert!(
        k.syncookies_sent > FLOOD * 9 / 10,
        "the flood was answered with cookies: {}",
        k.syncookies_sent
    );
    let Node::Flooder(fl) = sim.host(f) else {
        unreachable!()
    };
    // The spoofed sources received a SYN-ACK per cookie, plus each queued request's SYN-ACK
    // and its five retransmissions.
    assert_eq!(
        fl.synacks,
        k.syncookies_sent - k.syncookies_recv + k.attempt_fails * 6
    );
}
