//! `tern-bench churn`: connection churn from an AF_XDP client, for measuring connections per
//! second. Each connection: SYN, the third handshake segment carrying the request (`--size`
//! bytes, RFC 9293 §3.10.7.3 lets an ACK that completes the handshake carry data), the echo
//! back, the client's FIN, the server's FIN, the last ACK: the client closes first, so the
//! server never holds TIME-WAIT (RFC 9293 §3.6) and a tuple may be used again once the server
//! has acknowledged the client's FIN and sent its own.
//!
//! Why not kernel sockets (`tern-bench connect`): on this 2-core lab, a kernel client spends
//! about as much CPU per connection as the server, and saturates near 5k connections/s on the
//! core it has; this client keeps a few bytes of state per connection and sends each segment
//! from a prebuilt frame, so the server is what runs out first.
//!
//! Tuples: sources are the first addresses of `--src` (default 198.18.160.0/19, or
//! 2001:2:0:a000::/115 for IPv6: 8192 addresses, inside the range the lab routes back to the
//! client) times `--ports` source ports from 40000. tern's own steering program
//! (`bpf/tern_steer.bpf.c`) goes on the client's interface with one wildcard listener per
//! source port, so the server's segments to those ports come to this socket and every other
//! packet (ARP, the kernel's own connections) passes to the kernel.
//!
//! Arrivals are open-loop: attempt i is due at `i / rate` whatever happened to the earlier
//! ones, and one that comes due while `--concurrency` connections are open is counted as
//! capped, not delayed. There is no retransmission: a connection that is not done within
//! `--timeout` is a timeout failure, and its tuple is reset with an RST so the server lets go
//! of it. The figures are meant to be taken at rates where that does not happen.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use tern_bpf::{Interface, ListenerFlags, SteerProgram, XdpMode};
use tern_wire::{
    emit_tcp_frame, parse_frame, ChecksumMode, EtherType, EthernetAddress, EthernetRepr,
    IpProtocol, IpRepr, SeqNum, TcpFlags, TcpRepr,
};
use tern_xsk::{XdpProgram, XskConfig, XskSocket, ZeroCopy};

use crate::connect::Failures;
use crate::hist::{Latency, LatencySummary};
use crate::net::{self, Cidr, IfCounters, Rng};

/// The first source port.
pub const FIRST_PORT: u16 = 40000;
/// At most this many source addresses are used from `--src`.
pub const MAX_ADDRS: u32 = 8192;

/// Configuration of [`run`].
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// The client's interface (veth-cli in the lab): one socket on each of its receive queues
    /// (the server's segments arrive on whichever its transmit hash picks), sending on the
    /// first.
    pub interface: String,
    /// The server.
    pub dst: SocketAddr,
    /// The server's MAC; resolved through the neighbour table if not given.
    pub dst_mac: Option<[u8; 6]>,
    /// Source prefix (default by family, see the module docs).
    pub src: Option<Cidr>,
    /// Source ports per address, from [`FIRST_PORT`].
    pub ports: u16,
    /// Connection attempts per second.
    pub rate: f64,
    /// Schedule length.
    pub duration: Duration,
    /// Stop scheduling after this many attempts.
    pub count: Option<u64>,
    /// Most connections open at once.
    pub concurrency: usize,
    /// A connection not done within this is a timeout failure.
    pub timeout: Duration,
    /// Request (and echo) size in bytes.
    pub size: usize,
    /// Pin to this core.
    pub core: Option<usize>,
    /// AF_XDP zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Seed for initial sequence numbers.
    pub seed: Option<u64>,
    /// Write the report here.
    pub json: Option<PathBuf>,
}

/// The default source prefix for `dst`'s family.
pub fn default_source(dst: &SocketAddr) -> Cidr {
    if dst.is_ipv4() {
        "198.18.160.0/19".parse().expect("valid prefix")
    } else {
        "2001:2:0:a000::/115".parse().expect("valid prefix")
    }
}

