//! One direction of a simulated link: its configuration ([`LinkConfig`], which documents the
//! stages a packet goes through), its state and statistics ([`Link`], [`LinkStats`]), and the
//! fate it deals each packet.

use std::collections::VecDeque;
use std::fmt;

use tern_tcp::time::{Duration, Instant};

use crate::rng::Rng;

/// A deterministic drop hook: called with each packet offered to the link and its index
/// (0-based, counting every packet ever offered to this link direction); `true` drops it.
pub type DropFilter = Box<dyn FnMut(&[u8], u64) -> bool>;

/// How one direction of a link behaves. The default is a clean link with 1 ms of delay, no
/// jitter, loss, duplication or corruption, unlimited bandwidth and no queue limit.
///
/// A packet offered to a link goes through these stages, in this order:
///
/// 1. **Drop filter** — the optional deterministic hook sees the packet and its index (0 for
///    the first packet ever offered to this link direction); `true` drops it (`filtered`).
/// 2. **Queue and serialization** — with a bandwidth set, the packet waits behind the packets
///    still being serialized, then occupies the link for `len × 8 / bandwidth` seconds
///    (`len` is the IP packet length; no link-layer overhead is added). If the queue (packets
///    accepted and not yet fully serialized, including the one on the wire) already holds
///    `queue_packets` packets, or would exceed `queue_bytes` bytes with this one, the packet is
///    tail-dropped (`queue_dropped`). Without a bandwidth there is no queue and no limit.
/// 3. **Loss** — with probability `loss` the packet is lost (`lost`). Lost packets did occupy
///    the link: loss happens on the wire, after serialization.
/// 4. **Duplication** — with probability `duplicate` a second copy is delivered too
///    (`duplicated`); it shares the departure time but gets its own jitter and corruption.
/// 5. **Per copy: corruption and jitter** — with probability `corrupt` one uniformly chosen bit
///    of the copy is flipped (`corrupted`); the copy arrives `delay` plus a uniform
///    `[0, jitter]` after its last bit left. Jitter is independent per copy, so a later
///    packet can overtake an earlier one: this is how the simulator reorders.
///
/// A packet dropped by the filter or a full queue consumes no random draws; every other packet
/// consumes the same number whatever the probabilities are, so with the same seed and the same
/// offered packets, raising `loss` only adds losses (the packets lost at 1 % are among those
/// lost at 2 %).
///
/// Serialization is tracked in nanoseconds; the arrival time is rounded up to the engine's
/// microsecond.
///
/// Probabilities are in `[0, 1]`; the builder setters panic outside that range (a 5 % loss is
/// `0.05`, not `5.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay added to every packet.
    pub delay: Duration,
    /// Upper bound of the uniform extra delay drawn per packet copy; reorders packets.
    pub jitter: Duration,
    /// Probability that a packet is lost on the wire.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that one bit of a delivered copy is flipped.
    pub corrupt: f64,
    /// Link rate in bits per second; `None` is infinitely fast (no serialization, no queue).
    pub bandwidth: Option<u64>,
    /// Most packets in the link's queue (including the one being serialized); `None` unbounded.
    pub queue_packets: Option<usize>,
    /// Most bytes in the link's queue (including the packet being serialized); `None` unbounded.
    pub queue_bytes: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            bandwidth: None,
            queue_packets: None,
            queue_bytes: None,
        }
    }
}

fn probability(name: &str, p: f64) -> f64 {
    assert!(
        (0.0..=1.0).contains(&p),
        "link {name} probability {p} is outside [0, 1]"
    );
    p
}

impl LinkConfig {
    /// The default: a clean 1 ms link.
    pub fn new() -> Self {
        Self::default()
    }

    /// A link with no delay at all: packets arrive at the instant they are sent.
    pub fn instant() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            ..Self::default()
        }
    }

    /// Sets the propagation delay.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter bound.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the loss probability. Panics outside `[0, 1]`.
    #[must_use]
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = probability("loss", p);
        self
    }

    /// Sets the duplication probability. Panics outside `[0, 1]`.
    #[must_use]
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = probability("duplicate", p);
        self
    }

    /// Sets the corruption probability. Panics outside `[0, 1]`.
    #[must_use]
    pub fn corrupt(mut self, p: f64) -> Self {
        self.corrupt = probability("corrupt", p);
        self
    }

    /// Sets the rate in bits per second. Panics on 0.
    #[must_use]
    pub fn bandwidth(mut self, bits_per_second: u64) -> Self {
        assert!(bits_per_second > 0, "link bandwidth must be positive");
        self.bandwidth = Some(bits_per_second);
        self
    }

    /// Removes the rate limit (and with it the queue).
    #[must_use]
    pub fn unlimited_bandwidth(mut self) -> Self {
        self.bandwidth = None;
        self
    }

    /// Limits the queue to `packets` packets.
    #[must_use]
    pub fn queue_packets(mut self, packets: usize) -> Self {
        self.queue_packets = Some(packets);
        self
    }

    /// Limits the queue to `bytes` bytes.
    #[must_use]
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = Some(bytes);
        self
    }
}

