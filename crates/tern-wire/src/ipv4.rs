//! IPv4 header, RFC 791 §3.1. Options are carried by the view and skipped by the
//! representation; fragments (§2.3 "Fragmentation") are refused, because a TCP stack that
//! parsed a fragment's bytes as a segment would act on a partial, unverified header.

use core::net::Ipv4Addr;

use crate::checksum::{self, ChecksumMode};
use crate::ip::IpProtocol;
use crate::{be, Error, Result};

mod field {
    use crate::Field;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const TOTAL_LEN: Field = 2..4;
    pub(super) const IDENT: Field = 4..6;
    pub(super) const FLAGS_FRAG: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Field = 10..12;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter than 20 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates what the accessors rely on: version 4, IHL ≥ 5,
    /// header length ≤ total length ≤ buffer length.
    pub fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadTotalLen);
        }
        if len < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated Services Code Point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length: header plus payload.
    pub fn total_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::TOTAL_LEN])
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_frag(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::FLAGS_FRAG])
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this is any fragment of a larger datagram (MF set or a nonzero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Whether this is the first fragment (offset 0 with MF set).
    pub fn is_first_fragment(&self) -> bool {
        self.more_frags() && self.frag_offset() == 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Upper-layer protocol.
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[field::PROTOCOL].into()
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::u32(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::u32(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        checksum::data(data.get(..self.header_len()).unwrap_or(data)) == 0
    }

    /// Options: the bytes between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        options(self.buffer.as_ref())
    }

    /// Payload, bounded by the total length: trailing bytes (Ethernet padding) are excluded.
    pub fn payload(&self) -> &[u8] {
        payload(self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// [`payload`](Self::payload) with the buffer's lifetime rather than the view's.
    pub fn into_payload(self) -> &'a [u8] {
        payload(self.buffer.as_ref())
    }
}

fn header_len(data: &[u8]) -> usize {
    data.first().map_or(0, |b| usize::from(b & 0x0f) * 4)
}

fn options(data: &[u8]) -> &[u8] {
    data.get(HEADER_LEN..header_len(data)).unwrap_or_default()
}

fn payload(data: &[u8]) -> &[u8] {
    let total = data.get(field::TOTAL_LEN).map_or(0, be::u16);
    let end = usize::from(total).min(data.len());
    data.get(header_len(data)..end).unwrap_or_default()
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version field.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the ECN bits (2 bits).
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::TOTAL_LEN], len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::IDENT], ident);
    }

    fn set_flags_frag(&mut self, value: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::FLAGS_FRAG], value);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_frag() & !FLAG_DF;
        self.set_flags_frag(if on { v | FLAG_DF } else { v });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_frag() & !FLAG_MF;
        self.set_flags_frag(if on { v | FLAG_MF } else { v });
    }

    /// Sets the fragment offset in bytes (rounded down to a multiple of 8).
    pub fn set_frag_offset(&mut self, offset: u16) {
        let v = self.flags_frag() & !FRAG_OFFSET_MASK;
        self.set_flags_frag(v | (offset >> 3));
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the upper-layer protocol.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let sum = checksum::data(data.get(..self.header_len()).unwrap_or(data));
        self.set_checksum(sum);
    }

    /// Options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or_default()
    }

    /// Payload (bounded by the total length), mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let data = self.buffer.as_mut();
        let end = usize::from(be::u16(&data[field::TOTAL_LEN])).min(data.len());
        data.get_mut(start..end).unwrap_or_default()
    }
}

