//! TCP header, RFC 9293 §3.1, with the checksum over the pseudo-header (§3.1 "Checksum"),
//! options (see [`options`]) and sequence numbers (see [`seq`]).
//!
//! The urgent pointer is carried as a plain number, meaningful only with URG (RFC 6093 advises
//! against using urgent data; the engine decides what to do with it). The AE bit (formerly NS)
//! is carried as a flag.

pub mod options;
pub mod seq;

use core::fmt;
use core::net::IpAddr;
use core::ops::{BitAnd, BitOr, BitOrAssign};

pub use options::{SackBlock, SackBlocks, TcpOption, TcpOptions, TcpTimestamp};
pub use seq::SeqNum;

use crate::checksum::{self, ChecksumMode};
use crate::ip::IpProtocol;
use crate::{be, Error, Result};
use options::{KIND_MSS, KIND_NOP, KIND_SACK, KIND_SACK_PERM, KIND_TIMESTAMP, KIND_WS};

mod field {
    use crate::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const SEQ_NUM: Field = 4..8;
    pub(super) const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved (3 bits), flags (9 bits).
    pub(super) const OFFSET_FLAGS: Field = 12..14;
    pub(super) const WINDOW: Field = 14..16;
    pub(super) const CHECKSUM: Field = 16..18;
    pub(super) const URGENT: Field = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Most option bytes a header can carry (data offset 15).
pub const MAX_OPTIONS_LEN: usize = 40;

/// The control bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// Accurate ECN (formerly the RFC 3540 nonce sum bit, NS).
    pub const AE: TcpFlags = TcpFlags(0x100);

