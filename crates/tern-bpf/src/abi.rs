//! The Rust half of `bpf/include/tern_abi.h`: map keys, values and counter indices.
//!
//! Each type mirrors its C definition field for field with `#[repr(C)]`; the sizes and offsets
//! asserted at the bottom are the same numbers the header's `_Static_assert`s check, so a change
//! on one side alone fails to compile on the other. The loader also compares the map geometry the
//! kernel reports (key size, value size, entry count) with these types when it loads the object.

use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `TERN_FAMILY_IPV4`.
pub const FAMILY_IPV4: u8 = 4;
/// `TERN_FAMILY_IPV6`.
pub const FAMILY_IPV6: u8 = 6;
/// `TERN_LISTENER_F_DROP_NO_XSK`.
pub const LISTENER_F_DROP_NO_XSK: u32 = 1 << 0;
/// `TERN_MAX_LISTENERS`: capacity of the listener map.
pub const MAX_LISTENERS: u32 = 1024;
/// `TERN_MAX_QUEUES`: slots in the XSKMAP, so the highest receive queue tern can serve is this
/// minus one.
pub const MAX_QUEUES: u32 = 256;

/// `struct tern_listener_key`: a destination the daemon terminates.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    /// IPv6 address, or IPv4 mapped as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    /// Port in network byte order.
    pub port: u16,
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// Zero.
    pub pad: u8,
}

impl ListenerKey {
    /// The key for `addr`; an unspecified address (`0.0.0.0`, `::`) is its family's wildcard.
    pub fn new(addr: SocketAddr) -> ListenerKey {
        let (addr_bytes, family) = match addr.ip() {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), FAMILY_IPV4),
            IpAddr::V6(v6) => (v6.octets(), FAMILY_IPV6),
        };
        ListenerKey {
            addr: addr_bytes,
            port: addr.port().to_be(),
            family,
            pad: 0,
        }
    }

    /// The socket address this key stands for; `None` for a family the ABI does not define.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let port = u16::from_be(self.port);
        let v6 = Ipv6Addr::from(self.addr);
        match self.family {
            FAMILY_IPV4 => {
                let v4: Ipv4Addr = v6.to_ipv4_mapped()?;
                Some(SocketAddr::new(v4.into(), port))
            }
            FAMILY_IPV6 => Some(SocketAddr::new(v6.into(), port)),
            _ => None,
        }
    }

    /// The key's bytes as the map stores them.
    pub fn to_bytes(self) -> [u8; size_of::<ListenerKey>()] {
        let mut bytes = [0u8; size_of::<ListenerKey>()];
        bytes[..16].copy_from_slice(&self.addr);
        // `port` already holds network byte order; write its in-memory bytes unchanged.
        bytes[16..18].copy_from_slice(&self.port.to_ne_bytes());
        bytes[18] = self.family;
        bytes[19] = self.pad;
        bytes
    }

    /// Reads a key from map bytes; `None` when the length is not the key's size.
    pub fn from_bytes(bytes: &[u8]) -> Option<ListenerKey> {
        let bytes: &[u8; size_of::<ListenerKey>()] = bytes.try_into().ok()?;
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&bytes[..16]);
        Some(ListenerKey {
            addr,
            port: u16::from_ne_bytes([bytes[16], bytes[17]]),
            family: bytes[18],
            pad: bytes[19],
        })
    }
}

/// `struct tern_listener_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerValue {
    /// `TERN_LISTENER_F_*` bits.
    pub flags: u32,
}

impl ListenerValue {
    /// The value's bytes as the map stores them.
    pub fn to_bytes(self) -> [u8; size_of::<ListenerValue>()] {
        self.flags.to_ne_bytes()
    }

    /// Reads a value from map bytes; `None` when the length is not the value's size.
    pub fn from_bytes(bytes: &[u8]) -> Option<ListenerValue> {
        Some(ListenerValue {
            flags: u32::from_ne_bytes(bytes.try_into().ok()?),
        })
    }
}

