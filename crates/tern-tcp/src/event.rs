//! What the engine tells the application: connection handles and events.

use core::fmt;

/// A connection, as the application holds it. A handle outlives its connection safely: once the
/// connection is gone every call with it fails with [`ConnError::InvalidHandle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnHandle {
    /// A small number unique among the shard's live connections (reused after a connection
    /// is gone), for applications that keep per-connection tables in a `Vec`.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Display for ConnHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both sides closed: FINs exchanged and acknowledged.
    Normal,
    /// The peer sent an acceptable RST.
    Reset,
    /// The peer answered our SYN with a RST (nothing listens there).
    Refused,
    /// Retransmissions, keepalive probes or the user timeout went unanswered.
    TimedOut,
    /// The application aborted it, or closed it with unread data (a RST was sent).
    Aborted,
}

/// Something the application should react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An active open completed: the connection is ESTABLISHED.
    Connected(ConnHandle),
    /// A listener's accept queue went from empty to non-empty: call `accept` until it
    /// returns `None`.
    Acceptable(crate::listen::ListenerId),
    /// Data arrived where there was none to read.
    Readable(ConnHandle),
    /// Send-buffer space freed after a `send` found it full.
    Writable(ConnHandle),
    /// The peer closed its sending side (its FIN arrived, in order). Reads return the rest of
    /// the data, then end-of-stream.
    PeerClosed(ConnHandle),
    /// Retransmissions passed `retries1`: the path may be broken (RFC 1122 4.2.3.5 R1).
    DeliveryProblem(ConnHandle),
    /// The connection is over on the wire. Data that arrived before the end can still be
    /// read: the handle stays valid until `recv` has returned that data and then end-of-stream
    /// (`Ok(0)`), or until `close`/`abort`; with nothing left to read it is invalid at once.
    Closed(ConnHandle, CloseReason),
}

/// Why a connection call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnError {
    /// The connection no longer exists (closed, reset, or never was).
    InvalidHandle,
    /// No data to read now (reads), or no room in the send buffer (sends).
    WouldBlock,
    /// Sending after `shutdown`/`close`, or in a state that cannot send.
    NotWritable,
    /// No send buffer could be lent: the shard's buffer pool is exhausted.
    NoBuffers,
    /// The 4-tuple is already in use.
    AddrInUse,
    /// Local and remote addresses are of different families, or unusable.
    InvalidAddress,
    /// An option value out of range: keepalive and user-timeout times must fit 32 bits of
    /// milliseconds (about 49 days) and the probe count 255.
    InvalidOption,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnError::InvalidHandle => "the connection no longer exists",
            ConnError::WouldBlock => "the operation would block",
            ConnError::NotWritable => "the connection's sending side is closed",
            ConnError::NoBuffers => {
                "no send buffer available: the shard's buffer pool is exhausted (raise max_buffers)"
            }
            ConnError::AddrInUse => "the 4-tuple is already in use",
            ConnError::InvalidAddress => {
                "local and remote addresses must be of the same family and not unspecified"
            }
            ConnError::InvalidOption => {
                "option out of range: keepalive and user-timeout times must be under 49 days, keepalive probes at most 255"
            }
        })
    }
}

impl std::error::Error for ConnError {}
