//! Echo (RFC 862's service over tern) and discard (RFC 863's).

use tern_rt::{App, Conn};
use tern_tcp::ConnError;

/// Size of the stack buffer one read uses.
const CHUNK: usize = 16 * 1024;

/// Returns every byte it receives; after the peer's FIN, closes its own side once everything
/// is echoed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

/// Echo's per-connection state: bytes read but not yet written back (never more than one read,
/// because nothing more is read until they are written).
#[derive(Debug, Default)]
pub struct EchoState {
    pending: Vec<u8>,
    peer_closed: bool,
}

impl Echo {
    /// Writes back what is pending, then reads and writes until the input is empty or the send
    /// buffer full; closes once the peer is done and everything is echoed.
    fn pump(&mut self, conn: &mut Conn<'_>, st: &mut EchoState) {
        let mut buf = [0u8; CHUNK];
        loop {
            if !st.pending.is_empty() {
                let Ok(n) = conn.write(&st.pending) else {
                    return;
                };
                st.pending.drain(..n);
                if !st.pending.is_empty() {
                    return; // on_writable resumes
                }
            }
            match conn.read(&mut buf) {
                Ok(0) => {
                    st.peer_closed = true;
                    break;
                }
                Ok(n) => st.pending.extend_from_slice(&buf[..n]),
                Err(ConnError::WouldBlock) => break,
                Err(_) => return,
            }
        }
        if st.peer_closed && st.pending.is_empty() {
            let _ = conn.close();
        }
    }
}

impl App for Echo {
    type State = EchoState;

    fn on_readable(&mut self, conn: &mut Conn<'_>, st: &mut EchoState) {
        self.pump(conn, st);
    }

    fn on_writable(&mut self, conn: &mut Conn<'_>, st: &mut EchoState) {
        self.pump(conn, st);
    }

    fn on_peer_closed(&mut self, conn: &mut Conn<'_>, st: &mut EchoState) {
        st.peer_closed = true;
        self.pump(conn, st);
    }
}

/// Reads and drops everything; closes after the peer's FIN.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl App for Discard {
    type State = ();

    fn on_readable(&mut self, conn: &mut Conn<'_>, _: &mut ()) {
        let mut buf = [0u8; CHUNK];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                let _ = conn.close();
                return;
            }
        }
    }
}
