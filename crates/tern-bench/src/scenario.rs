//! `tern-bench run SCENARIO`: a whole measurement in a lab of its own.
//!
//! `syn-flood`: brings up a veth lab (`scripts/lab.sh`, a namespace prefix of its own),
//! optionally measures the raw AF_XDP reflect path first (`--reflect`: flat-out flood into
//! `tern-bench reflect` on the server end), starts the server (the kernel through
//! `tern-bench serve` with `net.ipv4.tcp_syncookies` set, or `ternd` with the matching
//! `tcp.syncookies`), then for each flood rate runs one step of `--step` seconds: the AF_XDP
//! flood from the client namespace and, at the same time, open-loop legitimate clients (echo).
//! For each step it records the flood's offered rate, what the server sent (its veth's
//! `tx_packets + tx_dropped` per second: SYN-ACKs and answers), the server's own counters, the
//! server's CPU time ([`crate::cpu`]), and the clients' success and connect latency. It writes
//! `scenario.json` and `scenario.md` to `--out`, prints the table, stops the server and tears
//! the lab down, also on errors. Every child process is bounded by its own `--duration` and
//! waited for with a timeout.
//!
//! `churn`: the same lab, placement and server, but each step runs `tern-bench churn` (an
//! AF_XDP client: connect, echo `--size` bytes, close) at the step's rate in connections per
//! second, with no flood. The client attaches its own steering program to `veth-cli` (so no
//! pass program there), whose NAPI thread is pinned to the generator's core each step. A step
//! records the connections completed, the server's CPU time, and so connections per server
//! CPU-second.
//!
//! # Placement: the same for both servers
//!
//! * Every server gets an XDP program on `veth-srv`: ternd its own, the kernel tern_steer with no
//!   listener (`tern-bench xdp-pass`: every packet passes), so that for both the receive work
//!   runs in `veth-srv`'s threaded NAPI kernel thread(s) rather than in the flood's softirq on
//!   the generator's core. Those threads are pinned to `napi_core` (default: the server core),
//!   after every attach that creates them (reflect, ternd, the pass program); with
//!   `napi_per_queue`, queue i's thread to the core of the server's queue-i thread instead.
//! * The server's threads run on `server_core` (ternd pins queue i's worker to core i, so 0 by
//!   default); the flood, the legitimate clients and `veth-cli`'s NAPI thread run on
//!   `flood_core`. `veth-cli` gets the pass program too, so that receiving the server's replies
//!   in the client namespace is not charged to the server's core; its NAPI thread runs
//!   `SCHED_FIFO` (it must not lose replies to the flood it shares a core with) and re-polls
//!   every `client_napi_defer_us` while busy, so the server's transmit path does not pay a
//!   cross-core wake-up for every reply (a NIC's transmit costs a doorbell per batch).
//! * Server CPU per step: the server process's threads, `veth-srv`'s NAPI threads, and softirq
//!   and irq time on the server and NAPI cores.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::churn::ChurnReport;
use crate::connect::ConnectReport;
use crate::cpu::{self, CpuSample, NapiLock, ServerCpu, Task};
use crate::flood::FloodReport;
use crate::frames::Shape;
use crate::net::IfCounters;
use crate::progress::ProgressBar;
use crate::reflect::ReflectReport;
use crate::report::{markdown_table, write_json};

/// Scenarios `run` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// SYN flood at increasing rates with legitimate clients alongside.
    SynFlood,
    /// Connection churn at increasing rates (`tern-bench churn`: connect, echo, close), for
    /// connections per second per server core.
    Churn,
}

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// The Linux kernel (`tern-bench serve`, echo).
    Kernel,
    /// `ternd` (echo app).
    Ternd,
}

/// Configuration of [`run`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioConfig {
    /// Scenario.
    pub scenario: Scenario,
    /// Server.
    pub server: ServerKind,
    /// SYN cookies: 1 = when the queue overflows, 2 = always (kernel sysctl values; ternd's
    /// `on-overflow` and `always`).
    pub syncookies: u8,
    /// Flood rates, one step each, packets/s; `None` = as fast as possible, `Some(0)` = no
    /// flood (baseline).
    pub rates: Vec<Option<f64>>,
    /// Seconds per step.
    pub step: Duration,
    /// Legitimate connection attempts per second.
    pub legit_rate: f64,
    /// Flood shape.
    pub shape: Shape,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// Queues of the lab's veth pair (and so ternd workers, reflect threads).
    pub queues: u32,
    /// Core for the flood.
    pub flood_core: usize,
    /// Core for the server (kernel server threads, reflect; ternd pins queue i's worker to
    /// core i).
    pub server_core: usize,
    /// Core for `veth-srv`'s NAPI kernel threads (the server's receive work).
    #[serde(default)]
    pub napi_core: usize,
    /// Instead: queue i's NAPI thread on the core of the server's queue-i thread (ternd's
    /// worker i runs on core i), for runs with more than one queue.
    #[serde(default)]
    pub napi_per_queue: bool,
    /// Attach tern_steer without listeners (every packet passes) to the kernel server's
    /// `veth-srv` and to `veth-cli`; `false` reproduces the unfair setup where the kernel's
    /// receive work runs in the flood's softirq.
    #[serde(default = "yes")]
    pub pass_programs: bool,
    /// With the pass programs: `veth-cli`'s NAPI re-polls every this many µs while busy
    /// instead of being woken by the server's every reply (0: woken every time).
    #[serde(default)]
    pub client_napi_defer_us: u32,
    /// Measure the raw AF_XDP reflect path first.
    pub reflect: bool,
    /// More `--set KEY=VALUE` settings for ternd (e.g. `spin=true`).
    #[serde(default)]
    pub ternd_set: Vec<String>,
    /// Output directory.
    pub out: PathBuf,
    /// The ternd binary.
    pub ternd: PathBuf,
    /// `scripts/lab.sh`.
    pub lab_script: PathBuf,
    /// Namespace prefix of the lab.
    pub prefix: String,
}

