//! `tern-bench report`: several `scenario.json` files (systems × repetitions) put together.
//!
//! [`aggregate`] groups the steps by system (`ternd`, `kernel sc=1`, `kernel sc=2`, ...) and by
//! asked flood rate and takes the median of every figure over the repetitions; [`table`] makes
//! the combined markdown table (one row per rate per system), [`goals`] the ratios the benchmark
//! issue names, and [`plot_all`] the SVG plots (answered vs offered SYNs, legitimate p99 connect
//! latency vs offered flood, answers per server CPU second vs offered flood), one line per
//! system. [`churn_aggregate`], [`churn_table`] and [`churn_goal`] do the same for the churn
//! scenario (connections per second). [`splice`] puts a generated section between the `<!-- bench:begin -->` and
//! `<!-- bench:end -->` markers of a document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::report::markdown_table;
use crate::scenario::{ChurnStep, ScenarioReport, ServerKind, Step};

/// The marker that opens the generated block of a document.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// The marker that closes it.
pub const END: &str = "<!-- bench:end -->";

/// The `scenario.json` files under `paths`: a file is taken as it is, a directory is searched
/// (three levels deep) for files called `scenario.json`; sorted, so the order is stable.
pub fn find_reports(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = e?.path();
            if path.is_dir() && depth > 0 {
                walk(&path, depth - 1, out)?;
            } else if path.file_name().is_some_and(|n| n == "scenario.json") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, 3, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads scenario reports.
pub fn load(paths: &[PathBuf]) -> Result<Vec<ScenarioReport>> {
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        })
        .collect()
}

/// The median (the mean of the middle two for an even count); `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A flood rate as a grouping key: `None` flat out, `Some(0)` no flood, else packets/s rounded.
pub type RateKey = Option<u64>;

/// The grouping key of an asked rate.
pub fn rate_key(rate: Option<f64>) -> RateKey {
    rate.map(|r| r.max(0.0).round() as u64)
}

/// The rate's name in tables: `none`, `25k`, `max`, ...
pub fn rate_label(key: RateKey) -> String {
    match key {
        None => "max".into(),
        Some(0) => "none".into(),
        Some(r) if r % 1000 == 0 => format!("{}k", r / 1000),
        Some(r) => format!("{r}"),
    }
}

/// One system at one asked flood rate: medians over the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `ternd`, `kernel sc=1`, ...
    pub system: String,
    /// The asked rate.
    pub rate: RateKey,
    /// Repetitions (steps) behind the medians.
    pub runs: usize,
    /// Flood packets/s offered (0 without a flood).
    pub offered_pps: f64,
    /// Packets/s the server sent.
    pub answered_pps: f64,
    /// The server's CPU seconds per second (1.0 = one core), if measured.
    pub cpu_util: Option<f64>,
    /// Packets sent per server CPU second, if measured.
    pub per_cpu_s: Option<f64>,
    /// Legitimate connections that succeeded, over all repetitions.
    pub legit_ok: u64,
    /// Legitimate attempts, over all repetitions.
    pub legit_attempts: u64,
    /// Median connect latency, µs (median over the repetitions).
    pub p50_us: f64,
    /// p99 connect latency, µs.
    pub p99_us: f64,
    /// p99.9 connect latency, µs.
    pub p999_us: f64,
}

impl Row {
    /// Share of legitimate attempts that succeeded, in percent.
    pub fn legit_ok_pct(&self) -> f64 {
        100.0 * self.legit_ok as f64 / self.legit_attempts.max(1) as f64
    }
}

/// Order of systems in tables and legends: ternd first, then the kernel by syncookies.
fn system_rank(name: &str) -> (u8, String) {
    let rank = if name.starts_with("ternd") {
        0
    } else if name.starts_with("kernel") {
        1
    } else {
        2
    };
    (rank, name.to_owned())
}

/// Rates in table order: no flood, fixed rates ascending, flat out last.
fn rate_rank(key: RateKey) -> (u8, u64) {
    match key {
        None => (1, 0),
        Some(r) => (0, r),
    }
}

