//! AF_XDP for tern: one socket per NIC queue, each with its own UMEM and its four rings, behind a
//! small safe API. This is the only crate of the project with `unsafe` code; every block says
//! why it is sound in a `// SAFETY:` comment, and all of them rest on the invariant below.
//!
//! # Frame ownership
//!
//! The UMEM is cut into `frame_count` frames of `frame_size` bytes. **At every moment each frame
//! is owned by exactly one of: the free list, the fill ring, the kernel's RX path (driver,
//! XDP program, RX ring), the application (from [`XskSocket::rx_batch`] or
//! [`XskSocket::alloc_tx`] until [`XskSocket::send`] or [`XskSocket::recycle`]), the TX ring
//! (including the socket's TX batch and the kernel's TX path), or the completion ring.** Only its
//! owner reads or writes a frame's bytes.
//!
//! ```text
//!            refill                kernel RX              rx_batch / recv
//! free list ───────▶ fill ring ───────────────▶ RX ring ─────────────────▶ application
//!     ▲                                                                     │   │
//!     │ recycle / drop ◀────────────────────────────────────────────────────┘   │ send
//!     │                                                                         ▼
//!     └──────────── completion ring ◀──────── kernel TX ◀──────── TX ring ◀── TX batch
//!          reap (flush_tx)                                 flush_tx
//! ```
//!
//! How it is kept:
//! * A ledger (`pool::FramePool`) records each frame's owner as seen from user space (`Free`,
//!   `Fill` for fill ring + kernel RX path + RX ring, `App`, `Tx` for TX batch + TX ring + kernel
//!   TX path + completion ring), and every move is checked against it. A descriptor the kernel
//!   returns for a frame it did not hold is dropped and counted
//!   ([`XskCounters::bad_descs`]), never lent out, so even a misbehaving driver cannot make
//!   safe code alias a frame.
//! * The application's ownership is a [`Frame`] token: not `Clone`, made only when a frame
//!   moves to `App`, stamped with its socket, and consumed by `send` or `recycle`. A frame's bytes
//!   are reachable only by borrowing its token ([`XskSocket::data`] takes `&Frame`,
//!   [`XskSocket::frame_mut`] takes `&mut Frame`), so after a frame was sent or recycled there is
//!   nothing left to reach it with: using a frame after giving it back does not compile.
//! * [`LentFrame`] is the same token held inside a borrow of the socket, recycled on drop.
//!
//! What that rules out, checked by the compiler (each block below fails to compile):
//!
//! ```compile_fail,E0382
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let frame = xsk.alloc_tx().unwrap();
//! xsk.recycle(frame);
//! let _ = xsk.data(&frame); // use after recycle
//! # }
//! ```
//! ```compile_fail,E0505
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let frame = xsk.alloc_tx().unwrap();
//! let bytes = xsk.data(&frame);
//! xsk.send(frame); // the frame goes to the kernel while its bytes are still borrowed
//! println!("{}", bytes.len());
//! # }
//! ```
//! ```compile_fail,E0499
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let mut frame = xsk.alloc_tx().unwrap();
//! let a = xsk.frame_mut(&mut frame);
//! let b = xsk.frame_mut(&mut frame); // two writers of one frame
//! drop((a, b));
//! # }
//! ```
//! ```compile_fail
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let mut kept = None;
//! xsk.recv(1, |frame| kept = Some(frame)); // a lent frame outliving its loan
//! # }
//! ```
//! ```compile_fail,E0599
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let frame = xsk.alloc_tx().unwrap();
//! let copy = frame.clone(); // two tokens for one frame
//! # }
//! ```
//!
//! while the same steps in a legal order compile:
//!
//! ```
//! # fn f(xsk: &mut tern_xsk::XskSocket) {
//! let mut frame = xsk.alloc_tx().unwrap();
//! let mut bytes = xsk.frame_mut(&mut frame);
//! bytes.buf_mut()[..4].copy_from_slice(b"ping");
//! bytes.set_len(4);
//! drop(bytes);
//! assert_eq!(xsk.data(&frame), b"ping");
//! xsk.send(frame);
//! let mut kept = None;
//! xsk.recv(1, |frame| kept = Some(frame.into_frame())).unwrap();
//! if let Some(frame) = kept {
//!     xsk.recycle(frame);
//! }
//! # }
//! ```
//!
//! # A loop turn
//!
//! ```no_run
//! use std::time::Duration;
//! use tern_xsk::{XdpProgram, XskConfig, XskSocket};
//!
//! let config = XskConfig { program: XdpProgram::LibxdpDefault, ..XskConfig::default() };
//! let mut xsk = XskSocket::open("eth0", 0, &config)?;
//! loop {
//!     xsk.refill()?; // keep the fill ring full
//!     xsk.poll_wait(Duration::from_millis(10))?; // or spin, per the wakeup policy
//!     xsk.recv(64, |mut frame| {
//!         // Answer in place: swap the Ethernet addresses and send the frame back.
//!         let mut bytes = frame.frame_mut();
//!         if bytes.len() >= 12 {
//!             let (dst, src) = bytes.split_at_mut(6);
//!             dst.swap_with_slice(&mut src[..6]);
//!             drop(bytes);
//!             frame.send();
//!         } // otherwise dropped: recycled
//!     })?;
//!     xsk.flush_tx()?; // TX batch to the ring, kick if asked, reap completions
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Program loading
//!
//! [`XdpProgram::External`] (the daemon's mode) loads nothing: `tern-bpf` attaches `tern_steer`
//! and inserts [`XskSocket::fd`] into its XSKMAP. [`XdpProgram::LibxdpDefault`] lets libxdp attach
//! its default program, which sends the whole queue to the socket; it is detached when the last
//! socket on the interface closes.
//!
//! # Errors
//!
//! Setup failures are [`XskError`]s that name the interface, the queue and the step; the kernel
//! calls behind them go through one choke point (`sys`) and are [`SysError`]s carrying the call,
//! the errno and a sentence with the probable cause and the fix.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod config;
mod error;
mod pool;
mod socket;
mod sys;

pub use config::{BusyPoll, ConfigError, XdpProgram, XskConfig, ZeroCopy};
pub use error::XskError;
pub use socket::{
    BindMode, Frame, FrameCounts, FrameMut, LentFrame, XskCounters, XskSocket, XskStats,
    XDP_PACKET_HEADROOM,
};
pub use sys::SysError;

/// Sends libxdp's own messages (`libxdp: ...`: its dispatcher and bpffs warnings when it loads
/// its default program) to the `log` crate, target `libxdp`, instead of straight to stderr.
/// Process-wide (libxdp has one print hook): for binaries to call once at start.
pub fn log_libxdp_through_log() {
    sys::log_libxdp_through_log();
}
