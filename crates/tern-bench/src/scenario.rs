//! `tern-bench run SCENARIO`: a whole measurement in a lab of its own.
//!
//! `syn-flood`: brings up a veth lab (`scripts/lab.sh`, a namespace prefix of its own),
//! optionally measures the raw AF_XDP reflect path first (`--reflect`: flat-out flood into
//! `tern-bench reflect` on the server end), starts the server (the kernel through
//! `tern-bench serve` with `net.ipv4.tcp_syncookies` set, or `ternd` with the matching
//! `tcp.syncookies`), then for each flood rate runs one step of `--step` seconds: the AF_XDP
//! flood from the client namespace and, at the same time, open-loop legitimate clients (echo).
//! For each step it records the flood's offered rate, what left the server (its veth's
//! `tx_packets` per second: SYN-ACKs and answers), the server's own counters, and the clients'
//! success and connect latency. It writes `scenario.json` and `scenario.md` to `--out`, prints
//! the table, stops the server and tears the lab down, also on errors. Every child process is
//! bounded by its own `--duration` and waited for with a timeout.

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

use crate::connect::ConnectReport;
use crate::flood::FloodReport;
use crate::frames::Shape;
use crate::reflect::ReflectReport;
use crate::report::{markdown_table, write_json};

/// Scenarios `run` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// SYN flood at increasing rates with legitimate clients alongside.
    SynFlood,
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
    /// Core for the server (kernel server threads, reflect).
    pub server_core: usize,
    /// Measure the raw AF_XDP reflect path first.
    pub reflect: bool,
    /// Output directory.
    pub out: PathBuf,
    /// The ternd binary.
    pub ternd: PathBuf,
    /// `scripts/lab.sh`.
    pub lab_script: PathBuf,
    /// Namespace prefix of the lab.
    pub prefix: String,
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
    /// Packets per second leaving the server's interface during the step.
    pub server_tx_pps: f64,
    /// Server counter increments over the step (kernel: `Tcp*`/`TcpExt*` of /proc/net;
    /// ternd: its stats JSON `tcp` counters, as of its last snapshot).
    pub server_counters: BTreeMap<String, u64>,
}

/// The whole result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// What was run.
    pub config: ScenarioConfig,
    /// The raw reflect baseline, if measured, and the flood that fed it.
    pub reflect: Option<(ReflectReport, FloodReport)>,
    /// The steps.
    pub steps: Vec<Step>,
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
        })
    }

    /// Waits (at most `timeout`) for a stdout line starting with `prefix`; the rest of the
    /// output is passed through to ours.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<()> {
        let stdout = self.child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        let name = self.name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("  [{name}] {line}");
                let _ = tx.send(line);
            }
        });
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

