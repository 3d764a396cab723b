//! [`XskSocket`]: one AF_XDP socket bound to one queue, with its own UMEM and four rings.

use std::ffi::CString;
use std::fmt;
use std::num::NonZeroU32;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::umem::frame::DataMut;
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use crate::config::{ConfigError, XdpProgram, XskConfig, ZeroCopy};
use crate::error::XskError;
use crate::pool::{FramePool, Owner};
use crate::sys::{self, SysError};

/// Bytes the kernel reserves in front of every received packet (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: u32 = 256;
/// `XDP_PKT_CONTD`: more fragments follow (multi-buffer, which tern does not enable).
const XDP_PKT_CONTD: u32 = 1;

/// The bind mode in effect, as the kernel reports it (`getsockopt(XDP_OPTIONS)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The kernel copies packets between the driver's buffers and the UMEM.
    Copy,
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zero-copy",
        })
    }
}

/// The kernel's counters for one socket (`getsockopt(SOL_XDP, XDP_STATISTICS)`), named as in
/// `struct xdp_statistics`. The last three need Linux 5.9 and read 0 before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Packets dropped for reasons other than the ones below.
    pub rx_dropped: u64,
    /// Packets dropped because of an invalid fill-ring descriptor.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel refused (bad address or length).
    pub tx_invalid_descs: u64,
    /// Packets dropped because the RX ring was full: the worker is too slow.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty: the worker does not refill fast enough.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty when woken.
    pub tx_ring_empty_descs: u64,
}

/// User-space counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskCounters {
    /// Packets taken off the RX ring and lent to the application.
    pub rx_packets: u64,
    /// Packets put on the TX ring.
    pub tx_packets: u64,
    /// Transmitted frames the completion ring gave back.
    pub tx_completed: u64,
    /// `sendto` kicks: the kernel asked for one (need_wakeup), or copy mode needs one to send.
    pub tx_kicks: u64,
    /// `recvfrom` kicks: the kernel asked for one, or a busy-poll round.
    pub rx_kicks: u64,
    /// Descriptors from the kernel naming a frame it did not hold (or with a length past the
    /// frame's end); they are dropped, never lent out. Non-zero means a kernel or driver bug.
    pub bad_descs: u64,
}

/// Where the UMEM's frames are; the four always add up to the frame count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// On the free list.
    pub free: u32,
    /// Lent to the kernel for receiving (fill ring, kernel RX path, RX ring).
    pub fill: u32,
    /// Held by the application ([`Frame`]s alive).
    pub app: u32,
    /// Queued for or in transmission (TX batch, TX ring, kernel, completion ring).
    pub tx: u32,
}

/// A frame the application holds: the only handle to its bytes.
///
/// A `Frame` is neither `Clone` nor `Copy`, and only its socket creates one (when it takes a
/// frame off the RX ring or the free list), so it is a proof of ownership: its bytes are read
/// with [`XskSocket::data`], written with [`XskSocket::frame_mut`], and it leaves the
/// application through [`XskSocket::send`] or [`XskSocket::recycle`], which consume it. A frame
/// dropped instead is not unsafe but is lost to the socket until it closes.
#[must_use = "a dropped Frame is lost to its socket: send or recycle it"]
#[derive(Debug)]
pub struct Frame {
    desc: FrameDesc,
    len: u32,
    idx: u32,
    socket: u64,
}

impl Frame {
    /// Packet length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the packet is empty (a fresh TX frame).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's index in its UMEM (for logs and tests).
    pub fn index(&self) -> u32 {
        self.idx
    }
}

/// Write access to one frame, from [`XskSocket::frame_mut`].
///
/// Derefs to the packet (`len` bytes); [`buf_mut`](Self::buf_mut) gives the whole buffer to
/// build a packet in, and [`set_len`](Self::set_len) says how long the packet is.
pub struct FrameMut<'a> {
    data: DataMut<'a>,
    len: &'a mut u32,
}

impl FrameMut<'_> {
    /// Packet length.
    pub fn len(&self) -> usize {
        *self.len as usize
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        *self.len == 0
    }

    /// Bytes the frame can hold from the packet's start.
    pub fn capacity(&self) -> usize {
        self.data.contents().len()
    }

    /// The whole buffer from the packet's start, `capacity()` bytes.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        self.data.contents_mut()
    }

    /// Sets the packet length (what [`XskSocket::send`] transmits).
    ///
    /// # Panics
    /// If `len` is more than [`capacity`](Self::capacity).
    pub fn set_len(&mut self, len: usize) {
        let cap = self.capacity();
        assert!(
            len <= cap,
            "frame length {len} exceeds the frame's capacity {cap}"
        );
        *self.len = len as u32;
    }
}

