//! `tern-bench`: measure tern against the Linux kernel.
//!
//! ```text
//! tern-bench serve   --listen ADDR:PORT [--mode echo|http|discard] [--threads N] [--duration D]
//! tern-bench connect --target ADDR:PORT --rate R [--duration D] [--count N] [--request echo|http]
//! tern-bench flood   -i IF --dst ADDR:PORT [--shape syn|linux-syn|ack] [--rate PPS] [--duration D]
//!                    [--tx af-xdp|live-frames]
//! tern-bench churn   -i IF --dst ADDR:PORT --rate CPS [--duration D] [--size B]   (AF_XDP client)
//! tern-bench reflect -i IF [--queues 0,1] [--duration D] [--synack]
//! tern-bench run     SCENARIO [--server kernel|ternd] ...     (lab orchestration)
//! tern-bench report  DIR|scenario.json... [--plots DIR] [--markdown FILE] [--splice DOC]
//! tern-bench xdp-pass -i IF [--duration D] [--drop ADDR:PORT]   (tern_steer, no listener: XDP_PASS)
//! ```
//!
//! Every load loop is bounded (`--duration`, optionally `--count`) and only sends to the
//! benchmarking ranges 198.18.0.0/15 and 2001:2::/48.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tern_bench::churn::{self, ChurnConfig};
use tern_bench::compare;
use tern_bench::connect::{self, ConnectConfig, RequestKind};
use tern_bench::flood::{self, FloodConfig, TxPath};
use tern_bench::frames::Shape;
use tern_bench::net::{self, Cidr};
use tern_bench::pass;
use tern_bench::reflect::{self, ReflectConfig};
use tern_bench::scenario::{self, Scenario, ScenarioConfig, ServerKind};
use tern_bench::serve::{self, Mode, ServeConfig};
use tern_xsk::ZeroCopy;

/// The longest any load loop may run.
const MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Parser)]
#[command(
    name = "tern-bench",
    version,
    about = "SYN floods, connection load and reference servers for measuring tern against Linux"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The kernel reference server: SO_REUSEPORT listeners, one epoll thread per core.
    Serve(ServeArgs),
    /// Legitimate clients on kernel sockets, open loop: connect latency and success under load.
    Connect(ConnectArgs),
    /// A SYN/ACK flood from prebuilt templates, through AF_XDP (TX only) or built in the kernel
    /// by an XDP program in live-frames mode.
    Flood(FloodArgs),
    /// Raw AF_XDP reflect on the server side: the I/O ceiling to compare ternd with.
    Reflect(ReflectArgs),
    /// Connection churn from an AF_XDP client: connect, echo, close, open loop.
    Churn(ChurnArgs),
    /// A whole measurement in a lab of its own: server, flood steps, legitimate load, report.
    Run(RunArgs),
    /// Combine scenario.json files: medians per system and rate, one table, goal ratios, plots.
    Report(ReportArgs),
    /// Hold tern_steer without listeners (every packet XDP_PASS) on an interface, so its
    /// receive work runs in its NAPI thread.
    XdpPass(XdpPassArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// scenario.json files, or directories to search for them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write the SVG plots here.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// How the markdown refers to the plots' directory (default: --plots as given).
    #[arg(long, value_name = "PATH")]
    plots_link: Option<String>,
    /// Markdown put before the table (machine, commands).
    #[arg(long, value_name = "FILE")]
    preamble: Option<PathBuf>,
    /// Markdown appended to the section after the plots (repeatable).
    #[arg(long, value_name = "FILE")]
    append: Vec<PathBuf>,
    /// Write the combined section (preamble, table, goals, plots) here.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Put the section between <!-- bench:begin --> and <!-- bench:end --> in this document
    /// (appending the block if it has none).
    #[arg(long, value_name = "DOC")]
    splice: Option<PathBuf>,
    /// Only print this system's capacity (highest median answered pps over its rates).
    #[arg(long, value_name = "SYSTEM")]
    capacity: Option<String>,
}