/// What a churn run did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChurnReport {
    /// Interface.
    pub interface: String,
    /// `copy` or `zero-copy`.
    pub bind_mode: String,
    /// The server.
    pub dst: SocketAddr,
    /// Source prefix.
    pub src: String,
    /// Distinct tuples used in rotation.
    pub tuples: u64,
    /// Scheduled attempts per second.
    pub rate: f64,
    /// Request size.
    pub size: usize,
    /// Schedule length in seconds.
    pub duration_s: f64,
    /// Concurrency cap.
    pub concurrency: usize,
    /// Timeout in seconds.
    pub timeout_s: f64,
    /// Attempts that came due.
    pub attempts: u64,
    /// Connections completed (handshake, echo, both FINs).
    pub successes: u64,
    /// Failed attempts by reason (`refused`: RST to the SYN; `reset`: RST later).
    pub failures: Failures,
    /// Completed connections per second of schedule.
    pub success_rate: f64,
    /// Seconds from the first attempt to the last one's end.
    pub elapsed_s: f64,
    /// SYN sent to SYN-ACK received.
    pub connect_latency: LatencySummary,
    /// Due time to the server's FIN (the whole connection).
    pub total_latency: LatencySummary,
    /// Frames received and sent.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Received frames that matched no open connection (late retransmissions, strays).
    pub stray: u64,
    /// Segments the client had no transmit frame for (each one will show as a timeout).
    pub tx_starved: u64,
    /// Frames the kernel dropped before the client's sockets (their XDP_STATISTICS
    /// `rx_dropped + rx_ring_full`, summed): segments lost on the client's side.
    #[serde(default)]
    pub xsk_rx_lost: u64,
    /// The interface's counters over the run.
    pub interface_delta: Option<IfCounters>,
}

impl std::fmt::Display for ChurnReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "churn -> {} ({}, {} tuples): {} of {} connections done in {:.2}s = {:.0}/s \
             (scheduled {:.0}/s); failures: {} timeout, {} refused, {} reset, {} capped; \
             connect {}; total {}; rx {} tx {} stray {} tx-starved {} rx-lost {}",
            self.dst,
            self.bind_mode,
            self.tuples,
            self.successes,
            self.attempts,
            self.elapsed_s,
            self.success_rate,
            self.rate,
            self.failures.timeout,
            self.failures.refused,
            self.failures.reset,
            self.failures.capped,
            self.connect_latency.line(),
            self.total_latency.line(),
            self.rx_frames,
            self.tx_frames,
            self.stray,
            self.tx_starved,
            self.xsk_rx_lost
        )
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// The tuple is free.
    #[default]
    Free,
    /// SYN sent.
    SynSent,
    /// Handshake done, request sent, waiting for the echo.
    Open,
    /// Echo received, FIN sent: waiting for the server's FIN and its ACK of ours.
    FinSent,
}

/// One tuple's connection: a few words, indexed by tuple.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    state: State,
    /// Bumped each time the tuple is taken, so the timeout queue can tell a stale entry.
    generation: u32,
    isn: u32,
    rcv_nxt: u32,
    echoed: u32,
    their_fin: bool,
    our_fin_acked: bool,
    /// Due time and SYN time, in ns since the start.
    due_ns: u64,
    syn_ns: u64,
}

/// The fields of a received segment the client looks at.
#[derive(Debug, Clone, Copy)]
struct Seg {
    /// Our address and port (the segment's destination).
    local: (IpAddr, u16),
    flags: TcpFlags,
    seq: u32,
    ack: Option<u32>,
    len: u32,
}

/// What to send for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Syn,
    /// The handshake's last ACK with the request.
    Request,
    /// A bare ACK.
    Ack,
    /// FIN (with ACK).
    Fin,
    /// RST.
    Rst,
}

/// What happened to a connection on a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    None,
    Established,
    Done,
    Refused,
    Reset,
}

/// The tuple space, the slots and the frame builder: everything but the socket, so the state
/// machine is testable without one.
struct Engine {
    eth: EthernetRepr,
    src_base: IpAddr,
    addrs: u32,
    ports: u16,
    dst: SocketAddr,
    payload: Vec<u8>,
    slots: Vec<Slot>,
}

