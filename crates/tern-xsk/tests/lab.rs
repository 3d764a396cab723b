//! AF_XDP sockets in the veth lab: receive the client's UDP datagrams on `veth-srv` queue 0
//! through libxdp's default program (copy mode: veth has no zero-copy), answer them in place,
//! and check the errors, the statistics and the clean-up. Every wait is bounded.
//!
//! Needs root (network namespaces, XDP); `TERN_SKIP_LAB=1` skips explicitly.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tern_lab::{addr, lab_available, run, Capture, Lab, LabConfig, Side};
use tern_wire::checksum::{self, pseudo_header_v4};
use tern_wire::frame::{parse_frame, L3, L4};
use tern_wire::{ChecksumMode, IpProtocol, Ipv4Packet};
use tern_xsk::{BindMode, BusyPoll, XdpProgram, XskConfig, XskError, XskSocket, ZeroCopy};

const PORT: u16 = 7777;
const WAIT: Duration = Duration::from_secs(10);
static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Small rings keep the UMEM small; the sizing rule still holds.
fn config() -> XskConfig {
    XskConfig {
        frame_count: 4 * 512,
        fill_ring: 512,
        completion_ring: 512,
        rx_ring: 512,
        tx_ring: 512,
        program: XdpProgram::LibxdpDefault,
        ..XskConfig::default()
    }
}

fn lab(queues: u32) -> Lab {
    let lab = Lab::up(LabConfig {
        queues: Some(queues),
        client_addrs: 0,
    });
    // libxdp's program sends the whole queue to the socket, ARP included, so the server's kernel
    // would not answer the client's ARP: give the client a permanent entry instead.
    let mac = run(lab
        .command(Side::Server, "cat")
        .arg("/sys/class/net/veth-srv/address"));
    run(lab.command(Side::Client, "ip").args([
        "neigh",
        "replace",
        &addr::SERVER_V4.to_string(),
        "lladdr",
        mac.trim(),
        "dev",
        "veth-cli",
        "nud",
        "permanent",
    ]));
    lab
}

/// `ip -d link show veth-srv` in the server namespace.
fn xdp_state(lab: &Lab) -> String {
    run(lab
        .command(Side::Server, "ip")
        .args(["-d", "link", "show", "dev", "veth-srv"]))
}

fn has_xdp(link: &str) -> bool {
    link.contains("prog/xdp") || link.split_whitespace().any(|w| w.starts_with("xdp"))
}

/// A UDP/IPv4 datagram parsed from a frame.
struct Udp<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    payload: &'a [u8],
    /// Whether the frame ends where the IP packet ends (no trailing bytes).
    exact: bool,
}

/// Parses `frame` with tern-wire (IPv4 header checksum verified) and checks the UDP checksum
/// (panicking if it is wrong); `None` for anything but a UDP/IPv4 datagram.
fn udp(frame: &[u8]) -> Option<Udp<'_>> {
    let parsed = parse_frame(frame, ChecksumMode::Verify).ok()?;
    let L3::Ip {
        ip,
        l4: L4::Other {
            protocol: IpProtocol::Udp,
            payload: udp,
        },
    } = parsed.l3
    else {
        return None;
    };
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (ip.src_addr(), ip.dst_addr()) else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if len < 8 || len > udp.len() {
        return None;
    }
    let sum = u16::from_be_bytes([udp[6], udp[7]]);
    let ok = sum == 0
        || pseudo_header_v4(&src, &dst, IpProtocol::Udp, len as u16)
            .add_bytes(&udp[..len])
            .finish()
            == 0;
    assert!(ok, "wrong UDP checksum: {frame:02x?}");
    Some(Udp {
        src: SocketAddr::new(src.into(), u16::from_be_bytes([udp[0], udp[1]])),
        dst: SocketAddr::new(dst.into(), u16::from_be_bytes([udp[2], udp[3]])),
        payload: &udp[8..len],
        exact: frame.len() == 14 + 20 + len,
    })
}

/// A datagram to the server's `PORT`.
fn udp_to_server(frame: &[u8]) -> Option<Udp<'_>> {
    udp(frame).filter(|u| u.dst == SocketAddr::from((addr::SERVER_V4, PORT)))
}

