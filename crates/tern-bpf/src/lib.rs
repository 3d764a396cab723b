//! tern's XDP steering program, `bpf/tern_steer.bpf.c`, and a typed loader for it.
//!
//! The program sends the TCP packets of the daemon's listening addresses into the AF_XDP socket
//! of the receive queue they arrived on and passes everything else to the kernel; the C file's
//! header comment says exactly what it parses, steers, passes and drops. `build.rs` compiles it
//! with clang and this crate embeds the object, so a build needs no prebuilt artefact.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use std::os::fd::AsFd;
//! use tern_bpf::{Interface, ListenerFlags, SteerProgram, XdpMode, DEFAULT_PIN_ROOT};
//!
//! # fn main() -> Result<(), tern_bpf::Error> {
//! # let xsk = std::fs::File::open("/dev/null").unwrap();
//! let steer = SteerProgram::load()?;
//! steer.add_listener((Ipv4Addr::new(198, 18, 0, 1), 80), ListenerFlags::NONE)?;
//! steer.set_xsk(0, xsk.as_fd())?; // the AF_XDP socket bound to queue 0
//! let iface = Interface::by_name("eth0")?;
//! let mut attachment = steer.attach(&iface, XdpMode::Auto)?;
//! attachment.pin(DEFAULT_PIN_ROOT.as_ref())?; // so `ternd cleanup` finds it after a crash
//! println!("attached in {} mode; {}", attachment.mode(), steer.counters()?);
//! # Ok(()) }
//! ```
//!
//! Layout: [`abi`] mirrors `bpf/include/tern_abi.h`; `sys` is the one module that calls the
//! kernel or libbpf's C API (every `unsafe` is there, each with its `SAFETY:` argument, and every
//! failure carries the call, the errno and a hint); [`attach`] holds the bpf_link attachment and
//! the leftover clean-up, whose design its docs explain; this file loads the object and manages
//! its maps. libbpf-rs opens, relocates and loads the object.
//!
//! Everything here needs privileges: CAP_BPF (or CAP_SYS_ADMIN) to load, CAP_NET_ADMIN to
//! attach, CAP_SYS_ADMIN to look at programs and links by id.

pub mod abi;
pub mod attach;
mod error;
pub mod flood;
mod sys;

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use libbpf_rs::{MapCore, MapType, ObjectBuilder};

use abi::{Counter, ListenerKey, ListenerValue};
pub use attach::{
    detach_leftover, find_attached, AttachMode, AttachedInfo, Attachment, Cleanup, Interface,
    XdpMode, DEFAULT_PIN_ROOT,
};
pub use error::Error;
pub use flood::{FloodConfig, FloodCounters, FloodProgram};
pub use sys::SysError;

/// The program's name in the kernel (`bpftool prog`, `ip -d link`), by which tern recognises
/// its own attachments.
pub const PROGRAM_NAME: &str = "tern_steer";

/// The compiled program, built from `bpf/tern_steer.bpf.c` by `build.rs`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tern_steer.bpf.o"));

const LISTENERS_MAP: &str = "tern_listeners";
const XSKS_MAP: &str = "tern_xsks";
const COUNTERS_MAP: &str = "tern_counters";

/// Bytes of verifier log kept when the program is rejected; the end is what explains it.
const VERIFIER_LOG_SIZE: usize = 1 << 20;
const VERIFIER_LOG_TAIL_LINES: usize = 20;

/// tern_steer loaded into the kernel with its maps: not attached anywhere until
/// [`attach`](SteerProgram::attach).
///
/// The program and maps live while this value or an [`Attachment`] of it does.
#[derive(Debug)]
pub struct SteerProgram {
    prog: OwnedFd,
    prog_id: u32,
    listeners: sys::MapFd,
    xsks: sys::MapFd,
    counters: sys::MapFd,
}

