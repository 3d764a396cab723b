//! Ethernet II framing (IEEE 802.3 clause 3.2.6 / the DIX "Blue Book" layout) with at most one
//! IEEE 802.1Q tag (§9.6: TPID 0x8100, then PCP, DEI and VID).
//!
//! A tag inside a tag, or an 802.1ad service tag (TPID 0x88a8, i.e. QinQ), is refused as
//! `StackedVlan` rather than passed up as an unknown EtherType, so such frames are counted
//! instead of silently ignored. The FCS is not part of the frames this crate sees.

use core::fmt;

use crate::{be, Error, Result};

mod field {
    use crate::Field;

    pub(super) const DST_ADDR: Field = 0..6;
    pub(super) const SRC_ADDR: Field = 6..12;
    /// The EtherType, or the TPID of a tag.
    pub(super) const ETHERTYPE: Field = 12..14;
    pub(super) const VLAN_TCI: Field = 14..16;
    pub(super) const VLAN_ETHERTYPE: Field = 16..18;
}

/// Header length without a tag.
pub const HEADER_LEN: usize = 14;
/// Header length with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

const fn is_tpid(value: u16) -> bool {
    value == TPID_8021Q || value == TPID_8021AD
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit (I/G, least significant bit of the first octet) is set; broadcast
    /// is multicast too.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally administered bit (U/L) is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    fn from_slice(bytes: &[u8]) -> Self {
        EthernetAddress(bytes.try_into().unwrap_or_default())
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(octets: [u8; 6]) -> Self {
        EthernetAddress(octets)
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The protocol carried in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4 (0x0800).
    Ipv4,
    /// ARP (0x0806).
    Arp,
    /// IPv6 (0x86dd).
    Ipv6,
    /// Any other value. Use `From<u16>`, which never builds this for a named value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Unknown(n) => write!(f, "0x{n:04x}"),
        }
    }
}

/// The Tag Control Information of an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority Code Point (3 bits).
    pub pcp: u8,
    /// Drop Eligible Indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

