//! Measures the engine's memory per idle established connection and per TIME-WAIT entry by
//! counting heap bytes with a counting allocator while a shard builds up 50,000 of each.
//!
//! `cargo run --release -p tern-benches --bin tern-memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tern_benches::{client_segment, established, ipv4_packet, CLIENT, SERVER};
use tern_tcp::TcpConfig;
use tern_wire::TcpFlags;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only
// records sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N: usize = 50_000;

fn main() {
    let config = TcpConfig {
        timestamps: true,
        ..TcpConfig::default()
    };

    // Connections: the shard with 1 connection, then with N; the difference over N - 1 is the
    // cost of one idle ESTABLISHED connection including its share of the tables.
    let (small, ..) = established(config.clone(), 1);
    let base = LIVE.load(Ordering::Relaxed);
    let (big, handles, isns, now) = established(config.clone(), N);
    let with_n = LIVE.load(Ordering::Relaxed) - base;
    let per_conn = with_n as f64 / N as f64;
    drop(small);
    assert_eq!(big.buffers_in_use(), 0, "idle connections hold no buffers");

    // TIME-WAIT: close every connection actively and let the peer finish, leaving N entries.
    let mut shard = big;
    let mut out = vec![0u8; 2048];
    let before = LIVE.load(Ordering::Relaxed);
    for (i, (&conn, &iss)) in handles.iter().zip(&isns).enumerate() {
        let port = 10_000 + i as u16;
        shard.close(now, conn).expect("close");
        while shard.poll_transmit(now, &mut out).is_some() {}
        let fin = client_segment(
            port,
            TcpFlags::FIN | TcpFlags::ACK,
            1001,
            Some(iss.wrapping_add(2)),
            &[],
        );
        shard
            .on_packet(now, &ipv4_packet(CLIENT, SERVER, &fin))
            .expect("FIN");
        while shard.poll_transmit(now, &mut out).is_some() {}
    }
    assert_eq!(shard.timewait_count(), N);
    assert_eq!(shard.connection_count(), 0);
    // The connection slab keeps its (now free) slots; what TIME-WAIT costs is what was added.
    let tw_added = LIVE.load(Ordering::Relaxed) as f64 - before as f64;
    println!(
        "idle ESTABLISHED connection: {per_conn:.0} bytes each ({N} connections, tables included)"
    );
    println!(
        "TIME-WAIT entry: {:.0} bytes each ({N} entries, table and expiry queue included)",
        tw_added / N as f64
    );

    // SYN-queue requests: a listener with cookies off and room for N half-open handshakes,
    // N SYNs from distinct ports; each becomes a request entry (with its SYN-ACK timer).
    let cfg = TcpConfig {
        syncookies: tern_tcp::SyncookieMode::Off,
        ..config
    };
    let now = tern_tcp::Instant::from_millis(1_000);
    let mut shard = tern_tcp::Shard::new(cfg, [5; 32], now).expect("valid config");
    let listen = tern_tcp::ListenConfig {
        backlog: N,
        syn_backlog: N,
    };
    shard
        .listen(std::net::SocketAddr::new(SERVER, 80), listen)
        .expect("listen");
    let before = LIVE.load(Ordering::Relaxed);
    let mut out = vec![0u8; 2048];
    for i in 0..N {
        let mut syn = tern_benches::linux_syn();
        syn.src_port = 10_000 + i as u16;
        shard
            .on_packet(now, &ipv4_packet(CLIENT, SERVER, &syn))
            .expect("SYN");
        while shard.poll_transmit(now, &mut out).is_some() {}
    }
    let per_request = (LIVE.load(Ordering::Relaxed) - before) as f64 / N as f64;
    println!(
        "SYN-queue request: {per_request:.0} bytes each ({N} requests, table and timer included)"
    );
}
