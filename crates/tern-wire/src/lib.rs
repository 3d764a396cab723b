//! Wire formats for tern: zero-copy views over packet bytes and plain-data representations.
//!
//! Every format comes in two halves, as in smoltcp:
//!
//! * a **view** (`EthernetFrame<T>`, `Ipv4Packet<T>`, `TcpPacket<T>`, ...) wraps any
//!   `T: AsRef<[u8]>` and reads or writes fields in place. `new_checked` validates every length
//!   its accessors rely on, so after it no accessor can panic; `new_unchecked` skips that and is
//!   meant for buffers the caller sized itself (accessors may then panic on a short buffer).
//! * a **representation** (`EthernetRepr`, `Ipv4Repr`, `TcpRepr`, ...) is plain data that holds
//!   only what a valid header can say. `parse` re-validates the view (so it never panics, even on
//!   an unchecked view), `emit` writes a header and refuses a buffer that is too small.
//!
//! [`frame::parse_frame`] takes a whole Ethernet frame to representations in one call, and
//! [`frame::emit_tcp_frame`] builds one.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use tern_wire::{
//!     emit_tcp_frame, parse_frame, ChecksumMode, EtherType, EthernetAddress, EthernetRepr,
//!     IpProtocol, IpRepr, SeqNum, TcpFlags, TcpRepr,
//! };
//!
//! let eth = EthernetRepr {
//!     src: EthernetAddress([2, 0, 0, 0, 0, 1]),
//!     dst: EthernetAddress([2, 0, 0, 0, 0, 2]),
//!     vlan: None,
//!     ethertype: EtherType::Ipv4,
//! };
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let ip = IpRepr::new(src.into(), dst.into(), IpProtocol::Tcp, 0, 64)?;
//! let syn = TcpRepr {
//!     src_port: 40000,
//!     dst_port: 80,
//!     flags: TcpFlags::SYN,
//!     seq_number: SeqNum(1),
//!     window_len: 65535,
//!     max_seg_size: Some(1460),
//!     window_scale: Some(7),
//!     sack_permitted: true,
//!     ..TcpRepr::default()
//! };
//! let mut buf = [0u8; 128];
//! let len = emit_tcp_frame(&eth, &ip, &syn, &mut buf)?;
//! let frame = parse_frame(&buf[..len], ChecksumMode::Verify)?;
//! assert_eq!(frame.tcp(), Some(&syn));
//! # Ok::<(), tern_wire::Error>(())
//! ```
//!
//! Nothing here allocates, uses `unsafe` or panics on untrusted input; errors are the small
//! [`Error`] enum whose values double as drop-counter indices.
//!
//! Specifications implemented:
//!
//! * RFC 791 — Internet Protocol (IPv4 header)
//! * RFC 826 — Address Resolution Protocol (Ethernet/IPv4 only)
//! * RFC 8200 — IPv6 (fixed header and the extension-header chain)
//! * RFC 9293 — Transmission Control Protocol (header and option format, §3.1)
//! * RFC 7323 — TCP window scale and timestamps
//! * RFC 2018 — TCP selective acknowledgment options
//! * RFC 1071 — computing the Internet checksum
//! * RFC 1624 — incremental Internet checksum update
//! * RFC 6093 — the TCP urgent mechanism (the urgent pointer is carried, not interpreted)
//! * IEEE 802.1Q — one VLAN tag
//!
//! [`pcap`] reads and writes the classic libpcap capture format, for tests and the lab.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod frame;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod pcap;
pub mod tcp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use checksum::{Checksum, ChecksumMode};
pub use error::{Error, Result};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag};
pub use frame::{emit_tcp_frame, parse_frame, Frame, L3, L4};
pub use ip::{IpProtocol, IpRepr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use tcp::{
    SackBlock, SackBlocks, SeqNum, TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr,
    TcpTimestamp,
};

/// A field's byte range inside a header.
type Field = core::ops::Range<usize>;

/// Big-endian reads and writes of fixed-size fields.
///
/// Callers pass ranges that their view's `new_checked` has proven in bounds; the conversions
/// themselves cannot panic (a wrong-sized slice reads as zero).
mod be {
    pub(crate) fn u16(bytes: &[u8]) -> u16 {
        u16::from_be_bytes(bytes.try_into().unwrap_or_default())
    }

    pub(crate) fn u32(bytes: &[u8]) -> u32 {
        u32::from_be_bytes(bytes.try_into().unwrap_or_default())
    }

    pub(crate) fn set_u16(bytes: &mut [u8], value: u16) {
        bytes.copy_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn set_u32(bytes: &mut [u8], value: u32) {
        bytes.copy_from_slice(&value.to_be_bytes());
    }
}