#[derive(clap::Args)]
struct XdpPassArgs {
    /// The interface.
    #[arg(long, short = 'i')]
    interface: String,
    /// Detach after this long at the latest.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, default_value = "60s")]
    duration: Duration,
    /// Drop TCP to this destination in XDP instead of passing it (a cheap sink for measuring a
    /// generator); repeatable.
    #[arg(long, value_name = "ADDR:PORT")]
    drop: Vec<SocketAddr>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The scenario.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The server under test.
    #[arg(long, value_enum, default_value_t = ServerKind::Kernel)]
    server: ServerKind,
    /// SYN cookies: 1 on SYN-queue overflow, 2 always (ternd: on-overflow, always).
    #[arg(long, default_value_t = 1)]
    syncookies: u8,
    /// Flood rates in packets/s, one step each; `max` = flat out, 0 = no flood.
    #[arg(long, default_value = "0,50000,max", value_delimiter = ',')]
    rates: Vec<String>,
    /// Length of each step.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    step: Duration,
    /// Legitimate connection attempts per second during each step.
    #[arg(long, default_value_t = 200.0)]
    legit_rate: f64,
    /// Flood shape.
    #[arg(long, value_enum, default_value_t = Shape::LinuxSyn)]
    shape: Shape,
    /// IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// Queues of the lab's veth pair (ternd workers, reflect threads).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Core for the flood, the legitimate clients and veth-cli's NAPI thread (default: the
    /// first one the server does not use).
    #[arg(long)]
    flood_core: Option<usize>,
    /// Core for the kernel server's threads and the reflect threads (default 0, where ternd
    /// pins its queue-0 worker).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core for veth-srv's NAPI kernel threads, the server's receive work (default: the
    /// server core).
    #[arg(long)]
    napi_core: Option<usize>,
    /// Pin queue i's veth-srv NAPI thread to the core of the server's queue-i thread (ternd's
    /// worker i is on core i) instead of all on --napi-core: for runs with --queues above 1.
    #[arg(long)]
    napi_per_queue: bool,
    /// No XDP pass programs on the kernel server's veth-srv and on veth-cli: the kernel's
    /// receive work then runs in the flood's softirq on the generator's core (the old, unfair
    /// setup).
    #[arg(long)]
    no_pass_programs: bool,
    /// veth-cli's NAPI re-polls every this many µs while busy instead of being woken for every
    /// reply the server sends (0: woken every time).
    #[arg(long, default_value_t = 50)]
    client_napi_defer_us: u32,
    /// Measure the raw AF_XDP reflect path first.
    #[arg(long)]
    reflect: bool,
    /// A setting for ternd, passed on as `--set KEY=VALUE` (repeatable; e.g. spin=true).
    #[arg(long, value_name = "KEY=VALUE")]
    ternd_set: Vec<String>,
    /// Output directory (scenario.json, scenario.md and each step's reports).
    #[arg(long, default_value = "tern-bench-out")]
    out: PathBuf,
    /// The ternd binary (default: next to tern-bench).
    #[arg(long)]
    ternd: Option<PathBuf>,
    /// scripts/lab.sh (default: the repository's, as built).
    #[arg(long)]
    lab_script: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (repeatable).
    #[arg(long, short = 'l', required = true, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// What to do with the bytes.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
    /// HTTP response body size in bytes.
    #[arg(long, default_value_t = 128)]
    body_size: usize,
    /// Threads, each with its own listener per address (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Pin thread i to the i-th core of this list (e.g. 1 or 0-3).
    #[arg(long, value_name = "LIST")]
    cores: Option<String>,
    /// listen(2) backlog (the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = 4096)]
    backlog: i32,
    /// Stop after this long (default: on SIGINT/SIGTERM only).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Write the counters as JSON here at the end.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ConnectArgs {
    /// The server.
    #[arg(long, short = 't', value_name = "ADDR:PORT")]
    target: SocketAddr,
    /// Connection attempts per second (open loop: attempt i starts at i/rate).
    #[arg(long, short = 'r')]
    rate: f64,
    /// No attempt starts after this long.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// At most this many attempts.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Threads (attempts are dealt round-robin; the schedule stays exact).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Most attempts in flight (over all threads); one due beyond it fails as `capped`.
    #[arg(long, default_value_t = 10_000)]
    concurrency: usize,
    /// An attempt not done this long after its connect(2) fails as `timeout`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    timeout: Duration,
    /// What to do once connected.
    #[arg(long, value_enum, default_value_t = RequestKind::None)]
    request: RequestKind,
    /// Echo request size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Source address to bind to, round-robin (repeatable; e.g. the lab's --client-addrs).
    #[arg(long, value_name = "ADDR")]
    source: Vec<IpAddr>,
    /// Close with an RST (SO_LINGER 0): no TIME-WAIT left on the client.
    #[arg(long)]
    linger0: bool,
    /// Pin thread i to the i-th core of this list.
    #[arg(long, value_name = "LIST")]
    cores: Option<String>,
    /// Allow a loopback target (outside the lab).
    #[arg(long)]
    allow_loopback: bool,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ZeroCopyArg {
    /// Zero-copy where the driver has it, else copy mode.
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

impl From<ZeroCopyArg> for ZeroCopy {
    fn from(z: ZeroCopyArg) -> ZeroCopy {
        match z {
            ZeroCopyArg::Auto => ZeroCopy::Auto,
            ZeroCopyArg::On => ZeroCopy::Required,
            ZeroCopyArg::Off => ZeroCopy::Off,
        }
    }
}

#[derive(clap::Args)]
struct FloodArgs {
    /// Interface to transmit on (the client end: veth-cli in the lab).
    #[arg(long, short = 'i')]
    interface: String,
    /// Its queue.
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// The server (IPv4 or IPv6; the family of the flood).
    #[arg(long, value_name = "ADDR:PORT")]
    dst: SocketAddr,
    /// The server's MAC (default: resolved through the kernel's neighbour table).
    #[arg(long, value_name = "MAC")]
    dst_mac: Option<String>,
    /// Forged source prefix (default 198.18.128.0/17, or 2001:2:0:8000::/49 for IPv6).
    #[arg(long, value_name = "CIDR")]
    src: Option<Cidr>,
    /// Frame shape.
    #[arg(long, value_enum, default_value_t = Shape::LinuxSyn)]
    shape: Shape,
    /// How frames are sent: an AF_XDP socket, or an XDP program in live-frames mode
    /// (BPF_PROG_RUN, Linux 5.18+; on veth the peer needs an XDP program or GRO). Default: live
    /// frames flat out, AF_XDP with --rate (smoother metering).
    #[arg(long, value_enum)]
    tx: Option<TxPath>,
    /// Packets per second (default: as fast as possible).
    #[arg(long, short = 'r')]
    rate: Option<f64>,
    /// Stop after this long.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
    /// Stop after this many packets.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Pin to this core.
    #[arg(long)]
    core: Option<usize>,
    /// Frames per batch (per kick).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    zero_copy: ZeroCopyArg,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ChurnArgs {
    /// The client's interface (veth-cli in the lab).
    #[arg(long, short = 'i')]
    interface: String,
    /// The server (an echo server: ternd's echo app, `tern-bench serve --mode echo`).
    #[arg(long, value_name = "ADDR:PORT")]
    dst: SocketAddr,
    /// The server's MAC (default: resolved through the kernel's neighbour table).
    #[arg(long, value_name = "MAC")]
    dst_mac: Option<String>,
    /// Source prefix (default 198.18.160.0/19, or 2001:2:0:a000::/115); the server must route
    /// it back through this interface.
    #[arg(long, value_name = "CIDR")]
    src: Option<Cidr>,
    /// Source ports per address, from 40000.
    #[arg(long, default_value_t = 64)]
    ports: u16,
    /// Connection attempts per second.
    #[arg(long, short = 'r')]
    rate: f64,
    /// Schedule length.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
    /// Stop after this many attempts.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Most connections open at once.
    #[arg(long, default_value_t = 10000)]
    concurrency: usize,
    /// A connection not done within this fails (no retransmission).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    timeout: Duration,
    /// Request (echo) size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Pin to this core.
    #[arg(long)]
    core: Option<usize>,
    /// AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    zero_copy: ZeroCopyArg,
    /// Seed for initial sequence numbers.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReflectArgs {
    /// Interface (the server end: veth-srv in the lab).
    #[arg(long, short = 'i')]
    interface: String,
    /// Queues to serve, one thread each (e.g. 0 or 0-1).
    #[arg(long, default_value = "0", value_name = "LIST")]
    queues: String,
    /// Pin queue thread i to the i-th core of this list.
    #[arg(long, value_name = "LIST")]
    cores: Option<String>,
    /// Stop after this long.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Turn SYNs into SYN-ACKs (ack = seq + 1) instead of only swapping addresses.
    #[arg(long)]
    synack: bool,
    /// AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    zero_copy: ZeroCopyArg,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn cores(list: &Option<String>) -> Result<Vec<usize>> {
    list.as_deref().map_or(Ok(Vec::new()), net::parse_cores)
}

fn bounded(d: Duration) -> Result<Duration> {
    if d.is_zero() || d > MAX_DURATION {
        bail!("--duration must be between 1ns and {MAX_DURATION:?}, got {d:?}");
    }
    Ok(d)
}

fn main() {
    // libxdp warns that it cannot use its dispatcher whenever bpffs is not at /sys/fs/bpf, as in
    // every `ip netns exec` (reflect loads libxdp's default program): expected here, so only its
    // errors show unless RUST_LOG asks.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,libxdp=error"),
    )
    .init();
    tern_bpf::log_libbpf_through_log();
    tern_xsk::log_libxdp_through_log();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("tern-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let stop = net::stop_on_signals()?;
    match cli.command {
        Command::Serve(a) => {
            let config = ServeConfig {
                listen: a.listen,
                threads: a.threads.unwrap_or_else(net::cpus),
                cores: cores(&a.cores)?,
                mode: a.mode,
                body_size: a.body_size,
                backlog: a.backlog,
                duration: a.duration.map(bounded).transpose()?,
                json: a.json,
            };
            let report = serve::serve(&config, stop)?;
            println!("{report}");
        }
        Command::Connect(a) => {
            let config = ConnectConfig {
                target: a.target,
                rate: a.rate,
                duration: bounded(a.duration)?,
                count: a.count,
                threads: a.threads,
                concurrency: a.concurrency,
                timeout: a.timeout,
                request: a.request,
                size: a.size,
                sources: a.source,
                linger0: a.linger0,
                cores: cores(&a.cores)?,
                allow_loopback: a.allow_loopback,
                json: a.json,
            };
            let report = connect::run(&config, stop)?;
            println!("{report}");
        }
        Command::Flood(a) => {
            let config = FloodConfig {
                interface: a.interface,
                queue: a.queue,
                dst: a.dst,
                dst_mac: a.dst_mac.as_deref().map(net::parse_mac).transpose()?,
                src: a.src,
                shape: a.shape,
                tx: a.tx,
                rate: a.rate,
                duration: bounded(a.duration)?,
                count: a.count,
                core: a.core,
                batch: a.batch,
                zero_copy: a.zero_copy.into(),
                seed: a.seed,
                json: a.json,
            };
            let report = flood::run(&config, &stop)?;
            println!("{report}");
        }
        Command::Churn(a) => {
            let config = ChurnConfig {
                interface: a.interface,
                dst: a.dst,
                dst_mac: a.dst_mac.as_deref().map(net::parse_mac).transpose()?,
                src: a.src,
                ports: a.ports,
                rate: a.rate,
                duration: bounded(a.duration)?,
                count: a.count,
                concurrency: a.concurrency,
                timeout: bounded(a.timeout)?,
                size: a.size,
                core: a.core,
                zero_copy: a.zero_copy.into(),
                seed: a.seed,
                json: a.json,
            };
            let report = churn::run(&config, &stop)?;
            println!("{report}");
        }
        Command::Reflect(a) => {
            let queues = net::parse_cores(&a.queues)?
                .into_iter()
                .map(|q| u32::try_from(q).map_err(anyhow::Error::from))
                .collect::<Result<Vec<u32>>>()?;
            let config = ReflectConfig {
                interface: a.interface,
                queues,
                cores: cores(&a.cores)?,
                duration: bounded(a.duration)?,
                synack: a.synack,
                zero_copy: a.zero_copy.into(),
                json: a.json,
            };
            let report = reflect::run(&config, stop)?;
            println!("{report}");
        }
        Command::Run(a) => {
            let rates = a
                .rates
                .iter()
                .map(|r| match r.trim() {
                    "max" => Ok(None),
                    r => r
                        .parse::<f64>()
                        .map(Some)
                        .map_err(|_| anyhow::anyhow!("--rates: `{r}` is not a rate or `max`")),
                })
                .collect::<Result<Vec<_>>>()?;
            let exe = std::env::current_exe()?;
            // ternd pins queue i's worker to core i; the kernel server gets the same core(s),
            // and the flood the next one.
            let ncpu = net::cpus();
            let server_core = a.server_core;
            let flood_core = a.flood_core.unwrap_or(match a.server {
                ServerKind::Kernel => (server_core + a.queues as usize) % ncpu,
                ServerKind::Ternd => a.queues as usize % ncpu,
            });
            let config = ScenarioConfig {
                scenario: a.scenario,
                server: a.server,
                syncookies: a.syncookies,
                rates,
                step: bounded(a.step)?,
                legit_rate: a.legit_rate,
                shape: a.shape,
                ipv6: a.ipv6,
                queues: a.queues,
                flood_core,
                server_core,
                napi_core: a.napi_core.unwrap_or(server_core),
                napi_per_queue: a.napi_per_queue,
                pass_programs: !a.no_pass_programs,
                client_napi_defer_us: a.client_napi_defer_us,
                reflect: a.reflect,
                ternd_set: a.ternd_set,
                out: a.out,
                ternd: a.ternd.unwrap_or_else(|| exe.with_file_name("ternd")),
                lab_script: a.lab_script.unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lab.sh")
                }),
                prefix: format!("tb-run{}-", std::process::id()),
            };
            scenario::run(&config, stop)?;
        }
        Command::Report(a) => report(a)?,
        Command::XdpPass(a) => pass::hold(&a.interface, &a.drop, bounded(a.duration)?, &stop)?,
    }
    Ok(())
}