impl Deref for FrameMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data.contents()[..*self.len as usize]
    }
}

impl DerefMut for FrameMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = *self.len as usize;
        &mut self.data.contents_mut()[..len]
    }
}

impl fmt::Debug for FrameMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameMut")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// A frame lent for as long as it borrows the socket: from [`XskSocket::recv`] (a received
/// packet) or [`XskSocket::tx_frame`] (an empty frame to build a packet in).
///
/// Dropping it recycles the frame; [`send`](Self::send) transmits it (an RX frame is thereby
/// answered in place, without a copy); [`into_frame`](Self::into_frame) keeps it as a [`Frame`].
pub struct LentFrame<'a> {
    xsk: &'a mut XskSocket,
    frame: Option<Frame>,
}

impl LentFrame<'_> {
    fn frame(&self) -> &Frame {
        self.frame
            .as_ref()
            .expect("a LentFrame holds its frame until consumed")
    }

    /// The packet.
    pub fn data(&self) -> &[u8] {
        self.xsk.data(self.frame())
    }

    /// Write access to the frame.
    pub fn frame_mut(&mut self) -> FrameMut<'_> {
        let frame = self
            .frame
            .as_mut()
            .expect("a LentFrame holds its frame until consumed");
        self.xsk.frame_mut(frame)
    }

    /// Packet length.
    pub fn len(&self) -> usize {
        self.frame().len()
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.frame().is_empty()
    }

    /// Queues the frame for transmission with its current length; it goes out at the next
    /// [`XskSocket::flush_tx`].
    pub fn send(mut self) {
        if let Some(frame) = self.frame.take() {
            self.xsk.send(frame);
        }
    }

    /// Keeps the frame beyond this borrow; give it back with [`XskSocket::send`] or
    /// [`XskSocket::recycle`].
    pub fn into_frame(mut self) -> Frame {
        self.frame
            .take()
            .expect("a LentFrame holds its frame until consumed")
    }
}

impl Drop for LentFrame<'_> {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            self.xsk.recycle(frame);
        }
    }
}

impl fmt::Debug for LentFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LentFrame")
            .field("frame", &self.frame)
            .finish()
    }
}

/// One AF_XDP socket bound to one queue of one interface, with its own UMEM, fill, completion,
/// RX and TX rings. See the crate docs for the loop it is meant for and the frame-ownership
/// invariant it keeps.
pub struct XskSocket {
    // The rings hold the socket and the UMEM alive (xsk-rs reference-counts them); declared
    // first so they are dropped first.
    tx: TxQueue,
    rx: RxQueue,
    fill: FillQueue,
    comp: CompQueue,
    umem: Umem,
    fd: RawFd,
    /// Unique per socket in the process; stamped on every [`Frame`] it lends.
    id: u64,
    ifname: String,
    queue_id: u32,
    bind_mode: BindMode,
    config: XskConfig,
    frame_shift: u32,
    pool: FramePool,
    /// The descriptor of each frame as the UMEM was created: packet at the frame's start plus
    /// `XDP_PACKET_HEADROOM`, length 0. What goes on the fill ring and what TX frames start as.
    descs: Box<[FrameDesc]>,
    /// Room for one ring's worth of descriptors, for ring transfers.
    scratch: Box<[FrameDesc]>,
    /// Frames sent but not yet on the TX ring (owner `Tx`).
    tx_pending: Vec<FrameDesc>,
    /// Reused by [`recv`](Self::recv).
    rx_frames: Vec<Frame>,
    counters: XskCounters,
}

impl fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskSocket")
            .field("ifname", &self.ifname)
            .field("queue_id", &self.queue_id)
            .field("fd", &self.fd)
            .field("bind_mode", &self.bind_mode)
            .field("program", &self.config.program)
            .field("frames", &self.pool)
            .field("counters", &self.counters)
            .finish()
    }
}

/// What binding produced, before it becomes an [`XskSocket`].
struct Bound {
    /// Whether it was bound with `XDP_ZEROCOPY`.
    zero_copy: bool,
    umem: Umem,
    descs: Vec<FrameDesc>,
    tx: TxQueue,
    rx: RxQueue,
    fill: FillQueue,
    comp: CompQueue,
}

