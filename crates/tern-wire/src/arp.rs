//! ARP, RFC 826 ("Packet format"), for Ethernet hardware addresses and IPv4 protocol addresses
//! only: every other combination is refused as `BadArp`, so the fixed 28-byte layout below is
//! the only one the accessors ever read.

use core::net::Ipv4Addr;

use crate::ethernet::EthernetAddress;
use crate::{be, Error, Result};

mod field {
    use crate::Field;

    pub(super) const HTYPE: Field = 0..2;
    pub(super) const PTYPE: Field = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Field = 6..8;
    pub(super) const SHA: Field = 8..14;
    pub(super) const SPA: Field = 14..18;
    pub(super) const THA: Field = 18..24;
    pub(super) const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// The ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Request (1).
    Request,
    /// Reply (2).
    Reply,
    /// Any other opcode. Use `From<u16>`, which never builds this for 1 or 2.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> Self {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter than 28 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates: 28 bytes, hardware type Ethernet with 6-byte addresses, protocol type IPv4
    /// with 4-byte addresses.
    pub fn check(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if self.hardware_type() != HTYPE_ETHERNET
            || self.protocol_type() != PTYPE_IPV4
            || self.hardware_len() != 6
            || self.protocol_len() != 4
        {
            return Err(Error::BadArp);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::HTYPE])
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::PTYPE])
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Opcode.
    pub fn operation(&self) -> ArpOperation {
        be::u16(&self.buffer.as_ref()[field::OPER]).into()
    }

    /// Sender hardware address.
    pub fn source_hw(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    pub fn source_ip(&self) -> Ipv4Addr {
        be::u32(&self.buffer.as_ref()[field::SPA]).into()
    }

    /// Target hardware address.
    pub fn target_hw(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        be::u32(&self.buffer.as_ref()[field::TPA]).into()
    }
}

fn mac(bytes: &[u8]) -> EthernetAddress {
    EthernetAddress(bytes.try_into().unwrap_or_default())
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::HTYPE], value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::PTYPE], value);
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the opcode.
    pub fn set_operation(&mut self, op: ArpOperation) {
        be::set_u16(&mut self.buffer.as_mut()[field::OPER], op.into());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hw(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_ip(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hw(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Opcode.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hw: EthernetAddress,
    /// Sender protocol address.
    pub source_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hw: EthernetAddress,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self> {
        packet.check()?;
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hw: packet.source_hw(),
            source_ip: packet.source_ip(),
            target_hw: packet.target_hw(),
            target_ip: packet.target_ip(),
        })
    }

    /// Length of the emitted packet.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet; `BufferTooSmall` below 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(PTYPE_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hw(self.source_hw);
        packet.set_source_ip(self.source_ip);
        packet.set_target_hw(self.target_hw);
        packet.set_target_ip(self.target_ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 2, // target
    ];

    #[test]
    fn getters() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!((p.hardware_type(), p.protocol_type()), (1, 0x0800));
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.source_hw(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.source_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.target_hw(), EthernetAddress([0; 6]));
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 0, 2, 2));
    }

    #[test]
    fn setters_build_a_reply() {
        let mut bytes = REQUEST;
        let mut p = ArpPacket::new_checked(&mut bytes[..]).unwrap();
        p.set_operation(ArpOperation::Reply);
        p.set_target_hw(p.source_hw());
        p.set_target_ip(p.source_ip());
        p.set_source_hw(EthernetAddress([2, 0, 0, 0, 0, 9]));
        p.set_source_ip(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(bytes[6..8], [0, 2]);
        assert_eq!(bytes[8..14], [2, 0, 0, 0, 0, 9]);
        assert_eq!(bytes[14..18], [192, 0, 2, 2]);
        assert_eq!(bytes[18..24], [2, 0, 0, 0, 0, 1]);
        assert_eq!(bytes[24..28], [192, 0, 2, 1]);
    }

    #[test]
    fn refuses_other_address_types() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).err(),
            Some(Error::Truncated)
        );
        for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bytes = REQUEST;
            bytes[at] = value;
            assert_eq!(
                ArpPacket::new_checked(&bytes[..]).err(),
                Some(Error::BadArp),
                "byte {at}"
            );
        }
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&[0u8; 4][..])),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn emit_matches_bytes() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let mut buf = [0xffu8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(buf, REQUEST);
        assert_eq!(
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..27])),
            Err(Error::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(), tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let repr = ArpRepr {
                operation: op.into(),
                source_hw: EthernetAddress(sha),
                source_ip: spa.into(),
                target_hw: EthernetAddress(tha),
                target_ip: tpa.into(),
            };
            let mut buf = [0u8; PACKET_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]))?;
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..])?)?, repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..]));
        }
    }
}
