//! Banner: the server speaks first, as SMTP, FTP or SSH servers do. This is the case where a
//! lost final ACK of a SYN-cookie handshake leaves both sides waiting (the client believes it
//! is connected, the server holds no state) until the client's own data or retransmission
//! completes it, so it is worth serving and testing on its own.

use tern_rt::{App, Conn};
use tern_tcp::ConnError;

/// Writes `greeting` when a connection is accepted; closes after it if `close` is set, and
/// otherwise reads and drops whatever the client sends.
#[derive(Debug, Clone)]
pub struct Banner {
    /// The bytes to send first.
    pub greeting: Vec<u8>,
    /// Close (gracefully) once the greeting is queued.
    pub close: bool,
}

/// How much of the greeting is still to be queued.
#[derive(Debug, Default)]
pub struct BannerState {
    written: usize,
}

impl Banner {
    fn flush(&mut self, conn: &mut Conn<'_>, st: &mut BannerState) {
        if st.written < self.greeting.len() {
            if let Ok(n) = conn.write(&self.greeting[st.written..]) {
                st.written += n;
            }
        }
        if self.close && st.written == self.greeting.len() {
            let _ = conn.close();
        }
    }
}

impl App for Banner {
    type State = BannerState;

    fn on_accept(&mut self, conn: &mut Conn<'_>, st: &mut BannerState) {
        self.flush(conn, st);
    }

    fn on_readable(&mut self, conn: &mut Conn<'_>, _st: &mut BannerState) {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => {
                    let _ = conn.close();
                    return;
                }
                Ok(_) => {}
                Err(ConnError::WouldBlock) | Err(_) => return,
            }
        }
    }

    fn on_writable(&mut self, conn: &mut Conn<'_>, st: &mut BannerState) {
        self.flush(conn, st);
    }
}