fn yes() -> bool {
    true
}

/// One step's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Requested flood rate (`None`: flat out; `Some(0)`: none).
    pub rate: Option<f64>,
    /// The flood's report (absent without a flood).
    pub flood: Option<FloodReport>,
    /// The legitimate clients' report.
    pub clients: ConnectReport,
    /// Packets per second that left the server's interface during the step (`tx_packets`).
    pub server_tx_pps: f64,
    /// Packets per second the server sent (`tx_packets + tx_dropped` of `veth-srv`: a reply
    /// that `veth-cli`'s full receive ring refused was still answered): SYN-ACKs and the
    /// legitimate connections' segments.
    #[serde(default)]
    pub answered_pps: f64,
    /// `veth-srv`'s counters over the step.
    #[serde(default)]
    pub server_if: Option<IfCounters>,
    /// Seconds between the two samples of the step's counters and CPU times.
    #[serde(default)]
    pub elapsed_s: f64,
    /// The server's CPU time over the step.
    #[serde(default)]
    pub cpu: Option<ServerCpu>,
    /// Server counter increments over the step (kernel: `Tcp*`/`TcpExt*` of /proc/net;
    /// ternd: its stats JSON `tcp` counters, as of its last snapshot).
    pub server_counters: BTreeMap<String, u64>,
}

impl Step {
    /// Packets the server sent per second of its CPU time (`answered_pps` over the CPU
    /// seconds per second it used).
    pub fn per_cpu_second(&self) -> Option<f64> {
        let cpu = self.cpu.as_ref()?;
        cpu.per_cpu_second(self.answered_pps * cpu.elapsed_s)
    }

    /// The flood's offered rate (0 without a flood).
    pub fn offered_pps(&self) -> f64 {
        self.flood.as_ref().map_or(0.0, |f| f.offered_pps)
    }
}

/// One step of the churn scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnStep {
    /// Scheduled connections per second.
    pub rate: f64,
    /// The client's report.
    pub churn: ChurnReport,
    /// Seconds between the two samples of counters and CPU times (the client's active run).
    pub elapsed_s: f64,
    /// The server's CPU time over the step.
    pub cpu: Option<ServerCpu>,
    /// `veth-srv`'s counters over the step.
    pub server_if: Option<IfCounters>,
    /// Server counter increments over the step.
    pub server_counters: BTreeMap<String, u64>,
    /// `veth-cli`'s NAPI threads during the step (pinned to the generator's core).
    pub client_napi: Vec<Task>,
}

impl ChurnStep {
    /// Connections completed per busy second of the server's core(s): everything that ran
    /// there, not only the server's threads and NAPI (`ServerCpu::core_busy_s`). Nothing else is
    /// placed on those cores, and a connection's cost does not all show in the server's own
    /// threads: the kernel frees sockets and runs TCP timers from other kernel threads, which
    /// took about a quarter of its time on the server core in the lab.
    pub fn per_cpu_second(&self) -> Option<f64> {
        let cpu = self.cpu.as_ref()?;
        (cpu.core_busy_s > 0.0).then(|| self.churn.successes as f64 / cpu.core_busy_s)
    }

    /// The server cores' busy share over the step (1.0 = one core).
    pub fn utilisation(&self) -> Option<f64> {
        let cpu = self.cpu.as_ref()?;
        (cpu.elapsed_s > 0.0).then(|| cpu.core_busy_s / cpu.elapsed_s)
    }

    /// Fraction of attempts that completed.
    pub fn success_ratio(&self) -> f64 {
        self.churn.successes as f64 / self.churn.attempts.max(1) as f64
    }
}

/// Where things ran: cores, and the NAPI kernel threads that were pinned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Placement {
    /// The server's cores (its threads).
    pub server_cores: Vec<usize>,
    /// The core `veth-srv`'s NAPI threads were pinned to (the first, with `napi_cores`).
    pub napi_core: usize,
    /// The cores of `veth-srv`'s NAPI threads, in queue order.
    #[serde(default)]
    pub napi_cores: Vec<usize>,
    /// The core of the flood, the legitimate clients and `veth-cli`'s NAPI threads.
    pub generator_core: usize,
    /// `veth-srv`'s NAPI threads while the server ran.
    pub server_napi: Vec<Task>,
    /// `veth-srv`'s NAPI threads while reflect ran.
    pub reflect_napi: Vec<Task>,
    /// `veth-cli`'s NAPI threads.
    pub client_napi: Vec<Task>,
    /// Whether the pass programs were attached (kernel `veth-srv`, `veth-cli`).
    pub pass_programs: bool,
}

/// The whole result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// What was run.
    pub config: ScenarioConfig,
    /// The raw reflect baseline, if measured, and the flood that fed it.
    pub reflect: Option<(ReflectReport, FloodReport)>,
    /// The reflect process's and `veth-srv`'s NAPI CPU time during the baseline.
    #[serde(default)]
    pub reflect_cpu: Option<ServerCpu>,
    /// Cores and pinned kernel threads.
    #[serde(default)]
    pub placement: Placement,
    /// The steps (`syn-flood`).
    pub steps: Vec<Step>,
    /// The steps (`churn`).
    #[serde(default)]
    pub churn_steps: Vec<ChurnStep>,
}

impl ScenarioReport {
    /// `kernel sc=1`, `kernel sc=2`, `ternd` (syncookies on overflow) or `ternd sc=2`.
    pub fn system(&self) -> String {
        system_label(self.config.server, self.config.syncookies)
    }
}

/// The name of a server and SYN-cookie setting in tables and plots.
pub fn system_label(server: ServerKind, syncookies: u8) -> String {
    match (server, syncookies) {
        (ServerKind::Ternd, 1) => "ternd".into(),
        (ServerKind::Ternd, n) => format!("ternd sc={n}"),
        (ServerKind::Kernel, n) => format!("kernel sc={n}"),
    }
}

