//! `tern-bench report` on canned scenario reports (two real runs from the lab, in `data/`, and
//! repetitions and a third system derived from them): medians, the combined table, the goal
//! ratios, the plots, and splicing the section into a document.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern_bench::compare::{self, Row, BEGIN, END, PLOTS};
use tern_bench::scenario::ScenarioReport;

fn canned(name: &str) -> ScenarioReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("{name}.scenario.json"));
    compare::load(&[path]).expect("canned report").remove(0)
}

/// `r` with every rate-like figure scaled by `k` (a repetition that came out faster or slower).
fn scaled(r: &ScenarioReport, k: f64) -> ScenarioReport {
    let mut r = r.clone();
    for st in &mut r.steps {
        st.answered_pps *= k;
        if let Some(f) = &mut st.flood {
            f.offered_pps *= k;
        }
        st.clients.connect_latency.p99_us *= k;
    }
    r
}

/// Three repetitions of ternd (0.9×, 1×, 1.1×), two of kernel sc=2, one of kernel sc=1.
fn reports() -> Vec<ScenarioReport> {
    let ternd = canned("ternd");
    let k2 = canned("kernel-sc2");
    let mut k1 = k2.clone();
    k1.config.syncookies = 1;
    vec![
        scaled(&ternd, 0.9),
        ternd.clone(),
        scaled(&ternd, 1.1),
        k2.clone(),
        k2,
        k1,
    ]
}

#[test]
fn rows_are_medians_per_system_and_rate() {
    let reports = reports();
    let rows = compare::aggregate(&reports);
    // Three systems, three rates each (none, 50k, max), ternd first and max last.
    assert_eq!(rows.len(), 9, "{rows:#?}");
    assert_eq!(
        compare::systems(&rows),
        ["ternd", "kernel sc=1", "kernel sc=2"]
    );
    let labels: Vec<String> = rows[..3]
        .iter()
        .map(|r| compare::rate_label(r.rate))
        .collect();
    assert_eq!(labels, ["none", "50k", "max"]);
    let ternd = canned("ternd");
    for (row, step) in rows[..3].iter().zip(&ternd.steps) {
        assert_eq!(row.runs, 3);
        // The median of 0.9x, 1x and 1.1x is the original.
        assert!(
            (row.answered_pps - step.answered_pps).abs() < 1e-6,
            "{row:?}"
        );
        assert_eq!(row.legit_attempts, 3 * step.clients.attempts);
        assert_eq!(row.legit_ok, 3 * step.clients.successes);
        assert!(row.legit_ok <= row.legit_attempts);
        assert!(row.cpu_util.is_some_and(|c| c > 0.0), "{row:?}");
        assert!(row.answered_pps <= row.offered_pps * 1.05 || row.rate == Some(0));
    }
    assert!(rows
        .iter()
        .filter(|r| r.system == "kernel sc=2")
        .all(|r| r.runs == 2));
    assert!(rows
        .iter()
        .filter(|r| r.system == "kernel sc=1")
        .all(|r| r.runs == 1));
}

#[test]
fn table_has_a_row_per_rate_per_system() {
    let rows = compare::aggregate(&reports());
    let table = compare::table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + rows.len(), "{table}");
    for (line, row) in lines[2..].iter().zip(&rows) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[1], row.system);
        assert_eq!(cells[2], compare::rate_label(row.rate));
        assert!(cells[8].contains(&format!("{}/{}", row.legit_ok, row.legit_attempts)));
    }
    for system in ["ternd", "kernel sc=1", "kernel sc=2"] {
        for rate in ["none", "50k", "max"] {
            assert!(
                lines.iter().any(|l| {
                    let c: Vec<&str> = l.split('|').map(str::trim).collect();
                    c.get(1) == Some(&system) && c.get(2) == Some(&rate)
                }),
                "no row for {system} at {rate}:\n{table}"
            );
        }
    }
}

