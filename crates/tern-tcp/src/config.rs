//! Engine configuration: every knob with its Linux name and default.
//!
//! Names follow the `net.ipv4.tcp_*` sysctls (without the prefix) or the socket option they
//! stand for, so an operator's Linux habits carry over. Where this engine's default differs from
//! Linux's it says so; `docs/configuration.md` lists them all.

use crate::time::Duration;

/// Engine-wide settings of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Send buffer per connection in bytes (`tcp_wmem` default: 16384; Linux autotunes it
    /// upward, this engine uses a fixed size per connection).
    pub wmem: usize,
    /// Receive buffer per connection in bytes (`tcp_rmem` default 131072). The advertised
    /// window is at most this.
    pub rmem: usize,
    /// Largest number of send/receive buffers the shard lends at once; a connection that gets
    /// none advertises a zero window or refuses to queue data until one frees up.
    pub max_buffers: usize,
    /// MSS we advertise and the upper bound of the one we use (`TCP_MAXSEG`; Linux derives it
    /// from the route MTU: 1460 on a 1500-byte IPv4 link). IPv6 connections use 20 bytes less
    /// for the same link ([`TcpConfig::mss_for`]).
    pub mss: u16,
    /// MSS assumed for IPv4 when the peer sends no MSS option (RFC 9293 3.7.1, MUST-15: 536;
    /// Linux's `TCP_MSS_DEFAULT`). IPv6 assumes 1220 (1280 − 60), as MUST-15 requires.
    pub default_mss: u16,
    /// Send timestamps and use them for RTTM and PAWS (`tcp_timestamps`, default on).
    pub timestamps: bool,
    /// Negotiate window scaling (`tcp_window_scaling`, default on).
    pub window_scaling: bool,
    /// Negotiate SACK (`tcp_sack`, default on).
    pub sack: bool,
    /// Initial congestion window in segments (RFC 6928; Linux `TCP_INIT_CWND` = 10).
    pub initial_cwnd: u32,
    /// Initial RTO before any RTT sample (RFC 6298 (2.1): 1 s; Linux `TCP_TIMEOUT_INIT`).
    pub rto_initial: Duration,
    /// Lower bound of the RTO (`tcp_rto_min`, Linux `TCP_RTO_MIN` = 200 ms).
    pub rto_min: Duration,
    /// Upper bound of the RTO (`tcp_rto_max`, Linux `TCP_RTO_MAX` = 120 s).
    pub rto_max: Duration,
    /// Retransmissions before a "delivery problem" event (`tcp_retries1`, default 3).
    pub retries1: u32,
    /// Retransmissions before the connection is aborted (`tcp_retries2`, default 15), turned
    /// into a time bound the way Linux's `retransmits_timed_out` does.
    pub retries2: u32,
    /// SYN retransmissions for an active open (`tcp_syn_retries`, default 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions for a passive open (`tcp_synack_retries`, default 5: sent at
    /// 0, 1, 3, 7, 15, 31 s and given up at 63 s).
    pub synack_retries: u32,
    /// Delayed-ACK timeout (`tcp_delack_min`/`TCP_DELACK_MIN` = 40 ms; RFC 1122 4.2.3.2 caps it
    /// at 500 ms).
    pub delack_timeout: Duration,
    /// Time an orphaned FIN-WAIT-2 connection waits for the peer's FIN (`tcp_fin_timeout`,
    /// default 60 s).
    pub fin_timeout: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts 2 × MSL (RFC 9293 3.4.2). Default 60 s, so
    /// TIME-WAIT lasts 120 s — Linux uses a fixed 60 s TIME-WAIT instead.
    pub msl: Duration,
    /// TIME-WAIT entries kept at most; beyond that a closing connection skips TIME-WAIT and the
    /// event is counted (`tcp_max_tw_buckets`, default 262144).
    pub max_tw_buckets: usize,
    /// Default keepalive settings for new connections (`SO_KEEPALIVE` off by default).
    pub keepalive: KeepaliveConfig,
    /// Nagle's algorithm on by default (`TCP_NODELAY` off), as in Linux.
    pub nagle: bool,
    /// When SYN cookies answer SYNs instead of the SYN queue (`tcp_syncookies`: 0, 1, 2;
    /// default on-overflow).
    pub syncookies: SyncookieMode,
    /// Key rotation period of SYN cookies; a cookie is accepted for at most two periods
    /// (Linux: 60 s, fixed).
    pub syncookie_period: Duration,
    /// RSTs per second a shard sends for ACKs that fail cookie validation (forged or expired
    /// cookies); 0 answers them with nothing. Default 1000.
    pub syncookie_rst_rate: u32,
    /// Answer a final ACK that finds the accept queue full with a RST instead of dropping it
    /// (`tcp_abort_on_overflow`, default off).
    pub abort_on_overflow: bool,
    /// Minimum time between two challenge ACKs or out-of-window duplicate ACKs on one
    /// connection (`tcp_invalid_ratelimit`, default 500 ms; RFC 5961 §10 asks for throttling).
    pub invalid_ratelimit: Duration,
}

