//! Frames the Linux kernel sent in the lab (see fixtures/README.md): tern-wire must read every
//! field as tcpdump does, verify their checksums, and re-emit the same TCP header bytes.

use core::net::IpAddr;
use tern_wire::pcap::PcapReader;
use tern_wire::{
    parse_frame, ChecksumMode, Frame, SeqNum, TcpFlags, TcpPacket, TcpRepr, TcpTimestamp,
};

fn frame(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.pcap", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut records = PcapReader::new(&file).expect("pcap header");
    let record = records.next().expect("one record").expect("valid record");
    assert!(records.next().is_none(), "{name}: one frame per fixture");
    record.data.to_vec()
}

fn tcp<'a>(f: &Frame<'a>) -> (IpAddr, IpAddr, TcpRepr<'a>) {
    let ip = f.ip().expect("IP");
    (ip.src_addr(), ip.dst_addr(), *f.tcp().expect("TCP"))
}

/// Emitting the parsed representation reproduces the kernel's TCP header byte for byte.
fn assert_reemits(raw: &[u8], name: &str) {
    let f = parse_frame(raw, ChecksumMode::Verify).unwrap();
    let (src, dst, repr) = tcp(&f);
    let ip_start = f.eth.header_len();
    let ip_len = f.ip().unwrap().header_len();
    let original = &raw[ip_start + ip_len..ip_start + ip_len + repr.buffer_len()];
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut out[..]),
        &src,
        &dst,
        ChecksumMode::Verify,
    )
    .unwrap();
    assert_eq!(
        out, original,
        "{name}: re-emitted segment differs from the kernel's"
    );
}

#[test]
fn syn_v4_carries_linux_default_options() {
    let raw = frame("syn_v4");
    let f = parse_frame(&raw, ChecksumMode::Verify).unwrap();
    let (src, dst, syn) = tcp(&f);
    assert_eq!(
        (src.to_string().as_str(), dst.to_string().as_str()),
        ("198.18.0.2", "198.18.0.1")
    );
    assert_eq!((syn.src_port, syn.dst_port), (56404, 5000));
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.seq_number, SeqNum(3_922_918_642));
    assert_eq!(syn.ack_number, None);
    assert_eq!(syn.window_len, 64240);
    assert_eq!(syn.max_seg_size, Some(1460));
    assert!(syn.sack_permitted);
    assert_eq!(
        syn.timestamp,
        Some(TcpTimestamp {
            tsval: 1_194_264_154,
            tsecr: 0
        })
    );
    assert_eq!(syn.window_scale, Some(10));
    assert_reemits(&raw, "syn_v4");
}

#[test]
fn syn_ack_v4_answers_the_syn() {
    let raw = frame("syn_ack_v4");
    let f = parse_frame(&raw, ChecksumMode::Verify).unwrap();
    let (_, _, s) = tcp(&f);
    assert_eq!(s.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(s.seq_number, SeqNum(2_455_738_136));
    assert_eq!(s.ack_number, Some(SeqNum(3_922_918_643)));
    assert_eq!(s.window_len, 65160);
    assert_eq!(
        s.timestamp,
        Some(TcpTimestamp {
            tsval: 2_480_825_626,
            tsecr: 1_194_264_154
        })
    );
    assert_eq!(
        (s.max_seg_size, s.window_scale, s.sack_permitted),
        (Some(1460), Some(10), true)
    );
    assert_reemits(&raw, "syn_ack_v4");
}

#[test]
fn data_v4_is_a_full_segment() {
    let raw = frame("data_v4");
    let f = parse_frame(&raw, ChecksumMode::Verify).unwrap();
    assert_eq!(f.ip().unwrap().payload_len(), 1480);
    let (_, _, d) = tcp(&f);
    assert_eq!(d.flags, TcpFlags::ACK);
    assert_eq!(d.payload.len(), 1448);
    assert_eq!(d.window_len, 63);
    assert_eq!(d.ack_number, Some(SeqNum(2_455_738_137)));
    // The echo test's payload: byte i is (i * 7 + 3) mod 256.
    assert!(d
        .payload
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i * 7 + 3) as u8));
    assert_reemits(&raw, "data_v4");
}

#[test]
fn fin_and_rst() {
    let raw = frame("fin_v4");
    let (_, _, fin) = tcp(&parse_frame(&raw, ChecksumMode::Verify).unwrap());
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.seq_number, SeqNum(3_922_923_643));
    assert_reemits(&raw, "fin_v4");

    let raw = frame("rst_v4");
    let (_, _, rst) = tcp(&parse_frame(&raw, ChecksumMode::Verify).unwrap());
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(
        (rst.seq_number, rst.window_len, rst.timestamp),
        (SeqNum(0), 0, None)
    );
    assert_eq!(rst.ack_number, Some(SeqNum(2_403_755_234)));
    assert_reemits(&raw, "rst_v4");
}

#[test]
fn syn_v6_uses_the_ipv6_pseudo_header() {
    let raw = frame("syn_v6");
    let f = parse_frame(&raw, ChecksumMode::Verify).unwrap();
    let (src, dst, syn) = tcp(&f);
    assert_eq!(
        (src.to_string().as_str(), dst.to_string().as_str()),
        ("2001:2::2", "2001:2::1")
    );
    assert_eq!(syn.max_seg_size, Some(1440));
    assert_eq!(syn.seq_number, SeqNum(4_219_962_612));
    assert_reemits(&raw, "syn_v6");
}

#[test]
fn corrupted_fixtures_fail_their_checksums() {
    for name in ["syn_v4", "data_v4", "syn_v6"] {
        let mut raw = frame(name);
        let last = raw.len() - 1;
        raw[last] ^= 0x40;
        assert!(
            parse_frame(&raw, ChecksumMode::Verify).is_err(),
            "{name}: flipped bit not caught"
        );
        assert!(
            parse_frame(&raw, ChecksumMode::Ignore).is_ok(),
            "{name}: ignore mode still parses"
        );
    }
}
