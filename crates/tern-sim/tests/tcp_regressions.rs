//! Runs that once failed, found by the random-run property test; each is exact (seeded) and
//! names the bug it caught.

mod common;

use common::{pair, pattern, run, Transfer, C, S};
use tern_sim::{Duration, LinkConfig};
use tern_tcp::TcpConfig;

fn check(seed: u64, link: LinkConfig, config: TcpConfig, up: usize, down: usize) {
    let (mut sim, l) = pair(seed, config, link);
    let mut t = Transfer::new(l, pattern(seed, up), pattern(!seed, down));
    run(&mut sim, &mut t, Duration::from_secs(3 * 3600));
    assert!(
        t.received[S] == t.up,
        "client→server: {} of {}",
        t.received[S].len(),
        t.up.len()
    );
    assert!(
        t.received[C] == t.down,
        "server→client: {} of {}",
        t.received[C].len(),
        t.down.len()
    );
    sim.run_for(Duration::from_secs(600))
        .expect("the network goes quiet");
    for side in [C, S] {
        assert_eq!(
            sim.host(side).connection_count(),
            0,
            "side {side} still has a connection"
        );
    }
}

fn small(wmem: usize, rmem: usize, mss: u16, timestamps: bool) -> TcpConfig {
    TcpConfig {
        wmem,
        rmem,
        mss,
        timestamps,
        window_scaling: false,
        sack: false,
        nagle: false,
        ..TcpConfig::default()
    }
}

/// A segment into a small window was lost; after each timeout, sender SWS avoidance refused
/// to resend it (not a full segment, not all the data), so it was never retransmitted and the
/// connection died at retries2.
#[test]
fn retransmission_into_a_small_window_is_not_held_back() {
    let link = LinkConfig::new()
        .delay(Duration::ZERO)
        .jitter(Duration::from_millis(5))
        .loss(0.104_274_767_134_208_65)
        .queue_packets(8)
        .unlimited_bandwidth();
    check(
        3_373_638_279_959_820_275,
        link,
        small(3072, 2048, 536, false),
        0,
        207_817,
    );
}

/// A duplicate ACK repeating a small window cancelled the persist timer without asking output
/// to re-arm it: the last bytes waited forever with no timer at all.
#[test]
fn a_repeated_small_window_keeps_the_persist_timer() {
    let link = LinkConfig::new()
        .delay(Duration::from_millis(19))
        .jitter(Duration::from_millis(1))
        .loss(0.105_595_419_328_841_62)
        .duplicate(0.037_239_808_841_344_486)
        .corrupt(0.010_930_289_349_355_086)
        .bandwidth(438_010_951)
        .queue_packets(8);
    check(
        14_060_002_688_830_278_909,
        link,
        small(7168, 4096, 683, false),
        80_595,
        127_720,
    );
}

/// The same stall with timestamps on.
#[test]
fn a_repeated_small_window_keeps_the_persist_timer_with_timestamps() {
    let link = LinkConfig::new()
        .delay(Duration::from_millis(18))
        .jitter(Duration::from_millis(6))
        .loss(0.108_520_982_999_836_9)
        .duplicate(0.031_663_714_624_130_22)
        .bandwidth(528_571_429)
        .queue_packets(8);
    check(
        5_822_748_129_524_240_329,
        link,
        small(4096, 2048, 875, true),
        215_532,
        154_478,
    );
}