/// An IPv4 header that carries one whole, unfragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Reads a header: checks the view, then (in `Verify` mode) the header checksum, then
    /// refuses any fragment with `Err(Fragment)`. Options are skipped.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, mode: ChecksumMode) -> Result<Self> {
        packet.check()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum() {
            return Err(Error::BadIpChecksum);
        }
        if packet.is_fragment() {
            return Err(Error::Fragment);
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Length of the emitted header (no options are emitted).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes a 20-byte header with its checksum. The buffer must hold
    /// [`buffer_len`](Self::buffer_len) bytes (`BufferTooSmall`), and the total length must fit
    /// in 16 bits (`BadTotalLen`).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) -> Result<()> {
        let total_len = u16::try_from(self.buffer_len()).map_err(|_| Error::BadTotalLen)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let data = packet.buffer.as_mut();
        data[field::VER_IHL] = 0x45;
        data[field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0x03);
        be::set_u16(&mut data[field::TOTAL_LEN], total_len);
        be::set_u16(&mut data[field::IDENT], self.ident);
        be::set_u16(
            &mut data[field::FLAGS_FRAG],
            if self.dont_frag { FLAG_DF } else { 0 },
        );
        data[field::TTL] = self.ttl;
        data[field::PROTOCOL] = self.protocol.into();
        data[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        data[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    // 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73; checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet_bytes() -> Vec<u8> {
        let mut bytes = HEADER.to_vec();
        bytes.resize(0x73, 0xaa);
        bytes
    }

    #[test]
    fn getters() {
        let bytes = packet_bytes();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment() && !p.is_first_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn setters() {
        let mut bytes = packet_bytes();
        let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_dscp(46);
        p.set_ecn(3);
        p.set_ident(0xbeef);
        p.set_dont_frag(false);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        p.set_ttl(1);
        p.set_protocol(IpProtocol::Tcp);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_total_len(40);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!((p.dscp(), p.ecn(), p.ident()), (46, 3, 0xbeef));
        assert!(!p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment() && !p.is_first_fragment());
        assert_eq!((p.ttl(), p.protocol()), (1, IpProtocol::Tcp));
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.payload().len(), 20);
        p.payload_mut().fill(7);
        p.set_header_len(24);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[7; 16]);
        p.set_version(6);
        assert_eq!(p.version(), 6);
        assert_eq!(bytes[0], 0x66);
        assert_eq!(bytes[1], (46 << 2) | 3);
    }

    #[test]
    fn payload_excludes_ethernet_padding() {
        let mut bytes = packet_bytes();
        bytes.extend_from_slice(&[0; 10]);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn malformed_headers() {
        let bytes = packet_bytes();
        let check = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.clone();
            f(&mut b);
            Ipv4Packet::new_checked(&b[..]).err()
        };
        assert_eq!(check(&|b| b.truncate(19)), Some(Error::Truncated));
        assert_eq!(check(&|b| b[0] = 0x65), Some(Error::BadVersion));
        assert_eq!(check(&|b| b[0] = 0x44), Some(Error::BadHeaderLen));
        assert_eq!(check(&|b| b[0] = 0x40), Some(Error::BadHeaderLen));
        // IHL 15 = 60 bytes, but only 30 bytes present.
        assert_eq!(
            check(&|b| {
                b.truncate(30);
                b[0] = 0x4f
            }),
            Some(Error::Truncated)
        );
        assert_eq!(
            check(&|b| b[2..4].copy_from_slice(&19u16.to_be_bytes())),
            Some(Error::BadTotalLen)
        );
        assert_eq!(
            check(&|b| b[2..4].copy_from_slice(&0x74u16.to_be_bytes())),
            Some(Error::Truncated)
        );
        assert_eq!(
            check(&|b| b[0] = 0x46),
            None,
            "24-byte header with 4 option bytes"
        );
    }

    #[test]
    fn parse_checks_checksum_and_fragments() {
        let mut bytes = packet_bytes();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let repr = Ipv4Repr::parse(&p, ChecksumMode::Verify).unwrap();
        assert_eq!(repr.payload_len, 0x73 - 20);
        assert_eq!(repr.protocol, IpProtocol::Udp);

        bytes[8] = 63; // TTL changed, checksum not updated.
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p, ChecksumMode::Verify),
            Err(Error::BadIpChecksum)
        );
        assert!(Ipv4Repr::parse(&p, ChecksumMode::Ignore).is_ok());

        for (more, offset) in [(true, 0), (false, 8), (true, 1480)] {
            let mut bytes = packet_bytes();
            let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
            p.set_more_frags(more);
            p.set_frag_offset(offset);
            p.fill_checksum();
            assert_eq!(p.is_first_fragment(), more && offset == 0);
            assert_eq!(
                Ipv4Repr::parse(&p, ChecksumMode::Verify),
                Err(Error::Fragment),
                "MF={more} offset={offset}"
            );
        }
    }

    #[test]
    fn parse_never_panics_on_unchecked_view() {
        let p = Ipv4Packet::new_unchecked(&[0x45u8][..]);
        assert_eq!(
            Ipv4Repr::parse(&p, ChecksumMode::Verify),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn emit_known_header() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: IpProtocol::Udp,
            payload_len: 0x73 - 20,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
        };
        let mut bytes = [0u8; 0x73];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..20], HEADER);
        assert_eq!(
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..0x72])),
            Err(Error::BufferTooSmall)
        );
        let huge = Ipv4Repr {
            payload_len: 65_516,
            ..repr
        };
        assert_eq!(
            huge.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..])),
            Err(Error::BadTotalLen)
        );
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..100,
            any::<u8>(),
            0u8..64,
            0u8..4,
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(s, d, proto, payload_len, ttl, dscp, ecn, ident, dont_frag)| Ipv4Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol: proto.into(),
                    payload_len,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                    dont_frag,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))?;
            let p = Ipv4Packet::new_checked(&buf[..])?;
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&p, ChecksumMode::Verify)?, repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let unchecked = Ipv4Packet::new_unchecked(&bytes[..]);
            let _ = Ipv4Repr::parse(&unchecked, ChecksumMode::Verify);
            if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
                let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment());
                let _ = (p.is_first_fragment(), p.ttl(), p.protocol(), p.checksum());
                let _ = (p.src_addr(), p.dst_addr(), p.verify_checksum());
                prop_assert!(p.options().len() + HEADER_LEN == p.header_len());
                prop_assert!(p.payload().len() == usize::from(p.total_len()) - p.header_len());
                let _ = p.into_payload();
            }
        }
    }
}