impl SteerProgram {
    /// Loads the embedded program and creates its maps (empty: no listener, no socket).
    pub fn load() -> Result<SteerProgram, Error> {
        let object = load_object(PROGRAM_NAME, OBJECT)?;
        let (prog, prog_id) = program_fd(&object, PROGRAM_NAME)?;
        Ok(SteerProgram {
            prog,
            prog_id,
            listeners: checked_map(
                &object,
                LISTENERS_MAP,
                MapType::Hash,
                size_of::<ListenerKey>(),
                size_of::<ListenerValue>(),
                abi::MAX_LISTENERS,
            )?,
            xsks: checked_map(&object, XSKS_MAP, MapType::Xskmap, 4, 4, abi::MAX_QUEUES)?,
            counters: checked_map(
                &object,
                COUNTERS_MAP,
                MapType::PercpuArray,
                4,
                8,
                Counter::COUNT as u32,
            )?,
        })
        // `object` drops here; the duplicated fds keep the program and maps alive.
    }

    /// The kernel's id of the loaded program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The program's fd.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// Attaches the program to `interface` through a bpf_link; see [`attach`] for the modes
    /// and for what dropping, pinning and crashing do.
    pub fn attach(&self, interface: &Interface, mode: XdpMode) -> Result<Attachment, Error> {
        attach::attach(self.prog.as_fd(), self.prog_id, interface, mode)
    }

    /// Steers TCP to `addr` (an unspecified address is the wildcard of its family), or changes
    /// the flags of a listener already there.
    pub fn add_listener(
        &self,
        addr: impl Into<SocketAddr>,
        flags: ListenerFlags,
    ) -> Result<(), Error> {
        let key = ListenerKey::new(addr.into()).to_bytes();
        let value = ListenerValue {
            flags: flags.bits(),
        }
        .to_bytes();
        self.listeners
            .update(&key, &value, u64::from(libbpf_sys::BPF_ANY))
            .map_err(|source| match source.errno {
                libc::E2BIG => Error::ListenersFull {
                    max: abi::MAX_LISTENERS,
                    source,
                },
                _ => Error::Sys(source),
            })
    }

    /// Stops steering TCP to `addr`; `Ok(false)` when it was not a listener.
    pub fn remove_listener(&self, addr: impl Into<SocketAddr>) -> Result<bool, Error> {
        let key = ListenerKey::new(addr.into()).to_bytes();
        Ok(self.listeners.delete(&key)?)
    }

    /// The listeners in the map, in no particular order.
    pub fn listeners(&self) -> Result<Vec<(SocketAddr, ListenerFlags)>, Error> {
        let mut listeners = Vec::new();
        let mut value = [0u8; size_of::<ListenerValue>()];
        for key in self.listeners.keys()? {
            if !self.listeners.lookup(&key, &mut value)? {
                continue; // removed meanwhile
            }
            let addr = ListenerKey::from_bytes(&key).and_then(|k| k.socket_addr());
            let flags = ListenerValue::from_bytes(&value).map(|v| ListenerFlags(v.flags));
            if let (Some(addr), Some(flags)) = (addr, flags) {
                listeners.push((addr, flags));
            }
        }
        Ok(listeners)
    }

    /// Puts the AF_XDP socket `xsk`, bound to receive queue `queue`, in that queue's slot.
    pub fn set_xsk(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), Error> {
        check_queue(queue)?;
        let fd = u32::try_from(xsk.as_raw_fd())
            .map_err(|_| Error::Object(format!("fd {} cannot go in an XSKMAP", xsk.as_raw_fd())))?;
        self.xsks
            .update(
                &queue.to_ne_bytes(),
                &fd.to_ne_bytes(),
                u64::from(libbpf_sys::BPF_ANY),
            )
            .map_err(|e| match e.errno {
                libc::EOPNOTSUPP | libc::ENOTSOCK => {
                    Error::Sys(e.with_hint("only an AF_XDP socket can go in an XSKMAP slot"))
                }
                _ => Error::Sys(e),
            })
    }

