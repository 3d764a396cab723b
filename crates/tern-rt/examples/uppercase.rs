//! Your own protocol on tern: a line server that answers every line with it in upper case and
//! `BYE` with a goodbye and a close.
//!
//! An application is a `tern_rt::App`: callbacks the worker calls on the connections its
//! listeners accept, each with a `Conn` to read, write, shut down or close, and a state of
//! the application's own type per connection. Callbacks run inside the worker that owns the
//! connection, so they never block: read what is there, write what fits, return.
//!
//! This example runs the application on a simulated network (tern-sim), so it needs no root
//! and no NIC: `cargo run -p tern-rt --example uppercase`. On the datapath the same
//! `AppDriver` is what `tern_rt::Worker` drives (see ternd's `daemon.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tern_rt::{App, AppDriver, Conn};
use tern_sim::{Duration, Host, Instant, LinkConfig, Sim};
use tern_tcp::{CloseReason, ConnError, ListenConfig, Shard, TcpConfig};

/// The application: no shared state beyond a count of lines served.
#[derive(Default)]
struct Uppercase {
    lines: u64,
}

/// Per connection: the bytes of a line not complete yet, and replies that did not fit.
#[derive(Default)]
struct LineState {
    partial: Vec<u8>,
    pending: Vec<u8>,
    closing: bool,
}

impl Uppercase {
    /// Writes what is pending; false if the send buffer is full (on_writable resumes).
    fn flush(conn: &mut Conn<'_>, st: &mut LineState) -> bool {
        if let Ok(n) = conn.write(&st.pending) {
            st.pending.drain(..n);
        }
        if st.pending.is_empty() && st.closing {
            let _ = conn.close();
        }
        st.pending.is_empty()
    }
}

impl App for Uppercase {
    type State = LineState;

    fn on_accept(&mut self, conn: &mut Conn<'_>, st: &mut LineState) {
        st.pending.extend_from_slice(b"hello, I shout back\n");
        Self::flush(conn, st);
    }

    fn on_readable(&mut self, conn: &mut Conn<'_>, st: &mut LineState) {
        let mut buf = [0u8; 4096];
        while Self::flush(conn, st) && !st.closing {
            match conn.read(&mut buf) {
                Ok(0) => {
                    st.closing = true;
                }
                Ok(n) => {
                    st.partial.extend_from_slice(&buf[..n]);
                    while let Some(end) = st.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = st.partial.drain(..=end).collect();
                        self.lines += 1;
                        if line.trim_ascii() == b"BYE" {
                            st.pending.extend_from_slice(b"goodbye\n");
                            st.closing = true;
                        } else {
                            st.pending.extend(line.to_ascii_uppercase());
                        }
                    }
                }
                Err(ConnError::WouldBlock) | Err(_) => return,
            }
        }
    }

    fn on_writable(&mut self, conn: &mut Conn<'_>, st: &mut LineState) {
        Self::flush(conn, st);
    }

    fn on_closed(&mut self, _st: LineState, reason: Option<CloseReason>) {
        println!("server: connection closed ({reason:?})");
    }
}

/// A shard with the application on top: what a worker is, minus the AF_XDP socket.
struct Server {
    shard: Shard,
    driver: AppDriver<Uppercase>,
}

/// The client: a bare shard the example drives by hand.
enum Node {
    Server(Box<Server>),
    Client(Box<Shard>),
}

impl Node {
    fn shard(&mut self) -> &mut Shard {
        match self {
            Node::Server(s) => &mut s.shard,
            Node::Client(c) => c,
        }
    }
}

impl Host for Node {
    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        let _ = self.shard().on_packet(now, packet);
        if let Node::Server(s) = self {
            s.driver.run(&mut s.shard, now);
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.shard().poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Node::Server(s) => s.shard.poll_timeout(),
            Node::Client(c) => c.poll_timeout(),
        }
    }
    fn on_timeout(&mut self, now: Instant) {
        self.shard().on_timeout(now);
        if let Node::Server(s) = self {
            s.driver.run(&mut s.shard, now);
        }
    }
}

fn main() {
    let server_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 7777);
    let client_ip = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    let start = Instant::from_millis(1);
    let mut shard = Shard::new(TcpConfig::default(), [1; 32], start).expect("valid config");
    shard
        .listen(server_addr, ListenConfig::default())
        .expect("listen");
    let server = Server {
        shard,
        driver: AppDriver::new(Uppercase::default(), 16),
    };
    let client = Shard::new(TcpConfig::default(), [2; 32], start).expect("valid config");

    let mut sim = Sim::with_start(1, start);
    sim.add_host(Node::Server(Box::new(server)), [server_addr.ip()]);
    sim.add_host(Node::Client(Box::new(client)), [client_ip]);
    sim.set_all_links(LinkConfig::new().delay(Duration::from_millis(5)));

    let conn = sim
        .host_mut(1)
        .shard()
        .connect(start, SocketAddr::new(client_ip, 0), server_addr)
        .expect("connect");
    let script: &[&[u8]] = &[b"tern is a tcp stack\n", b"on af_xdp\n", b"BYE\n"];
    let mut next = 0;
    let mut transcript = Vec::new();
    let limit = start + Duration::from_secs(10);
    sim.run_while(limit, |sim| {
        let now = sim.now();
        let client = sim.host_mut(1).shard();
        while client.poll_event().is_some() {}
        let mut buf = [0u8; 1024];
        loop {
            match client.recv(now, conn, &mut buf) {
                Ok(0) => return false,
                Ok(n) => transcript.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        // Send the next line once the answer to the previous one has come back.
        let answered = transcript.iter().filter(|&&b| b == b'\n').count();
        if next < script.len()
            && answered == next + 1
            && client.send(now, conn, script[next]).is_ok()
        {
            next += 1;
        }
        true
    })
    .expect("the conversation ends");
    print!("{}", String::from_utf8_lossy(&transcript));
    if let Node::Server(s) = sim.host(0) {
        println!("server: {} lines served", s.driver.app().lines);
    }
}
