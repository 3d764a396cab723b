//! Whole frames in one call: Ethernet II (with an optional 802.1Q tag), then ARP (RFC 826),
//! IPv4 (RFC 791) or IPv6 (RFC 8200), then TCP (RFC 9293). Used by the datapath on receive, by
//! the lab test that checks every captured frame, and to build TCP frames for transmission.

use crate::arp::{ArpPacket, ArpRepr};
use crate::checksum::ChecksumMode;
use crate::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use crate::ip::{IpProtocol, IpRepr};
use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::tcp::{TcpPacket, TcpRepr};
use crate::{Error, Result};

/// A parsed frame. Payload slices borrow from the frame buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The Ethernet header.
    pub eth: EthernetRepr,
    /// What the frame carries.
    pub l3: L3<'a>,
}

/// The network layer of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3<'a> {
    /// An Ethernet/IPv4 ARP packet.
    Arp(ArpRepr),
    /// An IPv4 or IPv6 packet (IPv6 extension headers already walked).
    Ip {
        /// The IP header.
        ip: IpRepr,
        /// What the IP packet carries.
        l4: L4<'a>,
    },
    /// Any other EtherType; the payload is not looked at.
    Other(EtherType),
}

/// The transport layer of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// Any other upper layer (including IPv6 No Next Header and ESP), uninterpreted.
    Other {
        /// The upper-layer protocol.
        protocol: IpProtocol,
        /// Its bytes, bounded by the IP length fields.
        payload: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// The IP header, if this is an IP packet.
    pub fn ip(&self) -> Option<&IpRepr> {
        match &self.l3 {
            L3::Ip { ip, .. } => Some(ip),
            _ => None,
        }
    }

    /// The TCP segment, if this is one.
    pub fn tcp(&self) -> Option<&TcpRepr<'a>> {
        match &self.l3 {
            L3::Ip {
                l4: L4::Tcp(tcp), ..
            } => Some(tcp),
            _ => None,
        }
    }
}

/// Parses a whole Ethernet frame down to TCP.
///
/// In `Verify` mode both the IPv4 header checksum and the TCP checksum are checked. Fragments
/// are `Err(Fragment)`. Bytes after the IP packet (Ethernet padding) are ignored. Never panics.
pub fn parse_frame(frame: &[u8], mode: ChecksumMode) -> Result<Frame<'_>> {
    let view = EthernetFrame::new_unchecked(frame);
    let eth = EthernetRepr::parse(&view)?;
    let payload = view.into_payload();
    let l3 = match eth.ethertype {
        EtherType::Arp => L3::Arp(ArpRepr::parse(&ArpPacket::new_unchecked(payload))?),
        EtherType::Ipv4 => {
            let packet = Ipv4Packet::new_unchecked(payload);
            let ip = Ipv4Repr::parse(&packet, mode)?;
            ip_payload(ip.into(), packet.into_payload(), mode)?
        }
        EtherType::Ipv6 => {
            let packet = Ipv6Packet::new_unchecked(payload);
            let ip = Ipv6Repr::parse(&packet)?;
            // The upper layer is the tail of the payload, after the extension headers.
            let payload = packet.into_payload();
            let start = payload.len().saturating_sub(ip.payload_len);
            ip_payload(ip.into(), payload.get(start..).unwrap_or_default(), mode)?
        }
        other => L3::Other(other),
    };
    Ok(Frame { eth, l3 })
}

fn ip_payload(ip: IpRepr, payload: &[u8], mode: ChecksumMode) -> Result<L3<'_>> {
    let l4 = match ip.protocol() {
        IpProtocol::Tcp => L4::Tcp(TcpRepr::parse(
            &TcpPacket::new_unchecked(payload),
            &ip.src_addr(),
            &ip.dst_addr(),
            mode,
        )?),
        protocol => L4::Other { protocol, payload },
    };
    Ok(L3::Ip { ip, l4 })
}

