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