/// A lab of its own; `Drop` tears it down.
struct LabGuard {
    script: PathBuf,
    prefix: String,
}

impl LabGuard {
    fn up(script: &Path, prefix: &str, queues: u32) -> Result<LabGuard> {
        let guard = LabGuard {
            script: script.to_owned(),
            prefix: prefix.to_owned(),
        };
        let out = guard
            .cmd()
            .args(["up", "--queues", &queues.to_string()])
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "lab.sh up failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(guard)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("bash");
        c.arg(&self.script).env("TERN_LAB_PREFIX", &self.prefix);
        c
    }

    fn ns(&self, server: bool) -> String {
        format!("{}{}", self.prefix, if server { "srv" } else { "cli" })
    }

    /// `program` inside the server's or the client's namespace.
    fn exec(&self, server: bool, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(server)]).arg(program);
        c
    }

    /// Output of a short command in a namespace.
    fn read(&self, server: bool, args: &[&str]) -> Result<String> {
        let out = self
            .exec(server, Path::new(args[0]))
            .args(&args[1..])
            .output()
            .with_context(|| format!("running {args:?}"))?;
        if !out.status.success() {
            bail!(
                "{args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = self.cmd().arg("down").stdout(Stdio::null()).status();
    }
}

/// A child process we started; killed (by its PID) if still running when dropped.
struct Proc {
    name: String,
    child: Child,
    /// Its stdout lines, once [`wait_line`](Self::wait_line) has started reading them.
    lines: Option<mpsc::Receiver<String>>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            lines: None,
        })
    }

    /// Waits (at most `timeout`) for a stdout line starting with `prefix`; the rest of the
    /// output is passed through to ours.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<()> {
        if self.lines.is_none() {
            let stdout = self.child.stdout.take().context("no stdout")?;
            let (tx, rx) = mpsc::channel();
            let name = self.name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    println!("  [{name}] {line}");
                    let _ = tx.send(line);
                }
            });
            self.lines = Some(rx);
        }
        let rx = self.lines.as_ref().context("no stdout")?;
        let deadline = Instant::now() + timeout;
        loop {
            if interrupted() {
                bail!("interrupted");
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => bail!("{} did not say `{prefix}` within {timeout:?}", self.name),
            }
        }
    }

    /// Waits at most `timeout` for it to exit; kills it past that.
    fn wait(mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status}", self.name);
                }
                return Ok(());
            }
            if Instant::now() >= deadline || interrupted() {
                let _ = self.child.kill();
                let _ = self.child.wait();
                if interrupted() {
                    bail!("interrupted");
                }
                bail!("{} did not finish within {timeout:?}; killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its PID (`ip netns exec` execs the program in place, so this is the program's).
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGINT, then [`wait`](Self::wait).
    fn interrupt(self, timeout: Duration) -> Result<()> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        self.wait(timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Whether a step's rate means "no flood".
fn no_flood(rate: Option<f64>) -> bool {
    rate.is_some_and(|r| r <= 0.0)
}

/// A flood rate as every table names it (`none`, `25k`, `max`).
fn rate_name(rate: Option<f64>) -> String {
    crate::compare::rate_label(crate::compare::rate_key(rate))
}

/// The longest a run waits for another to finish attaching (ternd's start-up takes seconds).
const LOCK_WAIT: Duration = Duration::from_secs(90);

/// Set by SIGINT/SIGTERM: every wait checks it, and the run then stops its children and
/// tears the lab down.
static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

fn interrupted() -> bool {
    STOP.get().is_some_and(|s| s.load(Ordering::Relaxed))
}

/// Runs the scenario; returns the report (also written to `config.out`). `stop` (SIGINT)
/// ends it early, cleaning up.
pub fn run(config: &ScenarioConfig, stop: Arc<AtomicBool>) -> Result<ScenarioReport> {
    let _ = STOP.set(stop);
    anyhow::ensure!(!config.rates.is_empty(), "no flood rates to step through");
    anyhow::ensure!(
        matches!(config.syncookies, 1 | 2),
        "--syncookies must be 1 (on overflow) or 2 (always)"
    );
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("creating {}", config.out.display()))?;
    let exe = std::env::current_exe().context("locating the tern-bench binary")?;
    if config.server == ServerKind::Ternd && !config.ternd.exists() {
        bail!(
            "no ternd binary at {} (build it with cargo build --release -p ternd, or pass \
             --ternd)",
            config.ternd.display()
        );
    }
    let server_cores = server_cores(config);
    // softirq and irq time of these cores is charged to the server.
    let mut charged_cores = server_cores.clone();
    for core in server_napi_cores(config) {
        if !charged_cores.contains(&core) {
            charged_cores.push(core);
        }
    }
    let mut placement = Placement {
        server_cores: server_cores.clone(),
        napi_core: config.napi_core,
        napi_cores: server_napi_cores(config),
        generator_core: config.flood_core,
        pass_programs: config.pass_programs,
        ..Placement::default()
    };
    println!(
        "run: lab {}* with {} queue(s); server on core(s) {server_cores:?}, veth-srv NAPI on \
         core(s) {:?} (by queue), flood, clients and veth-cli NAPI on core {}",
        config.prefix,
        config.queues,
        server_napi_cores(config),
        config.flood_core
    );
    // lab.sh turns GRO on and off on veth-srv (to set threaded NAPI), which creates NAPI
    // threads: not while another run looks for its new ones.
    let lab = {
        let _lock = NapiLock::take(LOCK_WAIT)?;
        LabGuard::up(&config.lab_script, &config.prefix, config.queues)?
    };
    let dst: SocketAddr = if config.ipv6 {
        "[2001:2::1]:8080".parse()?
    } else {
        "198.18.0.1:8080".parse()?
    };
    let dst_mac = lab
        .read(true, &["cat", "/sys/class/net/veth-srv/address"])?
        .trim()
        .to_owned();
    let queues = format!("0-{}", config.queues - 1);
    let step_s = config.step.as_secs_f64();
    let step_arg = format!("{step_s}s");
    let grace = Duration::from_secs(15);
    // Bounds every long-lived helper (pass programs, the kernel server).
    let total = (step_s + 10.0) * config.rates.len() as f64 + 120.0;
    let total_arg = format!("{total}s");

    // The client side: veth-cli's receive work (the server's replies) in its own NAPI thread,
    // on the generator's core.
    let mut cli_pass = None;
    if config.pass_programs || config.scenario == Scenario::Churn {
        // Toggling GRO creates and removes NAPI threads: not while another run looks for its
        // new ones.
        let lock = NapiLock::take(LOCK_WAIT)?;
        threaded_napi(&lab, false)?;
        drop(lock);
        if config.client_napi_defer_us > 0 {
            defer_napi(&lab, false, config.client_napi_defer_us)?;
        }
    }
    // The churn client attaches its own program to veth-cli, step by step.
    if config.pass_programs && config.scenario == Scenario::SynFlood {
        let _lock = NapiLock::take(LOCK_WAIT)?;
        let before = cpu::napi_threads("veth-cli");
        let mut p = Proc::spawn("xdp-pass veth-cli", pass_cmd(&lab, &exe, false, &total_arg))?;
        p.wait_line("xdp-pass: attached", Duration::from_secs(15))?;
        placement.client_napi = pin_new_napi("veth-cli", &before, config, &[config.flood_core])?;
        client_napi_fifo(&lab, &placement.client_napi)?;
        cli_pass = Some(p);
    }

    let flood_cmd = |rate: Option<f64>, json: &Path| {
        let mut c = lab.exec(false, &exe);
        // AF_XDP for every step, metered or flat out: its rate steps are smooth, and the
        // figures stay comparable across steps (live frames would change the sender's path
        // at the flat-out step only).
        c.args([
            "flood",
            "--tx",
            "af-xdp",
            "--interface",
            "veth-cli",
            "--dst",
        ])
        .arg(dst.to_string())
        .args(["--dst-mac", &dst_mac, "--shape"])
        .arg(
            clap::ValueEnum::to_possible_value(&config.shape)
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
        )
        .args(["--duration", &step_arg, "--core"])
        .arg(config.flood_core.to_string())
        .arg("--json")
        .arg(json);
        if let Some(r) = rate {
            c.args(["--rate", &r.to_string()]);
        }
        c
    };

    // 1. The raw reflect baseline.
    let mut reflect = None;
    let mut reflect_cpu = None;
    if config.reflect && config.scenario == Scenario::SynFlood {
        println!("run: raw AF_XDP reflect baseline, flat-out flood for {step_arg}");
        let rjson = config.out.join("reflect.json");
        let fjson = config.out.join("reflect-flood.json");
        let lock = NapiLock::take(LOCK_WAIT)?;
        let before = cpu::napi_threads("veth-srv");
        let mut c = lab.exec(true, &exe);
        c.args([
            "reflect",
            "--interface",
            "veth-srv",
            "--synack",
            "--queues",
            &queues,
        ])
        .args(["--cores", &config.server_core.to_string()])
        .args(["--duration", &format!("{}s", step_s + 3.0), "--json"])
        .arg(&rjson);
        let mut r = Proc::spawn("reflect", c)?;
        r.wait_line("reflect: on", Duration::from_secs(15))?;
        placement.reflect_napi =
            pin_new_napi("veth-srv", &before, config, &server_napi_cores(config))?;
        drop(lock);
        std::thread::sleep(Duration::from_millis(300));
        let mut f = Proc::spawn("flood", flood_cmd(None, &fjson))?;
        f.wait_line("flood: sending", Duration::from_secs(10))?;
        let s0 = CpuSample::take(Some(r.pid()), &placement.reflect_napi)?;
        let t0 = Instant::now();
        f.wait(config.step + grace)?;
        let s1 = CpuSample::take(Some(r.pid()), &placement.reflect_napi)?;
        reflect_cpu = Some(s1.since(&s0, &charged_cores, t0.elapsed().as_secs_f64()));
        r.wait(config.step + grace)?;
        reflect = Some((read_json(&rjson)?, read_json(&fjson)?));
    }

    // 2. The server, with an XDP program on veth-srv and its NAPI threads pinned.
    let addr_arg = dst.to_string();
    let lock = NapiLock::take(LOCK_WAIT)?;
    let napi_before = cpu::napi_threads("veth-srv");
    let mut srv_pass = None;
    let server = match config.server {
        ServerKind::Kernel => {
            lab.read(
                true,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.tcp_syncookies={}", config.syncookies),
                ],
            )?;
            if config.pass_programs {
                let mut p =
                    Proc::spawn("xdp-pass veth-srv", pass_cmd(&lab, &exe, true, &total_arg))?;
                p.wait_line("xdp-pass: attached", Duration::from_secs(15))?;
                srv_pass = Some(p);
            }
            let mut c = lab.exec(true, &exe);
            c.args([
                "serve",
                "--listen",
                &addr_arg,
                "--mode",
                "echo",
                "--threads",
            ])
            .arg(config.queues.to_string())
            .args(["--cores", &config.server_core.to_string()])
            .args(["--duration", &total_arg]);
            let mut p = Proc::spawn("serve", c)?;
            p.wait_line("serve: listening", Duration::from_secs(15))?;
            p
        }
        ServerKind::Ternd => {
            let mode = if config.syncookies == 2 {
                "always"
            } else {
                "on-overflow"
            };
            // A snapshot left by an earlier run in this directory would be read as a baseline.
            let _ = std::fs::remove_file(config.out.join("ternd-stats.json"));
            let mut c = lab.exec(true, &config.ternd);
            c.args(["run", "--interface", "veth-srv", "--listen"])
                .arg(format!("{addr_arg}=echo"))
                .args(["--set", &format!("tcp.syncookies={mode}")]);
            for kv in &config.ternd_set {
                c.args(["--set", kv]);
            }
            c.arg("--stats-json")
                .arg(config.out.join("ternd-stats.json"));
            let p = Proc::spawn("ternd", c)?;
            wait_for_server(&lab, &exe, dst, &config.out)?;
            p
        }
    };
    if config.server == ServerKind::Ternd || config.pass_programs {
        placement.server_napi =
            pin_new_napi("veth-srv", &napi_before, config, &server_napi_cores(config))?;
    }
    drop(lock);

    // 3. The steps.
    let mut steps = Vec::new();
    let mut churn_steps = Vec::new();
    for (i, &rate) in config.rates.iter().enumerate() {
        if interrupted() {
            bail!("interrupted");
        }
        if config.scenario == Scenario::Churn {
            let rate = rate.filter(|r| *r > 0.0).context(
                "churn rates are connections per second: positive numbers, not `max` or 0",
            )?;
            let ctx = StepContext {
                lab: &lab,
                exe: &exe,
                config,
                server: &server,
                server_napi: &placement.server_napi,
                charged_cores: &charged_cores,
                dst,
                dst_mac: &dst_mac,
            };
            churn_steps.push(churn_step(&ctx, i, rate)?);
            continue;
        }
        println!(
            "run: step {} of {}: flood {} pps with {} legitimate connections/s for {step_arg}",
            i + 1,
            config.rates.len(),
            rate_name(rate),
            config.legit_rate
        );
        let fjson = config.out.join(format!("step{i}-flood.json"));
        let cjson = config.out.join(format!("step{i}-clients.json"));
        let counters_before = server_counters(&lab, config)?;
        let mut c = lab.exec(false, &exe);
        c.args(["connect", "--target", &addr_arg, "--rate"])
            .arg(config.legit_rate.to_string())
            .args([
                "--duration",
                &step_arg,
                "--request",
                "echo",
                "--timeout",
                "3s",
                "--cores",
            ])
            .arg(config.flood_core.to_string())
            .arg("--json")
            .arg(&cjson);
        let mut flood = if no_flood(rate) {
            None
        } else {
            Some(Proc::spawn("flood", flood_cmd(rate, &fjson))?)
        };
        let clients = Proc::spawn("connect", c)?;
        // The window: from the flood's first packet to its exit (or one step without a flood).
        if let Some(f) = &mut flood {
            f.wait_line("flood: sending", Duration::from_secs(10))?;
        }
        let if0 = iface_counters(&lab)?;
        let cpu0 = CpuSample::take(Some(server.pid()), &placement.server_napi)?;
        let t0 = Instant::now();
        let bar = ProgressBar::start(
            format!(
                "{}, flood {}",
                system_label(config.server, config.syncookies),
                rate_name(rate)
            ),
            i + 1,
            config.rates.len(),
            config.step,
        );
        match flood {
            Some(f) => f.wait(config.step + grace)?,
            None => std::thread::sleep(config.step),
        }
        drop(bar);
        let cpu1 = CpuSample::take(Some(server.pid()), &placement.server_napi)?;
        let if1 = iface_counters(&lab)?;
        let elapsed_s = t0.elapsed().as_secs_f64();
        let d = if1.since(&if0);
        let cpu = cpu1.since(&cpu0, &charged_cores, elapsed_s);
        clients.wait(grace)?;
        settle_ternd_stats(config);
        let server_counters = counter_delta(&counters_before, &server_counters(&lab, config)?);
        let step = Step {
            rate,
            flood: if no_flood(rate) {
                None
            } else {
                Some(read_json(&fjson)?)
            },
            clients: read_json(&cjson)?,
            server_tx_pps: d.tx_packets as f64 / elapsed_s,
            answered_pps: (d.tx_packets + d.tx_dropped) as f64 / elapsed_s,
            server_if: Some(d),
            elapsed_s,
            cpu: Some(cpu),
            server_counters,
        };
        println!(
            "run: step {}: offered {:.0} pps, answered {:.0} pps, server CPU {:.2} s of {:.2} s, \
             {} ok of {}",
            i + 1,
            step.offered_pps(),
            step.answered_pps,
            step.cpu.as_ref().map_or(0.0, |c| c.total_s),
            elapsed_s,
            step.clients.successes,
            step.clients.attempts
        );
        steps.push(step);
    }
    server.interrupt(grace)?;
    for p in [srv_pass, cli_pass].into_iter().flatten() {
        p.interrupt(grace)?;
    }

    let report = ScenarioReport {
        config: config.clone(),
        reflect,
        reflect_cpu,
        placement,
        steps,
        churn_steps,
    };
    write_json(&config.out.join("scenario.json"), &report)?;
    let table = markdown(&report);
    std::fs::write(config.out.join("scenario.md"), &table)
        .with_context(|| format!("writing {}", config.out.display()))?;
    println!("\n{table}");
    drop(lab);
    Ok(report)
}

/// Gives `veth-cli`'s NAPI threads `SCHED_FIFO`. The client side is not under test: its receive
/// path gets a real-time priority over the load generator it shares a core with, as a NIC's
/// softirq would, so that the server's replies are not lost in the lab's own client side.
fn client_napi_fifo(lab: &LabGuard, threads: &[Task]) -> Result<()> {
    for t in threads {
        lab.read(false, &["chrt", "--fifo", "--pid", "1", &t.pid.to_string()])
            .with_context(|| format!("making {} SCHED_FIFO", t.name))?;
    }
    Ok(())
}

/// Increments of `after` over `before`, the counters that moved only.
fn counter_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Waits until ternd's stats JSON holds everything up to now: each worker sends a snapshot
/// every second and the daemon writes the latest ones every second, so a figure can be up to
/// two seconds old.
fn settle_ternd_stats(config: &ScenarioConfig) {
    if config.server == ServerKind::Ternd {
        std::thread::sleep(Duration::from_millis(2200));
    }
}

/// What a churn step needs from the run.
struct StepContext<'a> {
    lab: &'a LabGuard,
    exe: &'a Path,
    config: &'a ScenarioConfig,
    server: &'a Proc,
    server_napi: &'a [Task],
    charged_cores: &'a [usize],
    dst: SocketAddr,
    dst_mac: &'a str,
}

