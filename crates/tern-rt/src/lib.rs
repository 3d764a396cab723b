//! `tern-rt`: per-core run-to-completion workers, the one place where the datapath meets the
//! protocol engine, and the interface applications implement to run inside a worker.
//!
//! An application is an [`App`]: callbacks invoked by the worker on the connections of its
//! listeners (accepted, readable, writable, peer closed, closed), each with a [`Conn`] handle to
//! read, write, shut down, close or abort, and a per-connection state of the application's own
//! type. The [`AppDriver`] turns a shard's events into those callbacks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
pub mod clock;
pub mod l2;
mod worker;

pub use app::{App, AppDriver, Conn};
pub use worker::{Control, Turn, Worker, WorkerConfig, WorkerError, WorkerStats};
