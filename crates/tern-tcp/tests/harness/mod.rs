//! A scripted peer for scenario tests: the test plays the remote TCP segment by segment
//! (`h.send(Seg::syn(100))`), the shard under test answers, and the test checks each answer
//! (`h.recv_one()`), moving virtual time explicitly (`h.advance(ms(40))`).

#![allow(
    dead_code,
    reason = "each scenario test binary uses a different part of the harness"
)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tern_tcp::{ConnHandle, Duration, Event, Instant, ListenConfig, ListenerId, Shard, TcpConfig};
use tern_wire::{
    ChecksumMode, IpProtocol, IpRepr, Ipv4Packet, Ipv4Repr, SackBlocks, SeqNum, TcpFlags,
    TcpPacket, TcpRepr, TcpTimestamp,
};

/// The shard's address.
pub const US: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 80);
/// The scripted peer's address.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 40_000);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A segment as a test writes or reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Seg {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: Option<u32>,
    pub wnd: u16,
    pub payload: Vec<u8>,
    pub mss: Option<u16>,
    pub ws: Option<u8>,
    pub sack_perm: bool,
    pub ts: Option<(u32, u32)>,
    pub sack: Vec<(u32, u32)>,
}

impl Seg {
    fn new(flags: TcpFlags, seq: u32) -> Seg {
        Seg {
            flags,
            seq,
            ack: None,
            wnd: 65_535,
            payload: Vec::new(),
            mss: None,
            ws: None,
            sack_perm: false,
            ts: None,
            sack: Vec::new(),
        }
    }

    /// A SYN with MSS 1460 and nothing else.
    pub fn syn(seq: u32) -> Seg {
        Seg {
            mss: Some(1460),
            ..Seg::new(TcpFlags::SYN, seq)
        }
    }

    /// A SYN-ACK with MSS 1460.
    pub fn syn_ack(seq: u32, ack: u32) -> Seg {
        Seg {
            mss: Some(1460),
            ack: Some(ack),
            ..Seg::new(TcpFlags::SYN | TcpFlags::ACK, seq)
        }
    }

    /// A pure ACK.
    pub fn ack(seq: u32, ack: u32) -> Seg {
        Seg {
            ack: Some(ack),
            ..Seg::new(TcpFlags::ACK, seq)
        }
    }

    /// Data with ACK.
    pub fn data(seq: u32, ack: u32, payload: &[u8]) -> Seg {
        Seg {
            payload: payload.to_vec(),
            ..Seg::ack(seq, ack)
        }
    }

    /// FIN with ACK.
    pub fn fin(seq: u32, ack: u32) -> Seg {
        Seg {
            ack: Some(ack),
            ..Seg::new(TcpFlags::FIN | TcpFlags::ACK, seq)
        }
    }

    /// A bare RST.
    pub fn rst(seq: u32) -> Seg {
        Seg {
            wnd: 0,
            ..Seg::new(TcpFlags::RST, seq)
        }
    }

    pub fn wnd(mut self, wnd: u16) -> Seg {
        self.wnd = wnd;
        self
    }

    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Seg {
        self.ts = Some((tsval, tsecr));
        self
    }

    pub fn ws(mut self, shift: u8) -> Seg {
        self.ws = Some(shift);
        self
    }

    pub fn sack_perm(mut self) -> Seg {
        self.sack_perm = true;
        self
    }

    pub fn no_mss(mut self) -> Seg {
        self.mss = None;
        self
    }

    pub fn with_flags(mut self, flags: TcpFlags) -> Seg {
        self.flags.insert(flags);
        self
    }

    pub fn is(&self, flags: TcpFlags) -> bool {
        self.flags == flags
    }

    /// SEG.SEQ + SEG.LEN.
    pub fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload.len() as u32)
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }

    fn repr(&self) -> TcpRepr<'_> {
        let mut sack = SackBlocks::default();
        for &(l, r) in &self.sack {
            sack.push(SeqNum(l), SeqNum(r));
        }
        TcpRepr {
            src_port: PEER.port(),
            dst_port: US.port(),
            flags: self.flags,
            seq_number: SeqNum(self.seq),
            ack_number: self.ack.map(SeqNum),
            window_len: self.wnd,
            urgent_pointer: 0,
            max_seg_size: self.mss,
            window_scale: self.ws,
            sack_permitted: self.sack_perm,
            sack_blocks: sack,
            timestamp: self.ts.map(|(tsval, tsecr)| TcpTimestamp { tsval, tsecr }),
            payload: &self.payload,
        }
    }

    fn from_repr(r: &TcpRepr<'_>) -> Seg {
        Seg {
            flags: r.flags,
            seq: r.seq_number.0,
            ack: r.ack_number.map(|a| a.0),
            wnd: r.window_len,
            payload: r.payload.to_vec(),
            mss: r.max_seg_size,
            ws: r.window_scale,
            sack_perm: r.sack_permitted,
            ts: r.timestamp.map(|t| (t.tsval, t.tsecr)),
            sack: r
                .sack_blocks
                .as_slice()
                .iter()
                .map(|b| (b.left.0, b.right.0))
                .collect(),
        }
    }
}

