//! The classic libpcap file format (the one `tcpdump -w` writes), as a zero-copy reader over a
//! byte slice and fixed-size header emitters, so captures can be read and written without
//! allocation. Both byte orders and both timestamp resolutions (µs, ns) are read; files are written
//! little-endian with microsecond timestamps and link type Ethernet.

/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of each record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Why a capture file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcapError {
    /// The file does not start with a pcap magic number (pcapng is not supported).
    BadMagic,
    /// The file or a record ends early.
    Truncated,
    /// A record claims more captured bytes than the file's snapshot length allows.
    BadRecordLen,
}

impl core::fmt::Display for PcapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PcapError::BadMagic => {
                "not a classic pcap file (bad magic; pcapng is not supported, use tcpdump -w)"
            }
            PcapError::Truncated => "pcap file ends in the middle of a header or record",
            PcapError::BadRecordLen => "pcap record is longer than the file's snapshot length",
        })
    }
}

impl core::error::Error for PcapError {}

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapRecord<'a> {
    /// Capture time in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Length of the frame on the wire (may exceed `data.len()` when the capture was snapped).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Reads records from a pcap file held in memory.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    rest: &'a [u8],
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    link_type: u32,
    failed: bool,
}

impl<'a> PcapReader<'a> {
    /// Checks the file header.
    pub fn new(file: &'a [u8]) -> Result<Self, PcapError> {
        let header = file.get(..FILE_HEADER_LEN).ok_or(PcapError::Truncated)?;
        let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let (big_endian, nanos) = match magic_le {
            MAGIC_MICROS => (false, false),
            MAGIC_NANOS => (false, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            _ => return Err(PcapError::BadMagic),
        };
        let word = |at: usize| read_u32(&header[at..at + 4], big_endian);
        Ok(PcapReader {
            rest: &file[FILE_HEADER_LEN..],
            big_endian,
            nanos,
            snaplen: word(16),
            link_type: word(20),
            failed: false,
        })
    }

    /// The file's link type (`LINKTYPE_ETHERNET` for the captures tern makes).
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// The file's snapshot length.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<PcapRecord<'a>, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = self.next_record();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> PcapReader<'a> {
    fn next_record(&mut self) -> Result<PcapRecord<'a>, PcapError> {
        let header = self
            .rest
            .get(..RECORD_HEADER_LEN)
            .ok_or(PcapError::Truncated)?;
        let word = |at: usize| read_u32(&header[at..at + 4], self.big_endian);
        let (secs, frac, incl_len, orig_len) = (word(0), word(4), word(8), word(12));
        // A snaplen of 0 is written by some tools to mean "unlimited".
        if self.snaplen != 0 && incl_len > self.snaplen.max(65_535) {
            return Err(PcapError::BadRecordLen);
        }
        let end = RECORD_HEADER_LEN
            .checked_add(incl_len as usize)
            .ok_or(PcapError::BadRecordLen)?;
        let data = self
            .rest
            .get(RECORD_HEADER_LEN..end)
            .ok_or(PcapError::Truncated)?;
        self.rest = &self.rest[end..];
        let frac_ns = if self.nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        Ok(PcapRecord {
            timestamp_ns: u64::from(secs) * 1_000_000_000 + frac_ns,
            orig_len,
            data,
        })
    }
}

fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// The file header for a little-endian, microsecond-resolution Ethernet capture.
pub fn file_header(snaplen: u32) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

/// The header of one record of `captured_len` bytes (of `orig_len` on the wire) at `timestamp_ns`.
pub fn record_header(
    timestamp_ns: u64,
    captured_len: u32,
    orig_len: u32,
) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    let secs = (timestamp_ns / 1_000_000_000) as u32;
    let micros = ((timestamp_ns % 1_000_000_000) / 1_000) as u32;
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&micros.to_le_bytes());
    h[8..12].copy_from_slice(&captured_len.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn file(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::from(file_header(65_535));
        for (ts, data) in records {
            out.extend_from_slice(&record_header(*ts, data.len() as u32, data.len() as u32));
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn round_trip() {
        let bytes = file(&[(1_500_000_123_000, b"abc"), (2_000_000_000, b"")]);
        let reader = PcapReader::new(&bytes).unwrap();
        assert_eq!(reader.link_type(), LINKTYPE_ETHERNET);
        let records: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].data, b"abc");
        // Written at microsecond resolution: the nanoseconds below a microsecond are dropped.
        assert_eq!(records[0].timestamp_ns, 1_500_000_123_000);
        assert_eq!(records[1].timestamp_ns, 2_000_000_000);
        assert_eq!(records[1].data, b"");
    }

    #[test]
    fn reads_big_endian_nanosecond_files() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC_NANOS.to_be_bytes());
        bytes.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&1500u32.to_be_bytes());
        bytes.extend_from_slice(&1u32.to_be_bytes());
        for w in [7u32, 42, 2, 60] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        bytes.extend_from_slice(&[9, 8]);
        let mut reader = PcapReader::new(&bytes).unwrap();
        let r = reader.next().unwrap().unwrap();
        assert_eq!(
            (r.timestamp_ns, r.orig_len, r.data),
            (7_000_000_042, 60, &[9u8, 8][..])
        );
        assert!(reader.next().is_none());
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert_eq!(PcapReader::new(b"short").unwrap_err(), PcapError::Truncated);
        assert_eq!(
            PcapReader::new(&[0u8; 24]).unwrap_err(),
            PcapError::BadMagic
        );
        let mut bytes = file(&[(0, b"abcdef")]);
        bytes.truncate(bytes.len() - 1);
        let mut reader = PcapReader::new(&bytes).unwrap();
        assert_eq!(reader.next(), Some(Err(PcapError::Truncated)));
        assert_eq!(reader.next(), None, "a failed reader stops");
        let mut huge = file(&[]);
        huge.extend_from_slice(&record_header(0, u32::MAX, u32::MAX));
        assert_eq!(
            PcapReader::new(&huge).unwrap().next(),
            Some(Err(PcapError::BadRecordLen))
        );
    }
}
