//! HTTP/1.1 (RFC 9112) with persistent connections and pipelining, serving one fixed response
//! of a configurable size with a correct `Content-Length` — the load-test target.
//!
//! Requests are parsed as they arrive; pipelined requests are answered in order. A malformed
//! request gets `400 Bad Request` and the connection closes (RFC 9112 §3: a server that
//! receives an invalid request line SHOULD respond 400); a header block over 16 KiB gets `431`;
//! `Transfer-Encoding` in a request gets `501` (bodies are only accepted with
//! `Content-Length`); an HTTP/1.1 request without `Host` gets 400 (RFC 9112 §3.2). `HEAD` gets
//! the headers only. `Connection: close`, or HTTP/1.0 without `keep-alive`, closes after the
//! response.

use std::sync::Arc;
use tern_rt::{App, Conn};
use tern_tcp::ConnError;

/// Largest request header block accepted.
const MAX_HEADER: usize = 16 * 1024;

/// The HTTP service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Size of the response body in bytes.
    pub body_size: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { body_size: 64 }
    }
}

/// The HTTP service: responses are built once and shared.
#[derive(Debug, Clone)]
pub struct Http {
    ok: Arc<[u8]>,
    ok_head: Arc<[u8]>,
    ok_close: Arc<[u8]>,
    ok_close_head: Arc<[u8]>,
}

/// A response being written: which bytes, and how far.
#[derive(Debug)]
struct Pending {
    bytes: Arc<[u8]>,
    written: usize,
}

/// One connection's parser and output queue.
#[derive(Debug, Default)]
pub struct HttpState {
    input: Vec<u8>,
    /// Bytes of a request body still to skip.
    skip: usize,
    queue: std::collections::VecDeque<Pending>,
    /// Close once the queue is written (after `Connection: close` or an error).
    close_after: bool,
    peer_closed: bool,
}

fn response(status: &str, body: &[u8], close: bool, head: bool) -> Arc<[u8]> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nServer: ternd\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if close {
        r.extend_from_slice(b"Connection: close\r\n");
    }
    r.extend_from_slice(b"\r\n");
    if !head {
        r.extend_from_slice(body);
    }
    r.into()
}

/// What one parsed request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A valid request: header block length, body length, keep-alive, HEAD.
    Request {
        header_len: usize,
        body: usize,
        keep_alive: bool,
        head: bool,
    },
    /// The header block is not complete yet.
    Incomplete,
    /// A request this server must refuse, with the status line to send.
    Refuse(&'static str),
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses the request at the start of `input` (RFC 9112 §3 request line, §5 header fields).
fn parse(input: &[u8]) -> Parsed {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if input.len() > MAX_HEADER {
            Parsed::Refuse("431 Request Header Fields Too Large")
        } else {
            Parsed::Incomplete
        };
    };
    if end > MAX_HEADER {
        return Parsed::Refuse("431 Request Header Fields Too Large");
    }
    let block = &input[..end];
    let mut lines = block
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Refuse("400 Bad Request");
    };
    if method.is_empty()
        || !method.iter().all(|&b| is_token(b))
        || target.is_empty()
        || target.iter().any(|&b| b <= b' ' || b == 0x7f)
    {
        return Parsed::Refuse("400 Bad Request");
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Parsed::Refuse("400 Bad Request"),
    };
    let (mut host, mut body, mut connection_close, mut keep_alive_token) =
        (false, 0usize, false, false);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed::Refuse("400 Bad Request");
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            // RFC 9112 §5.1: no whitespace between the field name and the colon.
            return Parsed::Refuse("400 Bad Request");
        }
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"host") {
            host = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok());
            match parsed {
                Some(n) if n <= 1 << 30 => body = n,
                _ => return Parsed::Refuse("400 Bad Request"),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Refuse("501 Not Implemented");
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                connection_close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if http11 && !host {
        return Parsed::Refuse("400 Bad Request");
    }
    let keep_alive = !connection_close && (http11 || keep_alive_token);
    Parsed::Request {
        header_len: end + 4,
        body,
        keep_alive,
        head: method == b"HEAD",
    }
}

