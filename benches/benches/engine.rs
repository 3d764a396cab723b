//! Engine hot paths, measured without I/O (the engine is sans-IO, so this is its pure cost):
//!
//! * `data_in_delack`: an in-order 1448-byte data segment arrives (checksums verified), the
//!   application reads it, the shard polls for output — which is an ACK on every second segment
//!   (RFC 1122 4.2.3.2) and nothing on the others.
//! * `ack_in_data_out`: a bulk sender's steady state — an ACK for one segment arrives, the
//!   application queues 1448 more bytes, and the shard emits one data segment.
//! * `wheel/*`: the per-shard timer wheel's insert + cancel, and insert + expire.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tern_benches::{client_segment, established, ipv4_packet, CLIENT, SERVER};
use tern_tcp::{Duration, Instant, TcpConfig, TimerWheel};
use tern_wire::{checksum, TcpFlags};

/// Offsets in an IPv4+TCP packet with a 20-byte IP header.
const SEQ_AT: usize = 20 + 4;
const ACK_AT: usize = 20 + 8;
const TCP_CSUM_AT: usize = 20 + 16;

/// Rewrites a 32-bit TCP field and patches the checksum incrementally (RFC 1624), as a
/// generator of consecutive segments would.
fn patch_u32(packet: &mut [u8], at: usize, value: u32) {
    let old: [u8; 4] = packet[at..at + 4].try_into().unwrap();
    let new = value.to_be_bytes();
    let csum = u16::from_be_bytes([packet[TCP_CSUM_AT], packet[TCP_CSUM_AT + 1]]);
    let csum = checksum::update_bytes(csum, &old, &new);
    packet[at..at + 4].copy_from_slice(&new);
    packet[TCP_CSUM_AT..TCP_CSUM_AT + 2].copy_from_slice(&csum.to_be_bytes());
}

fn config() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    }
}

fn data_in_delack(c: &mut Criterion) {
    let (mut shard, conns, isns, now) = established(config(), 1);
    let (conn, iss) = (conns[0], isns[0]);
    let payload = [0x5au8; 1448];
    let seg = client_segment(
        10_000,
        TcpFlags::ACK | TcpFlags::PSH,
        1001,
        Some(iss.wrapping_add(1)),
        &payload,
    );
    let mut packet = ipv4_packet(CLIENT, SERVER, &seg);
    let (mut seq, mut out, mut read) = (1001u32, vec![0u8; 2048], vec![0u8; 2048]);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("data_in_delack", |b| {
        b.iter(|| {
            shard
                .on_packet(now, black_box(&packet))
                .expect("valid segment");
            let n = shard.recv(now, conn, &mut read).expect("readable");
            debug_assert_eq!(n, 1448);
            while let Some(len) = shard.poll_transmit(now, &mut out) {
                black_box(len);
            }
            seq = seq.wrapping_add(1448);
            patch_u32(&mut packet, SEQ_AT, seq);
        })
    });
    group.finish();
    assert_eq!(
        shard.counters().in_errs,
        0,
        "every benchmark segment was valid"
    );
}

fn ack_in_data_out(c: &mut Criterion) {
    // A window and cwnd large enough that the ACK clock alone paces the sender.
    let cfg = TcpConfig {
        wmem: 1 << 20,
        initial_cwnd: 1000,
        ..config()
    };
    let (mut shard, conns, isns, now) = established(cfg, 1);
    let (conn, iss) = (conns[0], isns[0]);
    let chunk = [0xa5u8; 1448];
    let mut out = vec![0u8; 2048];
    // Fill the pipe with 32 segments so every ACK acknowledges one and releases one.
    for _ in 0..32 {
        shard.send(now, conn, &chunk).expect("buffer space");
    }
    while shard.poll_transmit(now, &mut out).is_some() {}
    let mut acked = iss.wrapping_add(1);
    let ack = client_segment(10_000, TcpFlags::ACK, 1001, Some(acked), &[]);
    let mut packet = ipv4_packet(CLIENT, SERVER, &ack);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ack_in_data_out", |b| {
        b.iter(|| {
            acked = acked.wrapping_add(1448);
            patch_u32(&mut packet, ACK_AT, acked);
            shard.on_packet(now, black_box(&packet)).expect("valid ACK");
            shard.send(now, conn, &chunk).expect("buffer space");
            let mut sent = 0;
            while let Some(len) = shard.poll_transmit(now, &mut out) {
                sent += len;
            }
            black_box(sent);
        })
    });
    group.finish();
    assert_eq!(shard.counters().in_errs, 0);
    assert_eq!(
        shard.counters().retrans_segs,
        0,
        "the benchmark never lost anything"
    );
}