/// Groups every step of `reports` by system and asked rate; medians over the repetitions.
pub fn aggregate(reports: &[ScenarioReport]) -> Vec<Row> {
    // (system order, rate order) -> (rate, steps)
    type Key = ((u8, String), (u8, u64));
    let mut groups: BTreeMap<Key, (RateKey, Vec<&Step>)> = BTreeMap::new();
    for r in reports {
        for st in &r.steps {
            let key = rate_key(st.rate);
            groups
                .entry((system_rank(&r.system()), rate_rank(key)))
                .or_insert_with(|| (key, Vec::new()))
                .1
                .push(st);
        }
    }
    groups
        .into_iter()
        .map(|(((_, system), _), (rate, steps))| {
            let m = |f: &dyn Fn(&Step) -> f64| {
                median(&steps.iter().map(|s| f(s)).collect::<Vec<_>>()).unwrap_or(0.0)
            };
            let cpu: Vec<f64> = steps
                .iter()
                .filter_map(|s| s.cpu.as_ref().map(|c| c.utilisation()))
                .collect();
            let per_cpu: Vec<f64> = steps.iter().filter_map(|s| s.per_cpu_second()).collect();
            Row {
                system,
                rate,
                runs: steps.len(),
                offered_pps: m(&|s| s.offered_pps()),
                answered_pps: m(&|s| s.answered_pps),
                cpu_util: median(&cpu),
                per_cpu_s: median(&per_cpu),
                legit_ok: steps.iter().map(|s| s.clients.successes).sum(),
                legit_attempts: steps.iter().map(|s| s.clients.attempts).sum(),
                p50_us: m(&|s| s.clients.connect_latency.p50_us),
                p99_us: m(&|s| s.clients.connect_latency.p99_us),
                p999_us: m(&|s| s.clients.connect_latency.p999_us),
            }
        })
        .collect()
}

/// The systems of `rows`, in table order.
pub fn systems(rows: &[Row]) -> Vec<String> {
    let mut s: Vec<String> = Vec::new();
    for r in rows {
        if !s.contains(&r.system) {
            s.push(r.system.clone());
        }
    }
    s
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn latency(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The combined markdown table: one row per system per asked rate.
pub fn table(rows: &[Row]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.system.clone(),
                rate_label(r.rate),
                r.runs.to_string(),
                thousands(r.offered_pps),
                thousands(r.answered_pps),
                r.cpu_util
                    .map_or("-".into(), |c| format!("{:.0} %", 100.0 * c)),
                r.per_cpu_s.map_or("-".into(), thousands),
                format!(
                    "{}/{} ({:.1} %)",
                    r.legit_ok,
                    r.legit_attempts,
                    r.legit_ok_pct()
                ),
                latency(r.p50_us),
                latency(r.p99_us),
                latency(r.p999_us),
            ]
        })
        .collect();
    markdown_table(
        &[
            "system",
            "flood",
            "runs",
            "offered pps",
            "answered pps",
            "server CPU",
            "answered per CPU-s",
            "legit ok",
            "connect p50",
            "p99",
            "p99.9",
        ],
        &body,
    )
}

/// The ratios the benchmark issue names, from one set of runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Goals {
    /// ternd's answers/s at its best rate over the raw AF_XDP reflect measured in the same
    /// runs (median over the runs that measured both), with the two rates.
    pub vs_reflect: Option<(f64, f64, f64)>,
    /// ternd's answers per CPU second over kernel sc=2's, flat out, with the two figures.
    pub per_cpu_vs_kernel2: Option<(f64, f64, f64)>,
    /// The same against kernel sc=1.
    pub per_cpu_vs_kernel1: Option<(f64, f64, f64)>,
    /// ternd's answers per CPU second over kernel sc=2's at every flood rate both ran (none and
    /// max included), with whether both answered at least 95 % of what was offered there.
    pub per_cpu_by_rate: Vec<(RateKey, f64, bool)>,
    /// ternd's capacity (highest median answers/s over its rates).
    pub ternd_capacity: Option<f64>,
    /// ternd without a flood and under the flood closest to half its capacity (within 25 %):
    /// (half-capacity row, no-flood row).
    pub half_capacity: Option<(Row, Row)>,
    /// The kernel's rows at that same flood rate, where it ran it (the issue asks what the
    /// kernel does under the same flood).
    pub half_capacity_kernel: Vec<Row>,
}

/// The highest median answered rate of `system`, over its rates.
pub fn capacity(rows: &[Row], system: &str) -> Option<f64> {
    rows.iter()
        .filter(|r| r.system == system)
        .map(|r| r.answered_pps)
        .max_by(f64::total_cmp)
}

