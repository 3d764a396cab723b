//! `ternd`, the TCP termination daemon: its built-in applications (echo, discard, http,
//! banner), which run inside the workers through `tern_rt::App`.

#![forbid(unsafe_code)]

pub mod apps;
