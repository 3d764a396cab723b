//! The flood generator's frames: every shape, IPv4 and IPv6, over many random sources and
//! ports, parse with both checksums verified (so the incremental RFC 1624 patching is right),
//! say what the shape says, and are byte for byte what `tern-wire` emits from scratch for the
//! same fields. Also the reflect rewrite.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use tern_bench::frames::{FrameGen, FrameSpec, Shape};
use tern_bench::net::Cidr;
use tern_bench::reflect::reflect_in_place;
use tern_bpf::{FloodProgram, XdpAction};
use tern_wire::{emit_tcp_frame, parse_frame, ChecksumMode, IpRepr, SeqNum, TcpFlags};

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];

fn spec(shape: Shape, v6: bool, src: &str) -> FrameSpec {
    let dst: SocketAddr = if v6 {
        "[2001:2::1]:8080".parse().unwrap()
    } else {
        "198.18.0.1:8080".parse().unwrap()
    };
    FrameSpec {
        shape,
        src_mac: SRC_MAC,
        dst_mac: DST_MAC,
        src: src.parse().unwrap(),
        dst,
    }
}

fn check_shape(shape: Shape, v6: bool, src: &str, seed: u64, n: usize) {
    let mut gen = FrameGen::new(&spec(shape, v6, src), seed).unwrap();
    let len = gen.len();
    check_frames(shape, v6, src, seed, n, &mut |buf| {
        let filled = gen.fill(buf);
        assert_eq!(filled, len);
        filled
    });
}

/// Checks `n` frames from `next` (which writes one into the buffer and returns its length).
fn check_frames(
    shape: Shape,
    v6: bool,
    src: &str,
    seed: u64,
    n: usize,
    next: &mut dyn FnMut(&mut [u8]) -> usize,
) {
    let spec = spec(shape, v6, src);
    let cidr: Cidr = src.parse().unwrap();
    let mut buf = [0u8; 256];
    let mut sources = HashSet::new();
    let mut ports = HashSet::new();
    for i in 0..n {
        let len = next(&mut buf);
        let frame = &buf[..len];
        let parsed = parse_frame(frame, ChecksumMode::Verify).unwrap_or_else(|e| {
            panic!("{shape:?} v6={v6} seed {seed} frame {i}: {e:?}\n{frame:02x?}")
        });
        assert_eq!(parsed.eth.src.0, SRC_MAC);
        assert_eq!(parsed.eth.dst.0, DST_MAC);
        let ip = *parsed.ip().unwrap();
        assert!(
            cidr.contains(ip.src_addr()),
            "{} not in {cidr}",
            ip.src_addr()
        );
        assert_eq!(ip.dst_addr(), spec.dst.ip());
        assert_eq!(ip.hop_limit(), 64);
        let tcp = *parsed.tcp().unwrap();
        assert_eq!(tcp.dst_port, 8080);
        assert!(tcp.src_port >= 1024);
        assert!(tcp.payload.is_empty());
        match shape {
            Shape::Syn => {
                assert_eq!(tcp.flags, TcpFlags::SYN);
                assert_eq!(tcp.max_seg_size, None);
                assert_eq!(tcp.timestamp, None);
                assert_eq!(len, if v6 { 74 } else { 54 });
            }
            Shape::LinuxSyn => {
                assert_eq!(tcp.flags, TcpFlags::SYN);
                assert_eq!(tcp.max_seg_size, Some(if v6 { 1440 } else { 1460 }));
                assert!(tcp.sack_permitted);
                assert_eq!(tcp.window_scale, Some(7));
                assert_eq!(tcp.window_len, 64240);
                assert_eq!(tcp.timestamp.unwrap().tsecr, 0);
                assert_eq!(len, if v6 { 94 } else { 74 });
            }
            Shape::Ack => {
                assert_eq!(tcp.flags, TcpFlags::ACK);
                assert!(tcp.ack_number.is_some());
                assert!(tcp.timestamp.is_some());
            }
        }
        // Byte for byte what tern-wire builds from scratch with a full checksum.
        let ip_repr = IpRepr::new(ip.src_addr(), ip.dst_addr(), ip.protocol(), 0, 64).unwrap();
        let mut fresh = [0u8; 256];
        let flen = emit_tcp_frame(&parsed.eth, &ip_repr, &tcp, &mut fresh).unwrap();
        assert_eq!(&fresh[..flen], frame, "{shape:?} v6={v6} frame {i}");
        sources.insert(ip.src_addr());
        ports.insert(tcp.src_port);
    }
    // Random enough: with 2^15 or more sources to draw from, nearly every frame has its own.
    let host_bits = if v6 { 128 } else { 32 } - u32::from(cidr.len);
    if host_bits >= 15 {
        assert!(
            sources.len() > n * 8 / 10,
            "{} sources in {n}",
            sources.len()
        );
    } else {
        assert!(sources.len() > (n / 4).min(1 << (host_bits - 1)));
    }
    assert!(ports.len() > n / 2, "{} ports in {n}", ports.len());
}

#[test]
fn every_shape_v4_parses_with_verified_checksums() {
    for shape in Shape::ALL {
        for seed in [1, 2, 0xdead_beef] {
            check_shape(shape, false, "198.18.128.0/17", seed, 3000);
        }
    }
}

