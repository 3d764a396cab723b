//! Two engines in the simulator with a scripted application on each side, and a checker that
//! watches every segment on the wire for the invariants a TCP sender must keep.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use tern_sim::{Duration, Instant, LinkConfig, Sim, TraceEvent, TraceKind};
use tern_tcp::{
    CloseReason, ConnError, ConnHandle, Event, ListenConfig, ListenerId, Shard, State, TcpConfig,
};
use tern_wire::{SeqNum, TcpFlags};

pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
pub const SERVER: SocketAddr = SocketAddr::new(SERVER_IP, 80);
pub const CLIENT: SocketAddr = SocketAddr::new(CLIENT_IP, 0);
pub const C: usize = 0;
pub const S: usize = 1;

/// The bytes a transfer carries: a seeded pattern, so a misplaced byte is caught.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn secret(seed: u64, side: u8) -> [u8; 32] {
    let mut s = [side; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s
}

/// A simulator with a client shard (host 0) and a server shard (host 1) listening on port 80.
pub fn pair(seed: u64, config: TcpConfig, link: LinkConfig) -> (Sim<Shard>, ListenerId) {
    let start = Instant::from_millis(10_000);
    let mut sim = Sim::with_start(seed, start);
    let client = Shard::new(config.clone(), secret(seed, 1), start).expect("valid config");
    let mut server = Shard::new(config, secret(seed, 2), start).expect("valid config");
    let listener = server
        .listen(SERVER, ListenConfig::default())
        .expect("listen");
    sim.add_host(client, [CLIENT_IP]);
    sim.add_host(server, [SERVER_IP]);
    sim.set_links(C, S, link);
    (sim, listener)
}

/// How one side of a transfer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// Shut down after sending everything, then close after the peer's FIN (graceful).
    Graceful,
    /// Abort with a RST once everything the peer sent has arrived.
    Abort,
}

/// A bidirectional transfer: the client sends `up` bytes, the server sends `down` bytes, each
/// reads everything, then both close as `close` says.
pub struct Transfer {
    pub up: Vec<u8>,
    pub down: Vec<u8>,
    pub listener: ListenerId,
    pub client: Option<ConnHandle>,
    pub server: Option<ConnHandle>,
    /// Bytes each side has queued so far.
    pub sent: [usize; 2],
    /// Bytes each side received.
    pub received: [Vec<u8>; 2],
    pub eof: [bool; 2],
    pub shut: [bool; 2],
    pub closed: [Option<CloseReason>; 2],
    pub close: [Closer; 2],
    /// Which side shuts down first once it has sent everything; the other waits for its EOF.
    /// `None`: both shut down as soon as they have sent everything (simultaneous when the
    /// timing allows).
    pub first: Option<usize>,
}

impl Transfer {
    pub fn new(listener: ListenerId, up: Vec<u8>, down: Vec<u8>) -> Transfer {
        Transfer {
            up,
            down,
            listener,
            client: None,
            server: None,
            sent: [0; 2],
            received: [Vec::new(), Vec::new()],
            eof: [false; 2],
            shut: [false; 2],
            closed: [None; 2],
            close: [Closer::Graceful; 2],
            first: Some(C),
        }
    }

    /// The application logic of both sides, run after every simulator step.
    pub fn step(&mut self, sim: &mut Sim<Shard>) {
        self.sides(sim);
        self.end_step(sim);
    }

