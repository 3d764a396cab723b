//! A scripted peer for scenario tests: the test plays the remote TCP segment by segment
//! (`h.send(Seg::syn(100))`), the shard under test answers, and the test checks each answer
//! (`h.recv_one()`), moving virtual time explicitly (`h.advance(ms(40))`).
//!
//! The harness speaks for one peer at a time: [`Harness::peer`] (default [`PEER`]) talking to
//! [`Harness::us`] (default [`US`]). A test with several peers, or over IPv6, switches those
//! two fields, or uses [`Harness::send_from`] and [`Harness::recv_packets`], which name the
//! addresses of every packet.

#![allow(
    dead_code,
    reason = "each scenario test binary uses a different part of the harness"
)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tern_tcp::{
    ConnHandle, Counters, Duration, Event, Instant, ListenConfig, ListenerId, Shard, TcpConfig,
};
use tern_wire::{
    ChecksumMode, IpProtocol, IpRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, SackBlocks,
    SeqNum, TcpFlags, TcpPacket, TcpRepr, TcpTimestamp,
};

/// The shard's address.
pub const US: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 80);
/// The scripted peer's address.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 40_000);
/// A second peer: another host.
pub const PEER2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3)), 40_000);
/// A third peer: another host again.
pub const PEER3: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 4)), 40_000);
/// The shard's IPv6 address (2001:db8::/32 is the documentation prefix).
pub const US6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    80,
);
/// The scripted peer's IPv6 address.
pub const PEER6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    40_000,
);

/// Flag combinations as traces name them.
pub const SA: TcpFlags = TcpFlags::SYN.union(TcpFlags::ACK);
pub const A: TcpFlags = TcpFlags::ACK;
pub const PA: TcpFlags = TcpFlags::PSH.union(TcpFlags::ACK);
pub const FA: TcpFlags = TcpFlags::FIN.union(TcpFlags::ACK);
pub const RA: TcpFlags = TcpFlags::RST.union(TcpFlags::ACK);
pub const R: TcpFlags = TcpFlags::RST;

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

    pub fn sack(mut self, blocks: &[(u32, u32)]) -> Seg {
        self.sack = blocks.to_vec();
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

    /// SEG.LEN.
    pub fn len(&self) -> u32 {
        self.end().wrapping_sub(self.seq)
    }

    /// SEG.SEQ + SEG.LEN.
    pub fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload.len() as u32)
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }

    /// TSval of a segment that must carry timestamps.
    #[track_caller]
    pub fn tsval(&self) -> u32 {
        self.ts.expect("the segment carries timestamps").0
    }

    /// TSecr of a segment that must carry timestamps.
    #[track_caller]
    pub fn tsecr(&self) -> u32 {
        self.ts.expect("the segment carries timestamps").1
    }

    fn repr(&self, src_port: u16, dst_port: u16) -> TcpRepr<'_> {
        let mut sack = SackBlocks::default();
        for &(l, r) in &self.sack {
            sack.push(SeqNum(l), SeqNum(r));
        }
        TcpRepr {
            src_port,
            dst_port,
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

/// A segment the shard sent, with its addresses.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seg: Seg,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {}: {:?}", self.src, self.dst, self.seg)
    }
}

/// A shard and a scripted peer.
pub struct Harness {
    pub shard: Shard,
    pub now: Instant,
    /// Our address as the peer sees it: where [`Harness::send`] sends to.
    pub us: SocketAddr,
    /// The peer the test plays: where [`Harness::send`] comes from and [`Harness::recv`]
    /// expects segments to go.
    pub peer: SocketAddr,
    /// Every segment the shard sent, in order, with the time it was polled.
    pub sent: Vec<(Instant, Packet)>,
    buf: Vec<u8>,
}

/// The engine defaults, without timestamps so traces stay short (timestamp tests turn them on).
pub fn config() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    }
}

/// The engine defaults, timestamps included.
pub fn config_ts() -> TcpConfig {
    TcpConfig::default()
}

/// What a completed handshake settled, as the peer saw it.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub conn: ConnHandle,
    /// Our ISS.
    pub iss: u32,
    /// The offset our TSval clock adds to milliseconds (0 without timestamps).
    pub ts_offset: u32,
}

impl Harness {
    pub fn new(config: TcpConfig) -> Harness {
        // Tests start at a round, non-zero time.
        let now = Instant::from_millis(1_000_000);
        Harness {
            shard: Shard::new(config, [42; 32], now).expect("valid config"),
            now,
            us: US,
            peer: PEER,
            sent: Vec::new(),
            buf: vec![0; 70_000],
        }
    }

    /// A harness with a listener on [`US`].
    pub fn listening(config: TcpConfig) -> (Harness, ListenerId) {
        Harness::listening_with(config, ListenConfig::default())
    }

