//! The one place tern-xsk calls the kernel directly: socket options, `poll`, the `sendto` and
//! `recvfrom` kicks (interface lookups and the ethtool ioctls are tern-netdev's, shared with
//! tern-bpf). The setup calls libxdp makes on our behalf
//! (`xsk_umem__create`, `xsk_socket__create`) report through the same [`SysError`].
//!
//! Every failure is a [`SysError`]: the call, the errno, and (in its `Display`) a sentence with
//! the probable cause and the fix, chosen by [`SysError::hint`]. It is `Copy` and allocation-free
//! so the datapath calls (`poll`, kicks) can use it too.

use std::ffi::{c_int, c_void, CStr};
use std::fmt;
use std::os::fd::RawFd;

use crate::XskStats;

// Socket options missing from the `libc` crate for Linux/glibc. These are the asm-generic values
// (x86_64, aarch64, riscv64, ...); alpha, mips, parisc and sparc number them differently.
const SO_BUSY_POLL: c_int = 46;
const SO_PREFER_BUSY_POLL: c_int = 69;
const SO_BUSY_POLL_BUDGET: c_int = 70;

/// The kernel-internal "not supported" code some drivers leak to user space.
pub(crate) const ENOTSUPP: i32 = 524;

/// A failed kernel call: which call, and the errno it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysError {
    call: &'static str,
    errno: i32,
}

impl SysError {
    /// `call` failed with `errno` (positive).
    pub(crate) fn new(call: &'static str, errno: i32) -> Self {
        SysError {
            call,
            errno: errno.abs(),
        }
    }

    /// `call` failed and left its reason in `errno`.
    fn last(call: &'static str) -> Self {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        SysError::new(call, errno)
    }

    /// The call that failed, e.g. `"setsockopt(SO_BUSY_POLL)"`.
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// The errno it returned.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The errno's symbolic name, e.g. `"EOPNOTSUPP"`.
    pub fn errno_name(&self) -> &'static str {
        errno_name(self.errno)
    }

    /// The probable cause and the fix, for this call and errno.
    pub fn hint(&self) -> &'static str {
        hint(self.call, self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.errno);
        write!(
            f,
            "{} failed with {} ({}): {}",
            self.call,
            self.errno_name(),
            text,
            self.hint()
        )
    }
}

impl std::error::Error for SysError {}

/// Symbolic names of the errnos tern-xsk can meet.
pub(crate) fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENOBUFS => "ENOBUFS",
        ENOTSUPP => "ENOTSUPP",
        _ => "errno",
    }
}

const CAPS_SOCKET: &str =
    "creating an AF_XDP socket needs CAP_NET_RAW, and attaching XDP programs \
     CAP_NET_ADMIN with CAP_BPF (CAP_SYS_ADMIN before Linux 5.8): run as root, or grant them \
     (setcap cap_net_raw,cap_net_admin,cap_bpf+ep, or AmbientCapabilities= in the systemd unit)";
const MEMLOCK: &str =
    "the kernel could not pin the UMEM: before Linux 5.11 UMEM pages count against \
     RLIMIT_MEMLOCK, so raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in the systemd unit) \
     or grant CAP_IPC_LOCK; otherwise lower frame_count or frame_size";
const BUSY: &str = "the queue is already bound by another AF_XDP socket (another ternd, xdpsock, \
     ...; still busy after retrying for a second), or an XDP program attached by something else \
     holds the interface: look with `ip -d link show dev IF`, `bpftool net` and `ss -f xdp -p`, \
     and stop or detach it";
const NO_DEV: &str = "no such interface in this network namespace: check the name with `ip link` \
     run in the namespace the worker runs in (`ip netns exec NS ip link`)";
const NO_XDP_SOCKETS: &str =
    "this kernel has no AF_XDP support: it needs CONFIG_XDP_SOCKETS=y (Linux 4.18+)";

