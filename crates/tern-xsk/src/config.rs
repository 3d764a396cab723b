//! [`XskConfig`]: the sizes and modes of one AF_XDP socket, with documented defaults and a
//! validation that names the offending key and what it allows.

use std::fmt;

/// Smallest and largest ring size accepted (entries; each must also be a power of two).
pub const RING_SIZE_RANGE: (u32, u32) = (64, 65_536);
/// Most frames one UMEM may have (4 GiB of 4096-byte frames).
pub const MAX_FRAME_COUNT: u32 = 1 << 20;
/// Frame sizes accepted: the kernel wants a power of two of at least 2048 (aligned UMEM), and
/// nothing tern sends needs more than a page.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];

/// Whether to bind in zero-copy mode (`XDP_ZEROCOPY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Try zero-copy and fall back to copy mode when the driver cannot do it, logging why.
    /// The mode actually in effect is [`XskSocket::bind_mode`](crate::XskSocket::bind_mode).
    #[default]
    Auto,
    /// Zero-copy or fail: opening fails with
    /// [`XskError::ZeroCopyUnsupported`](crate::XskError::ZeroCopyUnsupported), naming the driver.
    Required,
    /// Copy mode (`XDP_COPY`): works on every driver with XDP support, veth included.
    Off,
}

/// Which XDP program redirects the queue's packets into the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpProgram {
    /// Someone else's program (tern's `tern_steer`, loaded by `tern-bpf`): libxdp loads nothing
    /// (`XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`) and the caller inserts
    /// [`XskSocket::fd`](crate::XskSocket::fd) into its XSKMAP at index `queue_id`. The daemon's
    /// mode.
    #[default]
    External,
    /// libxdp attaches its default program, which redirects every packet of every bound queue to
    /// its socket, and detaches it when the last socket on the interface closes. For tests and
    /// tools: it takes all traffic of the queue away from the kernel, ARP included.
    LibxdpDefault,
}

/// Kernel busy polling of the socket's NAPI context (Linux 5.11+), set with `setsockopt` on the
/// socket: `SO_PREFER_BUSY_POLL = 1`, `SO_BUSY_POLL = usecs`, `SO_BUSY_POLL_BUDGET = budget`.
///
/// With it, the receive path kicks the kernel (`recvfrom`) whenever the RX ring is empty, which
/// runs the driver's NAPI poll in the worker's context. It only pays off together with the
/// interface's `napi_defer_hard_irqs` and `gro_flush_timeout` (see the kernel's
/// `Documentation/networking/napi.rst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// `SO_BUSY_POLL`: how long one busy-poll syscall may spin, in microseconds (1..=1_000_000).
    pub usecs: u32,
    /// `SO_BUSY_POLL_BUDGET`: packets per NAPI poll (1..=65535; the kernel's default is 8).
    pub budget: u16,
}

impl Default for BusyPoll {
    fn default() -> Self {
        BusyPoll {
            usecs: 20,
            budget: 64,
        }
    }
}

/// Sizes and modes of one AF_XDP socket and its UMEM.
///
/// # Sizing rule
///
/// `frame_count >= fill_ring + rx_ring + tx_ring + completion_ring`: every ring can be full at
/// the same time and the free list still has frames to hand out, so refilling never starves the
/// fill ring because frames sit in the TX path. The default has exactly that many frames
/// (4 × 2048 = 8192 frames of 2048 bytes, 16 MiB per queue).
///
/// A frame holds `frame_size - 256` bytes of packet (the kernel reserves `XDP_PACKET_HEADROOM`
/// = 256 bytes in front): 1792 with 2048-byte frames, enough for a 1500-byte MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// Bytes per UMEM frame: 2048 (default) or 4096.
    pub frame_size: u32,
    /// Frames in the UMEM (default 8192); see the sizing rule.
    pub frame_count: u32,
    /// Fill ring entries: frames lent to the kernel for receiving (default 2048).
    pub fill_ring: u32,
    /// Completion ring entries: transmitted frames the kernel gives back (default 2048).
    pub completion_ring: u32,
    /// RX ring entries: received packets waiting for the worker (default 2048).
    pub rx_ring: u32,
    /// TX ring entries: packets waiting for the kernel to send them (default 2048).
    pub tx_ring: u32,
    /// Zero-copy policy (default [`ZeroCopy::Auto`]).
    pub zero_copy: ZeroCopy,
    /// Which program feeds the socket (default [`XdpProgram::External`]).
    pub program: XdpProgram,
    /// Bind with `XDP_USE_NEED_WAKEUP` (default `true`): the kernel says when it needs a syscall
    /// to make progress, and the socket only makes one then.
    pub need_wakeup: bool,
    /// Kernel busy polling (default off).
    pub busy_poll: Option<BusyPoll>,
    /// Back the UMEM with huge pages (default `false`; needs `HugePages_Free` in
    /// `/proc/meminfo`).
    pub huge_pages: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 2048,
            frame_count: 4 * 2048,
            fill_ring: 2048,
            completion_ring: 2048,
            rx_ring: 2048,
            tx_ring: 2048,
            zero_copy: ZeroCopy::Auto,
            program: XdpProgram::External,
            need_wakeup: true,
            busy_poll: None,
            huge_pages: false,
        }
    }
}