/// A failed bind attempt: the step and the call.
struct BindFailure {
    step: String,
    source: SysError,
}

impl XskSocket {
    /// Creates the UMEM, the socket and its rings, and binds it to `queue_id` of `ifname` (in
    /// the calling thread's network namespace).
    ///
    /// With [`ZeroCopy::Auto`] a failed zero-copy bind is logged and retried in copy mode on a
    /// fresh UMEM; [`bind_mode`](Self::bind_mode) says which mode is in effect. With
    /// [`XdpProgram::External`] nothing redirects packets to the socket until the caller puts
    /// [`fd`](Self::fd) into its XSKMAP.
    pub fn open(ifname: &str, queue_id: u32, config: &XskConfig) -> Result<XskSocket, XskError> {
        config.validate()?;
        let c_ifname = interface_name(ifname)?;
        let ifindex =
            sys::if_nametoindex(&c_ifname).map_err(|source| XskError::NoSuchInterface {
                ifname: ifname.to_owned(),
                source,
            })?;
        let queues = queue_counts(ifname, ifindex);
        if let Some((rx, tx)) = queues {
            let queue_count = rx.min(tx);
            if queue_id >= queue_count {
                return Err(XskError::QueueOutOfRange {
                    ifname: ifname.to_owned(),
                    queue_id,
                    queue_count,
                    rx,
                    tx,
                });
            }
        }
        let iface = Interface::new(c_ifname);
        let setup_error = |f: BindFailure| XskError::Setup {
            ifname: ifname.to_owned(),
            queue_id,
            step: f.step,
            source: f.source,
        };
        let zero_copy_error = |f: BindFailure| {
            if matches!(f.source.errno(), libc::EOPNOTSUPP | sys::ENOTSUPP) {
                XskError::ZeroCopyUnsupported {
                    ifname: ifname.to_owned(),
                    queue_id,
                    driver: sys::ethtool_driver(ifname).unwrap_or_else(|_| "unknown".into()),
                    source: f.source,
                }
            } else {
                setup_error(f)
            }
        };
        let bind = |zero_copy| bind_patiently(&iface, queue_id, config, zero_copy);
        let bound = match config.zero_copy {
            ZeroCopy::Off => bind(false).map_err(setup_error)?,
            ZeroCopy::Required => bind(true).map_err(zero_copy_error)?,
            ZeroCopy::Auto => match bind(true) {
                Ok(bound) => bound,
                // What a driver without zero-copy answers; anything else (a busy queue, missing
                // privileges) would fail in copy mode too and is reported as it is.
                Err(f)
                    if !matches!(
                        f.source.errno(),
                        libc::EOPNOTSUPP | sys::ENOTSUPP | libc::EINVAL
                    ) =>
                {
                    return Err(setup_error(f))
                }
                Err(f) => {
                    let driver = sys::ethtool_driver(ifname).unwrap_or_else(|_| "unknown".into());
                    log::info!(
                        "{ifname} queue {queue_id}: AF_XDP zero-copy not available with the \
                         {driver} driver ({}: {}); falling back to copy mode",
                        f.step,
                        f.source
                    );
                    bind(false).map_err(setup_error)?
                }
            },
        };
        let fd = bound.rx.fd().as_raw_fd();
        let bind_mode = match sys::xdp_zero_copy(fd) {
            Ok(true) => BindMode::ZeroCopy,
            Ok(false) => BindMode::Copy,
            Err(e) => {
                log::debug!("{ifname} queue {queue_id}: {e}; assuming the requested bind mode");
                if bound.zero_copy {
                    BindMode::ZeroCopy
                } else {
                    BindMode::Copy
                }
            }
        };
        if let Some(bp) = config.busy_poll {
            sys::set_busy_poll(fd, bp.usecs, bp.budget).map_err(|source| XskError::Setup {
                ifname: ifname.to_owned(),
                queue_id,
                step: format!(
                    "turning on busy polling (usecs {}, budget {})",
                    bp.usecs, bp.budget
                ),
                source,
            })?;
        }
        log::debug!(
            "{ifname} queue {queue_id}: AF_XDP socket fd {fd} bound in {bind_mode} mode, \
             {} frames of {} bytes, program {:?}",
            config.frame_count,
            config.frame_size,
            config.program
        );

        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let ring_max = [
            config.fill_ring,
            config.completion_ring,
            config.rx_ring,
            config.tx_ring,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as usize;
        Ok(XskSocket {
            tx: bound.tx,
            rx: bound.rx,
            fill: bound.fill,
            comp: bound.comp,
            umem: bound.umem,
            fd,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ifname: ifname.to_owned(),
            queue_id,
            bind_mode,
            config: *config,
            frame_shift: config.frame_size.trailing_zeros(),
            pool: FramePool::new(config.frame_count),
            descs: bound.descs.into_boxed_slice(),
            scratch: vec![FrameDesc::default(); ring_max].into_boxed_slice(),
            tx_pending: Vec::with_capacity(config.frame_count as usize),
            rx_frames: Vec::with_capacity(config.rx_ring as usize),
            counters: XskCounters::default(),
        })
    }

    /// The socket's file descriptor: what goes into the XSKMAP at index
    /// [`queue_id`](Self::queue_id) in [`XdpProgram::External`] mode.
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `self.fd` is the descriptor of the xsk-rs `Socket` this value owns (through its
        // rings), which stays open until this value is dropped, and the `BorrowedFd` cannot
        // outlive `&self`.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// The bind mode in effect.
    pub fn bind_mode(&self) -> BindMode {
        self.bind_mode
    }

    /// The interface the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The queue the socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The configuration the socket was opened with.
    pub fn config(&self) -> &XskConfig {
        &self.config
    }

    /// User-space counters.
    pub fn counters(&self) -> XskCounters {
        self.counters
    }

    /// Where the frames are now.
    pub fn frame_counts(&self) -> FrameCounts {
        let counts = FrameCounts {
            free: self.pool.count(Owner::Free),
            fill: self.pool.count(Owner::Fill),
            app: self.pool.count(Owner::App),
            tx: self.pool.count(Owner::Tx),
        };
        debug_assert_eq!(
            counts.free + counts.fill + counts.app + counts.tx,
            self.pool.len()
        );
        counts
    }

    /// The kernel's counters for this socket.
    pub fn statistics(&self) -> Result<XskStats, SysError> {
        sys::xdp_statistics(self.fd)
    }

    /// Moves free frames onto the fill ring until it is full or the free list is empty, and
    /// wakes the driver if it asked for it. Call once per loop turn, before waiting.
    pub fn refill(&mut self) -> Result<usize, SysError> {
        let free = self.pool.count(Owner::Free) as usize;
        if free == 0 {
            return Ok(0);
        }
        // Asking for the ring size makes libxdp re-read the consumer index when its cached
        // view is short of a full ring, so `room` is exact enough to fill the ring.
        let room = self.fill.nb_free(self.config.fill_ring) as usize;
        let n = free.min(room).min(self.scratch.len());
        if n == 0 {
            return Ok(0);
        }
        for slot in &mut self.scratch[..n] {
            let idx = self
                .pool
                .take_free(Owner::Fill)
                .expect("the free list holds `free` frames");
            *slot = self.descs[idx as usize];
        }
        // SAFETY: the `n` descriptors were created by this UMEM (`self.descs`) and name frames the
        // ledger has just moved from the free list to `Fill`: no `Frame`, borrow or other ring
        // refers to them, so the kernel may write them until the RX ring returns them.
        let produced = unsafe { self.fill.produce(&self.scratch[..n]) };
        // `produce` is all or nothing; on a short ring the frames go back to the free list.
        for desc in &self.scratch[produced..n] {
            let idx = self.frame_index(desc.addr());
            self.pool
                .give_back(idx, Owner::Fill)
                .expect("frame just moved to Fill");
        }
        if produced > 0 && self.fill.needs_wakeup() {
            self.counters.rx_kicks += 1;
            sys::kick_rx(self.fd)?;
        }
        Ok(produced)
    }

    /// Takes up to `max` received packets off the RX ring and appends them to `out`; returns how
    /// many. When the ring is empty it kicks the kernel if the driver asked for it or busy
    /// polling is on.
    pub fn rx_batch(&mut self, out: &mut Vec<Frame>, max: usize) -> Result<usize, SysError> {
        let k = max.min(self.scratch.len());
        if k == 0 {
            return Ok(0);
        }
        // SAFETY: `consume` only overwrites the descriptors in `scratch` with what the kernel put
        // on the RX ring of this socket, whose UMEM is `self.umem`; no frame memory is touched,
        // and each descriptor is checked against the ledger below before its frame is lent out.
        let n = unsafe { self.rx.consume(&mut self.scratch[..k]) };
        if n == 0 {
            // Linux samples/bpf xdpsock: kick when busy polling or when the driver sleeps.
            if self.config.busy_poll.is_some() || self.fill.needs_wakeup() {
                self.counters.rx_kicks += 1;
                sys::kick_rx(self.fd)?;
            }
            return Ok(0);
        }
        let mut lent = 0;
        for i in 0..n {
            let desc = self.scratch[i];
            match self.accept_rx(desc) {
                Some(frame) => {
                    out.push(frame);
                    lent += 1;
                }
                None => self.counters.bad_descs += 1,
            }
        }
        self.counters.rx_packets += lent as u64;
        Ok(lent)
    }

    /// Checks a descriptor from the RX ring and, if it names a frame the kernel held with a
    /// packet inside the frame, lends it out.
    fn accept_rx(&mut self, desc: FrameDesc) -> Option<Frame> {
        let addr = desc.addr();
        let idx = u32::try_from(addr >> self.frame_shift).ok()?;
        let start = (idx as usize) << self.frame_shift;
        let capacity = (start + self.config.frame_size as usize).checked_sub(addr)?;
        let len = desc.lengths().data();
        if self.pool.owner(idx) != Some(Owner::Fill) {
            return None;
        }
        if len > capacity || desc.options() & XDP_PKT_CONTD != 0 {
            // A frame of ours with a packet we cannot lend: straight back to the free list.
            let _ = self.pool.give_back(idx, Owner::Fill);
            return None;
        }
        self.pool.hand_over(idx, Owner::Fill, Owner::App).ok()?;
        Some(Frame {
            desc,
            len: len as u32,
            idx,
            socket: self.id,
        })
    }

    /// Calls `f` with each of up to `max` received packets; a packet `f` neither sends nor keeps
    /// is recycled when `f` returns. Returns how many packets there were.
    pub fn recv(
        &mut self,
        max: usize,
        mut f: impl FnMut(LentFrame<'_>),
    ) -> Result<usize, SysError> {
        let mut batch = std::mem::take(&mut self.rx_frames);
        let got = self.rx_batch(&mut batch, max);
        for frame in batch.drain(..) {
            f(LentFrame {
                xsk: self,
                frame: Some(frame),
            });
        }
        self.rx_frames = batch;
        got
    }

    /// The packet in `frame`.
    ///
    /// # Panics
    /// If `frame` was lent by another socket.
    pub fn data<'a>(&'a self, frame: &'a Frame) -> &'a [u8] {
        self.check_frame(frame);
        // SAFETY: `frame` is the one token for frame `frame.idx` (tokens are not Clone and are
        // made only when the ledger moves a frame to `App`; `check_frame` proved it is ours), so
        // the ledger has it as `App`: not on any ring, hence not touched by the kernel. It is
        // borrowed shared for 'a, so no `FrameMut` of it exists meanwhile. Its descriptor came
        // from this UMEM with `len <= desc length <= the bytes left in the frame` (checked in
        // `accept_rx`, kept by `frame_mut` and `send`).
        let data = unsafe { self.umem.data(&frame.desc) };
        &data.contents()[..frame.len as usize]
    }

    /// Write access to `frame`.
    ///
    /// # Panics
    /// If `frame` was lent by another socket.
    pub fn frame_mut<'a>(&'a self, frame: &'a mut Frame) -> FrameMut<'a> {
        self.check_frame(frame);
        let Frame { desc, len, .. } = frame;
        // SAFETY: as in `data`, the frame is owned by the application through `frame`, and
        // `frame` is borrowed exclusively for 'a: this is the only access to its bytes, from user
        // space or the kernel, for as long as the `FrameMut` lives.
        let mut data = unsafe { self.umem.data_mut(desc) };
        let mut cursor = data.cursor();
        let capacity = cursor.buf_len();
        cursor.set_pos(capacity);
        FrameMut { data, len }
    }

    /// A free frame to build a packet in, `None` when every frame is in use.
    pub fn alloc_tx(&mut self) -> Option<Frame> {
        if self.pool.count(Owner::Free) == 0 {
            self.reap_completions();
        }
        let idx = self.pool.take_free(Owner::App)?;
        Some(Frame {
            desc: self.descs[idx as usize],
            len: 0,
            idx,
            socket: self.id,
        })
    }

    /// [`alloc_tx`](Self::alloc_tx) as a [`LentFrame`], recycled if dropped unsent.
    pub fn tx_frame(&mut self) -> Option<LentFrame<'_>> {
        let frame = self.alloc_tx()?;
        Some(LentFrame {
            xsk: self,
            frame: Some(frame),
        })
    }

    /// Queues `frame` for transmission with its current length (an RX frame is answered in
    /// place this way). Frames go on the TX ring in batches at [`flush_tx`](Self::flush_tx).
    /// An empty frame has nothing to send and is recycled.
    ///
    /// # Panics
    /// If `frame` was lent by another socket.
    pub fn send(&mut self, mut frame: Frame) {
        self.check_frame(&frame);
        if frame.is_empty() {
            return self.recycle(frame);
        }
        // SAFETY: as in `frame_mut`; `frame` is owned here, so nothing else can reach the frame.
        unsafe { self.umem.data_mut(&mut frame.desc) }
            .cursor()
            .set_pos(frame.len as usize);
        frame.desc.set_options(0);
        self.pool
            .hand_over(frame.idx, Owner::App, Owner::Tx)
            .expect("a live Frame is owned by the application");
        self.tx_pending.push(frame.desc);
    }

    /// Gives `frame` back to the free list.
    ///
    /// # Panics
    /// If `frame` was lent by another socket.
    pub fn recycle(&mut self, frame: Frame) {
        self.check_frame(&frame);
        self.pool
            .give_back(frame.idx, Owner::App)
            .expect("a live Frame is owned by the application");
    }

    /// Puts the queued frames on the TX ring (as many as fit), kicks the kernel if it asked for
    /// it (always in copy mode, where the kick is what transmits), and reaps the completion
    /// ring. Returns how many frames went on the ring. Call once per loop turn.
    pub fn flush_tx(&mut self) -> Result<usize, SysError> {
        self.reap_completions();
        let mut submitted = 0;
        if !self.tx_pending.is_empty() {
            let room = self.tx.nb_free(self.config.tx_ring) as usize;
            let n = room.min(self.tx_pending.len());
            if n > 0 {
                // SAFETY: each pending descriptor names a frame of this UMEM that `send` moved to
                // `Tx`, consuming its only token, with a length inside the frame: nothing in user
                // space can reach it, so the kernel may read it until the completion ring gives
                // it back.
                submitted = unsafe { self.tx.produce(&self.tx_pending[..n]) };
                self.tx_pending.drain(..submitted);
                self.counters.tx_packets += submitted as u64;
            }
        }
        let on_ring = self.config.tx_ring.saturating_sub(self.tx.nb_free_exact());
        // Linux samples/bpf xdpsock `kick_tx`/`complete_tx_l2fwd`: kick only when asked to.
        let asked =
            !self.config.need_wakeup || self.config.busy_poll.is_some() || self.tx.needs_wakeup();
        if on_ring > 0 && asked {
            self.counters.tx_kicks += 1;
            sys::kick_tx(self.fd)?;
            // Copy mode transmits inside the kick, so completions are usually ready now.
            self.reap_completions();
        }
        Ok(submitted)
    }

    /// Moves transmitted frames from the completion ring to the free list.
    fn reap_completions(&mut self) -> usize {
        let k = (self.config.completion_ring as usize).min(self.scratch.len());
        // SAFETY: `consume` only overwrites the descriptors in `scratch` with addresses from this
        // socket's completion ring; each is checked against the ledger before the frame is
        // freed, and no frame memory is touched.
        let n = unsafe { self.comp.consume(&mut self.scratch[..k]) };
        for i in 0..n {
            let idx = self.frame_index(self.scratch[i].addr());
            if self.pool.give_back(idx, Owner::Tx).is_err() {
                self.counters.bad_descs += 1;
            }
        }
        self.counters.tx_completed += n as u64;
        n
    }

    /// Waits up to `timeout` for packets on the RX ring (`poll(2)`); `Ok(true)` if there are.
    /// Call [`refill`](Self::refill) and [`flush_tx`](Self::flush_tx) first: with need_wakeup
    /// the poll is also what wakes a sleeping driver.
    pub fn poll_wait(&mut self, timeout: Duration) -> Result<bool, SysError> {
        let mut ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        if ms == 0 && !timeout.is_zero() {
            ms = 1;
        }
        sys::poll_readable(self.fd, ms)
    }

    fn frame_index(&self, addr: usize) -> u32 {
        u32::try_from(addr >> self.frame_shift).unwrap_or(u32::MAX)
    }

    fn check_frame(&self, frame: &Frame) {
        assert!(
            frame.socket == self.id,
            "tern-xsk: a Frame of another XskSocket was passed to {} queue {}",
            self.ifname,
            self.queue_id
        );
        debug_assert_eq!(self.pool.owner(frame.idx), Some(Owner::App));
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// Checks `name` is a possible Linux interface name and makes it a C string.
fn interface_name(name: &str) -> Result<CString, XskError> {
    let bad = |reason| XskError::BadInterfaceName {
        ifname: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 15 {
        return Err(bad("Linux interface names are 1 to 15 bytes long"));
    }
    if name.bytes().any(|b| b == b'/' || b.is_ascii_whitespace()) || name == "." || name == ".." {
        return Err(bad("Linux interface names contain no '/' or whitespace"));
    }
    CString::new(name).map_err(|_| bad("the name contains a NUL byte"))
}

/// RX and TX queue counts of `ifname`: from `ethtool -l` (the calling thread's namespace), else
/// from sysfs if its `/sys/class/net` shows the same interface (a thread that entered another
/// namespace with setns(2) still sees the sysfs of the one it came from). `None` if unknown.
fn queue_counts(ifname: &str, ifindex: u32) -> Option<(u32, u32)> {
    if let Ok(ch) = sys::ethtool_channels(ifname) {
        let rx = ch.combined_count + ch.rx_count;
        let tx = ch.combined_count + ch.tx_count;
        if rx > 0 && tx > 0 {
            return Some((rx, tx));
        }
    }
    let dir = std::path::Path::new("/sys/class/net").join(ifname);
    let sysfs_index: u32 = std::fs::read_to_string(dir.join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if sysfs_index != ifindex {
        return None;
    }
    let (mut rx, mut tx) = (0, 0);
    for entry in std::fs::read_dir(dir.join("queues")).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("rx-") {
            rx += 1;
        } else if name.starts_with("tx-") {
            tx += 1;
        }
    }
    (rx > 0 && tx > 0).then_some((rx, tx))
}

/// The errno behind an xsk-rs error (EIO when it has none, e.g. a null ring).
fn errno_of(e: &dyn std::error::Error) -> i32 {
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .unwrap_or(libc::EIO)
}

fn layout_error(e: impl fmt::Display) -> BindFailure {
    // `validate` has already checked everything xsk-rs checks; this is only reachable if the two
    // disagree.
    BindFailure {
        step: format!(
            "building the UMEM layout ({})",
            ConfigError {
                key: "frame_size",
                value: e.to_string(),
                allowed: "see XskConfig".into()
            }
        ),
        source: SysError::new("xsk-rs UmemConfig", libc::EINVAL),
    }
}

/// How long [`bind_patiently`] retries a bind that failed with `EBUSY`.
const BUSY_PATIENCE: Duration = Duration::from_secs(1);

/// [`bind`], retrying for up to [`BUSY_PATIENCE`] while the queue is busy: when a socket on the
/// queue has just closed, the kernel releases the queue asynchronously (the buffer pool is
/// released from a work queue, after an RCU grace period), so an immediate rebind, like a
/// daemon restart, sees `EBUSY` for a few milliseconds.
fn bind_patiently(
    iface: &Interface,
    queue_id: u32,
    config: &XskConfig,
    zero_copy: bool,
) -> Result<Bound, BindFailure> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match bind(iface, queue_id, config, zero_copy) {
            Err(f) if f.source.errno() == libc::EBUSY && start.elapsed() < BUSY_PATIENCE => {
                log::debug!(
                    "queue {queue_id} busy ({}); retrying in {pause:?}",
                    f.source
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

/// Creates a UMEM and a socket on it, bound with or without `XDP_ZEROCOPY`.
fn bind(
    iface: &Interface,
    queue_id: u32,
    config: &XskConfig,
    zero_copy: bool,
) -> Result<Bound, BindFailure> {
    let umem_config = UmemConfig::builder()
        .frame_size(FrameSize::new(config.frame_size).map_err(layout_error)?)
        .fill_queue_size(QueueSize::new(config.fill_ring).map_err(layout_error)?)
        .comp_queue_size(QueueSize::new(config.completion_ring).map_err(layout_error)?)
        .frame_headroom(0)
        .build()
        .map_err(layout_error)?;
    let frame_count =
        NonZeroU32::new(config.frame_count).ok_or_else(|| layout_error("0 frames"))?;
    let (umem, descs) = Umem::new(umem_config, frame_count, config.huge_pages).map_err(|e| {
        let mmap = e.to_string().contains("mmap");
        BindFailure {
            step: format!(
                "{} the UMEM ({} frames of {} bytes = {} bytes)",
                if mmap { "allocating" } else { "registering" },
                config.frame_count,
                config.frame_size,
                config.umem_bytes()
            ),
            source: SysError::new(
                if mmap {
                    "mmap(UMEM)"
                } else {
                    "xsk_umem__create"
                },
                errno_of(&e),
            ),
        }
    })?;

    let mut bind_flags = if zero_copy {
        BindFlags::XDP_ZEROCOPY
    } else {
        BindFlags::XDP_COPY
    };
    if config.need_wakeup {
        bind_flags |= BindFlags::XDP_USE_NEED_WAKEUP;
    }
    let libxdp_flags = match config.program {
        XdpProgram::External => LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD,
        XdpProgram::LibxdpDefault => LibxdpFlags::empty(),
    };
    let socket_config = SocketConfig::builder()
        .rx_queue_size(QueueSize::new(config.rx_ring).map_err(layout_error)?)
        .tx_queue_size(QueueSize::new(config.tx_ring).map_err(layout_error)?)
        .libxdp_flags(libxdp_flags)
        // No mode flag: libxdp attaches its program in native mode where the driver has it and
        // in generic (skb) mode otherwise.
        .xdp_flags(XdpFlags::empty())
        .bind_flags(bind_flags)
        .build();
    let call = match (zero_copy, config.program) {
        (true, XdpProgram::External) => "xsk_socket__create (bind XDP_ZEROCOPY)",
        (false, XdpProgram::External) => "xsk_socket__create (bind XDP_COPY)",
        (true, XdpProgram::LibxdpDefault) => {
            "xsk_socket__create (bind XDP_ZEROCOPY, attach libxdp's program)"
        }
        (false, XdpProgram::LibxdpDefault) => {
            "xsk_socket__create (bind XDP_COPY, attach libxdp's program)"
        }
    };
    let step = || {
        format!(
            "creating the socket and binding it in {} mode",
            if zero_copy { "zero-copy" } else { "copy" }
        )
    };
    // SAFETY: `Socket::new`'s contract concerns a UMEM shared with another socket on the same
    // interface and queue; this UMEM was created just above and no other socket uses it.
    let (tx, rx, rings) =
        unsafe { Socket::new(socket_config, &umem, iface, queue_id) }.map_err(|e| BindFailure {
            step: step(),
            source: SysError::new(call, errno_of(&e)),
        })?;
    // A UMEM's first socket always gets the fill and completion rings.
    let (fill, comp) = rings.ok_or_else(|| BindFailure {
        step: step(),
        source: SysError::new(call, libc::EIO),
    })?;
    Ok(Bound {
        zero_copy,
        umem,
        descs,
        tx,
        rx,
        fill,
        comp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_send() {
        fn send<T: Send>() {}
        send::<XskSocket>();
        send::<Frame>();
    }

    #[test]
    fn interface_names_are_checked_before_the_kernel_sees_them() {
        for bad in ["", "sixteen-chars-xx", "a/b", "a b", "nul\0"] {
            let e = XskSocket::open(bad, 0, &XskConfig::default()).unwrap_err();
            assert!(
                matches!(e, XskError::BadInterfaceName { .. }),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn config_is_validated_first() {
        let config = XskConfig {
            rx_ring: 1000,
            ..XskConfig::default()
        };
        let e = XskSocket::open("lo", 0, &config).unwrap_err();
        assert!(e.to_string().contains("`rx_ring` = 1000"), "{e}");
    }

    #[test]
    fn a_missing_interface_is_named() {
        let e = XskSocket::open("tern-nosuch0", 0, &XskConfig::default()).unwrap_err();
        assert!(matches!(e, XskError::NoSuchInterface { .. }), "{e}");
        let s = e.to_string();
        assert!(s.contains("tern-nosuch0") && s.contains("ENODEV"), "{s}");
        assert!(
            s.contains("no such interface in this network namespace"),
            "{s}"
        );
    }
}
