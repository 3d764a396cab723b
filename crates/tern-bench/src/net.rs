//! Small pieces shared by the subcommands: kernel sockets built with the options the benchmarks
//! need, the safety check on target addresses, CIDR ranges, CPU pinning, the stop flag (SIGINT,
//! SIGTERM) and interface counters and addresses.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// An IPv4 or IPv6 prefix, `ADDRESS/LEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// `addr/len`, host bits cleared; `len` must fit the family.
    pub fn new(addr: IpAddr, len: u8) -> Result<Cidr> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if len > bits {
            bail!("prefix length /{len} is longer than {bits} bits");
        }
        Ok(Cidr {
            addr: mask(addr, len),
            len,
        })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    /// Whether all of `other` is inside.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Mask of the host bits of an IPv4 prefix (`None` for IPv6).
    pub fn host_mask_v4(&self) -> Option<u32> {
        self.addr
            .is_ipv4()
            .then(|| u32::MAX.checked_shr(u32::from(self.len)).unwrap_or(0))
    }

    /// Mask of the host bits of an IPv6 prefix (`None` for IPv4).
    pub fn host_mask_v6(&self) -> Option<u128> {
        self.addr
            .is_ipv6()
            .then(|| u128::MAX.checked_shr(u32::from(self.len)).unwrap_or(0))
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for Cidr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Cidr> {
        let (a, l) = s
            .split_once('/')
            .with_context(|| format!("`{s}` is not ADDRESS/LEN"))?;
        let addr: IpAddr = a
            .parse()
            .with_context(|| format!("`{a}` is not an IP address"))?;
        let len: u8 = l
            .parse()
            .with_context(|| format!("`{l}` is not a prefix length"))?;
        Cidr::new(addr, len)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The benchmarking ranges (RFC 2544: 198.18.0.0/15, RFC 5180: 2001:2::/48), the only
/// addresses tern-bench sends to or forges.
pub fn benchmark_ranges() -> [Cidr; 2] {
    [
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
            len: 15,
        },
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0)),
            len: 48,
        },
    ]
}

/// Refuses an address outside the benchmarking ranges (and outside loopback when
/// `allow_loopback`), so no load ever leaves for a real network by mistake.
pub fn check_target(ip: IpAddr, allow_loopback: bool) -> Result<()> {
    if benchmark_ranges().iter().any(|r| r.contains(ip)) || (allow_loopback && ip.is_loopback()) {
        return Ok(());
    }
    bail!(
        "{ip} is outside the benchmarking ranges 198.18.0.0/15 and 2001:2::/48{}: tern-bench \
         only sends load there",
        if allow_loopback { " and loopback" } else { "" }
    )
}

/// Refuses a forged-source prefix that is not inside the benchmarking ranges.
pub fn check_source_range(cidr: &Cidr) -> Result<()> {
    if benchmark_ranges().iter().any(|r| r.covers(cidr)) {
        return Ok(());
    }
    bail!("source range {cidr} is not inside 198.18.0.0/15 or 2001:2::/48")
}

/// The address family of `ip`.
pub fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A non-blocking TCP socket of `ip`'s family (close-on-exec).
pub fn tcp_socket(ip: IpAddr) -> nix::Result<OwnedFd> {
    socket::socket(
        family(ip),
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// A non-blocking listener on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT` (so every thread
/// can have its own and the kernel spreads connections over them), `IPV6_V6ONLY` for IPv6,
/// and the given accept backlog.
pub fn reuseport_listener(addr: SocketAddr, backlog: i32) -> Result<TcpListener> {
    let step = |what: &str| format!("{what} for a listener on {addr}");
    let fd = tcp_socket(addr.ip()).with_context(|| step("socket()"))?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true).with_context(|| step("SO_REUSEADDR"))?;
    socket::setsockopt(&fd, sockopt::ReusePort, &true).with_context(|| step("SO_REUSEPORT"))?;
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true).with_context(|| step("IPV6_V6ONLY"))?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))
        .with_context(|| step("bind() (is the address configured in this network namespace?)"))?;
    // nix refuses values from SOMAXCONN (4096) up; -1 asks for net.core.somaxconn, which is
    // what the kernel caps every backlog at anyway.
    let backlog = if backlog >= 4096 {
        Backlog::MAXALLOWABLE
    } else {
        Backlog::new(backlog).with_context(|| format!("backlog {backlog} (must be >= 0)"))?
    };
    socket::listen(&fd, backlog).with_context(|| step("listen()"))?;
    Ok(TcpListener::from(fd))
}