fn rate_name(rate: Option<f64>) -> String {
    match rate {
        None => "max".into(),
        _ if no_flood(rate) => "none".into(),
        Some(r) => format!("{r}"),
    }
}

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
    println!(
        "run: lab {}* with {} queue(s)",
        config.prefix, config.queues
    );
    let lab = LabGuard::up(&config.lab_script, &config.prefix, config.queues)?;
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

    let flood_cmd = |rate: Option<f64>, json: &Path| {
        let mut c = lab.exec(false, &exe);
        c.args(["flood", "--interface", "veth-cli", "--dst"])
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
    if config.reflect {
        println!("run: raw AF_XDP reflect baseline, flat-out flood for {step_arg}");
        let rjson = config.out.join("reflect.json");
        let fjson = config.out.join("reflect-flood.json");
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
        std::thread::sleep(Duration::from_millis(300));
        Proc::spawn("flood", flood_cmd(None, &fjson))?.wait(config.step + grace)?;
        r.wait(config.step + grace)?;
        reflect = Some((read_json(&rjson)?, read_json(&fjson)?));
    }

    // 2. The server.
    let addr_arg = dst.to_string();
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
            let total = (step_s + 5.0) * config.rates.len() as f64 + 60.0;
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
            .args(["--duration", &format!("{total}s")]);
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
            let mut c = lab.exec(true, &config.ternd);
            c.args(["run", "--interface", "veth-srv", "--listen"])
                .arg(format!("{addr_arg}=echo"))
                .args(["--set", &format!("tcp.syncookies={mode}"), "--stats-json"])
                .arg(config.out.join("ternd-stats.json"));
            let p = Proc::spawn("ternd", c)?;
            wait_for_server(&lab, &exe, dst, &config.out)?;
            p
        }
    };

    // 3. The steps.
    let mut steps = Vec::new();
    for (i, &rate) in config.rates.iter().enumerate() {
        if interrupted() {
            bail!("interrupted");
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
        let tx0 = iface_tx(&lab)?;
        let t0 = Instant::now();
        let flood = if no_flood(rate) {
            None
        } else {
            Some(Proc::spawn("flood", flood_cmd(rate, &fjson))?)
        };
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
            ])
            .arg("--json")
            .arg(&cjson);
        let clients = Proc::spawn("connect", c)?;
        std::thread::sleep(config.step);
        let tx1 = iface_tx(&lab)?;
        let server_tx_pps = (tx1 - tx0) as f64 / t0.elapsed().as_secs_f64();
        if let Some(f) = flood {
            f.wait(grace)?;
        }
        clients.wait(grace)?;
        // ternd writes its snapshot once a second.
        if config.server == ServerKind::Ternd {
            std::thread::sleep(Duration::from_millis(1200));
        }
        let counters_after = server_counters(&lab, config)?;
        let server_counters = counters_after
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.saturating_sub(*counters_before.get(k).unwrap_or(&0)),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        steps.push(Step {
            rate,
            flood: if no_flood(rate) {
                None
            } else {
                Some(read_json(&fjson)?)
            },
            clients: read_json(&cjson)?,
            server_tx_pps,
            server_counters,
        });
    }
    server.interrupt(grace)?;

    let report = ScenarioReport {
        config: config.clone(),
        reflect,
        steps,
    };
    write_json(&config.out.join("scenario.json"), &report)?;
    let table = markdown(&report);
    std::fs::write(config.out.join("scenario.md"), &table)
        .with_context(|| format!("writing {}", config.out.display()))?;
    println!("\n{table}");
    drop(lab);
    Ok(report)
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

fn iface_tx(lab: &LabGuard) -> Result<u64> {
    lab.read(
        true,
        &["cat", "/sys/class/net/veth-srv/statistics/tx_packets"],
    )?
    .trim()
    .parse()
    .context("parsing tx_packets")
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
    let mut s = format!(
        "### {:?}: {:?} server, syncookies {}, {:?} {}, {} queue(s), {}s steps, {} legitimate \
         connections/s\n\n",
        c.scenario,
        c.server,
        c.syncookies,
        c.shape,
        if c.ipv6 { "IPv6" } else { "IPv4" },
        c.queues,
        c.step.as_secs_f64(),
        c.legit_rate
    );
    if let Some((reflect, flood)) = &r.reflect {
        s.push_str(&format!(
            "Raw AF_XDP reflect ({}): {:.0} pps reflected, flood offered {:.0} pps.\n\n",
            reflect.bind_mode, reflect.tx_pps, flood.offered_pps
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
                format!("{:.0}", st.server_tx_pps),
                format!(
                    "{:.0}",
                    *st.server_counters.get(cookie_key).unwrap_or(&0) as f64 / c.step.as_secs_f64()
                ),
                format!(
                    "{}/{} ({:.1} %)",
                    cl.successes,
                    cl.attempts,
                    100.0 * cl.successes as f64 / (cl.attempts.max(1)) as f64
                ),
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
    s.push_str(&markdown_table(
        &[
            "flood pps asked",
            "offered pps",
            "server tx pps",
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
