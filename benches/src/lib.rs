//! Benchmarks live in `benches/`; this library holds the inputs they share.

use core::net::{IpAddr, Ipv4Addr};
use tern_wire::{
    EtherType, EthernetAddress, EthernetRepr, IpProtocol, IpRepr, SeqNum, TcpFlags, TcpRepr,
    TcpTimestamp,
};

/// The client side of the lab.
pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
/// The server side of the lab.
pub const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

/// A SYN as Linux sends it: MSS 1460, SACK-permitted, timestamps, window scale 7.
pub fn linux_syn() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 40_000,
        dst_port: 80,
        flags: TcpFlags::SYN,
        seq_number: SeqNum(0x1234_5678),
        window_len: 64_240,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some(TcpTimestamp {
            tsval: 1_000_000,
            tsecr: 0,
        }),
        ..TcpRepr::default()
    }
}

/// The whole Ethernet frame of [`linux_syn`] from the client to the server.
pub fn linux_syn_frame() -> Vec<u8> {
    let tcp = linux_syn();
    let eth = EthernetRepr {
        src: EthernetAddress([2, 0, 0, 0, 0, 2]),
        dst: EthernetAddress([2, 0, 0, 0, 0, 1]),
        vlan: None,
        ethertype: EtherType::Ipv4,
    };
    let ip =
        IpRepr::new(CLIENT, SERVER, IpProtocol::Tcp, tcp.buffer_len(), 64).expect("same family");
    let mut frame = vec![0u8; 14 + ip.buffer_len()];
    let len = tern_wire::emit_tcp_frame(&eth, &ip, &tcp, &mut frame).expect("frame fits");
    frame.truncate(len);
    frame
}

/// An IPv4 packet carrying `tcp` from `src` to `dst`, checksums filled in.
pub fn ipv4_packet(src: IpAddr, dst: IpAddr, tcp: &TcpRepr<'_>) -> Vec<u8> {
    let ip = IpRepr::new(src, dst, IpProtocol::Tcp, tcp.buffer_len(), 64).expect("same family");
    let mut packet = vec![0u8; ip.buffer_len()];
    ip.emit(&mut packet).expect("fits");
    let mut view = tern_wire::TcpPacket::new_unchecked(&mut packet[ip.header_len()..]);
    tcp.emit(&mut view, &src, &dst, tern_wire::ChecksumMode::Verify)
        .expect("fits");
    packet
}

/// A segment from the client to the server's port 80.
pub fn client_segment(
    port: u16,
    flags: TcpFlags,
    seq: u32,
    ack: Option<u32>,
    payload: &[u8],
) -> TcpRepr<'_> {
    TcpRepr {
        src_port: port,
        dst_port: 80,
        flags,
        seq_number: SeqNum(seq),
        ack_number: ack.map(SeqNum),
        window_len: 65_535,
        payload,
        ..TcpRepr::default()
    }
}

/// A shard listening on port 80 of [`SERVER`] with `conns` established connections from
/// [`CLIENT`] (client ports 10000 upward, client ISN 1000, no options), all accepted.
/// Returns the shard, the handles, our ISNs, and the time.
pub fn established(
    config: tern_tcp::TcpConfig,
    conns: usize,
) -> (
    tern_tcp::Shard,
    Vec<tern_tcp::ConnHandle>,
    Vec<u32>,
    tern_tcp::Instant,
) {
    use tern_tcp::{Instant, ListenConfig, Shard};
    assert!(conns <= 50_000, "client ports 10000..60000 of one address");
    let now = Instant::from_millis(1_000);
    let mut shard = Shard::new(config, [7; 32], now).expect("valid config");
    let listener = shard
        .listen(
            SocketAddr::new(SERVER, 80),
            ListenConfig {
                backlog: conns.max(1),
                syn_backlog: conns.max(1),
            },
        )
        .expect("listen");
    let mut buf = vec![0u8; 2048];
    let (mut handles, mut isns) = (Vec::with_capacity(conns), Vec::with_capacity(conns));
    for i in 0..conns {
        let port = 10_000 + i as u16;
        let syn = TcpRepr {
            max_seg_size: Some(1460),
            ..client_segment(port, TcpFlags::SYN, 1000, None, &[])
        };
        shard
            .on_packet(now, &ipv4_packet(CLIENT, SERVER, &syn))
            .expect("SYN");
        let len = shard.poll_transmit(now, &mut buf).expect("SYN-ACK");
        let iss = tern_wire::TcpPacket::new_checked(&buf[20..len])
            .expect("TCP")
            .seq_number()
            .0;
        let ack = client_segment(port, TcpFlags::ACK, 1001, Some(iss.wrapping_add(1)), &[]);
        shard
            .on_packet(now, &ipv4_packet(CLIENT, SERVER, &ack))
            .expect("ACK");
        handles.push(shard.accept(listener).expect("accepted"));
        isns.push(iss);
        while shard.poll_event().is_some() {}
    }
    (shard, handles, isns, now)
}

use core::net::SocketAddr;
