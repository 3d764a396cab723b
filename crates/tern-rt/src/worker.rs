//! One run-to-completion worker per receive queue: it owns the queue's AF_XDP socket, a
//! `tern_tcp::Shard` and the application state, and nothing else touches them. A loop turn:
//! read the clock once → refill the fill ring → receive a batch → parse each frame → feed the
//! shard → run the application callbacks → fire due timers → transmit a batch → wait (poll)
//! or spin when idle. No locks and no allocation on this path; control (statistics, shutdown)
//! goes through a channel and an atomic flag.

use crate::app::{App, AppDriver};
use crate::clock;
use crate::l2::{frame_packet, L2Cache};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration as StdDuration;
use tern_tcp::{Counters, Duration, Instant, Shard};
use tern_wire::{parse_frame, ChecksumMode, EtherType, L3, L4};
use tern_xsk::{Frame, SysError, XskCounters, XskSocket, XskStats};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Frames taken from the RX ring per turn at most.
    pub rx_batch: usize,
    /// Spin instead of sleeping in `poll(2)` when idle. Measure before turning it on: a
    /// spinning worker on the core that runs the NIC's NAPI work starves it.
    pub spin: bool,
    /// Longest sleep when idle (the next timer may cut it short).
    pub max_idle_wait: StdDuration,
    /// How often a statistics snapshot goes to the control channel.
    pub stats_interval: StdDuration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            rx_batch: 64,
            spin: false,
            max_idle_wait: StdDuration::from_millis(10),
            stats_interval: StdDuration::from_secs(1),
        }
    }
}

/// A worker's counters and gauges at one moment.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    /// The receive queue the worker serves.
    pub queue: u32,
    /// The shard's counters.
    pub tcp: Counters,
    /// Frames dropped because they did not parse, by `tern_wire::Error` index.
    pub wire_drops: Vec<u64>,
    /// Frames that were not TCP over IP (the XDP program should not steer those).
    pub not_tcp: u64,
    /// Replies sent with the fallback Ethernet header (peer not in the L2 cache).
    pub l2_misses: u64,
    /// Turns that ended with segments still to send and no free frame.
    pub tx_stalls: u64,
    /// Connections the shard holds and the application holds.
    pub connections: usize,
    /// Connections the application holds.
    pub app_connections: usize,
    /// TIME-WAIT entries.
    pub timewait: usize,
    /// The kernel's XDP_STATISTICS for the socket, when readable.
    pub xsk: Option<XskStats>,
    /// The socket's user-space counters.
    pub xsk_counters: XskCounters,
}

/// What the main thread tells workers.
#[derive(Debug, Default)]
pub struct Control {
    /// Stop accepting, close connections, then return once they are gone or `drain` passed.
    pub stop: AtomicBool,
}

/// Why a worker stopped with an error.
#[derive(Debug)]
pub enum WorkerError {
    /// A ring operation failed.
    Xsk(SysError),
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerError::Xsk(e) => write!(f, "AF_XDP socket: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {}

impl From<SysError> for WorkerError {
    fn from(e: SysError) -> Self {
        WorkerError::Xsk(e)
    }
}

/// One queue's worker.
pub struct Worker<A: App> {
    queue: u32,
    xsk: XskSocket,
    shard: Shard,
    driver: AppDriver<A>,
    l2: L2Cache,
    config: WorkerConfig,
    rx: Vec<Frame>,
    wire_drops: Vec<u64>,
    not_tcp: u64,
    tx_stalls: u64,
}

impl<A: App> std::fmt::Debug for Worker<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue)
            .field("connections", &self.shard.connection_count())
            .field("app_connections", &self.driver.live())
            .finish_non_exhaustive()
    }
}

/// What one loop turn did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turn {
    /// Frames received.
    pub received: usize,
    /// Frames sent.
    pub sent: usize,
}

impl<A: App> Worker<A> {
    /// A worker for `xsk`'s queue, driving `shard` and `driver`'s application.
    pub fn new(xsk: XskSocket, shard: Shard, driver: AppDriver<A>, config: WorkerConfig) -> Self {
        Worker {
            queue: xsk.queue_id(),
            xsk,
            shard,
            driver,
            l2: L2Cache::default(),
            rx: Vec::with_capacity(config.rx_batch),
            config,
            wire_drops: vec![0; tern_wire::Error::COUNT],
            not_tcp: 0,
            tx_stalls: 0,
        }
    }

    /// The shard.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The application driver.
    pub fn driver(&self) -> &AppDriver<A> {
        &self.driver
    }

    /// One loop turn at `now`.
    pub fn turn(&mut self, now: Instant) -> Result<Turn, WorkerError> {
        self.xsk.refill()?;
        let mut rx = std::mem::take(&mut self.rx);
        let received = self.xsk.rx_batch(&mut rx, self.config.rx_batch)?;
        for frame in rx.drain(..) {
            self.ingest(now, &frame);
            self.xsk.recycle(frame);
        }
        self.rx = rx;
        self.driver.run(&mut self.shard, now);
        if self.shard.poll_timeout().is_some_and(|t| t <= now) {
            self.shard.on_timeout(now);
            self.driver.run(&mut self.shard, now);
        }
        let sent = self.transmit(now);
        self.xsk.flush_tx()?;
        Ok(Turn { received, sent })
    }

