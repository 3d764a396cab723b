//! `ternd`'s configuration: a TOML file, overridden by `--set key=value` and the dedicated
//! flags. Unknown keys, wrong types and out-of-range values are refused at start with the key,
//! the value and what is allowed. TCP knobs use the Linux names of `docs/configuration.md`;
//! durations are strings such as `"200ms"` or `"60s"`.

use crate::apps::{Banner, Echo, Http, HttpConfig, Service};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration as StdDuration;
use tern_tcp::{Duration, KeepaliveConfig, ListenConfig, SyncookieMode, TcpConfig};
use tern_xsk::{XskConfig, ZeroCopy};

/// A configuration that cannot be used: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, as a dotted path (`tcp.rto_min`, `listen[0].app`).
    pub key: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration key `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The file's shape. Every table and key is optional except `interface` and a listener.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    interface: Option<String>,
    queues: Option<u32>,
    xdp_mode: Option<String>,
    zero_copy: Option<String>,
    busy_poll: Option<bool>,
    spin: Option<bool>,
    drain_timeout: Option<String>,
    stats_interval: Option<String>,
    accept_budget: Option<usize>,
    #[serde(default)]
    listen: Vec<ListenFile>,
    http: Option<HttpFile>,
    banner: Option<BannerFile>,
    tcp: Option<TcpFile>,
    umem: Option<UmemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenFile {
    address: String,
    app: String,
    backlog: Option<usize>,
    syn_backlog: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    body_size: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BannerFile {
    greeting: Option<String>,
    close: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UmemFile {
    frame_size: Option<u32>,
    frame_count: Option<u32>,
    fill_ring: Option<u32>,
    completion_ring: Option<u32>,
    rx_ring: Option<u32>,
    tx_ring: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TcpFile {
    wmem: Option<usize>,
    rmem: Option<usize>,
    max_buffers: Option<usize>,
    mss: Option<u16>,
    default_mss: Option<u16>,
    timestamps: Option<bool>,
    window_scaling: Option<bool>,
    sack: Option<bool>,
    initial_cwnd: Option<u32>,
    rto_initial: Option<String>,
    rto_min: Option<String>,
    rto_max: Option<String>,
    retries1: Option<u32>,
    retries2: Option<u32>,
    syn_retries: Option<u32>,
    synack_retries: Option<u32>,
    delack_timeout: Option<String>,
    fin_timeout: Option<String>,
    msl: Option<String>,
    max_tw_buckets: Option<usize>,
    keepalive: Option<bool>,
    keepalive_time: Option<String>,
    keepalive_intvl: Option<String>,
    keepalive_probes: Option<u32>,
    nodelay: Option<bool>,
    invalid_ratelimit: Option<String>,
    /// `off`, `on-overflow`, `always`, or Linux's 0, 1, 2.
    syncookies: Option<toml::Value>,
    syncookie_period: Option<String>,
    syncookie_rst_rate: Option<u32>,
    abort_on_overflow: Option<bool>,
}

/// How to attach the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpModeSetting {
    /// Native, falling back to generic with a warning.
    Auto,
    /// Native only.
    Native,
    /// Generic (SKB) only.
    Generic,
}

/// One listener: where, what application, its queues.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Address and port (an unspecified address listens on every address of its family).
    pub address: SocketAddr,
    /// The application's name, as configured.
    pub app: String,
    /// The application.
    pub service: Service,
    /// Accept- and SYN-queue bounds.
    pub queues: ListenConfig,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The interface to steer from.
    pub interface: String,
    /// How many receive queues to serve (from queue 0); `None`: every queue the interface has.
    pub queues: Option<u32>,
    /// XDP attach mode.
    pub xdp_mode: XdpModeSetting,
    /// AF_XDP sockets.
    pub xsk: XskConfig,
    /// Workers spin instead of sleeping in poll(2).
    pub spin: bool,
    /// How long shutdown waits for connections to close before aborting them.
    pub drain_timeout: StdDuration,
    /// How often statistics are collected and printed.
    pub stats_interval: StdDuration,
    /// Connections accepted per listener per loop turn at most.
    pub accept_budget: usize,
    /// The listeners.
    pub listeners: Vec<Listener>,
    /// The engine.
    pub tcp: TcpConfig,
}

fn duration(key: &str, value: &str) -> Result<StdDuration, ConfigError> {
    humantime::parse_duration(value).map_err(|e| {
        err(
            key,
            format!("`{value}` is not a duration ({e}); write e.g. \"200ms\" or \"60s\""),
        )
    })
}

fn engine_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, value)?;
    Ok(Duration::from_micros(
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
    ))
}

/// Sets the dotted `key` of a TOML document to `value` (parsed as a TOML value, or taken as a
/// string when it does not parse as one).
fn set_path(doc: &mut toml::Table, key: &str, value: &str) -> Result<(), ConfigError> {
    let parsed: toml::Value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut parts = key.split('.').peekable();
    let mut table = doc;
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(err(key, "empty component in the key"));
        }
        if parts.peek().is_none() {
            table.insert(part.to_owned(), parsed);
            return Ok(());
        }
        let entry = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| err(key, format!("`{part}` is not a table")))?;
    }
    Ok(())
}

/// Command-line overrides on top of the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--interface`.
    pub interface: Option<String>,
    /// `--queues`.
    pub queues: Option<u32>,
    /// `--listen ADDR=APP`, appended to the file's listeners.
    pub listen: Vec<String>,
    /// `--set key=value`.
    pub set: Vec<String>,
}

