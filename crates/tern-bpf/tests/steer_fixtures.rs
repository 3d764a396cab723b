//! tern_steer tested as a function: a table of frames built with tern-wire, each with the
//! verdict and the one counter it must produce, run through BPF_PROG_TEST_RUN (as Katran's
//! `KatranBaseTestFixtures.h` does for its balancer).
//!
//! The table runs twice over the same listener map:
//!
//! * with XSKMAP slot 0 empty, where a well-formed packet for a listener takes
//!   `bpf_redirect_map`'s fallback: XDP_PASS (XdpNoXskPassed), or XDP_DROP (XdpNoXskDropped)
//!   for a listener flagged DROP_NO_XSK;
//! * with an AF_XDP socket in slot 0 (test runs see receive queue 0), where it is XDP_REDIRECT
//!   (XdpRedirected). The socket is never bound: BPF_PROG_TEST_RUN reports the verdict without
//!   delivering the frame, and an XSKMAP slot accepts any AF_XDP socket.
//!
//! Every other row has one verdict whatever the slot holds. Needs root (loading BPF); skipped
//! only with TERN_SKIP_LAB=1, like the lab tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use tern_bpf::abi::Counter;
use tern_bpf::{ListenerFlags, SteerProgram, XdpAction};
use tern_wire::{
    emit_tcp_frame, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IpProtocol, IpRepr, SeqNum, TcpFlags, TcpRepr, VlanTag,
};

const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const OTHER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 5);

/// The listener map every row runs against.
fn listeners() -> Vec<(SocketAddr, ListenerFlags)> {
    vec![
        ((SERVER_V4, 80).into(), ListenerFlags::NONE),
        ((Ipv4Addr::UNSPECIFIED, 8080).into(), ListenerFlags::NONE),
        ((SERVER_V6, 80).into(), ListenerFlags::NONE),
        ((Ipv6Addr::UNSPECIFIED, 8443).into(), ListenerFlags::NONE),
        ((SERVER_V4, 9000).into(), ListenerFlags::DROP_NO_XSK),
    ]
}

/// What a row must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Well-formed and for a listener without DROP_NO_XSK: redirected, or passed with no socket.
    Steered,
    /// Well-formed and for a DROP_NO_XSK listener: redirected, or dropped with no socket.
    SteeredOrDropped,
    /// Passed to the kernel, counted in this counter.
    Pass(Counter),
    /// Dropped, counted in this counter.
    Drop(Counter),
}

impl Expect {
    fn resolve(self, socket_in_slot: bool) -> (XdpAction, Counter) {
        match (self, socket_in_slot) {
            (Expect::Steered | Expect::SteeredOrDropped, true) => {
                (XdpAction::Redirect, Counter::Redirected)
            }
            (Expect::Steered, false) => (XdpAction::Pass, Counter::NoXskPassed),
            (Expect::SteeredOrDropped, false) => (XdpAction::Drop, Counter::NoXskDropped),
            (Expect::Pass(c), _) => (XdpAction::Pass, c),
            (Expect::Drop(c), _) => (XdpAction::Drop, c),
        }
    }
}

struct Fixture {
    name: &'static str,
    frame: Vec<u8>,
    expect: Expect,
}

// --- frames -------------------------------------------------------------------------------------

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;

fn eth(vlan: Option<u16>) -> EthernetRepr {
    EthernetRepr {
        src: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
        dst: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
        vlan: vlan.map(|vid| VlanTag {
            pcp: 0,
            dei: false,
            vid,
        }),
        ethertype: EtherType::Ipv4,
    }
}

fn syn(dst_port: u16) -> TcpRepr<'static> {
    TcpRepr {
        src_port: 40000,
        dst_port,
        flags: TcpFlags::SYN,
        seq_number: SeqNum(1),
        window_len: 65535,
        max_seg_size: Some(1460),
        ..TcpRepr::default()
    }
}

fn frame_with(vlan: Option<u16>, src: IpAddr, dst: IpAddr, tcp: &TcpRepr<'_>) -> Vec<u8> {
    let ip = IpRepr::new(src, dst, IpProtocol::Tcp, 0, 64).expect("one family");
    let mut buf = vec![0u8; 2048];
    let len = emit_tcp_frame(&eth(vlan), &ip, tcp, &mut buf).expect("fits");
    buf.truncate(len);
    buf
}

/// A SYN from the client to `dst`:`port`, either family.
fn syn_to(dst: impl Into<IpAddr>, port: u16) -> Vec<u8> {
    let dst = dst.into();
    let src: IpAddr = match dst {
        IpAddr::V4(_) => CLIENT_V4.into(),
        IpAddr::V6(_) => CLIENT_V6.into(),
    };
    frame_with(None, src, dst, &syn(port))
}

