//! `tern-bench reflect`: the raw AF_XDP I/O path on the server side, for comparison with
//! ternd on the same path in the same run.
//!
//! One AF_XDP socket per queue (libxdp's default program redirects the whole queue to it),
//! one thread per socket. Every TCP frame received is turned around in place: MAC addresses,
//! IP addresses and ports swapped (none of which changes a checksum), and with `--synack` a SYN
//! becomes a SYN-ACK (`ack = seq + 1`, checksum patched incrementally), then sent back out of
//! the same queue. Anything else (ARP, ...) is dropped: the flood side uses a fixed
//! destination MAC. What it measures is the ceiling of any AF_XDP server on this path: a
//! packet in, a packet out, no protocol work.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tern_wire::checksum;
use tern_xsk::{XdpProgram, XskConfig, XskSocket, ZeroCopy};

use crate::net::{self, IfCounters};

/// Configuration of [`run`].
#[derive(Debug, Clone)]
pub struct ReflectConfig {
    /// Interface (the server end of the lab).
    pub interface: String,
    /// Queues to serve, one thread each.
    pub queues: Vec<u32>,
    /// Cores to pin queue thread *i* to (`cores[i % len]`).
    pub cores: Vec<usize>,
    /// Stop after this long.
    pub duration: Duration,
    /// Turn SYNs into SYN-ACKs.
    pub synack: bool,
    /// AF_XDP zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Write the report here.
    pub json: Option<PathBuf>,
}

/// One queue's figures.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueFigures {
    /// Queue.
    pub queue: u32,
    /// Frames received.
    pub rx: u64,
    /// Frames sent back.
    pub tx: u64,
    /// Frames dropped (not TCP over IPv4/IPv6).
    pub dropped: u64,
    /// Seconds from the first batch with a reflected frame to the last one.
    pub active_s: f64,
    /// `tx / active_s`.
    pub tx_pps: f64,
    /// The kernel's drops because the RX ring was full.
    pub rx_ring_full: u64,
    /// The kernel's other RX drops.
    pub rx_dropped: u64,
}

/// What a reflect run did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReflectReport {
    /// Interface.
    pub interface: String,
    /// `copy` or `zero-copy`.
    pub bind_mode: String,
    /// Per queue.
    pub queues: Vec<QueueFigures>,
    /// Sum of the queues' `tx`.
    pub tx: u64,
    /// Sum of the queues' `tx_pps` (each over its own active span).
    pub tx_pps: f64,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// The interface's counters over the run, if sysfs shows this namespace.
    pub interface_delta: Option<IfCounters>,
}

impl std::fmt::Display for ReflectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reflect on {} ({}): {} frames reflected, {:.0} pps",
            self.interface, self.bind_mode, self.tx, self.tx_pps
        )?;
        for q in &self.queues {
            write!(
                f,
                "\n  queue {}: rx {} tx {} dropped {} in {:.3}s = {:.0} pps (rx ring full {}, \
                 rx dropped {})",
                q.queue, q.rx, q.tx, q.dropped, q.active_s, q.tx_pps, q.rx_ring_full, q.rx_dropped
            )?;
        }
        Ok(())
    }
}

