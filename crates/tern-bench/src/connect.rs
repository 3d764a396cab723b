//! `tern-bench connect`: legitimate clients on kernel sockets, open loop.
//!
//! Connection attempts start on a fixed schedule (attempt *i* at `start + i / rate`, see
//! [`crate::sched`]), never when earlier ones finish, so a slow server meets the same offered
//! load as a fast one (no coordinated omission). Each attempt: a non-blocking `connect(2)`
//! (connect latency = from the call, which sends the SYN, to the socket becoming writable with
//! no error, i.e. the SYN-ACK arrived and the ACK left), then optionally one request and its
//! reply (echo: N bytes written and the same N bytes read back; http: a `GET` and a complete
//! `200` response with its `Content-Length` body), then close. A concurrency cap bounds the
//! attempts in flight; an attempt that comes due at the cap is not started and counts as a
//! failure (`capped`), so attempts = successes + failures always.
//!
//! Threads (`--threads`) take the attempts round-robin, each with its own epoll set, a timerfd
//! for the next due time (sub-millisecond precision without spinning) and its own histograms,
//! merged at the end.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, sockopt, SockaddrStorage};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, TimerSetTimeFlags};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use serde::{Deserialize, Serialize};

use crate::hist::{Latency, LatencySummary};
use crate::net;
use crate::sched::{Dispatch, Pacer, Schedule};
use crate::serve::request_end;

/// What each connection does once established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// Nothing: connect, close.
    None,
    /// Write `--size` bytes, read them back, compare.
    Echo,
    /// `GET /` and a complete `200` response.
    Http,
}

/// Configuration of [`run`].
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// The server.
    pub target: SocketAddr,
    /// Attempts per second.
    pub rate: f64,
    /// No attempt starts after this long.
    pub duration: Duration,
    /// At most this many attempts.
    pub count: Option<u64>,
    /// Threads.
    pub threads: usize,
    /// Attempts in flight at most (over all threads).
    pub concurrency: usize,
    /// An attempt not finished this long after its `connect(2)` fails with `timeout`.
    pub timeout: Duration,
    /// What to do once connected.
    pub request: RequestKind,
    /// Echo request size in bytes.
    pub size: usize,
    /// Source addresses to bind to, round-robin (none: the kernel chooses).
    pub sources: Vec<IpAddr>,
    /// Close with an RST (`SO_LINGER` 0) instead of a FIN: no TIME-WAIT on the client.
    pub linger0: bool,
    /// Cores to pin thread *i* to (`cores[i % len]`).
    pub cores: Vec<usize>,
    /// Allow loopback targets (for tests and trials outside the lab).
    pub allow_loopback: bool,
    /// Write the report here as JSON.
    pub json: Option<PathBuf>,
}

/// Failed attempts by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// Not finished within `--timeout` (or the kernel gave up: `ETIMEDOUT`).
    pub timeout: u64,
    /// The server answered the SYN with an RST (`ECONNREFUSED`).
    pub refused: u64,
    /// Reset after the handshake (`ECONNRESET`, `EPIPE`).
    pub reset: u64,
    /// Anything else (see `failure_detail`): local errors such as `EADDRNOTAVAIL`, a wrong
    /// reply, an interrupted run.
    pub other: u64,
    /// Not started: the concurrency cap was reached when it came due.
    pub capped: u64,
}