/// The probable cause and the fix for `errno` from `call`.
pub(crate) fn hint(call: &str, errno: i32) -> &'static str {
    let umem = call.starts_with("xsk_umem__create");
    let bind = call.starts_with("xsk_socket__create");
    let busy_poll = call.contains("BUSY_POLL");
    match errno {
        libc::EPERM | libc::EACCES if busy_poll => {
            "raising SO_BUSY_POLL or SO_BUSY_POLL_BUDGET above the current value needs \
             CAP_NET_ADMIN: run as root or grant it, or disable busy_poll"
        }
        libc::EPERM | libc::EACCES => CAPS_SOCKET,
        libc::ENOMEM | libc::ENOBUFS if umem => MEMLOCK,
        libc::ENOMEM if call.starts_with("mmap") => {
            "not enough memory for the UMEM: lower frame_count or frame_size; with huge_pages, \
             check HugePages_Free in /proc/meminfo (or turn huge_pages off)"
        }
        libc::ENOMEM | libc::ENOBUFS => {
            "the kernel ran out of memory for the socket's rings: lower the ring sizes"
        }
        libc::EBUSY | libc::EEXIST if bind => BUSY,
        libc::EBUSY => "the device or socket is busy: retry, or look for another user of the queue",
        libc::EINVAL if bind => {
            "the kernel refused the bind: most often the queue id is not below the interface's \
             queue count (see `ethtool -l IF` or /sys/class/net/IF/queues/), otherwise a bind \
             flag the driver does not accept"
        }
        libc::EINVAL if umem => {
            "the kernel refused the UMEM layout: frame_size must be a power of two >= 2048 and \
             the ring sizes powers of two"
        }
        libc::EINVAL if busy_poll => {
            "the kernel refused the busy-poll value: check busy_poll.usecs and busy_poll.budget"
        }
        libc::EOPNOTSUPP | ENOTSUPP if bind => {
            "the driver does not support what was asked: AF_XDP zero-copy (XDP_ZEROCOPY) needs \
             driver support (ice, i40e, ixgbe, mlx5, igc, ...); use zero_copy = Auto or Off"
        }
        libc::EOPNOTSUPP | ENOTSUPP if call.contains("ETHTOOL") => {
            "the driver does not implement this ethtool query"
        }
        libc::EOPNOTSUPP | ENOTSUPP => "the driver or kernel does not support this operation",
        libc::ENODEV | libc::ENXIO => NO_DEV,
        libc::EAFNOSUPPORT => NO_XDP_SOCKETS,
        libc::ENOPROTOOPT if busy_poll => {
            "this kernel has no preferred busy polling (needs Linux 5.11+): disable busy_poll"
        }
        libc::ENOPROTOOPT => "this kernel is too old for this socket option",
        libc::ENOENT if bind => {
            "libxdp could not find or pin its XDP program: check that bpffs is mounted on \
             /sys/fs/bpf (scripts/bootstrap.sh mounts it)"
        }
        libc::ENETDOWN => "the interface is down: `ip link set dev IF up`",
        libc::EAGAIN | libc::EINTR => "a transient condition; the call can be retried",
        _ => "unexpected error: see the errno text",
    }
}

fn check(ret: c_int, call: &'static str) -> Result<c_int, SysError> {
    if ret < 0 {
        Err(SysError::last(call))
    } else {
        Ok(ret)
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub(crate) fn if_nametoindex(name: &CStr) -> Result<u32, SysError> {
    tern_netdev::if_nametoindex(&name.to_string_lossy()).map_err(SysError::from)
}

impl From<tern_netdev::NetdevError> for SysError {
    fn from(e: tern_netdev::NetdevError) -> SysError {
        SysError::new(e.call(), e.errno())
    }
}

fn setsockopt_int(
    fd: RawFd,
    name: c_int,
    value: c_int,
    call: &'static str,
) -> Result<(), SysError> {
    // SAFETY: `value` is a live c_int and the length passed is its size; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&value as *const c_int).cast::<c_void>(),
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    check(ret, call).map(drop)
}

/// Turns on preferred busy polling on `fd` (the order follows the kernel's xdpsock sample).
pub(crate) fn set_busy_poll(fd: RawFd, usecs: u32, budget: u16) -> Result<(), SysError> {
    setsockopt_int(
        fd,
        SO_PREFER_BUSY_POLL,
        1,
        "setsockopt(SO_PREFER_BUSY_POLL)",
    )?;
    let usecs = c_int::try_from(usecs).unwrap_or(c_int::MAX);
    setsockopt_int(fd, SO_BUSY_POLL, usecs, "setsockopt(SO_BUSY_POLL)")?;
    setsockopt_int(
        fd,
        SO_BUSY_POLL_BUDGET,
        c_int::from(budget),
        "setsockopt(SO_BUSY_POLL_BUDGET)",
    )
}

/// `getsockopt(SOL_XDP, XDP_STATISTICS)`. Kernels before 5.9 fill in only the first three
/// counters; the others then read 0.
pub(crate) fn xdp_statistics(fd: RawFd) -> Result<XskStats, SysError> {
    const CALL: &str = "getsockopt(XDP_STATISTICS)";
    let mut raw = libc::xdp_statistics {
        rx_dropped: 0,
        rx_invalid_descs: 0,
        tx_invalid_descs: 0,
        rx_ring_full: 0,
        rx_fill_ring_empty_descs: 0,
        tx_ring_empty_descs: 0,
    };
    let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // SAFETY: `raw` is writable for `len` bytes and `len` is a live socklen_t; the kernel writes
    // at most `len` bytes and stores the length it wrote back into `len`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&mut raw as *mut libc::xdp_statistics).cast::<c_void>(),
            &mut len,
        )
    };
    check(ret, CALL)?;
    if (len as usize) < size_of::<libc::xdp_statistics_v1>() {
        return Err(SysError::new(CALL, libc::EINVAL));
    }
    Ok(XskStats {
        rx_dropped: raw.rx_dropped,
        rx_invalid_descs: raw.rx_invalid_descs,
        tx_invalid_descs: raw.tx_invalid_descs,
        rx_ring_full: raw.rx_ring_full,
        rx_fill_ring_empty_descs: raw.rx_fill_ring_empty_descs,
        tx_ring_empty_descs: raw.tx_ring_empty_descs,
    })
}

