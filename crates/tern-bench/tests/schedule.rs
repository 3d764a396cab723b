//! The open-loop scheduler under a fake clock: attempt i is handed out at exactly
//! `i / rate` (as its due time) whatever the server does, overdue attempts are still all
//! handed out (late, with their lag), the concurrency cap turns due attempts into `capped`
//! failures instead of delaying them, and lanes split the schedule without gaps or overlaps.

use std::collections::VecDeque;
use std::time::Duration;

use tern_bench::sched::{Dispatch, Pacer, Schedule};

const MS: Duration = Duration::from_millis(1);

/// A fake server: each started attempt completes `service` after it started, except that
/// nothing completes while the server is stalled (`stall` = [from, to)); what was due to
/// complete during the stall completes when it ends.
struct FakeServer {
    service: Duration,
    stall: (Duration, Duration),
    in_flight: VecDeque<Duration>, // start times, in order
}

impl FakeServer {
    fn completes_at(&self, started: Duration) -> Duration {
        let t = started + self.service;
        if t >= self.stall.0 && t < self.stall.1 {
            self.stall.1
        } else {
            t
        }
    }

    fn advance(&mut self, now: Duration) {
        while let Some(&s) = self.in_flight.front() {
            if self.completes_at(s) <= now {
                self.in_flight.pop_front();
            } else {
                break;
            }
        }
    }
}

#[derive(Debug)]
struct Record {
    index: u64,
    due: Duration,
    started: Option<Duration>,
}

/// Drives one lane with a fake clock that advances by `steps` (cycled), like a client loop.
fn drive(pacer: &mut Pacer, server: &mut FakeServer, steps: &[Duration]) -> Vec<Record> {
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    let mut k = 0;
    while !pacer.is_done() {
        server.advance(now);
        while let Some(d) = pacer.poll(now, server.in_flight.len()) {
            let a = d.attempt();
            match d {
                Dispatch::Start { lag, .. } => {
                    assert_eq!(lag, now - a.due);
                    server.in_flight.push_back(now);
                    out.push(Record {
                        index: a.index,
                        due: a.due,
                        started: Some(now),
                    });
                }
                Dispatch::Capped { .. } => out.push(Record {
                    index: a.index,
                    due: a.due,
                    started: None,
                }),
            }
        }
        now += steps[k % steps.len()];
        k += 1;
    }
    out
}

fn exact_due(i: u64, rate: u64) -> Duration {
    Duration::from_nanos(i * 1_000_000_000 / rate)
}

#[test]
fn due_times_are_exact_and_bounded() {
    let s = Schedule::new(3.0, Duration::from_secs(2), None).unwrap();
    assert_eq!(s.total(), 6);
    assert_eq!(s.due(1), Duration::from_nanos(333_333_333));
    assert_eq!(s.due(3), Duration::from_secs(1));
    assert!(s.contains(5) && !s.contains(6));
    let s = Schedule::new(1000.0, Duration::from_secs(1), Some(10)).unwrap();
    assert_eq!(s.total(), 10);
    assert!(!s.contains(10));
    // No drift over a long run at a rate that is not a divisor of 1e9.
    let s = Schedule::new(7.0, Duration::from_secs(1_000_000), None).unwrap();
    assert_eq!(s.due(7_000_000), Duration::from_secs(1_000_000));
    assert_eq!(
        s.due(7_000_001),
        Duration::from_nanos(1_000_000_142_857_142)
    );
    assert!(Schedule::new(0.0, MS, None).is_err());
    assert!(Schedule::new(f64::NAN, MS, None).is_err());
}