    /// A harness with a listener on [`US`] with the given queue bounds.
    pub fn listening_with(config: TcpConfig, listen: ListenConfig) -> (Harness, ListenerId) {
        let mut h = Harness::new(config);
        let l = h.shard.listen(US, listen).expect("listen");
        (h, l)
    }

    pub fn counters(&self) -> &Counters {
        self.shard.counters()
    }

    /// Delivers `seg` from the peer.
    pub fn send(&mut self, seg: Seg) {
        self.send_from(self.peer, self.us, seg);
    }

    /// Delivers `seg` from `src` to `dst` (IPv4 or IPv6, as the addresses are).
    pub fn send_from(&mut self, src: SocketAddr, dst: SocketAddr, seg: Seg) {
        let repr = seg.repr(src.port(), dst.port());
        let tcp_len = repr.buffer_len();
        let ip = IpRepr::new(src.ip(), dst.ip(), IpProtocol::Tcp, tcp_len, 64)
            .expect("addresses of one family");
        let ip_len = ip.header_len();
        let mut packet = vec![0u8; ip_len + tcp_len];
        ip.emit(&mut packet).unwrap();
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut packet[ip_len..]),
            &src.ip(),
            &dst.ip(),
            ChecksumMode::Verify,
        )
        .unwrap();
        self.shard
            .on_packet(self.now, &packet)
            .expect("well-formed packet");
    }

    /// Everything the shard sends now, to anyone.
    pub fn recv_packets(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        while let Some(len) = self.shard.poll_transmit(self.now, &mut self.buf) {
            let packet = parse(&self.buf[..len]);
            self.sent.push((self.now, packet.clone()));
            out.push(packet);
            assert!(out.len() < 10_000, "the shard keeps transmitting");
        }
        out
    }

    /// Everything the shard sends now; all of it must go from [`Harness::us`] to
    /// [`Harness::peer`].
    #[track_caller]
    pub fn recv(&mut self) -> Vec<Seg> {
        let packets = self.recv_packets();
        self.to_peer(packets)
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
        let packets = self.recv_packets();
        assert!(packets.is_empty(), "expected silence, got {packets:?}");
    }

    /// Moves time forward by `d`, firing every timer at its own deadline and collecting what
    /// the shard sends (to anyone), with the time it sent it. Like a worker, it first sends
    /// what the last input or call left pending, at the current time.
    pub fn advance_packets(&mut self, d: Duration) -> Vec<(Instant, Packet)> {
        let target = self.now + d;
        let start = self.now;
        let mut out: Vec<_> = self
            .recv_packets()
            .into_iter()
            .map(|p| (start, p))
            .collect();
        for _ in 0..1_000_000 {
            let next = self.shard.poll_timeout().filter(|&t| t <= target);
            self.now = next.map_or(target, |t| self.now.max(t));
            self.shard.on_timeout(self.now);
            let now = self.now;
            out.extend(self.recv_packets().into_iter().map(|p| (now, p)));
            if next.is_none() {
                return out;
            }
        }
        panic!("timers make no progress before {target:?}");
    }

    /// [`Harness::advance_packets`] for a test with one peer: every segment must go from
    /// [`Harness::us`] to [`Harness::peer`].
    #[track_caller]
    pub fn advance(&mut self, d: Duration) -> Vec<(Instant, Seg)> {
        let packets = self.advance_packets(d);
        let (times, packets): (Vec<_>, Vec<_>) = packets.into_iter().unzip();
        times.into_iter().zip(self.to_peer(packets)).collect()
    }

    /// Moves time forward timer by timer until the shard sends something, and returns that (with
    /// the time); returns nothing if `limit` passes first. For traces that answer each segment.
    #[track_caller]
    pub fn advance_until_sent(&mut self, limit: Duration) -> Vec<(Instant, Seg)> {
        let target = self.now + limit;
        let now = self.now;
        let pending = self.recv();
        if !pending.is_empty() {
            return pending.into_iter().map(|s| (now, s)).collect();
        }
        for _ in 0..1_000_000 {
            let next = self.shard.poll_timeout().filter(|&t| t <= target);
            self.now = next.map_or(target, |t| self.now.max(t));
            self.shard.on_timeout(self.now);
            let segs = self.recv();
            if !segs.is_empty() || next.is_none() {
                let now = self.now;
                return segs.into_iter().map(|s| (now, s)).collect();
            }
        }
        panic!("timers make no progress before {target:?}");
    }

    /// Moves time to `t` (see [`Harness::advance`]).
    #[track_caller]
    pub fn advance_to(&mut self, t: Instant) -> Vec<(Instant, Seg)> {
        assert!(t >= self.now, "time runs forward");
        self.advance(t - self.now)
    }

    #[track_caller]
    fn to_peer(&self, packets: Vec<Packet>) -> Vec<Seg> {
        packets
            .into_iter()
            .map(|p| {
                assert_eq!(
                    (p.src, p.dst),
                    (self.us, self.peer),
                    "a segment for someone else: {p:?}"
                );
                p.seg
            })
            .collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.shard.poll_event()).collect()
    }

    /// Our TSval now, for a connection whose clock offset is `offset` (RFC 7323 5.4: one tick
    /// per millisecond).
    pub fn tsval(&self, offset: u32) -> u32 {
        (self.now.as_millis() as u32).wrapping_add(offset)
    }

    /// Completes a passive open from the peer (ISN 1000, MSS 1460, no options) and accepts it;
    /// returns the connection and our ISN.
    pub fn open_passive(&mut self, listener: ListenerId) -> (ConnHandle, u32) {
        let o = self.open_passive_with(listener, Seg::syn(1000));
        (o.conn, o.iss)
    }

    /// Completes a passive open that starts with `syn` (whose ISN must be 1000) and accepts it.
    /// With timestamps on the SYN, the final ACK carries TSval `tsval + 1` and echoes ours.
    pub fn open_passive_with(&mut self, listener: ListenerId, syn: Seg) -> Opened {
        assert_eq!(syn.seq, 1000, "scenarios count the peer's bytes from 1001");
        let ts = syn.ts;
        self.send(syn);
        let synack = self.recv_one();
        assert!(synack.is(TcpFlags::SYN | TcpFlags::ACK), "{synack:?}");
        let iss = synack.seq;
        let mut ack = Seg::ack(1001, iss.wrapping_add(1));
        let mut ts_offset = 0;
        if let (Some((tsval, _)), Some((our, _))) = (ts, synack.ts) {
            ts_offset = our.wrapping_sub(self.now.as_millis() as u32);
            ack = ack.ts(tsval + 1, our);
        }
        self.send(ack);
        self.recv_none();
        let conn = self.shard.accept(listener).expect("accepted");
        self.events();
        Opened {
            conn,
            iss,
            ts_offset,
        }
    }

    /// Completes an active open from [`Harness::us`] to [`Harness::peer`], the peer answering
    /// with `synack` (ISN 5000, acknowledging our SYN whatever `synack.ack` says); returns the
    /// connection and our ISS.
    pub fn open_active_with(&mut self, synack: Seg) -> Opened {
        let conn = self
            .shard
            .connect(self.now, self.us, self.peer)
            .expect("connect");
        let syn = self.recv_one();
        assert!(syn.is(TcpFlags::SYN), "{syn:?}");
        let ts_offset = syn
            .ts
            .map_or(0, |(v, _)| v.wrapping_sub(self.now.as_millis() as u32));
        assert_eq!(
            synack.seq, 5000,
            "scenarios count the peer's bytes from 5001"
        );
        self.send(Seg {
            ack: Some(syn.seq.wrapping_add(1)),
            ..synack
        });
        let ack = self.recv_one();
        assert!(ack.is(TcpFlags::ACK), "{ack:?}");
        assert_eq!(self.events(), vec![Event::Connected(conn)]);
        Opened {
            conn,
            iss: syn.seq,
            ts_offset,
        }
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

    /// Reads at most `n` bytes.
    pub fn read(&mut self, conn: ConnHandle, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let got = self.shard.recv(self.now, conn, &mut buf).expect("readable");
        buf.truncate(got);
        buf
    }
}