fn row<'a>(rows: &'a [Row], system: &str, rate: RateKey) -> Option<&'a Row> {
    rows.iter().find(|r| r.system == system && r.rate == rate)
}

/// Works out [`Goals`] from the reports and their aggregated rows.
pub fn goals(reports: &[ScenarioReport], rows: &[Row]) -> Goals {
    let mut g = Goals::default();
    // ternd against reflect, run by run.
    let (mut ratios, mut ternd_best, mut reflected) = (Vec::new(), Vec::new(), Vec::new());
    for r in reports
        .iter()
        .filter(|r| r.config.server == ServerKind::Ternd)
    {
        let Some((reflect, _)) = &r.reflect else {
            continue;
        };
        let best = r.steps.iter().map(|s| s.answered_pps).fold(0.0, f64::max);
        if reflect.tx_pps > 0.0 {
            ratios.push(best / reflect.tx_pps);
            ternd_best.push(best);
            reflected.push(reflect.tx_pps);
        }
    }
    if let (Some(ratio), Some(t), Some(x)) =
        (median(&ratios), median(&ternd_best), median(&reflected))
    {
        g.vs_reflect = Some((ratio, t, x));
    }
    let per_cpu = |other: &str| {
        let t = row(rows, "ternd", None)?.per_cpu_s?;
        let k = row(rows, other, None)?.per_cpu_s?;
        (k > 0.0).then(|| (t / k, t, k))
    };
    g.per_cpu_vs_kernel2 = per_cpu("kernel sc=2");
    g.per_cpu_vs_kernel1 = per_cpu("kernel sc=1");
    for t in rows.iter().filter(|r| r.system == "ternd") {
        let Some(k) = row(rows, "kernel sc=2", t.rate) else {
            continue;
        };
        if let (Some(tp), Some(kp)) = (t.per_cpu_s, k.per_cpu_s) {
            if kp > 0.0 {
                let full = |r: &Row| {
                    r.rate.is_some_and(|x| x > 0) && r.answered_pps >= 0.95 * r.offered_pps
                };
                g.per_cpu_by_rate
                    .push((t.rate, tp / kp, full(t) && full(k)));
            }
        }
    }
    g.ternd_capacity = capacity(rows, "ternd");
    if let (Some(cap), Some(base)) = (g.ternd_capacity, row(rows, "ternd", Some(0))) {
        let half = cap / 2.0;
        let closest = rows
            .iter()
            .filter(|r| r.system == "ternd" && r.rate.is_some_and(|x| x > 0))
            .min_by(|a, b| {
                let da = (a.rate.unwrap_or(0) as f64 - half).abs();
                let db = (b.rate.unwrap_or(0) as f64 - half).abs();
                da.total_cmp(&db)
            });
        if let Some(h) = closest {
            if (h.rate.unwrap_or(0) as f64 - half).abs() <= 0.25 * half {
                g.half_capacity = Some((h.clone(), base.clone()));
                g.half_capacity_kernel = rows
                    .iter()
                    .filter(|r| r.system.starts_with("kernel") && r.rate == h.rate)
                    .cloned()
                    .collect();
            }
        }
    }
    g
}