    const MASK: u16 = 0x1ff;
    const NAMES: [(TcpFlags, &'static str); 9] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
        (TcpFlags::AE, "AE"),
    ];

    /// No flags.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// The flags in the low 9 bits of `bits`; other bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> Self {
        TcpFlags(bits & Self::MASK)
    }

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Both sets of flags; `const`, so flag combinations can be constants.
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag in `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the flags in `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags in `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }

    /// Sets or clears the flags in `other`.
    pub fn set(&mut self, other: TcpFlags, on: bool) {
        if on {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;

    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;

    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

/// `SYN|ACK`; `-` when empty.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut sep = "";
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// A view of a TCP segment. The buffer is exactly the segment (the IP payload), since the
/// checksum covers all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checks; accessors may panic if it is shorter than 20 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates: at least 20 bytes (`Truncated`), and 20 ≤ header length ≤ buffer length
    /// (`BadTcpOffset`).
    pub fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadTcpOffset);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(be::u32(&self.buffer.as_ref()[field::SEQ_NUM]))
    }

    /// Acknowledgment number (meaningful only with ACK).
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(be::u32(&self.buffer.as_ref()[field::ACK_NUM]))
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        header_len(self.buffer.as_ref())
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(be::u16(&self.buffer.as_ref()[field::OFFSET_FLAGS]))
    }

    /// Window (unscaled).
    pub fn window_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::WINDOW])
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer (meaningful only with URG).
    pub fn urgent_at(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option area: bytes 20 to the data offset.
    pub fn options(&self) -> &[u8] {
        options(self.buffer.as_ref())
    }

    /// Iterates over the options.
    pub fn iter_options(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// Data after the header.
    pub fn payload(&self) -> &[u8] {
        payload(self.buffer.as_ref())
    }

    /// Sequence space the segment occupies: payload length plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        let flags = self.flags();
        self.payload().len()
            + usize::from(flags.contains(TcpFlags::SYN))
            + usize::from(flags.contains(TcpFlags::FIN))
    }

    /// Whether the checksum verifies against the pseudo-header for `src` → `dst`.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        segment_checksum(self.buffer.as_ref(), src, dst) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// [`payload`](Self::payload) with the buffer's lifetime rather than the view's.
    pub fn into_payload(self) -> &'a [u8] {
        payload(self.buffer.as_ref())
    }
}

fn header_len(data: &[u8]) -> usize {
    data.get(field::OFFSET_FLAGS.start)
        .map_or(0, |b| usize::from(b >> 4) * 4)
}

fn options(data: &[u8]) -> &[u8] {
    data.get(HEADER_LEN..header_len(data)).unwrap_or_default()
}

fn payload(data: &[u8]) -> &[u8] {
    data.get(header_len(data).max(HEADER_LEN)..)
        .unwrap_or_default()
}

fn segment_checksum(segment: &[u8], src: &IpAddr, dst: &IpAddr) -> u16 {
    // A segment longer than u32::MAX cannot exist; saturate rather than wrap.
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    checksum::pseudo_header(src, dst, IpProtocol::Tcp, len)
        .add_bytes(segment)
        .finish()
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: SeqNum) {
        be::set_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], seq.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: SeqNum) {
        be::set_u32(&mut self.buffer.as_mut()[field::ACK_NUM], ack.0);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4, at most 60); keeps
    /// the reserved bits and flags.
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::OFFSET_FLAGS.start];
        *b = (*b & 0x0f) | (((len / 4).min(15) as u8) << 4);
    }

    /// Sets the control bits; keeps the data offset and reserved bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let at = field::OFFSET_FLAGS;
        let word = be::u16(&self.buffer.as_ref()[at.clone()]) & !TcpFlags::MASK;
        be::set_u16(&mut self.buffer.as_mut()[at], word | flags.bits());
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, window: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::WINDOW], window);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], checksum);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, urgent: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::URGENT], urgent);
    }

    /// Computes and writes the checksum for `src` → `dst` over the whole buffer.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let sum = segment_checksum(self.buffer.as_ref(), src, dst);
        self.set_checksum(sum);
    }

    /// The option area, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or_default()
    }

    /// Data after the header, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len().max(HEADER_LEN);
        self.buffer.as_mut().get_mut(start..).unwrap_or_default()
    }
}

/// A TCP segment as the engine sees it.
///
/// Which options are read and written depends on SYN, as in Linux: MSS, Window Scale and
/// SACK-Permitted only on SYN segments (RFC 9293 §3.7.1, RFC 7323 §2.2, RFC 2018 §2), SACK
/// blocks only on others; Timestamps on any. `parse` ignores the rest, `emit` never writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Control bits. On emit, ACK follows `ack_number` whatever this says.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq_number: SeqNum,
    /// Acknowledgment number; `Some` exactly when ACK is set.
    pub ack_number: Option<SeqNum>,
    /// Window (unscaled, as on the wire).
    pub window_len: u16,
    /// Urgent pointer; 0 unless URG is set.
    pub urgent_pointer: u16,
    /// MSS option (SYN only).
    pub max_seg_size: Option<u16>,
    /// Window Scale shift count as received (SYN only); RFC 7323 §2.3 clamping to 14 is the
    /// engine's job.
    pub window_scale: Option<u8>,
    /// SACK-Permitted option (SYN only).
    pub sack_permitted: bool,
    /// SACK blocks (non-SYN only). `emit` writes as many as fit: 3 with Timestamps, 4 without.
    pub sack_blocks: SackBlocks,
    /// Timestamps option.
    pub timestamp: Option<TcpTimestamp>,
    /// Segment data.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Reads a segment: checks the view, verifies the checksum against `src` → `dst` (in
    /// `Verify` mode), and parses the options (any malformed option is `BadTcpOption`).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<Self> {
        packet.check()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum(src, dst) {
            return Err(Error::BadTcpChecksum);
        }
        let flags = packet.flags();
        let syn = flags.contains(TcpFlags::SYN);
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            flags,
            seq_number: packet.seq_number(),
            ack_number: flags.contains(TcpFlags::ACK).then(|| packet.ack_number()),
            window_len: packet.window_len(),
            urgent_pointer: if flags.contains(TcpFlags::URG) {
                packet.urgent_at()
            } else {
                0
            },
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_blocks: SackBlocks::new(),
            timestamp: None,
            payload: packet.into_payload(),
        };
        for option in packet.iter_options() {
            match option? {
                TcpOption::MaxSegmentSize(mss) if syn => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) if syn => repr.window_scale = Some(shift),
                TcpOption::SackPermitted if syn => repr.sack_permitted = true,
                TcpOption::SackRange(blocks) if !syn => repr.sack_blocks = blocks,
                TcpOption::Timestamp(ts) => repr.timestamp = Some(ts),
                _ => {}
            }
        }
        Ok(repr)
    }

    /// The SACK blocks `emit` writes: none on SYN; otherwise as many as fit beside the other
    /// options (12 + 4 + 3×8 = 40 bytes with Timestamps, 4 + 4×8 = 36 without).
    pub fn emitted_sack_blocks(&self) -> &[SackBlock] {
        if self.flags.contains(TcpFlags::SYN) {
            return &[];
        }
        let fit = if self.timestamp.is_some() { 3 } else { 4 };
        let blocks = self.sack_blocks.as_slice();
        blocks.get(..fit).unwrap_or(blocks)
    }

    /// Calls `put` with the option bytes in Linux's order (`tcp_options_write`), each option
    /// padded with NOPs to a 4-byte boundary: MSS; SACK-Permitted and Timestamps sharing a
    /// word (or NOP NOP TS, or NOP NOP SACK-Permitted); NOP WS; NOP NOP SACK.
    fn write_options(&self, mut put: impl FnMut(&[u8])) {
        let syn = self.flags.contains(TcpFlags::SYN);
        if let (true, Some(mss)) = (syn, self.max_seg_size) {
            put(&[KIND_MSS, 4]);
            put(&mss.to_be_bytes());
        }
        let sack_permitted = syn && self.sack_permitted;
        match self.timestamp {
            Some(ts) => {
                if sack_permitted {
                    put(&[KIND_SACK_PERM, 2, KIND_TIMESTAMP, 10]);
                } else {
                    put(&[KIND_NOP, KIND_NOP, KIND_TIMESTAMP, 10]);
                }
                put(&ts.tsval.to_be_bytes());
                put(&ts.tsecr.to_be_bytes());
            }
            None if sack_permitted => put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERM, 2]),
            None => {}
        }
        if let (true, Some(shift)) = (syn, self.window_scale) {
            put(&[KIND_NOP, KIND_WS, 3, shift]);
        }
        let blocks = self.emitted_sack_blocks();
        if !blocks.is_empty() {
            put(&[KIND_NOP, KIND_NOP, KIND_SACK, 2 + 8 * blocks.len() as u8]);
            for block in blocks {
                put(&block.left.0.to_be_bytes());
                put(&block.right.0.to_be_bytes());
            }
        }
    }

    /// Length of the emitted header: 20 plus the options (a multiple of 4, at most 60).
    pub fn header_len(&self) -> usize {
        let mut len = HEADER_LEN;
        self.write_options(|bytes| len += bytes.len());
        len
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment occupies: payload length plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len()
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Writes header, options and payload into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` (`BufferTooSmall` if it is shorter), then the checksum for
    /// `src` → `dst` in `Verify` mode, or 0 in `Ignore` mode.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<()> {
        let header_len = self.header_len();
        let len = header_len + self.payload.len();
        let segment = packet
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        let mut flags = self.flags;
        flags.set(TcpFlags::ACK, self.ack_number.is_some());
        let mut out = TcpPacket::new_unchecked(&mut *segment);
        out.set_src_port(self.src_port);
        out.set_dst_port(self.dst_port);
        out.set_seq_number(self.seq_number);
        out.set_ack_number(self.ack_number.unwrap_or_default());
        be::set_u16(
            &mut out.buffer[field::OFFSET_FLAGS],
            ((header_len as u16 / 4) << 12) | flags.bits(),
        );
        out.set_window_len(self.window_len);
        out.set_checksum(0);
        out.set_urgent_at(if flags.contains(TcpFlags::URG) {
            self.urgent_pointer
        } else {
            0
        });
        let options = out.options_mut();
        let mut at = 0;
        self.write_options(|bytes| {
            if let Some(dst) = options.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        });
        out.payload_mut().copy_from_slice(self.payload);
        if mode == ChecksumMode::Verify {
            out.fill_checksum(src, dst);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