#[test]
fn every_shape_v6_parses_with_verified_checksums() {
    for shape in Shape::ALL {
        for seed in [1, 7, 0x1234_5678_9abc] {
            check_shape(shape, true, "2001:2:0:8000::/49", seed, 3000);
        }
    }
}

/// The live-frames path: `bpf/tern_flood.bpf.c`, configured from the same template, run once
/// per frame through BPF_PROG_RUN (no interface) must build frames that pass the same checks.
/// Needs CAP_BPF, as every test of tern-bpf that loads a program.
#[test]
fn the_bpf_generator_builds_the_same_frames() {
    for (v6, src) in [
        (false, "198.18.128.0/17"),
        (true, "2001:2:0:8000::/49"),
        (false, "198.18.200.6/31"),
        (true, "2001:2::ab00/120"),
    ] {
        for shape in Shape::ALL {
            let gen = FrameGen::new(&spec(shape, v6, src), 1).unwrap();
            let prog = FloodProgram::load(gen.template(), &gen.live_config())
                .unwrap_or_else(|e| panic!("loading tern_flood for {shape:?} v6={v6}: {e}"));
            let n = if src.ends_with("/31") { 100 } else { 1000 };
            check_frames(shape, v6, src, 0, n, &mut |buf| {
                let (action, frame) = prog.build_one().unwrap();
                assert_eq!(action, XdpAction::Tx);
                assert_eq!(frame.len(), gen.len());
                buf[..frame.len()].copy_from_slice(&frame);
                frame.len()
            });
            let counters = prog.counters().unwrap();
            assert_eq!((counters.built, counters.aborted), (n as u64, 0));
        }
    }
}

#[test]
fn narrow_and_odd_prefixes() {
    // A /31 (two sources) and a /32 (one), and an IPv6 /120: the host bits are all that vary.
    for shape in Shape::ALL {
        let spec4 = spec(shape, false, "198.18.200.6/31");
        let mut gen = FrameGen::new(&spec4, 9).unwrap();
        let mut buf = [0u8; 256];
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let len = gen.fill(&mut buf);
            let f = parse_frame(&buf[..len], ChecksumMode::Verify).unwrap();
            seen.insert(f.ip().unwrap().src_addr());
        }
        assert_eq!(seen.len(), 2);
        let spec1 = spec(shape, false, "198.19.255.255/32");
        let mut gen = FrameGen::new(&spec1, 9).unwrap();
        for _ in 0..200 {
            let len = gen.fill(&mut buf);
            let f = parse_frame(&buf[..len], ChecksumMode::Verify).unwrap();
            assert_eq!(
                f.ip().unwrap().src_addr(),
                "198.19.255.255".parse::<IpAddr>().unwrap()
            );
        }
        check_shape(shape, true, "2001:2::ab00/120", 3, 200);
    }
}

#[test]
fn mixed_families_are_refused() {
    let mut s = spec(Shape::Syn, false, "2001:2:0:8000::/49");
    assert!(FrameGen::new(&s, 1).is_err());
    s.src = "198.18.128.0/17".parse().unwrap();
    assert!(FrameGen::new(&s, 1).is_ok());
}

#[test]
fn reflect_turns_syns_into_valid_syn_acks() {
    for v6 in [false, true] {
        for shape in Shape::ALL {
            let src = if v6 {
                "2001:2:0:8000::/49"
            } else {
                "198.18.128.0/17"
            };
            let mut gen = FrameGen::new(&spec(shape, v6, src), 5).unwrap();
            let mut buf = [0u8; 256];
            for _ in 0..500 {
                let len = gen.fill(&mut buf);
                let before = parse_frame(&buf[..len], ChecksumMode::Verify).unwrap();
                let (ip0, tcp0, eth0) = (*before.ip().unwrap(), *before.tcp().unwrap(), before.eth);
                let mut out = buf;
                assert!(reflect_in_place(&mut out[..len], true));
                let after = parse_frame(&out[..len], ChecksumMode::Verify).unwrap();
                let (ip1, tcp1) = (after.ip().unwrap(), after.tcp().unwrap());
                assert_eq!(after.eth.src, eth0.dst);
                assert_eq!(after.eth.dst, eth0.src);
                assert_eq!(ip1.src_addr(), ip0.dst_addr());
                assert_eq!(ip1.dst_addr(), ip0.src_addr());
                assert_eq!(
                    (tcp1.src_port, tcp1.dst_port),
                    (tcp0.dst_port, tcp0.src_port)
                );
                if shape == Shape::Ack {
                    assert_eq!(tcp1.flags, TcpFlags::ACK);
                    assert_eq!(tcp1.seq_number, tcp0.seq_number);
                } else {
                    assert_eq!(tcp1.flags, TcpFlags::SYN | TcpFlags::ACK);
                    assert_eq!(tcp1.ack_number, Some(tcp0.seq_number + 1u32));
                    assert_eq!(tcp1.seq_number, SeqNum(!tcp0.seq_number.0));
                }
                // Plain swap: still valid, flags untouched.
                let mut swap = buf;
                assert!(reflect_in_place(&mut swap[..len], false));
                let s = parse_frame(&swap[..len], ChecksumMode::Verify).unwrap();
                assert_eq!(s.tcp().unwrap().flags, tcp0.flags);
            }
        }
    }
    // Not TCP: left for the caller to drop.
    let mut arp = [0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(!reflect_in_place(&mut arp, true));
    assert!(!reflect_in_place(&mut [0u8; 10], true));
}
