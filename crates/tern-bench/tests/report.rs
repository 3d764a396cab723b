//! Histograms merged across threads, and the connect report and its JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use tern_bench::connect::{ConnectConfig, ConnectReport, Failure, LaneStats, RequestKind};
use tern_bench::hist::Latency;
use tern_bench::report::markdown_table;
use tern_bench::sched::Schedule;

#[test]
fn histograms_merge_across_threads() {
    // Four threads record disjoint slices of 1..=40_000 µs; the merge equals one histogram of
    // everything.
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut h = Latency::new();
                for us in (1..=40_000u64).filter(|v| v % 4 == t) {
                    h.record(Duration::from_micros(us));
                }
                h
            })
        })
        .collect();
    let mut merged = Latency::new();
    for h in handles {
        merged.merge(&h.join().unwrap());
    }
    let mut single = Latency::new();
    for us in 1..=40_000u64 {
        single.record(Duration::from_micros(us));
    }
    assert_eq!(merged.count(), 40_000);
    assert_eq!(merged.summary(), single.summary());
    let s = merged.summary();
    // 3 significant digits.
    assert!((s.p50_us - 20_000.0).abs() / 20_000.0 < 0.001, "{s:?}");
    assert!((s.p99_us - 39_600.0).abs() / 39_600.0 < 0.001, "{s:?}");
    assert!((s.max_us - 40_000.0).abs() / 40_000.0 < 0.001, "{s:?}");
    assert!((s.min_us - 1.0).abs() < 0.01, "{s:?}");
}

fn config() -> ConnectConfig {
    ConnectConfig {
        target: "198.18.0.1:8080".parse().unwrap(),
        rate: 100.0,
        duration: Duration::from_secs(1),
        count: None,
        threads: 2,
        concurrency: 10,
        timeout: Duration::from_secs(3),
        request: RequestKind::Echo,
        size: 64,
        sources: vec![],
        linger0: false,
        cores: vec![],
        allow_loopback: false,
        json: None,
    }
}

