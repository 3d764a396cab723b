//! TCP options: End of Option List, No-Operation and Maximum Segment Size (RFC 9293 §3.1,
//! §3.7.1), Window Scale and Timestamps (RFC 7323 §2.2, §3.2), SACK-Permitted and SACK
//! (RFC 2018 §2, §3).
//!
//! The iterator is strict: a length of 0 or 1, a length running past the option area, or a
//! length that is wrong for a known kind ends iteration with `Err(BadTcpOption)`. RFC 9293
//! (MUST-7) asks that an illegal length be handled without crashing and suggests resetting; the
//! caller drops and counts the segment. (Linux instead stops parsing and keeps the segment.)

use core::iter::FusedIterator;
use core::ops::Deref;

use super::seq::SeqNum;
use crate::{Error, Result};

pub(super) const KIND_EOL: u8 = 0;
pub(super) const KIND_NOP: u8 = 1;
pub(super) const KIND_MSS: u8 = 2;
pub(super) const KIND_WS: u8 = 3;
pub(super) const KIND_SACK_PERM: u8 = 4;
pub(super) const KIND_SACK: u8 = 5;
pub(super) const KIND_TIMESTAMP: u8 = 8;

/// One SACK block: the sequence space `[left, right)` received out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlock {
    /// Left edge: the first sequence number of the block.
    pub left: SeqNum,
    /// Right edge: the sequence number just after the block.
    pub right: SeqNum,
}

/// Up to four SACK blocks, stored inline (four is the most a 40-byte option area can hold).
#[derive(Debug, Clone, Copy, Default)]
pub struct SackBlocks {
    blocks: [SackBlock; SackBlocks::MAX],
    len: u8,
}

