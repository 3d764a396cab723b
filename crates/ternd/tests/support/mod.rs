//! Support for ternd's interop tests: ternd as a child process in the lab's server namespace,
//! kernel TCP clients in the client namespace, bounded waits, and diagnostics on failure.
//!
//! Every wait here is bounded; a test that runs out of time fails with what it was waiting for,
//! ternd's stdout and stderr, and its latest statistics snapshot.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tern_lab::{Lab, LabConfig, Side};

/// The daemon under test.
pub const TERND: &str = env!("CARGO_BIN_EXE_ternd");
/// The server's lab interface.
pub const SRV_IF: &str = "veth-srv";

/// The interop tests run one at a time: each drives two shared cores flat out, and timeouts
/// stay meaningful only when tests do not compete with each other.
static SERIAL: Mutex<()> = Mutex::new(());

/// A lab of this test's own, held with the serialisation lock (released after the lab is down).
#[derive(Debug)]
pub struct TestLab {
    pub lab: Lab,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// A lab with `queues` queues, or `None` when lab tests are skipped (`TERN_SKIP_LAB=1`).
pub fn lab(queues: u32) -> Option<TestLab> {
    if !tern_lab::lab_available() {
        return None;
    }
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::up(LabConfig {
        queues: Some(queues),
        ..LabConfig::default()
    });
    Some(TestLab {
        lab,
        _serial: serial,
    })
}

/// A directory of this test's own for ternd's output and statistics.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ternd-interop-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// Runs `cmd` to completion within `limit` (killing it past that), capturing its output.
pub fn output_within(cmd: &mut Command, limit: Duration) -> (Option<ExitStatus>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    (
        status,
        out_t.join().unwrap_or_default(),
        err_t.join().unwrap_or_default(),
    )
}

/// Runs a short command that must succeed, returning its stdout.
pub fn must(cmd: &mut Command) -> String {
    let (status, out, err) = output_within(cmd, Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "{cmd:?} failed ({status:?}):\n{out}{err}"
    );
    out
}

/// `ip -d link show dev veth-srv` in the namespace `netns`.
fn link_details(netns: &str) -> String {
    must(Command::new("ip").args(["-n", netns, "-d", "link", "show", "dev", SRV_IF]))
}

/// The XDP lines of `ip -d link show dev veth-srv` in the server namespace, if any.
pub fn xdp_on_server(lab: &Lab) -> Option<String> {
    xdp_in(&lab.netns(Side::Server))
}

fn xdp_in(netns: &str) -> Option<String> {
    let details = link_details(netns);
    details.to_lowercase().contains("xdp").then_some(details)
}

/// Sets a sysctl in `side`'s namespace.
pub fn sysctl(lab: &Lab, side: Side, key: &str, value: &str) {
    must(
        lab.command(side, "sysctl")
            .args(["-w", &format!("{key}={value}")]),
    );
}

/// What a stopped ternd printed.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    /// The last `n` lines of stdout (the final counters come last).
    pub fn stdout_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.stdout.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// The `stats_interval` the tests give ternd.
const STATS_INTERVAL: Duration = Duration::from_millis(200);

/// ternd running as a child process in the server namespace (`ip netns exec` execs it, so the
/// child's PID is ternd's). `Drop` kills it if it still runs and removes what it left attached.
#[derive(Debug)]
pub struct Ternd {
    child: Option<Child>,
    /// Taken before ternd was spawned, so ternd's uptime always trails `started.elapsed()`.
    started: Instant,
    netns: String,
    dir: PathBuf,
}

impl Ternd {
    /// `ternd run -i veth-srv ARGS --stats-json ... --set stats_interval=200ms` in the server
    /// namespace; returns once ternd logs that it serves (bounded), panicking with its output
    /// when it exits or does not get there.
    pub fn start(lab: &Lab, args: &[&str]) -> Ternd {
        let dir = scratch_dir();
        let file = |name: &str| {
            std::fs::File::create(dir.join(name))
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.join(name).display()))
        };
        let started = Instant::now();
        let child = lab
            .command(Side::Server, TERND)
            .args(["run", "-i", SRV_IF])
            .args(args)
            .arg("--stats-json")
            .arg(dir.join("stats.json"))
            .args(["--set", "stats_interval=\"200ms\""])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TERND}: {e}"));
        let mut ternd = Ternd {
            child: Some(child),
            started,
            netns: lab.netns(Side::Server),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ternd.stderr().contains("serving ") {
                return ternd;
            }
            if let Ok(Some(status)) = ternd.child_mut().try_wait() {
                ternd.fail(&format!("ternd exited during start-up with {status}"));
            }
            if Instant::now() > deadline {
                ternd.fail("ternd did not log \"serving N listener(s)\" within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("ternd was started")
    }

    /// ternd's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("ternd was started").id()
    }

    /// What ternd wrote to stdout so far (summaries, then the final counters).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// What ternd wrote to stderr so far (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// The latest `--stats-json` snapshot.
    pub fn stats(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// ternd's output and statistics, for a failure message.
    pub fn diagnostics(&self) -> String {
        let stdout = self.stdout();
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // The server kernel's own TCP counters: segments of ternd's flows that reached the
        // kernel (and the resets it answered them with) show up here.
        let (_, kernel, _) = output_within(
            Command::new("ip").args(["netns", "exec", &self.netns, "nstat", "-as"]),
            Duration::from_secs(10),
        );
        format!(
            "\n--- ternd stderr ---\n{}\n--- ternd stdout (last 40 lines) ---\n{}\n--- stats.json ---\n{}\n--- the server kernel's counters (nstat -as) ---\n{kernel}",
            self.stderr(),
            tail.join("\n"),
            self.stats()
                .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                .unwrap_or_else(|| "(none)".into())
        )
    }

    /// Panics with `msg` and the diagnostics.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}{}", self.diagnostics())
    }

    /// Unwraps `r`, or fails with its error and the diagnostics.
    pub fn check<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| self.fail(&e))
    }

    /// Waits (bounded by `limit`) until a statistics snapshot taken after this call satisfies
    /// `done`; returns it.
    ///
    /// Workers send their counters every stats interval (200 ms) and ternd writes the file every
    /// interval with the latest it has, so only a file written two intervals after the call is
    /// sure to hold counters from after it.
    pub fn wait_stats(&self, limit: Duration, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + limit;
        let fresh_from = (self.started.elapsed() + 2 * STATS_INTERVAL).as_secs_f64();
        loop {
            if let Some(s) = self.stats().map(Stats) {
                if s.0["uptime_secs"].as_f64().is_some_and(|u| u >= fresh_from) && done(&s) {
                    return s;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited {limit:?} for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until ternd holds no connection (neither in the engine nor in an application);
    /// TIME-WAIT entries are not connections.
    pub fn wait_idle(&self, limit: Duration) -> Stats {
        self.wait_stats(limit, "ternd to hold no connection", |s| {
            s.connections() == 0 && s.app_connections() == 0
        })
    }

    fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(self.pid() as i32);
        kill(pid, sig).unwrap_or_else(|e| self.fail(&format!("kill({pid}, {sig}): {e}")));
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child_mut().try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT; ternd must drain, detach and exit 0 within 30 s, leaving no XDP program on
    /// veth-srv.
    pub fn stop(mut self) -> Exited {
        self.signal(Signal::SIGINT);
        let Some(status) = self.wait_exit(Duration::from_secs(30)) else {
            self.fail("ternd did not exit within 30 s of SIGINT");
        };
        if !status.success() {
            self.fail(&format!("ternd exited with {status} after SIGINT"));
        }
        if let Some(details) = xdp_in(&self.netns) {
            self.fail(&format!(
                "an XDP program is still attached after ternd exited:\n{details}"
            ));
        }
        let exited = Exited {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        };
        self.child = None;
        let _ = std::fs::remove_dir_all(&self.dir);
        exited
    }

    /// SIGKILL: ternd gets no chance to detach.
    pub fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            self.fail("ternd did not die within 10 s of SIGKILL");
        }
        self.child = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Ternd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A failed test: ternd may still run. It is our child; end it by its PID, then remove
        // its pinned link, which would otherwise outlive the lab.
        let _ = child.kill();
        let _ = child.wait();
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.netns, TERND, "cleanup", "-i", SRV_IF])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        eprintln!("ternd's output is kept in {}", self.dir.display());
    }
}