/// What happened to the packets offered to one link direction.
///
/// Every offered packet is counted once in `sent` and, once it has left the link, exactly once
/// in `filtered`, `queue_dropped` or `lost`, or delivered; `delivered` also counts duplicates,
/// so `delivered = sent − filtered − queue_dropped − lost + duplicated − in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LinkStats {
    /// Packets offered to the link.
    pub sent: u64,
    /// Bytes offered to the link.
    pub bytes_sent: u64,
    /// Copies handed to the receiving host (duplicates included).
    pub delivered: u64,
    /// Bytes handed to the receiving host.
    pub bytes_delivered: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets dropped by the drop filter.
    pub filtered: u64,
    /// Packets tail-dropped because the queue was full.
    pub queue_dropped: u64,
    /// Packets delivered twice.
    pub duplicated: u64,
    /// Copies with a bit flipped.
    pub corrupted: u64,
}

/// Why a packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No host owns the destination address (and there is no default route).
    Unroutable,
    /// The link's drop filter refused it.
    Filtered,
    /// The link's queue was full.
    QueueFull,
    /// Lost at random.
    Lost,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::Unroutable => "unroutable",
            DropReason::Filtered => "filtered",
            DropReason::QueueFull => "queue full",
            DropReason::Lost => "lost",
        })
    }
}

/// When one copy arrives and which bit, if any, is flipped in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub(crate) at: Instant,
    pub(crate) flip_bit: Option<usize>,
}

/// A packet's fate on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Dropped(DropReason),
    Arrives {
        first: Arrival,
        duplicate: Option<Arrival>,
    },
}

/// One direction of a link between two hosts (or a host and itself).
pub struct Link {
    config: LinkConfig,
    seed: u64,
    rng: Rng,
    stats: LinkStats,
    /// When the last accepted packet's last bit leaves, in nanoseconds since the origin.
    busy_until_ns: u64,
    /// Accepted packets not yet fully serialized: (end of serialization in ns, length).
    queue: VecDeque<(u64, usize)>,
    queued_bytes: usize,
    drop_filter: Option<DropFilter>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .field("seed", &self.seed)
            .field("stats", &self.stats)
            .field("queued", &self.queue.len())
            .field("drop_filter", &self.drop_filter.is_some())
            .finish()
    }
}

impl Link {
    pub(crate) fn new(config: LinkConfig, seed: u64) -> Link {
        Link {
            config,
            seed,
            rng: Rng::new(seed),
            stats: LinkStats::default(),
            busy_until_ns: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            drop_filter: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The configuration, to change; takes effect for packets offered from now on.
    pub fn config_mut(&mut self) -> &mut LinkConfig {
        &mut self.config
    }

    /// Replaces the configuration; takes effect for packets offered from now on.
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// The statistics so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The seed this link's random stream started from (derived from the simulation seed and
    /// the endpoints unless set with [`reseed`](Self::reseed)).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Restarts this link's random stream from `seed`.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = Rng::new(seed);
    }

    /// Installs a deterministic drop hook, replacing any previous one: `filter(packet, index)`
    /// returning `true` drops the packet, where `index` counts every packet offered to this
    /// link direction from 0. It runs first, before the queue and the random stages, and
    /// consumes no random draws.
    pub fn set_drop_filter(&mut self, filter: impl FnMut(&[u8], u64) -> bool + 'static) {
        self.drop_filter = Some(Box::new(filter));
    }

    /// Removes the drop hook.
    pub fn clear_drop_filter(&mut self) {
        self.drop_filter = None;
    }

    /// Packets accepted and not yet fully serialized at `now`.
    pub fn queued_packets(&self, now: Instant) -> usize {
        let now_ns = now.as_micros().saturating_mul(1_000);
        self.queue.iter().filter(|&&(end, _)| end > now_ns).count()
    }

    pub(crate) fn record_delivery(&mut self, len: usize) {
        self.stats.delivered += 1;
        self.stats.bytes_delivered += len as u64;
    }

    /// Decides the fate of `packet`, offered at `now`.
    pub(crate) fn offer(&mut self, now: Instant, packet: &[u8]) -> Fate {
        let len = packet.len();
        let index = self.stats.sent;
        self.stats.sent += 1;
        self.stats.bytes_sent += len as u64;

        if let Some(filter) = self.drop_filter.as_mut() {
            if filter(packet, index) {
                self.stats.filtered += 1;
                return Fate::Dropped(DropReason::Filtered);
            }
        }

        let now_ns = now.as_micros().saturating_mul(1_000);
        let departure_ns = match self.config.bandwidth {
            Some(bandwidth) if bandwidth > 0 => match self.serialize(now_ns, len, bandwidth) {
                Some(end) => end,
                None => {
                    self.stats.queue_dropped += 1;
                    return Fate::Dropped(DropReason::QueueFull);
                }
            },
            _ => now_ns,
        };
        let departure = Instant::from_micros(departure_ns.div_ceil(1_000)) + self.config.delay;

        // A fixed number of draws per packet, whatever the probabilities (see the module docs).
        let lost = self.rng.unit() < self.config.loss;
        let duplicated = self.rng.unit() < self.config.duplicate;
        let first = self.copy(departure, len);
        let second = self.copy(departure, len);

        if lost {
            self.stats.lost += 1;
            return Fate::Dropped(DropReason::Lost);
        }
        let duplicate = duplicated.then_some(second);
        for copy in core::iter::once(&first).chain(&duplicate) {
            if copy.flip_bit.is_some() {
                self.stats.corrupted += 1;
            }
        }
        if duplicated {
            self.stats.duplicated += 1;
        }
        Fate::Arrives { first, duplicate }
    }

    /// Queues a packet behind those still serializing; the end of its serialization in ns, or
    /// `None` if the queue is full.
    fn serialize(&mut self, now_ns: u64, len: usize, bandwidth: u64) -> Option<u64> {
        while let Some(&(end, bytes)) = self.queue.front() {
            if end > now_ns {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= bytes;
        }
        let full_packets = self
            .config
            .queue_packets
            .is_some_and(|limit| self.queue.len() >= limit);
        let full_bytes = self
            .config
            .queue_bytes
            .is_some_and(|limit| self.queued_bytes + len > limit);
        if full_packets || full_bytes {
            return None;
        }
        let bits = len as u128 * 8;
        let ns = (bits * 1_000_000_000).div_ceil(u128::from(bandwidth));
        let start = now_ns.max(self.busy_until_ns);
        let end = start.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX));
        self.busy_until_ns = end;
        self.queue.push_back((end, len));
        self.queued_bytes += len;
        Some(end)
    }

