//! What IPv4 and IPv6 share: protocol numbers (the IANA registry used by RFC 791's Protocol and
//! RFC 8200's Next Header fields) and an address-family generic header representation, so the
//! TCP engine needs no per-family code.

use core::fmt;
use core::net::IpAddr;

use crate::checksum::{self, Checksum};
use crate::ethernet::EtherType;
use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::{Error, Result};

/// An IPv4 Protocol or IPv6 Next Header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// IPv6 Hop-by-Hop Options (0).
    HopByHop,
    /// ICMP (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// IPv6 Routing header (43).
    Ipv6Route,
    /// IPv6 Fragment header (44).
    Ipv6Frag,
    /// Encapsulating Security Payload (50).
    Esp,
    /// Authentication Header (51).
    Ah,
    /// ICMPv6 (58).
    Icmpv6,
    /// IPv6 No Next Header (59).
    Ipv6NoNxt,
    /// IPv6 Destination Options (60).
    Ipv6Opts,
    /// Any other value. Use `From<u8>`, which never builds this for a named value.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            43 => IpProtocol::Ipv6Route,
            44 => IpProtocol::Ipv6Frag,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::Ipv6NoNxt,
            60 => IpProtocol::Ipv6Opts,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNxt => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Unknown(other) => other,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::HopByHop => f.write_str("HOPOPT"),
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Ipv6Route => f.write_str("IPv6-Route"),
            IpProtocol::Ipv6Frag => f.write_str("IPv6-Frag"),
            IpProtocol::Esp => f.write_str("ESP"),
            IpProtocol::Ah => f.write_str("AH"),
            IpProtocol::Icmpv6 => f.write_str("IPv6-ICMP"),
            IpProtocol::Ipv6NoNxt => f.write_str("IPv6-NoNxt"),
            IpProtocol::Ipv6Opts => f.write_str("IPv6-Opts"),
            IpProtocol::Unknown(n) => write!(f, "protocol {n}"),
        }
    }
}

/// An IPv4 or IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr {
    /// IPv4.
    Ipv4(Ipv4Repr),
    /// IPv6.
    Ipv6(Ipv6Repr),
}

impl IpRepr {
    /// A header with default fields (IPv4: DF set, ident 0; both: DSCP/ECN and flow label 0).
    /// Mixed address families are `Err(BadVersion)`.
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        protocol: IpProtocol,
        payload_len: usize,
        hop_limit: u8,
    ) -> Result<Self> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ok(IpRepr::Ipv4(Ipv4Repr {
                src,
                dst,
                protocol,
                payload_len,
                ttl: hop_limit,
                dscp: 0,
                ecn: 0,
                ident: 0,
                dont_frag: true,
            })),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ok(IpRepr::Ipv6(Ipv6Repr {
                src,
                dst,
                next_header: protocol,
                payload_len,
                hop_limit,
                traffic_class: 0,
                flow_label: 0,
            })),
            _ => Err(Error::BadVersion),
        }
    }

    /// Source address.
    pub fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.src.into(),
            IpRepr::Ipv6(r) => r.src.into(),
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::Ipv4(r) => r.dst.into(),
            IpRepr::Ipv6(r) => r.dst.into(),
        }
    }

    /// Upper-layer protocol.
    pub fn protocol(&self) -> IpProtocol {
        match self {
            IpRepr::Ipv4(r) => r.protocol,
            IpRepr::Ipv6(r) => r.next_header,
        }
    }

    /// Upper-layer length in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.payload_len,
            IpRepr::Ipv6(r) => r.payload_len,
        }
    }

    /// TTL or hop limit.
    pub fn hop_limit(&self) -> u8 {
        match self {
            IpRepr::Ipv4(r) => r.ttl,
            IpRepr::Ipv6(r) => r.hop_limit,
        }
    }

    /// Sets the upper-layer protocol.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        match self {
            IpRepr::Ipv4(r) => r.protocol = protocol,
            IpRepr::Ipv6(r) => r.next_header = protocol,
        }
    }

    /// Sets the upper-layer length.
    pub fn set_payload_len(&mut self, len: usize) {
        match self {
            IpRepr::Ipv4(r) => r.payload_len = len,
            IpRepr::Ipv6(r) => r.payload_len = len,
        }
    }

    /// Length of the emitted header.
    pub fn header_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.header_len(),
            IpRepr::Ipv6(r) => r.header_len(),
        }
    }

    /// Length of the emitted header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len().saturating_add(self.payload_len())
    }

    /// The EtherType that carries this header.
    pub fn ethertype(&self) -> EtherType {
        match self {
            IpRepr::Ipv4(_) => EtherType::Ipv4,
            IpRepr::Ipv6(_) => EtherType::Ipv6,
        }
    }

    /// Writes the header at the start of `buffer`, which must hold [`buffer_len`](Self::buffer_len)
    /// bytes; the payload bytes are left alone.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<()> {
        match self {
            IpRepr::Ipv4(r) => r.emit(&mut Ipv4Packet::new_unchecked(buffer)),
            IpRepr::Ipv6(r) => r.emit(&mut Ipv6Packet::new_unchecked(buffer)),
        }
    }

    /// The upper-layer pseudo-header sum for `protocol` and `len` bytes between this header's
    /// addresses, ready for `add_bytes(segment).finish()`.
    pub fn pseudo_header_checksum(&self, protocol: IpProtocol, len: u32) -> Checksum {
        match self {
            // An IPv4 length above 65535 cannot be sent; sum its low 16 bits as the field would.
            IpRepr::Ipv4(r) => checksum::pseudo_header_v4(&r.src, &r.dst, protocol, len as u16),
            IpRepr::Ipv6(r) => checksum::pseudo_header_v6(&r.src, &r.dst, protocol, len),
        }
    }
}

