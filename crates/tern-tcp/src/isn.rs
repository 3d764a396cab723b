//! Initial sequence numbers (RFC 6528) and per-connection timestamp offsets.
//!
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey) (RFC 6528 §3), where M is a
//! clock ticking every 4 µs and F is SipHash-2-4 keyed with a secret the caller supplies (the
//! engine has no randomness of its own). The timestamp offset hides the host's uptime behind a
//! per-address-pair value, as Linux's `secure_tcp_ts_off` does; it depends on the addresses only,
//! so a peer sees monotonic TSvals across connections, which RFC 6191 TIME-WAIT reuse relies on.

use crate::time::Instant;
use crate::FourTuple;
use core::hash::Hasher;
use core::net::IpAddr;
use siphasher::sip::SipHasher24;
use tern_wire::SeqNum;

/// Keyed generator of ISNs and timestamp offsets.
#[derive(Clone)]
pub struct IsnGenerator {
    isn_key: (u64, u64),
    ts_key: (u64, u64),
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { keys: <secret> }")
    }
}

impl IsnGenerator {
    /// A generator keyed with 32 secret random bytes.
    pub fn new(secret: [u8; 32]) -> IsnGenerator {
        let word =
            |i: usize| u64::from_le_bytes(secret[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        IsnGenerator {
            isn_key: (word(0), word(1)),
            ts_key: (word(2), word(3)),
        }
    }

    /// The ISN for a connection on `tuple` opened at `now`.
    pub fn isn(&self, now: Instant, tuple: &FourTuple) -> SeqNum {
        let mut h = SipHasher24::new_with_keys(self.isn_key.0, self.isn_key.1);
        write_addr(&mut h, &tuple.local_addr);
        write_addr(&mut h, &tuple.remote_addr);
        h.write_u16(tuple.local_port);
        h.write_u16(tuple.remote_port);
        // M: a 4 µs clock, wrapping every ~4.77 hours (RFC 6528 §3).
        let m = (now.as_micros() / 4) as u32;
        SeqNum(m.wrapping_add(h.finish() as u32))
    }

    /// The offset added to our timestamp clock for connections between these addresses.
    pub fn ts_offset(&self, local: &IpAddr, remote: &IpAddr) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.ts_key.0, self.ts_key.1);
        write_addr(&mut h, local);
        write_addr(&mut h, remote);
        h.finish() as u32
    }
}

fn write_addr(h: &mut SipHasher24, addr: &IpAddr) {
    match addr {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local_addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            remote_addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            local_port: 80,
            remote_port: port,
        }
    }

    #[test]
    fn isn_advances_with_the_clock_and_depends_on_tuple_and_key() {
        let g = IsnGenerator::new([7; 32]);
        let t = tuple(40_000);
        let a = g.isn(Instant::ZERO, &t);
        let b = g.isn(Instant::from_micros(4_000), &t);
        assert_eq!(b.0.wrapping_sub(a.0), 1_000, "M ticks every 4 µs");
        assert_ne!(g.isn(Instant::ZERO, &tuple(40_001)), a);
        assert_ne!(IsnGenerator::new([8; 32]).isn(Instant::ZERO, &t), a);
    }

    #[test]
    fn ts_offset_depends_on_addresses_only() {
        let g = IsnGenerator::new([1; 32]);
        let (l, r) = (tuple(1).local_addr, tuple(1).remote_addr);
        assert_eq!(g.ts_offset(&l, &r), g.ts_offset(&l, &r));
        assert_ne!(g.ts_offset(&l, &r), g.ts_offset(&r, &l));
    }

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", IsnGenerator::new([9; 32])).contains('9'));
    }
}
