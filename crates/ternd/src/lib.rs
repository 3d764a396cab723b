//! `ternd`, the TCP termination daemon: configuration, its built-in applications (echo,
//! discard, http, banner), the daemon's start-up, statistics and shutdown.

#![forbid(unsafe_code)]

pub mod apps;
pub mod config;
pub mod daemon;
pub mod stats;