/// A `--stats-json` snapshot.
#[derive(Debug, Clone)]
pub struct Stats(pub Value);

impl Stats {
    fn sum_queues(&self, key: &str) -> u64 {
        self.0["queues"]
            .as_array()
            .map(|qs| qs.iter().filter_map(|q| q[key].as_u64()).sum())
            .unwrap_or(0)
    }

    /// Connections the engines hold (not counting TIME-WAIT).
    pub fn connections(&self) -> u64 {
        self.sum_queues("connections")
    }

    /// Connections the applications hold.
    pub fn app_connections(&self) -> u64 {
        self.sum_queues("app_connections")
    }

    /// TIME-WAIT entries.
    pub fn timewait(&self) -> u64 {
        self.sum_queues("timewait")
    }

    /// A TCP counter summed over the queues (`PassiveOpens`, `EstabResets`, ...).
    pub fn tcp(&self, name: &str) -> u64 {
        self.0["tcp"][name].as_u64().unwrap_or(0)
    }

    /// A TCP counter per queue.
    pub fn tcp_per_queue(&self, name: &str) -> Vec<u64> {
        self.0["queues"]
            .as_array()
            .map(|qs| {
                qs.iter()
                    .map(|q| q["tcp"][name].as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs `f` in `side`'s namespace on a thread of its own and returns its result, re-raising
/// its panic.
pub fn in_ns<T: Send + 'static>(
    lab: &Lab,
    side: Side,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    match lab.spawn_in(side, f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

// --- data ---------------------------------------------------------------------------------

/// A pseudo-random byte stream addressable by offset (SplitMix64 words), so a sender and a
/// verifier generate the same bytes without keeping them.
#[derive(Debug, Clone, Copy)]
pub struct Pattern(pub u64);

impl Pattern {
    fn word(&self, index: u64) -> [u8; 8] {
        let mut z = self
            .0
            .wrapping_add(index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `buf` with the bytes at `offset..`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let (mut pos, mut i) = (offset, 0);
        while i < buf.len() {
            let w = self.word(pos / 8);
            let start = (pos % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&w[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }

    /// Checks `got` against the bytes at `offset..`: the first difference, if any.
    pub fn verify(&self, offset: u64, got: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
        scratch.resize(got.len(), 0);
        self.fill(offset, scratch);
        match got.iter().zip(scratch.iter()).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!(
                "byte {} differs: got {:#04x}, expected {:#04x}",
                offset + i as u64,
                got[i],
                scratch[i]
            )),
        }
    }
}

/// A seed for this run's data, printed so a failure can be replayed.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = t ^ u64::from(std::process::id()).rotate_left(32);
    eprintln!("data seed: {seed:#x}");
    seed
}

// --- echo clients -----------------------------------------------------------------------------

const CHUNK: usize = 64 * 1024;

/// One echo client over a non-blocking kernel socket: sends `total` bytes of its pattern, shuts
/// its sending side down, and checks that exactly those bytes come back before the server's FIN.
#[derive(Debug)]
pub struct EchoConn {
    pub id: usize,
    pub stream: TcpStream,
    pattern: Pattern,
    total: u64,
    pub sent: u64,
    pub received: u64,
    write_shut: bool,
    pub eof: bool,
}

impl EchoConn {
    /// Connects (bounded by 10 s) to `addr`.
    pub fn connect(
        id: usize,
        addr: SocketAddr,
        pattern: Pattern,
        total: u64,
    ) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| format!("conn {id}: connect to {addr}: {e}"))?;
        Ok(Self::over(id, stream, pattern, total))
    }

    /// An echo client over an established `stream`.
    pub fn over(id: usize, stream: TcpStream, pattern: Pattern, total: u64) -> Self {
        stream.set_nonblocking(true).expect("set_nonblocking");
        EchoConn {
            id,
            stream,
            pattern,
            total,
            sent: 0,
            received: 0,
            write_shut: false,
            eof: false,
        }
    }

    fn write_some(&mut self, buf: &mut [u8]) -> Result<bool, String> {
        let mut progress = false;
        while self.sent < self.total {
            let n = (self.total - self.sent).min(buf.len() as u64) as usize;
            self.pattern.fill(self.sent, &mut buf[..n]);
            match self.stream.write(&buf[..n]) {
                Ok(k) => {
                    self.sent += k as u64;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(format!(
                        "conn {}: write after {} of {} bytes: {e}",
                        self.id, self.sent, self.total
                    ))
                }
            }
        }
        if !self.write_shut {
            self.stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("conn {}: shutdown(Write): {e}", self.id))?;
            self.write_shut = true;
            progress = true;
        }
        Ok(progress)
    }

    fn read_some(&mut self, buf: &mut [u8], scratch: &mut Vec<u8>) -> Result<bool, String> {
        let mut progress = false;
        while !self.eof {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    if self.received != self.total {
                        return Err(format!(
                            "conn {}: EOF after {} of {} echoed bytes",
                            self.id, self.received, self.total
                        ));
                    }
                    return Ok(true);
                }
                Ok(k) => {
                    if self.received + k as u64 > self.total {
                        return Err(format!(
                            "conn {}: {} bytes echoed, only {} sent",
                            self.id,
                            self.received + k as u64,
                            self.total
                        ));
                    }
                    self.pattern
                        .verify(self.received, &buf[..k], scratch)
                        .map_err(|e| format!("conn {}: {e}", self.id))?;
                    self.received += k as u64;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(format!(
                        "conn {}: read after {} of {} bytes (sent {}): {e}",
                        self.id, self.received, self.total, self.sent
                    ))
                }
            }
        }
        Ok(progress)
    }
}

/// Drives `conns` until every one has its whole echo and the server's FIN, or `deadline`.
pub fn run_echo(conns: &mut [EchoConn], deadline: Instant) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    let mut scratch = Vec::with_capacity(CHUNK);
    let mut first = true;
    loop {
        let live: Vec<usize> = (0..conns.len()).filter(|&i| !conns[i].eof).collect();
        if live.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let behind = live
                .iter()
                .take(5)
                .map(|&i| {
                    let c = &conns[i];
                    format!(
                        "conn {} sent {}/{} received {}",
                        c.id, c.sent, c.total, c.received
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(format!(
                "{} of {} echo connections unfinished at the deadline: {behind}",
                live.len(),
                conns.len()
            ));
        }
        // Which sockets are ready (all of them on the first pass).
        let ready: Vec<usize> = if first {
            first = false;
            live.clone()
        } else {
            let mut fds: Vec<PollFd<'_>> = live
                .iter()
                .map(|&i| {
                    let c = &conns[i];
                    let mut ev = PollFlags::POLLIN;
                    if !c.write_shut {
                        ev |= PollFlags::POLLOUT;
                    }
                    PollFd::new(c.stream.as_fd(), ev)
                })
                .collect();
            match nix::poll::poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            live.iter()
                .zip(fds.iter())
                .filter(|(_, f)| f.any().unwrap_or(true))
                .map(|(&i, _)| i)
                .collect()
        };
        for i in ready {
            let c = &mut conns[i];
            c.write_some(&mut buf)?;
            c.read_some(&mut buf, &mut scratch)?;
        }
    }
}

/// Opens `n` echo connections to `addr` from the calling thread (which must be in the client
/// namespace), ids from `first_id`, each with a pattern of its own.
pub fn connect_many(
    addr: SocketAddr,
    first_id: usize,
    n: usize,
    seed: u64,
    total: u64,
) -> Result<Vec<EchoConn>, String> {
    (first_id..first_id + n)
        .map(|id| EchoConn::connect(id, addr, Pattern(seed ^ id as u64), total))
        .collect()
}

/// `n` echo transfers of `total` bytes each to `addr`, all open at once, from one thread in
/// the client namespace; bounded by `limit`.
pub fn echo_clients(
    lab: &Lab,
    addr: SocketAddr,
    n: usize,
    total: u64,
    limit: Duration,
) -> Result<(), String> {
    let seed = seed();
    in_ns(lab, Side::Client, move || {
        let deadline = Instant::now() + limit;
        let mut conns = connect_many(addr, 0, n, seed, total)?;
        run_echo(&mut conns, deadline)
    })
}

// --- impairment -------------------------------------------------------------------------------

/// How the client's link was impaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impairment {
    /// `tc qdisc add dev veth-cli root netem loss 1% delay 10ms 3ms reorder 5%`.
    Netem,
    /// This kernel has no netem (CONFIG_NET_SCH_NETEM unset): 1% loss and 5% reordering in
    /// each direction, built from what it has. See [`impair`].
    Emulated,
}

/// Classic BPF for cls_bpf that matches a packet with probability `p`: `ld rand` (the
/// SKF_AD_RANDOM ancillary load, prandom_u32), then `jge #p*2^32` to "no match".
fn random_match(p: f64) -> String {
    const LD_RAND: u32 = 0xffff_f000 + 56; // SKF_AD_OFF + SKF_AD_RANDOM
    let threshold = (p * 4_294_967_296.0) as u32;
    // BPF_LD|BPF_W|BPF_ABS = 0x20; BPF_JMP|BPF_JGE|BPF_K = 0x35; BPF_RET|BPF_K = 0x06.
    format!("4,32 0 0 {LD_RAND},53 1 0 {threshold},6 0 0 4294967295,6 0 0 0")
}

/// Impairs veth-cli with netem as the issue specifies, or, where the kernel lacks netem, with an
/// emulation: in both directions (clsact egress and ingress on veth-cli), a classic-BPF filter
/// drawing a random number sends 1% of IPv4 packets to an ifb device whose only qdisc holds
/// nothing (`pfifo limit 0`: lost), and 5% to another ifb device that hands them back to
/// veth-cli later, from its own tasklet, behind packets sent after them (reordered). netem's
/// 10 ms ± 3 ms delay has no equivalent without netem.
pub fn impair(lab: &Lab) -> Impairment {
    // sch_netem may be a module (scripts/bootstrap.sh installs kmod); a kernel without it
    // refuses the qdisc below whatever this says.
    let _ = Command::new("modprobe")
        .arg("sch_netem")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let (status, _, err) = output_within(
        lab.command(Side::Client, "tc").args([
            "qdisc", "add", "dev", "veth-cli", "root", "netem", "loss", "1%", "delay", "10ms",
            "3ms", "reorder", "5%",
        ]),
        Duration::from_secs(10),
    );
    if status.is_some_and(|s| s.success()) {
        return Impairment::Netem;
    }
    eprintln!(
        "netem is not available ({}); emulating 1% loss and 5% reordering each way",
        err.trim()
    );
    let ip = |args: &[&str]| must(lab.command(Side::Client, "ip").args(args));
    let tc = |args: &[&str]| must(lab.command(Side::Client, "tc").args(args));
    for dev in ["tern-lose", "tern-detour"] {
        ip(&["link", "add", dev, "type", "ifb"]);
        ip(&["link", "set", dev, "up"]);
    }
    tc(&[
        "qdisc",
        "add",
        "dev",
        "tern-lose",
        "root",
        "pfifo",
        "limit",
        "0",
    ]);
    // A lab with more than one queue already has clsact on veth-cli, with lab.sh's RSS stand-in
    // at priority 1: it must see every packet first, so that one this emulation delays leaves
    // later on its flow's queue (ifb sends it back without tc). The filters below come after.
    let qdiscs = must(
        lab.command(Side::Client, "tc")
            .args(["qdisc", "show", "dev", "veth-cli"]),
    );
    if !qdiscs.contains("clsact") {
        tc(&["qdisc", "add", "dev", "veth-cli", "clsact"]);
    }
    for dir in ["egress", "ingress"] {
        for (prio, p, dev) in [("10", 0.01, "tern-lose"), ("11", 0.05, "tern-detour")] {
            tc(&[
                "filter",
                "add",
                "dev",
                "veth-cli",
                dir,
                "protocol",
                "ip",
                "prio",
                prio,
                "bpf",
                "bytecode",
                &random_match(p),
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                dev,
            ]);
        }
    }
    Impairment::Emulated
}

/// What the impairment did: `tc -s` of the devices involved.
pub fn impairment_stats(lab: &Lab) -> String {
    let mut out = String::new();
    for args in [
        &["-s", "qdisc", "show", "dev", "veth-cli"][..],
        &["-s", "qdisc", "show", "dev", "tern-lose"],
        &["-s", "qdisc", "show", "dev", "tern-detour"],
    ] {
        let (_, o, _) = output_within(
            lab.command(Side::Client, "tc").args(args),
            Duration::from_secs(10),
        );
        out.push_str(&o);
    }
    out
}