/// One churn step: `tern-bench churn` at `rate` from the client namespace, with its new
/// veth-cli NAPI thread pinned to the generator's core, the server's CPU and counters sampled
/// over the client's active run.
fn churn_step(ctx: &StepContext<'_>, i: usize, rate: f64) -> Result<ChurnStep> {
    let config = ctx.config;
    let step_arg = format!("{}s", config.step.as_secs_f64());
    let grace = Duration::from_secs(15);
    println!(
        "run: step {} of {}: churn at {rate} connections/s for {step_arg}",
        i + 1,
        config.rates.len()
    );
    let json = config.out.join(format!("step{i}-churn.json"));
    let counters_before = server_counters(ctx.lab, config)?;
    let lock = NapiLock::take(LOCK_WAIT)?;
    let before = cpu::napi_threads("veth-cli");
    let mut c = ctx.lab.exec(false, ctx.exe);
    c.args(["churn", "--interface", "veth-cli", "--dst"])
        .arg(ctx.dst.to_string())
        .args(["--dst-mac", ctx.dst_mac, "--rate"])
        .arg(rate.to_string())
        .args(["--duration", &step_arg, "--core"])
        .arg(config.flood_core.to_string())
        .arg("--json")
        .arg(&json);
    let mut churn = Proc::spawn("churn", c)?;
    churn.wait_line("churn: attached", Duration::from_secs(15))?;
    let client_napi = pin_new_napi("veth-cli", &before, config, &[config.flood_core])?;
    client_napi_fifo(ctx.lab, &client_napi)?;
    drop(lock);
    churn.wait_line("churn: sending", Duration::from_secs(10))?;
    let if0 = iface_counters(ctx.lab)?;
    let cpu0 = CpuSample::take(Some(ctx.server.pid()), ctx.server_napi)?;
    let t0 = Instant::now();
    let bar = ProgressBar::start(
        format!(
            "{}, churn {rate}/s",
            system_label(config.server, config.syncookies)
        ),
        i + 1,
        config.rates.len(),
        config.step,
    );
    churn.wait(config.step + grace)?;
    drop(bar);
    let cpu1 = CpuSample::take(Some(ctx.server.pid()), ctx.server_napi)?;
    let if1 = iface_counters(ctx.lab)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    settle_ternd_stats(config);
    let step = ChurnStep {
        rate,
        churn: read_json(&json)?,
        elapsed_s,
        cpu: Some(cpu1.since(&cpu0, ctx.charged_cores, elapsed_s)),
        server_if: Some(if1.since(&if0)),
        server_counters: counter_delta(&counters_before, &server_counters(ctx.lab, config)?),
        client_napi,
    };
    println!(
        "run: step {}: {} of {} connections, {:.0}/s, server CPU {:.2} s of {:.2} s",
        i + 1,
        step.churn.successes,
        step.churn.attempts,
        step.churn.success_rate,
        step.cpu.as_ref().map_or(0.0, |c| c.total_s),
        elapsed_s
    );
    Ok(step)
}

