//! IPv6 fixed header, RFC 8200 §3, and a bounded walk of the extension-header chain (§4) to the
//! upper layer: Hop-by-Hop (§4.3), Routing (§4.4), Fragment (§4.5), Destination Options (§4.6),
//! No Next Header (§4.7) and Authentication (RFC 4302 §2.2, whose length counts 4-octet units).
//! Fragments are refused like IPv4 fragments; an atomic fragment (offset 0, M clear) is
//! processed as a whole packet (RFC 6946). Jumbograms (RFC 2675) are not supported.

use core::net::Ipv6Addr;

use crate::ip::IpProtocol;
use crate::{be, Error, Result};

mod field {
    use crate::Field;

    pub(super) const VER_TC_FLOW: Field = 0..4;
    pub(super) const PAYLOAD_LEN: Field = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Field = 8..24;
    pub(super) const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// Most extension headers walked before the chain is refused as `ExtHeaderChain`. Legitimate
/// packets carry one or two; the bound keeps a crafted chain from costing more than this.
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter than 40 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates what the accessors rely on: version 6, 40 + payload length ≤ buffer length,
    /// and not a jumbogram (payload length 0 with a Hop-by-Hop header).
    pub fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if self.payload_len() == 0 && self.next_header() == IpProtocol::HopByHop {
            return Err(Error::BadTotalLen);
        }
        if len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// Version field (6 for a valid packet).
    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::PAYLOAD_LEN])
    }

    /// The Next Header field of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        self.buffer.as_ref()[field::NEXT_HEADER].into()
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// Payload, bounded by the payload length: trailing bytes (Ethernet padding) are excluded.
    pub fn payload(&self) -> &[u8] {
        payload(self.buffer.as_ref())
    }

    /// Walks the extension headers; returns the upper-layer protocol and its offset in
    /// [`payload`](Self::payload).
    ///
    /// ESP and anything unknown count as upper layers (their contents are opaque), as does
    /// No Next Header. Errors: `Fragment` for a real fragment, `ExtHeaderChain` for a chain
    /// longer than [`MAX_EXT_HEADERS`], running past the payload, or with Hop-by-Hop anywhere
    /// but first (§4.1).
    pub fn upper_layer(&self) -> Result<(IpProtocol, usize)> {
        let payload = self.payload();
        let mut next = self.next_header();
        let mut offset = 0usize;
        for _ in 0..=MAX_EXT_HEADERS {
            let byte = |at: usize| {
                payload
                    .get(offset + at)
                    .copied()
                    .ok_or(Error::ExtHeaderChain)
            };
            let len = match next {
                IpProtocol::HopByHop if offset != 0 => return Err(Error::ExtHeaderChain),
                IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                    // Hdr Ext Len: 8-octet units, not counting the first 8 octets.
                    8 * (usize::from(byte(1)?) + 1)
                }
                IpProtocol::Ah => 4 * (usize::from(byte(1)?) + 2),
                IpProtocol::Ipv6Frag => {
                    // Fragment Offset (13 bits), 2 reserved bits, M flag.
                    let word = u16::from_be_bytes([byte(2)?, byte(3)?]);
                    if word >> 3 != 0 || word & 1 != 0 {
                        return Err(Error::Fragment);
                    }
                    8
                }
                upper => return Ok((upper, offset)),
            };
            if payload.len() < offset + len {
                return Err(Error::ExtHeaderChain);
            }
            next = byte(0)?.into();
            offset += len;
        }
        Err(Error::ExtHeaderChain)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// [`payload`](Self::payload) with the buffer's lifetime rather than the view's.
    pub fn into_payload(self) -> &'a [u8] {
        payload(self.buffer.as_ref())
    }
}

fn addr(bytes: &[u8]) -> [u8; 16] {
    bytes.try_into().unwrap_or_default()
}

fn payload(data: &[u8]) -> &[u8] {
    let len = data.get(field::PAYLOAD_LEN).map_or(0, be::u16);
    let end = (HEADER_LEN + usize::from(len)).min(data.len());
    data.get(HEADER_LEN..end).unwrap_or_default()
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn set_first_word(&mut self, word: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], word);
    }

    /// Sets the version field.
    pub fn set_version(&mut self, version: u8) {
        let w = self.first_word() & 0x0fff_ffff;
        self.set_first_word(w | (u32::from(version & 0x0f) << 28));
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.first_word() & 0xf00f_ffff;
        self.set_first_word(w | (u32::from(tc) << 20));
    }

    /// Sets the flow label (masked to 20 bits).
    pub fn set_flow_label(&mut self, label: u32) {
        let w = self.first_word() & 0xfff0_0000;
        self.set_first_word(w | (label & 0x000f_ffff));
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::PAYLOAD_LEN], len);
    }

    /// Sets the Next Header field.
    pub fn set_next_header(&mut self, next: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next.into();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Payload (bounded by the payload length), mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(self.buffer.as_ref().len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or_default()
    }
}

