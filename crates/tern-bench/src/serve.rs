//! `tern-bench serve`: the kernel reference server.
//!
//! One thread per core (by default), each with its own `SO_REUSEPORT` listener per address and
//! its own epoll set, so the kernel spreads connections over the threads and no thread shares
//! anything with another. Modes:
//!
//! * `echo`: every byte read is written back;
//! * `http`: HTTP/1.1 with keep-alive: each request (up to the blank line; bodies are not
//!   expected) is answered `200 OK` with a fixed-size body and `Content-Length`; a request with
//!   `Connection: close` gets its answer and then the connection is closed;
//! * `discard`: everything read is dropped.
//!
//! It runs for `--duration` or until SIGINT/SIGTERM, whichever comes first, then prints its
//! counters (and writes them as JSON with `--json`).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use serde::{Deserialize, Serialize};

use crate::net;

/// What the server does with a connection's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Write back every byte read.
    Echo,
    /// Answer HTTP/1.1 requests with a fixed body.
    Http,
    /// Read and drop.
    Discard,
}

/// Configuration of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Threads (each with a listener per address).
    pub threads: usize,
    /// Cores to pin thread *i* to (`cores[i % len]`); none: not pinned.
    pub cores: Vec<usize>,
    /// Mode.
    pub mode: Mode,
    /// HTTP response body size in bytes.
    pub body_size: usize,
    /// `listen(2)` backlog; 4096 and up: as much as `net.core.somaxconn` allows.
    pub backlog: i32,
    /// Stop after this long (else only on a signal or `stop`).
    pub duration: Option<Duration>,
    /// Write the counters here as JSON at the end.
    pub json: Option<PathBuf>,
}

/// Counters of the server (summed over threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed (by either side).
    pub closed: u64,
    /// HTTP requests answered.
    pub requests: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// `accept(2)` failures other than "nothing to accept" (e.g. EMFILE).
    pub accept_errors: u64,
    /// Connections ended by an error (reset, broken pipe, ...).
    pub conn_errors: u64,
    /// HTTP requests that were not understood (answered 400, then closed).
    pub bad_requests: u64,
}

impl ServeStats {
    fn add(&mut self, o: &ServeStats) {
        self.accepted += o.accepted;
        self.closed += o.closed;
        self.requests += o.requests;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.accept_errors += o.accept_errors;
        self.conn_errors += o.conn_errors;
        self.bad_requests += o.bad_requests;
    }
}

/// The JSON written by `serve --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeReport {
    /// Listening addresses.
    pub listen: Vec<SocketAddr>,
    /// Mode.
    pub mode: Mode,
    /// Threads.
    pub threads: usize,
    /// The accept backlog in effect (capped at net.core.somaxconn).
    pub backlog: Option<i32>,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// Counters.
    pub stats: ServeStats,
    /// Accepted connections per second over the run.
    pub accepts_per_s: f64,
}

/// Requests larger than this without a blank line are refused.
const MAX_REQUEST: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Close once `out` is written.
    close_after: bool,
    /// The peer has finished sending (EOF read).
    read_done: bool,
    /// The epoll interest currently registered.
    registered: EpollFlags,
}