/// Builds an Ethernet + IP + TCP frame at the start of `buf` with both checksums filled in,
/// and returns its length.
///
/// The EtherType comes from `ip`'s family, and `ip`'s protocol and payload length from `tcp`,
/// so callers need not keep them in sync. No padding to the 60-byte Ethernet minimum is added
/// (the NIC does that). Errors: `BufferTooSmall`; `BadTotalLen` if the segment does not fit
/// in an IP packet.
pub fn emit_tcp_frame(
    eth: &EthernetRepr,
    ip: &IpRepr,
    tcp: &TcpRepr<'_>,
    buf: &mut [u8],
) -> Result<usize> {
    let mut ip = *ip;
    ip.set_protocol(IpProtocol::Tcp);
    ip.set_payload_len(tcp.buffer_len());
    let eth = EthernetRepr {
        ethertype: ip.ethertype(),
        ..*eth
    };
    let len = eth.header_len() + ip.buffer_len();
    let frame = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *frame))?;
    let packet = frame
        .get_mut(eth.header_len()..)
        .ok_or(Error::BufferTooSmall)?;
    ip.emit(packet)?;
    let segment = packet
        .get_mut(ip.header_len()..)
        .ok_or(Error::BufferTooSmall)?;
    tcp.emit(
        &mut TcpPacket::new_unchecked(segment),
        &ip.src_addr(),
        &ip.dst_addr(),
        ChecksumMode::Verify,
    )?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arp::ArpOperation;
    use crate::ethernet::{EthernetAddress, VlanTag};
    use crate::tcp::tests::{arb_fields, expected, repr_of};
    use crate::tcp::{SackBlocks, SeqNum, TcpFlags, TcpTimestamp};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xa]);
    const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0xb]);

    fn eth(vlan: Option<VlanTag>) -> EthernetRepr {
        EthernetRepr {
            src: MAC_A,
            dst: MAC_B,
            vlan,
            // Deliberately wrong: emit_tcp_frame takes the EtherType from the IP header.
            ethertype: EtherType::Arp,
        }
    }

    fn ipv4() -> IpRepr {
        IpRepr::new(
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
            IpProtocol::Udp,
            0,
            64,
        )
        .unwrap()
    }

    fn ipv6() -> IpRepr {
        IpRepr::new(
            "fd00::1".parse::<Ipv6Addr>().unwrap().into(),
            "fd00::2".parse::<Ipv6Addr>().unwrap().into(),
            IpProtocol::Udp,
            0,
            64,
        )
        .unwrap()
    }

    fn tcp(payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 40000,
            dst_port: 443,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            seq_number: SeqNum(1000),
            ack_number: Some(SeqNum(2000)),
            window_len: 1024,
            urgent_pointer: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_blocks: SackBlocks::new(),
            timestamp: Some(TcpTimestamp { tsval: 1, tsecr: 2 }),
            payload,
        }
    }

    fn build(eth: &EthernetRepr, ip: &IpRepr, tcp: &TcpRepr<'_>) -> Vec<u8> {
        let mut buf = std::vec![0u8; 256];
        let len = emit_tcp_frame(eth, ip, tcp, &mut buf).unwrap();
        buf.truncate(len);
        buf
    }

    fn with_tcp(mut ip: IpRepr, tcp: &TcpRepr<'_>) -> IpRepr {
        ip.set_protocol(IpProtocol::Tcp);
        ip.set_payload_len(tcp.buffer_len());
        ip
    }

    #[test]
    fn tcp_over_ipv4_and_ipv6_with_and_without_vlan() {
        let seg = tcp(b"hello");
        let tag = VlanTag {
            pcp: 3,
            dei: false,
            vid: 42,
        };
        for ip in [ipv4(), ipv6()] {
            for vlan in [None, Some(tag)] {
                let bytes = build(&eth(vlan), &ip, &seg);
                let frame = parse_frame(&bytes, ChecksumMode::Verify).unwrap();
                let l2 = if vlan.is_some() { 18 } else { 14 };
                assert_eq!(bytes.len(), l2 + ip.header_len() + 32 + 5);
                assert_eq!(
                    frame.eth,
                    EthernetRepr {
                        ethertype: ip.ethertype(),
                        ..eth(vlan)
                    }
                );
                assert_eq!(frame.ip(), Some(&with_tcp(ip, &seg)));
                assert_eq!(frame.tcp(), Some(&seg));
            }
        }
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let seg = tcp(b"");
        let mut bytes = build(&eth(None), &ipv4(), &seg);
        assert_eq!(bytes.len(), 14 + 20 + 32);
        bytes.resize(80, 0);
        let frame = parse_frame(&bytes, ChecksumMode::Verify).unwrap();
        assert_eq!(frame.tcp().map(|t| t.payload), Some(&[][..]));
    }

    #[test]
    fn checksums_are_verified_per_mode() {
        let seg = tcp(b"data");
        let good = build(&eth(None), &ipv4(), &seg);

        let mut bad_ip = good.clone();
        bad_ip[14 + 8] -= 1; // TTL
        assert_eq!(
            parse_frame(&bad_ip, ChecksumMode::Verify),
            Err(Error::BadIpChecksum)
        );
        assert!(parse_frame(&bad_ip, ChecksumMode::Ignore).is_ok());

        let mut bad_tcp = good.clone();
        *bad_tcp.last_mut().unwrap() ^= 0x20;
        assert_eq!(
            parse_frame(&bad_tcp, ChecksumMode::Verify),
            Err(Error::BadTcpChecksum)
        );
        assert!(parse_frame(&bad_tcp, ChecksumMode::Ignore).is_ok());

        let mut bad_tcp6 = build(&eth(None), &ipv6(), &seg);
        bad_tcp6[14 + 40 + 4] ^= 1; // sequence number
        assert_eq!(
            parse_frame(&bad_tcp6, ChecksumMode::Verify),
            Err(Error::BadTcpChecksum)
        );
    }

    #[test]
    fn fragments_are_refused() {
        let mut bytes = build(&eth(None), &ipv4(), &tcp(b"x"));
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[14..]);
        packet.set_more_frags(true);
        packet.fill_checksum();
        assert_eq!(
            parse_frame(&bytes, ChecksumMode::Verify),
            Err(Error::Fragment)
        );
        assert_eq!(
            parse_frame(&bytes, ChecksumMode::Ignore),
            Err(Error::Fragment)
        );
    }

    #[test]
    fn tcp_after_ipv6_extension_header() {
        let seg = tcp(b"through options");
        let (src, dst) = match ipv6() {
            IpRepr::Ipv6(r) => (r.src, r.dst),
            IpRepr::Ipv4(_) => unreachable!(),
        };
        let ip = Ipv6Repr {
            src,
            dst,
            next_header: IpProtocol::Ipv6Opts,
            payload_len: 8 + seg.buffer_len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut bytes = std::vec![0u8; 14 + ip.buffer_len()];
        EthernetRepr {
            ethertype: EtherType::Ipv6,
            ..eth(None)
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]))
        .unwrap();
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[14..]))
            .unwrap();
        bytes[54] = IpProtocol::Tcp.into(); // Destination Options: next header, length 0
        seg.emit(
            &mut TcpPacket::new_unchecked(&mut bytes[62..]),
            &src.into(),
            &dst.into(),
            ChecksumMode::Verify,
        )
        .unwrap();
        let frame = parse_frame(&bytes, ChecksumMode::Verify).unwrap();
        assert_eq!(frame.tcp(), Some(&seg));
        assert_eq!(
            frame.ip().map(|ip| (ip.protocol(), ip.payload_len())),
            Some((IpProtocol::Tcp, seg.buffer_len()))
        );
    }

    #[test]
    fn arp_and_other_protocols() {
        let arp = ArpRepr {
            operation: ArpOperation::Request,
            source_hw: MAC_A,
            source_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_hw: EthernetAddress([0; 6]),
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        let eth_arp = EthernetRepr {
            dst: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
            ..eth(None)
        };
        let mut bytes = std::vec![0u8; 60]; // minimum frame, padded
        eth_arp
            .emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]))
            .unwrap();
        arp.emit(&mut ArpPacket::new_unchecked(&mut bytes[14..]))
            .unwrap();
        let frame = parse_frame(&bytes, ChecksumMode::Verify).unwrap();
        assert_eq!(
            frame,
            Frame {
                eth: eth_arp,
                l3: L3::Arp(arp)
            }
        );
        assert_eq!((frame.ip(), frame.tcp()), (None, None));

        bytes[12..14].copy_from_slice(&0x88ccu16.to_be_bytes()); // LLDP
        assert_eq!(
            parse_frame(&bytes, ChecksumMode::Verify).unwrap().l3,
            L3::Other(EtherType::Unknown(0x88cc))
        );

        // UDP over IPv4: passed up uninterpreted, bounded by the total length.
        let mut ip = ipv4();
        ip.set_payload_len(4);
        let mut bytes = std::vec![0u8; 60];
        EthernetRepr {
            ethertype: EtherType::Ipv4,
            ..eth(None)
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]))
        .unwrap();
        ip.emit(&mut bytes[14..]).unwrap();
        bytes[34..38].copy_from_slice(&[1, 2, 3, 4]);
        let frame = parse_frame(&bytes, ChecksumMode::Verify).unwrap();
        assert_eq!(
            frame.l3,
            L3::Ip {
                ip,
                l4: L4::Other {
                    protocol: IpProtocol::Udp,
                    payload: &[1, 2, 3, 4]
                }
            }
        );
    }

    #[test]
    fn truncated_frames() {
        let bytes = build(&eth(Some(VlanTag::default())), &ipv6(), &tcp(b"abc"));
        for len in 0..bytes.len() {
            assert_eq!(
                parse_frame(&bytes[..len], ChecksumMode::Verify),
                Err(Error::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn emit_tcp_frame_errors() {
        let seg = tcp(b"abc");
        let need = 14 + 20 + seg.buffer_len();
        let mut buf = std::vec![0u8; need];
        assert_eq!(
            emit_tcp_frame(&eth(None), &ipv4(), &seg, &mut buf[..need - 1]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            emit_tcp_frame(&eth(None), &ipv4(), &seg, &mut buf),
            Ok(need)
        );
        let huge = std::vec![0u8; 65_536];
        let mut big = std::vec![0u8; 70_000];
        assert_eq!(
            emit_tcp_frame(&eth(None), &ipv4(), &tcp(&huge), &mut big),
            Err(Error::BadTotalLen)
        );
    }

    fn arb_ip() -> impl Strategy<Value = IpRepr> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                any::<u8>(),
                0u8..64,
                0u8..4,
                any::<u16>(),
                any::<bool>()
            )
                .prop_map(|(s, d, ttl, dscp, ecn, ident, dont_frag)| IpRepr::Ipv4(
                    Ipv4Repr {
                        src: s.into(),
                        dst: d.into(),
                        protocol: IpProtocol::Tcp,
                        payload_len: 0,
                        ttl,
                        dscp,
                        ecn,
                        ident,
                        dont_frag,
                    }
                )),
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u8>(),
                any::<u8>(),
                0u32..0x10_0000
            )
                .prop_map(|(s, d, hop_limit, traffic_class, flow_label)| IpRepr::Ipv6(
                    Ipv6Repr {
                        src: s.into(),
                        dst: d.into(),
                        next_header: IpProtocol::Tcp,
                        payload_len: 0,
                        hop_limit,
                        traffic_class,
                        flow_label,
                    }
                )),
        ]
    }

    fn arb_vlan() -> impl Strategy<Value = Option<VlanTag>> {
        proptest::option::of(
            (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTag {
                pcp,
                dei,
                vid,
            }),
        )
    }

    proptest! {
        // Cheap cases, and these are the fuzz tests for the whole parser: run more of them.
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn frame_round_trip(
            vlan in arb_vlan(),
            ip in arb_ip(),
            fields in arb_fields(),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let seg = repr_of(&fields, &payload);
            let mut buf = [0u8; 512];
            let len = emit_tcp_frame(&eth(vlan), &ip, &seg, &mut buf)?;
            let frame = parse_frame(&buf[..len], ChecksumMode::Verify)?;
            prop_assert_eq!(frame.eth, EthernetRepr { ethertype: ip.ethertype(), ..eth(vlan) });
            prop_assert_eq!(frame.ip(), Some(&with_tcp(ip, &seg)));
            prop_assert_eq!(frame.tcp(), Some(&expected(seg)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_frame(&bytes, ChecksumMode::Verify);
            let _ = parse_frame(&bytes, ChecksumMode::Ignore);
        }

        #[test]
        fn plausible_headers_never_panic(
            ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100)],
            first in any::<u8>(),
            mut bytes in proptest::collection::vec(any::<u8>(), 14..200),
        ) {
            // Steer random bytes past the Ethernet header so the deeper parsers see them.
            bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
            if let Some(b) = bytes.get_mut(14) {
                *b = (first & 0x0f) | if ethertype == 0x86dd { 0x60 } else { 0x40 };
            }
            let _ = parse_frame(&bytes, ChecksumMode::Ignore);
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            vlan in arb_vlan(),
            ip in arb_ip(),
            fields in arb_fields(),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<proptest::sample::Index>(),
        ) {
            let seg = repr_of(&fields, b"some payload");
            let mut buf = [0u8; 256];
            let len = emit_tcp_frame(&eth(vlan), &ip, &seg, &mut buf)?;
            let frame = &mut buf[..len];
            for (at, value) in edits {
                frame[at.index(len)] = value;
            }
            let frame = &frame[..cut.index(len + 1)];
            let _ = parse_frame(frame, ChecksumMode::Verify);
            let _ = parse_frame(frame, ChecksumMode::Ignore);
        }
    }
}
