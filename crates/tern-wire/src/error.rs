//! Why a packet could not be parsed or emitted.
//!
//! One small `Copy` enum for every layer: the datapath drops a packet and bumps
//! `counters[err.index()]`, so each variant names a cause an operator can act on. The split
//! follows Linux's MIB counters where one exists (`InTruncatedPkts`, `InHdrErrors`,
//! `InCsumErrors`).

use core::fmt;

/// A parse or emit failure. The discriminant is a stable counter index (see [`Error::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Error {
    /// The buffer ends before a header, or before the length a header claims.
    Truncated,
    /// An 802.1Q tag inside another tag, or an 802.1ad (QinQ) service tag; one tag is supported.
    StackedVlan,
    /// ARP for something other than Ethernet/IPv4, or with inconsistent address lengths.
    BadArp,
    /// The IP version field does not match the EtherType, or address families are mixed.
    BadVersion,
    /// IPv4 IHL below 5 (a header shorter than 20 bytes).
    BadHeaderLen,
    /// IPv4 total length shorter than the header, or longer than 65535 on emit; IPv6
    /// jumbograms.
    BadTotalLen,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// An IPv4 or IPv6 fragment; fragments are never reassembled or parsed as TCP.
    Fragment,
    /// An IPv6 extension-header chain that is too long, misordered or runs past the packet.
    ExtHeaderChain,
    /// TCP data offset below 5, or pointing past the end of the segment.
    BadTcpOffset,
    /// The TCP checksum (over the pseudo-header) does not verify.
    BadTcpChecksum,
    /// A malformed TCP option: length 0 or 1, running past the header, or wrong for its kind.
    BadTcpOption,
    /// The output buffer is too small for the packet being emitted.
    BufferTooSmall,
}

/// `core::result::Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// Number of variants: the length of a counter array indexed by [`Error::index`].
    pub const COUNT: usize = 13;

    /// Every variant, in index order.
    pub const ALL: [Error; Error::COUNT] = [
        Error::Truncated,
        Error::StackedVlan,
        Error::BadArp,
        Error::BadVersion,
        Error::BadHeaderLen,
        Error::BadTotalLen,
        Error::BadIpChecksum,
        Error::Fragment,
        Error::ExtHeaderChain,
        Error::BadTcpOffset,
        Error::BadTcpChecksum,
        Error::BadTcpOption,
        Error::BufferTooSmall,
    ];

    /// Index in `0..COUNT`, stable across releases (new variants are appended).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name for metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::StackedVlan => "stacked_vlan",
            Error::BadArp => "bad_arp",
            Error::BadVersion => "bad_ip_version",
            Error::BadHeaderLen => "bad_ip_header_len",
            Error::BadTotalLen => "bad_ip_total_len",
            Error::BadIpChecksum => "bad_ip_checksum",
            Error::Fragment => "ip_fragment",
            Error::ExtHeaderChain => "bad_ipv6_ext_header_chain",
            Error::BadTcpOffset => "bad_tcp_offset",
            Error::BadTcpChecksum => "bad_tcp_checksum",
            Error::BadTcpOption => "bad_tcp_option",
            Error::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "packet is shorter than its headers say",
            Error::StackedVlan => "stacked VLAN tags are not supported",
            Error::BadArp => "ARP packet is not Ethernet/IPv4",
            Error::BadVersion => "IP version does not match the EtherType or address family",
            Error::BadHeaderLen => "IPv4 header length is below 20 bytes",
            Error::BadTotalLen => "IP length field is inconsistent with the header",
            Error::BadIpChecksum => "IPv4 header checksum is wrong",
            Error::Fragment => "IP fragments are not accepted",
            Error::ExtHeaderChain => "IPv6 extension header chain is malformed or too long",
            Error::BadTcpOffset => "TCP data offset is out of range",
            Error::BadTcpChecksum => "TCP checksum is wrong",
            Error::BadTcpOption => "TCP option list is malformed",
            Error::BufferTooSmall => "output buffer is too small for the packet",
        })
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn indices_are_dense_and_names_unique_snake_case() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
            let name = e.name();
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert!(Error::ALL[..i].iter().all(|o| o.name() != name), "{name}");
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(Error::BufferTooSmall.index(), Error::COUNT - 1);
    }
}