impl Config {
    /// Reads `path` (if any), applies `overrides`, and validates everything.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| err("--config", format!("cannot read {}: {e}", p.display())))?,
            None => String::new(),
        };
        Config::parse(&text, overrides)
    }

    /// Parses a configuration text with overrides.
    pub fn parse(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            err(
                e.span().map_or_else(
                    || "file".to_owned(),
                    |s| format!("line {}", line_of(text, s.start)),
                ),
                e.message().to_owned(),
            )
        })?;
        for kv in &overrides.set {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err(kv.as_str(), "--set takes key=value"))?;
            set_path(&mut doc, k.trim(), v.trim())?;
        }
        let de = toml::Value::Table(doc);
        let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            err(
                if path == "." { "file".to_owned() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        Config::from_file(file, overrides)
    }

    fn from_file(f: File, o: &Overrides) -> Result<Config, ConfigError> {
        let interface = o.interface.clone().or(f.interface).ok_or_else(|| {
            err(
                "interface",
                "no interface given: set `interface = \"eth0\"` or pass --interface",
            )
        })?;
        let queues = o.queues.or(f.queues);
        if queues == Some(0) {
            return Err(err("queues", "must be at least 1"));
        }
        let xdp_mode = match f.xdp_mode.as_deref().unwrap_or("auto") {
            "auto" => XdpModeSetting::Auto,
            "native" => XdpModeSetting::Native,
            "generic" => XdpModeSetting::Generic,
            other => {
                return Err(err(
                    "xdp_mode",
                    format!("`{other}`: allowed are auto, native, generic"),
                ))
            }
        };
        let zero_copy = match f.zero_copy.as_deref().unwrap_or("auto") {
            "auto" => ZeroCopy::Auto,
            "required" => ZeroCopy::Required,
            "off" => ZeroCopy::Off,
            other => {
                return Err(err(
                    "zero_copy",
                    format!("`{other}`: allowed are auto, required, off"),
                ))
            }
        };
        let mut xsk = XskConfig {
            zero_copy,
            ..XskConfig::default()
        };
        if f.busy_poll.unwrap_or(false) {
            xsk.busy_poll = Some(tern_xsk::BusyPoll::default());
        }
        if let Some(u) = f.umem {
            xsk.frame_size = u.frame_size.unwrap_or(xsk.frame_size);
            xsk.frame_count = u.frame_count.unwrap_or(xsk.frame_count);
            xsk.fill_ring = u.fill_ring.unwrap_or(xsk.fill_ring);
            xsk.completion_ring = u.completion_ring.unwrap_or(xsk.completion_ring);
            xsk.rx_ring = u.rx_ring.unwrap_or(xsk.rx_ring);
            xsk.tx_ring = u.tx_ring.unwrap_or(xsk.tx_ring);
        }
        xsk.validate()
            .map_err(|e| err(format!("umem.{}", e.key), e.to_string()))?;

        let tcp = tcp_config(f.tcp.unwrap_or_default())?;
        let http = Http::new(&HttpConfig {
            body_size: f
                .http
                .and_then(|h| h.body_size)
                .unwrap_or(HttpConfig::default().body_size),
        });
        let banner_file = f.banner.unwrap_or_default();
        let banner = Banner {
            greeting: banner_file
                .greeting
                .unwrap_or_else(|| "220 ternd ready\r\n".to_owned())
                .into_bytes(),
            close: banner_file.close.unwrap_or(false),
        };

        let mut listeners = Vec::new();
        let mut add = |key: String,
                       address: &str,
                       app: &str,
                       backlog: Option<usize>,
                       syn_backlog: Option<usize>| {
            let address: SocketAddr = address.parse().map_err(|_| {
                err(
                    format!("{key}.address"),
                    format!("`{address}` is not ADDRESS:PORT (e.g. 198.18.0.1:80 or [::]:80)"),
                )
            })?;
            if address.port() == 0 {
                return Err(err(
                    format!("{key}.address"),
                    "port 0 cannot be listened on",
                ));
            }
            let service = match app {
                "echo" => Service::Echo(Echo),
                "discard" => Service::Discard(crate::apps::Discard),
                "http" => Service::Http(http.clone()),
                "banner" => Service::Banner(banner.clone()),
                other => {
                    return Err(err(
                        format!("{key}.app"),
                        format!("`{other}`: allowed are echo, discard, http, banner"),
                    ))
                }
            };
            let defaults = ListenConfig::default();
            let queues = ListenConfig {
                backlog: backlog.unwrap_or(defaults.backlog),
                syn_backlog: syn_backlog.unwrap_or(defaults.syn_backlog),
            };
            if queues.backlog == 0 || queues.syn_backlog == 0 {
                return Err(err(
                    format!("{key}.backlog"),
                    "backlog and syn_backlog must be at least 1",
                ));
            }
            listeners.push(Listener {
                address,
                app: app.to_owned(),
                service,
                queues,
            });
            Ok(())
        };
        for (i, l) in f.listen.iter().enumerate() {
            add(
                format!("listen[{i}]"),
                &l.address,
                &l.app,
                l.backlog,
                l.syn_backlog,
            )?;
        }
        for (i, spec) in o.listen.iter().enumerate() {
            let (address, app) = spec.split_once('=').ok_or_else(|| {
                err(
                    format!("--listen[{i}]"),
                    format!("`{spec}` is not ADDRESS:PORT=APP"),
                )
            })?;
            add(format!("--listen[{i}]"), address, app, None, None)?;
        }
        if listeners.is_empty() {
            return Err(err(
                "listen",
                "no listener: add a [[listen]] table or --listen ADDRESS:PORT=APP",
            ));
        }
        for (i, a) in listeners.iter().enumerate() {
            if listeners[..i].iter().any(|b| b.address == a.address) {
                return Err(err("listen", format!("{} is listed twice", a.address)));
            }
        }
        Ok(Config {
            interface,
            queues,
            xdp_mode,
            xsk,
            spin: f.spin.unwrap_or(false),
            drain_timeout: duration("drain_timeout", f.drain_timeout.as_deref().unwrap_or("5s"))?,
            stats_interval: duration(
                "stats_interval",
                f.stats_interval.as_deref().unwrap_or("1s"),
            )?,
            accept_budget: f.accept_budget.unwrap_or(64).max(1),
            listeners,
            tcp,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].lines().count().max(1)
}

fn tcp_config(t: TcpFile) -> Result<TcpConfig, ConfigError> {
    let mut c = TcpConfig::default();
    macro_rules! plain {
        ($($field:ident),*) => { $( if let Some(v) = t.$field { c.$field = v; } )* };
    }
    plain!(
        wmem,
        rmem,
        max_buffers,
        mss,
        default_mss,
        timestamps,
        window_scaling,
        sack,
        initial_cwnd,
        retries1,
        retries2,
        syn_retries,
        synack_retries,
        max_tw_buckets,
        syncookie_rst_rate,
        abort_on_overflow
    );
    macro_rules! dur {
        ($($field:ident),*) => { $( if let Some(v) = &t.$field { c.$field = engine_duration(concat!("tcp.", stringify!($field)), v)?; } )* };
    }
    dur!(
        rto_initial,
        rto_min,
        rto_max,
        delack_timeout,
        fin_timeout,
        msl,
        invalid_ratelimit,
        syncookie_period
    );
    let ka = &mut c.keepalive;
    if let Some(on) = t.keepalive {
        ka.enabled = on;
    }
    if let Some(v) = &t.keepalive_time {
        ka.time = engine_duration("tcp.keepalive_time", v)?;
    }
    if let Some(v) = &t.keepalive_intvl {
        ka.interval = engine_duration("tcp.keepalive_intvl", v)?;
    }
    if let Some(v) = t.keepalive_probes {
        ka.probes = v;
    }
    let _: &KeepaliveConfig = ka;
    if let Some(nodelay) = t.nodelay {
        c.nagle = !nodelay;
    }
    if let Some(mode) = &t.syncookies {
        let text = match mode {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        c.syncookies = match text.as_str() {
            "off" | "0" => SyncookieMode::Off,
            "on-overflow" | "1" => SyncookieMode::OnOverflow,
            "always" | "2" => SyncookieMode::Always,
            other => {
                return Err(err(
                    "tcp.syncookies",
                    format!("`{other}`: allowed are off, on-overflow, always (or 0, 1, 2)"),
                ))
            }
        };
    }
    c.validate()
        .map_err(|e| err(format!("tcp.{}", e.key), e.reason))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, set: &[&str]) -> Result<Config, ConfigError> {
        let o = Overrides {
            set: set.iter().map(|s| s.to_string()).collect(),
            ..Overrides::default()
        };
        Config::parse(text, &o)
    }

    const MINIMAL: &str =
        "interface = \"eth0\"\n[[listen]]\naddress = \"198.18.0.1:80\"\napp = \"http\"\n";

    #[test]
    fn a_minimal_file_gets_linux_defaults() {
        let c = parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.interface, "eth0");
        assert_eq!(c.listeners[0].app, "http");
        assert_eq!(c.tcp, TcpConfig::default());
        assert_eq!(c.xdp_mode, XdpModeSetting::Auto);
        assert_eq!(c.drain_timeout, StdDuration::from_secs(5));
    }

    #[test]
    fn set_overrides_any_key_and_durations_parse() {
        let c = parse(
            MINIMAL,
            &[
                "tcp.rto_min=300ms",
                "tcp.syncookies=always",
                "queues=2",
                "tcp.rmem=262144",
            ],
        )
        .unwrap();
        assert_eq!(c.tcp.rto_min, Duration::from_millis(300));
        assert_eq!(c.tcp.syncookies, SyncookieMode::Always);
        assert_eq!((c.queues, c.tcp.rmem), (Some(2), 262_144));
    }

    #[test]
    fn bad_input_names_the_key_and_what_is_allowed() {
        let cases: &[(&str, &[&str], &str, &str)] = &[
            (
                MINIMAL,
                &["tcp.delack_timeout=\"2s\""],
                "tcp.delack_timeout",
                "500 ms",
            ),
            (
                MINIMAL,
                &["tcp.rto_min=\"fast\""],
                "tcp.rto_min",
                "not a duration",
            ),
            (MINIMAL, &["tcp.nosuch=1"], "tcp", "unknown field"),
            (MINIMAL, &["tcp.mss=\"big\""], "tcp.mss", "invalid type"),
            (
                MINIMAL,
                &["xdp_mode=turbo"],
                "xdp_mode",
                "auto, native, generic",
            ),
            (
                MINIMAL,
                &["tcp.syncookies=3"],
                "tcp.syncookies",
                "off, on-overflow, always",
            ),
            (
                MINIMAL,
                &["umem.rx_ring=1000"],
                "umem.rx_ring",
                "power of two",
            ),
            (
                "interface = \"eth0\"\n[[listen]]\naddress = \"nowhere\"\napp = \"echo\"\n",
                &[],
                "listen[0].address",
                "ADDRESS:PORT",
            ),
            (
                "interface = \"eth0\"\n[[listen]]\naddress = \"198.18.0.1:7\"\napp = \"ftp\"\n",
                &[],
                "listen[0].app",
                "echo, discard, http, banner",
            ),
            ("interface = \"eth0\"\n", &[], "listen", "no listener"),
            (
                "[[listen]]\naddress = \"198.18.0.1:7\"\napp = \"echo\"\n",
                &[],
                "interface",
                "--interface",
            ),
            ("interface = \n", &[], "line 1", ""),
        ];
        for (text, set, key, reason) in cases {
            let e = parse(text, set).unwrap_err();
            assert!(
                e.key.starts_with(key),
                "{set:?}: key `{}`, wanted `{key}` ({e})",
                e.key
            );
            assert!(
                e.reason.contains(reason),
                "{set:?}: `{}` lacks `{reason}`",
                e.reason
            );
        }
    }

    #[test]
    fn listen_flags_add_listeners_and_duplicates_are_refused() {
        let o = Overrides {
            listen: vec!["198.18.0.1:7=echo".into(), "[::]:80=http".into()],
            ..Overrides::default()
        };
        let c = Config::parse("interface = \"eth0\"\n", &o).unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert!(c.listeners[1].address.ip().is_unspecified());
        let o = Overrides {
            listen: vec!["198.18.0.1:7=echo".into(), "198.18.0.1:7=http".into()],
            ..Overrides::default()
        };
        assert!(Config::parse("interface = \"eth0\"\n", &o)
            .unwrap_err()
            .reason
            .contains("twice"));
    }
}