impl Failures {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.timeout + self.refused + self.reset + self.other + self.capped
    }

    fn add(&mut self, o: &Failures) {
        self.timeout += o.timeout;
        self.refused += o.refused;
        self.reset += o.reset;
        self.other += o.other;
        self.capped += o.capped;
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// See [`Failures::timeout`]; the phase it timed out in.
    Timeout(&'static str),
    /// See [`Failures::refused`].
    Refused,
    /// See [`Failures::reset`].
    Reset,
    /// See [`Failures::other`], with a short reason.
    Other(&'static str),
}

impl Failure {
    /// Classifies an errno from `connect(2)`, `SO_ERROR`, `read(2)` or `write(2)`.
    pub fn from_errno(e: Errno) -> Failure {
        match e {
            Errno::ECONNREFUSED => Failure::Refused,
            Errno::ECONNRESET | Errno::EPIPE | Errno::ECONNABORTED => Failure::Reset,
            Errno::ETIMEDOUT => Failure::Timeout("kernel"),
            other => Failure::Other(errno_name(other)),
        }
    }
}

fn errno_name(e: Errno) -> &'static str {
    match e {
        Errno::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        Errno::EADDRINUSE => "EADDRINUSE",
        Errno::ENETUNREACH => "ENETUNREACH",
        Errno::EHOSTUNREACH => "EHOSTUNREACH",
        Errno::EMFILE => "EMFILE",
        Errno::ENFILE => "ENFILE",
        Errno::ENOBUFS => "ENOBUFS",
        Errno::EAGAIN => "EAGAIN",
        Errno::EPERM => "EPERM",
        Errno::EACCES => "EACCES",
        _ => "errno",
    }
}

/// One thread's results; [`LaneStats::merge`] adds them up.
#[derive(Debug, Clone, Default)]
pub struct LaneStats {
    /// Attempts that came due (started or capped).
    pub attempts: u64,
    /// Attempts that finished everything asked of them.
    pub successes: u64,
    /// Failures by reason.
    pub failures: Failures,
    /// Failures by detailed reason (`timeout:connect`, `other:EADDRNOTAVAIL`, ...).
    pub detail: BTreeMap<String, u64>,
    /// `connect(2)` to established.
    pub connect: Latency,
    /// Established to the reply read in full.
    pub transaction: Latency,
    /// Due time to done, for successful attempts: what a user would have waited.
    pub total: Latency,
    /// How late attempts started (due time to `connect(2)`): the client's own lag.
    pub start_lag: Latency,
}

impl LaneStats {
    /// Records a failure.
    pub fn fail(&mut self, f: Failure) {
        let key = match f {
            Failure::Timeout(phase) => {
                self.failures.timeout += 1;
                format!("timeout:{phase}")
            }
            Failure::Refused => {
                self.failures.refused += 1;
                "refused".into()
            }
            Failure::Reset => {
                self.failures.reset += 1;
                "reset".into()
            }
            Failure::Other(why) => {
                self.failures.other += 1;
                format!("other:{why}")
            }
        };
        *self.detail.entry(key).or_default() += 1;
    }

    /// Records a capped attempt.
    pub fn capped(&mut self) {
        self.failures.capped += 1;
        *self.detail.entry("capped".into()).or_default() += 1;
    }

    /// Adds another thread's results.
    pub fn merge(&mut self, o: &LaneStats) {
        self.attempts += o.attempts;
        self.successes += o.successes;
        self.failures.add(&o.failures);
        for (k, v) in &o.detail {
            *self.detail.entry(k.clone()).or_default() += v;
        }
        self.connect.merge(&o.connect);
        self.transaction.merge(&o.transaction);
        self.total.merge(&o.total);
        self.start_lag.merge(&o.start_lag);
    }
}

/// The result of a `connect` run (also its JSON form).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectReport {
    /// The server.
    pub target: SocketAddr,
    /// What each connection did.
    pub request: RequestKind,
    /// Echo size in bytes.
    pub size: usize,
    /// Scheduled attempts per second.
    pub rate: f64,
    /// The schedule's length in seconds.
    pub duration_s: f64,
    /// The count bound, if any.
    pub count: Option<u64>,
    /// Threads.
    pub threads: usize,
    /// Concurrency cap.
    pub concurrency: usize,
    /// Timeout per attempt in seconds.
    pub timeout_s: f64,
    /// Attempts in the schedule.
    pub scheduled: u64,
    /// Attempts that came due (fewer than `scheduled` only when interrupted).
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts by reason; `successes + failures.total() == attempts`.
    pub failures: Failures,
    /// Failures by detailed reason.
    pub failure_detail: BTreeMap<String, u64>,
    /// Wall time of the run in seconds (schedule plus the last attempts' completion).
    pub elapsed_s: f64,
    /// Successes per second of schedule.
    pub success_rate: f64,
    /// `connect(2)` to established.
    pub connect_latency: LatencySummary,
    /// Established to the complete reply (empty without a request).
    pub transaction_latency: LatencySummary,
    /// Due time to done, successful attempts.
    pub total_latency: LatencySummary,
    /// Due time to `connect(2)`: large values mean the client could not keep its schedule.
    pub start_lag: LatencySummary,
}

