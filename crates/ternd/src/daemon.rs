//! Start-up, run and shutdown of the daemon.
//!
//! Start: check the interface and its queue count, load the XDP program and attach it through a
//! pinned bpf_link (so `ternd cleanup` can remove it after a crash), register the listeners,
//! open one AF_XDP socket per queue and put it in the XSKMAP, then start one worker thread per
//! queue, pinned to its core, each with its own shard (all keyed with one random host secret,
//! so SYN cookies validate on any shard). Run: collect worker snapshots, print a summary line,
//! write the JSON snapshot. SIGINT/SIGTERM: remove the listeners from the XDP map (new SYNs go
//! to the kernel, which refuses them), let each worker close its connections gracefully within
//! `drain_timeout` and abort the rest, detach XDP, print the final counters.

use crate::apps::Services;
use crate::config::{Config, XdpModeSetting};
use crate::stats::Totals;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tern_bpf::{Interface, ListenerFlags, SteerProgram, XdpMode, DEFAULT_PIN_ROOT};
use tern_rt::{clock, AppDriver, Control, Worker, WorkerConfig};
use tern_tcp::Shard;
use tern_xsk::{XdpProgram, XskConfig, XskSocket};

/// Where the XDP link is pinned: `/sys/fs/bpf/tern` when `/sys/fs/bpf` is a bpffs in this
/// mount namespace, else `/run/tern/bpffs` (scripts/bootstrap.sh mounts both; `ip netns exec`
/// remounts /sys, hiding the first). `cleanup` uses the same rule, so it finds what `run` pinned.
///
/// Interface names are per network namespace while bpffs is not, so outside the initial network
/// namespace (PID 1's) the root gets a directory of that namespace's own, `netns-<inode>`:
/// without it two daemons in two namespaces (the veth lab's `veth-srv` in each) would collide
/// on one pin, and `cleanup` in one could unpin the other's link.
pub fn pin_root() -> PathBuf {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let is_bpffs =
        |p: &str| nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC);
    let root = if is_bpffs("/sys/fs/bpf") {
        PathBuf::from(DEFAULT_PIN_ROOT)
    } else if is_bpffs("/run/tern/bpffs") {
        PathBuf::from("/run/tern/bpffs")
    } else {
        PathBuf::from(DEFAULT_PIN_ROOT)
    };
    match netns_dir() {
        Some(dir) => root.join(dir),
        None => root,
    }
}

/// `netns-<inode>` when this process is in another network namespace than PID 1.
fn netns_dir() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net").ok()?;
    let init = std::fs::metadata("/proc/1/ns/net").ok();
    if init.is_some_and(|i| (i.dev(), i.ino()) == (own.dev(), own.ino())) {
        None
    } else {
        Some(format!("netns-{}", own.ino()))
    }
}

/// Receive queues the interface has, as the kernel counts them (`/sys/class/net/IF/queues`).
pub fn rx_queue_count(ifname: &str) -> Result<u32> {
    tern_netdev::rx_queue_count(ifname).with_context(|| {
        format!(
            "cannot read /sys/class/net/{ifname}/queues: is `{ifname}` an interface in this \
             network namespace?"
        )
    })
}

/// The queues to serve: the configured count, or every receive queue of the interface; more
/// than the interface has is refused with the fix. Returns (serve, available).
fn queues_to_serve(config: &Config) -> Result<(u32, u32)> {
    let available = rx_queue_count(&config.interface)?;
    let queues = config.queues.unwrap_or(available);
    if queues > available {
        bail!(
            "interface {} has {available} receive queue(s), configuration asks for {queues}: lower `queues`, or raise the NIC's (scripts/setup-nic.sh apply {} --queues {queues})",
            config.interface,
            config.interface
        );
    }
    Ok((queues, available))
}

fn xdp_mode(m: XdpModeSetting) -> XdpMode {
    match m {
        XdpModeSetting::Auto => XdpMode::Auto,
        XdpModeSetting::Native => XdpMode::Native,
        XdpModeSetting::Generic => XdpMode::Generic,
    }
}