/// The cores the server's threads run on: the kernel server's `--cores`, or ternd's queue i
/// worker on core i.
fn server_cores(config: &ScenarioConfig) -> Vec<usize> {
    match config.server {
        ServerKind::Kernel => vec![config.server_core],
        ServerKind::Ternd => {
            let ncpu = crate::net::cpus();
            let mut cores: Vec<usize> = (0..config.queues as usize).map(|q| q % ncpu).collect();
            cores.sort_unstable();
            cores.dedup();
            cores
        }
    }
}

/// `tern-bench xdp-pass` on the server's or the client's veth.
fn pass_cmd(lab: &LabGuard, exe: &Path, server: bool, duration: &str) -> Command {
    let mut c = lab.exec(server, exe);
    c.args(["xdp-pass", "--interface"])
        .arg(if server { "veth-srv" } else { "veth-cli" })
        .args(["--duration", duration]);
    c
}

/// Turns on threaded NAPI on the client's veth (the lab does it for the server's): veth has
/// NAPI instances only while GRO is on or a program is attached, and the flag persists.
fn threaded_napi(lab: &LabGuard, server: bool) -> Result<()> {
    let ifname = if server { "veth-srv" } else { "veth-cli" };
    lab.read(
        server,
        &[
            "sh",
            "-c",
            &format!(
                "ethtool -K {ifname} gro on >/dev/null && echo 1 > /sys/class/net/{ifname}/threaded; \
                 rc=$?; ethtool -K {ifname} gro off >/dev/null; exit $rc"
            ),
        ],
    )
    .with_context(|| format!("turning on threaded NAPI on {ifname} (needs Linux 5.12+)"))?;
    Ok(())
}

