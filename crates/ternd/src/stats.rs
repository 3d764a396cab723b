//! Statistics across workers: totals, the periodic one-line summary, the JSON snapshot for
//! machines (`--stats-json`), and the final counters printed at exit.

use serde_json::{json, Map, Value};
use tern_rt::WorkerStats;
use tern_tcp::Counters;

/// The latest snapshot of every worker, and what the daemon knows about the datapath.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Per queue, the latest snapshot received.
    pub workers: Vec<Option<WorkerStats>>,
    /// The effective XDP attach mode (native or generic).
    pub xdp_mode: String,
    /// Per queue, the effective AF_XDP bind mode (zero-copy or copy).
    pub bind_modes: Vec<String>,
    /// The XDP program's counters (passed, redirected, dropped by reason), summed over CPUs.
    pub steer: Vec<(&'static str, u64)>,
}

impl Totals {
    /// Room for `queues` workers.
    pub fn new(queues: usize) -> Totals {
        Totals {
            workers: vec![None; queues],
            ..Totals::default()
        }
    }

    /// Records a worker's snapshot.
    pub fn update(&mut self, s: WorkerStats) {
        let q = s.queue as usize;
        if q < self.workers.len() {
            self.workers[q] = Some(s);
        }
    }

    /// The shards' counters summed.
    pub fn tcp(&self) -> Counters {
        let mut total = Counters::default();
        for w in self.workers.iter().flatten() {
            total.merge(&w.tcp);
        }
        total
    }

    fn sum(&self, f: impl Fn(&WorkerStats) -> u64) -> u64 {
        self.workers.iter().flatten().map(f).sum()
    }

    /// One line for operators: connections, SYN handling and drops, with rates since `prev`
    /// over `secs` seconds.
    pub fn summary(&self, prev: &Totals, secs: f64) -> String {
        let (now, then) = (self.tcp(), prev.tcp());
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs.max(1e-9);
        let drops: u64 = now.drops.iter().sum::<u64>() + self.sum(|w| w.wire_drops.iter().sum());
        format!(
            "conns {} (app {}) tw {} | accepts/s {:.0} syn-cookies/s {:.0} (recv {}, failed {}) | in/s {:.0} out/s {:.0} retrans {} | overflows {} drops {}",
            self.sum(|w| w.connections as u64),
            self.sum(|w| w.app_connections as u64),
            self.sum(|w| w.timewait as u64),
            rate(now.passive_opens, then.passive_opens),
            rate(now.syncookies_sent, then.syncookies_sent),
            now.syncookies_recv,
            now.syncookies_failed,
            rate(now.in_segs, then.in_segs),
            rate(now.out_segs, then.out_segs),
            now.retrans_segs,
            now.listen_overflows,
            drops,
        )
    }

    /// Everything as JSON: totals by counter name, and each queue's counters and socket
    /// statistics.
    pub fn json(&self, uptime_secs: f64) -> Value {
        let counters = |c: &Counters| {
            Value::Object(
                c.iter()
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect::<Map<_, _>>(),
            )
        };
        let queues: Vec<Value> = self
            .workers
            .iter()
            .flatten()
            .map(|w| {
                json!({
                    "queue": w.queue,
                    "connections": w.connections,
                    "app_connections": w.app_connections,
                    "timewait": w.timewait,
                    "not_tcp": w.not_tcp,
                    "l2_misses": w.l2_misses,
                    "tx_stalls": w.tx_stalls,
                    "wire_drops": tern_wire::Error::ALL.iter().map(|e| (e.name().to_owned(), json!(w.wire_drops.get(e.index()).copied().unwrap_or(0)))).collect::<Map<_, _>>(),
                    "tcp": counters(&w.tcp),
                    "xsk": w.xsk.map(|x| json!({
                        "rx_dropped": x.rx_dropped,
                        "rx_invalid_descs": x.rx_invalid_descs,
                        "tx_invalid_descs": x.tx_invalid_descs,
                        "rx_ring_full": x.rx_ring_full,
                        "rx_fill_ring_empty_descs": x.rx_fill_ring_empty_descs,
                        "tx_ring_empty_descs": x.tx_ring_empty_descs,
                    })),
                })
            })
            .collect();
        json!({
            "uptime_secs": uptime_secs,
            "xdp_mode": self.xdp_mode,
            "bind_modes": self.bind_modes,
            "xdp": self.steer.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<Map<_, _>>(),
            "tcp": counters(&self.tcp()),
            "queues": queues,
        })
    }

    /// The non-zero counters, one `Name value` per line, as `nstat` prints them.
    pub fn final_report(&self) -> String {
        let mut out = String::new();
        for (name, v) in self.tcp().iter().filter(|(_, v)| *v != 0) {
            out.push_str(&format!("{name:<24} {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(queue: u32, passive: u64) -> WorkerStats {
        let mut s = WorkerStats {
            queue,
            ..WorkerStats::default()
        };
        s.tcp.passive_opens = passive;
        s.tcp.in_segs = passive * 3;
        s.wire_drops = vec![0; tern_wire::Error::COUNT];
        s
    }

    #[test]
    fn totals_sum_workers_and_rates_use_the_interval() {
        let mut prev = Totals::new(2);
        prev.update(worker(0, 10));
        prev.update(worker(1, 10));
        let mut now = prev.clone();
        now.update(worker(0, 30));
        now.update(worker(1, 50));
        assert_eq!(now.tcp().passive_opens, 80);
        let line = now.summary(&prev, 2.0);
        assert!(line.contains("accepts/s 30"), "{line}");
        let j = now.json(5.0);
        assert_eq!(j["tcp"]["PassiveOpens"], 80);
        assert_eq!(j["queues"][1]["tcp"]["InSegs"], 150);
        assert!(now.final_report().contains("PassiveOpens"));
    }
}
