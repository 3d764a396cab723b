//! pcap output of a simulation, so a failing run can be opened with tcpdump or Wireshark.
//!
//! The hosts exchange bare IP packets; the capture wraps each in an Ethernet II header with
//! a fake, fixed MAC per host ([`host_mac`]: host *i* is `02:00:00:00:00:00` + *i* + 1, an
//! unknown destination is the broadcast address) and the EtherType of the packet's IP version,
//! so `tcpdump -e` shows which host sent and which received. Timestamps are the virtual time
//! (the origin is the Unix epoch, so `Instant::ZERO` prints as 1970-01-01 00:00:00), at
//! microsecond resolution, which is also the engine's.
//!
//! pcap cannot annotate a record, so *where* packets are captured is chosen up front with
//! [`CapturePoints`]: at **delivery** (the default: what each receiver actually got, corrupted
//! bits and duplicates included, lost packets absent), and/or when **sent** (everything each
//! host transmitted, at its transmit time, before any loss, corruption or queueing — so lost
//! packets and their retransmissions both show). With both, a delivered packet appears twice.

use std::fmt;
use std::io::{self, Write};

use tern_tcp::time::Instant;
use tern_wire::pcap::{file_header, record_header};
use tern_wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};

use crate::packet;

/// Snapshot length written in the file header: whole packets, like tcpdump's default.
const SNAPLEN: u32 = 262_144;
/// Ethernet II header length.
const ETH_HEADER_LEN: usize = 14;

/// The fake MAC address of host `index` in captures: `02:00:` followed by `index + 1` as a
/// big-endian 32-bit number (locally administered, unicast).
pub fn host_mac(index: usize) -> EthernetAddress {
    let n = (index as u32).wrapping_add(1).to_be_bytes();
    EthernetAddress([0x02, 0x00, n[0], n[1], n[2], n[3]])
}

/// Where packets are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapturePoints {
    /// Every packet a host transmits, when it is transmitted (before the link).
    pub sent: bool,
    /// Every copy handed to a host, when it arrives.
    pub delivered: bool,
}

impl CapturePoints {
    /// At delivery only (the default).
    pub const DELIVERED: CapturePoints = CapturePoints {
        sent: false,
        delivered: true,
    };
    /// At transmission only.
    pub const SENT: CapturePoints = CapturePoints {
        sent: true,
        delivered: false,
    };
    /// Both: delivered packets appear twice.
    pub const BOTH: CapturePoints = CapturePoints {
        sent: true,
        delivered: true,
    };
}

impl Default for CapturePoints {
    fn default() -> Self {
        CapturePoints::DELIVERED
    }
}

/// An open capture: the writer, a frame buffer, and the first write error (after which
/// nothing more is written; [`Capture::finish`] reports it).
pub(crate) struct Capture {
    out: Box<dyn Write>,
    pub(crate) points: CapturePoints,
    frame: Vec<u8>,
    error: Option<io::Error>,
    records: u64,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("points", &self.points)
            .field("records", &self.records)
            .field("error", &self.error)
            .finish()
    }
}

impl Capture {
    /// Writes the file header.
    pub(crate) fn new(mut out: Box<dyn Write>, points: CapturePoints) -> io::Result<Capture> {
        out.write_all(&file_header(SNAPLEN))?;
        Ok(Capture {
            out,
            points,
            frame: Vec::with_capacity(ETH_HEADER_LEN + 1500),
            error: None,
            records: 0,
        })
    }

    /// Records `packet`, sent by host `from` to host `to` (`None`: nobody), at `at`.
    pub(crate) fn record(&mut self, at: Instant, from: usize, to: Option<usize>, packet: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let eth = EthernetRepr {
            src: host_mac(from),
            dst: to.map_or(EthernetAddress([0xff; 6]), host_mac),
            vlan: None,
            ethertype: match packet::version(packet) {
                Some(6) => EtherType::Ipv6,
                _ => EtherType::Ipv4,
            },
        };
        self.frame.clear();
        self.frame.resize(ETH_HEADER_LEN, 0);
        if let Err(e) = eth.emit(&mut EthernetFrame::new_unchecked(&mut self.frame[..])) {
            self.error = Some(io::Error::other(format!("ethernet header: {e:?}")));
            return;
        }
        self.frame.extend_from_slice(packet);
        let len = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
        let header = record_header(at.as_micros().saturating_mul(1_000), len, len);
        let written = self
            .out
            .write_all(&header)
            .and_then(|()| self.out.write_all(&self.frame));
        match written {
            Ok(()) => self.records += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Flushes the writer; the first error met while capturing, if any.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use tern_wire::pcap::PcapReader;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn macs_are_distinct_and_local() {
        assert_eq!(host_mac(0).0, [2, 0, 0, 0, 0, 1]);
        assert_eq!(host_mac(0x1234).0, [2, 0, 0, 0, 0x12, 0x35]);
        assert_ne!(host_mac(1), host_mac(2));
    }

    #[test]
    fn frames_carry_the_family_and_the_time() {
        let buf = Shared::default();
        let mut cap = Capture::new(Box::new(buf.clone()), CapturePoints::default()).unwrap();
        cap.record(Instant::from_micros(1_500_002), 0, Some(1), &[0x45, 1, 2]);
        cap.record(Instant::ZERO, 1, None, &[0x60, 9]);
        assert_eq!(cap.finish().unwrap(), 2);
        let bytes = buf.0.borrow();
        let records: Vec<_> = PcapReader::new(&bytes)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records[0].timestamp_ns, 1_500_002_000);
        assert_eq!(&records[0].data[..6], &host_mac(1).0);
        assert_eq!(&records[0].data[6..12], &host_mac(0).0);
        assert_eq!(&records[0].data[12..], &[0x08, 0x00, 0x45, 1, 2]);
        assert_eq!(&records[1].data[..6], &[0xff; 6]);
        assert_eq!(&records[1].data[12..], &[0x86, 0xdd, 0x60, 9]);
    }

    #[test]
    fn write_errors_are_reported_once_at_finish() {
        assert!(Capture::new(Box::new(Failing), CapturePoints::BOTH).is_err());
        let mut cap = Capture {
            out: Box::new(Failing),
            points: CapturePoints::BOTH,
            frame: Vec::new(),
            error: None,
            records: 0,
        };
        cap.record(Instant::ZERO, 0, Some(1), &[0x45]);
        cap.record(Instant::ZERO, 0, Some(1), &[0x45]);
        assert_eq!(cap.finish().unwrap_err().to_string(), "disk full");
    }
}
