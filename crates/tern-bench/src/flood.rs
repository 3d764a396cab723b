//! `tern-bench flood`: a SYN (or ACK) flood, transmitted through an AF_XDP socket or built and
//! sent inside the kernel by an XDP program in live-frames mode ([`TxPath`]).
//!
//! **AF_XDP** (`--tx af-xdp`). The socket is TX-only: it is opened with [`XdpProgram::External`] and nothing ever
//! redirects packets to it, so no XDP program is attached to the flooding interface at all
//! (the kernel's AF_XDP transmit path does not need one; the lab test checks this). Frames come
//! from [`crate::frames::FrameGen`] straight into the UMEM, a batch at a time, and
//! go out at a fixed rate (token bucket) or as fast as the socket takes them, bounded by
//! `--duration` and `--count`. The offered rate is what the kernel took: frames the completion
//! ring gave back per second, cross-checked against the interface's own `tx_packets`.
//!
//! **Live frames** (`--tx live-frames`). `bpf/tern_flood.bpf.c` is loaded with the same template
//! and layout ([`FrameGen::live_config`]) and run through BPF_PROG_RUN with
//! `BPF_F_TEST_XDP_LIVE_FRAMES` ([`tern_bpf::FloodProgram`]): one system call builds and
//! transmits a whole chunk of frames, with no descriptors, no UMEM and no completion ring. The
//! kernel says nothing per frame, so the offered count is the frames the program built minus
//! what the interface counted as transmit drops over the run (on veth, frames the peer's ring
//! had no room for), and at most what it counted as transmitted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tern_xsk::{XdpProgram, XskConfig, XskSocket, ZeroCopy};

use crate::frames::{FrameGen, FrameSpec, Shape};
use crate::net::{self, Cidr, IfCounters};

/// How flood frames reach the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TxPath {
    /// A TX-only AF_XDP socket, frames written into its UMEM from user space.
    #[default]
    AfXdp,
    /// An XDP program run by BPF_PROG_RUN in live-frames mode (Linux 5.18+): frames are built
    /// and transmitted in the kernel.
    LiveFrames,
}

impl TxPath {
    /// The faster path for the job, as measured in the lab (docs/benchmarks.md): live frames
    /// flat out (about twice AF_XDP's rate), AF_XDP at a set rate, which it meters smoothly
    /// (a live-frames call leaves as one burst of 25 ms worth of frames).
    pub fn auto(rate: Option<f64>) -> TxPath {
        if rate.is_some() {
            TxPath::AfXdp
        } else {
            TxPath::LiveFrames
        }
    }
}

impl std::fmt::Display for TxPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TxPath::AfXdp => "af-xdp",
            TxPath::LiveFrames => "live-frames",
        })
    }
}

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
    /// How frames are sent; `None`: [`TxPath::auto`].
    pub tx: Option<TxPath>,
    /// Packets per second; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Pin to this core.
    pub core: Option<usize>,
    /// Frames per batch: per kick (AF_XDP), per driver transmit call (live frames).
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
    /// How frames were sent.
    #[serde(default)]
    pub tx_path: TxPath,
    /// `copy` or `zero-copy` for AF_XDP; `kernel` for live frames.
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
    /// Frames handed to the socket (AF_XDP) or built by the program (live frames).
    pub sent: u64,
    /// Frames the kernel reported transmitted: the completion ring (AF_XDP), or `sent` minus the
    /// interface's transmit drops (live frames).
    pub completed: u64,
    /// Seconds spent sending.
    pub elapsed_s: f64,
    /// Offered packets per second: `completed / elapsed_s`.
    pub offered_pps: f64,
    /// `sendto` kicks (AF_XDP) or BPF_PROG_RUN calls (live frames).
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
            "flood {:?} -> {} from {} on {} queue {} ({}, {}): {} sent, {} completed in {:.3}s = \
             {:.0} pps offered ({} bytes/frame, {} kicks, {} invalid)",
            self.shape,
            self.dst,
            self.src,
            self.interface,
            self.queue,
            self.tx_path,
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
        self.wait_for(1)
    }

    /// How long until `n` tokens are available (never, if `n` is over the burst: then the
    /// time to fill the bucket).
    pub fn wait_for(&self, n: u64) -> Duration {
        let n = (n as f64).min(self.burst);
        Duration::from_secs_f64(((n - self.tokens) / self.rate).max(0.0))
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
    let gen = FrameGen::new(&spec, seed)?;
    match config.tx.unwrap_or_else(|| TxPath::auto(config.rate)) {
        TxPath::AfXdp => run_af_xdp(config, &spec, gen, stop),
        TxPath::LiveFrames => {
            let prog = tern_bpf::FloodProgram::load(gen.template(), &gen.live_config())
                .context("loading the live-frames flood program (bpf/tern_flood.bpf.c)")?;
            let iface = tern_bpf::Interface::by_name(&config.interface)?;
            // Chosen, not asked for: fall back to AF_XDP where the driver takes no XDP
            // transmit, rather than fail as an explicit --tx live-frames does.
            if config.tx.is_none() && !live_frames_leave(&prog, &iface)? {
                eprintln!(
                    "flood: {} took none of 64 test frames sent with XDP_TX (on veth the peer \
                     needs an XDP program or GRO for that); sending through AF_XDP instead",
                    config.interface
                );
                return run_af_xdp(config, &spec, gen, stop);
            }
            run_live_frames(config, &spec, &gen, &prog, &iface, stop)
        }
    }
}