/// Makes `ifname`'s NAPI poll again `us` µs after a poll instead of waiting to be woken, for up
/// to 100 polls in a row (`napi_defer_hard_irqs`, `gro_flush_timeout`): while traffic flows,
/// whoever transmits to it no longer wakes its thread for every packet.
fn defer_napi(lab: &LabGuard, server: bool, us: u32) -> Result<()> {
    let ifname = if server { "veth-srv" } else { "veth-cli" };
    let dir = format!("/sys/class/net/{ifname}");
    lab.read(
        server,
        &[
            "sh",
            "-c",
            &format!(
                "echo 100 > {dir}/napi_defer_hard_irqs && echo {} > {dir}/gro_flush_timeout",
                u64::from(us) * 1000
            ),
        ],
    )
    .with_context(|| format!("setting {ifname}'s napi_defer_hard_irqs and gro_flush_timeout"))?;
    Ok(())
}

/// Finds the NAPI threads of `ifname` that appeared since `before` (one per queue is expected)
/// and pins them, in queue order, to `cores` (thread i to `cores[i % len]`).
fn pin_new_napi(
    ifname: &str,
    before: &[Task],
    config: &ScenarioConfig,
    cores: &[usize],
) -> Result<Vec<Task>> {
    let found = cpu::wait_new_napi_threads(
        ifname,
        before,
        config.queues as usize,
        Duration::from_secs(3),
    );
    if found.is_empty() {
        bail!(
            "no NAPI thread of {ifname} appeared after attaching its XDP program (is threaded \
             NAPI on? /sys/class/net/{ifname}/threaded)"
        );
    }
    if found.len() != config.queues as usize {
        bail!(
            "{ifname}: {} new NAPI thread(s) for {} queue(s): {found:?}; another lab may have \
             attached a program to an interface of the same name meanwhile (run again)",
            found.len(),
            config.queues
        );
    }
    let placed = napi_placement(&found, cores);
    for (t, core) in &placed {
        cpu::pin_threads(std::slice::from_ref(t), *core)?;
    }
    println!(
        "run: pinned {}",
        placed
            .iter()
            .map(|(t, c)| format!("{} (PID {}) to core {c}", t.name, t.pid))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(placed.into_iter().map(|(t, _)| t).collect())
}

/// NAPI threads in queue order with the core each goes to: `napi/IF-ID` threads sorted by NAPI
/// id (a driver adds its NAPI instances queue by queue, and ids grow), thread i on
/// `cores[i % cores.len()]`.
pub fn napi_placement(threads: &[Task], cores: &[usize]) -> Vec<(Task, usize)> {
    let id = |t: &Task| {
        t.name
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let mut sorted = threads.to_vec();
    sorted.sort_by_key(|t| (id(t), t.pid));
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let core = cores.get(i % cores.len().max(1)).copied().unwrap_or(0);
            (t, core)
        })
        .collect()
}

