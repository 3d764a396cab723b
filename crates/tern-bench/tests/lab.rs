//! tern-bench in the veth lab: the kernel reference server with open-loop clients (echo and
//! http, IPv4 and IPv6), and the flood (AF_XDP and live frames) counted by the server's kernel. Every process is
//! bounded by its own `--duration`, and every wait here by a timeout.
//!
//! Needs root (network namespaces, AF_XDP); `TERN_SKIP_LAB=1` skips explicitly.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tern_bench::connect::ConnectReport;
use tern_bench::flood::{FloodReport, TxPath};
use tern_bench::serve::ServeReport;
use tern_lab::{lab_available, run, Lab, LabConfig, Side};

const BIN: &str = env!("CARGO_BIN_EXE_tern-bench");

/// A `tern-bench` process in a lab namespace.
fn bench(lab: &Lab, side: Side) -> Command {
    lab.command(side, BIN)
}

/// Starts `serve` and waits (at most 10 s) until it says it is listening.
fn start_server(lab: &Lab, args: &[&str]) -> Child {
    start_ready(
        lab,
        Side::Server,
        &[&["serve"], args].concat(),
        "serve: listening",
    )
}

/// Starts a `tern-bench` subcommand and waits (at most 10 s) for a line starting with `ready`.
fn start_ready(lab: &Lab, side: Side, args: &[&str], ready: &str) -> Child {
    let mut child = bench(lab, side)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tern-bench");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(ready) => return child,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "tern-bench {args:?} did not print {ready:?}: {:?}",
                    child.wait()
                );
            }
        }
    }
}

/// SIGINT to a server or xdp-pass (the process we spawned: `ip netns exec` execs in place),
/// then a bounded wait for it to exit.
fn stop_server(mut child: Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT the server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "tern-bench exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("tern-bench did not stop within 10 s of SIGINT");
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn connect(lab: &Lab, dir: &Path, name: &str, args: &[&str]) -> ConnectReport {
    let json = dir.join(format!("{name}.json"));
    let out = run(bench(lab, Side::Client)
        .arg("connect")
        .args(args)
        .arg("--json")
        .arg(&json));
    eprintln!("{out}");
    let report: ConnectReport = read_json(&json);
    assert!(report.consistent(), "{report:?}");
    report
}

fn assert_all_succeeded(r: &ConnectReport, attempts: u64, with_request: bool) {
    assert_eq!(r.attempts, attempts, "{r}");
    assert_eq!(r.scheduled, attempts, "{r}");
    assert_eq!(r.successes, attempts, "{r}");
    assert_eq!(r.failures.total(), 0, "{r}");
    assert_eq!(r.successes + r.failures.total(), r.attempts);
    let c = &r.connect_latency;
    assert_eq!(c.count, attempts);
    assert!(c.min_us > 0.0 && c.min_us <= c.p50_us && c.p50_us <= c.p99_us);
    assert!(c.p99_us <= c.p999_us && c.p999_us <= c.max_us);
    // The veth lab answers within milliseconds, far from the 3 s timeout.
    assert!(c.p50_us < 100_000.0, "{r}");
    if with_request {
        assert_eq!(r.transaction_latency.count, attempts);
        assert!(r.transaction_latency.p50_us > 0.0);
    }
    assert_eq!(r.total_latency.count, attempts);
    assert_eq!(r.start_lag.count, attempts);
}

#[test]
fn kernel_server_and_open_loop_clients() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up(LabConfig {
        queues: Some(2),
        client_addrs: 0,
    });
    let dir = tempfile::tempdir().unwrap();
    let echo_json = dir.path().join("echo-server.json");
    let http_json = dir.path().join("http-server.json");
    let echo = start_server(
        &lab,
        &[
            "--listen",
            "198.18.0.1:7000",
            "--listen",
            "[2001:2::1]:7000",
            "--mode",
            "echo",
            "--threads",
            "2",
            "--duration",
            "60s",
            "--json",
            echo_json.to_str().unwrap(),
        ],
    );
    let http = start_server(
        &lab,
        &[
            "--listen",
            "198.18.0.1:7001",
            "--mode",
            "http",
            "--body-size",
            "3000",
            "--threads",
            "1",
            "--duration",
            "60s",
            "--json",
            http_json.to_str().unwrap(),
        ],
    );

    let v4 = connect(
        &lab,
        dir.path(),
        "echo-v4",
        &[
            "--target",
            "198.18.0.1:7000",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--request",
            "echo",
            "--size",
            "200",
        ],
    );
    assert_all_succeeded(&v4, 100, true);
    assert!((v4.elapsed_s - 1.0).abs() < 0.5, "{v4}");
    let v6 = connect(
        &lab,
        dir.path(),
        "echo-v6",
        &[
            "--target",
            "[2001:2::1]:7000",
            "--rate",
            "150",
            "--duration",
            "1s",
            "--threads",
            "2",
            "--request",
            "echo",
            "--size",
            "5000",
        ],
    );
    assert_all_succeeded(&v6, 150, true);
    let web = connect(
        &lab,
        dir.path(),
        "http",
        &[
            "--target",
            "198.18.0.1:7001",
            "--rate",
            "100",
            "--count",
            "50",
            "--duration",
            "2s",
            "--request",
            "http",
        ],
    );
    assert_all_succeeded(&web, 50, true);
    // Nothing listens on 7002: every attempt is refused, and still counted.
    let refused = connect(
        &lab,
        dir.path(),
        "refused",
        &[
            "--target",
            "198.18.0.1:7002",
            "--rate",
            "50",
            "--duration",
            "0.5s",
        ],
    );
    assert_eq!(refused.attempts, 25);
    assert_eq!(refused.failures.refused, 25, "{refused}");
    assert_eq!(refused.successes, 0);

    stop_server(echo);
    stop_server(http);
    let e: ServeReport = read_json(&echo_json);
    assert_eq!(e.stats.accepted, 250, "{e}");
    assert_eq!(e.stats.closed, 250, "{e}");
    assert_eq!(e.stats.bytes_in, 100 * 200 + 150 * 5000, "{e}");
    assert_eq!(e.stats.bytes_out, e.stats.bytes_in, "{e}");
    assert_eq!(e.stats.conn_errors, 0, "{e}");
    let h: ServeReport = read_json(&http_json);
    assert_eq!(h.stats.accepted, 50, "{h}");
    assert_eq!(h.stats.requests, 50, "{h}");
}

