//! `tern-tcp`: the sans-IO TCP engine of tern.
//!
//! The engine owns no clock, no I/O, no threads and no randomness: time arrives as an
//! [`Instant`] argument, packets as byte slices, secrets as a seed, and everything it wants
//! done — segments to transmit, the next timer deadline, application events — is returned to
//! the caller, the per-core worker (or the simulator, or a benchmark).
//!
//! A [`Shard`] is what one worker owns: connections, listeners with their SYN and accept
//! queues, compact TIME-WAIT entries, one [`TimerWheel`], buffer pools and [`Counters`].
//!
//! ```text
//!   on_packet(now, ip)   ─┐                         ┌─▶ poll_transmit(now, buf) -> IP packet
//!   on_timeout(now)      ─┼─▶ Shard ─ Tcb (input,  ─┼─▶ poll_timeout() -> next deadline
//!   connect/send/recv/…  ─┘          output, timers)└─▶ poll_event() -> Connected, Readable, …
//! ```
//!
//! Module map, after Linux's split: [`input`](crate::input) (segment arrival, RFC 9293
//! 3.10.7), [`output`](crate::output) (segment generation, 3.8), [`timers`](crate::timers)
//! (expiry), [`listen`] (LISTEN, SYN queue, accept queue), [`timewait`](crate::timewait),
//! [`rtt`] (RFC 6298), [`cc`] (RFC 5681/6582), [`isn`] (RFC 6528).
//!
//! Specifications: RFC 9293 (TCP), RFC 1122 (host requirements), RFC 6298 (RTO), RFC 7323
//! (window scale, timestamps, PAWS), RFC 2018 and RFC 2883 (SACK, D-SACK), RFC 5681 and
//! RFC 6582 (congestion control, NewReno), RFC 3042 (limited transmit), RFC 6928 (initial
//! window), RFC 5961 (blind in-window attacks), RFC 6528 (ISNs), RFC 6191 (TIME-WAIT reuse),
//! RFC 6093 (urgent data inline). `docs/rfc-compliance.md` maps each rule to its code.

#![forbid(unsafe_code)]

pub mod assembler;
pub mod buffer;
pub mod cc;
mod chunked;
pub mod config;
pub mod counters;
pub mod event;
mod input;
pub mod isn;
pub mod listen;
mod output;
pub mod pool;
pub mod rtt;
mod shard;
mod slab;
pub mod state;
pub mod syncookie;
mod tcb;
pub mod time;
pub mod timer;
mod timers;
mod timewait;
pub mod tuple;

pub use assembler::{Assembler, TooManyHoles};
pub use buffer::RingBuffer;
pub use config::{ConfigError, KeepaliveConfig, SyncookieMode, TcpConfig};
pub use counters::{Counters, DropReason};
pub use event::{CloseReason, ConnError, ConnHandle, Event};
pub use listen::{ListenConfig, ListenerId, ListenerInfo};
pub use pool::BufferPool;
pub use shard::{ConnInfo, PacketError, Shard};
pub use state::State;
pub use syncookie::{Cookie, CookieError, CookieOptions, SynCookies};
pub use tcb::{ConnOptions, Handshake};
pub use time::{Duration, Instant};
pub use timer::{StaleHandle, TimerHandle, TimerWheel};
pub use timers::retries_timeout;
pub use tuple::FourTuple;
