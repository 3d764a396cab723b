//! tern_steer on a real interface: the veth lab's `veth-srv`, in native and generic mode.
//!
//! Each test brings up its own lab (namespaces with a prefix of its own) and does its BPF and
//! netlink work on a thread inside the server namespace, where `veth-srv` lives. They need root;
//! `TERN_SKIP_LAB=1` skips them explicitly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tern_bpf::abi::Counter;
use tern_bpf::{
    detach_leftover, find_attached, AttachMode, Error, Interface, ListenerFlags, SteerProgram,
    XdpMode,
};
use tern_lab::{addr, run, Lab, LabConfig, Side};

const SRV_IF: &str = "veth-srv";

fn lab() -> Option<Lab> {
    if !tern_lab::lab_available() {
        return None;
    }
    Some(Lab::up(LabConfig {
        queues: Some(2),
        ..LabConfig::default()
    }))
}

/// Runs `f` in the server namespace and returns its result (re-raising its panic).
fn in_server<T: Send + 'static>(lab: &Lab, f: impl FnOnce() -> T + Send + 'static) -> T {
    match lab.spawn_in(Side::Server, f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn veth_srv() -> Interface {
    Interface::by_name(SRV_IF).unwrap_or_else(|e| panic!("{e}"))
}

/// `ip -d link show dev veth-srv` in the server namespace.
fn ip_link(lab: &Lab) -> String {
    run(lab
        .command(Side::Server, "ip")
        .args(["-d", "link", "show", "dev", SRV_IF]))
}

fn ping(lab: &Lab) -> bool {
    lab.command(Side::Client, "ping")
        .args(["-c1", "-W2", "-q", &addr::SERVER_V4.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A kernel TCP connection from the client to a kernel listener on the server at `ip:port`,
/// with one request and one reply; `false` when it cannot be made within `limit`.
fn kernel_tcp(lab: &Lab, ip: IpAddr, port: u16, limit: Duration) -> bool {
    let server_addr = SocketAddr::new(ip, port);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = lab.spawn_in(Side::Server, move || {
        let listener = TcpListener::bind(server_addr).expect("bind in the server namespace");
        listener.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + limit + Duration::from_secs(1);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(limit)).unwrap();
                    let mut buf = [0u8; 4];
                    if conn.read_exact(&mut buf).is_ok() && &buf == b"ping" {
                        let _ = conn.write_all(b"pong");
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    ready_rx.recv().unwrap();
    let ok = lab
        .spawn_in(Side::Client, move || {
            let mut conn = TcpStream::connect_timeout(&server_addr, limit).ok()?;
            conn.set_read_timeout(Some(limit)).ok()?;
            conn.write_all(b"ping").ok()?;
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).ok()?;
            Some(&buf == b"pong")
        })
        .join()
        .unwrap()
        .unwrap_or(false);
    server.join().unwrap();
    ok
}

fn attach_and_check(mode: XdpMode, expected: AttachMode) {
    let Some(lab) = lab() else { return };
    let steer = SteerProgram::load().unwrap_or_else(|e| panic!("{e}"));
    let prog_id = steer.prog_id();
    // Port 80 is a listener with no socket in any slot: its traffic takes the fallback (PASS).
    steer
        .add_listener((addr::SERVER_V4, 80), ListenerFlags::NONE)
        .unwrap();

    let (steer, attachment) = in_server(&lab, move || {
        let iface = veth_srv();
        assert_eq!(
            find_attached(&iface).unwrap(),
            None,
            "a fresh lab has no XDP"
        );
        let attachment = steer.attach(&iface, mode).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(attachment.mode(), expected);
        assert_eq!(attachment.fallback_reason(), None, "veth does native XDP");
        let found = find_attached(&iface).unwrap().expect("attached");
        assert_eq!(found.prog_id, prog_id);
        assert_eq!(found.name, "tern_steer");
        assert_eq!(found.mode, expected);
        assert_eq!(found.link_id, Some(attachment.link_id()));
        assert!(found.via_link() && found.is_tern());
        (steer, attachment)
    });

    // iproute2 sees it: `prog/xdp id N`, under `xdp` (native) or `xdpgeneric`.
    let link = ip_link(&lab);
    assert!(link.contains(&format!("prog/xdp id {prog_id}")), "{link}");
    let keyword = match expected {
        AttachMode::Native => "xdp ",
        _ => "xdpgeneric",
    };
    assert!(link.contains(keyword), "expected {keyword:?} in:\n{link}");

    // Everything that is not for a listener still reaches the kernel.
    let before = steer.counters().unwrap();
    assert!(ping(&lab), "ping through the attached program");
    assert!(
        kernel_tcp(&lab, addr::SERVER_V4.into(), 2222, Duration::from_secs(3)),
        "kernel TCP to a non-listener port (SSH-like)"
    );
    assert!(
        kernel_tcp(&lab, addr::SERVER_V6.into(), 2222, Duration::from_secs(3)),
        "kernel TCP over IPv6 to a non-listener port"
    );
    let passed = steer.counters().unwrap().since(&before);
    assert!(passed.get(Counter::Passed) >= 6, "{passed}");

    // A listener with no socket on the queue: passed by default...
    assert!(
        kernel_tcp(&lab, addr::SERVER_V4.into(), 80, Duration::from_secs(3)),
        "listener traffic falls back to the kernel without a socket"
    );
    let fallback = steer.counters().unwrap().since(&before);
    assert!(fallback.get(Counter::NoXskPassed) >= 3, "{fallback}");
    assert_eq!(fallback.get(Counter::Redirected), 0, "{fallback}");
    // ...dropped when the listener says so: the kernel never sees the SYN.
    steer
        .add_listener((addr::SERVER_V4, 80), ListenerFlags::DROP_NO_XSK)
        .unwrap();
    assert!(
        !kernel_tcp(
            &lab,
            addr::SERVER_V4.into(),
            80,
            Duration::from_millis(1500)
        ),
        "a DROP_NO_XSK listener without a socket must not reach the kernel"
    );
    let dropped = steer.counters().unwrap().since(&before);
    assert!(dropped.get(Counter::NoXskDropped) >= 1, "{dropped}");

    // Dropping the attachment detaches.
    drop(attachment);
    in_server(&lab, || {
        assert_eq!(find_attached(&veth_srv()).unwrap(), None)
    });
    let link = ip_link(&lab);
    assert!(!link.contains("prog/xdp"), "{link}");
    assert!(ping(&lab));
}

#[test]
fn native_attach_steers_listeners_and_passes_the_rest() {
    attach_and_check(XdpMode::Native, AttachMode::Native);
}

#[test]
fn generic_attach_steers_listeners_and_passes_the_rest() {
    attach_and_check(XdpMode::Generic, AttachMode::Generic);
}

#[test]
fn auto_is_native_on_veth_and_falls_back_on_loopback() {
    let Some(lab) = lab() else { return };
    in_server(&lab, || {
        let steer = SteerProgram::load().unwrap();
        let veth = steer.attach(&veth_srv(), XdpMode::Auto).unwrap();
        assert_eq!(veth.mode(), AttachMode::Native);
        assert_eq!(veth.fallback_reason(), None);

        // Loopback has no native XDP: Native fails naming it, Auto falls back saying why.
        let lo = Interface::by_name("lo").unwrap();
        let err = steer.attach(&lo, XdpMode::Native).unwrap_err();
        assert!(matches!(err, Error::NativeUnsupported { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("native XDP on lo") && msg.contains("loopback"),
            "{msg}"
        );
        assert!(msg.contains("XdpMode::Generic"), "{msg}");

        let auto = steer.attach(&lo, XdpMode::Auto).unwrap();
        assert_eq!(auto.mode(), AttachMode::Generic);
        let reason = auto.fallback_reason().expect("a reason");
        assert!(reason.contains("loopback"), "{reason}");
        assert_eq!(
            find_attached(&lo).unwrap().unwrap().mode,
            AttachMode::Generic
        );
        drop(auto);
        assert_eq!(find_attached(&lo).unwrap(), None);
    });
    // The veth driver is named when native fails there too: ask for it directly.
    in_server(&lab, || assert_eq!(veth_srv().driver(), "veth"));
}

#[test]
fn a_busy_hook_is_reported_with_its_owner() {
    let Some(lab) = lab() else { return };
    in_server(&lab, || {
        let iface = veth_srv();
        let first = SteerProgram::load().unwrap();
        let _held = first.attach(&iface, XdpMode::Native).unwrap();
        let second = SteerProgram::load().unwrap();
        for mode in [XdpMode::Native, XdpMode::Generic, XdpMode::Auto] {
            let err = second.attach(&iface, mode).unwrap_err();
            let Error::HookBusy { existing, .. } = &err else {
                panic!("{mode:?}: {err:?}");
            };
            assert_eq!(existing.prog_id, first.prog_id());
            let msg = err.to_string();
            assert!(
                msg.contains("tern_steer") && msg.contains("ternd cleanup"),
                "{msg}"
            );
        }
    });
}

// --- leftovers ----------------------------------------------------------------------------------

/// A pin root of this test's own on bpffs, removed on drop.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new() -> PinRoot {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        PinRoot(PathBuf::from(format!(
            "/sys/fs/bpf/tern-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CHILD_ENV: &str = "TERN_BPF_LEFTOVER_CHILD_PIN_ROOT";
const CHILD_READY: &str = "tern-bpf child: attached and pinned";

/// Not a test: the daemon that dies. `leftover_pinned_by_a_killed_daemon_is_cleaned_up` runs
/// this test binary again with only this function, inside the server namespace.
#[test]
#[ignore = "helper process for leftover_pinned_by_a_killed_daemon_is_cleaned_up"]
fn leftover_child_attaches_pins_and_waits_to_be_killed() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return; // run by hand with --ignored: nothing to do
    };
    let steer = SteerProgram::load().unwrap();
    let mut attachment = steer.attach(&veth_srv(), XdpMode::Native).unwrap();
    attachment.pin(Path::new(&root)).unwrap();
    println!("{CHILD_READY}");
    std::io::stdout().flush().unwrap();
    // The parent SIGKILLs us long before this.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn leftover_pinned_by_a_killed_daemon_is_cleaned_up() {
    let Some(lab) = lab() else { return };
    let root = PinRoot::new();
    let root_path = root.0.clone();

    // The "daemon": this binary again, started from a thread in the server namespace (a child
    // inherits its creator's network namespace), killed with SIGKILL once its link is pinned.
    let mut child = lab
        .spawn_in(Side::Server, {
            let root = root_path.clone();
            move || {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "leftover_child_attaches_pins_and_waits_to_be_killed",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, &root)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap()
            }
        })
        .join()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(CHILD_READY));
    // SIGKILL: no destructor runs, as when the OOM killer takes the daemon.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the child never said it had attached");

    let pin = root_path.join(SRV_IF);
    in_server(&lab, move || {
        let iface = veth_srv();
        // The pin kept the link, so the program is still on the hook with nobody running.
        assert!(pin.exists(), "{} is the daemon's pin", pin.display());
        let left = find_attached(&iface)
            .unwrap()
            .expect("the pinned link survives");
        assert!(left.is_tern() && left.via_link(), "{left:?}");
        assert_eq!(left.mode, AttachMode::Native);

        let cleanup = detach_leftover(&iface, &root_path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cleanup.unpinned.as_deref(), Some(pin.as_path()));
        assert!(!pin.exists());
        assert_eq!(find_attached(&iface).unwrap(), None, "{cleanup:?}");

        // Idempotent: a second cleanup finds nothing.
        assert!(detach_leftover(&iface, &root_path).unwrap().is_empty());
    });
    assert!(!ip_link(&lab).contains("prog/xdp"));
}

#[test]
fn leaked_unpinned_link_is_detached_by_cleanup() {
    let Some(lab) = lab() else { return };
    let root = PinRoot::new();
    let root_path = root.0.clone();
    in_server(&lab, move || {
        let iface = veth_srv();
        let steer = SteerProgram::load().unwrap();
        let attachment = steer.attach(&iface, XdpMode::Generic).unwrap();
        let link_id = attachment.link_id();
        // A link held by an fd nobody will close (as in a process that hangs on to it).
        std::mem::forget(attachment);
        let left = find_attached(&iface)
            .unwrap()
            .expect("leaked link still attached");
        assert_eq!(left.link_id, Some(link_id));

        let cleanup = detach_leftover(&iface, &root_path).unwrap();
        assert_eq!(cleanup.unpinned, None, "it was never pinned");
        assert_eq!(cleanup.detached.map(|d| d.link_id), Some(Some(link_id)));
        // BPF_LINK_DETACH works although our leaked fd still holds the link.
        assert_eq!(find_attached(&iface).unwrap(), None);
    });
}

#[test]
fn pinning_needs_bpffs_and_dropping_unpins() {
    let Some(lab) = lab() else { return };
    let root = PinRoot::new();
    let root_path = root.0.clone();
    in_server(&lab, move || {
        let iface = veth_srv();
        let steer = SteerProgram::load().unwrap();
        let mut attachment = steer.attach(&iface, XdpMode::Native).unwrap();

        let not_bpffs = std::env::temp_dir().join("tern-bpf-not-bpffs");
        let err = attachment.pin(&not_bpffs).unwrap_err();
        assert!(matches!(err, Error::BpffsNotMounted { .. }), "{err:?}");
        assert!(err.to_string().contains("mount -t bpf"), "{err}");

        let pin = attachment.pin(&root_path).unwrap();
        assert_eq!(pin, root_path.join(SRV_IF));
        assert!(pin.exists());
        drop(attachment);
        assert!(!pin.exists(), "dropping removes the pin");
        assert_eq!(find_attached(&iface).unwrap(), None, "and detaches");
    });
}

// --- programs that are not tern's ----------------------------------------------------------------

/// Loads a two-instruction XDP program called `foreign_pass` (`return XDP_PASS`): someone
/// else's program.
fn load_foreign_program() -> OwnedFd {
    use libbpf_sys as bpf;
    let mut mov = bpf::bpf_insn {
        code: (bpf::BPF_ALU64 | bpf::BPF_MOV | bpf::BPF_K) as u8,
        imm: bpf::XDP_PASS as i32,
        ..Default::default()
    };
    mov.set_dst_reg(0);
    let exit = bpf::bpf_insn {
        code: (bpf::BPF_JMP | bpf::BPF_EXIT) as u8,
        ..Default::default()
    };
    let insns = [mov, exit];
    // SAFETY: the name and license are NUL-terminated literals, `insns` holds `insns.len()`
    // instructions, and a null opts pointer means defaults; libbpf reads them during the call.
    let fd = unsafe {
        bpf::bpf_prog_load(
            bpf::BPF_PROG_TYPE_XDP,
            c"foreign_pass".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    assert!(
        fd >= 0,
        "bpf_prog_load: {}",
        std::io::Error::from_raw_os_error(-fd)
    );
    // SAFETY: a non-negative result is a new program fd that we own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn someone_elses_program_is_left_alone() {
    let Some(lab) = lab() else { return };
    let root = PinRoot::new();
    let root_path = root.0.clone();
    in_server(&lab, move || {
        let iface = veth_srv();
        let foreign = load_foreign_program();
        // Attached the old way, through netlink, as `ip link set dev X xdp obj ...` does.
        libbpf_rs::Xdp::new(foreign.as_fd())
            .attach(iface.index() as i32, libbpf_rs::XdpFlags::DRV_MODE)
            .unwrap();
        let found = find_attached(&iface).unwrap().unwrap();
        assert_eq!(found.name, "foreign_pass");
        assert!(!found.via_link() && !found.is_tern());

        let err = detach_leftover(&iface, &root_path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ForeignProgram { .. }), "{err:?}");
        assert!(
            msg.contains("foreign_pass") && msg.contains("ip link set dev veth-srv xdp off"),
            "{msg}"
        );
        assert_eq!(find_attached(&iface).unwrap(), Some(found), "untouched");

        let steer = SteerProgram::load().unwrap();
        let err = steer.attach(&iface, XdpMode::Native).unwrap_err();
        assert!(err.to_string().contains("foreign_pass"), "{err}");
    });
    // The advice works.
    run(lab
        .command(Side::Server, "ip")
        .args(["link", "set", "dev", SRV_IF, "xdp", "off"]));
    in_server(&lab, || {
        assert_eq!(find_attached(&veth_srv()).unwrap(), None)
    });
}

#[test]
fn tern_program_attached_through_netlink_is_cleaned_up() {
    let Some(lab) = lab() else { return };
    let root = PinRoot::new();
    let root_path = root.0.clone();
    in_server(&lab, move || {
        let iface = veth_srv();
        let steer = SteerProgram::load().unwrap();
        // As an older ternd, or `ip link set dev veth-srv xdpgeneric obj tern_steer.bpf.o`, would.
        libbpf_rs::Xdp::new(steer.prog_fd())
            .attach(iface.index() as i32, libbpf_rs::XdpFlags::SKB_MODE)
            .unwrap();
        drop(steer); // netlink attachments hold the program themselves
        let found = find_attached(&iface).unwrap().unwrap();
        assert!(found.is_tern() && !found.via_link(), "{found:?}");
        assert_eq!(found.mode, AttachMode::Generic);

        let cleanup = detach_leftover(&iface, &root_path).unwrap();
        assert_eq!(cleanup.detached, Some(found));
        assert_eq!(find_attached(&iface).unwrap(), None);
    });
}
