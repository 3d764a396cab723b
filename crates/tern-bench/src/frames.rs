//! Flood frames: a template built once with `tern-wire`, then per packet a random source
//! address (from a prefix), source port, sequence number (and acknowledgment number and
//! timestamps where the shape has them), with both checksums patched incrementally
//! (RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`) instead of recomputed.
//!
//! The sum `~HC + Σ ~m` over the template's checksum and the template's values of every field
//! that changes is taken once, when the template is built ([`FrameGen::new`]); each packet then
//! only adds the new field values and folds: a handful of additions per frame, whatever the
//! frame's length.
//!
//! Shapes ([`Shape`]):
//! * `syn`: a bare SYN, no options (what simple flooders send);
//! * `linux-syn`: a SYN as Linux sends it: MSS, SACK-permitted, timestamps, window scale 7,
//!   window 64240 (the kernel's cookie path has to encode all of it);
//! * `ack`: an ACK with a random acknowledgment number and timestamps: forged cookie ACKs,
//!   which make a cookie-validating server do a cookie check per packet.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use tern_wire::checksum::Checksum;
use tern_wire::{
    emit_tcp_frame, EtherType, EthernetAddress, EthernetRepr, IpProtocol, IpRepr, SeqNum, TcpFlags,
    TcpRepr, TcpTimestamp,
};

use crate::net::{Cidr, Rng};

/// What the flood sends.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// SYN without options.
    Syn,
    /// SYN with Linux's options: MSS, SACK-permitted, timestamps, window scale.
    LinuxSyn,
    /// ACK with a random acknowledgment number and timestamps (forged cookie ACKs).
    Ack,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 3] = [Shape::Syn, Shape::LinuxSyn, Shape::Ack];
}

/// Forged source ports are drawn from `PORT_MIN..PORT_MIN + PORT_SPAN` (1024..=65535), clear of
/// the well-known ports.
const PORT_MIN: u16 = 1024;
const PORT_SPAN: u16 = 65535 - PORT_MIN + 1;

/// Byte offsets of the fields that change per packet, inside the frame.
#[derive(Debug, Clone, Copy)]
struct Layout {
    src_addr: usize,
    ip_checksum: Option<usize>,
    src_port: usize,
    seq: usize,
    ack: Option<usize>,
    tsval: Option<usize>,
    tsecr: Option<usize>,
    tcp_checksum: usize,
}

/// Makes flood frames from one template.
#[derive(Debug, Clone)]
pub struct FrameGen {
    template: Vec<u8>,
    layout: Layout,
    /// `~HC + Σ ~m` for the TCP checksum (template values of every changing field).
    tcp_base: Checksum,
    /// The same for the IPv4 header checksum (source address only).
    ip_base: Option<Checksum>,
    src: Cidr,
    rng: Rng,
}

/// Everything a template needs.
#[derive(Debug, Clone, Copy)]
pub struct FrameSpec {
    /// Shape.
    pub shape: Shape,
    /// Source MAC (the flooding interface's).
    pub src_mac: [u8; 6],
    /// Destination MAC (the server's, or the next hop's).
    pub dst_mac: [u8; 6],
    /// Forged sources are drawn from here (same family as `dst`).
    pub src: Cidr,
    /// The server.
    pub dst: SocketAddr,
}

