//! Simulator throughput, for tuning: `cargo test -p tern-sim --release --test throughput --
//! --ignored --nocapture`. Ignored by default because timing in a debug build says nothing.

use std::net::{IpAddr, Ipv4Addr};

use tern_sim::{probe, Duration, Host, Instant, LinkConfig, Sim};

/// Sends `remaining` copies of one packet, `batch` per millisecond, and counts what it gets.
struct Blaster {
    template: Vec<u8>,
    remaining: u64,
    batch: u64,
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
        self.in_batch = self.batch.min(self.remaining);
        self.remaining -= self.in_batch;
        self.next = (self.remaining > 0).then(|| now + Duration::from_millis(1));
    }
}

#[test]
#[ignore = "a measurement, not a check; run in release"]
fn packets_per_second() {
    let (a, b) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let blaster = |template, remaining| Blaster {
        template,
        remaining,
        batch: 1_000,
        in_batch: 0,
        next: Some(Instant::ZERO),
        received: 0,
    };
    for (name, config) in [
        ("clean", LinkConfig::new()),
        (
            "impaired",
            LinkConfig::new()
                .jitter(Duration::from_millis(5))
                .loss(0.05)
                .duplicate(0.01)
                .corrupt(0.01)
                .bandwidth(10_000_000_000),
        ),
    ] {
        let total = 2_000_000;
        let mut sim = Sim::new(1);
        sim.add_host(blaster(probe(a, b, 1, 100), total), [a]);
        sim.add_host(blaster(probe(b, a, 1, 100), 0), [b]);
        sim.set_all_links(config);
        let start = std::time::Instant::now();
        sim.run_until_idle(Instant::from_millis(1_000_000)).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let delivered = sim.host(1).received;
        println!(
            "{name}: {total} sent, {delivered} delivered in {secs:.3}s: {:.2} M packets/s",
            total as f64 / secs / 1e6
        );
    }
}