fn vlan_syn_to(dst: Ipv4Addr, port: u16) -> Vec<u8> {
    frame_with(Some(100), CLIENT_V4.into(), dst.into(), &syn(port))
}

fn set_u16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn get_u16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// An IPv4 frame's IP header fields, edited in place (offsets from RFC 791).
mod v4 {
    use super::*;
    pub const VER_IHL: usize = ETH_LEN;
    pub const TOTAL_LEN: usize = ETH_LEN + 2;
    pub const FRAG: usize = ETH_LEN + 6;
    pub const PROTOCOL: usize = ETH_LEN + 9;
    pub const TCP: usize = ETH_LEN + IPV4_LEN;
}

/// An IPv4 TCP frame edited with `f`.
fn v4_syn_edited(port: u16, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = syn_to(SERVER_V4, port);
    f(&mut frame);
    frame
}

/// Sets the TCP data offset (in 32-bit words) of a frame whose TCP header starts at `tcp`.
fn set_data_offset(frame: &mut [u8], tcp: usize, words: u8) {
    frame[tcp + 12] = (words << 4) | (frame[tcp + 12] & 0x0f);
}

/// Inserts four NOP option bytes into an IPv4 header (IHL 5 -> 6).
fn with_ipv4_options(mut frame: Vec<u8>) -> Vec<u8> {
    frame.splice(v4::TCP..v4::TCP, [1u8, 1, 1, 1]);
    frame[v4::VER_IHL] = 0x46;
    let total = get_u16(&frame, v4::TOTAL_LEN) + 4;
    set_u16(&mut frame, v4::TOTAL_LEN, total);
    frame
}

/// Inserts an 8-byte Hop-by-Hop Options header before TCP in an IPv6 frame.
fn with_hop_by_hop(mut frame: Vec<u8>) -> Vec<u8> {
    let next = ETH_LEN + 6;
    let payload_len = ETH_LEN + 4;
    // Next header TCP, length 0 (8 bytes), one PadN option filling the rest.
    frame.splice(
        ETH_LEN + IPV6_LEN..ETH_LEN + IPV6_LEN,
        [6u8, 0, 1, 4, 0, 0, 0, 0],
    );
    frame[next] = 0; // Hop-by-Hop
    let len = get_u16(&frame, payload_len) + 8;
    set_u16(&mut frame, payload_len, len);
    frame
}

fn arp_request() -> Vec<u8> {
    let eth = EthernetRepr {
        dst: EthernetAddress([0xff; 6]),
        ethertype: EtherType::Arp,
        ..eth(None)
    };
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        source_hw: eth.src,
        source_ip: CLIENT_V4,
        target_hw: EthernetAddress([0; 6]),
        target_ip: SERVER_V4,
    };
    let mut frame = vec![0u8; ETH_LEN + arp.buffer_len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]))
        .expect("fits");
    arp.emit(&mut ArpPacket::new_unchecked(&mut frame[ETH_LEN..]))
        .expect("fits");
    frame
}