/// Turns the datagram in `frame` into its answer, in place: Ethernet and IP addresses and UDP
/// ports swapped, payload upper-cased, a new IP ident and TTL, both checksums recomputed.
fn answer_in_place(frame: &mut [u8]) {
    let (dst, src) = frame.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).expect("parsed before");
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(d);
    ip.set_dst_addr(s);
    ip.set_ident(ip.ident().wrapping_add(0x4242));
    ip.set_ttl(64);
    ip.fill_checksum();
    let udp = ip.payload_mut();
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let (sp, rest) = udp.split_at_mut(2);
    sp.swap_with_slice(&mut rest[..2]);
    udp[8..len].make_ascii_uppercase();
    udp[6..8].fill(0);
    let mut sum = pseudo_header_v4(&d, &s, IpProtocol::Udp, len as u16)
        .add_bytes(&udp[..len])
        .finish();
    if sum == 0 {
        sum = 0xffff; // RFC 768: a computed zero is sent as all ones
    }
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    // Sanity check of the helper itself with tern-wire's plain checksum.
    debug_assert_eq!(checksum::data(&frame[14..34]), 0);
}

/// What the server thread saw.
#[derive(Debug)]
struct ServerReport {
    bind_mode: BindMode,
    answered: BTreeSet<Vec<u8>>,
    lost_frames: i64,
    stats_ok: bool,
}