/// The cores `veth-srv`'s NAPI threads go to: with `napi_per_queue`, the server's core for each
/// queue (ternd's worker i is on core i); else all on `napi_core`.
fn server_napi_cores(config: &ScenarioConfig) -> Vec<usize> {
    if config.napi_per_queue {
        server_cores(config)
    } else {
        vec![config.napi_core]
    }
}

/// Waits (bounded) until one echo connection to ternd succeeds.
fn wait_for_server(lab: &LabGuard, exe: &Path, dst: SocketAddr, out: &Path) -> Result<()> {
    let json = out.join("probe.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let status = lab
            .exec(false, exe)
            .args(["connect", "--target", &dst.to_string()])
            .args([
                "--rate",
                "1",
                "--count",
                "1",
                "--duration",
                "1s",
                "--timeout",
                "1s",
            ])
            .args(["--request", "echo", "--json"])
            .arg(&json)
            .stdout(Stdio::null())
            .status()?;
        if status.success() && read_json::<ConnectReport>(&json).is_ok_and(|r| r.successes == 1) {
            return Ok(());
        }
    }
    bail!("the server did not answer on {dst} within 20 s")
}

/// `veth-srv`'s packet counters (one `cat` in the server's namespace).
fn iface_counters(lab: &LabGuard) -> Result<IfCounters> {
    let dir = "/sys/class/net/veth-srv/statistics";
    let text = lab.read(
        true,
        &[
            "cat",
            &format!("{dir}/tx_packets"),
            &format!("{dir}/tx_dropped"),
            &format!("{dir}/rx_packets"),
            &format!("{dir}/rx_dropped"),
        ],
    )?;
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().context("parsing veth-srv's counters"))
        .collect::<Result<_>>()?;
    anyhow::ensure!(v.len() == 4, "veth-srv's counters: {text:?}");
    Ok(IfCounters {
        tx_packets: v[0],
        tx_dropped: v[1],
        rx_packets: v[2],
        rx_dropped: v[3],
    })
}

/// The server's counters: the kernel's TCP MIBs, or ternd's last JSON snapshot.
fn server_counters(lab: &LabGuard, config: &ScenarioConfig) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    match config.server {
        ServerKind::Kernel => {
            for file in ["/proc/net/snmp", "/proc/net/netstat"] {
                let text = lab.read(true, &["cat", file])?;
                parse_proc_net(&text, &mut m);
            }
        }
        ServerKind::Ternd => {
            let path = config.out.join("ternd-stats.json");
            if let Ok(v) = read_json::<serde_json::Value>(&path) {
                if let Some(tcp) = v.get("tcp").and_then(|t| t.as_object()) {
                    for (k, v) in tcp {
                        if let Some(n) = v.as_u64() {
                            m.insert(k.clone(), n);
                        }
                    }
                }
            }
        }
    }
    Ok(m)
}

/// Parses `/proc/net/snmp`-style pairs of lines (`Tcp: names...` / `Tcp: values...`) into
/// `TcpInSegs`-style keys; only the TCP groups are kept.
pub fn parse_proc_net(text: &str, out: &mut BTreeMap<String, u64>) {
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((p, names)), Some((_, values))) = (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if !p.starts_with("Tcp") {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{p}{n}"), v.max(0) as u64);
            }
        }
    }
}

