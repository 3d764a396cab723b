//! Harness for tern's privileged tests in the veth lab.
//!
//! A [`Lab`] is one instance of `scripts/lab.sh` with a namespace prefix of its own, so tests can
//! run concurrently; dropping it runs `lab.sh down`, also when the test panics. Code runs inside a
//! namespace either as a thread that has entered it ([`Lab::spawn_in`]: sockets it opens belong to
//! that namespace) or as a process under `ip netns exec` ([`Lab::command`]). A [`Capture`] runs
//! tcpdump on a lab interface and reads the frames back.
//!
//! Lab tests need root. Without root they fail with a message saying so, unless `TERN_SKIP_LAB=1`
//! asks to skip them explicitly; skipping is never silent.

mod capture;

pub use capture::Capture;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

/// Which end of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The system under test: `veth-srv`, 198.18.0.1, 2001:2::1.
    Server,
    /// Clients and load generators: `veth-cli`, 198.18.0.2, 2001:2::2.
    Client,
}

impl Side {
    /// The lab interface in this side's namespace.
    pub fn interface(self) -> &'static str {
        match self {
            Side::Server => "veth-srv",
            Side::Client => "veth-cli",
        }
    }
}

/// Addresses of the lab, as `scripts/lab.sh` sets them up.
pub mod addr {
    use std::net::{Ipv4Addr, Ipv6Addr};
    /// The server's IPv4 address.
    pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    /// The client's IPv4 address.
    pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    /// The server's IPv6 address.
    pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    /// The client's IPv6 address.
    pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
}

/// Options for [`Lab::up`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LabConfig {
    /// Queues on each veth end; `None` lets lab.sh use the number of CPUs.
    pub queues: Option<u32>,
    /// Extra client addresses 198.18.0.100.. (at most 100).
    pub client_addrs: u32,
}

/// A running lab; `Drop` tears it down.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
}

/// Whether lab tests should run here; `false` only when the user asked to skip them.
///
/// Panics with an explanation when they cannot run and skipping was not asked for, so a
/// missing privilege never passes for a green run.
pub fn lab_available() -> bool {
    if std::env::var("TERN_SKIP_LAB").is_ok_and(|v| v == "1") {
        eprintln!("lab test skipped: TERN_SKIP_LAB=1");
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        panic!("lab tests need root (network namespaces, tcpdump, XDP); run scripts/test.sh as root or set TERN_SKIP_LAB=1 to skip them");
    }
    true
}

/// The repository's `scripts/` directory.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

impl Lab {
    /// Brings up a lab with a prefix unique to this process and call.
    pub fn up(config: LabConfig) -> Lab {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "tern-t{}-{}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab { prefix };
        let mut cmd = lab.script();
        cmd.arg("up")
            .args(["--client-addrs", &config.client_addrs.to_string()]);
        if let Some(q) = config.queues {
            cmd.args(["--queues", &q.to_string()]);
        }
        run(&mut cmd);
        lab
    }

    fn script(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(scripts_dir().join("lab.sh"))
            .env("TERN_LAB_PREFIX", &self.prefix);
        cmd
    }

    /// The namespace name of `side`.
    pub fn netns(&self, side: Side) -> String {
        match side {
            Side::Server => format!("{}srv", self.prefix),
            Side::Client => format!("{}cli", self.prefix),
        }
    }

    /// A command that runs `program` inside `side`'s namespace.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns(side), program]);
        cmd
    }

    /// Runs `f` on a new thread that has entered `side`'s network namespace; sockets it creates
    /// live in that namespace for their whole life, wherever they are used afterwards.
    pub fn spawn_in<T, F>(&self, side: Side, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.netns(side));
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns({path}): {e} (needs CAP_SYS_ADMIN)"));
            f()
        })
    }

    /// Whether both namespaces of this lab exist.
    pub fn exists(&self) -> bool {
        [Side::Server, Side::Client]
            .iter()
            .all(|s| Path::new(&format!("/run/netns/{}", self.netns(*s))).exists())
    }

    /// Tears the lab down now (also done on drop).
    pub fn down(self) {}
}

impl Drop for Lab {
    fn drop(&mut self) {
        let status = self.script().arg("down").stdout(Stdio::null()).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("lab.sh down for prefix {} failed: {status:?}", self.prefix);
        }
    }
}

/// Runs a setup command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
