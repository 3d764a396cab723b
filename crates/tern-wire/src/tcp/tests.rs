use super::*;
use core::net::{Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use std::string::ToString;
use std::vec::Vec;

const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// Linux's SYN option block: MSS 1460, SACK-Permitted + TS, NOP WS 7.
const LINUX_SYN_OPTIONS: [u8; 20] = [
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x03, 0x03, 0x07,
];

/// A SYN from port 50000 to 80 with Linux's options and two payload bytes, checksum filled.
fn syn_bytes() -> Vec<u8> {
    let mut bytes = std::vec![
        0xc3, 0x50, 0x00, 0x50, // ports
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, // offset 10, SYN
        0xfa, 0xf0, // window 64240
        0x00, 0x00, // checksum
        0x00, 0x00, // urgent
    ];
    bytes.extend_from_slice(&LINUX_SYN_OPTIONS);
    bytes.extend_from_slice(b"hi");
    TcpPacket::new_unchecked(&mut bytes[..]).fill_checksum(&SRC, &DST);
    bytes
}

fn linux_syn_repr() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 50000,
        dst_port: 80,
        flags: TcpFlags::SYN,
        seq_number: SeqNum(0x0102_0304),
        ack_number: None,
        window_len: 64240,
        urgent_pointer: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        sack_blocks: SackBlocks::new(),
        timestamp: Some(TcpTimestamp {
            tsval: 0x1122_3344,
            tsecr: 0,
        }),
        payload: b"hi",
    }
}

fn emit(repr: &TcpRepr<'_>, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
    let mut buf = std::vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[..]),
        src,
        dst,
        ChecksumMode::Verify,
    )
    .unwrap();
    buf
}

#[test]
fn getters() {
    let bytes = syn_bytes();
    let p = TcpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!((p.src_port(), p.dst_port()), (50000, 80));
    assert_eq!(p.seq_number(), SeqNum(0x0102_0304));
    assert_eq!(p.ack_number(), SeqNum(0));
    assert_eq!(p.header_len(), 40);
    assert_eq!(p.flags(), TcpFlags::SYN);
    assert_eq!(p.window_len(), 64240);
    assert_eq!(p.urgent_at(), 0);
    assert_eq!(p.options(), &LINUX_SYN_OPTIONS);
    assert_eq!(p.payload(), b"hi");
    assert_eq!(p.segment_len(), 3);
    assert!(p.verify_checksum(&SRC, &DST));
    assert_eq!(p.iter_options().count(), 5);
}

#[test]
fn setters() {
    let mut bytes = syn_bytes();
    let mut p = TcpPacket::new_checked(&mut bytes[..]).unwrap();
    p.set_src_port(1);
    p.set_dst_port(2);
    p.set_seq_number(SeqNum(3));
    p.set_ack_number(SeqNum(4));
    p.set_flags(TcpFlags::ACK | TcpFlags::FIN | TcpFlags::AE);
    p.set_window_len(5);
    p.set_urgent_at(6);
    p.set_header_len(24);
    p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
    assert!(!p.verify_checksum(&SRC, &DST));
    p.fill_checksum(&SRC, &DST);
    assert!(p.verify_checksum(&SRC, &DST));
    assert_eq!(
        (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
        (1, 2, SeqNum(3), SeqNum(4))
    );
    assert_eq!(p.flags(), TcpFlags::ACK | TcpFlags::FIN | TcpFlags::AE);
    assert_eq!((p.window_len(), p.urgent_at(), p.header_len()), (5, 6, 24));
    assert_eq!(p.payload().len(), 18);
    p.payload_mut()[0] = 0xee;
    let checksum = p.checksum();
    assert_eq!(&bytes[12..14], &[0x61, 0x11], "offset 6, AE, ACK, FIN");
    assert_eq!(bytes[24], 0xee);
    assert_eq!(u16::from_be_bytes([bytes[16], bytes[17]]), checksum);
}

#[test]
fn set_flags_keeps_offset_and_reserved_bits() {
    let mut bytes = syn_bytes();
    bytes[12] |= 0x0e; // reserved bits
    let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
    p.set_flags(TcpFlags::RST);
    assert_eq!((p.header_len(), p.flags()), (40, TcpFlags::RST));
    assert_eq!(bytes[12], 0xae);
}

#[test]
fn parse_hand_built_syn() {
    let bytes = syn_bytes();
    let p = TcpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify),
        Ok(linux_syn_repr())
    );
}

