//! `tern-bench flood`: a SYN (or ACK) flood transmitted through an AF_XDP socket.
//!
//! The socket is TX-only: it is opened with [`XdpProgram::External`] and nothing ever
//! redirects packets to it, so no XDP program is attached to the flooding interface at all
//! (the kernel's AF_XDP transmit path does not need one; the lab test checks this). Frames come
//! from [`crate::frames::FrameGen`] straight into the UMEM, a batch at a time, and
//! go out at a fixed rate (token bucket) or as fast as the socket takes them, bounded by
//! `--duration` and `--count`. The offered rate is what the kernel took: frames the completion
//! ring gave back per second, cross-checked against the interface's own `tx_packets`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tern_xsk::{XdpProgram, XskConfig, XskSocket, ZeroCopy};

use crate::frames::{FrameGen, FrameSpec, Shape};
use crate::net::{self, Cidr, IfCounters};

/// Configuration of [`run`].
#[derive(Debug, Clone)]
pub struct FloodConfig {
    /// The interface to transmit on (the client end of the lab).
    pub interface: String,
    /// Its queue.
    pub queue: u32,
    /// The server.
    pub dst: SocketAddr,
    /// The server's (or next hop's) MAC; resolved through the kernel's neighbour table if
    /// not given.
    pub dst_mac: Option<[u8; 6]>,
    /// Forged source prefix (default 198.18.128.0/17 or 2001:2:0:8000::/49).
    pub src: Option<Cidr>,
    /// Shape.
    pub shape: Shape,
    /// Packets per second; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Pin to this core.
    pub core: Option<usize>,
    /// Frames per batch (per kick).
    pub batch: usize,
    /// AF_XDP zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Random seed (default: from the clock).
    pub seed: Option<u64>,
    /// Write the report here.
    pub json: Option<PathBuf>,
}

/// The default forged-source prefix for `dst`'s family (the lab routes both back through the
/// client).
pub fn default_source(dst: &SocketAddr) -> Cidr {
    if dst.is_ipv4() {
        "198.18.128.0/17".parse().expect("valid prefix")
    } else {
        "2001:2:0:8000::/49".parse().expect("valid prefix")
    }
}

/// What a flood did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FloodReport {
    /// Interface.
    pub interface: String,
    /// Queue.
    pub queue: u32,
    /// `copy` or `zero-copy`.
    pub bind_mode: String,
    /// Shape.
    pub shape: Shape,
    /// Destination.
    pub dst: SocketAddr,
    /// Forged source prefix.
    pub src: String,
    /// Bytes per frame.
    pub frame_len: usize,
    /// Requested rate (packets/s), `None` for flat out.
    pub rate: Option<f64>,
    /// Pinned core.
    pub core: Option<usize>,
    /// Frames handed to the socket.
    pub sent: u64,
    /// Frames the kernel reported transmitted (completion ring).
    pub completed: u64,
    /// Seconds spent sending.
    pub elapsed_s: f64,
    /// Offered packets per second: `completed / elapsed_s`.
    pub offered_pps: f64,
    /// `sendto` kicks.
    pub kicks: u64,
    /// TX descriptors the kernel refused.
    pub tx_invalid_descs: u64,
    /// The interface's counters over the run, if sysfs shows this namespace.
    pub interface_delta: Option<IfCounters>,
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flood {:?} -> {} from {} on {} queue {} ({}): {} sent, {} completed in {:.3}s = \
             {:.0} pps offered ({} bytes/frame, {} kicks, {} invalid)",
            self.shape,
            self.dst,
            self.src,
            self.interface,
            self.queue,
            self.bind_mode,
            self.sent,
            self.completed,
            self.elapsed_s,
            self.offered_pps,
            self.frame_len,
            self.kicks,
            self.tx_invalid_descs
        )?;
        if let Some(d) = &self.interface_delta {
            write!(
                f,
                "; {}: tx_packets +{} tx_dropped +{}",
                self.interface, d.tx_packets, d.tx_dropped
            )?;
        }
        Ok(())
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// An empty bucket at time `now` (offset from any fixed start).
    pub fn new(rate: f64, burst: usize, now: Duration) -> TokenBucket {
        TokenBucket {
            rate,
            burst: burst.max(1) as f64,
            tokens: 0.0,
            last: now,
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Duration) -> u64 {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now.max(self.last);
        self.tokens as u64
    }

    /// Spends `n` tokens.
    pub fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// How long until one token is available.
    pub fn wait(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }
}