/// When a listener answers SYNs with SYN cookies (RFC 4987 3.6), Linux's `tcp_syncookies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncookieMode {
    /// Never (0): a SYN that finds the SYN queue full is dropped (TCPReqQFullDrop).
    Off,
    /// When the SYN queue is full (1, the default): no per-SYN state under a flood.
    OnOverflow,
    /// For every SYN (2): the SYN queue is never used.
    Always,
}

/// Keepalive settings (RFC 1122 4.2.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Whether probes are sent (`SO_KEEPALIVE`, default off).
    pub enabled: bool,
    /// Idle time before the first probe (`tcp_keepalive_time`, default 7200 s).
    pub time: Duration,
    /// Time between probes (`tcp_keepalive_intvl`, default 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection dies (`tcp_keepalive_probes`, default 9).
    pub probes: u32,
    /// Send one garbage octet with each probe, for peers that ignore empty probes (RFC 1122
    /// allows it; Linux never does; default off).
    pub garbage_octet: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            enabled: false,
            time: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            probes: 9,
            garbage_octet: false,
        }
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            wmem: 16 * 1024,
            rmem: 128 * 1024,
            max_buffers: 1 << 16,
            mss: 1460,
            default_mss: 536,
            timestamps: true,
            window_scaling: true,
            sack: true,
            initial_cwnd: 10,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            retries1: 3,
            retries2: 15,
            syn_retries: 6,
            synack_retries: 5,
            delack_timeout: Duration::from_millis(40),
            fin_timeout: Duration::from_secs(60),
            msl: Duration::from_secs(60),
            max_tw_buckets: 262_144,
            keepalive: KeepaliveConfig::default(),
            nagle: true,
            invalid_ratelimit: Duration::from_millis(500),
            syncookies: SyncookieMode::OnOverflow,
            syncookie_period: crate::syncookie::DEFAULT_PERIOD,
            syncookie_rst_rate: 1000,
            abort_on_overflow: false,
        }
    }
}

