//! [`TestHost`], a scriptable [`Host`] for testing the simulator itself and for simple traffic
//! beside real stacks (a packet source, an echo responder, a timer), and the numbered
//! [`probe`] packets it sends.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use tern_tcp::time::{Duration, Instant};
use tern_wire::{ChecksumMode, IpProtocol, IpRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr};

use crate::host::Host;
use crate::packet;

/// The IP protocol number probes carry: 253, reserved for experimentation (RFC 3692).
pub const PROBE_PROTOCOL: u8 = 253;

/// Length of a probe's payload prefix: the big-endian `u64` id.
const ID_LEN: usize = 8;

/// An IP packet of `len` bytes in all from `src` to `dst`, protocol [`PROBE_PROTOCOL`], whose
/// payload starts with `id` (big-endian) followed by the bytes `id + 1, id + 2, …` (mod 256),
/// so that any corruption of it shows. IPv4 headers carry a valid checksum.
///
/// Panics if the families differ or `len` is below the IP header plus 8 bytes or above 65535.
pub fn probe(src: IpAddr, dst: IpAddr, id: u64, len: usize) -> Vec<u8> {
    let protocol = IpProtocol::from(PROBE_PROTOCOL);
    let mut ip = IpRepr::new(src, dst, protocol, 0, 64).expect("probe: mixed address families");
    let payload_len = len
        .checked_sub(ip.header_len())
        .filter(|&n| n >= ID_LEN)
        .expect("probe: too short for the IP header and the id");
    ip.set_payload_len(payload_len);
    let mut buf = vec![0u8; len];
    ip.emit(&mut buf).expect("probe: longer than an IP packet");
    let payload = &mut buf[ip.header_len()..];
    payload[..ID_LEN].copy_from_slice(&id.to_be_bytes());
    for (i, byte) in payload[ID_LEN..].iter_mut().enumerate() {
        *byte = id.wrapping_add(i as u64 + 1) as u8;
    }
    buf
}

/// The id of an intact-headed [`probe`] (IPv4 header checksum verified), or `None` for any
/// other packet. The payload is not verified: compare against [`probe`] for that.
pub fn probe_id(packet: &[u8]) -> Option<u64> {
    let payload = match packet::version(packet)? {
        4 => {
            let view = Ipv4Packet::new_unchecked(packet);
            let ip = Ipv4Repr::parse(&view, ChecksumMode::Verify).ok()?;
            (ip.protocol == IpProtocol::from(PROBE_PROTOCOL)).then_some(())?;
            view.into_payload()
        }
        6 => {
            let view = Ipv6Packet::new_unchecked(packet);
            let ip = Ipv6Repr::parse(&view).ok()?;
            (ip.next_header == IpProtocol::from(PROBE_PROTOCOL)).then_some(())?;
            let payload = view.into_payload();
            &payload[payload.len().checked_sub(ip.payload_len)?..]
        }
        _ => return None,
    };
    Some(u64::from_be_bytes(payload.get(..ID_LEN)?.try_into().ok()?))
}

/// A packet a [`TestHost`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Arrival time.
    pub at: Instant,
    /// The packet as delivered.
    pub packet: Vec<u8>,
}

/// A scriptable host: it sends what it is told to, now ([`send`](TestHost::send)) or at a
/// given time through its timer ([`send_at`](TestHost::send_at)); records what it receives
/// and when its timer fired; and, built with [`echo`](TestHost::echo), answers each received
/// probe with a probe of the same id and length back to the sender after a fixed delay.
#[derive(Debug, Clone)]
pub struct TestHost {
    addr: IpAddr,
    outbox: VecDeque<Vec<u8>>,
    /// Packets to queue at a time, keyed by (time, order of `send_at` calls).
    scheduled: BTreeMap<(Instant, u64), Vec<u8>>,
    next_order: u64,
    echo: Option<Duration>,
    recording: bool,
    received: Vec<Received>,
    received_count: u64,
    timer_fires: Vec<Instant>,
}

impl TestHost {
    /// A host at `addr` that sends nothing until told.
    pub fn new(addr: IpAddr) -> Self {
        TestHost {
            addr,
            outbox: VecDeque::new(),
            scheduled: BTreeMap::new(),
            next_order: 0,
            echo: None,
            recording: true,
            received: Vec::new(),
            received_count: 0,
            timer_fires: Vec::new(),
        }
    }

    /// A host at `addr` that answers each probe (with an intact header) `delay` after it
    /// arrives, from the address it was sent to.
    pub fn echo(addr: IpAddr, delay: Duration) -> Self {
        TestHost {
            echo: Some(delay),
            ..Self::new(addr)
        }
    }