impl VlanTag {
    /// Decodes a TCI.
    pub const fn from_tci(tci: u16) -> Self {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// Encodes the TCI; out-of-range `pcp` and `vid` bits are masked off.
    pub const fn to_tci(&self) -> u16 {
        ((self.pcp as u16 & 0x07) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter than the header.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check()?;
        Ok(frame)
    }

    /// Validates the header: 14 bytes, or 18 with an 802.1Q tag, and no second tag.
    pub fn check(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let outer = data
            .get(field::ETHERTYPE)
            .map(be::u16)
            .ok_or(Error::Truncated)?;
        match outer {
            TPID_8021Q => {
                let inner = data
                    .get(field::VLAN_ETHERTYPE)
                    .map(be::u16)
                    .ok_or(Error::Truncated)?;
                if is_tpid(inner) {
                    return Err(Error::StackedVlan);
                }
                Ok(())
            }
            TPID_8021AD => Err(Error::StackedVlan),
            _ => Ok(()),
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_slice(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_slice(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    fn is_tagged(&self) -> bool {
        be::u16(&self.buffer.as_ref()[field::ETHERTYPE]) == TPID_8021Q
    }

    /// The 802.1Q tag, if there is one.
    pub fn vlan(&self) -> Option<VlanTag> {
        self.is_tagged()
            .then(|| VlanTag::from_tci(be::u16(&self.buffer.as_ref()[field::VLAN_TCI])))
    }

    /// The EtherType of the payload (after the tag, if any).
    pub fn ethertype(&self) -> EtherType {
        let at = if self.is_tagged() {
            field::VLAN_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        be::u16(&self.buffer.as_ref()[at]).into()
    }

    /// Header length: 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        header_len(self.buffer.as_ref())
    }

    /// Everything after the header (an IP payload may be followed by padding).
    pub fn payload(&self) -> &[u8] {
        payload(self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// [`payload`](Self::payload) with the buffer's lifetime rather than the view's.
    pub fn into_payload(self) -> &'a [u8] {
        payload(self.buffer.as_ref())
    }
}

fn header_len(data: &[u8]) -> usize {
    match data.get(field::ETHERTYPE).map(be::u16) {
        Some(TPID_8021Q) => VLAN_HEADER_LEN,
        _ => HEADER_LEN,
    }
}

fn payload(data: &[u8]) -> &[u8] {
    data.get(header_len(data)..).unwrap_or_default()
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.0);
    }

    /// Swaps source and destination in place: the first step of answering a frame.
    pub fn swap_addrs(&mut self) {
        let (dst, src) = (self.dst_addr(), self.src_addr());
        self.set_dst_addr(src);
        self.set_src_addr(dst);
    }

    /// Rewrites the tag's TCI; does nothing on an untagged frame (adding a tag moves the
    /// payload, which is [`EthernetRepr::emit`]'s job).
    pub fn set_vlan(&mut self, tag: VlanTag) {
        if self.is_tagged() {
            be::set_u16(&mut self.buffer.as_mut()[field::VLAN_TCI], tag.to_tci());
        }
    }

    /// Sets the payload's EtherType (after the tag, if any).
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let at = if self.is_tagged() {
            field::VLAN_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        be::set_u16(&mut self.buffer.as_mut()[at], ethertype.into());
    }

    /// Everything after the header, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.buffer.as_mut().get_mut(start..).unwrap_or_default()
    }
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src: EthernetAddress,
    /// Destination address.
    pub dst: EthernetAddress,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
    /// EtherType of the payload.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads a header.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self> {
        frame.check()?;
        Ok(EthernetRepr {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// Length of the emitted header: 14, or 18 with a tag.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header. Errors: `BufferTooSmall`; `StackedVlan` if the EtherType is itself a
    /// tag TPID, since parsing the result would then disagree with `self`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) -> Result<()> {
        if is_tpid(self.ethertype.into()) {
            return Err(Error::StackedVlan);
        }
        let data = frame.buffer.as_mut();
        if data.len() < self.header_len() {
            return Err(Error::BufferTooSmall);
        }
        data[field::DST_ADDR].copy_from_slice(&self.dst.0);
        data[field::SRC_ADDR].copy_from_slice(&self.src.0);
        match self.vlan {
            Some(tag) => {
                be::set_u16(&mut data[field::ETHERTYPE], TPID_8021Q);
                be::set_u16(&mut data[field::VLAN_TCI], tag.to_tci());
                be::set_u16(&mut data[field::VLAN_ETHERTYPE], self.ethertype.into());
            }
            None => be::set_u16(&mut data[field::ETHERTYPE], self.ethertype.into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0xde, 0xad,
    ];

    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x81, 0x00, 0xb0, 0x64, // PCP 5, DEI 1, VID 100
        0x08, 0x06, // ARP
        0xbe, 0xef,
    ];

    #[test]
    fn address_properties() {
        let a = EthernetAddress([0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x0e]);
        assert_eq!(a.to_string(), "02:aa:bb:cc:dd:0e");
        assert!(a.is_unicast() && a.is_local() && !a.is_multicast() && !a.is_broadcast());
        assert!(
            EthernetAddress::BROADCAST.is_broadcast() && EthernetAddress::BROADCAST.is_multicast()
        );
        assert!(EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert_eq!(
            EthernetAddress::from([1, 2, 3, 4, 5, 6]).octets(),
            [1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn ethertype_conversions() {
        for n in [0x0800u16, 0x0806, 0x86dd, 0x1234] {
            assert_eq!(u16::from(EtherType::from(n)), n);
        }
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(EtherType::Unknown(0x88cc).to_string(), "0x88cc");
    }

    #[test]
    fn untagged_getters() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.vlan(), None);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xde, 0xad]);
    }

    #[test]
    fn tagged_getters() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(
            f.vlan(),
            Some(VlanTag {
                pcp: 5,
                dei: true,
                vid: 100
            })
        );
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xbe, 0xef]);
    }

    #[test]
    fn setters_and_swap() {
        let mut bytes = TAGGED;
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        f.swap_addrs();
        assert_eq!(f.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert!(f.src_addr().is_broadcast());
        f.set_vlan(VlanTag {
            pcp: 0,
            dei: false,
            vid: 4095,
        });
        f.set_ethertype(EtherType::Ipv6);
        f.payload_mut().copy_from_slice(&[1, 2]);
        assert_eq!(
            f.vlan(),
            Some(VlanTag {
                pcp: 0,
                dei: false,
                vid: 4095
            })
        );
        assert_eq!(f.ethertype(), EtherType::Ipv6);
        assert_eq!(&bytes[12..], &[0x81, 0x00, 0x0f, 0xff, 0x86, 0xdd, 1, 2]);

        let mut bytes = UNTAGGED;
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        f.set_vlan(VlanTag::default());
        f.set_dst_addr(EthernetAddress([9; 6]));
        f.set_src_addr(EthernetAddress([8; 6]));
        f.set_ethertype(EtherType::Unknown(0x88cc));
        assert_eq!(f.vlan(), None, "set_vlan does not insert a tag");
        assert_eq!(
            &bytes[..14],
            &[9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 0x88, 0xcc]
        );
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).err(),
            Some(Error::Truncated)
        );
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).is_ok());
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).err(),
            Some(Error::Truncated)
        );
        let mut stacked = TAGGED;
        stacked[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&stacked[..]).err(),
            Some(Error::StackedVlan)
        );
        let mut qinq = TAGGED;
        qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(
            EthernetFrame::new_checked(&qinq[..]).err(),
            Some(Error::StackedVlan)
        );
        assert_eq!(
            EthernetRepr::parse(&EthernetFrame::new_unchecked(&[0u8; 3][..])),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn emit_refuses_small_buffer_and_tpid_ethertype() {
        let repr = EthernetRepr {
            src: EthernetAddress([2; 6]),
            dst: EthernetAddress([4; 6]),
            vlan: Some(VlanTag::default()),
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; 18];
        assert_eq!(
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..17])),
            Err(Error::BufferTooSmall)
        );
        let bad = EthernetRepr {
            vlan: None,
            ethertype: EtherType::Unknown(0x8100),
            ..repr
        };
        assert_eq!(
            bad.emit(&mut EthernetFrame::new_unchecked(&mut buf[..])),
            Err(Error::StackedVlan)
        );
    }

    fn arb_repr() -> impl Strategy<Value = EthernetRepr> {
        let tag = (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTag {
            pcp,
            dei,
            vid,
        });
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            proptest::option::of(tag),
            any::<u16>(),
        )
            .prop_filter("tag TPIDs are not payload EtherTypes", |t| !is_tpid(t.3))
            .prop_map(|(src, dst, vlan, ethertype)| EthernetRepr {
                src: EthernetAddress(src),
                dst: EthernetAddress(dst),
                vlan,
                ethertype: ethertype.into(),
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut buf = std::vec![0u8; repr.header_len() + payload.len()];
            let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
            repr.emit(&mut f)?;
            f.payload_mut().copy_from_slice(&payload);
            let f = EthernetFrame::new_checked(&buf[..])?;
            prop_assert_eq!(EthernetRepr::parse(&f)?, repr);
            prop_assert_eq!(f.header_len(), repr.header_len());
            prop_assert_eq!(f.payload(), &payload[..]);
        }

        #[test]
        fn tci_round_trip(tci in any::<u16>()) {
            prop_assert_eq!(VlanTag::from_tci(tci).to_tci(), tci);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(&bytes[..]));
            if let Ok(f) = EthernetFrame::new_checked(&bytes[..]) {
                let _ = (f.dst_addr(), f.src_addr(), f.vlan(), f.ethertype());
                prop_assert_eq!(f.payload().len() + f.header_len(), bytes.len());
                let _ = f.into_payload();
            }
        }
    }
}
