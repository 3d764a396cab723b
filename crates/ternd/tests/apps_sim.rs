//! The built-in applications end to end in the simulator: a server shard running them through
//! the worker's `AppDriver`, against scripted clients on another shard over a lossy link.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tern_rt::AppDriver;
use tern_sim::{Duration, Host, Instant, LinkConfig, Sim};
use tern_tcp::{
    ConnError, ConnHandle, Event, ListenConfig, Shard, State, SyncookieMode, TcpConfig,
};
use tern_wire::TcpFlags;
use ternd::apps::{Banner, Echo, Http, HttpConfig, Service, Services};

const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
const C: usize = 0;
const S: usize = 1;

/// A shard, and on the server the applications that run on it after every input.
struct Node {
    shard: Shard,
    driver: Option<AppDriver<Services>>,
}

impl Host for Node {
    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        let _ = self.shard.on_packet(now, packet);
        if let Some(d) = &mut self.driver {
            d.run(&mut self.shard, now);
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.shard.poll_transmit(now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.shard.poll_timeout()
    }

    fn on_timeout(&mut self, now: Instant) {
        self.shard.on_timeout(now);
        if let Some(d) = &mut self.driver {
            d.run(&mut self.shard, now);
        }
    }
}

/// A server with `services` on ports 7 (echo), 80 (http), 25 (banner, closing) and 26
/// (banner, staying open), and a client shard, over `link`.
fn world(seed: u64, link: LinkConfig) -> Sim<Node> {
    world_with(seed, link, TcpConfig::default())
}

fn world_with(seed: u64, link: LinkConfig, config: TcpConfig) -> Sim<Node> {
    let start = Instant::from_millis(1_000);
    let mut server = Shard::new(config.clone(), [2; 32], start).unwrap();
    let mut services = Services::default();
    let mut add = |port: u16, service: Service| {
        let l = server
            .listen(SocketAddr::new(SERVER_IP, port), ListenConfig::default())
            .unwrap();
        services.add(l, service);
    };
    add(7, Service::Echo(Echo));
    add(
        80,
        Service::Http(Http::new(&HttpConfig { body_size: 3000 })),
    );
    add(
        25,
        Service::Banner(Banner {
            greeting: b"220 tern ESMTP ready\r\n".to_vec(),
            close: true,
        }),
    );
    add(
        26,
        Service::Banner(Banner {
            greeting: b"hello\r\n".to_vec(),
            close: false,
        }),
    );
    let client = Shard::new(config, [1; 32], start).unwrap();
    let mut sim = Sim::with_start(seed, start);
    sim.add_host(
        Node {
            shard: client,
            driver: None,
        },
        [CLIENT_IP],
    );
    sim.add_host(
        Node {
            shard: server,
            driver: Some(AppDriver::new(services, 64)),
        },
        [SERVER_IP],
    );
    sim.set_links(C, S, link);
    sim
}

fn lossy() -> LinkConfig {
    LinkConfig::new()
        .delay(Duration::from_millis(2))
        .jitter(Duration::from_millis(1))
        .loss(0.02)
        .duplicate(0.01)
}

/// A scripted client connection: what it sends (and when to shut down), what it has read.
struct Client {
    conn: ConnHandle,
    to_send: Vec<u8>,
    sent: usize,
    shut_after_send: bool,
    received: Vec<u8>,
    eof: bool,
}

impl Client {
    fn open(sim: &mut Sim<Node>, port: u16, to_send: Vec<u8>, shut_after_send: bool) -> Client {
        let now = sim.now();
        let conn = sim
            .host_mut(C)
            .shard
            .connect(
                now,
                SocketAddr::new(CLIENT_IP, 0),
                SocketAddr::new(SERVER_IP, port),
            )
            .unwrap();
        Client {
            conn,
            to_send,
            sent: 0,
            shut_after_send,
            received: Vec::new(),
            eof: false,
        }
    }