/// 32 bytes from the kernel's random source: the host secret of every shard.
fn host_secret() -> Result<[u8; 32]> {
    use std::io::Read;
    let mut s = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut s))
        .context("reading 32 bytes from /dev/urandom for the host secret")?;
    Ok(s)
}

/// A shard with the configuration's listeners, and the services for them.
fn shard_for(config: &Config, secret: [u8; 32]) -> Result<(Shard, Services)> {
    let mut shard =
        Shard::new(config.tcp.clone(), secret, clock::now()).context("engine configuration")?;
    let mut services = Services::default();
    for l in &config.listeners {
        let id = shard
            .listen(l.address, l.queues)
            .map_err(|e| anyhow::anyhow!("listener {}: {e}", l.address))?;
        services.add(id, l.service.clone());
    }
    Ok((shard, services))
}

/// Checks what `run` needs, without attaching anything: the interface, its queues and driver,
/// and that the XDP program loads (the verifier accepts it with these privileges).
pub fn check(config: &Config) -> Result<Vec<String>> {
    let mut report = Vec::new();
    let iface = Interface::by_name(&config.interface)?;
    report.push(format!(
        "interface {} (index {}), driver {}",
        iface.name(),
        iface.index(),
        iface.driver()
    ));
    let (queues, available) = queues_to_serve(config)?;
    report.push(format!("queues: serving {queues} of {available}"));
    let prog = SteerProgram::load()?;
    report.push(format!("XDP program loads (id {})", prog.prog_id()));
    if let Some(info) = tern_bpf::find_attached(&iface)? {
        report.push(format!(
            "note: an XDP program is attached already: {} (id {}){}",
            info.name,
            info.prog_id,
            if info.is_tern() {
                " — a leftover of ternd? run `ternd cleanup`"
            } else {
                ""
            }
        ));
    }
    for l in &config.listeners {
        report.push(format!("listener {} = {}", l.address, l.app));
    }
    Ok(report)
}

/// Removes a namespace's pin directory once empty (it fails, harmlessly, while it is not).
fn remove_netns_dir(root: &Path) {
    if netns_dir().is_some() {
        let _ = std::fs::remove_dir(root);
    }
}

/// Removes what a crashed daemon left on `ifname`.
pub fn cleanup(ifname: &str) -> Result<String> {
    let iface = Interface::by_name(ifname)?;
    let root = pin_root();
    let done = tern_bpf::detach_leftover(&iface, &root)?;
    remove_netns_dir(&root);
    Ok(if done.is_empty() {
        format!("nothing of ternd's is attached to {ifname}")
    } else {
        format!("{done:?}")
    })
}