impl ConnectReport {
    /// Builds the report from the merged lanes.
    pub fn new(config: &ConnectConfig, schedule: &Schedule, s: &LaneStats, elapsed: f64) -> Self {
        let span = schedule.due(schedule.total()).as_secs_f64().max(1e-9);
        ConnectReport {
            target: config.target,
            request: config.request,
            size: config.size,
            rate: schedule.rate(),
            duration_s: config.duration.as_secs_f64(),
            count: config.count,
            threads: config.threads,
            concurrency: config.concurrency,
            timeout_s: config.timeout.as_secs_f64(),
            scheduled: schedule.total(),
            attempts: s.attempts,
            successes: s.successes,
            failures: s.failures,
            failure_detail: s.detail.clone(),
            elapsed_s: elapsed,
            success_rate: s.successes as f64 / span,
            connect_latency: s.connect.summary(),
            transaction_latency: s.transaction.summary(),
            total_latency: s.total.summary(),
            start_lag: s.start_lag.summary(),
        }
    }

    /// Whether the counts add up: every attempt succeeded or failed for one reason.
    pub fn consistent(&self) -> bool {
        self.successes + self.failures.total() == self.attempts
            && self.connect_latency.count >= self.successes
    }
}

impl std::fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fl = &self.failures;
        writeln!(
            f,
            "connect {} ({:?}): {} attempts at {}/s in {:.2}s: {} ok, {} failed \
             (timeout {}, refused {}, reset {}, other {}, capped {})",
            self.target,
            self.request,
            self.attempts,
            self.rate,
            self.elapsed_s,
            self.successes,
            fl.total(),
            fl.timeout,
            fl.refused,
            fl.reset,
            fl.other,
            fl.capped
        )?;
        if !self.failure_detail.is_empty() {
            let d: Vec<String> = self
                .failure_detail
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "  failures: {}", d.join(", "))?;
        }
        writeln!(f, "  connect     {}", self.connect_latency.line())?;
        if self.request != RequestKind::None {
            writeln!(f, "  transaction {}", self.transaction_latency.line())?;
        }
        writeln!(f, "  total       {}", self.total_latency.line())?;
        write!(f, "  start lag   {}", self.start_lag.line())
    }
}

/// The bytes of one request.
pub fn request_bytes(kind: RequestKind, size: usize, target: SocketAddr) -> Vec<u8> {
    match kind {
        RequestKind::None => Vec::new(),
        RequestKind::Echo => (0..size).map(|i| b'A' + (i % 23) as u8).collect(),
        RequestKind::Http => {
            format!("GET / HTTP/1.1\r\nHost: {target}\r\nUser-Agent: tern-bench\r\n\r\n")
                .into_bytes()
        }
    }
}

/// What a (partial) HTTP response says so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProgress {
    /// More bytes needed.
    Partial,
    /// A complete response with this status.
    Done(u16),
    /// Not an HTTP response (or no `Content-Length`).
    Bad,
}