/// An IPv6 header as the upper layer sees it: extension headers are walked on parse and never
/// emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// The upper-layer protocol at the end of the extension-header chain.
    pub next_header: IpProtocol,
    /// Upper-layer length (payload length minus extension headers).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads a header and walks its extension headers (see [`Ipv6Packet::upper_layer`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Self> {
        packet.check()?;
        let (next_header, offset) = packet.upper_layer()?;
        Ok(Ipv6Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header,
            payload_len: usize::from(packet.payload_len()) - offset,
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Length of the emitted header (the fixed header only).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the 40-byte fixed header with Next Header set to the upper layer. The buffer must
    /// hold [`buffer_len`](Self::buffer_len) bytes (`BufferTooSmall`), and the payload length
    /// must fit in 16 bits (`BadTotalLen`).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) -> Result<()> {
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::BadTotalLen)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        packet.set_first_word(
            (6 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff),
        );
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn packet(next: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: next,
            payload_len: payload.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut buf = std::vec![0u8; repr.buffer_len()];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p).unwrap();
        p.payload_mut().copy_from_slice(payload);
        buf
    }

    /// An extension header of `len` bytes (a multiple of 8) with `next` as its Next Header.
    fn ext(next: IpProtocol, len: usize) -> Vec<u8> {
        let mut h = std::vec![0u8; len];
        h[0] = next.into();
        h[1] = (len / 8 - 1) as u8;
        h
    }

    fn upper(bytes: &[u8]) -> Result<(IpProtocol, usize)> {
        Ipv6Packet::new_checked(bytes)?.upper_layer()
    }

    #[test]
    fn getters_and_setters() {
        let mut bytes = [0u8; 48];
        bytes[..8].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45, 0x00, 0x08, 0x06, 0x40]);
        bytes[8] = 0x20;
        bytes[24] = 0xfe;
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), IpProtocol::Tcp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2000::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "fe00::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 8);

        let mut p = Ipv6Packet::new_unchecked(&mut bytes[..]);
        p.set_traffic_class(0x01);
        p.set_flow_label(0xfffff);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 1, 0xfffff)
        );
        p.set_flow_label(0x1_00001);
        assert_eq!((p.traffic_class(), p.flow_label()), (1, 1));
        p.set_payload_len(4);
        p.set_next_header(IpProtocol::Udp);
        p.set_hop_limit(1);
        p.set_src_addr(Ipv6Addr::LOCALHOST);
        p.set_dst_addr(Ipv6Addr::UNSPECIFIED);
        p.set_version(4);
        assert_eq!(p.version(), 4);
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (4, IpProtocol::Udp, 1)
        );
        assert_eq!(
            (p.src_addr(), p.dst_addr()),
            (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED)
        );
        assert_eq!(p.payload_mut().len(), 4);
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]).err(),
            Some(Error::BadVersion)
        );
    }

    #[test]
    fn malformed_headers() {
        let ok = packet(IpProtocol::Tcp, &[0; 20]);
        assert!(Ipv6Packet::new_checked(&ok[..]).is_ok());
        assert_eq!(
            Ipv6Packet::new_checked(&ok[..39]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv6Packet::new_checked(&ok[..59]).err(),
            Some(Error::Truncated)
        );
        let mut jumbo = packet(IpProtocol::HopByHop, &[]);
        jumbo.extend_from_slice(&[0; 16]);
        assert_eq!(
            Ipv6Packet::new_checked(&jumbo[..]).err(),
            Some(Error::BadTotalLen)
        );
        // Trailing padding is not payload.
        let mut padded = ok.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(
            Ipv6Packet::new_checked(&padded[..])
                .unwrap()
                .payload()
                .len(),
            20
        );
    }

    #[test]
    fn walks_extension_headers() {
        let mut payload = ext(IpProtocol::Ipv6Route, 8);
        payload.extend(ext(IpProtocol::Ah, 24));
        // AH: Payload Len 4 -> (4 + 2) * 4 = 24 bytes.
        let mut ah = std::vec![0u8; 24];
        ah[0] = IpProtocol::Ipv6Opts.into();
        ah[1] = 4;
        payload.extend(ah);
        payload.extend(ext(IpProtocol::Tcp, 16));
        payload.extend_from_slice(&[0xee; 20]);
        let bytes = packet(IpProtocol::HopByHop, &payload);
        assert_eq!(upper(&bytes), Ok((IpProtocol::Tcp, 8 + 24 + 24 + 16)));
        let repr = Ipv6Repr::parse(&Ipv6Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!((repr.next_header, repr.payload_len), (IpProtocol::Tcp, 20));

        assert_eq!(
            upper(&packet(IpProtocol::Ipv6NoNxt, &[1, 2, 3])),
            Ok((IpProtocol::Ipv6NoNxt, 0))
        );
        assert_eq!(
            upper(&packet(IpProtocol::Esp, &[0; 8])),
            Ok((IpProtocol::Esp, 0))
        );
        let opts_then_none = ext(IpProtocol::Ipv6NoNxt, 8);
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Opts, &opts_then_none)),
            Ok((IpProtocol::Ipv6NoNxt, 8))
        );
    }

    #[test]
    fn fragments_are_refused_but_atomic_fragments_pass() {
        for (word, expect) in [
            (0x0000u16, Ok((IpProtocol::Tcp, 8))),
            (0x0001, Err(Error::Fragment)), // first fragment: M set
            (0x00b8, Err(Error::Fragment)), // offset 23, last fragment
            (0x0006, Ok((IpProtocol::Tcp, 8))), // reserved bits only
        ] {
            let mut frag = std::vec![6u8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            frag[2..4].copy_from_slice(&word.to_be_bytes());
            frag.extend_from_slice(&[0; 20]);
            assert_eq!(
                upper(&packet(IpProtocol::Ipv6Frag, &frag)),
                expect,
                "{word:#06x}"
            );
        }
    }

    #[test]
    fn bad_chains() {
        // Eight Destination Options headers are walked; a ninth is refused.
        let mut payload = Vec::new();
        for _ in 0..MAX_EXT_HEADERS {
            payload.extend(ext(IpProtocol::Ipv6Opts, 8));
        }
        let eight = {
            let mut p = payload.clone();
            p[8 * (MAX_EXT_HEADERS - 1)] = IpProtocol::Tcp.into();
            p
        };
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Opts, &eight)),
            Ok((IpProtocol::Tcp, 8 * MAX_EXT_HEADERS))
        );
        payload.extend(ext(IpProtocol::Tcp, 8));
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Opts, &payload)),
            Err(Error::ExtHeaderChain)
        );
        // Runs past the payload.
        assert_eq!(
            upper(&packet(
                IpProtocol::Ipv6Route,
                &ext(IpProtocol::Tcp, 16)[..8]
            )),
            Err(Error::ExtHeaderChain)
        );
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Route, &[])),
            Err(Error::ExtHeaderChain)
        );
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Frag, &[6, 0, 0])),
            Err(Error::ExtHeaderChain)
        );
        // Hop-by-Hop after another header (well-formed otherwise).
        let mut late_hbh = ext(IpProtocol::HopByHop, 8);
        late_hbh.extend(ext(IpProtocol::Tcp, 8));
        late_hbh.extend_from_slice(&[0; 20]);
        assert_eq!(
            upper(&packet(IpProtocol::Ipv6Opts, &late_hbh)),
            Err(Error::ExtHeaderChain)
        );
    }

    #[test]
    fn emit_refuses_bad_lengths() {
        let mut buf = [0u8; 40];
        let repr = Ipv6Repr {
            src: Ipv6Addr::LOCALHOST,
            dst: Ipv6Addr::LOCALHOST,
            next_header: IpProtocol::Tcp,
            payload_len: 1,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        assert_eq!(
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])),
            Err(Error::BufferTooSmall)
        );
        let huge = Ipv6Repr {
            payload_len: 65_536,
            ..repr
        };
        assert_eq!(
            huge.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])),
            Err(Error::BadTotalLen)
        );
    }

    fn arb_repr() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0usize..100,
            any::<u8>(),
            any::<u8>(),
            0u32..=0xfffff,
        )
            .prop_filter("extension headers are not emitted", |t| {
                !matches!(
                    IpProtocol::from(t.2),
                    IpProtocol::HopByHop
                        | IpProtocol::Ipv6Route
                        | IpProtocol::Ipv6Frag
                        | IpProtocol::Ipv6Opts
                        | IpProtocol::Ah
                )
            })
            .prop_map(
                |(s, d, next, payload_len, hop_limit, traffic_class, flow_label)| Ipv6Repr {
                    src: s.into(),
                    dst: d.into(),
                    next_header: next.into(),
                    payload_len,
                    hop_limit,
                    traffic_class,
                    flow_label,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]))?;
            let p = Ipv6Packet::new_checked(&buf[..])?;
            prop_assert_eq!(Ipv6Repr::parse(&p)?, repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..160), chain in any::<bool>()) {
            if chain && bytes.len() >= 40 {
                // Make it look like IPv6 with an extension header so the walk gets exercised.
                bytes[0] = 0x60;
                let len = (bytes.len() - 40) as u16;
                bytes[4..6].copy_from_slice(&len.to_be_bytes());
                bytes[6] = [0u8, 43, 44, 51, 60][usize::from(bytes[7]) % 5];
            }
            let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&bytes[..]));
            if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len());
                let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
                if let Ok((_, offset)) = p.upper_layer() {
                    prop_assert!(offset <= p.payload().len());
                }
                prop_assert_eq!(p.into_payload().len(), usize::from(p.payload_len()));
            }
        }
    }
}