/// `Tcp:` counters of `/proc/net/snmp` and `TcpExt:` of `/proc/net/netstat` in the server's
/// namespace (the TCP MIB counts IPv4 and IPv6 alike).
fn server_tcp_counters(lab: &Lab) -> HashMap<String, u64> {
    let mut counters = HashMap::new();
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let text = run(lab.command(Side::Server, "cat").arg(file));
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let (Some((p, names)), Some((_, values))) =
                (names.split_once(':'), values.split_once(':'))
            else {
                continue;
            };
            for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(v) = v.parse::<i64>() {
                    counters.insert(format!("{p}{n}"), v.max(0) as u64);
                }
            }
        }
    }
    counters
}

fn flood(lab: &Lab, dir: &Path, name: &str, args: &[&str]) -> FloodReport {
    let json = dir.join(format!("{name}.json"));
    let out = run(bench(lab, Side::Client)
        .args(["flood", "--interface", "veth-cli"])
        .args(args)
        .arg("--json")
        .arg(&json));
    eprintln!("{out}");
    read_json(&json)
}

#[test]
fn floods_reach_the_server_kernel() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up(LabConfig {
        queues: Some(1),
        client_addrs: 0,
    });
    let dir = tempfile::tempdir().unwrap();
    // A small backlog makes the kernel fall back to SYN cookies almost at once.
    let server = start_server(
        &lab,
        &[
            "--listen",
            "198.18.0.1:7100",
            "--listen",
            "[2001:2::1]:7100",
            "--threads",
            "1",
            "--backlog",
            "16",
            "--duration",
            "60s",
        ],
    );
    let steps: [(&str, &[&str], u64); 4] = [
        (
            "v4-linux-syn",
            &["--dst", "198.18.0.1:7100", "--shape", "linux-syn"],
            2000,
        ),
        (
            "v4-syn",
            &["--dst", "198.18.0.1:7100", "--shape", "syn"],
            500,
        ),
        (
            "v6-linux-syn",
            &["--dst", "[2001:2::1]:7100", "--shape", "linux-syn"],
            500,
        ),
        (
            "v4-ack",
            &["--dst", "198.18.0.1:7100", "--shape", "ack"],
            500,
        ),
    ];
    for (name, args, count) in steps {
        let before = server_tcp_counters(&lab);
        let report = flood(
            &lab,
            dir.path(),
            name,
            &[
                args,
                &[
                    "--count",
                    &count.to_string(),
                    "--rate",
                    "20000",
                    "--duration",
                    "5s",
                ],
            ]
            .concat(),
        );
        assert_eq!(report.sent, count, "{report}");
        assert_eq!(report.completed, count, "{report}");
        assert_eq!(report.tx_invalid_descs, 0, "{report}");
        let d = report
            .interface_delta
            .expect("sysfs of the client namespace");
        assert!(d.tx_packets >= count, "{report}");
        // Allow the server's kernel a moment to finish the softirq work.
        std::thread::sleep(Duration::from_millis(300));
        let after = server_tcp_counters(&lab);
        let delta = |k: &str| after[k] - before[k];
        let in_segs = delta("TcpInSegs");
        eprintln!(
            "{name}: sent {count}, server TcpInSegs +{in_segs}, TcpExtSyncookiesSent +{}, \
             TcpExtSyncookiesFailed +{}, TcpOutRsts +{}",
            delta("TcpExtSyncookiesSent"),
            delta("TcpExtSyncookiesFailed"),
            delta("TcpOutRsts")
        );
        // Every forged segment arrives (a few extra may be stray kernel traffic).
        assert!(
            in_segs >= count && in_segs <= count + 20,
            "{name}: sent {count}, the server counted {in_segs} segments"
        );
        if name.contains("syn") {
            assert!(
                delta("TcpExtSyncookiesSent") > 0,
                "{name}: no SYN cookies with a backlog of 16"
            );
        } else {
            // Forged cookie ACKs: the kernel checks each one (and they fail).
            assert!(delta("TcpExtSyncookiesFailed") > 0 || delta("TcpOutRsts") > 0);
        }
    }
    // TX-only AF_XDP needs no XDP program: none was attached to the client's interface.
    let link = run(lab
        .command(Side::Client, "ip")
        .args(["-d", "link", "show", "dev", "veth-cli"]));
    assert!(!link.contains("prog/xdp"), "{link}");

    // Live frames: the program's XDP_TX goes through veth's ndo_xdp_xmit, which needs NAPI on
    // the peer. Without it no frame leaves, and the flood says so and what to do.
    let out = bench(&lab, Side::Client)
        .args(["flood", "--interface", "veth-cli", "--tx", "live-frames"])
        .args([
            "--dst",
            "198.18.0.1:7100",
            "--count",
            "100",
            "--duration",
            "5s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("transmitted none of the 100 frames"),
        "{stderr}"
    );
    assert!(stderr.contains("xdp-pass -i PEER"), "{stderr}");
    // Left to choose (flat out, no --tx), it tries live frames and falls back to AF_XDP.
    let before = server_tcp_counters(&lab);
    let report = flood(
        &lab,
        dir.path(),
        "auto-fallback",
        &[
            "--dst",
            "198.18.0.1:7100",
            "--count",
            "300",
            "--duration",
            "5s",
        ],
    );
    assert_eq!(report.tx_path, TxPath::AfXdp, "{report}");
    assert_eq!((report.sent, report.completed), (300, 300), "{report}");
    std::thread::sleep(Duration::from_millis(300));
    let in_segs = server_tcp_counters(&lab)["TcpInSegs"] - before["TcpInSegs"];
    assert!((300..=320).contains(&in_segs), "{in_segs}");

    // With an XDP program on the peer, what the report calls sent and completed is what the
    // server's kernel counts, for every shape and both families; frames the peer's ring had no
    // room for are counted as the interface's transmit drops.
    let pass = start_ready(
        &lab,
        Side::Server,
        &["xdp-pass", "-i", "veth-srv", "--duration", "60s"],
        "xdp-pass: attached",
    );
    for (name, args, count) in steps {
        let before = server_tcp_counters(&lab);
        let report = flood(
            &lab,
            dir.path(),
            &format!("live-{name}"),
            &[
                args,
                &[
                    "--tx",
                    "live-frames",
                    "--count",
                    &count.to_string(),
                    "--rate",
                    "20000",
                    "--duration",
                    "5s",
                ],
            ]
            .concat(),
        );
        assert_eq!(report.tx_path, TxPath::LiveFrames, "{report}");
        assert_eq!(report.sent, count, "{report}");
        let d = report
            .interface_delta
            .expect("sysfs of the client namespace");
        assert!(report.completed + d.tx_dropped >= count, "{report}");
        assert!(report.completed <= d.tx_packets, "{report}");
        assert!(report.completed > 0, "{report}");
        std::thread::sleep(Duration::from_millis(300));
        let after = server_tcp_counters(&lab);
        let in_segs = after["TcpInSegs"] - before["TcpInSegs"];
        assert!(
            in_segs >= report.completed && in_segs <= report.completed + 20,
            "live {name}: completed {}, the server counted {in_segs} segments",
            report.completed
        );
    }
    stop_server(pass);
    stop_server(server);
}

/// libbpf's and libxdp's messages go through the log (targets `libbpf`, `libxdp`), not straight
/// to stderr: `reflect` loads libxdp's default program, which in a network namespace (no bpffs
/// at /sys/fs/bpf) warns that it falls back from its dispatcher. By default that is quiet; with
/// `RUST_LOG=libxdp=debug` it shows, as log records.
#[test]
fn reflect_routes_libbpf_and_libxdp_messages_through_the_log() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up(LabConfig {
        queues: Some(1),
        client_addrs: 0,
    });
    let reflect = |rust_log: Option<&str>| {
        let mut c = bench(&lab, Side::Server);
        c.args(["reflect", "-i", "veth-srv", "--duration", "1s"]);
        match rust_log {
            Some(v) => c.env("RUST_LOG", v),
            None => c.env_remove("RUST_LOG"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = reflect(None);
    assert!(!quiet.contains("libxdp:"), "{quiet}");
    assert!(!quiet.contains("libbpf:"), "{quiet}");
    let loud = reflect(Some("libxdp=debug,libbpf=debug"));
    assert!(loud.contains("DEBUG libxdp] libxdp: "), "{loud}");
}