/// `enum tern_counter`: the index of each per-CPU counter. Each packet increments exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Counter {
    /// Not for a listener: passed to the kernel.
    Passed = 0,
    /// For a listener: redirected into the AF_XDP socket of its receive queue.
    Redirected = 1,
    /// For a listener, but no socket in the queue's XSKMAP slot: passed to the kernel.
    NoXskPassed = 2,
    /// For a listener flagged drop-when-no-socket, and no socket in the slot: dropped.
    NoXskDropped = 3,
    /// An IPv4 fragment carrying TCP: passed to the kernel.
    FragmentPassed = 4,
    /// IPv6 with an extension header before TCP: passed to the kernel.
    Ipv6ExtPassed = 5,
    /// For a listener, dropped: fewer than 20 bytes of TCP header.
    DropTcpTruncated = 6,
    /// For a listener, dropped: TCP data offset below 5 or past the segment.
    DropTcpDataOffset = 7,
    /// For a listener, dropped: IPv4 IHL below 5.
    DropIpHeader = 8,
    /// For a listener, dropped: IP length inconsistent with the frame.
    DropIpLength = 9,
}

impl Counter {
    /// `TERN_CTR_COUNT`.
    pub const COUNT: usize = 10;

    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Passed,
        Counter::Redirected,
        Counter::NoXskPassed,
        Counter::NoXskDropped,
        Counter::FragmentPassed,
        Counter::Ipv6ExtPassed,
        Counter::DropTcpTruncated,
        Counter::DropTcpDataOffset,
        Counter::DropIpHeader,
        Counter::DropIpLength,
    ];

    /// The counter's index in the per-CPU array.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The name metrics use, in the CamelCase of Linux's `nstat` (no kernel counter covers these).
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Passed => "XdpPassed",
            Counter::Redirected => "XdpRedirected",
            Counter::NoXskPassed => "XdpNoXskPassed",
            Counter::NoXskDropped => "XdpNoXskDropped",
            Counter::FragmentPassed => "XdpFragmentPassed",
            Counter::Ipv6ExtPassed => "XdpIpv6ExtPassed",
            Counter::DropTcpTruncated => "XdpDropTcpTruncated",
            Counter::DropTcpDataOffset => "XdpDropTcpDataOffset",
            Counter::DropIpHeader => "XdpDropIpHeader",
            Counter::DropIpLength => "XdpDropIpLength",
        }
    }
}

// The same numbers as the _Static_asserts in tern_abi.h.
const _: () = assert!(size_of::<ListenerKey>() == 20);
const _: () = assert!(offset_of!(ListenerKey, port) == 16);
const _: () = assert!(offset_of!(ListenerKey, family) == 18);
const _: () = assert!(offset_of!(ListenerKey, pad) == 19);
const _: () = assert!(size_of::<ListenerValue>() == 4);
const _: () = assert!(Counter::COUNT == 10);
const _: () = {
    // ALL lists each counter at its own index.
    let mut i = 0;
    while i < Counter::COUNT {
        assert!(Counter::ALL[i] as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_keys_are_mapped_addresses_with_the_ipv4_family() {
        let key = ListenerKey::new("198.18.0.1:80".parse().unwrap());
        assert_eq!(
            key.addr,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1]
        );
        assert_eq!(key.family, FAMILY_IPV4);
        // Network byte order in memory: 0x00 0x50.
        assert_eq!(key.to_bytes()[16..18], [0, 80]);
        assert_eq!(key.to_bytes()[18..], [FAMILY_IPV4, 0]);
    }

    #[test]
    fn wildcards_differ_by_family() {
        let v4 = ListenerKey::new("0.0.0.0:80".parse().unwrap());
        let v6 = ListenerKey::new("[::]:80".parse().unwrap());
        assert_ne!(v4.to_bytes(), v6.to_bytes());
        assert_eq!(v6.addr, [0; 16]);
        assert_eq!(v4.addr[10..12], [0xff, 0xff]);
    }

    #[test]
    fn keys_round_trip_through_bytes() {
        for addr in [
            "198.18.0.1:443",
            "[2001:2::1]:8080",
            "0.0.0.0:1",
            "[::]:65535",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let key = ListenerKey::new(addr);
            let back = ListenerKey::from_bytes(&key.to_bytes()).unwrap();
            assert_eq!(back, key);
            assert_eq!(back.socket_addr(), Some(addr));
        }
        assert_eq!(ListenerKey::from_bytes(&[0; 19]), None);
    }

    #[test]
    fn counter_names_are_unique() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT);
    }
}
