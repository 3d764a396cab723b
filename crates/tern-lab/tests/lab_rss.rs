//! The lab's stand-in for RSS (`bpf/lab_rss.bpf.c`, attached by `scripts/lab.sh` when a lab
//! has more than one queue): every TCP segment of one 4-tuple from the client reaches the same
//! receive queue of `veth-srv`, whether the client's kernel sends it from a socket (a SYN) or
//! without one (the RST it answers a stray ACK with, sent through a per-CPU control socket).
//! Without the program those take independent queues, so half of such pairs would differ.
//!
//! Receive queues are told apart by veth's per-queue counters (`rx_queue_N_xdp_packets`, kept
//! while GRO gives the interface NAPI). Other traffic (neighbour discovery, ARP) can land in a
//! reading, so a flow is read again until each of its two packets moved exactly one counter.
//! Needs root and python3 (scripts/bootstrap.sh); `TERN_SKIP_LAB=1` skips.

use std::time::Duration;

use tern_lab::{lab_available, run, Lab, LabConfig, Side};

/// Sends, from the server's namespace, a bare ACK from 198.18.0.1:7000 to the client's port
/// (where no socket is): the client's kernel answers it with a RST from no socket.
const STRAY_ACK: &str = r#"
import socket, struct, sys
src, dst, sport, dport = '198.18.0.1', '198.18.0.2', 7000, int(sys.argv[1])
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
tcp = struct.pack('!HHIIBBHHH', sport, dport, 1000, 2000, 5 << 4, 0x10, 65535, 0, 0)
ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(ph + tcp)) + tcp[18:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).sendto(tcp, (dst, 0))
"#;

/// Connects, from the client's namespace, from that port to 198.18.0.1:7000 (closed: the
/// server answers the SYN with a RST), so the one packet reaching the server is the socket's SYN.
const SOCKET_SYN: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.18.0.2', int(sys.argv[1])))
s.settimeout(2)
try:
    s.connect(('198.18.0.1', 7000))
except OSError:
    pass
"#;

fn queue_counts(lab: &Lab) -> [u64; 2] {
    let text = run(lab
        .command(Side::Server, "ethtool")
        .args(["-S", "veth-srv"]));
    let get = |q: usize| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("rx_queue_{q}_xdp_packets: "))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no rx_queue_{q}_xdp_packets in:\n{text}"))
    };
    [get(0), get(1)]
}

/// The queue whose counter alone moved by one between `a` and `b`.
fn one_queue(a: [u64; 2], b: [u64; 2]) -> Option<usize> {
    match (b[0] - a[0], b[1] - a[1]) {
        (1, 0) => Some(0),
        (0, 1) => Some(1),
        _ => None,
    }
}

#[test]
fn socketless_replies_reach_the_queue_of_their_flow() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up(LabConfig {
        queues: Some(2),
        client_addrs: 0,
    });
    run(lab
        .command(Side::Server, "ethtool")
        .args(["-K", "veth-srv", "gro", "on"]));
    // Resolve the neighbours first, so no ARP lands in a reading.
    run(lab
        .command(Side::Server, "ping")
        .args(["-c", "1", "-W", "2", "198.18.0.2"]));
    let settle = || std::thread::sleep(Duration::from_millis(100));
    let mut clean = Vec::new();
    for port in 41000..41016u16 {
        for _attempt in 0..5 {
            let c0 = queue_counts(&lab);
            run(lab
                .command(Side::Server, "python3")
                .args(["-c", STRAY_ACK, &port.to_string()]));
            settle();
            let c1 = queue_counts(&lab);
            run(lab
                .command(Side::Client, "python3")
                .args(["-c", SOCKET_SYN, &port.to_string()]));
            settle();
            let c2 = queue_counts(&lab);
            if let (Some(rst), Some(syn)) = (one_queue(c0, c1), one_queue(c1, c2)) {
                clean.push((port, rst, syn));
                break;
            }
        }
    }
    assert!(clean.len() >= 12, "too few clean readings: {clean:?}");
    for (port, rst, syn) in &clean {
        assert_eq!(
            rst, syn,
            "port {port}: RST on queue {rst}, SYN on queue {syn}"
        );
    }
    // The hash spreads flows over both queues.
    assert!(
        clean.iter().any(|c| c.1 == 0) && clean.iter().any(|c| c.1 == 1),
        "{clean:?}"
    );
}
