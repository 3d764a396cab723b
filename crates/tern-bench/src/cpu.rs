//! Where the server's receive work runs, and how much CPU it costs.
//!
//! * **NAPI threads.** veth with threaded NAPI (the lab turns it on for `veth-srv`) runs each
//!   receive queue's NAPI poll in a kernel thread called `napi/IFNAME-ID`, created when an XDP
//!   program is attached and gone when it is detached. [`napi_threads`] finds them by name,
//!   [`new_napi_threads`] tells apart the ones an attach created (another lab on the machine may
//!   have an interface of the same name), and [`pin_threads`] pins them with
//!   `sched_setaffinity` (what `taskset -p` does). They are kernel threads: re-pinned, never
//!   signalled.
//! * **CPU time.** [`ThreadTimes`] reads each thread's time on a CPU from
//!   `/proc/PID/task/TID/schedstat` (the scheduler's `sum_exec_runtime`, in nanoseconds),
//!   falling back to `utime + stime` of `/proc/PID/task/TID/stat` (clock ticks, sampled: too
//!   coarse for the light steps) where schedstat is missing; [`CpuTimes`] reads the per-CPU
//!   lines of `/proc/stat`. A step's [`ServerCpu`] is the difference of two samples: the
//!   server's threads, its interface's NAPI threads, and the softirq and irq time of its cores
//!   (work done outside any thread, e.g. in `ksoftirqd` or on return from an interrupt). With
//!   threaded NAPI little runs there; a softirq run on a server thread's way out of a syscall
//!   can be counted both in that thread's runtime and, when a tick lands in it, in `softirq`:
//!   the sum may count a few milliseconds twice.
//!
//! Units: `/proc/stat` and `/proc/PID/stat` count clock ticks of `USER_HZ`, which is 100 on every
//! architecture tern runs on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// `USER_HZ`: the unit of `/proc/PID/stat` and `/proc/stat` times.
pub const USER_HZ: f64 = 100.0;

/// A kernel thread (or any task) by PID and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Task {
    /// PID (a kernel thread's TID is its PID).
    pub pid: i32,
    /// Its name (`/proc/PID/comm`; the kernel shows a kernel thread's whole name there).
    pub name: String,
}

/// The NAPI kernel threads of every interface called `ifname` on the machine.
pub fn napi_threads(ifname: &str) -> Vec<Task> {
    let prefix = format!("napi/{ifname}-");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            let name = name.trim_end();
            if name.starts_with(&prefix) {
                out.push(Task {
                    pid,
                    name: name.to_owned(),
                });
            }
        }
    }
    out.sort();
    out
}

/// The NAPI threads of `ifname` that are in `after` and were not in `before`: the ones an XDP
/// attach in between created.
pub fn new_napi_threads(before: &[Task], after: &[Task]) -> Vec<Task> {
    let old: BTreeSet<&Task> = before.iter().collect();
    after.iter().filter(|t| !old.contains(t)).cloned().collect()
}

/// Waits (bounded, `timeout`) until `ifname` has NAPI threads that were not in `before`, and
/// returns them; empty if none appeared (NAPI not threaded, or no program attached).
pub fn wait_new_napi_threads(
    ifname: &str,
    before: &[Task],
    want: usize,
    timeout: std::time::Duration,
) -> Vec<Task> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let found = new_napi_threads(before, &napi_threads(ifname));
        if found.len() >= want || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Held while a run attaches an XDP program and looks for the NAPI threads it created: NAPI
/// threads are named after the interface, and every lab calls its server end `veth-srv`, so two
/// `tern-bench run`s attaching at once could each take the other's thread for its own. An
/// exclusive `flock` on a file in `/run/lock` (or the temporary directory) serialises them;
/// released on drop.
#[derive(Debug)]
pub struct NapiLock(
    #[allow(dead_code, reason = "held for its Drop")] nix::fcntl::Flock<std::fs::File>,
);

impl NapiLock {
    /// Takes the lock, waiting at most `timeout`.
    pub fn take(timeout: std::time::Duration) -> Result<NapiLock> {
        let dir = Path::new("/run/lock");
        let dir = if dir.is_dir() {
            dir.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join("tern-bench-napi.lock");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(NapiLock(lock)),
                Err((_, nix::errno::Errno::EWOULDBLOCK))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err((_, e)) => {
                    anyhow::bail!("locking {} (another run attaching?): {e}", path.display())
                }
            }
        }
    }
}

/// Pins each task to `core` (`sched_setaffinity`, as `taskset -p` does).
pub fn pin_threads(tasks: &[Task], core: usize) -> Result<()> {
    let set = crate::net::core_set(core)?;
    for t in tasks {
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(t.pid), &set)
            .with_context(|| format!("pinning {} (PID {}) to core {core}", t.name, t.pid))?;
    }
    Ok(())
}

