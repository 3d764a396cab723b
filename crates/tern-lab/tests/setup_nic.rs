//! `scripts/setup-nic.sh` against the veth lab's server end: `check` reports what veth is,
//! `apply --dry-run` only prints, `apply` changes what it says and records the old values,
//! a second `apply` finds nothing to do, and `undo` puts everything back.
//!
//! The script runs inside the server namespace under `ip netns exec`, as an operator would run
//! it, with its state directory pointed at a temporary directory of the test's own. These tests
//! need root; `TERN_SKIP_LAB=1` skips them explicitly.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tern_lab::{lab_available, run, scripts_dir, Lab, LabConfig, Side};

const IF: &str = "veth-srv";

/// A lab that is the only one of this file while it lives. Kernel threads belong to no network
/// namespace, and where netdev netlink is missing the script finds veth-srv's NAPI threads by
/// their names, which the veth-srv of every concurrent lab shares: so these tests take turns.
struct SerialLab {
    // Dropped first: the lab goes down before the next test's turn.
    lab: Lab,
    _turn: MutexGuard<'static, ()>,
}

impl Deref for SerialLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

fn lab() -> Option<SerialLab> {
    static TURN: Mutex<()> = Mutex::new(());
    if !lab_available() {
        return None;
    }
    // A test that failed still held its turn properly; its panic is reported by itself.
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(SerialLab {
        lab: Lab::up(LabConfig {
            queues: Some(2),
            ..LabConfig::default()
        }),
        _turn: turn,
    })
}

fn script() -> PathBuf {
    scripts_dir().join("setup-nic.sh")
}

