//! The network and its event loop: [`Sim`] owns the hosts and the links between them, routes
//! packets by destination address and runs everything under a virtual clock.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use tern_tcp::time::{Duration, Instant};
use tern_wire::TcpRepr;

use crate::capture::{Capture, CapturePoints};
use crate::host::Host;
use crate::link::{Arrival, DropReason, Fate, Link, LinkConfig};
use crate::packet;
use crate::rng::link_seed;

/// Size of the buffer hosts write transmissions into: the largest IPv4 packet.
const SCRATCH_LEN: usize = 64 * 1024;
/// Most recycled packet buffers kept for reuse.
const POOL_MAX: usize = 1 << 16;

/// Bounds on every run, so a livelocked or runaway test fails instead of hanging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Most steps (instants with work) one `run_*` call may take.
    pub max_steps: u64,
    /// Most consecutive steps at the same virtual instant: a zero-delay ping-pong or a host
    /// whose timer stays due after `on_timeout` would otherwise spin without time advancing.
    pub max_steps_per_instant: u64,
    /// Most packets one host may transmit in one drain of `poll_transmit`.
    pub max_transmits_per_poll: u64,
}

impl Default for Limits {
    /// 100 million steps per run, 100 000 steps at one instant, 4 Mi packets per drain
    /// (room for a million-SYN burst, not for a host that never stops).
    fn default() -> Self {
        Limits {
            max_steps: 100_000_000,
            max_steps_per_instant: 100_000,
            max_transmits_per_poll: 1 << 22,
        }
    }
}

/// Why a run stopped before reaching its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimError {
    /// The run took [`Limits::max_steps`] steps.
    StepLimit {
        /// Steps taken by this run.
        steps: u64,
        /// Virtual time when it stopped.
        now: Instant,
    },
    /// [`Limits::max_steps_per_instant`] consecutive steps ran without time advancing.
    Stalled {
        /// The instant that kept having work.
        now: Instant,
        /// Consecutive steps at that instant.
        steps: u64,
    },
    /// The goal was not reached by the virtual-time limit (for `run_until_idle`: packets were
    /// still in flight).
    TimeLimit {
        /// The limit.
        limit: Instant,
        /// Virtual time of the last step run.
        now: Instant,
        /// Packets in flight.
        in_flight: usize,
    },
    /// Nothing is left to happen (no packet in flight, no host timer) and the condition of a
    /// `run_while`/`run_until_cond` still does not hold, so it never will.
    Idle {
        /// Virtual time when the network went quiet.
        now: Instant,
    },
    /// A host transmitted more than [`Limits::max_transmits_per_poll`] packets in one drain.
    TransmitLimit {
        /// The host.
        host: usize,
        /// Virtual time.
        now: Instant,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::StepLimit { steps, now } => {
                write!(f, "simulation step limit hit: {steps} steps, now {now}")
            }
            SimError::Stalled { now, steps } => write!(
                f,
                "simulation stalled at {now}: {steps} steps without the clock advancing \
                 (a zero-delay packet loop, or a host timer that stays due)"
            ),
            SimError::TimeLimit {
                limit,
                now,
                in_flight,
            } => write!(
                f,
                "simulation did not finish by {limit} (last step at {now}, \
                 {in_flight} packets in flight)"
            ),
            SimError::Idle { now } => write!(
                f,
                "simulation went idle at {now} with its condition unmet \
                 (no packet in flight, no host timer)"
            ),
            SimError::TransmitLimit { host, now } => write!(
                f,
                "host {host} kept returning packets from poll_transmit at {now}"
            ),
        }
    }
}

impl std::error::Error for SimError {}

/// Network-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SimStats {
    /// Instants at which work ran.
    pub steps: u64,
    /// Packets hosts transmitted.
    pub transmitted: u64,
    /// Packet copies handed to hosts.
    pub delivered: u64,
    /// Packets whose destination no host owns (dropped before any link).
    pub unroutable: u64,
    /// Calls to [`Host::on_timeout`].
    pub timer_fires: u64,
    /// Largest number of packets in flight at once.
    pub max_in_flight: usize,
}

/// What a [`TraceEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// A host transmitted the packet (it is about to enter the link).
    Sent,
    /// A copy arrived at `to` and is about to be handed to it.
    Delivered,
    /// The packet will not arrive. Reported right after `Sent`, at the transmit time, since
    /// that is when the link decides.
    Dropped(DropReason),
}

