//! Layer 2 for replies: tern sends no ARP. Every frame received teaches the worker the
//! Ethernet header to reach its sender (the sender's MAC, ours, the VLAN tag); a reply reuses
//! it with the MACs swapped. On a real NIC nearly all traffic comes through one router, so a
//! miss (a connection whose peer's frames were evicted) falls back to the most recent header.
//!
//! The cache is direct-mapped and bounded: a SYN flood from spoofed sources evicts entries
//! but never grows it.

use core::net::IpAddr;
use tern_wire::{EthernetFrame, EthernetRepr};

const SLOTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    ip: IpAddr,
    header: EthernetRepr,
}

/// Ethernet headers to reach recently seen peers.
#[derive(Debug)]
pub struct L2Cache {
    slots: Box<[Option<Entry>]>,
    last: Option<EthernetRepr>,
    /// Lookups that found no entry for the address and used the most recent header.
    pub misses: u64,
}

impl Default for L2Cache {
    fn default() -> Self {
        L2Cache {
            slots: vec![None; SLOTS].into_boxed_slice(),
            last: None,
            misses: 0,
        }
    }
}

fn slot(ip: &IpAddr) -> usize {
    let h = match ip {
        IpAddr::V4(a) => u64::from(u32::from(*a)),
        IpAddr::V6(a) => {
            let o = a.octets();
            u64::from_le_bytes(o[8..16].try_into().expect("8 bytes"))
                ^ u64::from_le_bytes(o[..8].try_into().expect("8 bytes"))
        }
    };
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize % SLOTS
}

impl L2Cache {
    /// Learns the header that reaches `src` from a frame it sent (`eth` as received).
    pub fn learn(&mut self, src: IpAddr, eth: &EthernetRepr) {
        let reply = EthernetRepr {
            src: eth.dst,
            dst: eth.src,
            vlan: eth.vlan,
            ethertype: eth.ethertype,
        };
        self.slots[slot(&src)] = Some(Entry {
            ip: src,
            header: reply,
        });
        self.last = Some(reply);
    }

    /// The header for a packet to `dst`, or `None` before any frame was seen.
    pub fn lookup(&mut self, dst: IpAddr, ethertype: tern_wire::EtherType) -> Option<EthernetRepr> {
        let header = match self.slots[slot(&dst)] {
            Some(e) if e.ip == dst => e.header,
            _ => {
                self.misses += 1;
                self.last?
            }
        };
        Some(EthernetRepr {
            ethertype,
            ..header
        })
    }
}

/// Writes `header` in front of the IP packet at `frame[14..14 + ip_len]` (where the engine
/// wrote it), moving the packet 4 bytes on when a VLAN tag needs the room; returns the frame
/// length.
pub fn frame_packet(frame: &mut [u8], header: &EthernetRepr, ip_len: usize) -> Option<usize> {
    let l2 = if header.vlan.is_some() { 18 } else { 14 };
    if l2 + ip_len > frame.len() {
        return None;
    }
    if l2 == 18 {
        frame.copy_within(14..14 + ip_len, 18);
    }
    header
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..l2]))
        .ok()?;
    Some(l2 + ip_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use tern_wire::{EtherType, EthernetAddress, VlanTag};

    const ME: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn from_peer(vlan: Option<VlanTag>) -> EthernetRepr {
        EthernetRepr {
            src: PEER,
            dst: ME,
            vlan,
            ethertype: EtherType::Ipv4,
        }
    }

    #[test]
    fn replies_swap_the_macs_and_keep_the_vlan() {
        let mut c = L2Cache::default();
        let ip = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        assert!(
            c.lookup(ip, EtherType::Ipv4).is_none(),
            "nothing learned yet"
        );
        let tag = VlanTag {
            pcp: 0,
            dei: false,
            vid: 42,
        };
        c.learn(ip, &from_peer(Some(tag)));
        let h = c.lookup(ip, EtherType::Ipv4).unwrap();
        assert_eq!((h.src, h.dst, h.vlan), (ME, PEER, Some(tag)));
        assert_eq!(c.misses, 1, "only the lookup before learning missed");
        // Another address falls back to the most recent header (the router's, on a real NIC).
        let other = IpAddr::V4(Ipv4Addr::new(198, 18, 200, 7));
        assert_eq!(c.lookup(other, EtherType::Ipv4).unwrap().dst, PEER);
        assert_eq!(c.misses, 2);
    }

    #[test]
    fn framing_moves_the_packet_for_a_vlan_tag() {
        let mut frame = [0u8; 64];
        frame[14..20].copy_from_slice(b"packet");
        let plain = from_peer(None);
        assert_eq!(frame_packet(&mut frame, &plain, 6), Some(20));
        assert_eq!(&frame[14..20], b"packet");
        let tagged = from_peer(Some(VlanTag {
            pcp: 0,
            dei: false,
            vid: 7,
        }));
        let mut frame = [0u8; 64];
        frame[14..20].copy_from_slice(b"packet");
        assert_eq!(frame_packet(&mut frame, &tagged, 6), Some(24));
        assert_eq!(&frame[18..24], b"packet");
        let parsed = EthernetFrame::new_checked(&frame[..24]).unwrap();
        assert_eq!(parsed.vlan().map(|v| v.vid), Some(7));
        assert_eq!(
            frame_packet(&mut [0u8; 16], &plain, 6),
            None,
            "too small a frame"
        );
    }
}