/// What one run of the script did.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `check` line of check `name` (its second column).
    fn check_line(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{self}"))
    }

    /// Asserts check `name` has `status` (OK, WARN, FAIL) and mentions every one of `words`.
    fn assert_check(&self, name: &str, status: &str, words: &[&str]) {
        let line = self.check_line(name);
        assert!(
            line.starts_with(status),
            "`{name}` is not {status}: {line}\n{self}"
        );
        for w in words {
            assert!(line.contains(w), "`{name}` line lacks {w:?}: {line}");
        }
    }

    /// The commands of a dry run: every stdout line that is not a `#` comment.
    fn commands(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect()
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A command running setup-nic.sh in the server namespace, with its state under `state`.
fn setup_nic_command(lab: &Lab, state: &Path, args: &[&str]) -> Command {
    let mut cmd = lab.command(Side::Server, "bash");
    cmd.arg(script())
        .args(args)
        .env("TERN_SETUP_NIC_STATE_DIR", state)
        .env_remove("TERN_SETUP_NIC_NO_NETLINK");
    cmd
}

fn setup_nic(lab: &Lab, state: &Path, args: &[&str]) -> Ran {
    let mut cmd = setup_nic_command(lab, state, args);
    Ran::from(
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
    )
}

/// `check` with bpffs mounted on /sys/fs/bpf. `ip netns exec` gives the command a /sys of the
/// namespace's own, without the host's bpffs; the mount lives only as long as this one
/// `ip netns exec` (its mount namespace), so nothing outside the test sees it.
fn check_with_bpffs(lab: &Lab, state: &Path, extra: &[&str]) -> Ran {
    let mut cmd = lab.command(Side::Server, "bash");
    cmd.args([
        "-c",
        r#"mount -t bpf bpf /sys/fs/bpf && exec bash "$0" check "$@""#,
    ])
    .arg(script())
    .arg(IF)
    .args(extra)
    .env("TERN_SETUP_NIC_STATE_DIR", state)
    .env_remove("TERN_SETUP_NIC_NO_NETLINK");
    Ran::from(
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
    )
}

/// `ethtool -k veth-srv` in the server namespace.
fn ethtool_k(lab: &Lab) -> String {
    run(lab.command(Side::Server, "ethtool").args(["-k", IF]))
}

/// The state of one feature (`on`/`off`) in `ethtool -k` output.
fn feature(lab: &Lab, long_name: &str) -> String {
    let all = ethtool_k(lab);
    let prefix = format!("{long_name}:");
    all.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {long_name} in ethtool -k:\n{all}"))
        .to_owned()
}

fn set_gro(lab: &Lab, on: bool) {
    run(lab.command(Side::Server, "ethtool").args([
        "-K",
        IF,
        "gro",
        if on { "on" } else { "off" },
    ]));
    assert_eq!(
        feature(lab, "generic-receive-offload"),
        if on { "on" } else { "off" }
    );
}

/// A sysfs attribute of veth-srv, read in the server namespace.
fn sysfs(lab: &Lab, attr: &str) -> String {
    run(lab
        .command(Side::Server, "cat")
        .arg(format!("/sys/class/net/{IF}/{attr}")))
    .trim()
    .to_owned()
}

/// The state file apply writes for veth-srv in this lab's server namespace.
fn state_file(lab: &Lab, state: &Path) -> PathBuf {
    state.join(format!("setup-nic-{IF}@{}.state", lab.netns(Side::Server)))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

#[test]
fn check_reports_the_veth_lab() {
    let Some(lab) = lab() else { return };
    let state = tempdir();

    let ran = check_with_bpffs(&lab, state.path(), &["--queues", "2"]);
    assert_eq!(ran.code, Some(0), "check failed:\n{ran}");
    ran.assert_check("af_xdp", "OK", &[]);
    ran.assert_check("bpf", "OK", &[]);
    ran.assert_check("bpf_link", "OK", &[]);
    ran.assert_check("bpffs", "OK", &[]);
    ran.assert_check("caps", "OK", &["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    ran.assert_check(
        "driver",
        "OK",
        &["veth: native XDP yes, AF_XDP zero-copy no", "copy mode"],
    );
    ran.assert_check("queues", "OK", &["2 rx queue(s)", "want 2"]);
    ran.assert_check("mtu", "OK", &["1500", "<= 1792"]);
    ran.assert_check("lro", "OK", &[]);
    // lab.sh turns GRO off.
    ran.assert_check("gro", "OK", &["GRO off"]);
    ran.assert_check("checksum", "OK", &[]);
    ran.assert_check("xdp", "OK", &["no XDP program attached"]);
    assert!(ran.stdout.contains(", 0 FAIL"), "{ran}");

    // Without the netdev family (kernels before 6.3, or no python3) the driver table answers.
    let mut cmd = lab.command(Side::Server, "bash");
    cmd.args([
        "-c",
        r#"mount -t bpf bpf /sys/fs/bpf && exec bash "$0" check veth-srv --queues 2"#,
    ])
    .arg(script())
    .env("TERN_SETUP_NIC_STATE_DIR", state.path())
    .env("TERN_SETUP_NIC_NO_NETLINK", "1");
    let table = Ran::from(cmd.output().expect("run setup-nic.sh"));
    table.assert_check(
        "driver",
        "OK",
        &["veth: native XDP yes, AF_XDP zero-copy no", "driver table"],
    );

    // Asking for more queues than the veth was created with: a warning saying how to get them.
    let more = check_with_bpffs(&lab, state.path(), &["--queues", "4"]);
    assert_eq!(more.code, Some(0), "a WARN is not a failure:\n{more}");
    more.assert_check("queues", "WARN", &["at most 2", "numrxqueues", "fix:"]);

    // Plain `ip netns exec` hides /sys/fs/bpf, but /run/tern/bpffs (mounted by bootstrap.sh on
    // the host) is still there, and ternd pins its link there in that case.
    let plain = setup_nic(&lab, state.path(), &["check", IF, "--queues", "2"]);
    assert_eq!(plain.code, Some(0), "{plain}");
    plain.assert_check("bpffs", "OK", &["/run/tern/bpffs"]);

    // With neither (unmounted inside this exec's own mount namespace only): a FAIL, exit
    // status 1, and the fix.
    let mut cmd = lab.command(Side::Server, "bash");
    cmd.args([
        "-c",
        r#"umount /run/tern/bpffs 2>/dev/null; exec bash "$0" check "$@""#,
    ])
    .arg(script())
    .args([IF, "--queues", "2"])
    .env("TERN_SETUP_NIC_STATE_DIR", state.path());
    let no_bpffs = Ran::from(cmd.output().expect("bash runs"));
    assert_eq!(no_bpffs.code, Some(1), "{no_bpffs}");
    no_bpffs.assert_check("bpffs", "FAIL", &["fix: run scripts/bootstrap.sh"]);
    assert!(no_bpffs.stdout.contains(", 1 FAIL"), "{no_bpffs}");
}

#[test]
fn errors_name_the_problem_and_the_way_out() {
    let Some(lab) = lab() else { return };
    let state = tempdir();
    for cmd in ["check", "apply", "undo"] {
        let ran = setup_nic(&lab, state.path(), &[cmd, "nosuch0"]);
        assert_eq!(ran.code, Some(1), "{cmd}:\n{ran}");
        assert!(
            ran.stderr.contains("no interface 'nosuch0'"),
            "{cmd} does not name the interface:\n{ran}"
        );
        assert!(
            ran.stderr.contains("available: lo, veth-srv"),
            "{cmd} does not list the namespace's interfaces:\n{ran}"
        );
    }
    // Usage errors are told apart from failed checks.
    let ran = setup_nic(&lab, state.path(), &["check"]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("needs an interface name"), "{ran}");

    // apply and undo need root (a dry run does not).
    let mut cmd = lab.command(Side::Server, "setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
        .arg(script())
        .args(["apply", IF])
        .env("TERN_SETUP_NIC_STATE_DIR", state.path());
    let ran = Ran::from(cmd.output().expect("run setpriv"));
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(ran.stderr.contains("needs root"), "{ran}");

    // No ethtool on the PATH: say where it comes from. `ip` stays reachable through a
    // directory of its own; /usr/sbin, where Debian has ethtool, is left out.
    let bin = tempdir();
    let ip = run(Command::new("sh").args(["-c", "command -v ip"]));
    std::os::unix::fs::symlink(ip.trim(), bin.path().join("ip")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let mut cmd = setup_nic_command(&lab, state.path(), &["check", IF]);
    cmd.env("PATH", &path);
    let ran = Ran::from(cmd.output().expect("run setup-nic.sh"));
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(
        ran.stderr
            .contains("ethtool not found: scripts/bootstrap.sh installs it"),
        "{ran}"
    );
}

#[test]
fn apply_dry_run_prints_the_commands_and_changes_nothing() {
    let Some(lab) = lab() else { return };
    let state = tempdir();
    set_gro(&lab, true);
    let before = ethtool_k(&lab);
    let defer_before = sysfs(&lab, "napi_defer_hard_irqs");

    let ran = setup_nic(
        &lab,
        state.path(),
        &["apply", IF, "--queues", "2", "--busy-poll", "--dry-run"],
    );
    assert_eq!(ran.code, Some(0), "{ran}");
    let commands = ran.commands();
    assert!(
        commands.contains(&"ethtool -K veth-srv gro off"),
        "no `gro off` among {commands:?}\n{ran}"
    );
    assert!(
        commands.contains(&"echo 2 > /sys/class/net/veth-srv/napi_defer_hard_irqs"),
        "no napi_defer_hard_irqs among {commands:?}\n{ran}"
    );
    assert!(
        commands.contains(&"echo 200000 > /sys/class/net/veth-srv/gro_flush_timeout"),
        "no gro_flush_timeout among {commands:?}\n{ran}"
    );
    // The lab already has 2 queues and LRO is fixed off: nothing to do there.
    assert!(
        !commands.iter().any(|c| c.starts_with("ethtool -L")),
        "{ran}"
    );
    assert!(ran.stdout.contains("# queues: rx 2, tx 2 already"), "{ran}");
    assert!(ran.stdout.contains("TX offloads"), "{ran}");

    assert_eq!(ethtool_k(&lab), before, "the dry run changed offloads");
    assert_eq!(sysfs(&lab, "napi_defer_hard_irqs"), defer_before);
    assert!(
        !state_file(&lab, state.path()).exists(),
        "the dry run wrote state"
    );

    // undo --dry-run with nothing applied.
    let undo = setup_nic(&lab, state.path(), &["undo", IF, "--dry-run"]);
    assert_eq!(undo.code, Some(0), "{undo}");
    assert!(undo.stdout.contains("nothing to undo"), "{undo}");
    assert!(undo.commands().is_empty(), "{undo}");
}

#[test]
fn apply_is_recorded_idempotent_and_undone() {
    let Some(lab) = lab() else { return };
    let state = tempdir();
    let file = state_file(&lab, state.path());

    let ran = setup_nic(&lab, state.path(), &["undo", IF]);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stdout.contains("nothing to undo"), "{ran}");

    // The lab turns GRO off; turn it on so apply has something to change.
    set_gro(&lab, true);
    let check = check_with_bpffs(&lab, state.path(), &["--queues", "2"]);
    check.assert_check(
        "gro",
        "WARN",
        &["GRO on", "fix: setup-nic.sh apply veth-srv"],
    );
    assert_eq!(check.code, Some(0), "a WARN is not a failure:\n{check}");

    let apply = ["apply", IF, "--queues", "2", "--busy-poll"];
    let ran = setup_nic(&lab, state.path(), &apply);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stdout.contains("ran: ethtool -K veth-srv gro off"),
        "{ran}"
    );
    assert!(ran.stdout.contains("3 change(s)"), "{ran}");
    assert_eq!(feature(&lab, "generic-receive-offload"), "off");
    assert_eq!(sysfs(&lab, "napi_defer_hard_irqs"), "2");
    assert_eq!(sysfs(&lab, "gro_flush_timeout"), "200000");
    // net.core.busy_poll exists only in the initial namespace: a warning, not a failure.
    assert!(
        ran.stdout
            .contains("WARN: busy-poll: net.core.busy_poll does not exist here"),
        "{ran}"
    );

    let recorded = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("no state file {}: {e}\n{ran}", file.display()));
    for line in [
        "feature\tgro\ton",
        "sysfs\t/sys/class/net/veth-srv/napi_defer_hard_irqs\t0",
        "sysfs\t/sys/class/net/veth-srv/gro_flush_timeout\t0",
    ] {
        assert!(
            recorded.lines().any(|l| l == line),
            "state lacks {line:?}:\n{recorded}"
        );
    }

    let check = check_with_bpffs(&lab, state.path(), &["--queues", "2"]);
    assert_eq!(check.code, Some(0), "{check}");
    check.assert_check("gro", "OK", &["GRO off"]);
    check.assert_check(
        "busy_poll",
        "OK",
        &["napi_defer_hard_irqs=2", "gro_flush_timeout=200000"],
    );

    // Again: nothing to change, and the recorded values are still those from before.
    let again = setup_nic(&lab, state.path(), &apply);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(
        again.stdout.contains("apply veth-srv: nothing to change"),
        "{again}"
    );
    assert!(!again.stdout.contains("ran:"), "{again}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), recorded);

    let undo = setup_nic(&lab, state.path(), &["undo", IF]);
    assert_eq!(undo.code, Some(0), "{undo}");
    assert!(
        undo.stdout.contains("ran: ethtool -K veth-srv gro on"),
        "{undo}"
    );
    assert_eq!(feature(&lab, "generic-receive-offload"), "on");
    assert_eq!(sysfs(&lab, "napi_defer_hard_irqs"), "0");
    assert_eq!(sysfs(&lab, "gro_flush_timeout"), "0");
    assert!(!file.exists(), "undo left {}", file.display());

    let ran = setup_nic(&lab, state.path(), &["undo", IF]);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stdout.contains("nothing to undo"), "{ran}");
}

/// veth can lower its queue count up to the maximum it was created with (`ethtool -L rx N`).
#[test]
fn apply_sets_the_queue_count_and_undo_restores_it() {
    let Some(lab) = lab() else { return };
    let state = tempdir();
    let rx_queues = |lab: &Lab| {
        let out = run(lab.command(Side::Server, "ethtool").args(["-l", IF]));
        // The second RX line is the current setting (the first is the maximum).
        out.lines()
            .filter_map(|l| l.strip_prefix("RX:"))
            .map(|v| v.trim().to_owned())
            .nth(1)
            .unwrap_or_else(|| panic!("no current RX in ethtool -l:\n{out}"))
    };
    assert_eq!(rx_queues(&lab), "2");

    let ran = setup_nic(&lab, state.path(), &["apply", IF, "--queues", "1"]);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(
        ran.stdout.contains("ran: ethtool -L veth-srv rx 1"),
        "{ran}"
    );
    assert_eq!(rx_queues(&lab), "1");
    let check = check_with_bpffs(&lab, state.path(), &["--queues", "1"]);
    check.assert_check("queues", "OK", &["1 rx queue(s) (max 2)"]);

    // More than the veth was created with: a warning with the reason, nothing changed.
    let more = setup_nic(&lab, state.path(), &["apply", IF, "--queues", "4"]);
    assert_eq!(more.code, Some(0), "{more}");
    assert!(
        more.stdout
            .contains("WARN: queues: 4 asked but the driver allows at most 2"),
        "{more}"
    );
    assert_eq!(rx_queues(&lab), "1");

    let undo = setup_nic(&lab, state.path(), &["undo", IF]);
    assert_eq!(undo.code, Some(0), "{undo}");
    assert!(
        undo.stdout.contains("ran: ethtool -L veth-srv rx 2"),
        "{undo}"
    );
    assert_eq!(rx_queues(&lab), "2");
}

/// Real NICs have an IRQ per queue, found by the names drivers give them in /proc/interrupts.
/// veth has none, so this feeds the script a fixture naming real IRQs of this machine after
/// veth-srv's queues, and only looks at what a dry run would do with them.
#[test]
fn apply_finds_queue_irqs_by_their_driver_names() {
    let Some(lab) = lab() else { return };
    let state = tempdir();
    // Four IRQs of this machine whose affinity can be read (the dry run reads it).
    let interrupts = std::fs::read_to_string("/proc/interrupts").unwrap();
    let irqs: Vec<&str> = interrupts
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.strip_suffix(':'))
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| Path::new(&format!("/proc/irq/{n}/smp_affinity_list")).exists())
        .take(4)
        .collect();
    if irqs.len() < 4 {
        eprintln!("apply_finds_queue_irqs_by_their_driver_names: fewer than 4 IRQs here; skipped");
        return;
    }
    // i40e/ice style with the driver in front, ixgbe/igb style, a different interface whose name
    // ends like ours, and a queue beyond the 2 asked for.
    let names = [
        "i40e-veth-srv-TxRx-0",
        "veth-srv-TxRx-1",
        "myveth-srv-TxRx-0",
        "veth-srv-TxRx-2",
    ];
    let mut fixture = String::from("           CPU0       CPU1\n");
    for (irq, name) in irqs.iter().zip(names) {
        fixture.push_str(&format!(
            "{irq:>4}:          1          0  IR-PCI-MSI 1-edge      {name}\n"
        ));
    }
    let file = state.path().join("interrupts");
    std::fs::write(&file, fixture).unwrap();

    let mut cmd = setup_nic_command(
        &lab,
        state.path(),
        &["apply", IF, "--queues", "2", "--cores", "1,0", "--dry-run"],
    );
    cmd.env("TERN_SETUP_NIC_INTERRUPTS", &file);
    let ran = Ran::from(cmd.output().expect("run setup-nic.sh"));
    assert_eq!(ran.code, Some(0), "{ran}");
    // Queue 0 goes to core 1 and queue 1 to core 0: either a command or "already".
    for (irq, core, queue) in [(irqs[0], 1, 0), (irqs[1], 0, 1)] {
        let command = format!("echo {core} > /proc/irq/{irq}/smp_affinity_list");
        let already = format!("irq {irq} (queue {queue}) on core {core} already");
        assert!(
            ran.commands().contains(&command.as_str()) || ran.stdout.contains(&already),
            "irq {irq} of queue {queue} not pinned to core {core}:\n{ran}"
        );
    }
    for irq in [irqs[2], irqs[3]] {
        assert!(
            !ran.stdout.contains(&format!("/proc/irq/{irq}/"))
                && !ran.stdout.contains(&format!("irq {irq} ")),
            "irq {irq} is not one of veth-srv's first 2 queues:\n{ran}"
        );
    }
    // With IRQs found, the threaded-NAPI fallback stays out of it.
    assert!(!ran.stdout.contains("taskset"), "{ran}");
    assert!(!ran.stdout.contains("NAPI thread"), "{ran}");
}