/// One packet event, given to the trace hook.
#[derive(Debug, Clone, Copy)]
pub struct TraceEvent<'a> {
    /// Virtual time of the event.
    pub at: Instant,
    /// The transmitting host.
    pub from: usize,
    /// The receiving host; `None` for an unroutable packet.
    pub to: Option<usize>,
    /// What happened.
    pub kind: TraceKind,
    /// The IP packet (as delivered, for `Delivered`: corruption included).
    pub packet: &'a [u8],
}

impl<'a> TraceEvent<'a> {
    /// The packet as a TCP segment with its addresses, if it is an intact one
    /// (see [`parse_tcp`](crate::parse_tcp)).
    pub fn tcp(&self) -> Option<(IpAddr, IpAddr, TcpRepr<'a>)> {
        packet::parse_tcp(self.packet)
    }
}

/// `t=1.5ms 0->1 delivered 10.0.0.1:40000 > 10.0.0.2:80 SYN seq=1 win=65535 len=0`.
impl fmt::Display for TraceEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={} {}->", self.at, self.from)?;
        match self.to {
            Some(to) => write!(f, "{to}")?,
            None => f.write_str("?")?,
        }
        match self.kind {
            TraceKind::Sent => f.write_str(" sent ")?,
            TraceKind::Delivered => f.write_str(" delivered ")?,
            TraceKind::Dropped(reason) => write!(f, " dropped ({reason}) ")?,
        }
        write!(f, "{}", packet::summarize(self.packet))
    }
}