fn fixtures() -> Vec<Fixture> {
    let data = TcpRepr {
        flags: TcpFlags::ACK | TcpFlags::PSH,
        ack_number: Some(SeqNum(1000)),
        max_seg_size: None,
        payload: b"GET / HTTP/1.1\r\n\r\n",
        ..syn(80)
    };
    let fx = |name, frame, expect| Fixture {
        name,
        frame,
        expect,
    };
    use Counter::*;
    use Expect::*;
    vec![
        // Steered: well-formed, for a listener.
        fx(
            "v4 SYN to an exact listener",
            syn_to(SERVER_V4, 80),
            Steered,
        ),
        fx(
            "v4 SYN to a v4 wildcard listener",
            syn_to(SERVER_V4, 8080),
            Steered,
        ),
        fx(
            "v4 SYN to a v4 wildcard listener, any address",
            syn_to(Ipv4Addr::new(198, 18, 0, 77), 8080),
            Steered,
        ),
        fx(
            "v6 SYN to an exact listener",
            syn_to(SERVER_V6, 80),
            Steered,
        ),
        fx(
            "v6 SYN to a v6 wildcard listener",
            syn_to(OTHER_V6, 8443),
            Steered,
        ),
        fx(
            "v4 data segment to a listener",
            frame_with(None, CLIENT_V4.into(), SERVER_V4.into(), &data),
            Steered,
        ),
        fx(
            "VLAN-tagged v4 SYN to a listener",
            vlan_syn_to(SERVER_V4, 80),
            Steered,
        ),
        fx(
            "v4 SYN with IP options to a listener",
            with_ipv4_options(syn_to(SERVER_V4, 80)),
            Steered,
        ),
        fx(
            "v4 SYN padded to the Ethernet minimum",
            {
                let mut f = syn_to(SERVER_V4, 80);
                f.resize(f.len().max(60) + 6, 0);
                f
            },
            Steered,
        ),
        fx(
            "v4 SYN to a DROP_NO_XSK listener",
            syn_to(SERVER_V4, 9000),
            SteeredOrDropped,
        ),
        // Passed: not for a listener.
        fx(
            "v4 SYN to a port nobody listens on (SSH)",
            syn_to(SERVER_V4, 22),
            Pass(Passed),
        ),
        fx(
            "v4 SYN to a listener's address, another port",
            syn_to(SERVER_V4, 81),
            Pass(Passed),
        ),
        fx(
            "v4 SYN to a listener's port, another address",
            syn_to(Ipv4Addr::new(198, 18, 0, 9), 80),
            Pass(Passed),
        ),
        fx(
            "v6 SYN to a port only the v4 wildcard has",
            syn_to(SERVER_V6, 8080),
            Pass(Passed),
        ),
        fx(
            "v4 SYN to a port only the v6 wildcard has",
            syn_to(SERVER_V4, 8443),
            Pass(Passed),
        ),
        fx(
            "VLAN-tagged v4 SYN to a non-listener",
            vlan_syn_to(SERVER_V4, 22),
            Pass(Passed),
        ),
        fx(
            "UDP to a listener's address and port",
            v4_syn_edited(80, |f| f[v4::PROTOCOL] = 17),
            Pass(Passed),
        ),
        fx(
            "ICMP to a listener's address",
            v4_syn_edited(80, |f| f[v4::PROTOCOL] = 1),
            Pass(Passed),
        ),
        fx("ARP request for the server", arp_request(), Pass(Passed)),
        fx(
            "a bare Ethernet header",
            syn_to(SERVER_V4, 80)[..ETH_LEN].to_vec(),
            Pass(Passed),
        ),
        fx(
            "v4 header cut before the ports",
            syn_to(SERVER_V4, 80)[..v4::TCP + 2].to_vec(),
            Pass(Passed),
        ),
        fx(
            "malformed TCP (data offset 4) to a non-listener",
            v4_syn_edited(22, |f| set_data_offset(f, v4::TCP, 4)),
            Pass(Passed),
        ),
        fx(
            "v4 first fragment (MF) to a listener",
            v4_syn_edited(80, |f| set_u16(f, v4::FRAG, 0x2000)),
            Pass(FragmentPassed),
        ),
        fx(
            "v4 later fragment (offset 185) to a listener's address",
            v4_syn_edited(80, |f| set_u16(f, v4::FRAG, 185)),
            Pass(FragmentPassed),
        ),
        fx(
            "v6 SYN behind a Hop-by-Hop header to a listener",
            with_hop_by_hop(syn_to(SERVER_V6, 80)),
            Pass(Ipv6ExtPassed),
        ),
        // Dropped: malformed, for a listener.
        fx(
            "v4 TCP header of 12 bytes to a listener",
            v4_syn_edited(80, |f| {
                f.truncate(v4::TCP + 12);
                set_u16(f, v4::TOTAL_LEN, (IPV4_LEN + 12) as u16);
            }),
            Drop(DropTcpTruncated),
        ),
        fx(
            "v6 TCP header of 12 bytes to a listener",
            {
                let mut f = syn_to(SERVER_V6, 80);
                f.truncate(ETH_LEN + IPV6_LEN + 12);
                set_u16(&mut f, ETH_LEN + 4, 12);
                f
            },
            Drop(DropTcpTruncated),
        ),
        fx(
            "v4 data offset 4 to a listener",
            v4_syn_edited(80, |f| set_data_offset(f, v4::TCP, 4)),
            Drop(DropTcpDataOffset),
        ),
        fx(
            "v4 data offset 15 past the segment to a listener",
            v4_syn_edited(80, |f| set_data_offset(f, v4::TCP, 15)),
            Drop(DropTcpDataOffset),
        ),
        fx(
            "v6 data offset 0 to a listener",
            {
                let mut f = syn_to(SERVER_V6, 80);
                set_data_offset(&mut f, ETH_LEN + IPV6_LEN, 0);
                f
            },
            Drop(DropTcpDataOffset),
        ),
        fx(
            "v4 IHL 4 to a listener",
            v4_syn_edited(80, |f| f[v4::VER_IHL] = 0x44),
            Drop(DropIpHeader),
        ),
        fx(
            "v4 total length past the frame to a listener",
            v4_syn_edited(80, |f| {
                let total = get_u16(f, v4::TOTAL_LEN) + 100;
                set_u16(f, v4::TOTAL_LEN, total);
            }),
            Drop(DropIpLength),
        ),
        fx(
            "v4 total length shorter than its header to a listener",
            v4_syn_edited(80, |f| set_u16(f, v4::TOTAL_LEN, 16)),
            Drop(DropIpLength),
        ),
        fx(
            "v6 payload length past the frame to a listener",
            {
                let mut f = syn_to(SERVER_V6, 80);
                let len = get_u16(&f, ETH_LEN + 4) + 100;
                set_u16(&mut f, ETH_LEN + 4, len);
                f
            },
            Drop(DropIpLength),
        ),
    ]
}