/// The report as a markdown table.
pub fn markdown(r: &ScenarioReport) -> String {
    let c = &r.config;
    let mut s = if c.scenario == Scenario::Churn {
        let size = r.churn_steps.first().map_or(0, |st| st.churn.size);
        format!(
            "### {:?}: {:?} server, syncookies {}, {}, {} queue(s), {}s steps, connect + {size} B \
             echo + close per connection\n\n",
            c.scenario,
            c.server,
            c.syncookies,
            if c.ipv6 { "IPv6" } else { "IPv4" },
            c.queues,
            c.step.as_secs_f64(),
        )
    } else {
        format!(
            "### {:?}: {:?} server, syncookies {}, {:?} {}, {} queue(s), {}s steps, {} \
             legitimate connections/s\n\n",
            c.scenario,
            c.server,
            c.syncookies,
            c.shape,
            if c.ipv6 { "IPv6" } else { "IPv4" },
            c.queues,
            c.step.as_secs_f64(),
            c.legit_rate
        )
    };
    if let Some((reflect, flood)) = &r.reflect {
        s.push_str(&format!(
            "Raw AF_XDP reflect ({}): {:.0} pps reflected, flood offered {:.0} pps",
            reflect.bind_mode, reflect.tx_pps, flood.offered_pps
        ));
        if let Some(cpu) = &r.reflect_cpu {
            s.push_str(&format!(
                ", {:.0} % of a core ({:.0} per CPU second)",
                100.0 * cpu.utilisation(),
                cpu.per_cpu_second(reflect.tx_pps * cpu.elapsed_s)
                    .unwrap_or(0.0)
            ));
        }
        s.push_str(".\n\n");
    }
    let p = &r.placement;
    if !p.server_cores.is_empty() {
        s.push_str(&format!(
            "Server on core(s) {:?}, veth-srv NAPI threads on core {}, flood and clients on core \
             {}; XDP pass programs {}{}.\n\n",
            p.server_cores,
            p.napi_core,
            p.generator_core,
            if p.pass_programs { "on" } else { "off" },
            if p.pass_programs && c.client_napi_defer_us > 0 {
                format!(
                    ", veth-cli NAPI SCHED_FIFO re-polling every {} µs",
                    c.client_napi_defer_us
                )
            } else {
                String::new()
            }
        ));
    }
    let cookie_key = match c.server {
        ServerKind::Kernel => "TcpExtSyncookiesSent",
        ServerKind::Ternd => "SyncookiesSent",
    };
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|st| {
            let cl = &st.clients;
            vec![
                rate_name(st.rate),
                st.flood
                    .as_ref()
                    .map_or("-".into(), |f| format!("{:.0}", f.offered_pps)),
                format!("{:.0}", st.answered_pps),
                st.cpu
                    .as_ref()
                    .map_or("-".into(), |c| format!("{:.0} %", 100.0 * c.utilisation())),
                st.per_cpu_second()
                    .map_or("-".into(), |v| format!("{v:.0}")),
                format!(
                    "{:.0}",
                    *st.server_counters.get(cookie_key).unwrap_or(&0) as f64 / c.step.as_secs_f64()
                ),
                done_of(cl.successes, cl.attempts),
                format!("{:.0}", cl.connect_latency.p50_us),
                format!("{:.0}", cl.connect_latency.p99_us),
                format!("{:.0}", cl.connect_latency.p999_us),
                format!(
                    "{}/{}/{}/{}",
                    cl.failures.timeout, cl.failures.refused, cl.failures.reset, cl.failures.other
                ),
            ]
        })
        .collect();
    if r.steps.is_empty() {
        // churn: no flood steps.
        s.push_str(&churn_table(&r.churn_steps));
        return s;
    }
    s.push_str(&markdown_table(
        &[
            "flood pps asked",
            "offered pps",
            "answered pps",
            "server CPU",
            "answered per CPU-s",
            "SYN cookies/s",
            "legit ok",
            "connect p50 µs",
            "p99 µs",
            "p99.9 µs",
            "timeout/refused/reset/other",
        ],
        &rows,
    ));
    s
}

/// `ok/attempts (pct %)`.
fn done_of(ok: u64, attempts: u64) -> String {
    format!(
        "{ok}/{attempts} ({:.1} %)",
        100.0 * ok as f64 / attempts.max(1) as f64
    )
}

/// The churn steps as a markdown table.
fn churn_table(steps: &[ChurnStep]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|st| {
            let ch = &st.churn;
            vec![
                format!("{:.0}", st.rate),
                format!("{:.0}", ch.success_rate),
                done_of(ch.successes, ch.attempts),
                st.utilisation()
                    .map_or("-".into(), |u| format!("{:.0} %", 100.0 * u)),
                st.per_cpu_second()
                    .map_or("-".into(), |v| format!("{v:.0}")),
                format!("{:.0}", ch.connect_latency.p50_us),
                format!("{:.0}", ch.connect_latency.p99_us),
                format!("{:.0}", ch.total_latency.p99_us),
                format!(
                    "{}/{}/{}/{}",
                    ch.failures.timeout, ch.failures.refused, ch.failures.reset, ch.failures.capped
                ),
            ]
        })
        .collect();
    markdown_table(
        &[
            "connections/s asked",
            "done/s",
            "done",
            "server core busy",
            "connections per busy CPU-s",
            "connect p50 µs",
            "p99 µs",
            "whole p99 µs",
            "timeout/refused/reset/capped",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pid: i32, name: &str) -> Task {
        Task {
            pid,
            name: name.to_owned(),
        }
    }

    #[test]
    fn counter_deltas_keep_what_moved() {
        let m = |kv: &[(&str, u64)]| -> BTreeMap<String, u64> {
            kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let before = m(&[("InSegs", 10), ("OutRsts", 3), ("Gone", 5)]);
        let after = m(&[("InSegs", 25), ("OutRsts", 3), ("New", 2), ("Gone", 1)]);
        assert_eq!(
            counter_delta(&before, &after),
            m(&[("InSegs", 15), ("New", 2)])
        );
    }

    #[test]
    fn napi_threads_go_to_cores_in_queue_order() {
        // Found in PID order, which need not be queue order.
        let found = [
            task(30, "napi/veth-srv-8195"),
            task(10, "napi/veth-srv-8197"),
            task(20, "napi/veth-srv-8196"),
        ];
        let placed = napi_placement(&found, &[0, 1]);
        let got: Vec<(&str, usize)> = placed.iter().map(|(t, c)| (t.name.as_str(), *c)).collect();
        assert_eq!(
            got,
            [
                ("napi/veth-srv-8195", 0),
                ("napi/veth-srv-8196", 1),
                ("napi/veth-srv-8197", 0)
            ]
        );
        // One core: all there.
        assert!(napi_placement(&found, &[1]).iter().all(|(_, c)| *c == 1));
    }
}