    /// Parses one received frame and hands its segment to the shard.
    fn ingest(&mut self, now: Instant, frame: &Frame) {
        let data = self.xsk.data(frame);
        match parse_frame(data, ChecksumMode::Verify) {
            Ok(parsed) => match parsed.l3 {
                L3::Ip {
                    ip,
                    l4: L4::Tcp(tcp),
                } => {
                    self.l2.learn(ip.src_addr(), &parsed.eth);
                    self.shard
                        .on_segment(now, ip.src_addr(), ip.dst_addr(), &tcp);
                }
                _ => self.not_tcp += 1,
            },
            Err(e) => self.wire_drops[e.index()] += 1,
        }
    }

    /// Sends what the shard has to send, as long as frames are free.
    fn transmit(&mut self, now: Instant) -> usize {
        let mut sent = 0;
        loop {
            let Some(mut frame) = self.xsk.alloc_tx() else {
                if self.shard.transmit_pending() {
                    self.tx_stalls += 1;
                }
                return sent;
            };
            let mut fm = self.xsk.frame_mut(&mut frame);
            let buf = fm.buf_mut();
            let Some(ip_len) = self.shard.poll_transmit(now, &mut buf[14..]) else {
                self.xsk.recycle(frame);
                return sent;
            };
            let (dst, ethertype) = match buf[14] >> 4 {
                6 => (ipv6_dst(&buf[14..]), EtherType::Ipv6),
                _ => (ipv4_dst(&buf[14..]), EtherType::Ipv4),
            };
            let Some(header) = self.l2.lookup(dst, ethertype) else {
                // Nothing received yet on this queue: no peer to reply to.
                self.xsk.recycle(frame);
                continue;
            };
            match frame_packet(buf, &header, ip_len) {
                Some(len) => {
                    fm.set_len(len);
                    self.xsk.send(frame);
                    sent += 1;
                }
                None => {
                    self.xsk.recycle(frame);
                }
            }
        }
    }

    /// A snapshot of the worker's statistics.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            queue: self.queue,
            tcp: self.shard.counters().clone(),
            wire_drops: self.wire_drops.clone(),
            not_tcp: self.not_tcp,
            l2_misses: self.l2.misses,
            tx_stalls: self.tx_stalls,
            connections: self.shard.connection_count(),
            app_connections: self.driver.live(),
            timewait: self.shard.timewait_count(),
            xsk: self.xsk.statistics().ok(),
            xsk_counters: self.xsk.counters(),
        }
    }

    /// Runs until `control.stop` is set, then drains: stops accepting, closes every
    /// connection gracefully, and returns when they are gone or `drain` has passed (the rest
    /// are aborted). Sends a snapshot to `stats` every `stats_interval` and one at the end.
    pub fn run(
        &mut self,
        control: &Control,
        stats: &Sender<WorkerStats>,
        drain: StdDuration,
    ) -> Result<(), WorkerError> {
        let mut next_stats = clock::now() + to_engine(self.config.stats_interval);
        let mut draining_since: Option<Instant> = None;
        loop {
            let now = clock::now();
            let turn = self.turn(now)?;
            if now >= next_stats {
                let _ = stats.send(self.stats());
                next_stats = now + to_engine(self.config.stats_interval);
            }
            if draining_since.is_none() && control.stop.load(Ordering::Relaxed) {
                draining_since = Some(now);
                self.driver.stop_accepting(&mut self.shard, now);
                self.driver.close_all(&mut self.shard, now);
            }
            if let Some(since) = draining_since {
                let gone = self.shard.connection_count() == 0;
                if gone || now.saturating_duration_since(since) >= to_engine(drain) {
                    let all: Vec<_> = self.shard.connections().collect();
                    for c in all {
                        let _ = self.shard.abort(now, c);
                    }
                    self.transmit(now);
                    self.xsk.flush_tx()?;
                    let _ = stats.send(self.stats());
                    return Ok(());
                }
            }
            if turn.received == 0 && turn.sent == 0 && !self.config.spin {
                let wait = self
                    .shard
                    .poll_timeout()
                    .map_or(self.config.max_idle_wait, |t| {
                        StdDuration::from_micros(t.saturating_duration_since(now).as_micros())
                    })
                    .min(self.config.max_idle_wait);
                if !wait.is_zero() {
                    self.xsk.poll_wait(wait)?;
                }
            }
        }
    }
}

fn to_engine(d: StdDuration) -> Duration {
    Duration::from_micros(d.as_micros().min(u128::from(u64::MAX)) as u64)
}

fn ipv4_dst(packet: &[u8]) -> core::net::IpAddr {
    let o: [u8; 4] = packet[16..20]
        .try_into()
        .expect("the engine wrote a full IPv4 header");
    core::net::IpAddr::from(o)
}

fn ipv6_dst(packet: &[u8]) -> core::net::IpAddr {
    let o: [u8; 16] = packet[24..40]
        .try_into()
        .expect("the engine wrote a full IPv6 header");
    core::net::IpAddr::from(o)
}