#[test]
fn urgent_pointer_is_read_only_with_urg() {
    let mut bytes = syn_bytes();
    let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
    p.set_urgent_at(5);
    p.fill_checksum(&SRC, &DST);
    let parse = |b: &[u8]| {
        TcpRepr::parse(
            &TcpPacket::new_unchecked(b),
            &SRC,
            &DST,
            ChecksumMode::Verify,
        )
        .map(|r| r.urgent_pointer)
    };
    assert_eq!(parse(&bytes), Ok(0));
    let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
    p.set_flags(TcpFlags::SYN | TcpFlags::URG);
    p.fill_checksum(&SRC, &DST);
    assert_eq!(parse(&bytes), Ok(5));
}

#[test]
fn emits_exactly_linux_syn_options() {
    let repr = linux_syn_repr();
    assert_eq!(repr.header_len(), 40);
    let bytes = emit(&repr, &SRC, &DST);
    assert_eq!(bytes, syn_bytes());
    assert_eq!(&bytes[20..40], &LINUX_SYN_OPTIONS);
}

#[test]
fn syn_option_layouts_without_the_shared_word() {
    let only_ts = TcpRepr {
        sack_permitted: false,
        max_seg_size: None,
        window_scale: None,
        ..linux_syn_repr()
    };
    assert_eq!(
        &emit(&only_ts, &SRC, &DST)[20..32],
        &[1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0]
    );
    let only_sack_perm = TcpRepr {
        timestamp: None,
        ..linux_syn_repr()
    };
    assert_eq!(only_sack_perm.header_len(), 32);
    assert_eq!(
        &emit(&only_sack_perm, &SRC, &DST)[20..32],
        &[2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]
    );
    let bare = TcpRepr {
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        ..linux_syn_repr()
    };
    assert_eq!(bare.header_len(), 20);
}

fn blocks(n: u32) -> SackBlocks {
    let mut b = SackBlocks::new();
    for i in 0..n {
        b.push(SeqNum(1000 * i), SeqNum(1000 * i + 500));
    }
    b
}

fn ack_repr() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 80,
        dst_port: 50000,
        flags: TcpFlags::ACK,
        seq_number: SeqNum(1),
        ack_number: Some(SeqNum(2)),
        window_len: 512,
        urgent_pointer: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_blocks: blocks(1),
        timestamp: Some(TcpTimestamp { tsval: 5, tsecr: 6 }),
        payload: &[],
    }
}

#[test]
fn non_syn_layout_is_nop_nop_ts_then_nop_nop_sack() {
    let bytes = emit(&ack_repr(), &SRC, &DST);
    assert_eq!(bytes.len(), 20 + 12 + 12);
    assert_eq!(
        &bytes[20..],
        &[1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 1, 0xf4]
    );
}

#[test]
fn sack_blocks_are_cut_to_fit_forty_bytes() {
    let with_ts = TcpRepr {
        sack_blocks: blocks(4),
        ..ack_repr()
    };
    assert_eq!(with_ts.emitted_sack_blocks().len(), 3);
    assert_eq!(with_ts.header_len(), 60);
    let bytes = emit(&with_ts, &SRC, &DST);
    let parsed = TcpRepr::parse(
        &TcpPacket::new_checked(&bytes[..]).unwrap(),
        &SRC,
        &DST,
        ChecksumMode::Verify,
    )
    .unwrap();
    assert_eq!(parsed.sack_blocks, SackBlocks::from_slice(&blocks(4)[..3]));

    let without_ts = TcpRepr {
        sack_blocks: blocks(4),
        timestamp: None,
        ..ack_repr()
    };
    assert_eq!(without_ts.header_len(), 56);
    let bytes = emit(&without_ts, &SRC, &DST);
    let parsed = TcpRepr::parse(
        &TcpPacket::new_checked(&bytes[..]).unwrap(),
        &SRC,
        &DST,
        ChecksumMode::Verify,
    )
    .unwrap();
    assert_eq!(parsed.sack_blocks, blocks(4));
}

#[test]
fn syn_only_options_are_ignored_elsewhere_and_sack_ignored_on_syn() {
    // An ACK carrying MSS, WS and SACK-Permitted (as a buggy peer might send).
    let mut bytes = emit(
        &TcpRepr {
            timestamp: None,
            sack_blocks: SackBlocks::new(),
            ..ack_repr()
        },
        &SRC,
        &DST,
    );
    bytes.extend_from_slice(&[2, 4, 5, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2]);
    let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
    p.set_header_len(32);
    p.fill_checksum(&SRC, &DST);
    let p = TcpPacket::new_checked(&bytes[..]).unwrap();
    let repr = TcpRepr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap();
    assert_eq!(
        (repr.max_seg_size, repr.window_scale, repr.sack_permitted),
        (None, None, false)
    );

    let mut syn = linux_syn_repr();
    syn.sack_blocks = blocks(2);
    assert_eq!(syn.header_len(), 40, "SYN never carries SACK blocks");
}

