//! The worker's clock: CLOCK_MONOTONIC, read once per loop turn.
//!
//! Every worker of a process reads the same clock, so SYN-cookie periods agree across shards;
//! it is also the clock an XDP program reads with `bpf_ktime_get_ns`, so cookies made in XDP
//! and checked in a worker agree too.

use tern_tcp::Instant;

/// Reads CLOCK_MONOTONIC as an engine [`Instant`] (microseconds since boot).
pub fn now() -> Instant {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    Instant::from_micros(ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn monotonic() {
        let a = super::now();
        let b = super::now();
        assert!(b >= a);
    }
}