/// Whether the bound socket runs in zero-copy mode (`getsockopt(SOL_XDP, XDP_OPTIONS)`, 5.3+).
pub(crate) fn xdp_zero_copy(fd: RawFd) -> Result<bool, SysError> {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: `opts` is writable for `len` bytes and `len` is a live socklen_t.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&mut opts as *mut libc::xdp_options).cast::<c_void>(),
            &mut len,
        )
    };
    check(ret, "getsockopt(XDP_OPTIONS)")?;
    Ok(opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
}

/// Waits up to `timeout_ms` (-1: forever) for `fd` to be readable. `Ok(false)` on timeout or
/// when a signal interrupted the wait.
pub(crate) fn poll_readable(fd: RawFd, timeout_ms: c_int) -> Result<bool, SysError> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd and we pass a count of 1.
    let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    match check(ret, "poll") {
        Ok(n) => Ok(n > 0),
        Err(e) if e.errno == libc::EINTR => Ok(false),
        Err(e) => Err(e),
    }
}

/// Errnos a kick may return that only mean "not now": the kernel is busy or out of buffers
/// for the moment, and the next kick retries.
fn transient_kick(errno: i32) -> bool {
    matches!(
        errno,
        libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR
    )
}

/// Tells the kernel there is work on the TX ring (`sendto` with no data, `MSG_DONTWAIT`). In copy
/// mode this syscall is what transmits.
pub(crate) fn kick_tx(fd: RawFd) -> Result<(), SysError> {
    // SAFETY: a zero-length send with null buffer and address is valid for AF_XDP sockets.
    let ret = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    match check(ret as c_int, "sendto(TX kick)") {
        Err(e) if !transient_kick(e.errno) => Err(e),
        _ => Ok(()),
    }
}

/// Wakes the driver to refill from the fill ring or runs a busy-poll round (`recvfrom` with no
/// buffer, `MSG_DONTWAIT`).
pub(crate) fn kick_rx(fd: RawFd) -> Result<(), SysError> {
    // SAFETY: a zero-length receive with null buffer and address is valid for AF_XDP sockets.
    let ret = unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    match check(ret as c_int, "recvfrom(RX kick)") {
        Err(e) if !transient_kick(e.errno) => Err(e),
        _ => Ok(()),
    }
}

/// The channel (queue) counts of `ifname` (`ethtool -l`).
pub(crate) fn ethtool_channels(ifname: &str) -> Result<tern_netdev::Channels, SysError> {
    Ok(tern_netdev::channels(ifname)?)
}

/// The driver name of `ifname` (`ethtool -i`).
pub(crate) fn ethtool_driver(ifname: &str) -> Result<String, SysError> {
    Ok(tern_netdev::driver(ifname)?)
}