impl Http {
    /// The service with `config`'s response.
    pub fn new(config: &HttpConfig) -> Http {
        let body: Vec<u8> = (0..config.body_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        Http {
            ok: response("200 OK", &body, false, false),
            ok_head: response("200 OK", &body, false, true),
            ok_close: response("200 OK", &body, true, false),
            ok_close_head: response("200 OK", &body, true, true),
        }
    }

    /// Parses what can be parsed, queues the responses, writes what fits.
    fn pump(&mut self, conn: &mut Conn<'_>, st: &mut HttpState) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            // Backpressure: read no more while responses wait for send-buffer space.
            if !self.write(conn, st) {
                return;
            }
            if st.close_after {
                break;
            }
            match conn.read(&mut buf) {
                Ok(0) => {
                    st.peer_closed = true;
                    break;
                }
                Ok(n) => {
                    let mut data = &buf[..n];
                    let skipped = st.skip.min(data.len());
                    st.skip -= skipped;
                    data = &data[skipped..];
                    st.input.extend_from_slice(data);
                    self.parse_all(st);
                }
                Err(ConnError::WouldBlock) => break,
                Err(_) => return,
            }
        }
        if !self.write(conn, st) {
            return;
        }
        if st.close_after || st.peer_closed {
            let _ = conn.close();
        }
    }

    fn parse_all(&mut self, st: &mut HttpState) {
        while !st.close_after && st.skip == 0 && !st.input.is_empty() {
            match parse(&st.input) {
                Parsed::Incomplete => return,
                Parsed::Refuse(status) => {
                    st.queue.push_back(Pending {
                        bytes: response(status, status.as_bytes(), true, false),
                        written: 0,
                    });
                    st.close_after = true;
                    st.input.clear();
                }
                Parsed::Request {
                    header_len,
                    body,
                    keep_alive,
                    head,
                } => {
                    let bytes = match (keep_alive, head) {
                        (true, false) => self.ok.clone(),
                        (true, true) => self.ok_head.clone(),
                        (false, false) => self.ok_close.clone(),
                        (false, true) => self.ok_close_head.clone(),
                    };
                    st.queue.push_back(Pending { bytes, written: 0 });
                    st.close_after = !keep_alive;
                    let consumed = (header_len + body).min(st.input.len());
                    st.skip = header_len + body - consumed;
                    st.input.drain(..consumed);
                }
            }
        }
    }

    /// Writes queued responses; `false` when the send buffer filled up.
    fn write(&mut self, conn: &mut Conn<'_>, st: &mut HttpState) -> bool {
        while let Some(p) = st.queue.front_mut() {
            match conn.write(&p.bytes[p.written..]) {
                Ok(n) => p.written += n,
                Err(_) => return false,
            }
            if p.written < p.bytes.len() {
                return false;
            }
            st.queue.pop_front();
        }
        true
    }
}

impl App for Http {
    type State = HttpState;

    fn on_readable(&mut self, conn: &mut Conn<'_>, st: &mut HttpState) {
        self.pump(conn, st);
    }

    fn on_writable(&mut self, conn: &mut Conn<'_>, st: &mut HttpState) {
        self.pump(conn, st);
    }

    fn on_peer_closed(&mut self, conn: &mut Conn<'_>, st: &mut HttpState) {
        st.peer_closed = true;
        self.pump(conn, st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_keep_alive_rules() {
        let p = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            p,
            Parsed::Request {
                header_len: 27,
                body: 0,
                keep_alive: true,
                head: false
            }
        );
        let p = parse(b"GET / HTTP/1.0\r\n\r\n");
        assert!(matches!(
            p,
            Parsed::Request {
                keep_alive: false,
                ..
            }
        ));
        let p = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(matches!(
            p,
            Parsed::Request {
                keep_alive: true,
                ..
            }
        ));
        let p = parse(b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(matches!(
            p,
            Parsed::Request {
                keep_alive: false,
                head: true,
                ..
            }
        ));
        let p = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        assert!(matches!(p, Parsed::Request { body: 5, .. }));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Incomplete);
    }

    #[test]
    fn refuses_what_it_must() {
        for (req, status) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "400 Bad Request"),
            (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "400 Bad Request"),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400 Bad Request"),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                "400 Bad Request",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
                "400 Bad Request",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                "501 Not Implemented",
            ),
        ] {
            assert_eq!(
                parse(req),
                Parsed::Refuse(status),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        let huge = vec![b'a'; MAX_HEADER + 1];
        assert_eq!(
            parse(&huge),
            Parsed::Refuse("431 Request Header Fields Too Large")
        );
    }

    #[test]
    fn responses_carry_the_right_content_length() {
        let http = Http::new(&HttpConfig { body_size: 1000 });
        let text = String::from_utf8(http.ok.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 1000"));
        assert_eq!(body.len(), 1000);
        assert!(String::from_utf8(http.ok_head.to_vec())
            .unwrap()
            .ends_with("\r\n\r\n"));
    }
}