    /// One step of the client: send what fits, read what came, shut down when told.
    fn step(&mut self, shard: &mut Shard, now: Instant) {
        let Ok(info) = shard.info(self.conn) else {
            self.eof = true;
            return;
        };
        if info.state == State::SynSent {
            return;
        }
        if self.sent < self.to_send.len() {
            if let Ok(n) = shard.send(now, self.conn, &self.to_send[self.sent..]) {
                self.sent += n;
                if self.sent == self.to_send.len() && self.shut_after_send {
                    shard.shutdown(now, self.conn).unwrap();
                }
            }
        }
        let mut buf = [0u8; 8192];
        loop {
            match shard.recv(now, self.conn, &mut buf) {
                Ok(0) => {
                    self.eof = true;
                    let _ = shard.close(now, self.conn);
                    return;
                }
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(ConnError::WouldBlock) => return,
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }
}

/// Runs the clients until each has seen end-of-stream; then lets the network go quiet.
fn run_clients(sim: &mut Sim<Node>, clients: &mut [Client]) {
    let limit = sim.now() + Duration::from_secs(600);
    sim.run_while(limit, |sim| {
        let now = sim.now();
        let node = sim.host_mut(C);
        while node.shard.poll_event().is_some() {}
        for c in clients.iter_mut() {
            c.step(&mut node.shard, now);
        }
        !clients.iter().all(|c| c.eof)
    })
    .unwrap_or_else(|e| panic!("clients did not finish: {e}"));
    sim.run_for(Duration::from_secs(300)).unwrap();
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_add(seed) as u8)
        .collect()
}

#[test]
fn echo_returns_every_byte_of_many_concurrent_clients() {
    let mut sim = world(1, lossy());
    let mut clients: Vec<Client> = (0..20)
        .map(|i| Client::open(&mut sim, 7, payload(i, 200_000), true))
        .collect();
    run_clients(&mut sim, &mut clients);
    for (i, c) in clients.iter().enumerate() {
        assert!(
            c.received == c.to_send,
            "client {i}: {} of {} bytes echoed",
            c.received.len(),
            c.to_send.len()
        );
    }
    let server = &sim.host(S);
    assert_eq!(
        server.shard.connection_count(),
        0,
        "echo closed its side after each peer's FIN"
    );
    assert_eq!(server.driver.as_ref().unwrap().live(), 0);
    assert_eq!(server.shard.buffers_in_use(), 0);
}

#[test]
fn http_answers_pipelined_requests_in_order_and_keeps_the_connection() {
    let mut sim = world(2, lossy());
    let one = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n".as_slice();
    let last = b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".as_slice();
    let mut pipelined = Vec::new();
    for _ in 0..5 {
        pipelined.extend_from_slice(one);
    }
    pipelined.extend_from_slice(b"HEAD /b HTTP/1.1\r\nHost: t\r\n\r\n");
    pipelined.extend_from_slice(last);
    let mut clients = vec![Client::open(&mut sim, 80, pipelined, false)];
    run_clients(&mut sim, &mut clients);
    // Read the responses back as a client would: headers, then Content-Length bytes of body
    // (none for HEAD).
    let mut rest = clients[0].received.as_slice();
    let mut bodies = Vec::new();
    let mut closing = Vec::new();
    for is_head in [false, false, false, false, false, true, false] {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, 3000, "HEAD announces the GET's length too");
        let body_len = if is_head { 0 } else { len };
        bodies.push(rest[end + 4..end + 4 + body_len].to_vec());
        closing.push(head.contains("Connection: close"));
        rest = &rest[end + 4 + body_len..];
    }
    assert!(
        rest.is_empty(),
        "{} bytes after the last response",
        rest.len()
    );
    let expected: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    for (i, b) in bodies.iter().enumerate() {
        assert!(*b == expected || (i == 5 && b.is_empty()), "response {i}");
    }
    assert_eq!(closing, [false, false, false, false, false, false, true]);
    assert!(clients[0].eof, "Connection: close closed the connection");
}

#[test]
fn http_refuses_a_malformed_request_with_400_and_closes() {
    let mut sim = world(3, lossy());
    let mut clients = vec![Client::open(
        &mut sim,
        80,
        b"GARBAGE\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        false,
    )];
    run_clients(&mut sim, &mut clients);
    let text = String::from_utf8(clients[0].received.clone()).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("Connection: close"));
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "nothing is answered after the bad request"
    );
    assert!(clients[0].eof);
}

#[test]
fn banner_speaks_first_and_closes_or_stays() {
    let mut sim = world(4, lossy());
    let mut clients = vec![Client::open(&mut sim, 25, Vec::new(), false)];
    run_clients(&mut sim, &mut clients);
    assert_eq!(clients[0].received, b"220 tern ESMTP ready\r\n");
    assert!(clients[0].eof, "the closing banner ends the connection");

    // The staying banner: greeting, then the connection waits for the client.
    let mut clients = vec![Client::open(&mut sim, 26, b"QUIT\r\n".to_vec(), true)];
    run_clients(&mut sim, &mut clients);
    assert_eq!(clients[0].received, b"hello\r\n");
    assert_eq!(
        sim.host(S).shard.connection_count(),
        0,
        "closed after the client's FIN"
    );
}