#[test]
fn a_stalled_server_does_not_move_the_schedule() {
    let rate = 1000;
    let schedule = Schedule::new(rate as f64, Duration::from_secs(1), None).unwrap();
    let mut pacer = Pacer::new(schedule, 0, 1, 100_000);
    // Replies take 2 ms, but the server stalls completely from 200 ms to 700 ms.
    let mut server = FakeServer {
        service: 2 * MS,
        stall: (200 * MS, 700 * MS),
        in_flight: VecDeque::new(),
    };
    // The client loop wakes at irregular moments, never later than 0.9 ms.
    let steps = [
        Duration::from_micros(300),
        Duration::from_micros(900),
        Duration::from_micros(50),
        Duration::from_micros(777),
    ];
    let recs = drive(&mut pacer, &mut server, &steps);
    assert_eq!(recs.len(), 1000);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.index, i as u64);
        assert_eq!(r.due, exact_due(i as u64, rate), "attempt {i}");
        let started = r.started.expect("no cap was hit");
        // Started at the first client wake-up at or after its due time.
        assert!(started >= r.due && started - r.due < Duration::from_micros(900));
    }
    // During the stall the attempts kept coming: ~500 were in flight at once.
    let during = recs
        .iter()
        .filter(|r| r.due >= 200 * MS && r.due < 700 * MS)
        .count();
    assert_eq!(during, 500);
}

#[test]
fn the_cap_fails_attempts_instead_of_delaying_them() {
    let rate = 1000;
    let schedule = Schedule::new(rate as f64, Duration::from_secs(1), None).unwrap();
    let mut pacer = Pacer::new(schedule, 0, 1, 50);
    let mut server = FakeServer {
        service: MS,
        stall: (100 * MS, 400 * MS),
        in_flight: VecDeque::new(),
    };
    let recs = drive(&mut pacer, &mut server, &[Duration::from_micros(250)]);
    assert_eq!(recs.len(), 1000);
    let capped: Vec<&Record> = recs.iter().filter(|r| r.started.is_none()).collect();
    // The stall holds ~300 attempts' worth of time; 50 may be in flight, the rest are capped.
    assert!((240..=260).contains(&capped.len()), "{}", capped.len());
    for r in &capped {
        assert!(r.due >= 100 * MS && r.due < 400 * MS, "{r:?}");
    }
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.due, exact_due(i as u64, rate));
        if let Some(s) = r.started {
            assert!(s - r.due < Duration::from_micros(250));
        }
    }
}

#[test]
fn a_late_client_catches_up_without_dropping_attempts() {
    // The client itself is descheduled for 50 ms at a time: every overdue attempt is still
    // handed out at the next wake-up, with its own due time (the lag is the evidence).
    let rate = 10_000;
    let schedule = Schedule::new(rate as f64, Duration::from_millis(500), None).unwrap();
    let mut pacer = Pacer::new(schedule, 0, 1, usize::MAX);
    let mut server = FakeServer {
        service: Duration::ZERO,
        stall: (Duration::ZERO, Duration::ZERO),
        in_flight: VecDeque::new(),
    };
    let recs = drive(&mut pacer, &mut server, &[50 * MS]);
    assert_eq!(recs.len(), 5000);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.due, exact_due(i as u64, rate));
        let s = r.started.unwrap();
        assert!(s >= r.due && s - r.due < 50 * MS);
        assert_eq!(s.as_nanos() % (50 * MS).as_nanos(), 0);
    }
}

#[test]
fn lanes_partition_the_schedule() {
    let rate = 997;
    let schedule = Schedule::new(rate as f64, Duration::from_millis(3000), Some(2500)).unwrap();
    let mut all = Vec::new();
    for lane in 0..3 {
        let mut pacer = Pacer::new(schedule, lane, 3, usize::MAX);
        let mut server = FakeServer {
            service: MS,
            stall: (Duration::ZERO, Duration::ZERO),
            in_flight: VecDeque::new(),
        };
        for r in drive(&mut pacer, &mut server, &[Duration::from_micros(100)]) {
            assert_eq!(r.index % 3, lane);
            all.push((r.index, r.due));
        }
    }
    all.sort();
    assert_eq!(all.len(), 2500);
    for (i, (index, due)) in all.iter().enumerate() {
        assert_eq!(*index, i as u64);
        assert_eq!(*due, exact_due(i as u64, rate));
    }
}
