//! Connection identity: the 4-tuple, address-family generic from the start.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// Local and remote address and port of a connection, as seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address.
    pub local_addr: IpAddr,
    /// The peer's address.
    pub remote_addr: IpAddr,
    /// Our port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
}

impl FourTuple {
    /// The tuple from its two socket addresses.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> FourTuple {
        FourTuple {
            local_addr: local.ip(),
            remote_addr: remote.ip(),
            local_port: local.port(),
            remote_port: remote.port(),
        }
    }

    /// Our end.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_addr, self.local_port)
    }

    /// The peer's end.
    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_addr, self.remote_port)
    }

    /// Whether this is an IPv4 connection.
    pub fn is_ipv4(&self) -> bool {
        self.local_addr.is_ipv4()
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local(), self.remote())
    }
}