impl FrameGen {
    /// Builds the template for `spec`; `seed` seeds the random fields.
    pub fn new(spec: &FrameSpec, seed: u64) -> Result<FrameGen> {
        anyhow::ensure!(
            spec.src.addr.is_ipv4() == spec.dst.is_ipv4(),
            "source range {} and destination {} are of different address families",
            spec.src,
            spec.dst
        );
        let v4 = spec.dst.is_ipv4();
        let eth = EthernetRepr {
            src: EthernetAddress(spec.src_mac),
            dst: EthernetAddress(spec.dst_mac),
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        let ip = IpRepr::new(spec.src.addr, spec.dst.ip(), IpProtocol::Tcp, 0, 64)
            .context("building the IP header")?;
        let ts = Some(TcpTimestamp { tsval: 0, tsecr: 0 });
        let tcp = match spec.shape {
            Shape::Syn => TcpRepr {
                src_port: 0,
                dst_port: spec.dst.port(),
                flags: TcpFlags::SYN,
                window_len: 64240,
                ..TcpRepr::default()
            },
            Shape::LinuxSyn => TcpRepr {
                src_port: 0,
                dst_port: spec.dst.port(),
                flags: TcpFlags::SYN,
                window_len: 64240,
                max_seg_size: Some(if v4 { 1460 } else { 1440 }),
                sack_permitted: true,
                timestamp: ts,
                window_scale: Some(7),
                ..TcpRepr::default()
            },
            Shape::Ack => TcpRepr {
                src_port: 0,
                dst_port: spec.dst.port(),
                flags: TcpFlags::ACK,
                ack_number: Some(SeqNum(0)),
                window_len: 502,
                timestamp: ts,
                ..TcpRepr::default()
            },
        };
        let mut template = vec![0u8; 128];
        let len =
            emit_tcp_frame(&eth, &ip, &tcp, &mut template).context("emitting the template")?;
        template.truncate(len);

        let l3 = 14;
        let (src_addr, addr_len, ip_checksum, l4) = if v4 {
            (l3 + 12, 4, Some(l3 + 10), l3 + 20)
        } else {
            (l3 + 8, 16, None, l3 + 40)
        };
        // Timestamps: tern-wire writes options in Linux's order; find the TS option by walking.
        let ts_off = find_timestamp(&template[l4 + 20..]).map(|o| l4 + 20 + o);
        let layout = Layout {
            src_addr,
            ip_checksum,
            src_port: l4,
            seq: l4 + 4,
            ack: (spec.shape == Shape::Ack).then_some(l4 + 8),
            tsval: ts_off,
            tsecr: ts_off.filter(|_| spec.shape == Shape::Ack).map(|o| o + 4),
            tcp_checksum: l4 + 16,
        };
        let word = |off: usize| u16::from_be_bytes([template[off], template[off + 1]]);
        let not_words = |mut sum: Checksum, off: usize, len: usize| {
            for i in (0..len).step_by(2) {
                sum = sum.add_u16(!word(off + i));
            }
            sum
        };
        let mut tcp_base = Checksum::new().add_u16(!word(layout.tcp_checksum));
        tcp_base = not_words(tcp_base, layout.src_addr, addr_len);
        tcp_base = not_words(tcp_base, layout.src_port, 2);
        tcp_base = not_words(tcp_base, layout.seq, 4);
        for off in [layout.ack, layout.tsval, layout.tsecr]
            .into_iter()
            .flatten()
        {
            tcp_base = not_words(tcp_base, off, 4);
        }
        let ip_base = layout
            .ip_checksum
            .map(|c| not_words(Checksum::new().add_u16(!word(c)), layout.src_addr, 4));
        Ok(FrameGen {
            template,
            layout,
            tcp_base,
            ip_base,
            src: spec.src,
            rng: Rng::new(seed),
        })
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.template.len()
    }

    /// Always false: a template is a whole frame.
    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// The template itself (all random fields at their template values).
    pub fn template(&self) -> &[u8] {
        &self.template
    }

    /// The same generator for `bpf/tern_flood.bpf.c` (the live-frames flood path): where this
    /// template's changing fields are, the checksum bases and the source prefix, as the program's
    /// configuration. The program draws the same fields from the same ranges and patches the
    /// checksums the same way, from its own random source.
    pub fn live_config(&self) -> tern_bpf::FloodConfig {
        let l = self.layout;
        let off = |o: Option<usize>| o.map_or(0, |o| o as u32);
        let base = |c: Checksum| u32::from(c.sum());
        let (addr_words, addr_fixed, addr_random) = match self.src.addr {
            IpAddr::V4(a) => (
                1,
                [u32::from(a), 0, 0, 0],
                [self.src.host_mask_v4().unwrap_or(0), 0, 0, 0],
            ),
            IpAddr::V6(a) => {
                let words = |v: u128| {
                    let b = v.to_be_bytes();
                    std::array::from_fn(|i| {
                        u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
                    })
                };
                (
                    4,
                    words(u128::from(a)),
                    words(self.src.host_mask_v6().unwrap_or(0)),
                )
            }
        };
        tern_bpf::FloodConfig {
            frame_len: self.template.len() as u32,
            addr_words,
            src_addr: l.src_addr as u32,
            ip_checksum: off(l.ip_checksum),
            src_port: l.src_port as u32,
            seq: l.seq as u32,
            ack: off(l.ack),
            tsval: off(l.tsval),
            tsecr: off(l.tsecr),
            tcp_checksum: l.tcp_checksum as u32,
            tcp_base: base(self.tcp_base),
            ip_base: self.ip_base.map_or(0, base),
            addr_fixed,
            addr_random,
            port_min: u32::from(PORT_MIN),
            port_span: u32::from(PORT_SPAN),
        }
    }

    /// Writes the next frame at the start of `out` (at least [`len`](Self::len) bytes) and
    /// returns its length.
    #[inline]
    pub fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = self.template.len();
        let out = &mut out[..n];
        out.copy_from_slice(&self.template);
        let l = self.layout;
        let r = self.rng.next_u64();
        let mut tcp = self.tcp_base;
        let mut ip = self.ip_base;
        if let Some(mask) = self.src.host_mask_v4() {
            let base = match self.src.addr {
                IpAddr::V4(a) => u32::from(a),
                IpAddr::V6(_) => 0,
            };
            let addr = base | (r as u32 & mask);
            out[l.src_addr..l.src_addr + 4].copy_from_slice(&addr.to_be_bytes());
            tcp = tcp.add_u32(addr);
            ip = ip.map(|s| s.add_u32(addr));
        } else {
            let mask = self.src.host_mask_v6().unwrap_or(0);
            let base = match self.src.addr {
                IpAddr::V6(a) => u128::from(a),
                IpAddr::V4(_) => 0,
            };
            let rnd = (u128::from(self.rng.next_u64()) << 64) | u128::from(r);
            let addr = (base | (rnd & mask)).to_be_bytes();
            out[l.src_addr..l.src_addr + 16].copy_from_slice(&addr);
            tcp = tcp.add_bytes(&addr);
        }
        let port = PORT_MIN + ((r >> 32) as u16 % PORT_SPAN);
        out[l.src_port..l.src_port + 2].copy_from_slice(&port.to_be_bytes());
        tcp = tcp.add_u16(port);
        let r2 = self.rng.next_u64();
        let seq = r2 as u32;
        out[l.seq..l.seq + 4].copy_from_slice(&seq.to_be_bytes());
        tcp = tcp.add_u32(seq);
        let r3 = self.rng.next_u64();
        for (off, v) in [
            (l.ack, (r2 >> 32) as u32),
            (l.tsval, r3 as u32),
            (l.tsecr, (r3 >> 32) as u32),
        ] {
            if let Some(off) = off {
                out[off..off + 4].copy_from_slice(&v.to_be_bytes());
                tcp = tcp.add_u32(v);
            }
        }
        out[l.tcp_checksum..l.tcp_checksum + 2].copy_from_slice(&tcp.finish().to_be_bytes());
        if let (Some(off), Some(ip)) = (l.ip_checksum, ip) {
            out[off..off + 2].copy_from_slice(&ip.finish().to_be_bytes());
        }
        n
    }
}

/// Offset of the timestamps option's TSval inside TCP options, if present.
fn find_timestamp(options: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => return None,
            1 => i += 1,
            8 => return Some(i + 2),
            _ => i += usize::from(*options.get(i + 1)?).max(2),
        }
    }
    None
}
