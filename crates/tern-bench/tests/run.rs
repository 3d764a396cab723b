//! `tern-bench run syn-flood` and `tern-bench run churn` end to end, at tiny rates and 1 s
//! steps, for the kernel and for ternd (in parallel, each in a lab of its own), then
//! `tern-bench report` over both: the JSON must hold consistent figures and the plots and
//! tables must be written.
//!
//! Needs root (network namespaces, XDP, AF_XDP) and the ternd binary, which `cargo test
//! --workspace` builds beside tern-bench (or set `TERN_BENCH_TERND`); `TERN_SKIP_LAB=1` skips
//! explicitly.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern_bench::compare::{self, PLOTS};
use tern_bench::scenario::{ScenarioReport, ServerKind};
use tern_lab::{lab_available, scripts_dir};

const BIN: &str = env!("CARGO_BIN_EXE_tern-bench");

fn ternd() -> PathBuf {
    if let Ok(p) = std::env::var("TERN_BENCH_TERND") {
        return p.into();
    }
    let path = Path::new(BIN).with_file_name("ternd");
    if !path.exists() {
        // `cargo test -p tern-bench` alone does not build other packages' binaries.
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "ternd", "--bin", "ternd"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build -p ternd");
        assert!(status.success(), "cargo build -p ternd failed");
    }
    assert!(
        path.exists(),
        "no ternd at {} (cargo build -p ternd, or set TERN_BENCH_TERND)",
        path.display()
    );
    path
}

fn run(dir: &Path, server: &str, ternd: &Path) -> std::thread::JoinHandle<ScenarioReport> {
    let args = ["syn-flood", "--rates", "0,2000", "--legit-rate", "50"];
    run_scenario(dir, server, ternd, &args)
}

fn run_scenario(
    dir: &Path,
    server: &str,
    ternd: &Path,
    args: &[&str],
) -> std::thread::JoinHandle<ScenarioReport> {
    let out = dir.join(server);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let ternd = ternd.to_owned();
    let server = server.to_owned();
    std::thread::spawn(move || {
        let output = Command::new("timeout")
            .args(["--signal=INT", "--kill-after=10", "60", BIN])
            .arg("run")
            .args(&args)
            .args(["--server", &server, "--step", "1s"])
            .arg("--ternd")
            .arg(&ternd)
            .arg("--lab-script")
            .arg(scripts_dir().join("lab.sh"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("running tern-bench run");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "{server}: {}\n{log}",
            output.status
        );
        assert!(
            log.contains("run: pinned napi/veth-srv-"),
            "{server}:\n{log}"
        );
        compare::load(&[out.join("scenario.json")])
            .unwrap()
            .remove(0)
    })
}

fn check(r: &ScenarioReport) {
    let who = r.system();
    assert_eq!(r.steps.len(), 2, "{who}");
    let p = &r.placement;
    assert!(p.pass_programs);
    assert_eq!(p.server_napi.len(), 1, "{who}: {p:?}");
    assert_eq!(p.client_napi.len(), 1, "{who}: {p:?}");
    assert!(p.server_napi[0].name.starts_with("napi/veth-srv-"));
    for (i, st) in r.steps.iter().enumerate() {
        let cl = &st.clients;
        assert_eq!(
            cl.successes + cl.failures.total(),
            cl.attempts,
            "{who} step {i}"
        );
        assert!(cl.consistent(), "{who} step {i}: {cl:?}");
        // A 2,000 SYN/s flood leaves every legitimate client of either server connected.
        assert_eq!(cl.successes, cl.attempts, "{who} step {i}: {cl}");
        assert!(cl.attempts >= 40, "{who} step {i}: {cl}");
        let cpu = st.cpu.as_ref().expect("CPU time measured");
        assert!(cpu.total_s > 0.0, "{who} step {i}: {cpu:?}");
        assert!(
            cpu.total_s <= cpu.elapsed_s * 1.2 + 0.05,
            "{who} step {i}: {cpu:?}"
        );
        assert!(st.per_cpu_second().is_some_and(|v| v > 0.0));
        let d = st.server_if.expect("veth-srv counters");
        assert!(
            d.tx_packets > 0 && d.rx_packets > 0,
            "{who} step {i}: {d:?}"
        );
        assert!(st.elapsed_s >= 0.9);
        if i == 0 {
            assert!(st.flood.is_none());
        } else {
            let f = st.flood.as_ref().expect("flood report");
            assert!(f.offered_pps > 1000.0 && f.offered_pps < 2500.0, "{f}");
            // Every SYN is answered at most once (a little slack for the legitimate traffic).
            let legit = 10.0 * cl.attempts as f64;
            assert!(st.answered_pps <= f.offered_pps + legit, "{who}: {st:?}");
            assert!(st.answered_pps >= 0.9 * f.offered_pps, "{who}: {st:?}");
        }
    }
}

#[test]
fn syn_flood_kernel_and_ternd_then_report() {
    if !lab_available() {
        return;
    }
    let ternd = ternd();
    let dir = tempfile::tempdir().unwrap();
    let kernel = run(dir.path(), "kernel", &ternd);
    let td = run(dir.path(), "ternd", &ternd);
    let (kernel, td) = (kernel.join().unwrap(), td.join().unwrap());
    assert_eq!(kernel.config.server, ServerKind::Kernel);
    assert_eq!(td.config.server, ServerKind::Ternd);
    check(&kernel);
    check(&td);

    let img = dir.path().join("img");
    let out = Command::new(BIN)
        .arg("report")
        .arg(dir.path())
        .arg("--plots")
        .arg(&img)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("| ternd "), "{stdout}");
    assert!(stdout.contains("| kernel sc=1 "), "{stdout}");
    for name in PLOTS {
        let svg = std::fs::read_to_string(img.join(name)).unwrap();
        assert!(
            svg.contains("ternd") && svg.contains("kernel sc=1"),
            "{name}"
        );
    }
}

