//! tern-bench: load generators and reference servers for measuring tern against the Linux
//! kernel in the veth lab (or on real NICs).
//!
//! Subcommands of the `tern-bench` binary, each in its module:
//!
//! * [`serve`]: the kernel reference server (SO_REUSEPORT listeners, epoll, echo / http /
//!   discard);
//! * [`connect`]: legitimate clients, open loop ([`sched`]), latencies in HdrHistograms
//!   ([`hist`]), failures by reason;
//! * [`churn`]: connection churn from an AF_XDP client (handshake, echo, close) for
//!   connections per second, where kernel-socket clients would run out of CPU first;
//! * [`flood`]: SYN / ACK floods through AF_XDP or built in the kernel in live-frames mode, from
//!   prebuilt templates with incremental checksums ([`frames`]);
//! * [`reflect`]: the raw AF_XDP reflect path on the server side, the ceiling to compare ternd
//!   with;
//! * [`scenario`]: `tern-bench run`, which puts the others together in a lab, with the
//!   server's receive work placed ([`pass`], [`cpu`]) and its CPU time measured ([`cpu`]);
//! * [`compare`]: `tern-bench report`, medians over repeated runs, the combined table, the
//!   goal ratios and the plots.
//!
//! Load only ever goes to the benchmarking ranges 198.18.0.0/15 and 2001:2::/48
//! ([`net::check_target`]), and every loop is bounded in time (and optionally in count).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod churn;
pub mod compare;
pub mod connect;
pub mod cpu;
pub mod flood;
pub mod frames;
pub mod hist;
pub mod net;
pub mod pass;
pub mod progress;
pub mod reflect;
pub mod report;
pub mod scenario;
pub mod sched;
pub mod serve;
