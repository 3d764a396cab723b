//! Setup errors: each says what was being done, on which interface and queue, and (through
//! [`SysError`]) the call, the errno, the probable cause and the fix.

use crate::config::ConfigError;
use crate::sys::SysError;

/// Why [`XskSocket::open`](crate::XskSocket::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A configuration key has a value it does not allow.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The interface name cannot be a Linux interface name.
    #[error("interface name {ifname:?} is not usable: {reason}")]
    BadInterfaceName {
        /// The name given.
        ifname: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No interface of that name in the calling thread's network namespace.
    #[error("interface {ifname}: {source}")]
    NoSuchInterface {
        /// The name given.
        ifname: String,
        /// The failed lookup.
        source: SysError,
    },

    /// The queue id is not below the interface's queue count.
    #[error(
        "{ifname} has {queue_count} queue(s) an AF_XDP socket can bind to ({rx} RX, {tx} TX; \
         `ethtool -l {ifname}` shows them, `ethtool -L {ifname} combined N` changes them), so \
         queue_id must be 0..={max}, got {queue_id}",
        max = queue_count.saturating_sub(1)
    )]
    QueueOutOfRange {
        /// The interface.
        ifname: String,
        /// The queue asked for.
        queue_id: u32,
        /// Queues with both an RX and a TX side: the ones a socket with both rings can bind.
        queue_count: u32,
        /// RX queues.
        rx: u32,
        /// TX queues.
        tx: u32,
    },

    /// `zero_copy = Required` on a driver without AF_XDP zero-copy.
    #[error(
        "zero_copy = Required, but the {driver} driver of {ifname} does not support AF_XDP \
         zero-copy (queue {queue_id}: {call} failed with {errno}); set zero_copy = Auto (falls \
         back to copy mode) or Off, or use a NIC whose driver supports it (ice, i40e, ixgbe, \
         mlx5, igc, ...)",
        call = source.call(),
        errno = source.errno_name()
    )]
    ZeroCopyUnsupported {
        /// The interface.
        ifname: String,
        /// The queue.
        queue_id: u32,
        /// The interface's driver, from `ethtool -i` (`"unknown"` if it would not say).
        driver: String,
        /// The failed bind.
        source: SysError,
    },

    /// A setup step failed in the kernel or libxdp.
    #[error("{ifname} queue {queue_id}: {step}: {source}")]
    Setup {
        /// The interface.
        ifname: String,
        /// The queue.
        queue_id: u32,
        /// What was being done, e.g. "registering the UMEM (16777216 bytes)".
        step: String,
        /// The failed call.
        source: SysError,
    },
}

impl XskError {
    /// The failed kernel call behind this error, if there is one.
    pub fn sys_error(&self) -> Option<&SysError> {
        match self {
            XskError::NoSuchInterface { source, .. }
            | XskError::ZeroCopyUnsupported { source, .. }
            | XskError::Setup { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_out_of_range_names_the_count_and_the_fix() {
        let e = XskError::QueueOutOfRange {
            ifname: "veth-srv".into(),
            queue_id: 5,
            queue_count: 2,
            rx: 2,
            tx: 2,
        };
        let s = e.to_string();
        assert!(s.contains("veth-srv has 2 queue(s)"), "{s}");
        assert!(s.contains("queue_id must be 0..=1, got 5"), "{s}");
        assert!(s.contains("ethtool -l veth-srv"), "{s}");
    }

    #[test]
    fn zero_copy_unsupported_names_the_driver() {
        let e = XskError::ZeroCopyUnsupported {
            ifname: "veth-srv".into(),
            queue_id: 0,
            driver: "veth".into(),
            source: SysError::new("xsk_socket__create (bind XDP_ZEROCOPY)", libc::EOPNOTSUPP),
        };
        let s = e.to_string();
        assert!(
            s.contains("the veth driver of veth-srv does not support AF_XDP zero-copy"),
            "{s}"
        );
        assert!(s.contains("EOPNOTSUPP"), "{s}");
        assert!(s.contains("zero_copy = Auto"), "{s}");
    }

    #[test]
    fn setup_errors_say_the_step_and_carry_the_hint() {
        let e = XskError::Setup {
            ifname: "eth0".into(),
            queue_id: 3,
            step: "registering the UMEM (16777216 bytes)".into(),
            source: SysError::new("xsk_umem__create", libc::ENOMEM),
        };
        let s = e.to_string();
        assert!(s.starts_with("eth0 queue 3: registering the UMEM (16777216 bytes): xsk_umem__create failed with ENOMEM"), "{s}");
        assert!(s.contains("RLIMIT_MEMLOCK"), "{s}");
        assert_eq!(e.sys_error().map(SysError::errno), Some(libc::ENOMEM));
    }
}