/// Runs the daemon until SIGINT or SIGTERM (or `stop` becomes true, for tests).
pub fn run(config: Config, stats_json: Option<PathBuf>, stop: Arc<AtomicBool>) -> Result<Totals> {
    let iface = Interface::by_name(&config.interface)?;
    let (queues, _) = queues_to_serve(&config)?;
    let prog = SteerProgram::load()?;
    let mut attachment = prog.attach(&iface, xdp_mode(config.xdp_mode))?;
    if let Some(why) = attachment.fallback_reason() {
        log::warn!("XDP attached in generic mode: {why}");
    }
    log::info!(
        "XDP program {} attached to {} in {:?} mode",
        attachment.prog_id(),
        iface.name(),
        attachment.mode()
    );
    let root = pin_root();
    attachment
        .pin(&root)
        .context("pinning the XDP link (is bpffs mounted? scripts/bootstrap.sh mounts it)")?;
    for l in &config.listeners {
        prog.add_listener(l.address, ListenerFlags::NONE)?;
    }

    let secret = host_secret()?;
    let control = Arc::new(Control::default());
    let (stats_tx, stats_rx) = mpsc::channel();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut workers = Vec::new();
    let mut bind_modes = Vec::new();
    for q in 0..queues {
        let xsk_config = XskConfig {
            program: XdpProgram::External,
            ..config.xsk
        };
        let xsk = XskSocket::open(&config.interface, q, &xsk_config)
            .with_context(|| format!("AF_XDP socket on {} queue {q}", config.interface))?;
        log::info!(
            "queue {q}: AF_XDP socket bound in {:?} mode",
            xsk.bind_mode()
        );
        bind_modes.push(format!("{:?}", xsk.bind_mode()).to_lowercase());
        prog.set_xsk(q, xsk.fd())?;
        let (shard, services) = shard_for(&config, secret)?;
        let driver = AppDriver::new(services, config.accept_budget);
        let wc = WorkerConfig {
            spin: config.spin,
            stats_interval: config.stats_interval,
            ..WorkerConfig::default()
        };
        let mut worker = Worker::new(xsk, shard, driver, wc);
        let (control, stats_tx, drain) = (control.clone(), stats_tx.clone(), config.drain_timeout);
        let core = q as usize % ncpu;
        let handle = std::thread::Builder::new()
            .name(format!("ternd-q{q}"))
            .spawn(move || {
                let mut set = nix::sched::CpuSet::new();
                if set.set(core).is_ok() {
                    if let Err(e) =
                        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                    {
                        log::warn!("queue {q}: cannot pin to core {core}: {e}");
                    }
                }
                worker.run(&control, &stats_tx, drain)
            })
            .context("starting a worker thread")?;
        workers.push(handle);
    }
    drop(stats_tx);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    log::info!(
        "serving {} listener(s) on {} queue(s)",
        config.listeners.len(),
        queues
    );

    let started = Instant::now();
    let mut totals = Totals::new(queues as usize);
    totals.xdp_mode = format!("{:?}", attachment.mode()).to_lowercase();
    totals.bind_modes = bind_modes;
    let mut prev = totals.clone();
    let mut last_print = Instant::now();
    let mut stopping = false;
    loop {
        match stats_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => totals.update(s),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_print.elapsed() >= config.stats_interval {
            if let Ok(c) = prog.counters() {
                totals.steer = c.iter().map(|(k, v)| (k.name(), v)).collect();
            }
            let secs = last_print.elapsed().as_secs_f64();
            println!("{}", totals.summary(&prev, secs));
            if let Some(path) = &stats_json {
                write_json(path, &totals, started.elapsed().as_secs_f64());
            }
            prev = totals.clone();
            last_print = Instant::now();
        }
        if !stopping && stop.load(Ordering::Relaxed) {
            stopping = true;
            log::info!(
                "stopping: no new connections; closing the open ones (at most {:?})",
                config.drain_timeout
            );
            for l in &config.listeners {
                let _ = prog.remove_listener(l.address);
            }
            control.stop.store(true, Ordering::Relaxed);
        }
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
    }
    while let Ok(s) = stats_rx.try_recv() {
        totals.update(s);
    }
    let mut failed = None;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(anyhow::anyhow!("a worker failed: {e}")),
            Err(_) => failed = Some(anyhow::anyhow!("a worker panicked")),
        }
    }
    for q in 0..queues {
        let _ = prog.clear_xsk(q);
    }
    attachment.detach().context("detaching the XDP program")?;
    remove_netns_dir(&root);
    log::info!("XDP program detached from {}", iface.name());
    if let Some(path) = &stats_json {
        write_json(path, &totals, started.elapsed().as_secs_f64());
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(totals),
    }
}

fn write_json(path: &Path, totals: &Totals, uptime: f64) {
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(&totals.json(uptime)).expect("JSON of numbers");
    // Written then renamed, so a reader never sees half a file.
    if let Err(e) = std::fs::write(&tmp, body).and_then(|_| std::fs::rename(&tmp, path)) {
        log::warn!("cannot write {}: {e}", path.display());
    }
}