    /// The address given at construction (the default source of [`probe_to`](Self::probe_to)).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// A probe from this host's address to `dst`.
    pub fn probe_to(&self, dst: IpAddr, id: u64, len: usize) -> Vec<u8> {
        probe(self.addr, dst, id, len)
    }

    /// Queues `packet` for the next `poll_transmit`.
    pub fn send(&mut self, packet: Vec<u8>) {
        self.outbox.push_back(packet);
    }

    /// Queues `packet` when the timer fires at `at` (packets for the same time leave in the
    /// order of these calls).
    pub fn send_at(&mut self, at: Instant, packet: Vec<u8>) {
        self.scheduled.insert((at, self.next_order), packet);
        self.next_order += 1;
    }

    /// Whether to keep received packets (default on); off, only the count is kept, which
    /// saves memory in long runs.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// The packets received while recording, in arrival order.
    pub fn received(&self) -> &[Received] {
        &self.received
    }

    /// Forgets the recorded packets, returning them.
    pub fn take_received(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.received)
    }

    /// All packets received, recorded or not.
    pub fn received_count(&self) -> u64 {
        self.received_count
    }

    /// The probe ids of the recorded packets (`None` for non-probes), in arrival order.
    pub fn received_ids(&self) -> Vec<Option<u64>> {
        self.received.iter().map(|r| probe_id(&r.packet)).collect()
    }

    /// The times `on_timeout` ran.
    pub fn timer_fires(&self) -> &[Instant] {
        &self.timer_fires
    }

    /// Packets waiting: queued for transmission or scheduled.
    pub fn pending(&self) -> usize {
        self.outbox.len() + self.scheduled.len()
    }
}

impl Host for TestHost {
    fn on_packet(&mut self, now: Instant, packet: &[u8]) {
        self.received_count += 1;
        if self.recording {
            self.received.push(Received {
                at: now,
                packet: packet.to_vec(),
            });
        }
        let Some(delay) = self.echo else { return };
        let (Some(id), Some((src, dst))) = (probe_id(packet), packet::ip_addrs(packet)) else {
            return;
        };
        let reply = probe(dst, src, id, packet.len());
        if delay.is_zero() {
            self.send(reply);
        } else {
            self.send_at(now + delay, reply);
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        let packet = self.outbox.pop_front()?;
        buf[..packet.len()].copy_from_slice(&packet);
        Some(packet.len())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.scheduled.keys().next().map(|&(at, _)| at)
    }

    fn on_timeout(&mut self, now: Instant) {
        self.timer_fires.push(now);
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.outbox.push_back(entry.remove());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip_in_both_families() {
        let v4: (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let v6: (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        for (src, dst) in [v4, v6] {
            let p = probe(src, dst, 0xdead_beef_0042, 100);
            assert_eq!(p.len(), 100);
            assert_eq!(probe_id(&p), Some(0xdead_beef_0042));
            assert_eq!(packet::ip_addrs(&p), Some((src, dst)));
            assert_eq!(
                *p.last().unwrap(),
                0x42u8.wrapping_add(100 - 8 - if src.is_ipv4() { 20 } else { 40 })
            );
        }
        let mut bad = probe(v4.0, v4.1, 1, 28);
        assert_eq!(probe_id(&bad), Some(1));
        bad[8] ^= 1; // TTL: the header checksum catches it
        assert_eq!(probe_id(&bad), None);
        assert_eq!(probe_id(&[0x45]), None);
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn probe_refuses_a_length_without_room_for_the_id() {
        let _ = probe(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            1,
            27,
        );
    }

    #[test]
    fn scheduled_sends_leave_when_the_timer_fires() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut host = TestHost::new(a);
        host.send_at(Instant::from_millis(5), host.probe_to(a, 2, 40));
        host.send_at(Instant::from_millis(3), host.probe_to(a, 1, 40));
        host.send_at(Instant::from_millis(5), host.probe_to(a, 3, 40));
        assert_eq!(host.poll_timeout(), Some(Instant::from_millis(3)));
        let mut buf = [0u8; 100];
        assert_eq!(host.poll_transmit(Instant::ZERO, &mut buf), None);
        host.on_timeout(Instant::from_millis(5));
        let mut ids = Vec::new();
        while let Some(n) = host.poll_transmit(Instant::from_millis(5), &mut buf) {
            ids.push(probe_id(&buf[..n]).unwrap());
        }
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(host.poll_timeout(), None);
        assert_eq!(host.pending(), 0);
    }
}