/// `utime + stime` in ticks, from the text of `/proc/PID/stat` (the name in parentheses may hold
/// spaces and parentheses: fields are counted after the last `)`).
pub fn parse_task_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The first field of `/proc/PID/task/TID/schedstat`: nanoseconds on a CPU.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of a set of threads at one instant, by TID, with their names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadTimes {
    /// TID -> (name, nanoseconds on a CPU).
    pub ns: BTreeMap<i32, (String, u64)>,
}

impl ThreadTimes {
    /// Every thread of process `pid` (`/proc/PID/task/*`).
    pub fn of_process(pid: i32) -> ThreadTimes {
        let mut t = ThreadTimes::default();
        let dir = Path::new("/proc").join(pid.to_string()).join("task");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                    t.add(tid, &e.path());
                }
            }
        }
        t
    }

    /// The given tasks (kernel threads).
    pub fn of_tasks(tasks: &[Task]) -> ThreadTimes {
        let mut t = ThreadTimes::default();
        for task in tasks {
            t.add(task.pid, &Path::new("/proc").join(task.pid.to_string()));
        }
        t
    }

    fn add(&mut self, tid: i32, dir: &Path) {
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let ns = read("schedstat")
            .as_deref()
            .and_then(parse_schedstat)
            .or_else(|| {
                read("stat")
                    .as_deref()
                    .and_then(parse_task_stat)
                    .map(|ticks| (ticks as f64 * 1e9 / USER_HZ) as u64)
            });
        if let Some(ns) = ns {
            self.ns.insert(tid, (name.trim_end().to_owned(), ns));
        }
    }

    /// Seconds used since `before`, by thread name (threads of one name summed; a thread that
    /// started meanwhile counts from zero, one that ended is lost).
    pub fn since(&self, before: &ThreadTimes) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (tid, (name, ns)) in &self.ns {
            let b = before.ns.get(tid).map_or(0, |(_, t)| *t);
            *out.entry(name.clone()).or_insert(0.0) += ns.saturating_sub(b) as f64 / 1e9;
        }
        out
    }
}

/// One CPU's line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuLine {
    /// user + nice.
    pub user: u64,
    /// system.
    pub system: u64,
    /// idle + iowait.
    pub idle: u64,
    /// irq.
    pub irq: u64,
    /// softirq.
    pub softirq: u64,
    /// steal (time the hypervisor gave to someone else).
    pub steal: u64,
}

impl CpuLine {
    /// Everything but idle and steal.
    pub fn busy(&self) -> u64 {
        self.user + self.system + self.irq + self.softirq
    }

    fn since(&self, b: &CpuLine) -> CpuLine {
        CpuLine {
            user: self.user.saturating_sub(b.user),
            system: self.system.saturating_sub(b.system),
            idle: self.idle.saturating_sub(b.idle),
            irq: self.irq.saturating_sub(b.irq),
            softirq: self.softirq.saturating_sub(b.softirq),
            steal: self.steal.saturating_sub(b.steal),
        }
    }
}

/// The per-CPU lines of `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// CPU number -> its line.
    pub cpus: BTreeMap<usize, CpuLine>,
}

impl CpuTimes {
    /// Reads `/proc/stat`.
    pub fn read() -> Result<CpuTimes> {
        Ok(CpuTimes::parse(
            &std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?,
        ))
    }

    /// Parses the `cpuN ...` lines (the total `cpu` line is skipped).
    pub fn parse(text: &str) -> CpuTimes {
        let mut cpus = BTreeMap::new();
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let Some(n) = f
                .next()
                .and_then(|name| name.strip_prefix("cpu"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
            if v.len() < 8 {
                continue;
            }
            // user nice system idle iowait irq softirq steal [guest guest_nice]
            cpus.insert(
                n,
                CpuLine {
                    user: v[0] + v[1],
                    system: v[2],
                    idle: v[3] + v[4],
                    irq: v[5],
                    softirq: v[6],
                    steal: v[7],
                },
            );
        }
        CpuTimes { cpus }
    }

    /// `self - before` for one CPU.
    pub fn cpu_since(&self, before: &CpuTimes, cpu: usize) -> CpuLine {
        match (self.cpus.get(&cpu), before.cpus.get(&cpu)) {
            (Some(a), Some(b)) => a.since(b),
            _ => CpuLine::default(),
        }
    }
}

/// Everything sampled at one instant for [`ServerCpu`].
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    /// The server process's threads.
    pub server: ThreadTimes,
    /// The server interface's NAPI threads.
    pub napi: ThreadTimes,
    /// `/proc/stat`.
    pub cpus: CpuTimes,
}

