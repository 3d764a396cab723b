//! The application interface: callbacks that run inside the worker that owns the connection,
//! so they must not block. A callback reads what is there, writes what fits, and returns; the
//! worker calls it again when something changes (more data, buffer space, the peer's FIN).

use core::net::SocketAddr;
use tern_tcp::{CloseReason, ConnError, ConnHandle, ConnInfo, Event, Instant, ListenerId, Shard};

/// An application running inside a worker, on the connections its listeners accept.
///
/// `State` is the application's per-connection state; the driver creates it with `Default`
/// when a connection is accepted and hands it back in [`App::on_closed`].
pub trait App {
    /// Per-connection state.
    type State: Default;

    /// A connection was accepted (it is ESTABLISHED; data may already be readable, in which
    /// case `on_readable` follows at once).
    fn on_accept(&mut self, conn: &mut Conn<'_>, state: &mut Self::State) {
        let _ = (conn, state);
    }

    /// Data arrived where there was none to read.
    fn on_readable(&mut self, conn: &mut Conn<'_>, state: &mut Self::State);

    /// Send-buffer space freed up after a write found it full.
    fn on_writable(&mut self, conn: &mut Conn<'_>, state: &mut Self::State) {
        let _ = (conn, state);
    }

    /// The peer shut its sending side down. The default closes ours too.
    fn on_peer_closed(&mut self, conn: &mut Conn<'_>, state: &mut Self::State) {
        let _ = state;
        let _ = conn.close();
    }

    /// The connection is gone (or the application closed it); its state comes back here.
    fn on_closed(&mut self, state: Self::State, reason: Option<CloseReason>) {
        let _ = (state, reason);
    }
}

/// One connection, as an application callback sees it.
#[derive(Debug)]
pub struct Conn<'a> {
    shard: &'a mut Shard,
    handle: ConnHandle,
    listener: ListenerId,
    now: Instant,
    closed: bool,
}

impl Conn<'_> {
    /// Reads received data; `Ok(0)` is end of stream, `Err(WouldBlock)` means nothing yet.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ConnError> {
        self.shard.recv(self.now, self.handle, buf)
    }

    /// Queues data to send; returns how much fit. When not all fits, `on_writable` follows
    /// once space frees up.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, ConnError> {
        match self.shard.send(self.now, self.handle, data) {
            Err(ConnError::WouldBlock) => Ok(0),
            r => r,
        }
    }

    /// Shuts the sending side (a FIN follows the queued data); reading goes on.
    pub fn shutdown(&mut self) -> Result<(), ConnError> {
        self.shard.shutdown(self.now, self.handle)
    }

    /// Closes the connection gracefully and gives it up: no more callbacks for it.
    pub fn close(&mut self) -> Result<(), ConnError> {
        self.closed = true;
        self.shard.close(self.now, self.handle)
    }

    /// Aborts the connection with a RST and gives it up.
    pub fn abort(&mut self) -> Result<(), ConnError> {
        self.closed = true;
        self.shard.abort(self.now, self.handle)
    }

    /// The connection's handle.
    pub fn handle(&self) -> ConnHandle {
        self.handle
    }

    /// The listener that accepted it.
    pub fn listener(&self) -> ListenerId {
        self.listener
    }

    /// The peer's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.shard.info(self.handle).ok().map(|i| i.tuple.remote())
    }

    /// The connection's state and sequence variables.
    pub fn info(&self) -> Result<ConnInfo, ConnError> {
        self.shard.info(self.handle)
    }

    /// The worker's clock reading for this loop turn.
    pub fn now(&self) -> Instant {
        self.now
    }
}

/// Per-connection bookkeeping of the driver.
#[derive(Debug)]
struct Slot<S> {
    handle: ConnHandle,
    listener: ListenerId,
    state: S,
}

/// Dispatches a shard's events to an application.
#[derive(Debug)]
pub struct AppDriver<A: App> {
    app: A,
    /// Indexed by the connection handle's slab index.
    slots: Vec<Option<Slot<A::State>>>,
    /// Listeners whose accept queue may hold connections not yet accepted.
    pending: Vec<ListenerId>,
    accept_budget: usize,
    /// Cleared when the worker drains for shutdown.
    accepting: bool,
    live: usize,
}