    fn sides(&mut self, sim: &mut Sim<Shard>) {
        let now = sim.now();
        if self.client.is_none() {
            self.client = Some(
                sim.host_mut(C)
                    .connect(now, CLIENT, SERVER)
                    .expect("connect"),
            );
        }
        for side in [C, S] {
            while let Some(ev) = sim.host_mut(side).poll_event() {
                match ev {
                    Event::Acceptable(l) => {
                        assert_eq!(side, S);
                        if let Some(conn) = sim.host_mut(S).accept(l) {
                            self.server = Some(conn);
                        }
                    }
                    Event::Closed(_, reason) => self.closed[side] = Some(reason),
                    _ => {}
                }
            }
            let Some(conn) = (if side == C { self.client } else { self.server }) else {
                continue;
            };
            let shard = sim.host_mut(side);
            // Read everything that arrived; a closed connection keeps its unread data readable
            // until end-of-stream, then its handle is gone.
            let mut buf = [0u8; 8192];
            loop {
                match shard.recv(now, conn, &mut buf) {
                    Ok(0) => {
                        self.eof[side] = true;
                        break;
                    }
                    Ok(n) => self.received[side].extend_from_slice(&buf[..n]),
                    Err(ConnError::WouldBlock) => break,
                    Err(ConnError::InvalidHandle) if self.closed[side].is_some() => break,
                    Err(e) => panic!("side {side}: recv: {e}"),
                }
            }
            if self.closed[side].is_some() {
                continue;
            }
            // Write what fits.
            let data = if side == C { &self.up } else { &self.down };
            if !self.shut[side]
                && self.sent[side] < data.len()
                && shard.info(conn).is_ok_and(|i| i.state != State::SynSent)
            {
                match shard.send(now, conn, &data[self.sent[side]..]) {
                    Ok(n) => self.sent[side] += n,
                    Err(ConnError::WouldBlock) => {}
                    Err(e) => panic!("side {side}: send: {e}"),
                }
            }
            // Like a real application, shut down only once connected (a shutdown during
            // SYN-SENT aborts the connect, as in Linux).
            let connected = shard.info(conn).is_ok_and(|i| i.state != State::SynSent);
            let all_sent = self.sent[side] == data.len() && connected;
            let peer_len = if side == C {
                self.down.len()
            } else {
                self.up.len()
            };
            let all_received = self.received[side].len() == peer_len;
            match self.close[side] {
                Closer::Graceful => {
                    // Without a first side, both shut down together below.
                    let my_turn = self
                        .first
                        .is_some_and(|first| first == side || self.eof[side])
                        || (self.first.is_none() && self.shut[1 - side] && self.eof[side]);
                    if all_sent && my_turn && !self.shut[side] {
                        self.shut[side] = true;
                        shard.shutdown(now, conn).expect("shutdown");
                    }
                    if self.eof[side] && self.shut[side] {
                        // Give the connection up: the engine finishes the close on its own and
                        // reports nothing more (Linux's orphaned socket). Whether it really ends
                        // is checked by the callers through the shards' counts and counters.
                        shard.close(now, conn).expect("close");
                        self.closed[side] = Some(CloseReason::Normal);
                    }
                }
                Closer::Abort => {
                    if all_received && all_sent && shard.info(conn).is_ok_and(|i| i.send_queue == 0)
                    {
                        shard.abort(now, conn).expect("abort");
                        self.closed[side] = Some(CloseReason::Aborted);
                    }
                }
            }
        }
    }

    /// Runs after both sides' application steps.
    fn end_step(&mut self, sim: &mut Sim<Shard>) {
        self.shut_both(sim);
    }

    /// Simultaneous close: once both sides have queued everything, both shut down in the
    /// same instant, so their FINs cross.
    fn shut_both(&mut self, sim: &mut Sim<Shard>) {
        let (Some(c), Some(s)) = (self.client, self.server) else {
            return;
        };
        if self.first.is_some() || self.shut != [false; 2] {
            return;
        }
        let connected = sim.host(C).info(c).is_ok_and(|i| i.state != State::SynSent);
        if connected && self.sent[C] == self.up.len() && self.sent[S] == self.down.len() {
            let now = sim.now();
            sim.host_mut(C).shutdown(now, c).expect("shutdown");
            sim.host_mut(S).shutdown(now, s).expect("shutdown");
            self.shut = [true; 2];
        }
    }

    pub fn done(&self) -> bool {
        self.closed[C].is_some() && self.closed[S].is_some()
    }
}

/// Runs a transfer to its end (bounded by `limit` of virtual time), then lets the network go
/// quiet; panics with the seed on failure.
pub fn run(sim: &mut Sim<Shard>, t: &mut Transfer, limit: Duration) {
    let deadline = sim.now() + limit;
    let seed = sim.seed();
    let r = sim.run_while(deadline, |sim| {
        t.step(sim);
        !t.done()
    });
    if let Err(e) = r {
        panic!(
            "seed {seed}: transfer did not finish: {e}; sent {:?}, received [{}, {}], closed {:?}",
            t.sent,
            t.received[0].len(),
            t.received[1].len(),
            t.closed
        );
    }
    assert!(
        t.done(),
        "seed {seed}: transfer did not finish by {deadline:?}: closed {:?}",
        t.closed
    );
}