#[test]
fn report_counts_add_up_and_round_trip_as_json() {
    let mut lanes = [LaneStats::default(), LaneStats::default()];
    for (k, lane) in lanes.iter_mut().enumerate() {
        for i in 0..50u64 {
            lane.attempts += 1;
            match (i + k as u64) % 10 {
                0 => lane.fail(Failure::Timeout("connect")),
                1 => lane.fail(Failure::Refused),
                2 => lane.capped(),
                3 => lane.fail(Failure::Other("EADDRNOTAVAIL")),
                4 => lane.fail(Failure::Reset),
                _ => {
                    lane.successes += 1;
                    lane.connect.record(Duration::from_micros(50 + i));
                    lane.transaction.record(Duration::from_micros(100 + i));
                    lane.total.record(Duration::from_micros(200 + i));
                }
            }
            lane.start_lag.record(Duration::from_micros(3));
        }
    }
    let mut total = LaneStats::default();
    for l in &lanes {
        total.merge(l);
    }
    let config = config();
    let schedule = Schedule::new(config.rate, config.duration, config.count).unwrap();
    let report = ConnectReport::new(&config, &schedule, &total, 1.5);
    assert!(report.consistent());
    assert_eq!(report.attempts, 100);
    assert_eq!(report.scheduled, 100);
    assert_eq!(report.successes, 50);
    assert_eq!(report.failures.total(), 50);
    assert_eq!(report.failures.timeout, 10);
    assert_eq!(report.failures.capped, 10);
    let detail: BTreeMap<String, u64> = [
        ("capped", 10),
        ("other:EADDRNOTAVAIL", 10),
        ("refused", 10),
        ("reset", 10),
        ("timeout:connect", 10),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(report.failure_detail, detail);
    assert_eq!(report.connect_latency.count, 50);
    assert!(report.connect_latency.p50_us > 50.0 && report.connect_latency.max_us < 101.0);
    assert!((report.success_rate - 50.0).abs() < 1e-9);

    let json = serde_json::to_string_pretty(&report).unwrap();
    let back: ConnectReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "attempts",
        "successes",
        "failures",
        "connect_latency",
        "transaction_latency",
        "start_lag",
    ] {
        assert!(v.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(v["failures"]["refused"], 10);
    assert!(v["connect_latency"]["p999_us"].as_f64().unwrap() > 0.0);

    let text = report.to_string();
    for needle in [
        "100 attempts",
        "50 ok",
        "p50",
        "p99",
        "p99.9",
        "max",
        "capped 10",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }

    // An inconsistent report is caught.
    let mut bad = report.clone();
    bad.attempts += 1;
    assert!(!bad.consistent());
}

#[test]
fn markdown_table_has_a_row_per_line() {
    let t = markdown_table(
        &["server", "SYN/s"],
        &[
            vec!["kernel".into(), "1000".into()],
            vec!["ternd".into(), "2000".into()],
        ],
    );
    assert_eq!(t.lines().count(), 4);
    assert!(t.contains("| kernel | 1000  |"), "{t}");
}

#[test]
fn proc_net_tcp_counters_are_parsed() {
    let snmp = "Ip: Forwarding DefaultTTL\nIp: 2 64\n\
                Tcp: RtoAlgorithm RtoMin InSegs OutSegs MaxConn\nTcp: 1 200 1234 99 -1\n";
    let netstat = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 17 3\n\
                   IpExt: InNoRoutes\nIpExt: 5\n";
    let mut m = BTreeMap::new();
    tern_bench::scenario::parse_proc_net(snmp, &mut m);
    tern_bench::scenario::parse_proc_net(netstat, &mut m);
    assert_eq!(m["TcpInSegs"], 1234);
    assert_eq!(m["TcpOutSegs"], 99);
    assert_eq!(m["TcpMaxConn"], 0);
    assert_eq!(m["TcpExtSyncookiesSent"], 17);
    assert!(!m.contains_key("IpForwarding") && !m.contains_key("IpExtInNoRoutes"));
}

#[test]
fn scenario_table_has_a_row_per_step() {
    use tern_bench::cpu::ServerCpu;
    use tern_bench::scenario::{markdown, Scenario, ScenarioReport, ServerKind, Step};
    let cfg = config();
    let schedule = Schedule::new(cfg.rate, cfg.duration, None).unwrap();
    let mut lane = LaneStats::default();
    for i in 0..100u64 {
        lane.attempts += 1;
        if i < 90 {
            lane.successes += 1;
            lane.connect.record(Duration::from_micros(100));
            lane.total.record(Duration::from_micros(150));
        } else {
            lane.fail(Failure::Timeout("connect"));
        }
    }
    let clients = ConnectReport::new(&cfg, &schedule, &lane, 1.0);
    let step = |rate| Step {
        rate,
        flood: None,
        clients: clients.clone(),
        server_tx_pps: 1000.0,
        answered_pps: 1000.0,
        server_if: None,
        elapsed_s: 3.0,
        cpu: Some(ServerCpu {
            elapsed_s: 3.0,
            napi_s: 1.0,
            softirq_s: 0.5,
            total_s: 1.5,
            ..ServerCpu::default()
        }),
        server_counters: [("TcpExtSyncookiesSent".to_string(), 3000u64)].into(),
    };
    let report = ScenarioReport {
        config: scenario_config(Scenario::SynFlood, ServerKind::Kernel, &[Some(0.0), None]),
        reflect: None,
        reflect_cpu: None,
        placement: Default::default(),
        steps: vec![step(Some(0.0)), step(None)],
        churn_steps: vec![],
    };
    let md = markdown(&report);
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 4, "{md}");
    assert!(table[2].starts_with("| none"), "{md}");
    assert!(table[3].starts_with("| max"), "{md}");
    assert!(md.contains("90/100 (90.0 %)"), "{md}");
    assert!(md.contains("| 1000 "), "{md}"); // SYN cookies/s: 3000 over 3 s
    assert!(md.contains("| 50 % "), "{md}"); // 1.5 CPU seconds in 3 s
    assert!(md.contains("| 2000 "), "{md}"); // 3000 packets per 1.5 CPU seconds
    assert_eq!(report.steps[0].per_cpu_second(), Some(2000.0));
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"syn-flood\""), "{json}");
}