fn check_churn(r: &ScenarioReport) {
    let who = r.system();
    assert!(r.steps.is_empty(), "{who}");
    assert_eq!(r.churn_steps.len(), 2, "{who}");
    assert_eq!(r.placement.server_napi.len(), 1, "{who}");
    for (i, st) in r.churn_steps.iter().enumerate() {
        let ch = &st.churn;
        assert_eq!(st.client_napi.len(), 1, "{who} step {i}");
        assert!(st.client_napi[0].name.starts_with("napi/veth-cli-"));
        assert_eq!(ch.successes + ch.failures.total(), ch.attempts, "{who} {i}");
        assert_eq!(ch.attempts, st.rate as u64, "{who} step {i}: {ch}");
        // At a few hundred connections a second every one completes, on either server.
        assert_eq!(ch.successes, ch.attempts, "{who} step {i}: {ch}");
        assert_eq!(ch.connect_latency.count, ch.attempts, "{who} step {i}");
        assert_eq!(ch.total_latency.count, ch.successes, "{who} step {i}");
        // Each connection is SYN, request, FIN and the last ACK from the client.
        assert!(ch.tx_frames >= 4 * ch.successes, "{who} step {i}: {ch}");
        let opens = match r.config.server {
            ServerKind::Kernel => "TcpPassiveOpens",
            ServerKind::Ternd => "PassiveOpens",
        };
        let opened = st.server_counters.get(opens).copied().unwrap_or(0);
        assert!(
            opened >= ch.successes && opened <= ch.successes + 2,
            "{who} step {i}: the server opened {opened} for {} done",
            ch.successes
        );
        let cpu = st.cpu.as_ref().expect("CPU time measured");
        assert!(
            cpu.core_busy_s > 0.0 && cpu.total_s > 0.0,
            "{who} {i}: {cpu:?}"
        );
        assert!(st.per_cpu_second().is_some_and(|v| v > 0.0));
    }
}

#[test]
fn churn_kernel_and_ternd_then_report() {
    if !lab_available() {
        return;
    }
    let ternd = ternd();
    let dir = tempfile::tempdir().unwrap();
    // IPv4 against the kernel, IPv6 against ternd: both families of the client in one test.
    let kernel = run_scenario(
        dir.path(),
        "kernel",
        &ternd,
        &["churn", "--rates", "200,400"],
    );
    let td = run_scenario(
        dir.path(),
        "ternd",
        &ternd,
        &["churn", "--ipv6", "--rates", "200,400"],
    );
    let (kernel, td) = (kernel.join().unwrap(), td.join().unwrap());
    check_churn(&kernel);
    check_churn(&td);
    assert!(kernel.churn_steps[0].churn.dst.is_ipv4());
    assert!(td.churn_steps[0].churn.dst.is_ipv6());
    let out = Command::new(BIN)
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("connections per second per server core"),
        "{stdout}"
    );
    assert!(stdout.contains("| ternd       | 400 "), "{stdout}");
    assert!(stdout.contains("| kernel sc=1 | 400 "), "{stdout}");
}
