//! Wire-format hot paths: the Internet checksum over typical frame sizes, and parsing and
//! emitting a Linux-style SYN (the per-packet work of a SYN flood).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tern_benches::{linux_syn, linux_syn_frame, CLIENT, SERVER};
use tern_wire::{checksum, parse_frame, ChecksumMode, TcpPacket};

fn checksums(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for size in [64usize, 1500, 9000] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| checksum::data(black_box(data)))
        });
    }
    group.finish();
}

fn syn(c: &mut Criterion) {
    let frame = linux_syn_frame();
    let mut group = c.benchmark_group("syn");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_frame", |b| {
        b.iter(|| parse_frame(black_box(&frame), ChecksumMode::Verify).expect("valid SYN"))
    });
    let repr = linux_syn();
    let mut buf = [0u8; 64];
    group.bench_function("emit_tcp", |b| {
        b.iter(|| {
            let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
            black_box(&repr)
                .emit(&mut packet, &CLIENT, &SERVER, ChecksumMode::Verify)
                .expect("fits");
        })
    });
    group.finish();
}

criterion_group!(benches, checksums, syn);
criterion_main!(benches);
