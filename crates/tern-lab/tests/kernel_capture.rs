//! The kernel talks TCP to itself across the lab while tcpdump captures the server's interface;
//! every captured frame must parse with tern-wire and carry valid checksums, and the frames a TCP
//! stack must understand (SYN with Linux's options, SYN-ACK, data, FIN, RST, IPv6 SYN) must all
//! be there. With `TERN_FIXTURE_DIR=DIR` it also writes those frames to DIR as one-frame pcap files:
//! that is how `crates/tern-wire/tests/fixtures/` was made.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tern_lab::{addr, lab_available, Capture, Lab, LabConfig, Side};
use tern_wire::frame::{parse_frame, Frame, L3, L4};
use tern_wire::tcp::TcpFlags;
use tern_wire::ChecksumMode;

const PORT: u16 = 5000;
const CLOSED_PORT: u16 = 5001;

/// Accepts one connection on each listener, echoes everything until the peer's FIN, then closes.
fn echo_server(listeners: Vec<TcpListener>) {
    for listener in listeners {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut data = Vec::new();
        conn.read_to_end(&mut data).expect("server read");
        conn.write_all(&data).expect("server write");
    }
}

fn echo_client(to: SocketAddr, len: usize) {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(&payload).expect("client write");
    conn.shutdown(Shutdown::Write).expect("client FIN");
    let mut echoed = Vec::new();
    conn.read_to_end(&mut echoed).expect("client read");
    assert!(
        echoed == payload,
        "echo from {to} differs: {} of {} bytes",
        echoed.len(),
        len
    );
}

#[derive(Debug, Default)]
struct Seen {
    syn_v4: Option<Vec<u8>>,
    syn_ack_v4: Option<Vec<u8>>,
    data_v4: Option<Vec<u8>>,
    fin_v4: Option<Vec<u8>>,
    rst_v4: Option<Vec<u8>>,
    syn_v6: Option<Vec<u8>>,
}

fn classify(frames: &[Vec<u8>]) -> Seen {
    let mut seen = Seen::default();
    for (i, raw) in frames.iter().enumerate() {
        let frame: Frame<'_> = parse_frame(raw, ChecksumMode::Verify)
            .unwrap_or_else(|e| panic!("captured frame {i} does not parse: {e}: {raw:02x?}"));
        let L3::Ip {
            ip,
            l4: L4::Tcp(tcp),
        } = frame.l3
        else {
            continue;
        };
        let v4 = ip.src_addr().is_ipv4();
        let f = tcp.flags;
        let (syn, ack) = (f.contains(TcpFlags::SYN), f.contains(TcpFlags::ACK));
        if syn && !ack {
            // Linux's SYN: MSS 1460 (v4) or 1440 (v6) on a 1500-byte link, SACK-permitted,
            // timestamps and window scale.
            assert_eq!(
                tcp.max_seg_size,
                Some(if v4 { 1460 } else { 1440 }),
                "frame {i}"
            );
            assert!(tcp.sack_permitted && tcp.timestamp.is_some() && tcp.window_scale.is_some());
        }
        let slot = match (v4, syn, ack) {
            (false, true, false) => &mut seen.syn_v6,
            (false, _, _) => continue,
            _ if f.contains(TcpFlags::RST) => &mut seen.rst_v4,
            (true, true, true) => &mut seen.syn_ack_v4,
            (true, true, false) => &mut seen.syn_v4,
            _ if f.contains(TcpFlags::FIN) => &mut seen.fin_v4,
            _ if !tcp.payload.is_empty() => &mut seen.data_v4,
            _ => continue,
        };
        slot.get_or_insert_with(|| raw.clone());
    }
    seen
}

#[test]
fn kernel_frames_parse_and_verify() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up(LabConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let capture = Capture::start(&lab, Side::Server, &dir.path().join("lab.pcap"));

    let (ready_tx, ready_rx) = mpsc::channel();
    let server = lab.spawn_in(Side::Server, move || {
        let v4 = TcpListener::bind((addr::SERVER_V4, PORT)).expect("bind v4");
        let v6 = TcpListener::bind((addr::SERVER_V6, PORT)).expect("bind v6");
        ready_tx.send(()).unwrap();
        echo_server(vec![v4, v6]);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server ready");
    let client = lab.spawn_in(Side::Client, || {
        // Several full-sized segments each way, then a v6 exchange, then a refused connection.
        echo_client((addr::SERVER_V4, PORT).into(), 5000);
        echo_client((addr::SERVER_V6, PORT).into(), 100);
        let refused = TcpStream::connect_timeout(
            &(addr::SERVER_V4, CLOSED_PORT).into(),
            Duration::from_secs(5),
        );
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    });
    client.join().expect("client");
    server.join().expect("server");

    // The RST for the closed port is the last frame we cause; wait (bounded) until it is captured.
    let frames = capture.wait_for(Duration::from_secs(10), |f| classify(f).rst_v4.is_some());
    drop(capture);
    let seen = classify(&frames);
    assert!(frames.len() >= 12, "only {} frames captured", frames.len());
    let wanted = [
        ("syn_v4", &seen.syn_v4),
        ("syn_ack_v4", &seen.syn_ack_v4),
        ("data_v4", &seen.data_v4),
        ("fin_v4", &seen.fin_v4),
        ("rst_v4", &seen.rst_v4),
        ("syn_v6", &seen.syn_v6),
    ];
    for (name, frame) in &wanted {
        assert!(
            frame.is_some(),
            "no {name} frame among {} captured",
            frames.len()
        );
    }

    if let Ok(out) = std::env::var("TERN_FIXTURE_DIR") {
        for (name, frame) in &wanted {
            write_fixture(
                &Path::new(&out).join(format!("{name}.pcap")),
                frame.as_ref().unwrap(),
            );
        }
    }

    let (srv, cli) = (lab.netns(Side::Server), lab.netns(Side::Client));
    lab.down();
    for ns in [srv, cli] {
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "namespace {ns} left behind"
        );
    }
}

fn write_fixture(path: &Path, frame: &[u8]) {
    let mut out = tern_wire::pcap::file_header(65_535).to_vec();
    let len = frame.len() as u32;
    out.extend_from_slice(&tern_wire::pcap::record_header(0, len, len));
    out.extend_from_slice(frame);
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