#[test]
fn accept_budget_leaves_the_rest_queued_until_the_next_turn() {
    let start = Instant::from_millis(1_000);
    let mut server = Shard::new(TcpConfig::default(), [2; 32], start).unwrap();
    let l = server
        .listen(SocketAddr::new(SERVER_IP, 7), ListenConfig::default())
        .unwrap();
    let mut services = Services::default();
    services.add(l, Service::Echo(Echo));
    let mut driver = AppDriver::new(services, 2);
    let mut client = Shard::new(TcpConfig::default(), [1; 32], start).unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..5 {
        client
            .connect(
                start,
                SocketAddr::new(CLIENT_IP, 0),
                SocketAddr::new(SERVER_IP, 7),
            )
            .unwrap();
    }
    // Hand-carry the handshakes between the two shards (no link needed).
    for _ in 0..4 {
        while let Some(n) = client.poll_transmit(start, &mut buf) {
            server.on_packet(start, &buf[..n]).unwrap();
        }
        while let Some(n) = server.poll_transmit(start, &mut buf) {
            client.on_packet(start, &buf[..n]).unwrap();
        }
    }
    assert_eq!(server.listener_info(l).unwrap().accept_queue, 5);
    driver.run(&mut server, start);
    assert_eq!(
        (driver.live(), server.listener_info(l).unwrap().accept_queue),
        (2, 3),
        "two per turn"
    );
    driver.run(&mut server, start);
    driver.run(&mut server, start);
    assert_eq!(
        (driver.live(), server.listener_info(l).unwrap().accept_queue),
        (5, 0)
    );
    while client
        .poll_event()
        .map(|e| !matches!(e, Event::Closed(..)))
        .unwrap_or(false)
    {}
}

/// Runs the simulation for `d`, stepping the client after every event. A network that goes
/// idle (nothing in flight, no timer anywhere) ends the run early: a stall is what some tests
/// look for.
fn run_client_for(sim: &mut Sim<Node>, client: &mut Client, d: Duration) {
    let limit = sim.now() + d;
    let r = sim.run_while(limit, |sim| {
        let now = sim.now();
        let node = sim.host_mut(C);
        while node.shard.poll_event().is_some() {}
        client.step(&mut node.shard, now);
        true
    });
    match r {
        Ok(_)
        | Err(tern_sim::SimError::Idle { .. })
        | Err(tern_sim::SimError::TimeLimit { .. }) => {}
        Err(e) => panic!("{e}"),
    }
}

/// The SMTP-like case the issue names: the server speaks first, and the client's third ACK of
/// the handshake is lost. With a SYN cookie the server holds no state, so nothing happens —
/// the client waits for the greeting, the server knows of no connection — until the client
/// sends something: its data segment carries the same ACK and completes the cookie handshake.
/// With the SYN queue the server retransmits its SYN-ACK after 1 s, the client answers it
/// with a new ACK, and the greeting follows on its own. Linux behaves the same way.
#[test]
fn banner_with_a_lost_third_ack_stalls_on_a_cookie_until_the_client_speaks() {
    for mode in [SyncookieMode::Always, SyncookieMode::Off] {
        let config = TcpConfig {
            syncookies: mode,
            ..TcpConfig::default()
        };
        let mut sim = world_with(5, LinkConfig::new().delay(Duration::from_millis(2)), config);
        // Lose the client's first pure ACK: the handshake's third segment.
        let mut dropped = false;
        sim.link_mut(C, S).set_drop_filter(move |packet, _| {
            let third_ack = tern_sim::parse_tcp(packet)
                .is_some_and(|(_, _, tcp)| tcp.flags == TcpFlags::ACK && tcp.payload.is_empty());
            let drop = third_ack && !dropped;
            dropped |= drop;
            drop
        });
        let mut client = Client::open(&mut sim, 26, Vec::new(), false);
        run_client_for(&mut sim, &mut client, Duration::from_secs(5));
        match mode {
            SyncookieMode::Always => {
                assert!(
                    client.received.is_empty(),
                    "no greeting: the server kept no state"
                );
                assert_eq!(sim.host(S).shard.connection_count(), 0);
                // The client speaks; its segment's ACK completes the cookie handshake.
                client.to_send = b"EHLO client\r\n".to_vec();
                run_client_for(&mut sim, &mut client, Duration::from_secs(2));
                assert_eq!(client.received, b"hello\r\n");
                assert_eq!(sim.host(S).shard.counters().syncookies_recv, 1);
            }
            _ => {
                assert_eq!(
                    client.received, b"hello\r\n",
                    "the SYN-ACK retransmission recovered it"
                );
                assert_eq!(sim.host(S).shard.counters().retrans_segs, 1);
            }
        }
    }
}