/// The goals as markdown bullet points (also fit for a terminal).
pub fn goals_markdown(g: &Goals) -> String {
    let mut s = String::new();
    match g.vs_reflect {
        Some((ratio, t, x)) => s.push_str(&format!(
            "- ternd's SYN-ACK rate against the raw AF_XDP reflect path measured in the same runs: \
             **{:.0} %** ({} of {} pps, medians over the runs)\n",
            100.0 * ratio,
            thousands(t),
            thousands(x)
        )),
        None => s.push_str(
            "- ternd against raw AF_XDP reflect: not measured (no ternd run with --reflect)\n",
        ),
    }
    for (name, v) in [
        ("kernel sc=2", g.per_cpu_vs_kernel2),
        ("kernel sc=1", g.per_cpu_vs_kernel1),
    ] {
        match v {
            Some((ratio, t, k)) => s.push_str(&format!(
                "- SYN-ACKs answered per second of server CPU, flat out, ternd against {name}: \
                 **{ratio:.2}×** ({} against {}){}\n",
                thousands(t),
                thousands(k),
                if name == "kernel sc=2" {
                    if ratio >= 1.5 {
                        "; goal ≥ 1.5×: met"
                    } else {
                        "; goal ≥ 1.5×: **missed**"
                    }
                } else {
                    ""
                }
            )),
            None => s.push_str(&format!(
                "- answers per CPU second, ternd against {name}: not measured\n"
            )),
        }
    }
    if !g.per_cpu_by_rate.is_empty() {
        s.push_str(
            "- the same ratio at each flood rate (* = both servers answered ≥ 95 % of the SYNs \
             offered, so both did the same work): ",
        );
        let parts: Vec<String> = g
            .per_cpu_by_rate
            .iter()
            .map(|(r, x, full)| {
                format!("{} {x:.2}×{}", rate_label(*r), if *full { "*" } else { "" })
            })
            .collect();
        s.push_str(&parts.join(", "));
        s.push('\n');
    }
    match &g.half_capacity {
        Some((h, base)) => s.push_str(&format!(
            "- legitimate clients of ternd under a flood at about half its capacity ({} of {} \
             pps): {:.1} % succeed, connect p99 {} — without a flood {:.1} %, p99 {}\n",
            thousands(h.offered_pps),
            thousands(g.ternd_capacity.unwrap_or(0.0)),
            h.legit_ok_pct(),
            latency(h.p99_us),
            base.legit_ok_pct(),
            latency(base.p99_us)
        )),
        None => s.push_str(
            "- ternd at half its capacity: no ternd step near half its capacity was run\n",
        ),
    }
    if let Some((h, base)) = &g.half_capacity {
        let ratio = h.p99_us / base.p99_us.max(1e-9);
        s.push_str(&format!(
            "  (p99 under the flood {ratio:.1}× the no-flood p99; goal ≤ 2×: {})\n",
            if ratio <= 2.0 { "met" } else { "**missed**" }
        ));
        for k in &g.half_capacity_kernel {
            s.push_str(&format!(
                "- {} under the same flood ({} pps offered): {:.1} % succeed, connect p99 {}, \
                 {:.0} % of its core\n",
                k.system,
                thousands(k.offered_pps),
                k.legit_ok_pct(),
                latency(k.p99_us),
                100.0 * k.cpu_util.unwrap_or(0.0)
            ));
        }
    }
    s
}

/// One system at one asked churn rate: medians over the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnRow {
    /// `ternd`, `kernel sc=1`, ...
    pub system: String,
    /// Asked connections per second.
    pub rate: u64,
    /// Repetitions behind the medians.
    pub runs: usize,
    /// Completed connections per second of schedule.
    pub done_per_s: f64,
    /// Completed over attempted, all repetitions together, in percent.
    pub ok_pct: f64,
    /// The server core's busy share (1.0 = one core).
    pub busy: Option<f64>,
    /// Completed connections per busy CPU-second of the server's core.
    pub per_cpu_s: Option<f64>,
    /// Median connect latency (SYN to SYN-ACK), µs.
    pub p50_us: f64,
    /// p99 connect latency, µs.
    pub p99_us: f64,
}

/// Groups the churn steps of `reports` by system and asked rate; medians over the repetitions.
pub fn churn_aggregate(reports: &[ScenarioReport]) -> Vec<ChurnRow> {
    let mut groups: BTreeMap<((u8, String), u64), Vec<&ChurnStep>> = BTreeMap::new();
    for r in reports {
        for st in &r.churn_steps {
            groups
                .entry((system_rank(&r.system()), st.rate.round() as u64))
                .or_default()
                .push(st);
        }
    }
    groups
        .into_iter()
        .map(|(((_, system), rate), steps)| {
            let m = |f: &dyn Fn(&ChurnStep) -> f64| {
                median(&steps.iter().map(|s| f(s)).collect::<Vec<_>>()).unwrap_or(0.0)
            };
            let busy: Vec<f64> = steps.iter().filter_map(|s| s.utilisation()).collect();
            let per: Vec<f64> = steps.iter().filter_map(|s| s.per_cpu_second()).collect();
            let done: u64 = steps.iter().map(|s| s.churn.successes).sum();
            let attempts: u64 = steps.iter().map(|s| s.churn.attempts).sum();
            ChurnRow {
                system,
                rate,
                runs: steps.len(),
                done_per_s: m(&|s| s.churn.success_rate),
                ok_pct: 100.0 * done as f64 / attempts.max(1) as f64,
                busy: median(&busy),
                per_cpu_s: median(&per),
                p50_us: m(&|s| s.churn.connect_latency.p50_us),
                p99_us: m(&|s| s.churn.connect_latency.p99_us),
            }
        })
        .collect()
}

