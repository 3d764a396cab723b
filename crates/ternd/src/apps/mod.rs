//! The built-in applications and the per-listener dispatch that lets one worker serve several
//! of them: `address:port = application` in the configuration.

mod banner;
mod echo;
mod http;

pub use banner::{Banner, BannerState};
pub use echo::{Discard, Echo, EchoState};
pub use http::{Http, HttpConfig, HttpState};

use tern_rt::{App, Conn};
use tern_tcp::{CloseReason, ListenerId};

/// One built-in application.
#[derive(Debug, Clone)]
pub enum Service {
    /// Returns every byte; closes its side after the peer's FIN.
    Echo(Echo),
    /// Reads and drops everything.
    Discard(Discard),
    /// HTTP/1.1 with keep-alive and pipelining, one fixed response.
    Http(Http),
    /// Speaks first: a greeting on accept, then optionally closes.
    Banner(Banner),
}

/// Per-connection state of whichever service accepted it.
#[derive(Debug, Default)]
pub enum ServiceState {
    /// Not accepted by any known listener (never dispatched).
    #[default]
    Unbound,
    /// Echo's state.
    Echo(EchoState),
    /// Discard keeps none.
    Discard,
    /// HTTP's state.
    Http(HttpState),
    /// Banner's state.
    Banner(BannerState),
}

/// The services of one worker, by listener.
#[derive(Debug, Default)]
pub struct Services {
    by_listener: Vec<(ListenerId, Service)>,
}

impl Services {
    /// Serves `service` on the connections `listener` accepts.
    pub fn add(&mut self, listener: ListenerId, service: Service) {
        self.by_listener.push((listener, service));
    }

    fn service(&mut self, listener: ListenerId) -> Option<&mut Service> {
        self.by_listener
            .iter_mut()
            .find(|(l, _)| *l == listener)
            .map(|(_, s)| s)
    }
}

impl App for Services {
    type State = ServiceState;

    fn on_accept(&mut self, conn: &mut Conn<'_>, state: &mut ServiceState) {
        let Some(service) = self.service(conn.listener()) else {
            // A listener without a service: nobody will ever read; refuse the connection.
            let _ = conn.abort();
            return;
        };
        match service {
            Service::Echo(app) => {
                *state = ServiceState::Echo(EchoState::default());
                if let ServiceState::Echo(s) = state {
                    app.on_accept(conn, s);
                }
            }
            Service::Discard(app) => {
                *state = ServiceState::Discard;
                app.on_accept(conn, &mut ());
            }
            Service::Http(app) => {
                *state = ServiceState::Http(HttpState::default());
                if let ServiceState::Http(s) = state {
                    app.on_accept(conn, s);
                }
            }
            Service::Banner(app) => {
                *state = ServiceState::Banner(BannerState::default());
                if let ServiceState::Banner(s) = state {
                    app.on_accept(conn, s);
                }
            }
        }
    }

    fn on_readable(&mut self, conn: &mut Conn<'_>, state: &mut ServiceState) {
        match (self.service(conn.listener()), state) {
            (Some(Service::Echo(a)), ServiceState::Echo(s)) => a.on_readable(conn, s),
            (Some(Service::Discard(a)), ServiceState::Discard) => a.on_readable(conn, &mut ()),
            (Some(Service::Http(a)), ServiceState::Http(s)) => a.on_readable(conn, s),
            (Some(Service::Banner(a)), ServiceState::Banner(s)) => a.on_readable(conn, s),
            _ => {}
        }
    }

    fn on_writable(&mut self, conn: &mut Conn<'_>, state: &mut ServiceState) {
        match (self.service(conn.listener()), state) {
            (Some(Service::Echo(a)), ServiceState::Echo(s)) => a.on_writable(conn, s),
            (Some(Service::Http(a)), ServiceState::Http(s)) => a.on_writable(conn, s),
            (Some(Service::Banner(a)), ServiceState::Banner(s)) => a.on_writable(conn, s),
            _ => {}
        }
    }

    fn on_peer_closed(&mut self, conn: &mut Conn<'_>, state: &mut ServiceState) {
        match (self.service(conn.listener()), state) {
            (Some(Service::Echo(a)), ServiceState::Echo(s)) => a.on_peer_closed(conn, s),
            (Some(Service::Discard(a)), ServiceState::Discard) => a.on_peer_closed(conn, &mut ()),
            (Some(Service::Http(a)), ServiceState::Http(s)) => a.on_peer_closed(conn, s),
            (Some(Service::Banner(a)), ServiceState::Banner(s)) => a.on_peer_closed(conn, s),
            _ => {
                let _ = conn.close();
            }
        }
    }

    fn on_closed(&mut self, _state: ServiceState, _reason: Option<CloseReason>) {}
}