#[test]
fn goals_from_the_same_runs() {
    let reports = reports();
    let rows = compare::aggregate(&reports);
    let g = compare::goals(&reports, &rows);
    let ternd = canned("ternd");
    let (reflect, _) = ternd.reflect.as_ref().unwrap();
    let best = ternd
        .steps
        .iter()
        .map(|s| s.answered_pps)
        .fold(0.0, f64::max);
    let (ratio, t, x) = g.vs_reflect.expect("ternd ran with --reflect");
    assert!((t - best).abs() < 1e-6 && (x - reflect.tx_pps).abs() < 1e-6);
    assert!((ratio - best / reflect.tx_pps).abs() < 1e-9);
    let (r2, t2, k2) = g.per_cpu_vs_kernel2.expect("both have CPU times");
    assert!(t2 > 0.0 && k2 > 0.0 && (r2 - t2 / k2).abs() < 1e-9);
    assert!(g.per_cpu_vs_kernel1.is_some());
    assert_eq!(g.per_cpu_by_rate.len(), 3);
    assert_eq!(g.ternd_capacity, compare::capacity(&rows, "ternd"));
    // No step near half of ternd's capacity in these runs; with one, it is found.
    assert!(g.half_capacity.is_none());
    let cap = g.ternd_capacity.unwrap();
    let mut half = canned("ternd");
    half.reflect = None;
    half.steps.truncate(2);
    half.steps[1].rate = Some((cap / 2.0).round());
    let mut with_half = reports.clone();
    with_half.push(half);
    // The kernel under the same flood.
    let mut kernel_half = canned("kernel-sc2");
    kernel_half.steps.truncate(2);
    kernel_half.steps[1].rate = Some((cap / 2.0).round());
    with_half.push(kernel_half);
    let rows = compare::aggregate(&with_half);
    let g = compare::goals(&with_half, &rows);
    let (h, base): &(Row, Row) = g.half_capacity.as_ref().expect("the half-capacity step");
    assert_eq!(h.rate, Some((cap / 2.0).round() as u64));
    assert_eq!(base.rate, Some(0));
    assert_eq!(g.half_capacity_kernel.len(), 1);
    assert_eq!(g.half_capacity_kernel[0].system, "kernel sc=2");
    assert_eq!(g.half_capacity_kernel[0].rate, h.rate);
    let text = compare::goals_markdown(&g);
    assert!(text.contains("goal ≥ 1.5×"), "{text}");
    assert!(text.contains("half its capacity"), "{text}");
    assert!(text.contains("goal ≤ 2×"), "{text}");
    assert!(
        text.contains("- kernel sc=2 under the same flood"),
        "{text}"
    );
}

#[test]
fn plots_hold_every_series() {
    let rows = compare::aggregate(&reports());
    let dir = tempfile::tempdir().unwrap();
    let paths = compare::plot_all(&rows, dir.path()).unwrap();
    assert_eq!(paths.len(), PLOTS.len());
    for p in &paths {
        let svg = std::fs::read_to_string(p).unwrap();
        assert!(svg.starts_with("<svg"), "{}", p.display());
        for system in ["ternd", "kernel sc=1", "kernel sc=2"] {
            assert!(svg.contains(system), "{} lacks {system}", p.display());
        }
        // One line per system (plus the diagonal on the answered plot), a marker per point.
        let lines = svg.matches("<polyline").count();
        assert!(lines >= 3, "{}: {lines} polylines", p.display());
        assert!(svg.matches("<circle").count() >= 9, "{}", p.display());
    }
}