/// Sends libxdp's own messages (`libxdp: ...`) to the `log` crate, target `libxdp`, instead of
/// straight to stderr: warnings at `warn`, the rest at `debug`.
pub(crate) fn log_libxdp_through_log() {
    unsafe extern "C" fn forward(
        level: libxdp_sys::libxdp_print_level,
        format: *const libc::c_char,
        args: *mut libxdp_sys::__va_list_tag,
    ) -> c_int {
        // SAFETY: libxdp calls this with a printf format and the va_list of its arguments, both
        // valid for the duration of the call, as its own default printer (vfprintf) assumes.
        // The raw variant never panics (a panic could not unwind out of this C callback).
        let Ok(bytes) = (unsafe { vsprintf::vsprintf_raw(format, args) }) else {
            return 0;
        };
        let text = String::from_utf8_lossy(&bytes);
        let msg = text.trim_end();
        if level == libxdp_sys::libxdp_print_level_LIBXDP_WARN {
            log::warn!(target: "libxdp", "{msg}");
        } else {
            log::debug!(target: "libxdp", "{msg}");
        }
        0
    }
    // SAFETY: libxdp_set_print only stores the pointer; `forward` has exactly the type it
    // expects, can be called from any thread, and lives as long as the process.
    unsafe { libxdp_sys::libxdp_set_print(Some(forward)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(call: &'static str, errno: i32) -> String {
        SysError::new(call, errno).to_string()
    }

    #[test]
    fn errors_carry_call_errno_and_hint() {
        let e = SysError::new("xsk_socket__create", -libc::EBUSY);
        assert_eq!(e.errno(), libc::EBUSY);
        assert_eq!(e.errno_name(), "EBUSY");
        let s = e.to_string();
        assert!(
            s.starts_with("xsk_socket__create failed with EBUSY ("),
            "{s}"
        );
        assert!(s.contains("already bound by another AF_XDP socket"), "{s}");
    }

    #[test]
    fn errno_translations_name_cause_and_fix() {
        for errno in [libc::EPERM, libc::EACCES] {
            let s = text("xsk_umem__create", errno);
            assert!(
                s.contains("CAP_NET_RAW") && s.contains("CAP_NET_ADMIN") && s.contains("CAP_BPF"),
                "{s}"
            );
        }
        for errno in [libc::ENOMEM, libc::ENOBUFS] {
            let s = text("xsk_umem__create", errno);
            assert!(
                s.contains("RLIMIT_MEMLOCK") && s.contains("ulimit -l"),
                "{s}"
            );
        }
        let s = text("xsk_socket__create", libc::EBUSY);
        assert!(
            s.contains("already bound") && s.contains("XDP program attached by something else"),
            "{s}"
        );
        let s = text("xsk_socket__create", libc::EINVAL);
        assert!(s.contains("queue id") && s.contains("ethtool -l"), "{s}");
        let s = text("xsk_socket__create", libc::EOPNOTSUPP);
        assert!(
            s.contains("zero-copy") && s.contains("zero_copy = Auto or Off"),
            "{s}"
        );
        assert!(text("xsk_socket__create", ENOTSUPP).contains("ENOTSUPP"));
        for errno in [libc::ENODEV, libc::ENXIO] {
            let s = text("if_nametoindex", errno);
            assert!(
                s.contains("no such interface in this network namespace"),
                "{s}"
            );
        }
        let s = text("setsockopt(SO_PREFER_BUSY_POLL)", libc::ENOPROTOOPT);
        assert!(s.contains("5.11"), "{s}");
        let s = text("setsockopt(SO_BUSY_POLL)", libc::EPERM);
        assert!(
            s.contains("CAP_NET_ADMIN") && s.contains("busy_poll"),
            "{s}"
        );
        assert!(text("socket(AF_XDP)", libc::EAFNOSUPPORT).contains("CONFIG_XDP_SOCKETS"));
    }

    #[test]
    fn ethtool_refuses_impossible_names() {
        let e = ethtool_driver("a-name-far-too-long-for-linux").unwrap_err();
        assert_eq!(e.errno(), libc::ENODEV);
    }

    #[test]
    fn loopback_is_visible_to_if_nametoindex() {
        // Every network namespace has `lo`.
        assert!(if_nametoindex(c"lo").unwrap() > 0);
        let e = if_nametoindex(c"tern-no-such0").unwrap_err();
        assert_eq!(e.errno(), libc::ENODEV);
    }
}