    /// Empties queue `queue`'s slot, so its listener traffic takes the fallback action.
    pub fn clear_xsk(&self, queue: u32) -> Result<(), Error> {
        check_queue(queue)?;
        self.xsks.delete(&queue.to_ne_bytes())?;
        Ok(())
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, Error> {
        let mut values = [0u64; Counter::COUNT];
        for counter in Counter::ALL {
            let per_cpu = self
                .counters
                .lookup_percpu_u64(&counter.index().to_ne_bytes())?;
            values[counter.index() as usize] = per_cpu.iter().sum();
        }
        Ok(SteerCounters { values })
    }

    /// Runs the program once over `frame` without any interface (BPF_PROG_TEST_RUN) and returns
    /// its verdict; counters and maps behave as for a received frame on receive queue 0.
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction, Error> {
        Ok(XdpAction::from(sys::prog_test_run(
            self.prog.as_fd(),
            frame,
        )?))
    }
}

/// Sends libbpf's own messages (`libbpf: ...`, also those libxdp's internal loads produce) to
/// the `log` crate, target `libbpf`, instead of straight to stderr: warnings at `warn`, notes
/// such as "skipping unrecognized data section" at `debug`, so a tool's output is its own and
/// `RUST_LOG=libbpf=debug` shows everything. Process-wide (libbpf has one print callback): for
/// binaries to call once at start, not for libraries.
pub fn log_libbpf_through_log() {
    fn forward(level: libbpf_rs::PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            libbpf_rs::PrintLevel::Warn => log::warn!(target: "libbpf", "{msg}"),
            libbpf_rs::PrintLevel::Info => log::debug!(target: "libbpf", "{msg}"),
            libbpf_rs::PrintLevel::Debug => log::trace!(target: "libbpf", "{msg}"),
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, forward)));
}

/// Opens and loads the embedded object `bytes` (`name.bpf.o`), explaining a failure.
fn load_object(name: &'static str, bytes: &'static [u8]) -> Result<libbpf_rs::Object, Error> {
    let mut log = vec![0u8; VERIFIER_LOG_SIZE];
    let open = ObjectBuilder::default()
        .name(name)
        .and_then(|builder| builder.open_memory(bytes))
        .map_err(|e| Error::Object(format!("{name}.bpf.o: {e:#}")))?;
    sys::object_load(open, &mut log, name)
        .map_err(|e| load_error(name, e, &log, sys::effective_capabilities().unwrap_or(0)))
}

/// An owned fd of the program `name` in `object`, and its kernel id.
fn program_fd(object: &libbpf_rs::Object, name: &'static str) -> Result<(OwnedFd, u32), Error> {
    let prog = object
        .progs()
        .find(|p| p.name() == name)
        .ok_or_else(|| Error::Object(format!("no program named {name}")))?;
    let prog = dup(prog.as_fd())?;
    let id = sys::prog_info(prog.as_fd())?.id;
    Ok((prog, id))
}

/// An owned fd of the map `name` in `object`, once its geometry matches what the Rust side of
/// the ABI expects.
fn checked_map(
    object: &libbpf_rs::Object,
    name: &'static str,
    ty: MapType,
    key: usize,
    value: usize,
    entries: u32,
) -> Result<sys::MapFd, Error> {
    let map = object
        .maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| Error::Object(format!("no map named {name}")))?;
    let mismatch = |what, found: u64, expected: u64| Error::AbiMismatch {
        map: name,
        what,
        found,
        expected,
    };
    if map.map_type() != ty {
        return Err(mismatch("type", map.map_type() as u64, ty as u64));
    }
    if map.key_size() as usize != key {
        return Err(mismatch("key size", map.key_size().into(), key as u64));
    }
    if map.value_size() as usize != value {
        return Err(mismatch(
            "value size",
            map.value_size().into(),
            value as u64,
        ));
    }
    if map.max_entries() != entries {
        return Err(mismatch(
            "max entries",
            map.max_entries().into(),
            entries.into(),
        ));
    }
    Ok(sys::MapFd {
        name,
        fd: dup(map.as_fd())?,
        key_size: key,
        value_size: value,
    })
}