/// A configuration value that cannot work, with the knob's name and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The knob, by its Linux name.
    pub key: &'static str,
    /// What is wrong and what is allowed.
    pub reason: &'static str,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl TcpConfig {
    /// The MSS to announce and to cap ours at on an IPv4 (`mss`) or IPv6 connection: the IPv6
    /// header is 20 bytes longer than IPv4's, so the same link MTU leaves 20 bytes less
    /// (RFC 9293 3.7.1: MSS = MTU − fixed IP header − fixed TCP header; 1440 on a 1500-byte
    /// IPv6 link, as Linux computes it).
    /// The send MSS to assume when the peer sends no MSS option (RFC 9293 MUST-15).
    pub fn default_mss_for(&self, ipv4: bool) -> u16 {
        if ipv4 {
            self.default_mss
        } else {
            1220
        }
    }

    pub fn mss_for(&self, ipv4: bool) -> u16 {
        if ipv4 {
            self.mss
        } else {
            self.mss - 20
        }
    }

    /// Checks the values that would break the engine; a daemon calls this at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason| Err(ConfigError { key, reason });
        if !(536..=65_495).contains(&self.mss) {
            return err(
                "mss",
                "must be 536..=65495 (the largest MSS an IPv4 header allows)",
            );
        }
        if !(88..=self.mss).contains(&self.default_mss) {
            return err("default_mss", "must be 88..=mss");
        }
        if self.wmem < usize::from(self.mss) || self.wmem > 1 << 30 {
            return err("wmem", "must be at least one MSS and at most 1 GiB");
        }
        if self.rmem < usize::from(self.mss) || self.rmem > 1 << 30 {
            return err(
                "rmem",
                "must be at least one MSS and at most 1 GiB (the largest scaled window)",
            );
        }
        if self.initial_cwnd == 0 || self.initial_cwnd > 1000 {
            return err("initial_cwnd", "must be 1..=1000 segments");
        }
        if self.rto_min.is_zero() || self.rto_min > self.rto_max {
            return err("rto_min", "must be above zero and at most rto_max");
        }
        if self.rto_initial < self.rto_min || self.rto_initial > self.rto_max {
            return err("rto_initial", "must lie between rto_min and rto_max");
        }
        if self.delack_timeout > Duration::from_millis(500) {
            return err(
                "delack_timeout",
                "must be at most 500 ms (RFC 1122 4.2.3.2)",
            );
        }
        if self.retries2 < self.retries1 || self.retries2 > 255 {
            return err("retries2", "must be retries1..=255");
        }
        if self.syn_retries == 0 || self.syn_retries > 127 {
            return err("syn_retries", "must be 1..=127 (Linux's limit)");
        }
        if self.synack_retries > 127 {
            return err("synack_retries", "must be 0..=127 (Linux's limit)");
        }
        if self.keepalive.probes == 0 || self.keepalive.probes > 127 {
            return err("keepalive_probes", "must be 1..=127 (Linux's limit)");
        }
        let day49 = Duration::from_millis(u64::from(u32::MAX));
        if self.keepalive.time > day49 || self.keepalive.interval > day49 {
            return err(
                "keepalive_time",
                "keepalive_time and keepalive_intvl must be under 49 days",
            );
        }
        if self.keepalive.time.is_zero() || self.keepalive.interval.is_zero() {
            return err(
                "keepalive_time",
                "keepalive_time and keepalive_intvl must be above zero",
            );
        }
        if self.syncookie_period < Duration::from_secs(1) {
            return err("syncookie_period", "must be at least 1 s");
        }
        if self.msl.is_zero() {
            return err("msl", "must be above zero (TIME-WAIT lasts 2 x msl)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linux_defaults_and_valid() {
        let c = TcpConfig::default();
        c.validate().unwrap();
        assert_eq!((c.retries1, c.retries2, c.syn_retries), (3, 15, 6));
        assert_eq!(c.rto_min, Duration::from_millis(200));
        assert_eq!(c.delack_timeout, Duration::from_millis(40));
        assert!(!c.keepalive.enabled && c.keepalive.probes == 9);
    }

    #[test]
    fn bad_values_name_their_key() {
        type Mutation = fn(&mut TcpConfig);
        let cases: [(Mutation, &str); 6] = [
            (|c| c.mss = 100, "mss"),
            (|c| c.rto_min = Duration::ZERO, "rto_min"),
            (
                |c| c.delack_timeout = Duration::from_secs(1),
                "delack_timeout",
            ),
            (|c| c.retries2 = 1, "retries2"),
            (|c| c.rmem = 10, "rmem"),
            (|c| c.keepalive.probes = 0, "keepalive_probes"),
        ];
        for (mutate, key) in cases {
            let mut c = TcpConfig::default();
            mutate(&mut c);
            assert_eq!(c.validate().unwrap_err().key, key);
        }
    }
}