// --- the runner ---------------------------------------------------------------------------------

fn loaded() -> Option<SteerProgram> {
    if !tern_lab::lab_available() {
        return None;
    }
    let steer = SteerProgram::load().unwrap_or_else(|e| panic!("{e}"));
    for (addr, flags) in listeners() {
        steer
            .add_listener(addr, flags)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    Some(steer)
}

/// An AF_XDP socket, unbound: enough to fill an XSKMAP slot for a test run.
fn xdp_socket() -> OwnedFd {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(
        fd >= 0,
        "socket(AF_XDP): {} (needs CONFIG_XDP_SOCKETS and CAP_NET_RAW)",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Runs every fixture; returns one line per mismatch.
fn run_table(steer: &SteerProgram, socket_in_slot: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let (action, counter) = fixture.expect.resolve(socket_in_slot);
        let before = steer.counters().unwrap();
        let got = steer
            .test_run(&fixture.frame)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.name));
        let delta = steer.counters().unwrap().since(&before);
        let moved: Vec<_> = delta.iter().filter(|(_, v)| *v != 0).collect();
        if got != action || moved != [(counter, 1)] {
            failures.push(format!(
                "{}: expected {action:?} counting {}, got {got:?} counting {:?}",
                fixture.name,
                counter.name(),
                moved
                    .iter()
                    .map(|(c, v)| format!("{}+{v}", c.name()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    failures
}

#[test]
fn fixtures_with_no_socket_in_the_slot() {
    let Some(steer) = loaded() else { return };
    let failures = run_table(&steer, false);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn fixtures_with_a_socket_in_the_slot() {
    let Some(steer) = loaded() else { return };
    let xsk = xdp_socket();
    steer
        .set_xsk(0, xsk.as_fd())
        .unwrap_or_else(|e| panic!("{e}"));
    let failures = run_table(&steer, true);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Emptying the slot brings the fallback back.
    steer.clear_xsk(0).unwrap();
    assert_eq!(
        steer.test_run(&syn_to(SERVER_V4, 80)).unwrap(),
        XdpAction::Pass
    );
}

#[test]
fn removing_a_listener_stops_steering() {
    let Some(steer) = loaded() else { return };
    let xsk = xdp_socket();
    steer.set_xsk(0, xsk.as_fd()).unwrap();
    let frame = syn_to(SERVER_V4, 80);
    assert_eq!(steer.test_run(&frame).unwrap(), XdpAction::Redirect);

    assert!(steer.remove_listener((SERVER_V4, 80)).unwrap());
    assert!(
        !steer.remove_listener((SERVER_V4, 80)).unwrap(),
        "already gone"
    );
    assert_eq!(steer.test_run(&frame).unwrap(), XdpAction::Pass);

    // Flags can change in place: the same listener, now dropping without a socket.
    steer
        .add_listener((SERVER_V4, 80), ListenerFlags::DROP_NO_XSK)
        .unwrap();
    steer.clear_xsk(0).unwrap();
    assert_eq!(steer.test_run(&frame).unwrap(), XdpAction::Drop);
}

#[test]
fn listeners_read_back_as_written() {
    let Some(steer) = loaded() else { return };
    let mut got = steer.listeners().unwrap();
    let mut want = listeners();
    got.sort_by_key(|(a, _)| *a);
    want.sort_by_key(|(a, _)| *a);
    assert_eq!(got, want);
}

#[test]
fn map_limits_are_errors_that_say_so() {
    let Some(steer) = loaded() else { return };
    let err = steer.clear_xsk(tern_bpf::abi::MAX_QUEUES).unwrap_err();
    assert!(err.to_string().contains("TERN_MAX_QUEUES"), "{err}");

    // A file is not an AF_XDP socket.
    let file = std::fs::File::open("/dev/null").unwrap();
    let err = steer.set_xsk(1, file.as_fd()).unwrap_err();
    assert!(err.to_string().contains("AF_XDP"), "{err}");

    // The map holds TERN_MAX_LISTENERS entries, 5 of them taken by the table's listeners.
    let extra = tern_bpf::abi::MAX_LISTENERS as usize - listeners().len();
    for port in 0..extra {
        let addr = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 20000 + port as u16));
        steer.add_listener(addr, ListenerFlags::NONE).unwrap();
    }
    let err = steer
        .add_listener((Ipv4Addr::new(10, 0, 0, 2), 1), ListenerFlags::NONE)
        .unwrap_err();
    assert!(
        matches!(err, tern_bpf::Error::ListenersFull { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("TERN_MAX_LISTENERS"), "{err}");
}