impl Engine {
    fn new(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: &Cidr,
        dst: SocketAddr,
        ports: u16,
        size: usize,
    ) -> Engine {
        let host_bits = if src.addr.is_ipv4() { 32 } else { 128 } - u32::from(src.len);
        let addrs = if host_bits >= 14 {
            MAX_ADDRS
        } else {
            (1u32 << host_bits).min(MAX_ADDRS)
        };
        Engine {
            eth: EthernetRepr {
                src: EthernetAddress(src_mac),
                dst: EthernetAddress(dst_mac),
                vlan: None,
                ethertype: EtherType::Ipv4,
            },
            src_base: src.addr,
            addrs,
            ports,
            dst,
            payload: (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
            slots: vec![Slot::default(); addrs as usize * usize::from(ports)],
        }
    }

    fn tuples(&self) -> usize {
        self.slots.len()
    }

    /// The local address and port of tuple `t`.
    fn local(&self, t: usize) -> (IpAddr, u16) {
        let a = (t / usize::from(self.ports)) as u32;
        let p = FIRST_PORT + (t % usize::from(self.ports)) as u16;
        let ip = match self.src_base {
            IpAddr::V4(b) => IpAddr::V4(Ipv4Addr::from(u32::from(b) + a)),
            IpAddr::V6(b) => IpAddr::V6(Ipv6Addr::from(u128::from(b) + u128::from(a))),
        };
        (ip, p)
    }

    /// The tuple of a local address and port, if it is one of ours.
    fn tuple(&self, (ip, port): (IpAddr, u16)) -> Option<usize> {
        let a = match (ip, self.src_base) {
            (IpAddr::V4(ip), IpAddr::V4(b)) => u128::from(u32::from(ip).checked_sub(u32::from(b))?),
            (IpAddr::V6(ip), IpAddr::V6(b)) => u128::from(ip).checked_sub(u128::from(b))?,
            _ => return None,
        };
        let p = port.checked_sub(FIRST_PORT)?;
        (a < u128::from(self.addrs) && p < self.ports)
            .then(|| a as usize * usize::from(self.ports) + usize::from(p))
    }

    /// Builds `out` for tuple `t` into `buf`; returns the frame length.
    fn emit(&self, t: usize, out: Out, buf: &mut [u8]) -> Result<usize> {
        let s = &self.slots[t];
        let (local_ip, local_port) = self.local(t);
        let size = self.payload.len() as u32;
        let (flags, seq, ack, payload): (TcpFlags, u32, Option<u32>, &[u8]) = match out {
            Out::Syn => (TcpFlags::SYN, s.isn, None, &[]),
            Out::Request => (
                TcpFlags::ACK | TcpFlags::PSH,
                s.isn.wrapping_add(1),
                Some(s.rcv_nxt),
                &self.payload,
            ),
            Out::Ack | Out::Fin | Out::Rst => {
                // After the SYN, or the request once it is out; one more once our FIN is.
                let mut seq = s.isn.wrapping_add(1);
                if s.state != State::SynSent {
                    seq = seq.wrapping_add(size);
                }
                if s.state == State::FinSent && out != Out::Fin {
                    seq = seq.wrapping_add(1);
                }
                let flags = match out {
                    Out::Fin => TcpFlags::FIN | TcpFlags::ACK,
                    Out::Rst => TcpFlags::RST,
                    _ => TcpFlags::ACK,
                };
                let ack = (out != Out::Rst).then_some(s.rcv_nxt);
                (flags, seq, ack, &[])
            }
        };
        let tcp = TcpRepr {
            src_port: local_port,
            dst_port: self.dst.port(),
            flags,
            seq_number: SeqNum(seq),
            ack_number: ack.map(SeqNum),
            window_len: 65535,
            max_seg_size: (out == Out::Syn).then_some(1460),
            payload,
            ..TcpRepr::default()
        };
        let ip = IpRepr::new(local_ip, self.dst.ip(), IpProtocol::Tcp, 0, 64)
            .context("building an IP header")?;
        emit_tcp_frame(&self.eth, &ip, &tcp, buf).context("emitting a segment")
    }

    /// Takes tuple `t` for a new connection.
    fn open(&mut self, t: usize, isn: u32, due_ns: u64, now_ns: u64) -> u32 {
        let s = &mut self.slots[t];
        let generation = s.generation.wrapping_add(1);
        *s = Slot {
            state: State::SynSent,
            generation,
            isn,
            due_ns,
            syn_ns: now_ns,
            ..Slot::default()
        };
        generation
    }

    /// Runs tuple `t`'s state machine on `seg`: what happened, and what to send back.
    fn on_segment(&mut self, t: usize, seg: &Seg) -> (Event, Option<Out>) {
        let size = self.payload.len() as u32;
        let s = &mut self.slots[t];
        if s.state == State::Free {
            return (Event::None, None);
        }
        if seg.flags.contains(TcpFlags::RST) {
            let event = if s.state == State::SynSent {
                Event::Refused
            } else {
                Event::Reset
            };
            s.state = State::Free;
            return (event, None);
        }
        let syn_ack = seg.flags.contains(TcpFlags::SYN) && seg.flags.contains(TcpFlags::ACK);
        match s.state {
            State::SynSent => {
                if syn_ack && seg.ack == Some(s.isn.wrapping_add(1)) {
                    s.rcv_nxt = seg.seq.wrapping_add(1);
                    s.state = State::Open;
                    return (Event::Established, Some(Out::Request));
                }
                (Event::None, None)
            }
            State::Open | State::FinSent => {
                if syn_ack {
                    // Our request was lost: the server still waits for the handshake's end.
                    let resend = (s.state == State::Open).then_some(Out::Request);
                    return (Event::None, resend);
                }
                if s.state == State::FinSent
                    && seg.ack == Some(s.isn.wrapping_add(size).wrapping_add(2))
                {
                    s.our_fin_acked = true;
                }
                let mut need_ack = false;
                if seg.len > 0 {
                    if seg.seq == s.rcv_nxt {
                        s.rcv_nxt = s.rcv_nxt.wrapping_add(seg.len);
                        s.echoed += seg.len;
                    }
                    need_ack = true;
                }
                if seg.flags.contains(TcpFlags::FIN) {
                    if seg.seq.wrapping_add(seg.len) == s.rcv_nxt && !s.their_fin {
                        s.rcv_nxt = s.rcv_nxt.wrapping_add(1);
                        s.their_fin = true;
                    }
                    need_ack = true;
                }
                let mut out = need_ack.then_some(Out::Ack);
                if s.state == State::Open && s.echoed >= size {
                    out = Some(Out::Fin);
                }
                (Event::None, out)
            }
            State::Free => (Event::None, None),
        }
    }

    /// After [`on_segment`] and sending its reply: whether the connection is complete.
    fn settle(&mut self, t: usize, sent: Option<Out>) -> Event {
        let s = &mut self.slots[t];
        if sent == Some(Out::Fin) {
            s.state = State::FinSent;
        }
        if s.state == State::FinSent && s.their_fin && s.our_fin_acked {
            s.state = State::Free;
            return Event::Done;
        }
        Event::None
    }
}

/// Queues `out` for tuple `t` on the socket; `false` (and `starved` counted) when no transmit
/// frame is free.
fn send(
    xsk: &mut XskSocket,
    engine: &Engine,
    t: usize,
    out: Out,
    starved: &mut u64,
) -> Result<bool> {
    let Some(mut frame) = xsk.alloc_tx() else {
        *starved += 1;
        return Ok(false);
    };
    {
        let mut bytes = xsk.frame_mut(&mut frame);
        let len = engine.emit(t, out, bytes.buf_mut())?;
        bytes.set_len(len);
    }
    xsk.send(frame);
    Ok(true)
}

/// Reads the fields the engine needs from a frame addressed to us; `None` for anything else.
fn segment(frame: &[u8], dst: &SocketAddr) -> Option<Seg> {
    let parsed = parse_frame(frame, ChecksumMode::Verify).ok()?;
    let ip = parsed.ip()?;
    let tcp = parsed.tcp()?;
    if ip.src_addr() != dst.ip() || tcp.src_port != dst.port() {
        return None;
    }
    Some(Seg {
        local: (ip.dst_addr(), tcp.dst_port),
        flags: tcp.flags,
        seq: tcp.seq_number.0,
        ack: tcp.ack_number.map(|a| a.0),
        len: tcp.payload.len() as u32,
    })
}

/// Runs the churn; returns the report.
pub fn run(config: &ChurnConfig, stop: &AtomicBool) -> Result<ChurnReport> {
    net::check_target(config.dst.ip(), false)?;
    let src = config.src.unwrap_or_else(|| default_source(&config.dst));
    net::check_source_range(&src)?;
    anyhow::ensure!(
        src.addr.is_ipv4() == config.dst.is_ipv4(),
        "--src {src} and --dst {} are of different families",
        config.dst
    );
    anyhow::ensure!(
        config.rate > 0.0 && config.rate.is_finite(),
        "--rate must be positive"
    );
    anyhow::ensure!(
        (1..=1024).contains(&config.ports),
        "--ports must be 1 to 1024 (one listener each in the steering map)"
    );
    anyhow::ensure!(config.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(
        (1..=1400).contains(&config.size),
        "--size must be 1 to 1400 bytes (one segment)"
    );
    if let Some(core) = config.core {
        net::pin_to_core(core)?;
    }
    let src_mac = net::interface_mac(&config.interface)?;
    let dst_mac = match config.dst_mac {
        Some(m) => m,
        None => net::resolve_neighbour(&config.interface, config.dst.ip())?,
    };
    let mut engine = Engine::new(
        src_mac,
        dst_mac,
        &src,
        config.dst,
        config.ports,
        config.size,
    );
    anyhow::ensure!(
        engine.tuples() >= config.concurrency,
        "{} tuples ({} addresses x {} ports) cannot hold {} open connections: widen --src or \
         raise --ports",
        engine.tuples(),
        engine.addrs,
        config.ports,
        config.concurrency
    );

    // Steering: the server's segments to our ports into the socket, the rest to the kernel.
    let steer = SteerProgram::load().context("loading tern_steer")?;
    let wildcard: IpAddr = if config.dst.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    for p in 0..config.ports {
        steer.add_listener(
            SocketAddr::new(wildcard, FIRST_PORT + p),
            ListenerFlags::NONE,
        )?;
    }
    let xsk_config = XskConfig {
        program: XdpProgram::External,
        zero_copy: config.zero_copy,
        ..XskConfig::default()
    };
    let mut xsks = Vec::new();
    let rx_queues = tern_netdev::rx_queue_count(&config.interface).with_context(|| {
        format!(
            "counting {}'s receive queues: is it an interface in this namespace?",
            config.interface
        )
    })?;
    anyhow::ensure!(rx_queues > 0, "{} has no receive queues", config.interface);
    for q in 0..rx_queues {
        let xsk = XskSocket::open(&config.interface, q, &xsk_config).with_context(|| {
            format!("opening an AF_XDP socket on {} queue {q}", config.interface)
        })?;
        steer.set_xsk(q, xsk.fd())?;
        xsks.push(xsk);
    }
    let iface = Interface::by_name(&config.interface)?;
    let attachment = steer
        .attach(&iface, XdpMode::Auto)
        .with_context(|| format!("attaching tern_steer to {}", config.interface))?;
    // `run` pins the interface's new NAPI thread when it reads this line, and starts measuring
    // at the next.
    println!(
        "churn: attached to {} in {} mode ({}, {} queue(s))",
        config.interface,
        attachment.mode(),
        xsks[0].bind_mode(),
        xsks.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "churn: sending to {} at {}/s for {:?}",
        config.dst, config.rate, config.duration
    );

    let mut rng = Rng::new(
        config
            .seed
            .unwrap_or_else(|| net::Rng::from_entropy().next_u64()),
    );
    let before = IfCounters::read(&config.interface);
    let start = Instant::now();
    let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
    let period_ns = 1e9 / config.rate;
    let limit = config
        .count
        .unwrap_or(u64::MAX)
        .min((config.duration.as_secs_f64() * config.rate).ceil() as u64);
    let timeout_ns = config.timeout.as_nanos() as u64;
    let mut timeouts: std::collections::VecDeque<(usize, u32, u64)> = Default::default();
    let mut connect_lat = Latency::new();
    let mut total_lat = Latency::new();
    let mut failures = Failures::default();
    let (mut attempts, mut successes, mut open) = (0u64, 0u64, 0usize);
    let (mut rx_frames, mut tx_frames, mut stray, mut tx_starved) = (0u64, 0u64, 0u64, 0u64);
    let mut cursor = 0usize;
    let mut turns = 0u64;
    let mut last_done = start;
    let mut replies: Vec<(usize, Out)> = Vec::new();
    loop {
        turns += 1;
        if turns % 64 == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let now_ns = ns(Instant::now());
        if attempts >= limit && open == 0 {
            break;
        }
        if attempts >= limit
            && now_ns > (limit as f64 * period_ns) as u64 + timeout_ns + 1_000_000_000
        {
            break; // bounded, whatever state the last connections are in
        }
        // New connections that are due.
        while attempts < limit && (attempts as f64 * period_ns) as u64 <= now_ns {
            let due_ns = (attempts as f64 * period_ns) as u64;
            attempts += 1;
            if open >= config.concurrency {
                failures.capped += 1;
                continue;
            }
            // The next free tuple in rotation (one exists: tuples >= concurrency > open).
            let n = engine.tuples();
            while engine.slots[cursor].state != State::Free {
                cursor = (cursor + 1) % n;
            }
            let t = cursor;
            cursor = (cursor + 1) % n;
            let generation = engine.open(t, rng.next_u64() as u32, due_ns, now_ns);
            open += 1;
            timeouts.push_back((t, generation, now_ns + timeout_ns));
            if send(&mut xsks[0], &engine, t, Out::Syn, &mut tx_starved)? {
                tx_frames += 1;
            }
        }
        // Timeouts: the queue is in start order.
        while let Some(&(t, generation, deadline)) = timeouts.front() {
            let s = engine.slots[t];
            if s.generation != generation || s.state == State::Free {
                timeouts.pop_front();
                continue;
            }
            if deadline > now_ns {
                break;
            }
            timeouts.pop_front();
            if send(&mut xsks[0], &engine, t, Out::Rst, &mut tx_starved)? {
                tx_frames += 1;
            }
            engine.slots[t].state = State::Free;
            open -= 1;
            failures.timeout += 1;
        }
        // Segments from the server, from every queue.
        replies.clear();
        let mut got = 0;
        for xsk in &mut xsks {
            xsk.refill().context("refilling the fill ring")?;
            got += xsk
                .recv(64, |frame| {
                    let Some(seg) = segment(frame.data(), &config.dst) else {
                        stray += 1;
                        return;
                    };
                    let Some(t) = engine.tuple(seg.local) else {
                        stray += 1;
                        return;
                    };
                    let (event, out) = engine.on_segment(t, &seg);
                    let now_ns = ns(Instant::now());
                    match event {
                        Event::Established => {
                            let syn = engine.slots[t].syn_ns;
                            connect_lat.record(Duration::from_nanos(now_ns.saturating_sub(syn)));
                        }
                        Event::Refused => {
                            failures.refused += 1;
                            open -= 1;
                        }
                        Event::Reset => {
                            failures.reset += 1;
                            open -= 1;
                        }
                        Event::None | Event::Done => {}
                    }
                    if event == Event::None && out.is_none() && engine.slots[t].state == State::Free
                    {
                        stray += 1;
                    }
                    if let Some(out) = out {
                        replies.push((t, out));
                    }
                    // A segment that needs no answer may still complete the connection (the
                    // server's ACK of our FIN after its own FIN).
                    if out.is_none() && engine.settle(t, None) == Event::Done {
                        let due = engine.slots[t].due_ns;
                        total_lat.record(Duration::from_nanos(now_ns.saturating_sub(due)));
                        successes += 1;
                        open -= 1;
                        last_done = Instant::now();
                    }
                })
                .context("receiving")?;
        }
        rx_frames += got as u64;
        let xsk = &mut xsks[0];
        for &(t, out) in &replies {
            if send(xsk, &engine, t, out, &mut tx_starved)? {
                tx_frames += 1;
            }
            if engine.settle(t, Some(out)) == Event::Done {
                let now_ns = ns(Instant::now());
                let due = engine.slots[t].due_ns;
                total_lat.record(Duration::from_nanos(now_ns.saturating_sub(due)));
                successes += 1;
                open -= 1;
                last_done = Instant::now();
            }
        }
        xsk.flush_tx().context("transmitting")?;
        if got == 0 {
            // Nothing arrived: sleep in poll until a frame or the next due attempt, so this
            // thread does not spin on a core the interface's NAPI thread may share.
            let next_due = (attempts as f64 * period_ns) as u64;
            let wait_ns = if attempts < limit {
                next_due.saturating_sub(ns(Instant::now()))
            } else {
                1_000_000
            };
            if wait_ns > 200_000 {
                let mut fds: Vec<PollFd<'_>> = xsks
                    .iter()
                    .map(|x| PollFd::new(x.as_fd(), PollFlags::POLLIN))
                    .collect();
                match nix::poll::poll(&mut fds, PollTimeout::from(1u8)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e).context("poll on the AF_XDP sockets"),
                }
            }
        }
    }
    let elapsed = last_done.max(start + Duration::from_nanos(1)) - start;
    let xsk_rx_lost = xsks
        .iter()
        .filter_map(|x| x.statistics().ok())
        .map(|s| s.rx_dropped + s.rx_ring_full)
        .sum();
    failures.other += open as u64; // still open when the run had to end
    let after = IfCounters::read(&config.interface);
    attachment
        .detach()
        .with_context(|| format!("detaching tern_steer from {}", config.interface))?;
    let schedule_s = (limit as f64 * period_ns / 1e9).max(1e-9);
    let report = ChurnReport {
        interface: config.interface.clone(),
        bind_mode: xsks[0].bind_mode().to_string(),
        dst: config.dst,
        src: src.to_string(),
        tuples: engine.tuples() as u64,
        rate: config.rate,
        size: config.size,
        duration_s: config.duration.as_secs_f64(),
        concurrency: config.concurrency,
        timeout_s: config.timeout.as_secs_f64(),
        attempts,
        successes,
        failures,
        success_rate: successes as f64 / schedule_s,
        elapsed_s: elapsed.as_secs_f64(),
        connect_latency: connect_lat.summary(),
        total_latency: total_lat.summary(),
        rx_frames,
        tx_frames,
        stray,
        tx_starved,
        xsk_rx_lost,
        interface_delta: before.zip(after).map(|(b, a)| a.since(&b)),
    };
    if let Some(path) = &config.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLI_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn engine(ports: u16, size: usize) -> Engine {
        Engine::new(
            CLI_MAC,
            SRV_MAC,
            &"198.18.160.0/19".parse().unwrap(),
            "198.18.0.1:8080".parse().unwrap(),
            ports,
            size,
        )
    }

    /// The frame the server would send, as the client's parser reads it.
    fn from_server(
        e: &Engine,
        t: usize,
        flags: TcpFlags,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) -> Seg {
        let (ip, port) = e.local(t);
        let tcp = TcpRepr {
            src_port: 8080,
            dst_port: port,
            flags,
            seq_number: SeqNum(seq),
            ack_number: ack.map(SeqNum),
            window_len: 1000,
            payload,
            ..TcpRepr::default()
        };
        let ipr = IpRepr::new(e.dst.ip(), ip, IpProtocol::Tcp, 0, 64).unwrap();
        let eth = EthernetRepr {
            src: EthernetAddress(SRV_MAC),
            dst: EthernetAddress(CLI_MAC),
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; 256];
        let n = emit_tcp_frame(&eth, &ipr, &tcp, &mut buf).unwrap();
        segment(&buf[..n], &e.dst).expect("a segment for us")
    }

    /// Emits `out` for `t` and parses it back.
    fn sent(e: &Engine, t: usize, out: Out) -> (TcpFlags, u32, Option<u32>, usize) {
        let mut buf = [0u8; 2048];
        let n = e.emit(t, out, &mut buf).unwrap();
        let f = parse_frame(&buf[..n], ChecksumMode::Verify).unwrap();
        assert_eq!(f.eth.dst.0, SRV_MAC);
        let ip = f.ip().unwrap();
        assert_eq!(ip.dst_addr(), e.dst.ip());
        assert_eq!(ip.src_addr(), e.local(t).0);
        let tcp = f.tcp().unwrap();
        assert_eq!((tcp.src_port, tcp.dst_port), (e.local(t).1, 8080));
        (
            tcp.flags,
            tcp.seq_number.0,
            tcp.ack_number.map(|a| a.0),
            tcp.payload.len(),
        )
    }

    #[test]
    fn tuples_map_to_addresses_and_ports_and_back() {
        let e = engine(4, 64);
        assert_eq!(e.tuples(), 8192 * 4);
        for t in [0, 1, 3, 4, 5, 8191 * 4 + 3] {
            assert_eq!(e.tuple(e.local(t)), Some(t));
        }
        assert_eq!(e.local(5), ("198.18.160.1".parse().unwrap(), 40001));
        assert_eq!(e.tuple(("198.18.0.2".parse().unwrap(), 40000)), None);
        assert_eq!(e.tuple(("198.18.160.1".parse().unwrap(), 40004)), None);
        assert_eq!(e.tuple(("198.18.192.0".parse().unwrap(), 40000)), None);
        let small = Engine::new(
            CLI_MAC,
            SRV_MAC,
            &"198.18.200.0/30".parse().unwrap(),
            e.dst,
            2,
            8,
        );
        assert_eq!(small.tuples(), 8);
    }

    #[test]
    fn a_whole_connection_with_the_usual_segments() {
        let mut e = engine(2, 64);
        let t = 3;
        e.open(t, 1000, 0, 0);
        assert_eq!(sent(&e, t, Out::Syn), (TcpFlags::SYN, 1000, None, 0));
        // A SYN-ACK that acknowledges something else is ignored.
        let bad = from_server(&e, t, TcpFlags::SYN | TcpFlags::ACK, 5000, Some(999), &[]);
        assert_eq!(e.on_segment(t, &bad), (Event::None, None));
        let synack = from_server(&e, t, TcpFlags::SYN | TcpFlags::ACK, 5000, Some(1001), &[]);
        assert_eq!(
            e.on_segment(t, &synack),
            (Event::Established, Some(Out::Request))
        );
        assert_eq!(e.settle(t, Some(Out::Request)), Event::None);
        assert_eq!(
            sent(&e, t, Out::Request),
            (TcpFlags::ACK | TcpFlags::PSH, 1001, Some(5001), 64)
        );
        // A retransmitted SYN-ACK (our request lost): the request again.
        assert_eq!(e.on_segment(t, &synack), (Event::None, Some(Out::Request)));
        // The server acks the request alone, then echoes in two pieces.
        let ack = from_server(&e, t, TcpFlags::ACK, 5001, Some(1065), &[]);
        assert_eq!(e.on_segment(t, &ack), (Event::None, None));
        let part = from_server(
            &e,
            t,
            TcpFlags::ACK | TcpFlags::PSH,
            5001,
            Some(1065),
            &[b'x'; 40],
        );
        assert_eq!(e.on_segment(t, &part), (Event::None, Some(Out::Ack)));
        assert_eq!(sent(&e, t, Out::Ack), (TcpFlags::ACK, 1065, Some(5041), 0));
        let rest = from_server(
            &e,
            t,
            TcpFlags::ACK | TcpFlags::PSH,
            5041,
            Some(1065),
            &[b'x'; 24],
        );
        assert_eq!(e.on_segment(t, &rest), (Event::None, Some(Out::Fin)));
        assert_eq!(
            sent(&e, t, Out::Fin),
            (TcpFlags::FIN | TcpFlags::ACK, 1065, Some(5065), 0)
        );
        assert_eq!(e.settle(t, Some(Out::Fin)), Event::None);
        // The server's FIN, acknowledging ours: our last ACK, and done.
        let fin = from_server(&e, t, TcpFlags::FIN | TcpFlags::ACK, 5065, Some(1066), &[]);
        assert_eq!(e.on_segment(t, &fin), (Event::None, Some(Out::Ack)));
        assert_eq!(sent(&e, t, Out::Ack), (TcpFlags::ACK, 1066, Some(5066), 0));
        assert_eq!(e.settle(t, Some(Out::Ack)), Event::Done);
        assert_eq!(e.slots[t].state, State::Free);
        // Late duplicates find a free tuple.
        assert_eq!(e.on_segment(t, &fin), (Event::None, None));
    }

    #[test]
    fn fin_before_the_ack_of_ours_and_echo_with_fin() {
        let mut e = engine(1, 8);
        let t = 0;
        e.open(t, u32::MAX, 0, 0); // sequence numbers wrap
        let synack = from_server(&e, t, TcpFlags::SYN | TcpFlags::ACK, 7, Some(0), &[]);
        assert_eq!(e.on_segment(t, &synack).0, Event::Established);
        e.settle(t, Some(Out::Request));
        // Echo and FIN in one segment, not yet acknowledging a FIN we have not sent.
        let both = from_server(
            &e,
            t,
            TcpFlags::FIN | TcpFlags::ACK | TcpFlags::PSH,
            8,
            Some(8),
            b"abcdefgh",
        );
        assert_eq!(e.on_segment(t, &both), (Event::None, Some(Out::Fin)));
        assert_eq!(
            sent(&e, t, Out::Fin),
            (TcpFlags::FIN | TcpFlags::ACK, 8, Some(17), 0)
        );
        assert_eq!(e.settle(t, Some(Out::Fin)), Event::None);
        // Then the bare ACK of our FIN completes it.
        let ack = from_server(&e, t, TcpFlags::ACK, 17, Some(9), &[]);
        assert_eq!(e.on_segment(t, &ack), (Event::None, None));
        assert_eq!(e.settle(t, None), Event::Done);
    }

    #[test]
    fn resets_are_refused_before_the_handshake_and_reset_after() {
        let mut e = engine(1, 8);
        e.open(0, 1, 0, 0);
        let rst = from_server(&e, 0, TcpFlags::RST | TcpFlags::ACK, 0, Some(2), &[]);
        assert_eq!(e.on_segment(0, &rst).0, Event::Refused);
        e.open(1, 1, 0, 0);
        let synack = from_server(&e, 1, TcpFlags::SYN | TcpFlags::ACK, 7, Some(2), &[]);
        e.on_segment(1, &synack);
        let rst = from_server(&e, 1, TcpFlags::RST, 8, None, &[]);
        assert_eq!(e.on_segment(1, &rst).0, Event::Reset);
        assert_eq!(e.slots[1].state, State::Free);
        // The RST the client sends on a timeout: sequence number where the server expects it.
        e.open(2, 100, 0, 0);
        assert_eq!(sent(&e, 2, Out::Rst), (TcpFlags::RST, 101, None, 0));
        let synack = from_server(&e, 2, TcpFlags::SYN | TcpFlags::ACK, 7, Some(101), &[]);
        e.on_segment(2, &synack);
        assert_eq!(sent(&e, 2, Out::Rst), (TcpFlags::RST, 109, None, 0));
    }

    #[test]
    fn frames_from_elsewhere_are_not_segments() {
        let e = engine(1, 8);
        let other: SocketAddr = "198.18.0.9:8080".parse().unwrap();
        let mut buf = [0u8; 256];
        let n = e.emit(0, Out::Syn, &mut buf).unwrap();
        // Our own SYN comes from a client address, not the server.
        assert!(segment(&buf[..n], &e.dst).is_none());
        assert!(segment(&buf[..n], &other).is_none());
        assert!(segment(&buf[..10], &e.dst).is_none());
        buf[n - 1] ^= 0xff; // a corrupt checksum
        assert!(segment(&buf[..n], &"198.18.160.0:40000".parse().unwrap()).is_none());
    }
}
