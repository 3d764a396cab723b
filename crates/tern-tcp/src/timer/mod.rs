//! Timers as data: the per-shard [`TimerWheel`] holds every connection timer, the worker
//! sleeps until [`TimerWheel::next_expiration`] and feeds what [`TimerWheel::poll`] returns to
//! the engine's pure `on_timeout` handlers.

mod wheel;

pub use wheel::{StaleHandle, TimerHandle, TimerWheel, LEVELS};