/// The CPUs of `taskset -pc PID`'s answer.
fn affinity(pid: &str) -> String {
    let out = run(Command::new("taskset").args(["-pc", pid]));
    out.rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// veth has no IRQs: apply pins its threaded-NAPI kernel threads instead. They exist only while
/// GRO is on or an XDP program is attached, so this test attaches a minimal XDP_PASS program.
#[test]
fn apply_pins_napi_threads_when_xdp_keeps_them() {
    let Some(lab) = lab() else { return };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() == "0" {
        eprintln!("apply_pins_napi_threads_when_xdp_keeps_them: one CPU only, nothing to pin apart; skipped");
        return;
    }
    let state = tempdir();

    // XDP_PASS (2) with no headers needed.
    let src = state.path().join("pass.bpf.c");
    let obj = state.path().join("pass.bpf.o");
    std::fs::write(
        &src,
        "__attribute__((section(\"xdp\"), used)) int pass(void *ctx) { return 2; }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
    let mut clang = Command::new("clang");
    clang
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj);
    run(&mut clang);
    run(lab
        .command(Side::Server, "ip")
        .args(["link", "set", "dev", IF, "xdpdrv", "obj"])
        .arg(&obj)
        .args(["sec", "xdp"]));

    // Bounded wait for the NAPI threads the attach creates.
    let deadline = Instant::now() + Duration::from_secs(5);
    let check = loop {
        let check = check_with_bpffs(&lab, state.path(), &["--queues", "2"]);
        if check.check_line("irqs").contains("2 NAPI thread(s)") || Instant::now() > deadline {
            break check;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    check.assert_check(
        "irqs",
        "WARN",
        &["threaded NAPI 1", "2 of 2 NAPI thread(s) not pinned"],
    );
    check.assert_check(
        "xdp",
        "WARN",
        &["attached by something other than a pinned ternd"],
    );

    let apply = ["apply", IF, "--queues", "2", "--cores", "1,0"];
    let ran = setup_nic(&lab, state.path(), &apply);
    assert_eq!(ran.code, Some(0), "{ran}");
    // "ran: taskset -pc CORE PID", queue 0 on core 1 and queue 1 on core 0.
    let pinned: Vec<(String, String)> = ran
        .stdout
        .lines()
        .filter_map(|l| l.split_once("ran: taskset -pc "))
        .map(|(_, rest)| {
            let (core, pid) = rest.split_once(' ').expect("taskset -pc CORE PID");
            (core.to_owned(), pid.to_owned())
        })
        .collect();
    let cores: Vec<&str> = pinned.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(cores, ["1", "0"], "{ran}");
    for (core, pid) in &pinned {
        assert_eq!(&affinity(pid), core, "thread {pid}");
    }
    let check = check_with_bpffs(&lab, state.path(), &["--queues", "2"]);
    check.assert_check("irqs", "OK", &["2 NAPI thread(s), each on one CPU"]);

    let again = setup_nic(&lab, state.path(), &apply);
    assert!(
        again.stdout.contains("apply veth-srv: nothing to change"),
        "{again}"
    );

    // The state holds each thread's affinity from before; undo puts it back.
    let file = state_file(&lab, state.path());
    let recorded = std::fs::read_to_string(&file).unwrap();
    let undo = setup_nic(&lab, state.path(), &["undo", IF]);
    assert_eq!(undo.code, Some(0), "{undo}");
    for (_, pid) in &pinned {
        let line = recorded
            .lines()
            .find(|l| l.starts_with(&format!("thread\t{pid}\t")))
            .unwrap_or_else(|| panic!("thread {pid} not recorded:\n{recorded}"));
        let before = line.split('\t').nth(2).unwrap().split(' ').next().unwrap();
        assert!(
            before.contains(',') || before.contains('-'),
            "thread {pid} was not spread over CPUs before apply: {line}"
        );
        assert_eq!(affinity(pid), before, "thread {pid} after undo");
    }
    assert!(!file.exists());
}