/// Checks whether `buf` holds a complete HTTP/1.1 response with a `Content-Length` body.
pub fn http_progress(buf: &[u8]) -> HttpProgress {
    let Some(end) = request_end(buf) else {
        return if buf.len() > 64 * 1024 {
            HttpProgress::Bad
        } else {
            HttpProgress::Partial
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return HttpProgress::Bad;
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return HttpProgress::Bad;
    };
    let len = lines.find_map(|h| {
        let (n, v) = h.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    match len {
        Some(len) if buf.len() >= end + len => HttpProgress::Done(status),
        Some(_) => HttpProgress::Partial,
        None => HttpProgress::Bad,
    }
}

enum Phase {
    Connecting,
    Sending { written: usize },
    Receiving,
}

struct Client {
    stream: TcpStream,
    phase: Phase,
    due_at: Instant,
    syn_at: Instant,
    established_at: Option<Instant>,
    deadline: Instant,
    got: Vec<u8>,
    got_len: usize,
}

/// Runs the clients; returns the merged report (also printed by the caller).
pub fn run(config: &ConnectConfig, stop: Arc<AtomicBool>) -> Result<ConnectReport> {
    net::check_target(config.target.ip(), config.allow_loopback)?;
    anyhow::ensure!(config.threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(config.concurrency >= 1, "--concurrency must be at least 1");
    for s in &config.sources {
        anyhow::ensure!(
            s.is_ipv4() == config.target.is_ipv4(),
            "source {s} is not of the target's address family"
        );
    }
    let schedule = Schedule::new(config.rate, config.duration, config.count)?;
    let request: Arc<[u8]> = request_bytes(config.request, config.size, config.target).into();
    let lanes = config.threads as u64;
    let per_lane_cap = config.concurrency.div_ceil(config.threads);
    // All lanes share one start, a little ahead so every thread is waiting when it comes.
    let start = Instant::now() + Duration::from_millis(20);
    let mut handles = Vec::new();
    for lane in 0..lanes {
        let core =
            (!config.cores.is_empty()).then(|| config.cores[lane as usize % config.cores.len()]);
        let cfg = config.clone();
        let (stop, request) = (stop.clone(), request.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("connect-{lane}"))
                .spawn(move || -> Result<LaneStats> {
                    if let Some(c) = core {
                        net::pin_to_core(c)?;
                    }
                    let pacer = Pacer::new(schedule, lane, lanes, per_lane_cap);
                    let mut lane = Lane::new(&cfg, pacer, request)?;
                    lane.run(start, &stop)?;
                    Ok(lane.stats)
                })
                .context("spawning a client thread")?,
        );
    }
    let mut total = LaneStats::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(s)) => total.merge(&s),
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(anyhow::anyhow!("a client thread panicked"));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let elapsed = Instant::now()
        .saturating_duration_since(start)
        .as_secs_f64();
    let report = ConnectReport::new(config, &schedule, &total, elapsed);
    if let Some(path) = &config.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

const TIMER_TOKEN: u64 = 0;

struct Lane<'a> {
    config: &'a ConnectConfig,
    pacer: Pacer,
    request: Arc<[u8]>,
    epoll: Epoll,
    timer: TimerFd,
    conns: HashMap<u64, Client>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    next_token: u64,
    stats: LaneStats,
    buf: Vec<u8>,
}

impl<'a> Lane<'a> {
    fn new(config: &'a ConnectConfig, pacer: Pacer, request: Arc<[u8]>) -> Result<Lane<'a>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .context("timerfd_create")?;
        epoll
            .add(
                timer.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TIMER_TOKEN),
            )
            .context("adding the timer to epoll")?;
        Ok(Lane {
            config,
            pacer,
            request,
            epoll,
            timer,
            conns: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_token: 1,
            stats: LaneStats::default(),
            buf: vec![0; 64 * 1024],
        })
    }

    fn run(&mut self, start: Instant, stop: &AtomicBool) -> Result<()> {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let now = Instant::now();
            let offset = now.saturating_duration_since(start);
            if now >= start {
                while let Some(d) = self.pacer.poll(offset, self.conns.len()) {
                    self.stats.attempts += 1;
                    match d {
                        Dispatch::Start { attempt, lag } => {
                            self.stats.start_lag.record(lag);
                            self.start(start + attempt.due);
                        }
                        Dispatch::Capped { .. } => self.stats.capped(),
                    }
                }
            }
            let now = Instant::now();
            self.expire(now);
            if self.pacer.is_done() && self.conns.is_empty() {
                return Ok(());
            }
            if stop.load(Ordering::Relaxed) {
                for _ in self.conns.drain() {
                    self.stats.fail(Failure::Other("interrupted"));
                }
                return Ok(());
            }
            // Sleep until the next due attempt (timerfd: nanosecond precision), the next
            // deadline, or 100 ms, whichever is first.
            let mut wait = Duration::from_millis(100);
            if let Some(a) = self.pacer.peek() {
                let due = start + a.due;
                if due <= now {
                    continue;
                }
                let until = due - now;
                self.timer
                    .set(
                        Expiration::OneShot(TimeSpec::from_duration(until)),
                        TimerSetTimeFlags::empty(),
                    )
                    .context("timerfd_settime")?;
                wait = wait.min(until + Duration::from_millis(1));
            }
            if let Some(Reverse((d, _))) = self.deadlines.peek() {
                wait = wait.min(d.saturating_duration_since(now));
            }
            // Round up to whole milliseconds: the timerfd wakes earlier when it matters.
            let ms = wait.as_micros().div_ceil(1000).min(100) as u16;
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            for ev in &events[..n] {
                if ev.data() == TIMER_TOKEN {
                    let _ = self.timer.wait(); // non-blocking read: clears the expiry
                } else {
                    self.service(ev.data(), ev.events());
                }
            }
        }
    }

    /// Fails the attempts whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((d, token))) = self.deadlines.peek().copied() {
            if d > now {
                break;
            }
            self.deadlines.pop();
            if self.conns.get(&token).is_some_and(|c| c.deadline == d) {
                let c = self.conns.remove(&token).expect("just looked up");
                let phase = match c.phase {
                    Phase::Connecting => "connect",
                    Phase::Sending { .. } => "send",
                    Phase::Receiving => "reply",
                };
                self.stats.fail(Failure::Timeout(phase));
            }
        }
    }

    fn start(&mut self, due_at: Instant) {
        let target = self.config.target;
        let fd = match net::tcp_socket(target.ip()) {
            Ok(fd) => fd,
            Err(e) => return self.stats.fail(Failure::from_errno(e)),
        };
        let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
        if self.config.linger0 {
            let l = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = socket::setsockopt(&fd, sockopt::Linger, &l);
        }
        if !self.config.sources.is_empty() {
            let n = self.next_token as usize % self.config.sources.len();
            let src = SocketAddr::new(self.config.sources[n], 0);
            // Leave the port to connect(2), which can then share ports between addresses.
            let _ = socket::setsockopt(&fd, sockopt::IpBindAddressNoPort, &true);
            if let Err(e) = socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(src)) {
                return self.stats.fail(Failure::from_errno(e));
            }
        }
        let syn_at = Instant::now();
        let connected = match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(target)) {
            Ok(()) => true,
            Err(Errno::EINPROGRESS) => false,
            Err(e) => return self.stats.fail(Failure::from_errno(e)),
        };
        let token = self.next_token;
        self.next_token += 1;
        let stream = TcpStream::from(fd);
        if let Err(e) = self
            .epoll
            .add(stream.as_fd(), EpollEvent::new(EpollFlags::EPOLLOUT, token))
        {
            return self.stats.fail(Failure::from_errno(e));
        }
        let deadline = syn_at + self.config.timeout;
        self.deadlines.push(Reverse((deadline, token)));
        self.conns.insert(
            token,
            Client {
                stream,
                phase: Phase::Connecting,
                due_at,
                syn_at,
                established_at: None,
                deadline,
                got: Vec::new(),
                got_len: 0,
            },
        );
        if connected {
            self.service(token, EpollFlags::EPOLLOUT);
        }
    }

    fn service(&mut self, token: u64, events: EpollFlags) {
        let Some(mut c) = self.conns.remove(&token) else {
            return;
        };
        match self.step(&mut c, events) {
            Step::Continue(interest) => {
                if let Some(flags) = interest {
                    let mut ev = EpollEvent::new(flags, token);
                    if let Err(e) = self.epoll.modify(c.stream.as_fd(), &mut ev) {
                        return self.stats.fail(Failure::from_errno(e));
                    }
                }
                self.conns.insert(token, c);
            }
            Step::Done => {
                let now = Instant::now();
                self.stats.successes += 1;
                if let Some(est) = c.established_at {
                    if self.config.request != RequestKind::None {
                        self.stats.transaction.record(now - est);
                    }
                }
                self.stats
                    .total
                    .record(now.saturating_duration_since(c.due_at));
                // Dropping the stream closes the connection.
            }
            Step::Failed(f) => self.stats.fail(f),
        }
    }

    fn step(&mut self, c: &mut Client, events: EpollFlags) -> Step {
        if let Phase::Connecting = c.phase {
            let err = socket::getsockopt(&c.stream, sockopt::SocketError).unwrap_or(0);
            if err != 0 {
                return Step::Failed(Failure::from_errno(Errno::from_raw(err)));
            }
            if events.contains(EpollFlags::EPOLLHUP) {
                return Step::Failed(Failure::Reset);
            }
            if !events.contains(EpollFlags::EPOLLOUT) {
                return Step::Continue(None);
            }
            let now = Instant::now();
            self.stats.connect.record(now - c.syn_at);
            c.established_at = Some(now);
            if self.config.request == RequestKind::None {
                return Step::Done;
            }
            c.phase = Phase::Sending { written: 0 };
        }
        if let Phase::Sending { written } = &mut c.phase {
            while *written < self.request.len() {
                match c.stream.write(&self.request[*written..]) {
                    Ok(n) => *written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        return Step::Continue(None);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Step::Failed(io_failure(&e)),
                }
            }
            c.phase = Phase::Receiving;
            // Reads come from here on; the reply may already be waiting.
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
            return match self.receive(c) {
                Step::Continue(_) => Step::Continue(Some(flags)),
                other => other,
            };
        }
        self.receive(c)
    }

    fn receive(&mut self, c: &mut Client) -> Step {
        loop {
            match c.stream.read(&mut self.buf) {
                Ok(0) => return Step::Failed(Failure::Other("closed early")),
                Ok(n) => {
                    let chunk = &self.buf[..n];
                    match self.config.request {
                        RequestKind::Echo => {
                            let from = c.got_len;
                            let expect = self.request.get(from..from + n);
                            if expect != Some(chunk) {
                                return Step::Failed(Failure::Other("bad echo"));
                            }
                            c.got_len += n;
                            if c.got_len == self.request.len() {
                                return Step::Done;
                            }
                        }
                        RequestKind::Http => {
                            c.got.extend_from_slice(chunk);
                            match http_progress(&c.got) {
                                HttpProgress::Partial => {}
                                HttpProgress::Done(200) => return Step::Done,
                                HttpProgress::Done(_) => {
                                    return Step::Failed(Failure::Other("http status"))
                                }
                                HttpProgress::Bad => {
                                    return Step::Failed(Failure::Other("bad http"))
                                }
                            }
                        }
                        RequestKind::None => return Step::Done,
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Continue(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Step::Failed(io_failure(&e)),
            }
        }
    }
}

enum Step {
    /// Not finished; `Some` changes the epoll interest.
    Continue(Option<EpollFlags>),
    Done,
    Failed(Failure),
}

fn io_failure(e: &std::io::Error) -> Failure {
    match e.raw_os_error() {
        Some(n) => Failure::from_errno(Errno::from_raw(n)),
        None => Failure::Other("io"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses_are_recognised() {
        let full = crate::serve::http_response(10);
        assert_eq!(http_progress(&full), HttpProgress::Done(200));
        assert_eq!(
            http_progress(&full[..full.len() - 1]),
            HttpProgress::Partial
        );
        assert_eq!(http_progress(&full[..5]), HttpProgress::Partial);
        assert_eq!(
            http_progress(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            HttpProgress::Done(404)
        );
        assert_eq!(http_progress(b"HTTP/1.1 200 OK\r\n\r\n"), HttpProgress::Bad);
        assert_eq!(http_progress(b"SSH-2.0\r\n\r\n"), HttpProgress::Bad);
    }

    #[test]
    fn errnos_are_classified() {
        assert_eq!(Failure::from_errno(Errno::ECONNREFUSED), Failure::Refused);
        assert_eq!(Failure::from_errno(Errno::ECONNRESET), Failure::Reset);
        assert_eq!(
            Failure::from_errno(Errno::ETIMEDOUT),
            Failure::Timeout("kernel")
        );
        assert_eq!(
            Failure::from_errno(Errno::EADDRNOTAVAIL),
            Failure::Other("EADDRNOTAVAIL")
        );
    }
}