/// The churn scenario's table: completed connections per second, and per busy CPU-second of
/// the server's core (not only its own threads' time), from the client's report.
#[test]
fn churn_markdown_counts_connections_per_cpu_second() {
    use tern_bench::churn::ChurnReport;
    use tern_bench::connect::Failures;
    use tern_bench::cpu::ServerCpu;
    use tern_bench::scenario::{markdown, ChurnStep, Scenario, ScenarioReport, ServerKind};

    let mut connect = Latency::new();
    for us in [50, 60, 70, 2000] {
        connect.record(Duration::from_micros(us));
    }
    let churn = |rate: f64, done: u64| ChurnReport {
        interface: "veth-cli".into(),
        bind_mode: "copy".into(),
        dst: "198.18.0.1:8080".parse().unwrap(),
        src: "198.18.160.0/19".into(),
        tuples: 524288,
        rate,
        size: 64,
        duration_s: 3.0,
        concurrency: 10000,
        timeout_s: 2.0,
        attempts: (rate * 3.0) as u64,
        successes: done,
        failures: Failures {
            timeout: (rate * 3.0) as u64 - done,
            ..Failures::default()
        },
        success_rate: done as f64 / 3.0,
        elapsed_s: 3.0,
        connect_latency: connect.summary(),
        total_latency: connect.summary(),
        rx_frames: 0,
        tx_frames: 0,
        stray: 0,
        tx_starved: 0,
        xsk_rx_lost: 0,
        interface_delta: None,
    };
    let step = |rate: f64, done: u64, cpu_s: f64| ChurnStep {
        rate,
        churn: churn(rate, done),
        elapsed_s: 4.0,
        cpu: Some(ServerCpu {
            elapsed_s: 4.0,
            total_s: cpu_s / 2.0,
            core_busy_s: cpu_s,
            ..ServerCpu::default()
        }),
        server_if: None,
        server_counters: BTreeMap::new(),
        client_napi: vec![],
    };
    let report = ScenarioReport {
        config: scenario_config(
            Scenario::Churn,
            ServerKind::Ternd,
            &[Some(1000.0), Some(4000.0)],
        ),
        reflect: None,
        reflect_cpu: None,
        placement: Default::default(),
        steps: vec![],
        churn_steps: vec![step(1000.0, 3000, 0.5), step(4000.0, 11000, 2.0)],
    };
    assert_eq!(report.churn_steps[0].per_cpu_second(), Some(6000.0));
    assert_eq!(report.churn_steps[1].per_cpu_second(), Some(5500.0));
    let md = markdown(&report);
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 4, "{md}");
    assert!(md.contains("64 B echo"), "{md}");
    assert!(table[2].starts_with("| 1000 "), "{md}");
    assert!(table[2].contains("| 3000/3000 (100.0 %)"), "{md}");
    assert!(table[2].contains("| 6000 "), "{md}");
    assert!(table[3].contains("| 11000/12000 (91.7 %)"), "{md}");
    assert!(table[3].contains("| 50 % "), "{md}"); // 2 CPU seconds in 4 s
    assert!(table[3].contains("| 1000/0/0/0 "), "{md}");
    let json = serde_json::to_string(&report).unwrap();
    let back: ScenarioReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.churn_steps.len(), 2);
    assert!(json.contains("\"churn\""), "{json}");
}

/// A run's configuration as `tern-bench run` would record it (one queue, server on core 0).
fn scenario_config(
    scenario: tern_bench::scenario::Scenario,
    server: tern_bench::scenario::ServerKind,
    rates: &[Option<f64>],
) -> tern_bench::scenario::ScenarioConfig {
    tern_bench::scenario::ScenarioConfig {
        scenario,
        server,
        syncookies: 1,
        rates: rates.to_vec(),
        step: Duration::from_secs(3),
        legit_rate: 100.0,
        shape: tern_bench::frames::Shape::LinuxSyn,
        ipv6: false,
        queues: 1,
        flood_core: 1,
        server_core: 0,
        napi_core: 0,
        napi_per_queue: false,
        pass_programs: true,
        client_napi_defer_us: 50,
        reflect: false,
        ternd_set: vec![],
        out: "out".into(),
        ternd: "ternd".into(),
        lab_script: "lab.sh".into(),
        prefix: "x-".into(),
    }
}