/// Turns the frame around in place (see the module docs); `false` if it is not TCP over
/// IPv4 or IPv6 (untagged Ethernet), in which case it should be dropped.
pub fn reflect_in_place(frame: &mut [u8], synack: bool) -> bool {
    if frame.len() < 14 {
        return false;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let (l4, addr_off, addr_len) = match ethertype {
        0x0800 => {
            if frame.len() < 34 || frame[23] != 6 {
                return false;
            }
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            if ihl < 20 {
                return false;
            }
            (14 + ihl, 26, 4)
        }
        0x86dd => {
            if frame.len() < 54 || frame[20] != 6 {
                return false;
            }
            (54, 22, 16)
        }
        _ => return false,
    };
    if frame.len() < l4 + 20 {
        return false;
    }
    // MACs.
    let (dst, rest) = frame.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    // Addresses: swapping keeps both checksums (the sums do not depend on the order).
    let (a, b) = frame[addr_off..addr_off + 2 * addr_len].split_at_mut(addr_len);
    a.swap_with_slice(b);
    // Ports.
    let (p, q) = frame[l4..l4 + 4].split_at_mut(2);
    p.swap_with_slice(q);
    if synack {
        let flags = frame[l4 + 13];
        if flags & 0x12 == 0x02 {
            // SYN without ACK: answer with SYN-ACK, ack = seq + 1, seq = !seq.
            let word = |f: &[u8], o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
            let dword =
                |f: &[u8], o: usize| u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
            let mut sum = word(frame, l4 + 16);
            let seq = dword(frame, l4 + 4);
            let old_ack = dword(frame, l4 + 8);
            let old_flags_word = word(frame, l4 + 12);
            let new_seq = !seq;
            let new_ack = seq.wrapping_add(1);
            frame[l4 + 13] = flags | 0x10;
            let new_flags_word = word(frame, l4 + 12);
            frame[l4 + 4..l4 + 8].copy_from_slice(&new_seq.to_be_bytes());
            frame[l4 + 8..l4 + 12].copy_from_slice(&new_ack.to_be_bytes());
            sum = checksum::update_u32(sum, seq, new_seq);
            sum = checksum::update_u32(sum, old_ack, new_ack);
            sum = checksum::update_u16(sum, old_flags_word, new_flags_word);
            frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
        }
    }
    true
}

/// Reflects until `duration` or `stop`; returns the report.
pub fn run(config: &ReflectConfig, stop: Arc<AtomicBool>) -> Result<ReflectReport> {
    anyhow::ensure!(!config.queues.is_empty(), "no queues to serve");
    let xsk_config = XskConfig {
        program: XdpProgram::LibxdpDefault,
        zero_copy: config.zero_copy,
        ..XskConfig::default()
    };
    // Open every socket from this thread: libxdp attaches its program once, with the first.
    let mut sockets = Vec::new();
    for &q in &config.queues {
        sockets.push(
            XskSocket::open(&config.interface, q, &xsk_config).with_context(|| {
                format!("opening an AF_XDP socket on {} queue {q}", config.interface)
            })?,
        );
    }
    let bind_mode = sockets[0].bind_mode().to_string();
    let before = IfCounters::read(&config.interface);
    let start = Instant::now();
    let deadline = start + config.duration;
    println!(
        "reflect: on {} queue(s) {:?} ({bind_mode}) for {:?}",
        config.interface, config.queues, config.duration
    );
    let mut handles = Vec::new();
    for (i, mut xsk) in sockets.into_iter().enumerate() {
        let core = (!config.cores.is_empty()).then(|| config.cores[i % config.cores.len()]);
        let (stop, synack) = (stop.clone(), config.synack);
        handles.push(
            std::thread::Builder::new()
                .name(format!("reflect-{i}"))
                .spawn(move || -> Result<QueueFigures> {
                    if let Some(c) = core {
                        net::pin_to_core(c)?;
                    }
                    reflect_queue(&mut xsk, synack, deadline, &stop)
                })
                .context("spawning a reflect thread")?,
        );
    }
    let mut queues = Vec::new();
    for h in handles {
        queues.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a reflect thread panicked"))??,
        );
    }
    let after = IfCounters::read(&config.interface);
    let report = ReflectReport {
        interface: config.interface.clone(),
        bind_mode,
        tx: queues.iter().map(|q| q.tx).sum(),
        tx_pps: queues.iter().map(|q| q.tx_pps).sum(),
        queues,
        elapsed_s: start.elapsed().as_secs_f64(),
        interface_delta: before.zip(after).map(|(b, a)| a.since(&b)),
    };
    if let Some(path) = &config.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

fn reflect_queue(
    xsk: &mut XskSocket,
    synack: bool,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<QueueFigures> {
    let mut fig = QueueFigures {
        queue: xsk.queue_id(),
        ..QueueFigures::default()
    };
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    let mut turns: u64 = 0;
    loop {
        turns += 1;
        if turns % 64 == 0 && (stop.load(Ordering::Relaxed) || Instant::now() >= deadline) {
            break;
        }
        xsk.refill().context("refilling")?;
        let (mut tx, mut dropped) = (0u64, 0u64);
        let got = xsk
            .recv(64, |mut frame| {
                if reflect_in_place(&mut frame.frame_mut()[..], synack) {
                    frame.send();
                    tx += 1;
                } else {
                    dropped += 1;
                }
            })
            .context("receiving")?;
        xsk.flush_tx().context("transmitting")?;
        if got > 0 {
            if tx > 0 {
                // The span runs from the first reflected frame to the last: stray frames
                // (neighbour discovery, ...) before or after the flood do not stretch it.
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
            }
            fig.rx += got as u64;
            fig.tx += tx;
            fig.dropped += dropped;
        } else {
            xsk.poll_wait(Duration::from_millis(5)).context("poll")?;
            if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    // Bounded drain of the frames still in transmission.
    let until = Instant::now() + Duration::from_millis(500);
    while xsk.frame_counts().tx > 0 && Instant::now() < until {
        xsk.flush_tx().context("transmitting")?;
        std::thread::sleep(Duration::from_micros(100));
    }
    if let (Some(a), Some(b)) = (first, last) {
        fig.active_s = (b - a).as_secs_f64();
        if fig.active_s > 0.0 {
            fig.tx_pps = fig.tx as f64 / fig.active_s;
        }
    }
    if let Ok(s) = xsk.statistics() {
        fig.rx_ring_full = s.rx_ring_full;
        fig.rx_dropped = s.rx_dropped;
    }
    Ok(fig)
}
