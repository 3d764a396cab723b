//! The one place tern-xsk calls the kernel directly: socket options, `poll`, the `sendto` and
//! `recvfrom` kicks, and the ethtool ioctls. The setup calls libxdp makes on our behalf
//! (`xsk_umem__create`, `xsk_socket__create`) report through the same [`SysError`].
//!
//! Every failure is a [`SysError`]: the call, the errno, and (in its `Display`) a sentence with
//! the probable cause and the fix, chosen by [`SysError::hint`]. It is `Copy` and allocation-free
//! so the datapath calls (`poll`, kicks) can use it too.

use std::ffi::{c_int, c_void, CStr};
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::XskStats;

// Socket options missing from the `libc` crate for Linux/glibc. These are the asm-generic values
// (x86_64, aarch64, riscv64, ...); alpha, mips, parisc and sparc number them differently.
const SO_BUSY_POLL: c_int = 46;
const SO_PREFER_BUSY_POLL: c_int = 69;
const SO_BUSY_POLL_BUDGET: c_int = 70;

// ethtool ioctl ABI (include/uapi/linux/sockios.h, include/uapi/linux/ethtool.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
const ETHTOOL_GCHANNELS: u32 = 0x0000_003c;
const IFNAMSIZ: usize = 16;

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
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        Err(SysError::last("if_nametoindex"))
    } else {
        Ok(idx)
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

/// `struct ifreq` with the `ifr_data` member of its union, padded to the kernel's size.
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; IFNAMSIZ],
    data: *mut c_void,
    _pad: [u8; 16],
}

/// `struct ethtool_drvinfo`.
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EthtoolChannels {
    cmd: u32,
    pub(crate) max_rx: u32,
    pub(crate) max_tx: u32,
    pub(crate) max_other: u32,
    pub(crate) max_combined: u32,
    pub(crate) rx_count: u32,
    pub(crate) tx_count: u32,
    pub(crate) other_count: u32,
    pub(crate) combined_count: u32,
}

/// Runs one ethtool command on `ifname` in the calling thread's network namespace.
///
/// # Safety
/// `T` must be the `#[repr(C)]` ethtool struct that the command stored in its first `u32`
/// reads and writes, so the kernel stays inside `*arg`.
unsafe fn ethtool<T>(ifname: &str, arg: &mut T, call: &'static str) -> Result<(), SysError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ {
        return Err(SysError::new(call, libc::ENODEV));
    }
    let mut req = IfreqData {
        name: [0; IFNAMSIZ],
        data: (arg as *mut T).cast::<c_void>(),
        _pad: [0; 16],
    };
    for (dst, &b) in req.name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let raw = check(raw, "socket(AF_INET) for ethtool")?;
    // SAFETY: `raw` is a freshly created descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `req` is a valid ifreq whose name is NUL-terminated (it is shorter than IFNAMSIZ)
    // and whose data pointer points at `arg`, a live `T` of the layout the command expects (this
    // function's contract).
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req as *mut IfreqData) };
    check(ret, call).map(drop)
}

/// The channel (queue) counts of `ifname` (`ethtool -l`).
pub(crate) fn ethtool_channels(ifname: &str) -> Result<EthtoolChannels, SysError> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    // SAFETY: ETHTOOL_GCHANNELS reads and writes a `struct ethtool_channels`.
    unsafe { ethtool(ifname, &mut ch, "ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)") }?;
    Ok(ch)
}

/// The driver name of `ifname` (`ethtool -i`).
pub(crate) fn ethtool_driver(ifname: &str) -> Result<String, SysError> {
    let mut info = EthtoolDrvinfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        n_priv_flags: 0,
        n_stats: 0,
        testinfo_len: 0,
        eedump_len: 0,
        regdump_len: 0,
    };
    // SAFETY: ETHTOOL_GDRVINFO reads and writes a `struct ethtool_drvinfo`.
    unsafe { ethtool(ifname, &mut info, "ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)") }?;
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
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