    fn copy(&mut self, departure: Instant, len: usize) -> Arrival {
        let corrupt = self.rng.unit() < self.config.corrupt;
        let bit = self.rng.below(len as u64 * 8) as usize;
        let jitter = self
            .rng
            .below(self.config.jitter.as_micros().saturating_add(1));
        Arrival {
            at: departure + Duration::from_micros(jitter),
            flip_bit: (corrupt && len > 0).then_some(bit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(link: &mut Link, now: Instant, len: usize) -> Vec<Instant> {
        match link.offer(now, &vec![0u8; len]) {
            Fate::Dropped(_) => vec![],
            Fate::Arrives { first, duplicate } => core::iter::once(first)
                .chain(duplicate)
                .map(|a| a.at)
                .collect(),
        }
    }

    #[test]
    fn serialization_queues_packets_back_to_back() {
        // 1 Mbit/s: 125 bytes take exactly 1 ms.
        let cfg = LinkConfig::new()
            .delay(Duration::from_millis(10))
            .bandwidth(1_000_000);
        let mut link = Link::new(cfg, 1);
        let t0 = Instant::ZERO;
        assert_eq!(arrivals(&mut link, t0, 125), [Instant::from_millis(11)]);
        assert_eq!(arrivals(&mut link, t0, 125), [Instant::from_millis(12)]);
        assert_eq!(link.queued_packets(t0), 2);
        // After the link drained, a packet starts at once.
        let t = Instant::from_millis(5);
        assert_eq!(link.queued_packets(t), 0);
        assert_eq!(arrivals(&mut link, t, 250), [Instant::from_millis(17)]);
    }

    #[test]
    fn sub_microsecond_serialization_accumulates_exactly() {
        // 1 Gbit/s: 40 bytes take 320 ns; 25 of them take exactly 8 µs.
        let mut link = Link::new(LinkConfig::instant().bandwidth(1_000_000_000), 1);
        let mut last = Vec::new();
        for _ in 0..25 {
            last = arrivals(&mut link, Instant::ZERO, 40);
        }
        assert_eq!(last, [Instant::from_micros(8)]);
        // The first one is rounded up to the next microsecond.
        let mut link = Link::new(LinkConfig::instant().bandwidth(1_000_000_000), 1);
        assert_eq!(
            arrivals(&mut link, Instant::ZERO, 40),
            [Instant::from_micros(1)]
        );
    }

    #[test]
    fn probabilities_are_checked() {
        let bad = std::panic::catch_unwind(|| LinkConfig::new().loss(5.0));
        assert!(bad.is_err());
        let ok = LinkConfig::new().loss(1.0).duplicate(0.0).corrupt(0.5);
        assert_eq!((ok.loss, ok.duplicate, ok.corrupt), (1.0, 0.0, 0.5));
    }

    #[test]
    fn raising_loss_only_adds_losses() {
        let lost_set = |p: f64| -> Vec<bool> {
            let mut link = Link::new(
                LinkConfig::new().loss(p).jitter(Duration::from_millis(3)),
                99,
            );
            (0..2_000)
                .map(|_| matches!(link.offer(Instant::ZERO, &[0u8; 60]), Fate::Dropped(_)))
                .collect()
        };
        let (low, high) = (lost_set(0.01), lost_set(0.02));
        assert!(low.iter().zip(&high).all(|(&l, &h)| !l || h));
        assert!(high.iter().filter(|&&h| h).count() > low.iter().filter(|&&l| l).count());
    }
}