/// Sends 64 frames in live-frames mode and tells whether the interface counted any of them as
/// transmitted (`true` when its counters cannot be read: the flood's own check then decides).
fn live_frames_leave(prog: &tern_bpf::FloodProgram, iface: &tern_bpf::Interface) -> Result<bool> {
    let before = IfCounters::read(iface.name());
    prog.send(iface.index(), 64, 64)
        .with_context(|| format!("transmitting on {}", iface.name()))?;
    let after = IfCounters::read(iface.name());
    Ok(before
        .zip(after)
        .is_none_or(|(b, a)| a.since(&b).tx_packets > 0))
}

/// What a sending loop returns.
struct Sent {
    tx_path: TxPath,
    sent: u64,
    completed: u64,
    elapsed: Duration,
    kicks: u64,
    tx_invalid_descs: u64,
    bind_mode: String,
    before: Option<IfCounters>,
    after: Option<IfCounters>,
}

/// Calls `send(n)` until the duration, the count or `stop` ends the flood: at most `chunk`
/// frames a turn, metered by the token bucket when a rate is set; `send` returns how many it
/// sent. While the bucket is empty it is called with 0, to flush what is queued. Returns the
/// frames sent and the time taken.
fn send_loop(
    config: &FloodConfig,
    chunk: u64,
    stop: &AtomicBool,
    mut send: impl FnMut(u64) -> Result<u64>,
) -> Result<(u64, Duration)> {
    // `run` starts measuring the server when it reads this line.
    println!(
        "flood: sending to {} ({}) for {:?}",
        config.dst,
        TxPath::AfXdp,
        config.duration
    );
    let start = Instant::now();
    // The bucket holds 5 ms worth of packets (at least a chunk): enough to make up for the
    // thread being preempted (on veth the receiver's softirq work runs on the sender's core),
    // short enough that the rate stays smooth at the scale of the server's queues.
    let mut bucket = config.rate.map(|r| {
        let burst = ((r * 0.005) as u64).max(chunk);
        TokenBucket::new(r, burst as usize, Duration::ZERO)
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
        let mut allowed = chunk.min(limit - sent);
        if let Some(b) = &mut bucket {
            let avail = b.available(now);
            if avail == 0 {
                send(0)?;
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
        let n = send(allowed)?;
        if let Some(b) = &mut bucket {
            b.take(n);
        }
        sent += n;
    }
    Ok((sent, start.elapsed()))
}

fn run_af_xdp(
    config: &FloodConfig,
    spec: &FrameSpec,
    mut gen: FrameGen,
    stop: &AtomicBool,
) -> Result<FloodReport> {
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
    let (sent, elapsed) = send_loop(config, config.batch as u64, stop, |allowed| {
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
        xsk.flush_tx().context("flushing the TX ring")?;
        Ok(n)
    })?;
    // Let the last frames go out and their completions come back (bounded).
    let drain_until = Instant::now() + Duration::from_secs(1);
    while xsk.frame_counts().tx > 0 && Instant::now() < drain_until {
        xsk.flush_tx().context("flushing the TX ring")?;
        std::thread::sleep(Duration::from_micros(100));
    }
    let counters = xsk.counters();
    let stats = xsk.statistics().unwrap_or_default();
    let result = Sent {
        tx_path: TxPath::AfXdp,
        sent,
        completed: counters.tx_completed,
        elapsed,
        kicks: counters.tx_kicks,
        tx_invalid_descs: stats.tx_invalid_descs,
        bind_mode: xsk.bind_mode().to_string(),
        before,
        after: IfCounters::read(&config.interface),
    };
    finish(config, spec, &gen, result)
}

/// Frames per BPF_PROG_RUN call when flooding flat out: about 30 ms of work at this machine's
/// rate, so the fixed cost of a call (below) is small beside it, and the duration and the stop
/// flag are still checked often.
const LIVE_CHUNK: u64 = 65536;

/// Threads issuing BPF_PROG_RUN calls side by side, all on the flood's core. Each live-frames
/// call ends by tearing down the page pool it set up, which waits about 25 ms here (an RCU grace
/// period; the profile shows the core idle meanwhile): a second thread's call runs in that wait.
/// Measured on the lab: one thread 1.4 Mpps, two 1.9 Mpps with 65536-frame calls.
const LIVE_THREADS: usize = 2;

/// At a set rate, a call carries this long's worth of frames: with the fixed cost of a call and
/// two threads, fewer calls per second than this cannot keep up. The frames of one call leave
/// as one burst at the generator's full speed, so a metered live-frames flood is bursty at this
/// scale (the AF_XDP path meters per batch of 64).
const LIVE_RATE_PERIOD_S: f64 = 0.025;

fn run_live_frames(
    config: &FloodConfig,
    spec: &FrameSpec,
    gen: &FrameGen,
    prog: &tern_bpf::FloodProgram,
    iface: &tern_bpf::Interface,
    stop: &AtomicBool,
) -> Result<FloodReport> {
    // Frames built before this run (the probe's) are not this run's.
    let built_before = prog.counters()?.built;
    let batch = u32::try_from(config.batch.clamp(1, 256)).unwrap_or(64);
    let chunk = match config.rate {
        None => LIVE_CHUNK,
        Some(r) => ((r * LIVE_RATE_PERIOD_S) as u64).clamp(64, LIVE_CHUNK),
    };
    struct Shared {
        bucket: Option<TokenBucket>,
        sent: u64,
        calls: u64,
    }
    let shared = Mutex::new(Shared {
        bucket: config
            .rate
            .map(|r| TokenBucket::new(r, chunk as usize, Duration::ZERO)),
        sent: 0,
        calls: 0,
    });
    let limit = config.count.unwrap_or(u64::MAX);
    let before = IfCounters::read(&config.interface);
    // `run` starts measuring the server when it reads this line.
    println!(
        "flood: sending to {} ({}) for {:?}",
        config.dst,
        TxPath::LiveFrames,
        config.duration
    );
    let start = Instant::now();
    let worker = || -> Result<()> {
        loop {
            let n = {
                let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                let now = start.elapsed();
                if now >= config.duration || st.sent >= limit || stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let n = chunk.min(limit - st.sent);
                if let Some(b) = &mut st.bucket {
                    if b.available(now) < n {
                        let wait = b.wait_for(n).min(Duration::from_millis(5));
                        drop(st);
                        std::thread::sleep(wait);
                        continue;
                    }
                    b.take(n);
                }
                st.sent += n;
                st.calls += 1;
                n
            };
            prog.send(iface.index(), n as u32, batch)
                .with_context(|| format!("transmitting on {}", config.interface))?;
        }
    };
    std::thread::scope(|scope| -> Result<()> {
        let threads: Vec<_> = (0..LIVE_THREADS).map(|_| scope.spawn(worker)).collect();
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a flood thread panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = start.elapsed();
    let after = IfCounters::read(&config.interface);
    let mut counters = prog.counters()?;
    counters.built -= built_before;
    anyhow::ensure!(
        counters.aborted == 0,
        "the flood program refused {} frames (its configuration does not fit the template: a bug)",
        counters.aborted
    );
    let shared = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    // The kernel reports nothing per frame: what left is what the program built, less the
    // interface's transmit drops (a full peer ring on veth), and at most what the interface
    // counted as transmitted (which also holds any other traffic, so it is only a bound).
    let delta = before.zip(after).map(|(b, a)| a.since(&b));
    let completed = match delta {
        Some(d) => counters
            .built
            .saturating_sub(d.tx_dropped)
            .min(d.tx_packets),
        None => counters.built,
    };
    anyhow::ensure!(
        counters.built == 0 || completed > 0,
        "{} transmitted none of the {} frames the flood program built: the driver refused XDP \
         transmit. On veth the peer needs NAPI for it: attach an XDP program to the peer \
         (`tern-bench xdp-pass -i PEER`, or ternd) or turn on its GRO (`ethtool -K PEER gro \
         on`); or use `--tx af-xdp`",
        config.interface,
        counters.built
    );
    let result = Sent {
        tx_path: TxPath::LiveFrames,
        sent: counters.built,
        completed,
        elapsed,
        kicks: shared.calls,
        tx_invalid_descs: 0,
        bind_mode: "kernel".to_owned(),
        before,
        after,
    };
    finish(config, spec, gen, result)
}

fn finish(config: &FloodConfig, spec: &FrameSpec, gen: &FrameGen, r: Sent) -> Result<FloodReport> {
    let report = FloodReport {
        interface: config.interface.clone(),
        queue: config.queue,
        tx_path: r.tx_path,
        bind_mode: r.bind_mode,
        shape: config.shape,
        dst: config.dst,
        src: spec.src.to_string(),
        frame_len: gen.len(),
        rate: config.rate,
        core: config.core,
        sent: r.sent,
        completed: r.completed,
        elapsed_s: r.elapsed.as_secs_f64(),
        offered_pps: r.completed.min(r.sent) as f64 / r.elapsed.as_secs_f64().max(1e-9),
        kicks: r.kicks,
        tx_invalid_descs: r.tx_invalid_descs,
        interface_delta: r.before.zip(r.after).map(|(b, a)| a.since(&b)),
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
        assert_eq!(b.wait_for(5), ms(5));
        // A long pause saves up at most the burst.
        assert_eq!(b.available(ms(1000)), 64);
    }
}
