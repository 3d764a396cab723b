//! The Internet checksum: RFC 1071 (computation), RFC 1624 (incremental update), and the
//! TCP pseudo-headers of RFC 9293 §3.1 and RFC 8200 §8.1.
//!
//! The sum is taken 64 bits at a time: RFC 1071 §2(B),(C) show the ones-complement sum is
//! independent of byte order and may be accumulated in wider words, then folded to 16 bits,
//! because 2^16 - 1 divides 2^64 - 1.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ip::IpProtocol;

/// Whether `parse` verifies checksums and `emit` fills them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// `parse` rejects a wrong checksum; `emit` computes and writes it.
    #[default]
    Verify,
    /// `parse` does not look at the checksum; `emit` writes zero (for hardware offload or tests).
    Ignore,
}

/// A running ones-complement sum.
///
/// Feed it byte slices and words, then [`finish`](Self::finish). Bytes are taken as big-endian
/// 16-bit words, so every slice except the last one must have an even length (a trailing odd
/// byte is padded with zero, as at the end of a datagram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct Checksum(u64);

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum(0)
    }

    // Ones-complement addition in 64 bits: the carry out of the top wraps into the bottom.
    const fn add64(self, value: u64) -> Self {
        let (sum, carry) = self.0.overflowing_add(value);
        // Cannot overflow: when `carry` is set, `sum` is at most 2^64 - 2.
        Checksum(sum + carry as u64)
    }

    /// Adds `data` as big-endian 16-bit words (zero-padded on the right if its length is odd).
    ///
    /// RFC 1071 2(B): the ones-complement sum does not depend on byte order, so the bytes are
    /// summed as native-endian 32-bit words into eight 64-bit lanes — no carries to handle (a
    /// lane cannot overflow below 2^32 words) and no dependency between lanes, which lets the
    /// compiler vectorize the loop — and the folded result is byte-swapped to big-endian once.
    pub fn add_bytes(self, data: &[u8]) -> Self {
        let mut native = Checksum::new();
        let mut chunks = data.chunks_exact(32);
        if data.len() >= 64 {
            let mut lanes = [0u64; 8];
            for chunk in &mut chunks {
                for (i, lane) in lanes.iter_mut().enumerate() {
                    let word: [u8; 4] = chunk[4 * i..4 * i + 4].try_into().unwrap_or_default();
                    *lane += u64::from(u32::from_ne_bytes(word));
                }
            }
            native = lanes.iter().fold(native, |acc, &lane| acc.add64(lane));
        }
        // What is left (all of a short input): 8 bytes at a time, the last ones zero-padded,
        // which keeps every byte at its position.
        let rest = if data.len() >= 64 {
            chunks.remainder()
        } else {
            data
        };
        let mut words = rest.chunks_exact(8);
        for word in &mut words {
            native = native.add64(u64::from_ne_bytes(word.try_into().unwrap_or_default()));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            native = native.add64(u64::from_ne_bytes(last));
        }
        // The folded native-endian sum is the big-endian sum byte-swapped on a little-endian
        // machine and itself on a big-endian one: exactly what `from_be` undoes.
        self.add64(u64::from(u16::from_be(native.sum())))
    }

    /// Adds one 16-bit word.
    pub const fn add_u16(self, value: u16) -> Self {
        self.add64(value as u64)
    }

    /// Adds a 32-bit value as two 16-bit words.
    pub const fn add_u32(self, value: u32) -> Self {
        self.add64(value as u64)
    }

    /// The folded 16-bit ones-complement sum (not complemented).
    pub const fn sum(self) -> u16 {
        let mut x = self.0;
        while x > 0xffff {
            x = (x & 0xffff) + (x >> 16);
        }
        x as u16
    }

    /// The checksum field value: the complement of the folded sum. Summing a header that
    /// already holds a correct checksum finishes to 0.
    pub const fn finish(self) -> u16 {
        !self.sum()
    }
}

/// The Internet checksum of `data` (RFC 1071): the value for a zeroed checksum field, or 0 when
/// `data` includes a correct checksum.
pub fn data(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// The IPv4 pseudo-header (RFC 9293 §3.1): addresses, zero, protocol, upper-layer length.
pub fn pseudo_header_v4(
    src: &Ipv4Addr,
    dst: &Ipv4Addr,
    protocol: IpProtocol,
    len: u16,
) -> Checksum {
    Checksum::new()
        .add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_u16(u8::from(protocol).into())
        .add_u16(len)
}

/// The IPv6 pseudo-header (RFC 8200 §8.1): addresses, 32-bit upper-layer length, 24 zero bits,
/// next header.
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    upper_len: u32,
) -> Checksum {
    Checksum::new()
        .add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_u32(upper_len)
        .add_u16(u8::from(next_header).into())
}

/// The pseudo-header for either family.
///
/// The two layouts differ only in address size (a 16-bit length summed as a 32-bit one adds the
/// same words), so `len` is summed as 32 bits for both. Mixed families have no meaning; they
/// get the IPv6 layout with the IPv4 address mapped (`::ffff:a.b.c.d`) so the function stays
/// total.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, len: u32) -> Checksum {
    let sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Checksum::new()
            .add_bytes(&s.octets())
            .add_bytes(&d.octets()),
        _ => Checksum::new()
            .add_bytes(&to_v6(src).octets())
            .add_bytes(&to_v6(dst).octets()),
    };
    sum.add_u32(len).add_u16(u8::from(protocol).into())
}