#[test]
fn report_command_writes_plots_table_and_block() {
    let dir = tempfile::tempdir().unwrap();
    for (i, r) in reports().iter().enumerate() {
        let run = dir.path().join(format!("runs/r{i}"));
        std::fs::create_dir_all(&run).unwrap();
        tern_bench::report::write_json(&run.join("scenario.json"), r).unwrap();
    }
    let doc = dir.path().join("benchmarks.md");
    std::fs::write(&doc, "# Benchmarks\n\nwritten by others\n").unwrap();
    let preamble = dir.path().join("preamble.md");
    std::fs::write(&preamble, "## Preamble\n").unwrap();
    let md = dir.path().join("combined.md");
    let img: PathBuf = dir.path().join("img");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tern-bench"))
            .arg("report")
            .arg(dir.path().join("runs"))
            .arg("--plots")
            .arg(&img)
            .args(["--plots-link", "img", "--preamble"])
            .arg(&preamble)
            .arg("--markdown")
            .arg(&md)
            .arg("--splice")
            .arg(&doc)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let stdout = run(&[]);
    assert!(stdout.contains("6 run(s)"), "{stdout}");
    for name in PLOTS {
        assert!(img.join(name).is_file(), "{name}");
    }
    let section = std::fs::read_to_string(&md).unwrap();
    assert!(section.starts_with("## Preamble\n"), "{section}");
    assert!(section.contains("| kernel sc=2 | max"), "{section}");
    assert!(
        section.contains("](img/syn-flood-answered.svg)"),
        "{section}"
    );
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nwritten by others\n"));
    assert_eq!(text.matches(BEGIN).count(), 1);
    assert_eq!(text.matches(END).count(), 1);
    assert!(text.contains(section.trim_end()));
    // A second run replaces the block instead of adding one.
    run(&[]);
    let again = std::fs::read_to_string(&doc).unwrap();
    assert_eq!(again.matches(BEGIN).count(), 1);
    assert_eq!(again, text);
    // --capacity prints one number.
    let out = Command::new(env!("CARGO_BIN_EXE_tern-bench"))
        .arg("report")
        .arg(dir.path().join("runs"))
        .args(["--capacity", "ternd"])
        .output()
        .unwrap();
    let cap: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(cap > 0.0);
}

/// Churn runs (two real ones from the lab: the kernel and ternd at 5k to 25k connections/s):
/// medians per system and rate, the goal over the rates where both kept up, and the table.
#[test]
fn churn_rows_and_the_connections_per_core_goal() {
    let ternd = canned("churn-ternd");
    let kernel = canned("churn-kernel");
    // A second ternd repetition with every step's busy time doubled: the medians fall between.
    let mut slow = ternd.clone();
    for st in &mut slow.churn_steps {
        if let Some(c) = &mut st.cpu {
            c.core_busy_s *= 2.0;
        }
    }
    let reports = vec![ternd.clone(), slow, kernel.clone()];
    let rows = compare::churn_aggregate(&reports);
    assert_eq!(rows.len(), 10, "{rows:#?}");
    assert!(rows[..5].iter().all(|r| r.system == "ternd" && r.runs == 2));
    assert!(rows[5..]
        .iter()
        .all(|r| r.system == "kernel sc=1" && r.runs == 1));
    let rates: Vec<u64> = rows[..5].iter().map(|r| r.rate).collect();
    assert_eq!(rates, [5000, 10000, 15000, 20000, 25000]);
    // The median of x and x/2 is 3x/4.
    let one = ternd.churn_steps[0].per_cpu_second().unwrap();
    assert!((rows[0].per_cpu_s.unwrap() - 0.75 * one).abs() < 1e-6 * one);

    let goal = compare::churn_goal(&rows, "kernel sc=1").expect("both systems ran");
    // Only rates where both completed ≥ 99 % are compared.
    let clean: Vec<&compare::ChurnRow> = rows[5..].iter().filter(|r| r.ok_pct >= 99.0).collect();
    assert!(clean.len() >= 2 && clean.len() < 5, "{rows:#?}");
    for k in &clean {
        let t = rows[..5].iter().find(|r| r.rate == k.rate).unwrap();
        let ratio = t.per_cpu_s.unwrap() / k.per_cpu_s.unwrap();
        let label = format!("{},{:03} {ratio:.2}×", k.rate / 1000, k.rate % 1000);
        assert!(goal.contains(&label), "{label} not in {goal}");
    }
    let list = goal
        .split("kept up with: ")
        .nth(1)
        .and_then(|l| l.split("; goal").next())
        .expect("a list of ratios");
    for k in rows[5..].iter().filter(|r| r.ok_pct < 99.0) {
        let label = format!("{},{:03} ", k.rate / 1000, k.rate % 1000);
        assert!(!list.contains(&label), "{label} in {list}");
    }
    assert!(goal.contains("goal ≥ 2×"), "{goal}");
    let table = compare::churn_table(&rows);
    assert_eq!(table.lines().count(), 12, "{table}");
    assert!(table.contains("| kernel sc=1 |"), "{table}");

    // Without the kernel there is nothing to compare.
    assert!(compare::churn_goal(&rows[..5], "kernel sc=1").is_none());
}
