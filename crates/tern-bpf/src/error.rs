//! Errors of tern-bpf: each one a sentence with the cause and the fix.

use std::path::PathBuf;

use crate::attach::AttachedInfo;
use crate::sys::SysError;

/// Why loading, attaching or managing tern's XDP program failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks the capabilities to load BPF.
    #[error(
        "loading the XDP program needs CAP_BPF (or CAP_SYS_ADMIN, which kernels before 5.8 \
         require) and attaching it CAP_NET_ADMIN; this thread's effective set lacks {missing}. \
         Run ternd as root, or grant them (systemd: AmbientCapabilities=CAP_BPF CAP_NET_ADMIN \
         CAP_SYS_ADMIN). The kernel said: {source}"
    )]
    MissingCapabilities {
        /// The capabilities missing from the effective set, e.g. `CAP_BPF`.
        missing: String,
        /// The failed call.
        source: SysError,
    },

    /// Map creation was refused although the capabilities are there: the memlock limit.
    #[error(
        "the kernel refused to create tern's BPF maps: kernels before 5.11 charge BPF memory to \
         RLIMIT_MEMLOCK and the limit is too low. Raise it (`ulimit -l unlimited`, or \
         LimitMEMLOCK=infinity in the systemd unit). The kernel said: {source}"
    )]
    Memlock {
        /// The failed call.
        source: SysError,
    },

    /// The verifier rejected the program.
    #[error(
        "the kernel verifier rejected {program} (errno {errno}): a bug in bpf/{program}.bpf.c or \
         a kernel too old for it (tern needs Linux 5.9+). Last lines of the verifier log:\n{log_tail}"
    )]
    Verifier {
        /// The program's name (its file is `bpf/<program>.bpf.c`).
        program: &'static str,
        /// The errno of the load.
        errno: i32,
        /// The end of the verifier log, where the reason is.
        log_tail: String,
    },

    /// libbpf could not open or load the embedded object for another reason.
    #[error("cannot load an embedded BPF object: {0}")]
    Object(String),

    /// A flood configuration does not fit its frame template.
    #[error("the flood template's configuration is inconsistent: {0} (a bug in whatever built it, e.g. tern-bench's FrameGen)")]
    FloodConfig(String),

    /// The object's maps do not have the shape `abi.rs` expects.
    #[error(
        "ABI mismatch: map {map} has {what} {found}, but abi.rs expects {expected}; \
         bpf/include/tern_abi.h and crates/tern-bpf/src/abi.rs must change together"
    )]
    AbiMismatch {
        /// The map.
        map: &'static str,
        /// Which property differs.
        what: &'static str,
        /// What the object says.
        found: u64,
        /// What abi.rs says.
        expected: u64,
    },

    /// No interface of that name in this network namespace.
    #[error("no network interface named {name:?} in this network namespace (see `ip link show`): {source}")]
    NoSuchInterface {
        /// The name asked for.
        name: String,
        /// The failed lookup.
        source: SysError,
    },

    /// Native XDP was asked for and the driver would not take it.
    #[error(
        "native XDP on {ifname} (driver {driver}) failed: {source}. The driver lacks native XDP \
         or refuses it in its current configuration (MTU above a page, LRO on, too few queues); \
         use XdpMode::Generic, or XdpMode::Auto to fall back to generic mode"
    )]
    NativeUnsupported {
        /// The interface.
        ifname: String,
        /// Its driver, as `ethtool -i` names it.
        driver: String,
        /// The failed attach.
        source: SysError,
    },

    /// Another program already holds the interface's XDP hook.
    #[error("{ifname} already has an XDP program: {}", busy_advice(.ifname, .existing))]
    HookBusy {
        /// The interface.
        ifname: String,
        /// What is attached there.
        existing: AttachedInfo,
    },

    /// `detach_leftover` found a program that is not tern's and left it alone.
    #[error("refusing to detach from {ifname}: {}", foreign_advice(.ifname, .existing))]
    ForeignProgram {
        /// The interface.
        ifname: String,
        /// What is attached there.
        existing: AttachedInfo,
    },

    /// A pin path holds something that is not a tern link for this interface.
    #[error("{path} does not hold tern's XDP link for {ifname} ({what}); leaving it alone: remove it by hand if it is stale")]
    ForeignPin {
        /// The pin.
        path: PathBuf,
        /// The interface the caller meant.
        ifname: String,
        /// What it holds instead.
        what: String,
    },

    /// The pin directory is not on bpffs.
    #[error(
        "{path} is not on a mounted bpffs, so the XDP link cannot be pinned there: \
         `mount -t bpf bpf /sys/fs/bpf` (scripts/bootstrap.sh does this)"
    )]
    BpffsNotMounted {
        /// The directory that should be on bpffs.
        path: PathBuf,
    },

    /// A queue index past the XSKMAP.
    #[error(
        "receive queue {queue} is past the XSKMAP's {max} slots (TERN_MAX_QUEUES in \
         bpf/include/tern_abi.h); raise it there and in abi.rs, or use fewer queues \
         (`ethtool -L <if> combined N`)"
    )]
    QueueOutOfRange {
        /// The queue asked for.
        queue: u32,
        /// The number of slots.
        max: u32,
    },

    /// The listener map is full.
    #[error("the listener map is full ({max} entries, TERN_MAX_LISTENERS in bpf/include/tern_abi.h): {source}")]
    ListenersFull {
        /// Its capacity.
        max: u32,
        /// The failed update.
        source: SysError,
    },

    /// A call into the kernel or libbpf failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

fn removal_advice(ifname: &str, existing: &AttachedInfo) -> String {
    match existing.link_id {
        Some(link) => format!(
            "it is held by bpf_link {link}, which goes when its owner closes it and its pin (if \
             any) is removed: find them with `bpftool link show id {link}` and `ls /sys/fs/bpf`; \
             `ip link set dev {ifname} xdp off` cannot remove a link"
        ),
        None => format!(
            "remove it with `ip link set dev {ifname} xdp off` (or `bpftool net detach xdp dev {ifname}`)"
        ),
    }
}

fn busy_advice(ifname: &str, existing: &AttachedInfo) -> String {
    let cleanup = if existing.is_tern() {
        "it is tern's own, probably left by a daemon that died: `ternd cleanup` removes it"
            .to_owned()
    } else {
        removal_advice(ifname, existing)
    };
    format!("{existing}; {cleanup}")
}

fn foreign_advice(ifname: &str, existing: &AttachedInfo) -> String {
    format!(
        "the XDP program there is {existing}, not tern's (tern_steer); if it is stale, {}",
        removal_advice(ifname, existing)
    )
}