impl<A: App> AppDriver<A> {
    /// A driver that accepts at most `accept_budget` connections per [`AppDriver::run`] (per
    /// worker loop turn), so a slow application really does fill the accept queue.
    pub fn new(app: A, accept_budget: usize) -> Self {
        AppDriver {
            app,
            slots: Vec::new(),
            pending: Vec::new(),
            accept_budget: accept_budget.max(1),
            accepting: true,
            live: 0,
        }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Connections the application holds.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Handles every pending event of `shard` and accepts up to the budget.
    pub fn run(&mut self, shard: &mut Shard, now: Instant) {
        while let Some(ev) = shard.poll_event() {
            self.dispatch(shard, now, ev);
        }
        self.accept(shard, now);
    }

    fn dispatch(&mut self, shard: &mut Shard, now: Instant, ev: Event) {
        match ev {
            Event::Acceptable(l) => {
                if !self.pending.contains(&l) {
                    self.pending.push(l);
                }
            }
            Event::Readable(h) => self.call(shard, now, h, |app, c, s| app.on_readable(c, s)),
            Event::Writable(h) => self.call(shard, now, h, |app, c, s| app.on_writable(c, s)),
            Event::PeerClosed(h) => self.call(shard, now, h, |app, c, s| app.on_peer_closed(c, s)),
            Event::Closed(h, reason) => {
                // What arrived before the end is still readable: offer it, then release the
                // handle (a closed connection lingers only while its data is unread).
                self.call(shard, now, h, |app, c, s| app.on_readable(c, s));
                if let Some(slot) = self.take(h) {
                    let _ = shard.close(now, h);
                    self.app.on_closed(slot.state, Some(reason));
                }
            }
            Event::Connected(_) | Event::DeliveryProblem(_) => {}
        }
    }

    /// Stops accepting (shutdown): connections waiting in accept queues are aborted, and
    /// later ones too.
    pub fn stop_accepting(&mut self, shard: &mut Shard, now: Instant) {
        self.accepting = false;
        self.refuse_pending(shard, now);
    }

    fn refuse_pending(&mut self, shard: &mut Shard, now: Instant) {
        for l in std::mem::take(&mut self.pending) {
            while let Some(h) = shard.accept(l) {
                let _ = shard.abort(now, h);
            }
        }
    }

    /// Closes every connection the application holds, gracefully (FIN after queued data);
    /// the application hears `on_closed` for each.
    pub fn close_all(&mut self, shard: &mut Shard, now: Instant) {
        for i in 0..self.slots.len() {
            let Some(h) = self.slots[i].as_ref().map(|s| s.handle) else {
                continue;
            };
            self.call(shard, now, h, |_, c, _| {
                let _ = c.close();
            });
        }
    }

    fn accept(&mut self, shard: &mut Shard, now: Instant) {
        if !self.accepting {
            self.refuse_pending(shard, now);
            return;
        }
        let mut budget = self.accept_budget;
        let mut i = 0;
        while i < self.pending.len() && budget > 0 {
            let l = self.pending[i];
            let Some(h) = shard.accept(l) else {
                self.pending.swap_remove(i);
                continue;
            };
            budget -= 1;
            let index = h.index();
            if self.slots.len() <= index {
                self.slots.resize_with(index + 1, || None);
            }
            self.slots[index] = Some(Slot {
                handle: h,
                listener: l,
                state: A::State::default(),
            });
            self.live += 1;
            self.call(shard, now, h, |app, c, s| app.on_accept(c, s));
            // Accepting may report data that arrived with the handshake, or a FIN.
            while let Some(ev) = shard.poll_event() {
                self.dispatch(shard, now, ev);
            }
            i = 0;
        }
    }

    fn take(&mut self, h: ConnHandle) -> Option<Slot<A::State>> {
        let slot = self.slots.get_mut(h.index())?;
        if slot.as_ref().is_some_and(|s| s.handle == h) {
            self.live -= 1;
            slot.take()
        } else {
            None
        }
    }

    fn call(
        &mut self,
        shard: &mut Shard,
        now: Instant,
        h: ConnHandle,
        f: impl FnOnce(&mut A, &mut Conn<'_>, &mut A::State),
    ) {
        let Some(Some(slot)) = self.slots.get_mut(h.index()) else {
            return;
        };
        if slot.handle != h {
            return;
        }
        let mut conn = Conn {
            shard,
            handle: h,
            listener: slot.listener,
            now,
            closed: false,
        };
        f(&mut self.app, &mut conn, &mut slot.state);
        if conn.closed {
            // The application gave the connection up: no more callbacks; its state goes back.
            if let Some(slot) = self.take(h) {
                self.app.on_closed(slot.state, None);
            }
        }
    }
}