#[test]
fn emit_sets_ack_from_ack_number_and_clears_stray_urgent() {
    let repr = TcpRepr {
        flags: TcpFlags::PSH,
        ack_number: Some(SeqNum(9)),
        urgent_pointer: 77,
        ..ack_repr()
    };
    let bytes = emit(&repr, &SRC, &DST);
    let p = TcpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(p.flags(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(p.urgent_at(), 0);
    let no_ack = TcpRepr {
        flags: TcpFlags::ACK | TcpFlags::RST,
        ack_number: None,
        ..ack_repr()
    };
    let bytes = emit(&no_ack, &SRC, &DST);
    let p = TcpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!((p.flags(), p.ack_number()), (TcpFlags::RST, SeqNum(0)));
}

#[test]
fn emit_checksum_modes_and_small_buffers() {
    let repr = ack_repr();
    let mut buf = std::vec![0xffu8; repr.buffer_len() + 10];
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    repr.emit(&mut p, &SRC, &DST, ChecksumMode::Ignore).unwrap();
    assert_eq!(p.checksum(), 0);
    repr.emit(&mut p, &SRC, &DST, ChecksumMode::Verify).unwrap();
    let len = repr.buffer_len();
    assert!(TcpPacket::new_unchecked(&buf[..len]).verify_checksum(&SRC, &DST));
    assert_eq!(buf[len], 0xff, "bytes past the segment are untouched");
    let mut short = std::vec![0u8; repr.buffer_len() - 1];
    assert_eq!(
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut short[..]),
            &SRC,
            &DST,
            ChecksumMode::Verify
        ),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn malformed_segments() {
    let bytes = syn_bytes();
    let check = |b: &[u8]| TcpPacket::new_checked(b).err();
    assert_eq!(check(&bytes[..19]), Some(Error::Truncated));
    assert_eq!(
        check(&bytes[..39]),
        Some(Error::BadTcpOffset),
        "offset past the end"
    );
    for offset in 0..5u8 {
        let mut b = bytes.clone();
        b[12] = offset << 4;
        assert_eq!(check(&b), Some(Error::BadTcpOffset), "offset {offset}");
    }
    fn parse(b: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(
            &TcpPacket::new_unchecked(b),
            &SRC,
            &DST,
            ChecksumMode::Verify,
        )
    }
    assert_eq!(parse(&bytes[..3]), Err(Error::Truncated));

    let mut corrupt = bytes.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert_eq!(parse(&corrupt), Err(Error::BadTcpChecksum));
    let ignored = TcpRepr::parse(
        &TcpPacket::new_unchecked(&corrupt[..]),
        &SRC,
        &DST,
        ChecksumMode::Ignore,
    );
    assert_eq!(ignored.map(|r| r.payload), Ok(&b"hh"[..]));
    // Wrong pseudo-header: the right bytes to the wrong address.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
    assert_eq!(
        TcpRepr::parse(
            &TcpPacket::new_unchecked(&bytes[..]),
            &SRC,
            &other,
            ChecksumMode::Verify
        ),
        Err(Error::BadTcpChecksum)
    );

    for bad_options in [
        [2u8, 0, 0, 0],
        [1, 1, 1, 1],
        [8, 12, 0, 0],
        [3, 2, 1, 1],
        [1, 1, 1, 5],
    ] {
        let mut b = bytes[..20].to_vec();
        b[12] = 0x60;
        b.extend_from_slice(&bad_options);
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(&SRC, &DST);
        let expect = if bad_options == [1, 1, 1, 1] {
            Ok(())
        } else {
            Err(Error::BadTcpOption)
        };
        assert_eq!(parse(&b).map(|_| ()), expect, "{bad_options:?}");
    }
}

#[test]
fn flags_display_and_bit_ops() {
    assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "SYN|ACK");
    assert_eq!(TcpFlags::empty().to_string(), "-");
    assert_eq!(
        TcpFlags::from_bits_truncate(0xffff).to_string(),
        "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR|AE"
    );
    assert_eq!(std::format!("{:?}", TcpFlags::FIN), "TcpFlags(FIN)");
    let mut f = TcpFlags::SYN;
    f.insert(TcpFlags::ECE | TcpFlags::CWR);
    assert!(
        f.contains(TcpFlags::ECE | TcpFlags::CWR) && !f.contains(TcpFlags::ACK | TcpFlags::SYN)
    );
    assert!(f.intersects(TcpFlags::ACK | TcpFlags::SYN));
    f.remove(TcpFlags::SYN);
    f.set(TcpFlags::URG, true);
    f |= TcpFlags::PSH;
    assert_eq!(f.bits(), 0x0e8);
    assert_eq!(f & TcpFlags::URG, TcpFlags::URG);
    f.set(TcpFlags::URG, false);
    assert!(!f.contains(TcpFlags::URG) && !f.is_empty());
}

// ---- property tests ----

fn arb_addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(s, d)| (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(s, d)| (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())),
    ]
}