impl CpuSample {
    /// Samples the threads of process `server_pid`, the `napi` kernel threads and `/proc/stat`.
    pub fn take(server_pid: Option<i32>, napi: &[Task]) -> Result<CpuSample> {
        Ok(CpuSample {
            server: server_pid.map(ThreadTimes::of_process).unwrap_or_default(),
            napi: ThreadTimes::of_tasks(napi),
            cpus: CpuTimes::read()?,
        })
    }

    /// What the server used between `before` and `self` (`elapsed_s` apart), charging the
    /// softirq and irq time of `server_cores` to it.
    pub fn since(&self, before: &CpuSample, server_cores: &[usize], elapsed_s: f64) -> ServerCpu {
        let threads_s = self.server.since(&before.server);
        let napi: BTreeMap<String, f64> = self.napi.since(&before.napi);
        let (mut softirq, mut busy, mut steal) = (0, 0, 0);
        for &c in server_cores {
            let d = self.cpus.cpu_since(&before.cpus, c);
            softirq += d.softirq + d.irq;
            busy += d.busy();
            steal += d.steal;
        }
        let threads_total: f64 = threads_s.values().sum();
        let napi_s: f64 = napi.values().sum();
        let softirq_s = softirq as f64 / USER_HZ;
        ServerCpu {
            elapsed_s,
            threads_s,
            napi_s,
            softirq_s,
            total_s: threads_total + napi_s + softirq_s,
            cores: server_cores.to_vec(),
            core_busy_s: busy as f64 / USER_HZ,
            core_steal_s: steal as f64 / USER_HZ,
        }
    }
}

/// The CPU time the server used during one step (or the reflect baseline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCpu {
    /// Length of the window, seconds.
    pub elapsed_s: f64,
    /// CPU seconds of the server process's threads (`utime + stime`), by thread name.
    pub threads_s: BTreeMap<String, f64>,
    /// CPU seconds of the server interface's NAPI kernel threads (where XDP, the copy into
    /// AF_XDP and, for the kernel, the whole TCP receive path run).
    pub napi_s: f64,
    /// softirq + irq seconds on the server's cores.
    pub softirq_s: f64,
    /// threads + NAPI + softirq: the server's CPU seconds.
    pub total_s: f64,
    /// The server's cores.
    pub cores: Vec<usize>,
    /// Busy seconds (user + system + irq + softirq) on the server's cores, whoever ran there:
    /// a cross-check that includes any other load on the machine.
    pub core_busy_s: f64,
    /// Steal seconds on the server's cores (the hypervisor ran someone else).
    pub core_steal_s: f64,
}

impl ServerCpu {
    /// The server's CPU seconds per second of the window (1.0 = one core).
    pub fn utilisation(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.total_s / self.elapsed_s
        } else {
            0.0
        }
    }

    /// Packets per CPU second, for `packets` sent in the window; `None` without CPU time.
    pub fn per_cpu_second(&self, packets: f64) -> Option<f64> {
        (self.total_s > 0.0).then(|| packets / self.total_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_stat_with_odd_names() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 \
                    100 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(parse_task_stat(line), Some(325));
        assert_eq!(parse_task_stat("garbage"), None);
    }

    #[test]
    fn schedstat_first_field() {
        assert_eq!(
            parse_schedstat("180574846 13279340 437\n"),
            Some(180_574_846)
        );
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn this_thread_uses_cpu() {
        let me = nix::unistd::getpid().as_raw();
        let before = ThreadTimes::of_process(me);
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used: f64 = ThreadTimes::of_process(me).since(&before).values().sum();
        assert!(used > 0.005, "{used}");
    }

    #[test]
    fn proc_stat_lines() {
        let text = "cpu  10 0 10 100 0 0 5 0 0 0\n\
                    cpu0 1 2 3 4 5 6 7 8 0 0\n\
                    cpu1 10 20 30 40 50 60 70 80 0 0\nintr 1 2 3\n";
        let t = CpuTimes::parse(text);
        assert_eq!(t.cpus.len(), 2);
        let c1 = t.cpus[&1];
        assert_eq!((c1.user, c1.system, c1.idle), (30, 30, 90));
        assert_eq!((c1.irq, c1.softirq, c1.steal), (60, 70, 80));
        assert_eq!(c1.busy(), 30 + 30 + 60 + 70);
        assert_eq!(t.cpu_since(&CpuTimes::parse(text), 0), CpuLine::default());
    }

    #[test]
    fn new_threads_are_the_difference() {
        let t = |pid, name: &str| Task {
            pid,
            name: name.into(),
        };
        let before = vec![t(1, "napi/veth-srv-5")];
        let after = vec![t(1, "napi/veth-srv-5"), t(7, "napi/veth-srv-9")];
        assert_eq!(
            new_napi_threads(&before, &after),
            vec![t(7, "napi/veth-srv-9")]
        );
    }
}
