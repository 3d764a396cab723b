//! `tern-bench xdp-pass`: tern's steering program with no listener on an interface, so every
//! packet gets `XDP_PASS`, held until a deadline or a signal.
//!
//! On veth an attached XDP program moves the receive work of the interface from the sender's
//! CPU (`veth_xmit` → `netif_rx`, then the sender's softirq) to the interface's own NAPI poll,
//! which the lab runs in a kernel thread that can be pinned. `run syn-flood` holds one on the
//! kernel server's `veth-srv`, so the kernel's SYN handling runs where ternd's receive work runs
//! (ternd attaches the same program, with listeners), and one on `veth-cli`, so the replies'
//! receive work in the client namespace runs on the generator's side instead of the server's
//! core. The program is attached through an unpinned bpf_link: it goes when this process does,
//! however it ends.
//!
//! With `--drop ADDR:PORT` the program also drops every TCP packet to that destination, in XDP,
//! before any socket or stack sees it (a listener flagged `DROP_NO_XSK` with no socket behind
//! it): a sink that costs the receiver almost nothing, for measuring what a generator can push
//! through the link rather than what a server can answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tern_bpf::abi::Counter;
use tern_bpf::{Interface, ListenerFlags, SteerProgram, XdpMode};

/// Attaches tern_steer without listeners to `interface` (native mode where the driver has it),
/// dropping TCP to the `drop` destinations, prints `xdp-pass: attached ...`, waits for
/// `duration` or `stop`, and detaches.
pub fn hold(
    interface: &str,
    drop: &[SocketAddr],
    duration: Duration,
    stop: &Arc<AtomicBool>,
) -> Result<()> {
    let prog = SteerProgram::load().context("loading tern_steer")?;
    for addr in drop {
        crate::net::check_target(addr.ip(), false)?;
        prog.add_listener(*addr, ListenerFlags::DROP_NO_XSK)
            .with_context(|| format!("adding the drop sink {addr}"))?;
    }
    let iface = Interface::by_name(interface)?;
    let attachment = prog
        .attach(&iface, XdpMode::Auto)
        .with_context(|| format!("attaching tern_steer to {interface}"))?;
    println!(
        "xdp-pass: attached to {interface} in {} mode (program {}, no listener: every packet \
         passes) for at most {duration:?}",
        attachment.mode(),
        attachment.prog_id()
    );
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let passed: u64 = prog.counters().map_or(0, |c| {
        c.iter()
            .filter(|(k, _)| {
                matches!(
                    k,
                    Counter::Passed
                        | Counter::NoXskPassed
                        | Counter::FragmentPassed
                        | Counter::Ipv6ExtPassed
                )
            })
            .map(|(_, v)| v)
            .sum()
    });
    attachment
        .detach()
        .with_context(|| format!("detaching tern_steer from {interface}"))?;
    let dropped = prog.counters().map_or(0, |c| {
        c.iter()
            .filter(|(k, _)| matches!(k, Counter::NoXskDropped))
            .map(|(_, v)| v)
            .sum::<u64>()
    });
    println!(
        "xdp-pass: detached from {interface} after passing {passed} packets and dropping {dropped}"
    );
    Ok(())
}
