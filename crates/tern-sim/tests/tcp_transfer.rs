//! End-to-end: two engines exchange data over links that lose, reorder, duplicate and corrupt,
//! over many seeds; every byte must arrive in order, every close order must end with both
//! sides closed and every resource returned.

mod common;

use common::{check_invariants, pair, pattern, run, Closer, Transfer, WireChecker, C, S};
use tern_sim::{Duration, LinkConfig, Sim};
use tern_tcp::{CloseReason, Shard, TcpConfig};

fn lossy(loss: f64) -> LinkConfig {
    LinkConfig::new()
        .delay(Duration::from_millis(5))
        .jitter(Duration::from_millis(3))
        .loss(loss)
        .duplicate(loss / 4.0)
        .corrupt(loss / 10.0)
        .bandwidth(100_000_000)
        .queue_packets(200)
}

fn assert_all_freed(sim: &Sim<Shard>, seed: u64) {
    for side in [C, S] {
        let shard = sim.host(side);
        assert_eq!(
            shard.connection_count(),
            0,
            "seed {seed}: side {side} still has connections"
        );
        assert_eq!(
            shard.buffers_in_use(),
            0,
            "seed {seed}: side {side} still lends buffers"
        );
        assert_eq!(
            shard.counters().curr_estab,
            0,
            "seed {seed}: side {side} CurrEstab"
        );
    }
}

/// A transfer both ways with invariants checked after every step.
fn transfer(
    seed: u64,
    loss: f64,
    up: usize,
    down: usize,
    config: TcpConfig,
) -> (Sim<Shard>, Transfer) {
    let (mut sim, listener) = pair(seed, config, lossy(loss));
    let checker = WireChecker::install(&mut sim);
    let mut t = Transfer::new(listener, pattern(seed, up), pattern(seed ^ 1, down));
    let deadline = sim.now() + Duration::from_secs(3600);
    let r = sim.run_while(deadline, |sim| {
        t.step(sim);
        if let Err(e) = check_invariants(sim) {
            panic!(
                "seed {seed} loss {loss}: invariant broken at {:?}: {e}",
                sim.now()
            );
        }
        !t.done()
    });
    r.unwrap_or_else(|e| {
        panic!(
            "seed {seed} loss {loss}: {e}; sent {:?} received [{}, {}] closed {:?}",
            t.sent,
            t.received[0].len(),
            t.received[1].len(),
            t.closed
        )
    });
    // Let TIME-WAIT and retransmitted FINs play out.
    sim.run_for(Duration::from_secs(300))
        .expect("the network goes quiet");
    let errors = &checker.borrow().errors;
    assert!(
        errors.is_empty(),
        "seed {seed} loss {loss}: wire violations:\n{}",
        errors.join("\n")
    );
    assert!(
        t.received[S] == t.up,
        "seed {seed} loss {loss}: client→server bytes differ ({} of {})",
        t.received[S].len(),
        t.up.len()
    );
    assert!(
        t.received[C] == t.down,
        "seed {seed} loss {loss}: server→client bytes differ ({} of {})",
        t.received[C].len(),
        t.down.len()
    );
    (sim, t)
}

#[test]
fn bulk_transfers_arrive_byte_exact_at_loss_rates_up_to_ten_percent() {
    let mut total_retrans = 0;
    for (i, loss) in [0.0, 0.01, 0.03, 0.05, 0.10].into_iter().enumerate() {
        for seed in 0..6u64 {
            let seed = seed + 100 * i as u64;
            let (sim, t) = transfer(seed, loss, 2 << 20, 256 << 10, TcpConfig::default());
            assert_eq!(
                t.closed,
                [Some(CloseReason::Normal); 2],
                "seed {seed} loss {loss}"
            );
            assert_all_freed(&sim, seed);
            total_retrans +=
                sim.host(C).counters().retrans_segs + sim.host(S).counters().retrans_segs;
        }
    }
    assert!(
        total_retrans > 0,
        "lossy links must have caused retransmissions"
    );
}