/// Floods; returns the report.
pub fn run(config: &FloodConfig, stop: &AtomicBool) -> Result<FloodReport> {
    net::check_target(config.dst.ip(), false)?;
    let src = config.src.unwrap_or_else(|| default_source(&config.dst));
    net::check_source_range(&src)?;
    anyhow::ensure!(config.batch >= 1, "--batch must be at least 1");
    if let Some(r) = config.rate {
        anyhow::ensure!(r > 0.0 && r.is_finite(), "--rate must be positive");
    }
    if let Some(core) = config.core {
        net::pin_to_core(core)?;
    }
    let src_mac = net::interface_mac(&config.interface)?;
    let dst_mac = match config.dst_mac {
        Some(m) => m,
        None => net::resolve_neighbour(&config.interface, config.dst.ip())?,
    };
    let spec = FrameSpec {
        shape: config.shape,
        src_mac,
        dst_mac,
        src,
        dst: config.dst,
    };
    let seed = config
        .seed
        .unwrap_or_else(|| net::Rng::from_entropy().next_u64());
    let mut gen = FrameGen::new(&spec, seed)?;
    let xsk_config = XskConfig {
        frame_count: 64 + 64 + 2048 + 2048,
        fill_ring: 64,
        rx_ring: 64,
        tx_ring: 2048,
        completion_ring: 2048,
        program: XdpProgram::External,
        zero_copy: config.zero_copy,
        ..XskConfig::default()
    };
    let mut xsk = XskSocket::open(&config.interface, config.queue, &xsk_config)
        .with_context(|| format!("opening an AF_XDP socket on {}", config.interface))?;
    let before = IfCounters::read(&config.interface);

    // `run` starts measuring the server when it reads this line.
    println!(
        "flood: sending to {} from {} for {:?}",
        config.dst, spec.src, config.duration
    );
    let start = Instant::now();
    // The bucket holds 5 ms worth of packets (at least a batch): enough to make up for the
    // thread being preempted (on veth the receiver's softirq work runs on the sender's core),
    // short enough that the rate stays smooth at the scale of the server's queues.
    let mut bucket = config.rate.map(|r| {
        let burst = ((r * 0.005) as usize).max(config.batch);
        TokenBucket::new(r, burst, Duration::ZERO)
    });
    let limit = config.count.unwrap_or(u64::MAX);
    let mut sent: u64 = 0;
    let mut turns: u64 = 0;
    loop {
        let now = start.elapsed();
        if now >= config.duration || sent >= limit {
            break;
        }
        turns += 1;
        if turns % 64 == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let mut allowed = (config.batch as u64).min(limit - sent);
        if let Some(b) = &mut bucket {
            let avail = b.available(now);
            if avail == 0 {
                xsk.flush_tx().context("flushing the TX ring")?;
                let wait = b.wait();
                if wait > Duration::from_micros(200) {
                    std::thread::sleep(wait - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            allowed = allowed.min(avail);
        }
        let mut n = 0;
        while n < allowed {
            let Some(mut frame) = xsk.alloc_tx() else {
                break;
            };
            {
                let mut bytes = xsk.frame_mut(&mut frame);
                let len = gen.fill(bytes.buf_mut());
                bytes.set_len(len);
            }
            xsk.send(frame);
            n += 1;
        }
        if let Some(b) = &mut bucket {
            b.take(n);
        }
        sent += n;
        xsk.flush_tx().context("flushing the TX ring")?;
    }
    let elapsed = start.elapsed();
    // Let the last frames go out and their completions come back (bounded).
    let drain_until = Instant::now() + Duration::from_secs(1);
    while xsk.frame_counts().tx > 0 && Instant::now() < drain_until {
        xsk.flush_tx().context("flushing the TX ring")?;
        std::thread::sleep(Duration::from_micros(100));
    }
    let counters = xsk.counters();
    let stats = xsk.statistics().unwrap_or_default();
    let after = IfCounters::read(&config.interface);
    let completed = counters.tx_completed;
    let report = FloodReport {
        interface: config.interface.clone(),
        queue: config.queue,
        bind_mode: xsk.bind_mode().to_string(),
        shape: config.shape,
        dst: config.dst,
        src: src.to_string(),
        frame_len: gen.len(),
        rate: config.rate,
        core: config.core,
        sent,
        completed,
        elapsed_s: elapsed.as_secs_f64(),
        offered_pps: completed.min(sent) as f64 / elapsed.as_secs_f64().max(1e-9),
        kicks: counters.tx_kicks,
        tx_invalid_descs: stats.tx_invalid_descs,
        interface_delta: before.zip(after).map(|(b, a)| a.since(&b)),
    };
    if let Some(path) = &config.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_meters_and_caps() {
        let ms = Duration::from_millis;
        let mut b = TokenBucket::new(1000.0, 64, ms(0));
        assert_eq!(b.available(ms(0)), 0);
        assert_eq!(b.available(ms(10)), 10);
        b.take(10);
        assert_eq!(b.available(ms(10)), 0);
        assert!(b.wait() <= ms(1));
        // A long pause saves up at most the burst.
        assert_eq!(b.available(ms(1000)), 64);
    }
}