/// The accept backlog the kernel will use for a requested `backlog`: capped at
/// `net.core.somaxconn` (of the calling thread's namespace), and values from 4096 up mean
/// "as much as somaxconn allows" (see [`reuseport_listener`]).
pub fn effective_backlog(backlog: i32) -> Option<i32> {
    let somaxconn: i32 = fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(if backlog >= 4096 {
        somaxconn
    } else {
        backlog.min(somaxconn)
    })
}

/// The CPU set holding only `core`, for `sched_setaffinity`.
pub fn core_set(core: usize) -> Result<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    set.set(core)
        .with_context(|| format!("core {core} is out of range"))?;
    Ok(set)
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> Result<()> {
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &core_set(core)?)
        .with_context(|| format!("pinning to core {core}"))
}

/// Parses a core list such as `0,2-3`.
pub fn parse_cores(s: &str) -> Result<Vec<usize>> {
    let mut cores = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
                if a > b {
                    bail!("core range {part} runs backwards");
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.trim().parse()?),
        }
    }
    if cores.is_empty() {
        bail!("empty core list `{s}`");
    }
    Ok(cores)
}

/// The number of CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A flag set by SIGINT or SIGTERM.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

/// The MAC address of `ifname` in the calling thread's network namespace.
pub fn interface_mac(ifname: &str) -> Result<[u8; 6]> {
    for ifa in nix::ifaddrs::getifaddrs().context("getifaddrs")? {
        if ifa.interface_name != ifname {
            continue;
        }
        if let Some(mac) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_link_addr())
            .and_then(|l| l.addr())
        {
            return Ok(mac);
        }
    }
    bail!("no interface {ifname} with a MAC address in this network namespace")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        let p = parts
            .next()
            .with_context(|| format!("`{s}` is not a MAC address"))?;
        *b = u8::from_str_radix(p, 16).with_context(|| format!("`{s}` is not a MAC address"))?;
    }
    if parts.next().is_some() {
        bail!("`{s}` is not a MAC address");
    }
    Ok(mac)
}

/// Formats a MAC address.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// The neighbour (ARP or NDP) entry for `ip` on `ifname`: asks the kernel to resolve it by
/// sending one UDP datagram to the discard port, then reads `ip neigh`. Bounded to about 2 s.
pub fn resolve_neighbour(ifname: &str, ip: IpAddr) -> Result<[u8; 6]> {
    check_target(ip, false)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut poked = false;
    loop {
        let out = std::process::Command::new("ip")
            .args(["neigh", "show", "to", &ip.to_string(), "dev", ifname])
            .output()
            .context("running `ip neigh` (iproute2)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                if let Some(mac) = words.next() {
                    if !text.contains("FAILED") && !text.contains("INCOMPLETE") {
                        return parse_mac(mac);
                    }
                }
            }
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "could not resolve the MAC address of {ip} on {ifname}; pass --dst-mac \
                 (ip neigh said: {:?})",
                text.trim()
            );
        }
        if !poked {
            let bind: SocketAddr = if ip.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            if let Ok(sock) = std::net::UdpSocket::bind(bind) {
                let _ = sock.send_to(b"tern-bench neighbour probe", (ip, 9));
            }
            poked = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Packet counters of an interface from sysfs (`statistics/`), read in this process's view of
/// `/sys` (right under `ip netns exec`); `None` when sysfs shows another namespace's interface
/// of that name or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfCounters {
    /// `tx_packets`.
    pub tx_packets: u64,
    /// `tx_dropped`.
    pub tx_dropped: u64,
    /// `rx_packets`.
    pub rx_packets: u64,
    /// `rx_dropped`.
    pub rx_dropped: u64,
}