#[test]
fn a_link_that_neither_loses_nor_reorders_needs_no_retransmission() {
    for seed in 0..4u64 {
        let clean = LinkConfig::new()
            .delay(Duration::from_millis(5))
            .bandwidth(100_000_000)
            .queue_packets(1000);
        let (mut sim, l) = pair(3000 + seed, TcpConfig::default(), clean);
        let mut t = Transfer::new(l, pattern(seed, 4 << 20), pattern(seed + 1, 1 << 20));
        run(&mut sim, &mut t, Duration::from_secs(600));
        assert!(t.received[S] == t.up && t.received[C] == t.down);
        let retrans = sim.host(C).counters().retrans_segs + sim.host(S).counters().retrans_segs;
        assert_eq!(retrans, 0, "seed {seed}: nothing was lost or reordered");
    }
}

#[test]
fn options_off_still_transfer() {
    for seed in 0..4u64 {
        let config = TcpConfig {
            timestamps: false,
            sack: false,
            window_scaling: false,
            ..TcpConfig::default()
        };
        let (sim, t) = transfer(1000 + seed, 0.03, 1 << 20, 64 << 10, config);
        assert_eq!(t.closed, [Some(CloseReason::Normal); 2]);
        assert_all_freed(&sim, seed);
    }
}

#[test]
fn small_buffers_exercise_flow_control() {
    for seed in 0..4u64 {
        // An 8 KiB receive buffer: the sender is window-limited all the way.
        let config = TcpConfig {
            rmem: 8 * 1024,
            wmem: 8 * 1024,
            ..TcpConfig::default()
        };
        let (sim, _) = transfer(2000 + seed, 0.02, 512 << 10, 512 << 10, config);
        assert_all_freed(&sim, seed);
    }
}

#[test]
fn every_close_order_frees_everything() {
    // Client first (the default): the client ends in TIME-WAIT.
    let (mut sim, l) = pair(7, TcpConfig::default(), lossy(0.02));
    let mut t = Transfer::new(l, pattern(1, 10_000), pattern(2, 10_000));
    run(&mut sim, &mut t, Duration::from_secs(600));
    assert_eq!(t.closed, [Some(CloseReason::Normal); 2]);
    assert_eq!(
        (sim.host(C).counters().tw, sim.host(S).counters().tw),
        (1, 0)
    );
    sim.run_for(Duration::from_secs(300)).unwrap();
    assert_all_freed(&sim, 7);
    assert_eq!(sim.host(C).timewait_count(), 0, "TIME-WAIT expired");

    // Server first: the server ends in TIME-WAIT.
    let (mut sim, l) = pair(8, TcpConfig::default(), lossy(0.02));
    let mut t = Transfer::new(l, pattern(3, 10_000), pattern(4, 10_000));
    t.first = Some(S);
    run(&mut sim, &mut t, Duration::from_secs(600));
    assert_eq!(t.closed, [Some(CloseReason::Normal); 2]);
    assert_eq!(
        (sim.host(C).counters().tw, sim.host(S).counters().tw),
        (0, 1)
    );
    sim.run_for(Duration::from_secs(300)).unwrap();
    assert_all_freed(&sim, 8);

    // Simultaneous: both FINs cross on a slow link; both go through CLOSING to TIME-WAIT.
    let slow = LinkConfig::new().delay(Duration::from_millis(50));
    let (mut sim, l) = pair(10, TcpConfig::default(), slow);
    let mut t = Transfer::new(l, pattern(6, 1000), pattern(7, 1000));
    t.first = None;
    run(&mut sim, &mut t, Duration::from_secs(600));
    sim.run_for(Duration::from_secs(300)).unwrap();
    assert_eq!(
        (sim.host(C).counters().tw, sim.host(S).counters().tw),
        (1, 1),
        "both closed actively"
    );
    assert_all_freed(&sim, 10);

    // RST: the server aborts once it has everything; the client sees a reset.
    let (mut sim, l) = pair(9, TcpConfig::default(), lossy(0.0));
    let mut t = Transfer::new(l, pattern(5, 10_000), Vec::new());
    t.close = [Closer::Graceful, Closer::Abort];
    run(&mut sim, &mut t, Duration::from_secs(600));
    assert_eq!(t.closed[S], Some(CloseReason::Aborted));
    assert!(
        matches!(t.closed[C], Some(CloseReason::Reset | CloseReason::Normal)),
        "{:?}",
        t.closed
    );
    sim.run_for(Duration::from_secs(300)).unwrap();
    assert_all_freed(&sim, 9);
}
