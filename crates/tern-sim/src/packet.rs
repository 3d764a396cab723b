//! Looking into the IP packets that cross the simulated network: addresses for routing,
//! [`parse_tcp`] for tests that assert on segments, and [`summarize`] for readable traces.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tern_wire::{
    ChecksumMode, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpFlags, TcpPacket,
    TcpRepr,
};

/// The IP version of a packet, from its first nibble.
pub(crate) fn version(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b >> 4)
}

/// Source and destination addresses read straight from the header, without any validation
/// beyond the version nibble and the length of the fixed header. This is what routing uses.
pub fn ip_addrs(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match version(packet)? {
        4 => {
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
        }
        6 => {
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
        }
        _ => None,
    }
}

/// Parses an IP packet carrying an intact TCP segment: `(source, destination, segment)`.
///
/// `None` for anything else: not IPv4/IPv6, a fragment, another protocol, a malformed header,
/// or a bad IPv4 header or TCP checksum (so a corrupted packet is `None`, as the engine would
/// drop it).
pub fn parse_tcp(packet: &[u8]) -> Option<(IpAddr, IpAddr, TcpRepr<'_>)> {
    let (ip_src, ip_dst, protocol, segment): (IpAddr, IpAddr, IpProtocol, &[u8]) =
        match version(packet)? {
            4 => {
                let view = Ipv4Packet::new_unchecked(packet);
                let ip = Ipv4Repr::parse(&view, ChecksumMode::Verify).ok()?;
                (
                    ip.src.into(),
                    ip.dst.into(),
                    ip.protocol,
                    view.into_payload(),
                )
            }
            6 => {
                let view = Ipv6Packet::new_unchecked(packet);
                let ip = Ipv6Repr::parse(&view).ok()?;
                // The upper layer is the tail of the payload, after the extension headers.
                let payload = view.into_payload();
                let start = payload.len().checked_sub(ip.payload_len)?;
                (
                    ip.src.into(),
                    ip.dst.into(),
                    ip.next_header,
                    &payload[start..],
                )
            }
            _ => return None,
        };
    if protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpRepr::parse(
        &TcpPacket::new_unchecked(segment),
        &ip_src,
        &ip_dst,
        ChecksumMode::Verify,
    )
    .ok()?;
    Some((ip_src, ip_dst, tcp))
}

/// A one-line, tcpdump-like description of an IP packet, for traces and failure messages:
/// `10.0.0.1:40000 > 10.0.0.2:80 SYN seq=1 win=65535 mss=1460 ws=7 sackOK len=0`.
pub fn summarize(packet: &[u8]) -> Summary<'_> {
    Summary(packet)
}

/// The [`Display`](fmt::Display) of [`summarize`].
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a>(&'a [u8]);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((src, dst, tcp)) = parse_tcp(self.0) else {
            return match ip_addrs(self.0) {
                Some((src, dst)) => write!(
                    f,
                    "{src} > {dst} {} bytes, not an intact TCP packet",
                    self.0.len()
                ),
                None => write!(f, "{} bytes, not an IP packet", self.0.len()),
            };
        };
        write!(
            f,
            "{} > {} {} seq={}",
            SocketAddr::new(src, tcp.src_port),
            SocketAddr::new(dst, tcp.dst_port),
            tcp.flags,
            tcp.seq_number
        )?;
        if let Some(ack) = tcp.ack_number {
            write!(f, " ack={ack}")?;
        }
        write!(f, " win={}", tcp.window_len)?;
        if let Some(mss) = tcp.max_seg_size {
            write!(f, " mss={mss}")?;
        }
        if let Some(ws) = tcp.window_scale {
            write!(f, " ws={ws}")?;
        }
        if tcp.sack_permitted {
            f.write_str(" sackOK")?;
        }
        for block in tcp.sack_blocks.iter() {
            write!(f, " sack={}-{}", block.left, block.right)?;
        }
        if let Some(ts) = tcp.timestamp {
            write!(f, " ts={}/{}", ts.tsval, ts.tsecr)?;
        }
        if tcp.flags.contains(TcpFlags::URG) {
            write!(f, " urg={}", tcp.urgent_pointer)?;
        }
        write!(f, " len={}", tcp.payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_wire::{IpRepr, SeqNum, TcpTimestamp};

    pub(crate) fn tcp_packet(src: IpAddr, dst: IpAddr, tcp: &TcpRepr<'_>) -> Vec<u8> {
        let ip = IpRepr::new(src, dst, IpProtocol::Tcp, tcp.buffer_len(), 64).unwrap();
        let mut buf = vec![0u8; ip.buffer_len()];
        ip.emit(&mut buf).unwrap();
        let segment = &mut buf[ip.header_len()..];
        tcp.emit(
            &mut TcpPacket::new_unchecked(segment),
            &src,
            &dst,
            ChecksumMode::Verify,
        )
        .unwrap();
        buf
    }

    fn syn() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            flags: TcpFlags::SYN,
            seq_number: SeqNum(1),
            window_len: 65535,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpRepr::default()
        }
    }

    #[test]
    fn parses_tcp_over_both_families() {
        let v4: (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let v6: (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        for (src, dst) in [v4, v6] {
            let seg = TcpRepr {
                flags: TcpFlags::ACK | TcpFlags::PSH,
                ack_number: Some(SeqNum(77)),
                max_seg_size: None,
                window_scale: None,
                sack_permitted: false,
                timestamp: Some(TcpTimestamp { tsval: 5, tsecr: 6 }),
                payload: b"hello",
                ..syn()
            };
            let bytes = tcp_packet(src, dst, &seg);
            assert_eq!(ip_addrs(&bytes), Some((src, dst)));
            assert_eq!(parse_tcp(&bytes), Some((src, dst, seg)));
            let text = summarize(&bytes).to_string();
            assert!(
                text.ends_with("PSH|ACK seq=1 ack=77 win=65535 ts=5/6 len=5"),
                "{text}"
            );
            // In IPv4 any flipped bit is caught by a checksum or breaks the header. (IPv6's
            // traffic class, flow label and hop limit are covered by no checksum at all.)
            if src.is_ipv6() {
                continue;
            }
            for bit in 0..bytes.len() * 8 {
                let mut bad = bytes.clone();
                bad[bit / 8] ^= 0x80 >> (bit % 8);
                if let Some((s, d, t)) = parse_tcp(&bad) {
                    panic!("bit {bit} flipped yet parsed: {s} {d} {t:?}");
                }
            }
        }
    }

    #[test]
    fn summary_of_a_syn_and_of_garbage() {
        let bytes = tcp_packet(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            &syn(),
        );
        assert_eq!(
            summarize(&bytes).to_string(),
            "10.0.0.1:40000 > 10.0.0.2:80 SYN seq=1 win=65535 mss=1460 ws=7 sackOK len=0"
        );
        assert_eq!(
            summarize(&[1, 2, 3]).to_string(),
            "3 bytes, not an IP packet"
        );
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert_eq!(
            summarize(&bad).to_string(),
            format!(
                "10.0.0.1 > 10.0.0.2 {} bytes, not an intact TCP packet",
                bytes.len()
            )
        );
        assert_eq!(ip_addrs(&[0x45; 10]), None);
        assert_eq!(parse_tcp(&[]), None);
    }
}