impl From<Ipv4Repr> for IpRepr {
    fn from(repr: Ipv4Repr) -> Self {
        IpRepr::Ipv4(repr)
    }
}

impl From<Ipv6Repr> for IpRepr {
    fn from(repr: Ipv6Repr) -> Self {
        IpRepr::Ipv6(repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn protocol_numbers_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(44), IpProtocol::Ipv6Frag);
        assert_eq!(IpProtocol::from(99), IpProtocol::Unknown(99));
    }

    #[test]
    fn generic_repr_per_family() {
        let v4 = IpRepr::new(
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(192, 0, 2, 2).into(),
            IpProtocol::Tcp,
            20,
            64,
        )
        .unwrap();
        assert_eq!((v4.header_len(), v4.buffer_len()), (20, 40));
        assert_eq!(v4.ethertype(), EtherType::Ipv4);
        assert_eq!(v4.src_addr(), IpAddr::from(Ipv4Addr::new(192, 0, 2, 1)));

        let mut v6 = IpRepr::new(
            Ipv6Addr::LOCALHOST.into(),
            Ipv6Addr::UNSPECIFIED.into(),
            IpProtocol::Udp,
            8,
            255,
        )
        .unwrap();
        v6.set_protocol(IpProtocol::Tcp);
        v6.set_payload_len(32);
        assert_eq!(
            (v6.protocol(), v6.payload_len(), v6.hop_limit()),
            (IpProtocol::Tcp, 32, 255)
        );
        assert_eq!((v6.header_len(), v6.ethertype()), (40, EtherType::Ipv6));

        let mixed = IpRepr::new(
            Ipv4Addr::LOCALHOST.into(),
            Ipv6Addr::LOCALHOST.into(),
            IpProtocol::Tcp,
            0,
            64,
        );
        assert_eq!(mixed, Err(Error::BadVersion));
    }

    #[test]
    fn emit_checks_buffer_and_pseudo_header_matches_free_function() {
        let repr = IpRepr::new(
            Ipv4Addr::new(10, 1, 1, 1).into(),
            Ipv4Addr::new(10, 1, 1, 2).into(),
            IpProtocol::Tcp,
            4,
            64,
        )
        .unwrap();
        let mut buf = [0u8; 24];
        assert_eq!(repr.emit(&mut buf[..23]), Err(Error::BufferTooSmall));
        repr.emit(&mut buf).unwrap();
        assert_eq!(buf[0], 0x45);
        assert_eq!(
            repr.pseudo_header_checksum(IpProtocol::Tcp, 4),
            checksum::pseudo_header(&repr.src_addr(), &repr.dst_addr(), IpProtocol::Tcp, 4)
        );
    }
}