/// The churn rows as one markdown table.
pub fn churn_table(rows: &[ChurnRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.system.clone(),
                thousands(r.rate as f64),
                r.runs.to_string(),
                thousands(r.done_per_s),
                format!("{:.1} %", r.ok_pct),
                r.busy.map_or("-".into(), |b| format!("{:.0} %", 100.0 * b)),
                r.per_cpu_s.map_or("-".into(), thousands),
                latency(r.p50_us),
                latency(r.p99_us),
            ]
        })
        .collect();
    markdown_table(
        &[
            "system",
            "connections/s asked",
            "runs",
            "done/s",
            "done",
            "server core busy",
            "connections per busy CPU-s",
            "connect p50",
            "p99",
        ],
        &body,
    )
}

/// Completion (in percent) from which a churn step counts as the server keeping up.
pub const CHURN_CLEAN_PCT: f64 = 99.0;

/// The connections-per-core goal from churn rows, as a markdown bullet: ternd's connections
/// per busy CPU-second over `kernel`'s at every rate where both completed at least
/// [`CHURN_CLEAN_PCT`], and each one's highest such rate. `None` without both systems.
pub fn churn_goal(rows: &[ChurnRow], kernel: &str) -> Option<String> {
    let clean = |r: &&ChurnRow| r.ok_pct >= CHURN_CLEAN_PCT;
    let best = |system: &str| {
        rows.iter()
            .filter(|r| r.system == system)
            .filter(clean)
            .max_by_key(|r| r.rate)
    };
    let (t, k) = (best("ternd")?, best(kernel)?);
    let mut ratios = Vec::new();
    for tr in rows.iter().filter(|r| r.system == "ternd").filter(clean) {
        let Some(kr) = rows
            .iter()
            .find(|r| r.system == kernel && r.rate == tr.rate)
            .filter(clean)
        else {
            continue;
        };
        if let (Some(a), Some(b)) = (tr.per_cpu_s, kr.per_cpu_s) {
            if b > 0.0 {
                ratios.push((tr.rate, a / b));
            }
        }
    }
    let at_best = |r: &ChurnRow| {
        format!(
            "{} connections/s at {} of a core ({} per busy CPU-s)",
            thousands(r.done_per_s),
            r.busy.map_or("-".into(), |b| format!("{:.0} %", 100.0 * b)),
            r.per_cpu_s.map_or("-".into(), thousands)
        )
    };
    let mut s = format!(
        "- connections per second per server core (connect, echo, close; churn): highest rate with ≥ {CHURN_CLEAN_PCT:.0} % done: ternd {}, {kernel} {}",
        at_best(t),
        at_best(k)
    );
    if !ratios.is_empty() {
        let parts: Vec<String> = ratios
            .iter()
            .map(|(r, x)| format!("{} {x:.2}×", thousands(*r as f64)))
            .collect();
        s.push_str(&format!(
            "; ternd's connections per busy CPU-s over the kernel's at the rates both kept up with: {}",
            parts.join(", ")
        ));
        let worst = ratios.iter().map(|(_, x)| *x).fold(f64::INFINITY, f64::min);
        let best_ratio = ratios.last().map_or(0.0, |(_, x)| *x);
        s.push_str(if best_ratio >= 2.0 {
            if worst >= 2.0 {
                "; goal ≥ 2×: met at every rate"
            } else {
                "; goal ≥ 2×: met at the highest common rate, not below it"
            }
        } else {
            "; goal ≥ 2×: **missed**"
        });
    }
    s.push('\n');
    Some(s)
}

/// The plots [`plot_all`] writes, by file name.
pub const PLOTS: [&str; 3] = [
    "syn-flood-answered.svg",
    "syn-flood-latency.svg",
    "syn-flood-per-cpu.svg",
];

fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    P[i % P.len()]
}

