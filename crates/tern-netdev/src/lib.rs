//! Network interface lookups shared by tern-bpf (attaching XDP) and tern-xsk (binding AF_XDP
//! sockets): an interface's index and name (`if_nametoindex(3)`, `if_indextoname(3)`), and two
//! ethtool queries through `SIOCETHTOOL` (linux/ethtool.h): the driver (`ETHTOOL_GDRVINFO`,
//! `ethtool -i`) and the channel counts (`ETHTOOL_GCHANNELS`, `ethtool -l`).
//!
//! Everything works in the calling thread's network namespace (sysfs would show the namespace
//! of whoever mounted /sys). A failure is a [`NetdevError`] naming the call, the interface and
//! the errno; each caller turns it into its own error with its own advice.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A failed interface lookup or ethtool query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetdevError {
    call: &'static str,
    interface: String,
    errno: i32,
}

impl NetdevError {
    fn new(call: &'static str, interface: impl Into<String>, errno: i32) -> NetdevError {
        NetdevError {
            call,
            interface: interface.into(),
            errno: errno.abs(),
        }
    }

    fn last(call: &'static str, interface: impl Into<String>, default: i32) -> NetdevError {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(default);
        NetdevError::new(call, interface, errno)
    }

    /// The call, e.g. `if_nametoindex` or `ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)`.
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// The interface asked about (a name, or an index written out).
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The positive errno.
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

impl fmt::Display for NetdevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {:?}: {} (errno {})",
            self.call,
            self.interface,
            io::Error::from_raw_os_error(self.errno),
            self.errno
        )
    }
}

impl std::error::Error for NetdevError {}

/// The index of interface `name`.
pub fn if_nametoindex(name: &str) -> Result<u32, NetdevError> {
    const CALL: &str = "if_nametoindex";
    let c = CString::new(name).map_err(|_| NetdevError::new(CALL, name, libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated and lives across the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(NetdevError::last(CALL, name, libc::ENODEV));
    }
    Ok(index)
}

/// The name of interface `index`.
pub fn if_indextoname(index: u32) -> Result<String, NetdevError> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes the call may write, and lives across it.
    let ret = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if ret.is_null() {
        return Err(NetdevError::last(
            "if_indextoname",
            index.to_string(),
            libc::ENXIO,
        ));
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// Receive queues of `ifname` as the kernel counts them: its `queues/rx-*` entries in sysfs
/// (which shows the namespace of whoever mounted /sys: `ip netns exec` mounts the target's).
pub fn rx_queue_count(ifname: &str) -> Result<u32, NetdevError> {
    const CALL: &str = "read_dir(/sys/class/net/IF/queues)";
    let dir = std::path::Path::new("/sys/class/net")
        .join(ifname)
        .join("queues");
    if ifname.is_empty() || ifname.contains('/') {
        return Err(NetdevError::new(CALL, ifname, libc::ENODEV));
    }
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| NetdevError::new(CALL, ifname, e.raw_os_error().unwrap_or(libc::ENODEV)))?;
    let n = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n as u32)
}

/// `ETHTOOL_GDRVINFO` and `ETHTOOL_GCHANNELS` of linux/ethtool.h.
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
const ETHTOOL_GCHANNELS: u32 = 0x0000_003c;

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

/// An interface's channel (queue) counts, `struct ethtool_channels` (`ethtool -l`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    cmd: u32,
    /// Most receive-only channels.
    pub max_rx: u32,
    /// Most transmit-only channels.
    pub max_tx: u32,
    /// Most other channels.
    pub max_other: u32,
    /// Most combined channels.
    pub max_combined: u32,
    /// Receive-only channels now.
    pub rx_count: u32,
    /// Transmit-only channels now.
    pub tx_count: u32,
    /// Other channels now.
    pub other_count: u32,
    /// Combined channels now.
    pub combined_count: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union, padded to the kernel's size.
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// Runs one ethtool command on `ifname`.
///
/// # Safety
/// `T` must be the `#[repr(C)]` ethtool struct that the command stored in its first `u32`
/// reads and writes, so the kernel stays inside `*arg`.
unsafe fn ethtool<T>(ifname: &str, arg: &mut T, call: &'static str) -> Result<(), NetdevError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(NetdevError::new(call, ifname, libc::ENODEV));
    }
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (arg as *mut T).cast::<libc::c_void>(),
        _pad: [0; 16],
    };
    for (dst, &b) in req.name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    // SAFETY: a plain socket(2) call; the result is checked below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(NetdevError::last(
            "socket(AF_INET) for ethtool",
            ifname,
            libc::EIO,
        ));
    }
    // SAFETY: `raw` is a freshly created descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `req` is a valid ifreq whose name is NUL-terminated (shorter than IFNAMSIZ, no
    // NUL inside) and whose data pointer points at `arg`, a live `T` of the layout the command
    // expects (this function's contract); both outlive the call.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCETHTOOL,
            &mut req as *mut IfreqData,
        )
    };
    if ret < 0 {
        return Err(NetdevError::last(call, ifname, libc::EIO));
    }
    Ok(())
}

/// The driver of `ifname` (`ethtool -i`: `veth`, `mlx5_core`, ...).
pub fn driver(ifname: &str) -> Result<String, NetdevError> {
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
    let end = info
        .driver
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(info.driver.len());
    Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// The channel (queue) counts of `ifname` (`ethtool -l`).
pub fn channels(ifname: &str) -> Result<Channels, NetdevError> {
    let mut ch = Channels {
        cmd: ETHTOOL_GCHANNELS,
        ..Channels::default()
    };
    // SAFETY: ETHTOOL_GCHANNELS reads and writes a `struct ethtool_channels`.
    unsafe { ethtool(ifname, &mut ch, "ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)") }?;
    Ok(ch)
}

// The kernel's sizes (linux/ethtool.h, linux/if.h on 64-bit).
const _: () = assert!(std::mem::size_of::<EthtoolDrvinfo>() == 196);
const _: () = assert!(std::mem::size_of::<Channels>() == 36);
const _: () = assert!(std::mem::size_of::<IfreqData>() == 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_both_ways() {
        let index = if_nametoindex("lo").expect("every namespace has lo");
        assert_eq!(if_indextoname(index).unwrap(), "lo");
    }

    #[test]
    fn missing_interfaces_name_the_call_and_the_interface() {
        let err = if_nametoindex("tern-no-such0").unwrap_err();
        assert_eq!(err.errno(), libc::ENODEV);
        assert_eq!(err.interface(), "tern-no-such0");
        assert!(
            err.to_string()
                .starts_with("if_nametoindex on \"tern-no-such0\""),
            "{err}"
        );
        let err = driver("tern-no-such0").unwrap_err();
        assert_eq!(err.call(), "ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)");
        assert_eq!(err.errno(), libc::ENODEV);
        // Names the kernel could not hold are refused before any call.
        assert_eq!(driver("").unwrap_err().errno(), libc::ENODEV);
        assert_eq!(channels(&"x".repeat(16)).unwrap_err().errno(), libc::ENODEV);
        assert_eq!(if_nametoindex("a\0b").unwrap_err().errno(), libc::EINVAL);
        assert!(if_indextoname(u32::MAX).is_err());
        let err = rx_queue_count("tern-no-such0").unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
        assert_eq!(rx_queue_count("../lo").unwrap_err().errno(), libc::ENODEV);
    }

    #[test]
    fn loopback_has_one_receive_queue() {
        assert_eq!(rx_queue_count("lo").unwrap(), 1);
    }
}