fn check_queue(queue: u32) -> Result<(), Error> {
    if queue < abi::MAX_QUEUES {
        Ok(())
    } else {
        Err(Error::QueueOutOfRange {
            queue,
            max: abi::MAX_QUEUES,
        })
    }
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    fd.try_clone_to_owned().map_err(|e| {
        Error::Sys(SysError {
            call: format!("fcntl(F_DUPFD_CLOEXEC, {})", fd.as_raw_fd()),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            hint: None,
        })
    })
}

/// Turns a failed `bpf_object__load` into the sentence that explains it, from the errno, the
/// verifier log libbpf wrote (NUL-terminated, empty when no program got as far as the verifier)
/// and the thread's effective capabilities.
fn load_error(program: &'static str, source: SysError, log: &[u8], caps: u64) -> Error {
    let log_text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]);
    if !log_text.trim().is_empty() {
        let lines: Vec<&str> = log_text.trim_end().lines().collect();
        let tail = lines[lines.len().saturating_sub(VERIFIER_LOG_TAIL_LINES)..].join("\n");
        return Error::Verifier {
            program,
            errno: source.errno,
            log_tail: tail,
        };
    }
    if source.errno == libc::EPERM {
        const CAP_NET_ADMIN: u32 = 12;
        const CAP_SYS_ADMIN: u32 = 21;
        const CAP_BPF: u32 = 39;
        let has = |cap: u32| caps & (1 << cap) != 0;
        let mut missing = Vec::new();
        if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
            missing.push("CAP_BPF (or CAP_SYS_ADMIN)");
        }
        if !has(CAP_NET_ADMIN) {
            missing.push("CAP_NET_ADMIN");
        }
        if missing.is_empty() {
            return Error::Memlock { source };
        }
        return Error::MissingCapabilities {
            missing: missing.join(" and "),
            source,
        };
    }
    Error::Sys(source)
}

/// Flags of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListenerFlags(u32);

impl ListenerFlags {
    /// No flag: packets for the listener on a queue without a socket go to the kernel.
    pub const NONE: ListenerFlags = ListenerFlags(0);
    /// Packets for the listener on a queue without a socket are dropped instead of passed to
    /// the kernel: for a daemon that owns the port, so the kernel never answers for it.
    pub const DROP_NO_XSK: ListenerFlags = ListenerFlags(abi::LISTENER_F_DROP_NO_XSK);

    /// The `TERN_LISTENER_F_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: ListenerFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ListenerFlags {
    type Output = ListenerFlags;
    fn bitor(self, rhs: ListenerFlags) -> ListenerFlags {
        ListenerFlags(self.0 | rhs.0)
    }
}

/// An XDP program's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// XDP_ABORTED: a program error; the packet is dropped and a tracepoint fires.
    Aborted,
    /// XDP_DROP.
    Drop,
    /// XDP_PASS: on to the kernel's stack.
    Pass,
    /// XDP_TX: back out of the interface it came in on.
    Tx,
    /// XDP_REDIRECT: to another interface, CPU or AF_XDP socket.
    Redirect,
    /// A value no XDP action has.
    Unknown(u32),
}

impl From<u32> for XdpAction {
    fn from(value: u32) -> XdpAction {
        match value {
            libbpf_sys::XDP_ABORTED => XdpAction::Aborted,
            libbpf_sys::XDP_DROP => XdpAction::Drop,
            libbpf_sys::XDP_PASS => XdpAction::Pass,
            libbpf_sys::XDP_TX => XdpAction::Tx,
            libbpf_sys::XDP_REDIRECT => XdpAction::Redirect,
            other => XdpAction::Unknown(other),
        }
    }
}

/// A snapshot of the program's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteerCounters {
    values: [u64; Counter::COUNT],
}