type TraceHook = Box<dyn FnMut(&TraceEvent<'_>)>;

/// A packet copy on its way, ordered for a min-heap by arrival time, then by the order in
/// which copies were scheduled (so equal arrival times deliver first-scheduled first).
struct InFlight {
    at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    packet: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    /// Reversed, so `BinaryHeap` pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A simulated network of hosts of type `H` (use an enum or your own wrapper to mix kinds).
///
/// Hosts are numbered from 0 in the order they were added. Every ordered pair of hosts
/// (including a host and itself) is joined by its own [`Link`], created with the current
/// default configuration when the later of the two hosts is added, and seeded from the
/// simulation seed and the pair; configure them with [`link_mut`](Sim::link_mut),
/// [`set_link`](Sim::set_link), [`set_links`](Sim::set_links) or
/// [`set_all_links`](Sim::set_all_links).
pub struct Sim<H> {
    now: Instant,
    seed: u64,
    hosts: Vec<H>,
    addrs: Vec<Vec<IpAddr>>,
    routes: BTreeMap<IpAddr, usize>,
    default_route: Option<usize>,
    /// `links[from][to]`.
    links: Vec<Vec<Link>>,
    default_link: LinkConfig,
    in_flight: BinaryHeap<InFlight>,
    next_seq: u64,
    scratch: Vec<u8>,
    pool: Vec<Vec<u8>>,
    limits: Limits,
    stats: SimStats,
    /// The instant of the last step and how many consecutive steps ran at it.
    last_step: Option<(Instant, u64)>,
    trace: Option<TraceHook>,
    capture: Option<Capture>,
}

impl<H> fmt::Debug for Sim<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("hosts", &self.hosts.len())
            .field("addrs", &self.addrs)
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .field("limits", &self.limits)
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

impl<H: Host> Sim<H> {
    /// An empty network at `Instant::ZERO` whose links draw from streams derived from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_start(seed, Instant::ZERO)
    }

    /// An empty network whose clock starts at `start`.
    pub fn with_start(seed: u64, start: Instant) -> Self {
        Sim {
            now: start,
            seed,
            hosts: Vec::new(),
            addrs: Vec::new(),
            routes: BTreeMap::new(),
            default_route: None,
            links: Vec::new(),
            default_link: LinkConfig::default(),
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            scratch: vec![0; SCRATCH_LEN],
            pool: Vec::new(),
            limits: Limits::default(),
            stats: SimStats::default(),
            last_step: None,
            trace: None,
            capture: None,
        }
    }

    // ----- Topology -----

    /// Adds a host owning `addrs`; its index. Panics if another host already owns one of them.
    pub fn add_host(&mut self, host: H, addrs: impl IntoIterator<Item = IpAddr>) -> usize {
        let index = self.hosts.len();
        self.hosts.push(host);
        self.addrs.push(Vec::new());
        for (from, row) in self.links.iter_mut().enumerate() {
            row.push(Link::new(
                self.default_link.clone(),
                link_seed(self.seed, from, index),
            ));
        }
        let row = (0..=index)
            .map(|to| Link::new(self.default_link.clone(), link_seed(self.seed, index, to)))
            .collect();
        self.links.push(row);
        for addr in addrs {
            self.add_addr(index, addr);
        }
        index
    }

    /// Gives host `host` one more address. Panics if another host owns it.
    pub fn add_addr(&mut self, host: usize, addr: IpAddr) {
        assert!(host < self.hosts.len(), "no host {host}");
        if let Some(&owner) = self.routes.get(&addr) {
            assert_eq!(owner, host, "{addr} already belongs to host {owner}");
            return;
        }
        self.routes.insert(addr, host);
        self.addrs[host].push(addr);
    }

    /// Sends packets for addresses nobody owns to `host` instead of dropping them (e.g. a host
    /// that plays every spoofed source of a SYN flood); `None` restores dropping.
    pub fn set_default_route(&mut self, host: Option<usize>) {
        if let Some(host) = host {
            assert!(host < self.hosts.len(), "no host {host}");
        }
        self.default_route = host;
    }

    /// The host owning `addr` (ignoring the default route).
    pub fn host_of(&self, addr: IpAddr) -> Option<usize> {
        self.routes.get(&addr).copied()
    }

    /// The addresses of host `host`.
    pub fn addrs(&self, host: usize) -> &[IpAddr] {
        &self.addrs[host]
    }

    /// Number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Host `index`. Panics if there is none.
    pub fn host(&self, index: usize) -> &H {
        &self.hosts[index]
    }

    /// Host `index`, to call its application API between steps; whatever it then wants to
    /// send leaves at the current time, when the next step (or run) starts. Panics if there
    /// is none.
    pub fn host_mut(&mut self, index: usize) -> &mut H {
        &mut self.hosts[index]
    }

    /// All hosts, by index.
    pub fn hosts(&self) -> &[H] {
        &self.hosts
    }

    /// All hosts, by index, mutably.
    pub fn hosts_mut(&mut self) -> &mut [H] {
        &mut self.hosts
    }

    /// The link direction from host `from` to host `to`. Panics if either does not exist.
    pub fn link(&self, from: usize, to: usize) -> &Link {
        &self.links[from][to]
    }

    /// The link direction from host `from` to host `to`, to configure it, seed it or give it
    /// a drop filter. Panics if either does not exist.
    pub fn link_mut(&mut self, from: usize, to: usize) -> &mut Link {
        &mut self.links[from][to]
    }

    /// Configures the direction `from` → `to`.
    pub fn set_link(&mut self, from: usize, to: usize, config: LinkConfig) {
        self.link_mut(from, to).set_config(config);
    }

    /// Configures both directions between `a` and `b` alike.
    pub fn set_links(&mut self, a: usize, b: usize, config: LinkConfig) {
        self.link_mut(a, b).set_config(config.clone());
        self.link_mut(b, a).set_config(config);
    }

    /// Configures every existing link and makes `config` the default for links created by
    /// later [`add_host`](Sim::add_host) calls.
    pub fn set_all_links(&mut self, config: LinkConfig) {
        for link in self.links.iter_mut().flatten() {
            link.set_config(config.clone());
        }
        self.default_link = config;
    }

    // ----- Observation -----

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The simulation seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Network-wide counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The run bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The run bounds, to change.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// Packet copies in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// When the next packet arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.peek().map(|p| p.at)
    }

    /// When the next work is due: the next arrival or the earliest host timer, but never
    /// before now (an overdue timer runs now). `None` when the network is quiet.
    pub fn next_event(&self) -> Option<Instant> {
        let timers = self.hosts.iter().filter_map(Host::poll_timeout);
        timers
            .chain(self.next_arrival())
            .min()
            .map(|t| t.max(self.now))
    }

    /// Calls `hook` on every packet event — sent, dropped, delivered — replacing any previous
    /// hook. Events come in simulation order; `Sent` and `Dropped` at transmit time, `Delivered`
    /// at arrival, just before the receiver sees the packet.
    pub fn set_trace(&mut self, hook: impl FnMut(&TraceEvent<'_>) + 'static) {
        self.trace = Some(Box::new(hook));
    }

    /// Removes the trace hook.
    pub fn clear_trace(&mut self) {
        self.trace = None;
    }

    /// Records packets to `out` in pcap format from now on (see the crate docs for the
    /// framing and [`CapturePoints`] for where packets are taken), replacing any previous capture, which is finished first (its error, if
    /// any, is returned and the new capture not started). Writes the file header at once.
    pub fn capture(
        &mut self,
        out: impl io::Write + 'static,
        points: CapturePoints,
    ) -> io::Result<()> {
        self.finish_capture()?;
        self.capture = Some(Capture::new(Box::new(out), points)?);
        Ok(())
    }

    /// [`capture`](Sim::capture)s delivered packets into a new file at `path` (buffered;
    /// call [`finish_capture`](Sim::finish_capture) or drop the `Sim` to complete it).
    pub fn capture_to(&mut self, path: impl AsRef<Path>) -> io::Result<()> {
        let file = std::fs::File::create(path)?;
        self.capture(io::BufWriter::new(file), CapturePoints::DELIVERED)
    }

    /// Stops capturing and flushes; the number of records written, or the first write error.
    /// `Ok(0)` if there was no capture.
    pub fn finish_capture(&mut self) -> io::Result<u64> {
        match self.capture.take() {
            Some(capture) => capture.finish(),
            None => Ok(0),
        }
    }

    // ----- Driving -----

    /// Transmits `packet` as if host `from` had sent it now: routed, traced, captured and
    /// subjected to the link like any other. For crafted segments in scenario tests.
    pub fn inject(&mut self, from: usize, packet: &[u8]) {
        assert!(from < self.hosts.len(), "no host {from}");
        self.route(from, packet);
    }

    /// Runs the next instant with work, if any: drains every host's transmissions, advances
    /// the clock to the next arrival or host timer, delivers every packet due then (in
    /// schedule order), fires every due host timer (in host order), and drains the hosts
    /// again. Returns that instant, or `None` if nothing is left to happen.
    pub fn step(&mut self) -> Result<Option<Instant>, SimError> {
        self.flush()?;
        let Some(t) = self.next_event() else {
            return Ok(None);
        };
        self.run_instant(t)?;
        Ok(Some(t))
    }

    /// Runs everything due up to and including `deadline`, then sets the clock to `deadline`
    /// (if it is later than now).
    pub fn run_until(&mut self, deadline: Instant) -> Result<(), SimError> {
        let mut steps = 0;
        loop {
            self.flush()?;
            match self.next_event() {
                Some(t) if t <= deadline => self.counted_step(t, &mut steps)?,
                _ => break,
            }
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    /// [`run_until`](Sim::run_until) `now + duration`.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        self.run_until(self.now + duration)
    }

    /// Runs until the network is idle: no packet in flight and no host timer due at or before
    /// `limit` (later timers, such as keepalives, may remain). Returns the time of the last
    /// step; the clock stays there. `Err(TimeLimit)` if packets are still in flight after
    /// everything up to `limit` ran.
    pub fn run_until_idle(&mut self, limit: Instant) -> Result<Instant, SimError> {
        let mut steps = 0;
        loop {
            self.flush()?;
            match self.next_event() {
                Some(t) if t <= limit => self.counted_step(t, &mut steps)?,
                _ => break,
            }
        }
        if self.in_flight.is_empty() {
            Ok(self.now)
        } else {
            Err(self.time_limit(limit))
        }
    }

    /// Runs while `keep_going(sim)` returns `true`, checking it before the first step and
    /// after each one (it may call host application APIs). Returns the time at which it
    /// returned `false`. `Err(TimeLimit)` if the next work lies beyond `limit`, `Err(Idle)`
    /// if nothing is left to happen.
    pub fn run_while(
        &mut self,
        limit: Instant,
        mut keep_going: impl FnMut(&mut Self) -> bool,
    ) -> Result<Instant, SimError> {
        let mut steps = 0;
        loop {
            if !keep_going(self) {
                return Ok(self.now);
            }
            self.flush()?;
            match self.next_event() {
                None => return Err(SimError::Idle { now: self.now }),
                Some(t) if t > limit => return Err(self.time_limit(limit)),
                Some(t) => self.counted_step(t, &mut steps)?,
            }
        }
    }

    /// Runs until `done(sim)` returns `true`: [`run_while`](Sim::run_while) with the
    /// condition negated.
    pub fn run_until_cond(
        &mut self,
        limit: Instant,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<Instant, SimError> {
        self.run_while(limit, |sim| !done(sim))
    }

    // ----- Internals -----

    fn time_limit(&self, limit: Instant) -> SimError {
        SimError::TimeLimit {
            limit,
            now: self.now,
            in_flight: self.in_flight.len(),
        }
    }

    fn counted_step(&mut self, t: Instant, steps: &mut u64) -> Result<(), SimError> {
        *steps += 1;
        if *steps > self.limits.max_steps {
            return Err(SimError::StepLimit {
                steps: *steps - 1,
                now: self.now,
            });
        }
        self.run_instant(t)
    }

    /// Advances to `t` (≥ now) and runs everything due then, then drains the hosts.
    fn run_instant(&mut self, t: Instant) -> Result<(), SimError> {
        let t = t.max(self.now);
        let at_instant = match self.last_step {
            Some((last, n)) if last == t => n + 1,
            _ => 1,
        };
        if at_instant > self.limits.max_steps_per_instant {
            return Err(SimError::Stalled {
                now: t,
                steps: at_instant - 1,
            });
        }
        self.last_step = Some((t, at_instant));
        self.now = t;
        self.stats.steps += 1;

        while self.in_flight.peek().is_some_and(|p| p.at <= t) {
            if let Some(copy) = self.in_flight.pop() {
                self.deliver(copy);
            }
        }
        for host in &mut self.hosts {
            if host.poll_timeout().is_some_and(|deadline| deadline <= t) {
                host.on_timeout(t);
                self.stats.timer_fires += 1;
            }
        }
        self.flush()
    }

    fn deliver(&mut self, copy: InFlight) {
        let InFlight {
            from, to, packet, ..
        } = copy;
        self.links[from][to].record_delivery(packet.len());
        self.stats.delivered += 1;
        if let Some(trace) = self.trace.as_mut() {
            trace(&TraceEvent {
                at: self.now,
                from,
                to: Some(to),
                kind: TraceKind::Delivered,
                packet: &packet,
            });
        }
        if let Some(capture) = self.capture.as_mut() {
            if capture.points.delivered {
                capture.record(self.now, from, Some(to), &packet);
            }
        }
        self.hosts[to].on_packet(self.now, &packet);
        if self.pool.len() < POOL_MAX {
            self.pool.push(packet);
        }
    }

    /// Drains every host's `poll_transmit` into the links, in host order.
    fn flush(&mut self) -> Result<(), SimError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        'hosts: for from in 0..self.hosts.len() {
            let mut count = 0u64;
            while let Some(len) = self.hosts[from].poll_transmit(self.now, &mut scratch) {
                assert!(
                    len <= scratch.len(),
                    "host {from} claims {len} bytes written into a {}-byte buffer",
                    scratch.len()
                );
                count += 1;
                if count > self.limits.max_transmits_per_poll {
                    result = Err(SimError::TransmitLimit {
                        host: from,
                        now: self.now,
                    });
                    break 'hosts;
                }
                self.route(from, &scratch[..len]);
            }
        }
        self.scratch = scratch;
        result
    }

    /// Sends `packet` from host `from` over the link to the owner of its destination.
    fn route(&mut self, from: usize, packet: &[u8]) {
        self.stats.transmitted += 1;
        let to = packet::ip_addrs(packet)
            .and_then(|(_, dst)| self.routes.get(&dst).copied())
            .or(self.default_route);
        self.observe_sent(from, to, packet);
        let Some(to) = to else {
            self.stats.unroutable += 1;
            self.observe_drop(from, None, packet, DropReason::Unroutable);
            return;
        };
        match self.links[from][to].offer(self.now, packet) {
            Fate::Dropped(reason) => self.observe_drop(from, Some(to), packet, reason),
            Fate::Arrives { first, duplicate } => {
                self.schedule(from, to, packet, first);
                if let Some(second) = duplicate {
                    self.schedule(from, to, packet, second);
                }
            }
        }
    }

    fn schedule(&mut self, from: usize, to: usize, packet: &[u8], arrival: Arrival) {
        let mut copy = self.pool.pop().unwrap_or_default();
        copy.clear();
        copy.extend_from_slice(packet);
        if let Some(bit) = arrival.flip_bit {
            copy[bit / 8] ^= 0x80 >> (bit % 8);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(InFlight {
            at: arrival.at,
            seq,
            from,
            to,
            packet: copy,
        });
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight.len());
    }

    fn observe_sent(&mut self, from: usize, to: Option<usize>, packet: &[u8]) {
        if let Some(trace) = self.trace.as_mut() {
            trace(&TraceEvent {
                at: self.now,
                from,
                to,
                kind: TraceKind::Sent,
                packet,
            });
        }
        if let Some(capture) = self.capture.as_mut() {
            if capture.points.sent {
                capture.record(self.now, from, to, packet);
            }
        }
    }

    fn observe_drop(&mut self, from: usize, to: Option<usize>, packet: &[u8], reason: DropReason) {
        if let Some(trace) = self.trace.as_mut() {
            trace(&TraceEvent {
                at: self.now,
                from,
                to,
                kind: TraceKind::Dropped(reason),
                packet,
            });
        }
    }
}