/// Per-direction view of the wire, built from the trace: what each side told the other.
#[derive(Default)]
pub struct WireChecker {
    /// Window scale each host announced in its SYN (`None`: not yet seen or not offered).
    ws: [Option<u8>; 2],
    scaling: bool,
    /// MSS each host announced.
    mss: [u16; 2],
    /// Right edge of the receive window each host advertised and its peer received.
    edge: [Option<SeqNum>; 2],
    /// Violations found.
    pub errors: Vec<String>,
    /// Data segments seen, per sender.
    pub data_segments: [u64; 2],
    pub retransmitted_bytes: HashMap<usize, u64>,
}

impl WireChecker {
    /// Installs the checker as the simulator's trace hook.
    pub fn install(sim: &mut Sim<Shard>) -> Rc<RefCell<WireChecker>> {
        let checker = Rc::new(RefCell::new(WireChecker {
            mss: [536; 2],
            ..WireChecker::default()
        }));
        let c = checker.clone();
        sim.set_trace(move |ev| c.borrow_mut().observe(ev));
        checker
    }

    fn observe(&mut self, ev: &TraceEvent<'_>) {
        let Some((_, _, tcp)) = ev.tcp() else { return };
        let from = ev.from;
        if from > 1 {
            return;
        }
        let to = 1 - from;
        let syn = tcp.flags.contains(TcpFlags::SYN);
        match ev.kind {
            TraceKind::Sent => {
                if syn {
                    self.ws[from] = tcp.window_scale;
                    self.mss[from] = tcp.max_seg_size.unwrap_or(536);
                    self.scaling = self.ws[0].is_some() && self.ws[1].is_some();
                }
                if !tcp.payload.is_empty() {
                    self.data_segments[from] += 1;
                    // No segment beyond the peer's MSS (the MSS counts data only, RFC 9293 3.7.1).
                    if tcp.payload.len() > usize::from(self.mss[to]) {
                        self.errors.push(format!(
                            "{} {ev}: {} bytes > peer MSS {}",
                            ev.at,
                            tcp.payload.len(),
                            self.mss[to]
                        ));
                    }
                    // No data beyond the window the peer advertised (a probe of 1 byte at most).
                    if let Some(edge) = self.edge[to] {
                        let end = tcp.seq_number + tcp.payload.len();
                        if end.after(edge + 1u32) {
                            self.errors.push(format!(
                                "{} {ev}: data ends {} beyond the window edge {}",
                                ev.at, end, edge
                            ));
                        }
                    }
                }
            }
            TraceKind::Delivered => {
                // The sender learns the window when this arrives.
                if let Some(ack) = tcp.ack_number {
                    let shift = if syn || !self.scaling {
                        0
                    } else {
                        self.ws[from].unwrap_or(0)
                    };
                    let edge = ack + (u32::from(tcp.window_len) << shift);
                    let e = self.edge[from].get_or_insert(edge);
                    if edge.after(*e) {
                        *e = edge;
                    }
                }
            }
            TraceKind::Dropped(_) => {}
        }
    }
}

/// Checks the per-connection invariants of every connection on both shards.
pub fn check_invariants(sim: &Sim<Shard>) -> Result<(), String> {
    for side in [C, S] {
        let shard = sim.host(side);
        for conn in shard.connections() {
            let i = shard.info(conn).map_err(|e| e.to_string())?;
            if i.snd_una.after(i.snd_nxt) || i.snd_nxt.after(i.snd_max) {
                return Err(format!(
                    "side {side} {conn}: SND.UNA {} ≤ SND.NXT {} ≤ SND.MAX {} broken",
                    i.snd_una, i.snd_nxt, i.snd_max
                ));
            }
            if i.send_queue > shard.config().wmem || i.recv_queue > shard.config().rmem {
                return Err(format!("side {side} {conn}: buffer over its size: {i:?}"));
            }
            if i.cwnd == 0 {
                return Err(format!("side {side} {conn}: zero cwnd"));
            }
        }
    }
    Ok(())
}