/// `tern-bench report`.
fn report(a: ReportArgs) -> Result<()> {
    let files = compare::find_reports(&a.inputs)?;
    if files.is_empty() {
        bail!("no scenario.json in {:?}", a.inputs);
    }
    let reports = compare::load(&files)?;
    let rows = compare::aggregate(&reports);
    if let Some(system) = &a.capacity {
        match compare::capacity(&rows, system) {
            Some(c) => println!("{c:.0}"),
            None => bail!(
                "no runs of `{system}` (systems: {:?})",
                compare::systems(&rows)
            ),
        }
        return Ok(());
    }
    let goals = compare::goals(&reports, &rows);
    let mut section = String::new();
    if let Some(p) = &a.preamble {
        section.push_str(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim_end_matches('\n'),
        );
        section.push_str("\n\n");
    }
    // The tables and goals: printed, and the middle of the generated section.
    let churn_rows = compare::churn_aggregate(&reports);
    let mut body = String::new();
    if !rows.is_empty() {
        body.push_str(&compare::table(&rows));
    }
    body.push_str("\nGoals (from the benchmark issue):\n\n");
    if !rows.is_empty() {
        body.push_str(&compare::goals_markdown(&goals));
    }
    if let Some(line) = compare::churn_goal(&churn_rows, "kernel sc=1") {
        body.push_str(&line);
    }
    if !churn_rows.is_empty() {
        body.push_str(
            "\nConnection churn (`tern-bench run churn`, medians; the server core's busy time \
             counts everything that ran on it):\n\n",
        );
        body.push_str(&compare::churn_table(&churn_rows));
    }
    section.push_str(&body);
    if let Some(dir) = a.plots.as_ref().filter(|_| !rows.is_empty()) {
        let paths = compare::plot_all(&rows, dir)?;
        let link = a
            .plots_link
            .clone()
            .unwrap_or_else(|| dir.display().to_string());
        section.push_str("\nPlots (medians; x: flood SYNs offered per second):\n\n");
        for (p, title) in paths.iter().zip([
            "answered vs offered",
            "legitimate p99 connect latency",
            "packets per server CPU second",
        ]) {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            section.push_str(&format!("![{title}]({link}/{name})\n"));
        }
        for p in &paths {
            println!("plot: {}", p.display());
        }
    }
    for p in &a.append {
        section.push('\n');
        section.push_str(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim_end_matches('\n'),
        );
        section.push('\n');
    }
    let mut systems = compare::systems(&rows);
    for r in &churn_rows {
        if !systems.contains(&r.system) {
            systems.push(r.system.clone());
        }
    }
    println!("report: {} run(s) of {systems:?}\n", reports.len());
    println!("{body}");
    if let Some(path) = &a.markdown {
        std::fs::write(path, &section).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(doc) = &a.splice {
        let text =
            std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
        std::fs::write(doc, compare::splice(&text, &section))
            .with_context(|| format!("writing {}", doc.display()))?;
        println!("report: regenerated the marked block of {}", doc.display());
    }
    Ok(())
}