/// Parses an IPv4 or IPv6 packet the shard sent, checking both checksums.
fn parse(packet: &[u8]) -> Packet {
    let (src, dst, tcp) = match packet[0] >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).expect("IPv4 out");
            let repr = Ipv4Repr::parse(&ip, ChecksumMode::Verify).expect("valid IPv4 header");
            assert_eq!(repr.protocol, IpProtocol::Tcp);
            (
                IpAddr::V4(repr.src),
                IpAddr::V4(repr.dst),
                &packet[ip.header_len()..][..repr.payload_len],
            )
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).expect("IPv6 out");
            let repr = Ipv6Repr::parse(&ip).expect("valid IPv6 header");
            assert_eq!(repr.next_header, IpProtocol::Tcp);
            (
                IpAddr::V6(repr.src),
                IpAddr::V6(repr.dst),
                &packet[40..][..repr.payload_len],
            )
        }
        v => panic!("IP version {v} out"),
    };
    let tcp_packet = TcpPacket::new_checked(tcp).expect("TCP out");
    let repr = TcpRepr::parse(&tcp_packet, &src, &dst, ChecksumMode::Verify).expect("valid TCP");
    Packet {
        src: SocketAddr::new(src, repr.src_port),
        dst: SocketAddr::new(dst, repr.dst_port),
        seg: Seg::from_repr(&repr),
    }
}