/// Everything a `TcpRepr` holds except the borrowed payload.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    ports: (u16, u16),
    flags: u16,
    seq: u32,
    ack: Option<u32>,
    window: u16,
    urgent: u16,
    mss: Option<u16>,
    ws: Option<u8>,
    sack_permitted: bool,
    sack: Vec<(u32, u32)>,
    ts: Option<(u32, u32)>,
}

pub(crate) fn arb_fields() -> impl Strategy<Value = Fields> {
    (
        (any::<u16>(), any::<u16>()),
        0u16..0x200,
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        any::<u16>(),
        any::<u16>(),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
        ),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
        proptest::option::of(any::<(u32, u32)>()),
    )
        .prop_map(
            |(ports, flags, seq, ack, window, urgent, (mss, ws, sack_permitted), sack, ts)| {
                Fields {
                    ports,
                    flags,
                    seq,
                    ack,
                    window,
                    urgent,
                    mss,
                    ws,
                    sack_permitted,
                    sack,
                    ts,
                }
            },
        )
}

pub(crate) fn repr_of<'a>(f: &Fields, payload: &'a [u8]) -> TcpRepr<'a> {
    let mut sack_blocks = SackBlocks::new();
    for &(l, r) in &f.sack {
        sack_blocks.push(SeqNum(l), SeqNum(r));
    }
    TcpRepr {
        src_port: f.ports.0,
        dst_port: f.ports.1,
        flags: TcpFlags::from_bits_truncate(f.flags),
        seq_number: SeqNum(f.seq),
        ack_number: f.ack.map(SeqNum),
        window_len: f.window,
        urgent_pointer: f.urgent,
        max_seg_size: f.mss,
        window_scale: f.ws,
        sack_permitted: f.sack_permitted,
        sack_blocks,
        timestamp: f.ts.map(|(tsval, tsecr)| TcpTimestamp { tsval, tsecr }),
        payload,
    }
}

/// What parse(emit(repr)) must give back: the documented emit rules applied to `repr`.
pub(crate) fn expected(mut r: TcpRepr<'_>) -> TcpRepr<'_> {
    r.flags.set(TcpFlags::ACK, r.ack_number.is_some());
    if !r.flags.contains(TcpFlags::URG) {
        r.urgent_pointer = 0;
    }
    if r.flags.contains(TcpFlags::SYN) {
        r.sack_blocks = SackBlocks::new();
    } else {
        r.max_seg_size = None;
        r.window_scale = None;
        r.sack_permitted = false;
        r.sack_blocks
            .truncate(if r.timestamp.is_some() { 3 } else { 4 });
    }
    r
}

proptest! {
    #[test]
    fn round_trip_all_option_combinations(
        fields in arb_fields(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        (src, dst) in arb_addrs(),
    ) {
        let repr = repr_of(&fields, &payload);
        let bytes = emit(&repr, &src, &dst);
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert!(repr.header_len() % 4 == 0 && repr.header_len() <= 60);
        let packet = TcpPacket::new_checked(&bytes[..])?;
        prop_assert_eq!(packet.header_len(), repr.header_len());
        prop_assert!(packet.verify_checksum(&src, &dst));
        let parsed = TcpRepr::parse(&packet, &src, &dst, ChecksumMode::Verify)?;
        prop_assert_eq!(parsed, expected(repr));
        prop_assert_eq!(parsed.segment_len(), packet.segment_len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..]), &SRC, &DST, ChecksumMode::Ignore);
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
            let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.segment_len());
            let _ = p.verify_checksum(&SRC, &DST);
            prop_assert_eq!(p.options().len() + 20 + p.payload().len(), bytes.len());
            for option in p.iter_options() {
                let _ = option;
            }
            let _ = p.into_payload();
        }
    }

    #[test]
    fn corrupted_segments_never_panic(
        fields in arb_fields(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<proptest::sample::Index>(),
    ) {
        let repr = repr_of(&fields, b"payload");
        let mut bytes = emit(&repr, &SRC, &DST);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..]), &SRC, &DST, ChecksumMode::Verify);
        let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..]), &SRC, &DST, ChecksumMode::Ignore);
    }
}