/// A configuration key with a value it does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AF_XDP configuration: `{key}` = {value}: {allowed}")]
pub struct ConfigError {
    /// The key, as spelled in [`XskConfig`].
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What the key allows.
    pub allowed: String,
}

impl ConfigError {
    fn new(key: &'static str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        ConfigError {
            key,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

impl XskConfig {
    /// Frames that fit in all four rings at once: the minimum `frame_count` (the sizing rule).
    pub fn frames_for_rings(&self) -> u64 {
        u64::from(self.fill_ring)
            + u64::from(self.rx_ring)
            + u64::from(self.tx_ring)
            + u64::from(self.completion_ring)
    }

    /// UMEM size in bytes.
    pub fn umem_bytes(&self) -> u64 {
        u64::from(self.frame_count) * u64::from(self.frame_size)
    }

    /// Checks every key; the first bad one is reported with what it allows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !FRAME_SIZES.contains(&self.frame_size) {
            return Err(ConfigError::new(
                "frame_size",
                self.frame_size,
                "must be 2048 or 4096 (bytes per UMEM frame)",
            ));
        }
        let (min, max) = RING_SIZE_RANGE;
        for (key, size) in [
            ("fill_ring", self.fill_ring),
            ("completion_ring", self.completion_ring),
            ("rx_ring", self.rx_ring),
            ("tx_ring", self.tx_ring),
        ] {
            if !size.is_power_of_two() || !(min..=max).contains(&size) {
                return Err(ConfigError::new(
                    key,
                    size,
                    format!("must be a power of two between {min} and {max} (ring entries)"),
                ));
            }
        }
        let needed = self.frames_for_rings();
        if u64::from(self.frame_count) < needed || self.frame_count > MAX_FRAME_COUNT {
            return Err(ConfigError::new(
                "frame_count",
                self.frame_count,
                format!(
                    "must be at least fill_ring + rx_ring + tx_ring + completion_ring = {needed} \
                     (so every ring can be full at once) and at most {MAX_FRAME_COUNT}"
                ),
            ));
        }
        if let Some(bp) = self.busy_poll {
            if !(1..=1_000_000).contains(&bp.usecs) {
                return Err(ConfigError::new(
                    "busy_poll.usecs",
                    bp.usecs,
                    "must be between 1 and 1000000 (microseconds)",
                ));
            }
            if bp.budget == 0 {
                return Err(ConfigError::new(
                    "busy_poll.budget",
                    bp.budget,
                    "must be between 1 and 65535 (packets per NAPI poll)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(f: impl FnOnce(&mut XskConfig)) -> ConfigError {
        let mut c = XskConfig::default();
        f(&mut c);
        c.validate().expect_err("config should be rejected")
    }

    #[test]
    fn defaults_are_valid_and_follow_the_sizing_rule() {
        let c = XskConfig::default();
        c.validate().unwrap();
        assert_eq!(u64::from(c.frame_count), c.frames_for_rings());
        assert_eq!(c.umem_bytes(), 16 << 20);
    }

    #[test]
    fn each_bad_key_is_named_with_what_it_allows() {
        let e = err(|c| c.frame_size = 3000);
        assert_eq!(e.key, "frame_size");
        assert!(
            e.to_string()
                .contains("`frame_size` = 3000: must be 2048 or 4096"),
            "{e}"
        );

        let e = err(|c| c.frame_size = 8192);
        assert_eq!(e.key, "frame_size");

        for key in ["fill_ring", "completion_ring", "rx_ring", "tx_ring"] {
            for bad in [0, 1000, 32, 131_072] {
                let e = err(|c| match key {
                    "fill_ring" => c.fill_ring = bad,
                    "completion_ring" => c.completion_ring = bad,
                    "rx_ring" => c.rx_ring = bad,
                    _ => c.tx_ring = bad,
                });
                assert_eq!(e.key, key, "{e}");
                assert!(
                    e.to_string().contains("power of two between 64 and 65536"),
                    "{e}"
                );
                assert!(e.to_string().contains(&format!("= {bad}")), "{e}");
            }
        }

        let e = err(|c| c.frame_count = 8191);
        assert_eq!(e.key, "frame_count");
        assert!(
            e.to_string()
                .contains("at least fill_ring + rx_ring + tx_ring + completion_ring = 8192"),
            "{e}"
        );
        let e = err(|c| c.frame_count = MAX_FRAME_COUNT + 1);
        assert_eq!(e.key, "frame_count");

        let e = err(|c| {
            c.busy_poll = Some(BusyPoll {
                usecs: 0,
                budget: 8,
            })
        });
        assert_eq!(e.key, "busy_poll.usecs");
        let e = err(|c| {
            c.busy_poll = Some(BusyPoll {
                usecs: 50,
                budget: 0,
            })
        });
        assert_eq!(e.key, "busy_poll.budget");
    }

    #[test]
    fn smaller_rings_allow_fewer_frames() {
        let c = XskConfig {
            fill_ring: 64,
            completion_ring: 64,
            rx_ring: 64,
            tx_ring: 64,
            frame_count: 256,
            frame_size: 4096,
            ..XskConfig::default()
        };
        c.validate().unwrap();
    }
}