impl fmt::Debug for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seq={}", self.flags, self.seq)?;
        if let Some(a) = self.ack {
            write!(f, " ack={a}")?;
        }
        write!(f, " wnd={}", self.wnd)?;
        if !self.payload.is_empty() {
            write!(f, " len={}", self.payload.len())?;
        }
        if let Some(m) = self.mss {
            write!(f, " mss={m}")?;
        }
        if let Some(w) = self.ws {
            write!(f, " ws={w}")?;
        }
        if self.sack_perm {
            write!(f, " sackOK")?;
        }
        if let Some((v, e)) = self.ts {
            write!(f, " ts={v}/{e}")?;
        }
        if !self.sack.is_empty() {
            write!(f, " sack={:?}", self.sack)?;
        }
        Ok(())
    }
}

/// A shard and a scripted peer.
pub struct Harness {
    pub shard: Shard,
    pub now: Instant,
    /// Every segment the shard sent, in order, with the time it was polled.
    pub sent: Vec<(Instant, Seg)>,
    buf: Vec<u8>,
}

/// The engine defaults, without timestamps so traces stay short (timestamp tests turn them on).
pub fn config() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    }
}

impl Harness {
    pub fn new(config: TcpConfig) -> Harness {
        // Tests start at a round, non-zero time.
        let now = Instant::from_millis(1_000_000);
        Harness {
            shard: Shard::new(config, [42; 32], now).expect("valid config"),
            now,
            sent: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    /// A harness with a listener on [`US`].
    pub fn listening(config: TcpConfig) -> (Harness, ListenerId) {
        let mut h = Harness::new(config);
        let l = h.shard.listen(US, ListenConfig::default()).expect("listen");
        (h, l)
    }

    /// Delivers `seg` from the peer.
    pub fn send(&mut self, seg: Seg) {
        let repr = seg.repr();
        let tcp_len = repr.buffer_len();
        let ip = Ipv4Repr {
            src: ipv4(PEER),
            dst: ipv4(US),
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
        };
        let mut packet = vec![0u8; 20 + tcp_len];
        IpRepr::Ipv4(ip).emit(&mut packet).unwrap();
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut packet[20..]),
            &PEER.ip(),
            &US.ip(),
            ChecksumMode::Verify,
        )
        .unwrap();
        self.shard
            .on_packet(self.now, &packet)
            .expect("well-formed packet");
    }

    /// Everything the shard sends now.
    pub fn recv(&mut self) -> Vec<Seg> {
        let mut out = Vec::new();
        while let Some(len) = self.shard.poll_transmit(self.now, &mut self.buf) {
            let packet = &self.buf[..len];
            let ip = Ipv4Packet::new_checked(packet).expect("IPv4 out");
            let ip_repr = Ipv4Repr::parse(&ip, ChecksumMode::Verify).expect("valid IPv4 header");
            assert_eq!((ip_repr.src, ip_repr.dst), (ipv4(US), ipv4(PEER)));
            let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP out");
            let repr = TcpRepr::parse(&tcp, &US.ip(), &PEER.ip(), ChecksumMode::Verify)
                .expect("valid TCP");
            assert_eq!((repr.src_port, repr.dst_port), (US.port(), PEER.port()));
            let seg = Seg::from_repr(&repr);
            self.sent.push((self.now, seg.clone()));
            out.push(seg);
            assert!(out.len() < 10_000, "the shard keeps transmitting");
        }
        out
    }

    /// Exactly one segment.
    #[track_caller]
    pub fn recv_one(&mut self) -> Seg {
        let mut segs = self.recv();
        assert_eq!(segs.len(), 1, "expected one segment, got {segs:?}");
        segs.pop().unwrap()
    }

    /// Nothing at all.
    #[track_caller]
    pub fn recv_none(&mut self) {
        let segs = self.recv();
        assert!(segs.is_empty(), "expected silence, got {segs:?}");
    }

    /// Moves time forward by `d`, firing every timer at its own deadline and collecting what
    /// the shard sends, with the time it sent it.
    pub fn advance(&mut self, d: Duration) -> Vec<(Instant, Seg)> {
        let target = self.now + d;
        let mut out = Vec::new();
        for _ in 0..1_000_000 {
            match self.shard.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.shard.on_timeout(self.now);
                    let now = self.now;
                    out.extend(self.recv().into_iter().map(|s| (now, s)));
                }
                _ => {
                    self.now = target;
                    self.shard.on_timeout(self.now);
                    let now = self.now;
                    out.extend(self.recv().into_iter().map(|s| (now, s)));
                    return out;
                }
            }
        }
        panic!("timers make no progress before {target:?}");
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.shard.poll_event()).collect()
    }

    /// Completes a passive open from the peer (ISN 1000, MSS 1460, no options) and accepts it;
    /// returns the connection and our ISN.
    pub fn open_passive(&mut self, listener: ListenerId) -> (ConnHandle, u32) {
        self.send(Seg::syn(1000));
        let synack = self.recv_one();
        assert!(synack.is(TcpFlags::SYN | TcpFlags::ACK), "{synack:?}");
        let iss = synack.seq;
        self.send(Seg::ack(1001, iss.wrapping_add(1)));
        self.recv_none();
        let conn = self.shard.accept(listener).expect("accepted");
        self.events();
        (conn, iss)
    }

    /// Reads everything readable.
    pub fn read_all(&mut self, conn: ConnHandle) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.shard.recv(self.now, conn, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }
}

fn ipv4(addr: SocketAddr) -> Ipv4Addr {
    match addr.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!("the harness speaks IPv4"),
    }
}