fn wheel(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(1));
    let start = Instant::from_millis(1);
    // A wheel already holding 100k timers, as a busy shard's would.
    let mut w = TimerWheel::with_capacity(start, 200_000);
    for i in 0..100_000u64 {
        w.insert(start + Duration::from_millis(1 + i % 200_000), i);
    }
    let mut i = 0u64;
    group.bench_function("insert_cancel", |b| {
        b.iter(|| {
            i += 1;
            let h = w.insert(start + Duration::from_millis(200 + i % 60_000), i);
            black_box(w.cancel(h));
        })
    });
    let mut now = start;
    let mut j = 0u64;
    group.bench_function("insert_expire", |b| {
        b.iter(|| {
            j += 1;
            w.insert(now + Duration::from_millis(1), j);
            now += Duration::from_millis(1);
            while let Some(fired) = w.poll(now) {
                black_box(fired);
            }
        })
    });
    group.finish();
}

/// A shard answering every SYN with a cookie (`syncookies = always`), listening on port 80.
fn cookie_shard() -> (tern_tcp::Shard, tern_tcp::ListenerId, Instant) {
    let now = Instant::from_millis(1_000);
    let cfg = TcpConfig {
        syncookies: tern_tcp::SyncookieMode::Always,
        ..TcpConfig::default()
    };
    let mut shard = tern_tcp::Shard::new(cfg, [9; 32], now).unwrap();
    let l = shard
        .listen(
            std::net::SocketAddr::new(SERVER, 80),
            tern_tcp::ListenConfig {
                backlog: 1 << 22,
                syn_backlog: 128,
            },
        )
        .unwrap();
    (shard, l, now)
}

fn syn_cookies(c: &mut Criterion) {
    let mut group = c.benchmark_group("syncookie");
    group.throughput(Throughput::Elements(1));
    // SYN in (Linux's options, both checksums verified) -> cookie SYN-ACK out. Nothing is
    // kept, so the same SYN can be answered again and again.
    let (mut shard, _, now) = cookie_shard();
    let syn = ipv4_packet(CLIENT, SERVER, &tern_benches::linux_syn());
    let mut out = vec![0u8; 2048];
    group.bench_function("syn_in_synack_out", |b| {
        b.iter(|| {
            shard.on_packet(now, black_box(&syn)).expect("valid SYN");
            black_box(shard.poll_transmit(now, &mut out).expect("a SYN-ACK"));
        })
    });
    // Cookie ACK in -> ESTABLISHED connection in the accept queue, accepted. Each iteration
    // needs its own tuple and cookie, made beforehand outside the timing.
    group.bench_function("cookie_ack_in_established", |b| {
        b.iter_custom(|iters| {
            let (mut shard, l, now) = cookie_shard();
            let mut out = vec![0u8; 2048];
            let acks: Vec<Vec<u8>> = (0..iters)
                .map(|i| {
                    let port = 1024 + (i % 60_000) as u16;
                    let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                        0xc612_4000 + (i / 60_000) as u32,
                    ));
                    let mut syn = tern_benches::linux_syn();
                    syn.src_port = port;
                    shard
                        .on_packet(now, &ipv4_packet(src, SERVER, &syn))
                        .unwrap();
                    let len = shard.poll_transmit(now, &mut out).unwrap();
                    let synack = tern_wire::TcpPacket::new_checked(&out[20..len]).unwrap();
                    let tsval = synack.iter_options().find_map(|o| match o {
                        Ok(tern_wire::TcpOption::Timestamp(ts)) => Some(ts.tsval),
                        _ => None,
                    });
                    let ack = tern_wire::TcpRepr {
                        timestamp: tsval.map(|v| tern_wire::TcpTimestamp {
                            tsval: 1_000_001,
                            tsecr: v,
                        }),
                        ..client_segment(
                            port,
                            TcpFlags::ACK,
                            0x1234_5679,
                            Some(synack.seq_number().0.wrapping_add(1)),
                            &[],
                        )
                    };
                    ipv4_packet(src, SERVER, &ack)
                })
                .collect();
            let start = std::time::Instant::now();
            for ack in &acks {
                shard.on_packet(now, black_box(ack)).expect("valid ACK");
                black_box(shard.accept(l).expect("the cookie completed the handshake"));
            }
            let elapsed = start.elapsed();
            assert_eq!(shard.counters().syncookies_failed, 0);
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, data_in_delack, ack_in_data_out, wheel, syn_cookies);
criterion_main!(benches);
