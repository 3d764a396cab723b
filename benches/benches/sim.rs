//! The simulator's own speed: packets moved per second over a clean link and over an impaired
//! one (jitter, loss, duplication, corruption, a bandwidth limit), so simulation tests of
//! millions of segments stay affordable.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr};
use tern_sim::{probe, Duration, Host, Instant, LinkConfig, Sim};

/// Sends `remaining` copies of one packet, 1,000 per millisecond; counts what it receives.
struct Blaster {
    template: Vec<u8>,
    remaining: u64,
    in_batch: u64,
    next: Option<Instant>,
    received: u64,
}

impl Host for Blaster {
    fn on_packet(&mut self, _: Instant, _: &[u8]) {
        self.received += 1;
    }
    fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.in_batch == 0 {
            return None;
        }
        self.in_batch -= 1;
        buf[..self.template.len()].copy_from_slice(&self.template);
        Some(self.template.len())
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }
    fn on_timeout(&mut self, now: Instant) {
        self.in_batch = 1_000.min(self.remaining);
        self.remaining -= self.in_batch;
        self.next = (self.remaining > 0).then(|| now + Duration::from_millis(1));
    }
}

const PACKETS: u64 = 100_000;

fn moved(config: LinkConfig) -> u64 {
    let a = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    let blaster = |template, remaining| Blaster {
        template,
        remaining,
        in_batch: 0,
        next: Some(Instant::ZERO),
        received: 0,
    };
    let mut sim = Sim::new(1);
    sim.add_host(blaster(probe(a, b, 1, 100), PACKETS), [a]);
    sim.add_host(blaster(probe(b, a, 1, 100), 0), [b]);
    sim.set_all_links(config);
    sim.run_until_idle(Instant::from_millis(1_000_000))
        .expect("the blast ends");
    sim.host(1).received
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    group.bench_function("clean_link", |b| {
        b.iter(|| assert_eq!(moved(LinkConfig::new()), PACKETS))
    });
    let impaired = LinkConfig::new()
        .jitter(Duration::from_millis(5))
        .loss(0.05)
        .duplicate(0.01)
        .corrupt(0.01)
        .bandwidth(10_000_000_000);
    group.bench_function("impaired_link", |b| b.iter(|| moved(impaired.clone())));
    group.finish();
}

criterion_group!(benches, simulator);
criterion_main!(benches);