fn to_v6(addr: &IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => *a,
    }
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word changes from `old` to `new`,
/// `HC' = ~(~HC + ~m + m')`.
pub const fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    Checksum::new()
        .add_u16(!checksum)
        .add_u16(!old)
        .add_u16(new)
        .finish()
}

/// [`update_u16`] for a 32-bit field (two adjacent, 16-bit aligned words), such as a sequence
/// number or an IPv4 address.
pub const fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let c = update_u16(checksum, (old >> 16) as u16, (new >> 16) as u16);
    update_u16(c, old as u16, new as u16)
}

/// [`update_u16`] for a run of bytes that starts on a 16-bit boundary of the checksummed data;
/// `old` and `new` are the run's contents before and after the change.
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    let old = Checksum::new().add_bytes(old).sum();
    let new = Checksum::new().add_bytes(new).sum();
    update_u16(checksum, old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// The textbook RFC 1071 loop: 16-bit big-endian words, end-around carry, complement.
    fn naive(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add_bytes(&bytes).sum(), 0xddf2);
        assert_eq!(data(&bytes), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic worked example: the checksum of this header is 0xb861.
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(data(&header), 0xb861);
        header[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(data(&header), 0);
    }

    #[test]
    fn edge_lengths_and_carries() {
        assert_eq!(data(&[]), 0xffff);
        assert_eq!(data(&[0xab]), !0xab00);
        let ones = [0xffu8; 4096];
        for len in 0..64 {
            assert_eq!(data(&ones[..len]), naive(&ones[..len]), "len {len}");
        }
        assert_eq!(data(&ones), naive(&ones));
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m changes 0x5555 -> 0x3285, HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn pseudo_headers_agree_across_apis() {
        let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            pseudo_header_v4(&s4, &d4, IpProtocol::Tcp, 40),
            pseudo_header(&s4.into(), &d4.into(), IpProtocol::Tcp, 40)
        );
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s4.octets());
        bytes.extend_from_slice(&d4.octets());
        bytes.extend_from_slice(&[0, 6, 0, 40]);
        assert_eq!(
            pseudo_header_v4(&s4, &d4, IpProtocol::Tcp, 40).finish(),
            naive(&bytes)
        );

        let (s6, d6) = ("2001:db8::1".parse().unwrap(), "fe80::2".parse().unwrap());
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&Ipv6Addr::octets(&s6));
        bytes.extend_from_slice(&Ipv6Addr::octets(&d6));
        bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 6]);
        let v6 = pseudo_header_v6(&s6, &d6, IpProtocol::Tcp, 0x1_0000);
        assert_eq!(v6.finish(), naive(&bytes));
        assert_eq!(
            v6,
            pseudo_header(&s6.into(), &d6.into(), IpProtocol::Tcp, 0x1_0000)
        );
        // Mixed families do not panic and use the mapped address.
        assert_eq!(
            pseudo_header(&s4.into(), &d6.into(), IpProtocol::Tcp, 1),
            pseudo_header_v6(&s4.to_ipv6_mapped(), &d6, IpProtocol::Tcp, 1)
        );
    }

    proptest! {
        #[test]
        fn matches_naive(buf in proptest::collection::vec(any::<u8>(), 0..2000), offset in 0usize..16) {
            let data_ = &buf[offset.min(buf.len())..];
            prop_assert_eq!(data(data_), naive(data_));
        }

        #[test]
        fn split_sums_combine(buf in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..300) {
            let split = (split * 2).min(buf.len() & !1);
            let joined = Checksum::new().add_bytes(&buf[..split]).add_bytes(&buf[split..]);
            prop_assert_eq!(joined.finish(), data(&buf));
        }

        #[test]
        fn incremental_equals_recompute(
            mut buf in proptest::collection::vec(any::<u8>(), 2..400),
            at in any::<proptest::sample::Index>(),
            new_word in any::<u16>(),
            new_long in any::<u32>(),
        ) {
            let len = buf.len() & !1;
            buf.truncate(len);
            // Keep one fixed nonzero word so the data never becomes all zeros: that is the one
            // case where RFC 1624 gives 0x0000 and a recompute gives 0xffff (both verify).
            buf[0] = 0x45;
            let hc = data(&buf);
            let i = 2 + at.index(len / 2) * 2;
            if i + 2 <= len {
                let old = u16::from_be_bytes([buf[i], buf[i + 1]]);
                buf[i..i + 2].copy_from_slice(&new_word.to_be_bytes());
                prop_assert_eq!(update_u16(hc, old, new_word), data(&buf));
            }
            let hc = data(&buf);
            if i + 4 <= len {
                let old_bytes: [u8; 4] = buf[i..i + 4].try_into().unwrap();
                buf[i..i + 4].copy_from_slice(&new_long.to_be_bytes());
                let full = data(&buf);
                prop_assert_eq!(update_u32(hc, u32::from_be_bytes(old_bytes), new_long), full);
                prop_assert_eq!(update_bytes(hc, &old_bytes, &new_long.to_be_bytes()), full);
            }
        }
    }

    #[test]
    fn incremental_all_zero_result_still_verifies() {
        let mut buf = [0x12u8, 0x34, 0, 0];
        let hc = data(&buf);
        let updated = update_u16(hc, 0x1234, 0);
        buf = [0; 4];
        // RFC 1624 §3: eqn. 3 yields 0x0000 here where a recompute yields 0xffff; both are the
        // same ones-complement value.
        assert_eq!((updated, data(&buf)), (0x0000, 0xffff));
    }
}