impl Conn {
    /// The epoll interest the connection needs now: input until the peer's EOF, output while
    /// replies are pending.
    fn interest(&self) -> EpollFlags {
        let mut flags = EpollFlags::empty();
        if !self.read_done {
            flags |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        }
        if self.out_pos < self.out.len() {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }
}

/// Runs the server until `duration`, a signal, or `stop`; returns the summed counters.
pub fn serve(config: &ServeConfig, stop: Arc<AtomicBool>) -> Result<ServeReport> {
    anyhow::ensure!(!config.listen.is_empty(), "nothing to listen on (--listen)");
    anyhow::ensure!(config.threads >= 1, "--threads must be at least 1");
    let response: Arc<[u8]> = http_response(config.body_size).into();
    // Open every listener first, so errors (address not here, port in use) come out before
    // anything runs and a caller that sees "listening" can connect at once.
    let mut sets = Vec::with_capacity(config.threads);
    for _ in 0..config.threads {
        let listeners = config
            .listen
            .iter()
            .map(|a| net::reuseport_listener(*a, config.backlog))
            .collect::<Result<Vec<_>>>()?;
        sets.push(listeners);
    }
    let start = Instant::now();
    let deadline = config.duration.map(|d| start + d);
    let barrier = Arc::new(Barrier::new(config.threads + 1));
    let mut handles = Vec::new();
    for (i, listeners) in sets.into_iter().enumerate() {
        let core = (!config.cores.is_empty()).then(|| config.cores[i % config.cores.len()]);
        let (stop, response, barrier, mode) =
            (stop.clone(), response.clone(), barrier.clone(), config.mode);
        handles.push(
            std::thread::Builder::new()
                .name(format!("serve-{i}"))
                .spawn(move || -> Result<ServeStats> {
                    if let Some(c) = core {
                        net::pin_to_core(c)?;
                    }
                    let mut worker = Worker::new(listeners, mode, response)?;
                    barrier.wait();
                    worker.run(&stop, deadline)?;
                    Ok(worker.stats)
                })
                .context("spawning a server thread")?,
        );
    }
    barrier.wait();
    println!(
        "serve: listening on {} ({:?}, {} thread(s), backlog {:?})",
        config
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        config.mode,
        config.threads,
        net::effective_backlog(config.backlog)
    );
    let mut total = ServeStats::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(s)) => total.add(&s),
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(anyhow::anyhow!("a server thread panicked"));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let report = ServeReport {
        listen: config.listen.clone(),
        mode: config.mode,
        threads: config.threads,
        backlog: net::effective_backlog(config.backlog),
        elapsed_s: elapsed,
        stats: total,
        accepts_per_s: total.accepted as f64 / elapsed.max(1e-9),
    };
    if let Some(path) = &config.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

/// The fixed HTTP response: headers and a body of `body` bytes.
pub fn http_response(body: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: tern-bench\r\nContent-Type: text/plain\r\n\
         Content-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    r.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    r
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Where a complete request head ends (after its blank line), if `buf` holds one.
pub fn request_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// What the server makes of one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A request to answer; `close` if it asked for `Connection: close` (or is HTTP/1.0
    /// without keep-alive).
    Ok {
        /// Close after answering.
        close: bool,
    },
    /// Not HTTP.
    Bad,
}

/// Parses a request head (up to and including the blank line).
pub fn parse_request(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(_method), Some(_target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    let mut close = version == "HTTP/1.0";
    for h in lines {
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("connection") {
                let v = value.trim();
                if v.eq_ignore_ascii_case("close") {
                    close = true;
                } else if v.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    Request::Ok { close }
}

struct Worker {
    epoll: Epoll,
    listeners: Vec<TcpListener>,
    conns: HashMap<u64, Conn>,
    next_token: u64,
    mode: Mode,
    response: Arc<[u8]>,
    stats: ServeStats,
    buf: Vec<u8>,
}

impl Worker {
    fn new(listeners: Vec<TcpListener>, mode: Mode, response: Arc<[u8]>) -> Result<Worker> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
        for (i, l) in listeners.iter().enumerate() {
            epoll
                .add(l.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .context("adding a listener to epoll")?;
        }
        Ok(Worker {
            epoll,
            next_token: listeners.len() as u64,
            listeners,
            conns: HashMap::new(),
            mode,
            response,
            stats: ServeStats::default(),
            buf: vec![0; 64 * 1024],
        })
    }

    fn run(&mut self, stop: &AtomicBool, deadline: Option<Instant>) -> Result<()> {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(50u16)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            for ev in &events[..n] {
                let token = ev.data();
                if (token as usize) < self.listeners.len() {
                    self.accept(token as usize)?;
                } else {
                    self.service(token, ev.events());
                }
            }
        }
        self.stats.closed += self.conns.len() as u64;
        self.conns.clear();
        Ok(())
    }

    fn accept(&mut self, which: usize) -> Result<()> {
        loop {
            match self.listeners[which].accept() {
                Ok((stream, _)) => {
                    self.stats.accepted += 1;
                    if stream.set_nonblocking(true).is_err() {
                        self.stats.conn_errors += 1;
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let token = self.next_token;
                    self.next_token += 1;
                    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
                    if self
                        .epoll
                        .add(stream.as_fd(), EpollEvent::new(flags, token))
                        .is_err()
                    {
                        self.stats.conn_errors += 1;
                        self.stats.closed += 1;
                        continue;
                    }
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            out_pos: 0,
                            close_after: false,
                            read_done: false,
                            registered: flags,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
                    ) =>
                {
                    self.stats.accept_errors += 1;
                }
                Err(_) => {
                    // EMFILE and friends: count, and let the next readiness event retry.
                    self.stats.accept_errors += 1;
                    return Ok(());
                }
            }
        }
    }

    fn service(&mut self, token: u64, events: EpollFlags) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let keep = self.drive(&mut conn, events);
        if keep {
            let flags = conn.interest();
            if flags != conn.registered {
                let mut ev = EpollEvent::new(flags, token);
                if self.epoll.modify(conn.stream.as_fd(), &mut ev).is_err() {
                    self.stats.conn_errors += 1;
                    self.stats.closed += 1;
                    return;
                }
                conn.registered = flags;
            }
            self.conns.insert(token, conn);
        } else {
            // Dropping the stream closes it, which also removes it from the epoll set.
            self.stats.closed += 1;
        }
    }

    /// Reads, answers, writes; `false` when the connection is done.
    fn drive(&mut self, conn: &mut Conn, events: EpollFlags) -> bool {
        if events.contains(EpollFlags::EPOLLERR) {
            self.stats.conn_errors += 1;
            return false;
        }
        let mut eof = conn.read_done;
        if !eof
            && events
                .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP)
        {
            loop {
                match conn.stream.read(&mut self.buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.stats.bytes_in += n as u64;
                        match self.mode {
                            Mode::Discard => {}
                            Mode::Echo => conn.out.extend_from_slice(&self.buf[..n]),
                            Mode::Http => {
                                conn.inbuf.extend_from_slice(&self.buf[..n]);
                                self.answer_http(conn);
                            }
                        }
                        // Bound what one connection buffers: stop reading while its replies
                        // are not being taken.
                        if conn.out.len() - conn.out_pos > 4 * 1024 * 1024 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.stats.conn_errors += 1;
                        return false;
                    }
                }
            }
        }
        if !self.flush(conn) {
            return false;
        }
        let pending = conn.out_pos < conn.out.len();
        if (eof || conn.close_after) && !pending {
            return false;
        }
        // The peer is done sending: finish writing what it asked for, then close.
        conn.read_done = eof;
        true
    }

    fn answer_http(&mut self, conn: &mut Conn) {
        let mut consumed = 0;
        while let Some(end) = request_end(&conn.inbuf[consumed..]) {
            let head = &conn.inbuf[consumed..consumed + end];
            consumed += end;
            match parse_request(head) {
                Request::Ok { close } => {
                    self.stats.requests += 1;
                    conn.out.extend_from_slice(&self.response);
                    if close {
                        conn.close_after = true;
                        break;
                    }
                }
                Request::Bad => {
                    self.stats.bad_requests += 1;
                    conn.out.extend_from_slice(BAD_REQUEST);
                    conn.close_after = true;
                    break;
                }
            }
        }
        conn.inbuf.drain(..consumed);
        if conn.inbuf.len() > MAX_REQUEST && !conn.close_after {
            self.stats.bad_requests += 1;
            conn.out.extend_from_slice(BAD_REQUEST);
            conn.close_after = true;
            conn.inbuf.clear();
        }
        if conn.close_after {
            conn.inbuf.clear();
        }
    }

    /// Writes what is pending; `false` on an error.
    fn flush(&mut self, conn: &mut Conn) -> bool {
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => {
                    conn.out_pos += n;
                    self.stats.bytes_out += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.conn_errors += 1;
                    return false;
                }
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
        } else if conn.out_pos > 1024 * 1024 {
            conn.out.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
        true
    }
}

impl std::fmt::Display for ServeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "serve: {:.1}s, accepted {} ({:.0}/s), closed {}, requests {}, bytes in {} out {}, \
             accept errors {}, connection errors {}, bad requests {}",
            self.elapsed_s,
            s.accepted,
            self.accepts_per_s,
            s.closed,
            s.requests,
            s.bytes_in,
            s.bytes_out,
            s.accept_errors,
            s.conn_errors,
            s.bad_requests
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Ok { close: false }
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"),
            Request::Ok { close: true }
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.0\r\n\r\n"),
            Request::Ok { close: true }
        );
        assert_eq!(parse_request(b"hello\r\n\r\n"), Request::Bad);
        assert_eq!(request_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(request_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn response_has_the_body_size() {
        let r = http_response(100);
        let end = request_end(&r).unwrap();
        assert_eq!(r.len() - end, 100);
        assert!(std::str::from_utf8(&r[..end])
            .unwrap()
            .contains("Content-Length: 100\r\n"));
    }
}