impl SteerCounters {
    /// One counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index() as usize]
    }

    /// Every counter with its value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// Packets seen: each increments exactly one counter.
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }

    /// The change from `earlier` to `self`, counter by counter.
    pub fn since(&self, earlier: &SteerCounters) -> SteerCounters {
        let mut values = [0u64; Counter::COUNT];
        for (i, v) in values.iter_mut().enumerate() {
            *v = self.values[i].wrapping_sub(earlier.values[i]);
        }
        SteerCounters { values }
    }
}

impl fmt::Display for SteerCounters {
    /// `nstat`-like: one `Name value` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (counter, value) in self.iter() {
            writeln!(f, "{:<24}{value}", counter.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_load(errno: i32) -> SysError {
        SysError {
            call: "bpf_object__load(tern_steer.bpf.o)".to_owned(),
            errno,
            hint: None,
        }
    }

    const ALL_CAPS: u64 = (1 << 41) - 1;

    #[test]
    fn a_verifier_log_makes_a_verifier_error_with_its_tail() {
        let mut log: Vec<u8> = (0..100)
            .map(|i| format!("{i}: insn\n"))
            .collect::<String>()
            .into_bytes();
        log.extend_from_slice(b"R8 offset is outside of the packet\n\0\0garbage");
        let err = load_error(PROGRAM_NAME, failed_load(libc::EACCES), &log, ALL_CAPS);
        let Error::Verifier {
            errno, log_tail, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(*errno, libc::EACCES);
        assert_eq!(log_tail.lines().count(), VERIFIER_LOG_TAIL_LINES);
        assert!(log_tail.ends_with("R8 offset is outside of the packet"));
        assert!(!log_tail.contains("garbage") && !log_tail.contains("\n80: "));
        assert!(
            err.to_string().contains("verifier rejected tern_steer"),
            "{err}"
        );
    }

    #[test]
    fn eperm_without_cap_bpf_names_the_missing_capabilities() {
        let no_bpf_no_sys_admin = ALL_CAPS & !(1 << 39) & !(1 << 21);
        let err = load_error(
            PROGRAM_NAME,
            failed_load(libc::EPERM),
            b"\0",
            no_bpf_no_sys_admin,
        );
        assert!(matches!(err, Error::MissingCapabilities { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("lacks CAP_BPF (or CAP_SYS_ADMIN)"), "{msg}");
        assert!(msg.contains("Operation not permitted"), "{msg}");

        // CAP_SYS_ADMIN stands in for CAP_BPF, as on kernels before 5.8.
        let sys_admin_only = ALL_CAPS & !(1 << 39);
        let err = load_error(
            PROGRAM_NAME,
            failed_load(libc::EPERM),
            b"\0",
            sys_admin_only,
        );
        assert!(matches!(err, Error::Memlock { .. }), "{err:?}");
    }

    #[test]
    fn eperm_with_every_capability_is_the_memlock_limit() {
        let err = load_error(PROGRAM_NAME, failed_load(libc::EPERM), b"\0", ALL_CAPS);
        assert!(matches!(err, Error::Memlock { .. }), "{err:?}");
        assert!(err.to_string().contains("ulimit -l unlimited"), "{err}");
    }

    #[test]
    fn other_errors_keep_the_call_and_errno() {
        let err = load_error(PROGRAM_NAME, failed_load(libc::EINVAL), b"\0", ALL_CAPS);
        let msg = err.to_string();
        assert!(
            msg.starts_with("bpf_object__load(tern_steer.bpf.o): Invalid argument (os error 22)"),
            "{msg}"
        );
    }

    #[test]
    fn counters_print_like_nstat() {
        let mut values = [0u64; Counter::COUNT];
        values[Counter::Redirected.index() as usize] = 7;
        let counters = SteerCounters { values };
        let text = counters.to_string();
        assert_eq!(text.lines().count(), Counter::COUNT);
        assert!(text.contains("XdpRedirected           7"), "{text}");
        assert_eq!(counters.total(), 7);
        assert_eq!(counters.since(&counters).total(), 0);
    }
}