impl IfCounters {
    /// Reads the counters of `ifname`.
    pub fn read(ifname: &str) -> Option<IfCounters> {
        let dir = std::path::Path::new("/sys/class/net")
            .join(ifname)
            .join("statistics");
        let get =
            |n: &str| -> Option<u64> { fs::read_to_string(dir.join(n)).ok()?.trim().parse().ok() };
        // Make sure sysfs is this namespace's: its ifindex must be the one the kernel gives us.
        let ifindex: u32 = fs::read_to_string(
            std::path::Path::new("/sys/class/net")
                .join(ifname)
                .join("ifindex"),
        )
        .ok()?
        .trim()
        .parse()
        .ok()?;
        if nix::net::if_::if_nametoindex(ifname).ok()? != ifindex {
            return None;
        }
        Some(IfCounters {
            tx_packets: get("tx_packets")?,
            tx_dropped: get("tx_dropped")?,
            rx_packets: get("rx_packets")?,
            rx_dropped: get("rx_dropped")?,
        })
    }

    /// `self - before`, field by field.
    pub fn since(&self, before: &IfCounters) -> IfCounters {
        IfCounters {
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
        }
    }
}

/// A fast, small pseudo-random generator (wyrand): good enough for forged addresses, ports and
/// sequence numbers, and reproducible from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the clock and the thread.
    pub fn from_entropy() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = std::thread::current().id();
        let h = format!("{id:?}")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        Rng(t ^ h.rotate_left(17) ^ u64::from(std::process::id()))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) ^ t) as u64
    }

    /// A uniform value in `lo..=hi` (slight modulo bias is fine here).
    #[inline]
    pub fn range_u16(&mut self, lo: u16, hi: u16) -> u16 {
        let span = u64::from(hi - lo) + 1;
        lo + (self.next_u64() % span) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_contains() {
        let c: Cidr = "198.18.128.7/17".parse().unwrap();
        assert_eq!(c.to_string(), "198.18.128.0/17");
        assert!(c.contains("198.18.255.255".parse().unwrap()));
        assert!(!c.contains("198.18.0.1".parse().unwrap()));
        assert_eq!(c.host_mask_v4(), Some(0x7fff));
        let v6: Cidr = "2001:2:0:8000::/49".parse().unwrap();
        assert_eq!(v6.host_mask_v6(), Some(u128::MAX >> 49));
        check_source_range(&c).unwrap();
        check_source_range(&v6).unwrap();
        assert!(check_source_range(&"10.0.0.0/8".parse().unwrap()).is_err());
        assert!(check_source_range(&"198.16.0.0/14".parse().unwrap()).is_err());
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn targets_are_checked() {
        check_target("198.18.0.1".parse().unwrap(), false).unwrap();
        check_target("2001:2::1".parse().unwrap(), false).unwrap();
        assert!(check_target("127.0.0.1".parse().unwrap(), false).is_err());
        check_target("127.0.0.1".parse().unwrap(), true).unwrap();
        assert!(check_target("192.168.1.1".parse().unwrap(), true).is_err());
        assert!(check_target("2001:3::1".parse().unwrap(), true).is_err());
    }

    #[test]
    fn cores_and_macs() {
        assert_eq!(parse_cores("0,2-4").unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_cores("3-1").is_err());
        let mac = parse_mac("02:00:0a:ff:00:01").unwrap();
        assert_eq!(format_mac(&mac), "02:00:0a:ff:00:01");
        assert!(parse_mac("02:00").is_err());
    }
}