impl SackBlocks {
    /// Capacity.
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks {
            blocks: [SackBlock {
                left: SeqNum(0),
                right: SeqNum(0),
            }; SackBlocks::MAX],
            len: 0,
        }
    }

    /// The first (up to) four blocks of `blocks`.
    pub fn from_slice(blocks: &[SackBlock]) -> Self {
        let mut out = SackBlocks::new();
        for block in blocks.iter().take(Self::MAX) {
            out.push(block.left, block.right);
        }
        out
    }

    /// Appends a block; returns false (and changes nothing) when full.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = SackBlock { left, right };
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Keeps the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n.min(Self::MAX) as u8);
    }

    /// The blocks, in order.
    pub fn as_slice(&self) -> &[SackBlock] {
        self.blocks.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl Deref for SackBlocks {
    type Target = [SackBlock];

    fn deref(&self) -> &[SackBlock] {
        self.as_slice()
    }
}

// Equality ignores the unused tail of the array.
impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl core::hash::Hash for SackBlocks {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// The Timestamps option (RFC 7323 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpTimestamp {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the most recent TSval received (meaningful when ACK is set).
    pub tsecr: u32,
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of Option List (kind 0); nothing after it is parsed.
    EndOfList,
    /// No-Operation (kind 1), used for alignment.
    NoOperation,
    /// Maximum Segment Size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window Scale shift count (kind 3, length 3).
    WindowScale(u8),
    /// SACK-Permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks (kind 5, length 2 + 8n, 1 ≤ n ≤ 4).
    SackRange(SackBlocks),
    /// Timestamps (kind 8, length 10).
    Timestamp(TcpTimestamp),
    /// Any other kind, skipped by its length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after the kind and length bytes.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Encoded length in bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(blocks) => 2 + 8 * blocks.len(),
            TcpOption::Timestamp(_) => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length. Errors:
    /// `BufferTooSmall`, or `BadTcpOption` for an `Unknown` option whose length does not fit
    /// in the length byte.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let len_byte = u8::try_from(len).map_err(|_| Error::BadTcpOption)?;
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        match self {
            TcpOption::EndOfList => put(&[KIND_EOL]),
            TcpOption::NoOperation => put(&[KIND_NOP]),
            TcpOption::MaxSegmentSize(mss) => {
                put(&[KIND_MSS, len_byte]);
                put(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => put(&[KIND_WS, len_byte, *shift]),
            TcpOption::SackPermitted => put(&[KIND_SACK_PERM, len_byte]),
            TcpOption::SackRange(blocks) => {
                put(&[KIND_SACK, len_byte]);
                for block in blocks.iter() {
                    put(&block.left.0.to_be_bytes());
                    put(&block.right.0.to_be_bytes());
                }
            }
            TcpOption::Timestamp(ts) => {
                put(&[KIND_TIMESTAMP, len_byte]);
                put(&ts.tsval.to_be_bytes());
                put(&ts.tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                put(&[*kind, len_byte]);
                put(data);
            }
        }
        Ok(len)
    }
}

/// Iterates over an option area (`TcpPacket::options`), yielding each option or the first
/// error; stops after `EndOfList` or an error.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over `options`.
    pub const fn new(options: &'a [u8]) -> Self {
        TcpOptions { rest: options }
    }

    fn parse_next(&mut self, kind: u8) -> Result<TcpOption<'a>> {
        // Kind and length bytes, then `len - 2` bytes of data, all inside the option area.
        let len = self.rest.get(1).map_or(0, |&l| usize::from(l));
        let data = match len {
            0 | 1 => None,
            _ => self.rest.get(2..len),
        }
        .ok_or(Error::BadTcpOption)?;
        self.rest = self.rest.get(len..).unwrap_or_default();
        Ok(match (kind, data) {
            (KIND_MSS, &[a, b]) => TcpOption::MaxSegmentSize(u16::from_be_bytes([a, b])),
            (KIND_WS, &[shift]) => TcpOption::WindowScale(shift),
            (KIND_SACK_PERM, []) => TcpOption::SackPermitted,
            (KIND_TIMESTAMP, &[a, b, c, d, e, f, g, h]) => TcpOption::Timestamp(TcpTimestamp {
                tsval: u32::from_be_bytes([a, b, c, d]),
                tsecr: u32::from_be_bytes([e, f, g, h]),
            }),
            (KIND_SACK, data)
                if !data.is_empty() && data.len() % 8 == 0 && data.len() <= 8 * SackBlocks::MAX =>
            {
                let mut blocks = SackBlocks::new();
                for edges in data.chunks_exact(8) {
                    let (left, right) = edges.split_at(4);
                    blocks.push(SeqNum(crate::be::u32(left)), SeqNum(crate::be::u32(right)));
                }
                TcpOption::SackRange(blocks)
            }
            (KIND_MSS | KIND_WS | KIND_SACK_PERM | KIND_TIMESTAMP | KIND_SACK, _) => {
                return Err(Error::BadTcpOption)
            }
            (kind, data) => TcpOption::Unknown { kind, data },
        })
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let &kind = self.rest.first()?;
        let item = match kind {
            KIND_EOL => {
                self.rest = &[];
                Ok(TcpOption::EndOfList)
            }
            KIND_NOP => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                Ok(TcpOption::NoOperation)
            }
            _ => self.parse_next(kind),
        };
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl FusedIterator for TcpOptions<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn parse(bytes: &[u8]) -> Vec<Result<TcpOption<'_>>> {
        TcpOptions::new(bytes).collect()
    }

    #[test]
    fn linux_syn_options() {
        let bytes = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        assert_eq!(
            parse(&bytes),
            [
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamp(TcpTimestamp { tsval: 1, tsecr: 0 })),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
    }

    #[test]
    fn sack_blocks_and_unknown_options() {
        let mut bytes = std::vec![1, 1, 5, 18];
        for edge in [100u32, 200, 300, 400] {
            bytes.extend_from_slice(&edge.to_be_bytes());
        }
        bytes.extend_from_slice(&[30, 4, 0xaa, 0xbb, 0, 9, 9]);
        let blocks = [
            SackBlock {
                left: SeqNum(100),
                right: SeqNum(200),
            },
            SackBlock {
                left: SeqNum(300),
                right: SeqNum(400),
            },
        ];
        assert_eq!(
            parse(&bytes),
            [
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::SackRange(SackBlocks::from_slice(&blocks))),
                Ok(TcpOption::Unknown {
                    kind: 30,
                    data: &[0xaa, 0xbb]
                }),
                Ok(TcpOption::EndOfList),
            ],
            "EOL ends parsing; the trailing 9 9 is never read"
        );
    }

    #[test]
    fn malformed_lengths_are_errors() {
        let bad = Err(Error::BadTcpOption);
        assert_eq!(parse(&[2, 0, 1, 1]), [bad]);
        assert_eq!(parse(&[1, 30, 1]), [Ok(TcpOption::NoOperation), bad]);
        assert_eq!(parse(&[30]), [bad], "kind without a length byte");
        assert_eq!(parse(&[8, 10, 0, 0, 0]), [bad], "length overruns the area");
        assert_eq!(parse(&[2, 3, 5]), [bad], "MSS must be 4 long");
        assert_eq!(parse(&[3, 4, 1, 1]), [bad], "WS must be 3 long");
        assert_eq!(parse(&[4, 3, 0]), [bad], "SACK-permitted must be 2 long");
        assert_eq!(parse(&[8, 6, 0, 0, 0, 0]), [bad], "TS must be 10 long");
        assert_eq!(parse(&[5, 2]), [bad], "SACK needs a block");
        assert_eq!(
            parse(&[5, 6, 0, 0, 0, 0]),
            [bad],
            "SACK must be 2 + 8n long"
        );
        let mut five = std::vec![5u8, 42];
        five.resize(42, 0);
        assert_eq!(parse(&five), [bad], "at most four SACK blocks");
    }

    #[test]
    fn emit_round_trips_each_kind() {
        let blocks = SackBlocks::from_slice(
            &[SackBlock {
                left: SeqNum(1),
                right: SeqNum(2),
            }; 5],
        );
        assert_eq!(blocks.len(), 4);
        let options = [
            TcpOption::EndOfList,
            TcpOption::NoOperation,
            TcpOption::MaxSegmentSize(9000),
            TcpOption::WindowScale(14),
            TcpOption::SackPermitted,
            TcpOption::SackRange(blocks),
            TcpOption::Timestamp(TcpTimestamp {
                tsval: 7,
                tsecr: u32::MAX,
            }),
            TcpOption::Unknown {
                kind: 254,
                data: &[1, 2, 3],
            },
        ];
        for option in options {
            let mut buf = [0u8; 40];
            let len = option.emit(&mut buf).unwrap();
            assert_eq!(len, option.buffer_len());
            assert_eq!(parse(&buf[..len]), [Ok(option)]);
            assert_eq!(option.emit(&mut buf[..len - 1]), Err(Error::BufferTooSmall));
        }
        let huge = [0u8; 300];
        let unknown = TcpOption::Unknown {
            kind: 99,
            data: &huge[..254],
        };
        assert_eq!(unknown.emit(&mut [0u8; 300]), Err(Error::BadTcpOption));
    }

    #[test]
    fn sack_blocks_container() {
        let mut blocks = SackBlocks::new();
        assert!(blocks.is_empty());
        for i in 0..4 {
            assert!(blocks.push(SeqNum(i), SeqNum(i + 1)));
        }
        assert!(!blocks.push(SeqNum(9), SeqNum(10)));
        assert_eq!(blocks.len(), 4);
        let mut fewer = blocks;
        fewer.truncate(2);
        assert_eq!(fewer.as_slice(), &blocks[..2]);
        // Equality ignores what is left in the array past `len`.
        let mut rebuilt = SackBlocks::new();
        rebuilt.push(SeqNum(0), SeqNum(1));
        rebuilt.push(SeqNum(1), SeqNum(2));
        assert_eq!(fewer, rebuilt);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            let mut consumed = 0;
            for option in TcpOptions::new(&bytes) {
                match option {
                    Ok(o) => consumed += o.buffer_len(),
                    Err(_) => break,
                }
            }
            prop_assert!(consumed <= bytes.len());
        }
    }
}