/// Each system's points, x ascending.
fn series(rows: &[Row], y: impl Fn(&Row) -> Option<f64>) -> Vec<(String, Vec<(f64, f64)>)> {
    systems(rows)
        .into_iter()
        .map(|sys| {
            let mut pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.system == sys)
                .filter_map(|r| y(r).map(|v| (r.offered_pps, v)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (sys, pts)
        })
        .collect()
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(
    path: &Path,
) -> impl FnOnce(DrawingAreaErrorKind<E>) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("drawing {}: {e}", path.display())
}

/// One line chart, x = offered flood pps, one line per system.
fn line_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    data: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
    diagonal: bool,
) -> Result<()> {
    let max_x = data
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max)
        * 1.05;
    let ys = data.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let max_y = ys.clone().fold(1.0, f64::max) * 1.1;
    let min_y = ys.fold(f64::INFINITY, f64::min).min(max_y / 10.0).max(1e-3);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error(path))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    let x_fmt = |x: &f64| format!("{:.0}k", x / 1000.0);
    macro_rules! draw {
        ($chart:expr, $ylabel:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("flood SYN/s offered")
                .y_desc(y_desc)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&$ylabel)
                .draw()
                .map_err(plot_error(path))?;
            if diagonal {
                let top = max_x.min(max_y);
                chart
                    .draw_series(LineSeries::new(
                        [(0.0, 0.0), (top, top)],
                        RGBColor(0xaa, 0xaa, 0xaa).stroke_width(1),
                    ))
                    .map_err(plot_error(path))?
                    .label("answered = offered")
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], RGBColor(0xaa, 0xaa, 0xaa))
                    });
            }
            for (i, (name, pts)) in data.iter().enumerate() {
                let c = colour(i);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                    .map_err(plot_error(path))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                    .map_err(plot_error(path))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error(path))?;
        }};
    }
    if log_y {
        let chart = builder
            .build_cartesian_2d(0.0..max_x, (min_y..max_y).log_scale())
            .map_err(plot_error(path))?;
        draw!(chart, |y: &f64| format!("{y}"));
    } else {
        let chart = builder
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)
            .map_err(plot_error(path))?;
        draw!(chart, |y: &f64| format!("{:.0}k", y / 1000.0));
    }
    root.present().map_err(plot_error(path))?;
    Ok(())
}

/// Writes the three plots of [`PLOTS`] to `dir`; returns their paths.
pub fn plot_all(rows: &[Row], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let paths: Vec<PathBuf> = PLOTS.iter().map(|n| dir.join(n)).collect();
    line_chart(
        &paths[0],
        "SYN-ACKs answered against SYNs offered",
        "packets/s the server sent",
        &series(rows, |r| Some(r.answered_pps)),
        false,
        true,
    )?;
    line_chart(
        &paths[1],
        "Legitimate clients: p99 connect latency under the flood",
        "p99 connect latency, ms (log)",
        &series(rows, |r| {
            (r.legit_ok > 0).then(|| r.p99_us.max(1.0) / 1000.0)
        }),
        true,
        false,
    )?;
    line_chart(
        &paths[2],
        "Packets sent per second of server CPU",
        "packets per CPU second",
        &series(rows, |r| r.per_cpu_s),
        false,
        false,
    )?;
    Ok(paths)
}

/// `doc` with the text between [`BEGIN`] and [`END`] replaced by `block` (markers kept), or, if
/// `doc` has no such block, with one appended at the end.
pub fn splice(doc: &str, block: &str) -> String {
    let block = block.trim_end_matches('\n');
    if let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) {
        if b < e {
            return format!("{}{BEGIN}\n{block}\n{}", &doc[..b], &doc[e..]);
        }
    }
    let mut out = doc.trim_end_matches('\n').to_owned();
    out.push_str(&format!("\n\n{BEGIN}\n{block}\n{END}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn labels_and_numbers() {
        assert_eq!(rate_label(None), "max");
        assert_eq!(rate_label(Some(0)), "none");
        assert_eq!(rate_label(Some(25_000)), "25k");
        assert_eq!(rate_label(Some(61_234)), "61234");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(latency(250.0), "250 µs");
        assert_eq!(latency(2_500.0), "2.5 ms");
        assert_eq!(latency(2_500_000.0), "2500 ms");
    }

    #[test]
    fn splice_replaces_or_appends() {
        let doc = "# T\n\nkept\n";
        let once = splice(doc, "one\n");
        assert_eq!(once, format!("# T\n\nkept\n\n{BEGIN}\none\n{END}\n"));
        let twice = splice(&(once.clone() + "after\n"), "two");
        assert_eq!(
            twice,
            format!("# T\n\nkept\n\n{BEGIN}\ntwo\n{END}\nafter\n")
        );
    }
}