/// Runs an echo server on an `XskSocket` until `expected` distinct payloads were answered or
/// the deadline passes.
fn echo_server(
    config: XskConfig,
    expected: usize,
    ready: mpsc::Sender<Result<(), String>>,
) -> ServerReport {
    let opened = Instant::now();
    let mut xsk = match XskSocket::open("veth-srv", 0, &config) {
        Ok(xsk) => xsk,
        Err(e) => {
            ready.send(Err(e.to_string())).unwrap();
            panic!("open: {e}");
        }
    };
    let total = xsk.frame_counts();
    let total = total.free + total.fill + total.app + total.tx;
    eprintln!("server: opened in {:?}", opened.elapsed());
    ready.send(Ok(())).unwrap();
    let mut answered = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while answered.len() < expected && Instant::now() < deadline {
        xsk.refill().unwrap();
        xsk.poll_wait(Duration::from_millis(20)).unwrap();
        xsk.recv(64, |mut frame| {
            let Some(udp) = udp_to_server(frame.data()) else {
                return; // ND, MLD, ...: recycled on drop
            };
            assert_eq!(udp.src.ip(), IpAddr::from(addr::CLIENT_V4));
            answered.insert(udp.payload.to_vec());
            answer_in_place(&mut frame.frame_mut());
            frame.send();
        })
        .unwrap();
        xsk.flush_tx().unwrap();
    }
    // Let the last completions come back, then count every frame.
    let settle = Instant::now() + Duration::from_secs(2);
    while xsk.frame_counts().tx > 0 && Instant::now() < settle {
        xsk.flush_tx().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let counts = xsk.frame_counts();
    assert_eq!(counts.app, 0, "frames still lent out: {counts:?}");
    assert_eq!(
        counts.tx, 0,
        "transmitted frames never completed: {counts:?}"
    );
    let c = xsk.counters();
    assert_eq!(c.bad_descs, 0, "{c:?}");
    assert!(c.tx_kicks > 0 && c.tx_packets >= expected as u64, "{c:?}");
    let stats = xsk.statistics();
    eprintln!("server: {:?} {c:?} {stats:?}", xsk.bind_mode());
    ServerReport {
        bind_mode: xsk.bind_mode(),
        answered,
        lost_frames: i64::from(total) - i64::from(counts.free + counts.fill),
        stats_ok: stats.is_ok(),
    }
}

/// Sends `n` datagrams and collects the answers, resending unanswered ones every 500 ms.
fn echo_client(n: usize) -> BTreeSet<Vec<u8>> {
    let sock = UdpSocket::bind((addr::CLIENT_V4, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let to = SocketAddr::from((addr::SERVER_V4, PORT));
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("hello tern {i:03}").into_bytes())
        .collect();
    let mut answers = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    let mut last_send = Instant::now() - Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    while answers.len() < n && Instant::now() < deadline {
        if last_send.elapsed() > Duration::from_millis(500) {
            for p in &payloads {
                if !answers.contains(&p.to_ascii_uppercase()) {
                    sock.send_to(p, to).unwrap();
                }
            }
            last_send = Instant::now();
        }
        if let Ok((len, from)) = sock.recv_from(&mut buf) {
            assert_eq!(from, to, "answer from the wrong address");
            answers.insert(buf[..len].to_vec());
        }
    }
    answers
}

fn echo_roundtrip(lab: &Lab, config: XskConfig) {
    const N: usize = 32;
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = lab.spawn_in(Side::Server, move || echo_server(config, N, ready_tx));
    ready_rx
        .recv_timeout(WAIT)
        .expect("server thread never opened its socket")
        .expect("open failed");
    let pcap = std::env::temp_dir().join(format!(
        "tern-xsk-echo-{}-{}.pcap",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let capture = Capture::start(lab, Side::Client, &pcap);
    assert!(
        has_xdp(&xdp_state(lab)),
        "libxdp's program is not attached:\n{}",
        xdp_state(lab)
    );
    let answers = lab
        .spawn_in(Side::Client, || echo_client(N))
        .join()
        .unwrap();
    let report = server.join().unwrap();
    // The answers as they were on the wire: exactly as long as the IP packet they carry, from
    // the server's port to the client's, with valid checksums (checked by `udp`).
    let is_answer =
        |f: &Vec<u8>| udp(f).is_some_and(|u| u.src == SocketAddr::from((addr::SERVER_V4, PORT)));
    let frames = capture.wait_for(WAIT, |fs| fs.iter().filter(|f| is_answer(f)).count() >= N);
    let wire: Vec<Udp<'_>> = frames
        .iter()
        .filter(|f| is_answer(f))
        .filter_map(|f| udp(f))
        .collect();
    assert!(wire.len() >= N, "captured {} answers of {N}", wire.len());
    for u in &wire {
        assert!(u.exact, "an answer frame has bytes after its IP packet");
        assert_eq!(u.dst.ip(), IpAddr::from(addr::CLIENT_V4));
        assert!(u.payload.starts_with(b"HELLO TERN "), "{:?}", u.payload);
    }
    drop(capture);
    let _ = std::fs::remove_file(&pcap);

    let expected: BTreeSet<Vec<u8>> = (0..N)
        .map(|i| format!("HELLO TERN {i:03}").into_bytes())
        .collect();
    assert_eq!(answers, expected, "the client's answers");
    assert_eq!(report.answered.len(), N, "server saw {:?}", report.answered);
    assert_eq!(report.bind_mode, BindMode::Copy, "veth only does copy mode");
    assert_eq!(report.lost_frames, 0);
    assert!(report.stats_ok, "XDP_STATISTICS unreadable");
    // Dropping the socket detached libxdp's program.
    let link = xdp_state(lab);
    assert!(
        !has_xdp(&link),
        "an XDP program is left on veth-srv:\n{link}"
    );
}

#[test]
fn udp_echo_in_place_copy_mode() {
    if !lab_available() {
        return;
    }
    let lab = lab(1);
    // ZeroCopy::Auto falls back to copy mode on veth.
    echo_roundtrip(&lab, config());
    // Again with busy polling and with zero-copy off, on a socket opened after the first closed.
    echo_roundtrip(
        &lab,
        XskConfig {
            zero_copy: ZeroCopy::Off,
            busy_poll: Some(BusyPoll::default()),
            ..config()
        },
    );
    // And without need_wakeup: every flush kicks.
    echo_roundtrip(
        &lab,
        XskConfig {
            need_wakeup: false,
            ..config()
        },
    );
}

#[test]
fn statistics_count_fill_ring_starvation() {
    if !lab_available() {
        return;
    }
    let lab = lab(1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let server = lab.spawn_in(Side::Server, move || {
        let mut xsk = XskSocket::open("veth-srv", 0, &config()).unwrap();
        let before = xsk.statistics().unwrap();
        ready_tx.send(()).unwrap();
        // The fill ring is empty (no refill yet): the kernel has nowhere to put packets.
        sent_rx.recv_timeout(WAIT).unwrap();
        let deadline = Instant::now() + WAIT;
        let mut starved = xsk.statistics().unwrap();
        while starved.rx_fill_ring_empty_descs + starved.rx_dropped
            == before.rx_fill_ring_empty_descs + before.rx_dropped
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
            starved = xsk.statistics().unwrap();
        }
        let mut frames = Vec::new();
        assert_eq!(
            xsk.rx_batch(&mut frames, 64).unwrap(),
            0,
            "received without fill frames"
        );
        // Refilled, it receives again.
        xsk.refill().unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + WAIT;
        while frames.is_empty() && Instant::now() < deadline {
            xsk.poll_wait(Duration::from_millis(20)).unwrap();
            xsk.rx_batch(&mut frames, 64).unwrap();
        }
        let received = frames.len();
        for f in frames {
            xsk.recycle(f);
        }
        (before, starved, received)
    });
    let client = |n: usize| {
        lab.spawn_in(Side::Client, move || {
            let sock = UdpSocket::bind((addr::CLIENT_V4, 0)).unwrap();
            for _ in 0..n {
                sock.send_to(b"starve", (addr::SERVER_V4, PORT)).unwrap();
            }
        })
        .join()
        .unwrap()
    };
    ready_rx.recv_timeout(WAIT).unwrap();
    client(20);
    sent_tx.send(()).unwrap();
    ready_rx.recv_timeout(WAIT).unwrap();
    // Keep sending until the refilled socket has something (bounded by the server's deadline).
    let server_done = || server.is_finished();
    let start = Instant::now();
    while !server_done() && start.elapsed() < WAIT {
        client(5);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (before, starved, received) = server.join().unwrap();
    eprintln!("before {before:?}\nstarved {starved:?}");
    assert!(
        starved.rx_fill_ring_empty_descs + starved.rx_dropped
            > before.rx_fill_ring_empty_descs + before.rx_dropped,
        "XDP_STATISTICS did not count the drops of an empty fill ring: {starved:?}"
    );
    assert!(received > 0, "nothing received after refilling");
}

#[test]
fn zero_copy_required_fails_on_veth_naming_the_driver() {
    if !lab_available() {
        return;
    }
    let lab = lab(1);
    let err = lab
        .spawn_in(Side::Server, || {
            XskSocket::open(
                "veth-srv",
                0,
                &XskConfig {
                    zero_copy: ZeroCopy::Required,
                    ..config()
                },
            )
            .map(|_| ())
        })
        .join()
        .unwrap()
        .expect_err("veth has no AF_XDP zero-copy");
    let text = err.to_string();
    eprintln!("{text}");
    match &err {
        XskError::ZeroCopyUnsupported { driver, .. } => assert_eq!(driver, "veth"),
        other => panic!("expected ZeroCopyUnsupported, got {other:?}"),
    }
    assert!(
        text.contains("the veth driver of veth-srv does not support AF_XDP zero-copy"),
        "{text}"
    );
    assert!(text.contains("zero_copy = Auto"), "{text}");
    let link = xdp_state(&lab);
    assert!(
        !has_xdp(&link),
        "a failed open left an XDP program:\n{link}"
    );
}

#[test]
fn queue_out_of_range_names_the_queue_count() {
    if !lab_available() {
        return;
    }
    let lab = lab(2);
    let (bad, good) = lab
        .spawn_in(Side::Server, || {
            let bad = XskSocket::open("veth-srv", 5, &config()).map(|_| ());
            // Queue 1 exists, so that one opens.
            let good = XskSocket::open("veth-srv", 1, &config()).map(|x| x.queue_id());
            (bad, good)
        })
        .join()
        .unwrap();
    let err = bad.expect_err("queue 5 of 2");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        matches!(
            err,
            XskError::QueueOutOfRange {
                queue_count: 2,
                queue_id: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        text.contains("veth-srv has 2 queue(s)") && text.contains("0..=1, got 5"),
        "{text}"
    );
    assert_eq!(good.unwrap(), 1);
}

#[test]
fn external_program_mode_attaches_nothing_and_exposes_the_fd() {
    if !lab_available() {
        return;
    }
    let lab = lab(1);
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = lab.spawn_in(Side::Server, move || {
        let xsk = XskSocket::open(
            "veth-srv",
            0,
            &XskConfig {
                program: XdpProgram::External,
                ..config()
            },
        )
        .unwrap();
        use std::os::fd::AsRawFd;
        tx.send((xsk.fd().as_raw_fd(), xsk.bind_mode())).unwrap();
        done_rx.recv_timeout(WAIT).unwrap();
    });
    let (fd, mode) = rx.recv_timeout(WAIT).unwrap();
    assert!(fd >= 0);
    assert_eq!(mode, BindMode::Copy);
    let link = xdp_state(&lab);
    done_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(!has_xdp(&link), "External mode attached a program:\n{link}");
}
