//! `tern-sim`: a deterministic network simulator for tern's sans-IO TCP engine.
//!
//! A [`Sim`] connects several [`Host`]s — anything that takes IP packets and time and gives back
//! IP packets and a timer deadline, such as a `tern_tcp` shard — through simulated links under
//! a virtual clock, so whole TCP conversations run in a test, fast and exactly reproducibly.
//!
//! # Model
//!
//! **Hosts and routing.** Hosts are numbered from 0 in the order they are added, each with one
//! or more IP addresses. A transmitted packet (IP header onward) goes over the link from its
//! sender to the host owning its destination address, read straight from the IPv4/IPv6
//! header. A packet for an address nobody owns is counted in [`SimStats::unroutable`] and
//! dropped, unless [`Sim::set_default_route`] names a host to receive such packets.
//!
//! **Links.** Every ordered pair of hosts (a host and itself included) has its own [`Link`],
//! one per direction, each configured by a [`LinkConfig`] and drawing from its own random
//! stream. The default is a clean link with 1 ms of delay. A packet entering a link meets, in
//! order:
//!
//! * the **drop filter** ([`Link::set_drop_filter`]), a deterministic hook given the packet
//!   and its index on that link, so a scenario can drop e.g. exactly the third data segment;
//! * **serialization** at `bandwidth` bits/s: the packet occupies the link for
//!   `len × 8 / bandwidth` after the packets ahead of it, so bursts queue, and a queue limit
//!   (`queue_packets`, `queue_bytes`) tail-drops arrivals to a full queue;
//! * **loss** with probability `loss` (after serialization: lost packets used the link);
//! * **duplication** with probability `duplicate`: a second copy is delivered too;
//! * per copy, **corruption** with probability `corrupt`: exactly one uniformly chosen bit is
//!   flipped, which the receiver's checksums must catch (IPv6's traffic class, flow label and
//!   hop limit are covered by no checksum, as on a real network);
//! * **delay**: the copy arrives `delay` plus a uniform random **jitter** in `[0, jitter]`
//!   after its last bit left. Jitter is drawn per copy, so packets overtake each other: this is
//!   the only source of **reordering**, and without jitter every link is FIFO.
//!
//! Each link keeps [`LinkStats`]; [`LinkConfig`] details the stages and how random draws are
//! consumed.
//!
//! # The event loop
//!
//! Packets in flight sit in a priority queue ordered by arrival time, ties broken by the order
//! in which they were scheduled. [`Sim::step`] runs one instant:
//!
//! 1. drain every host's [`Host::poll_transmit`] into the links (so whatever a test caused by
//!    calling a host's application API between steps leaves at the current time);
//! 2. advance the clock to the earliest of the next arrival and every host's
//!    [`Host::poll_timeout`] (never backwards: an overdue timer runs now);
//! 3. deliver every packet due then, in order, via [`Host::on_packet`];
//! 4. call [`Host::on_timeout`] on every host whose timer is due, in host order;
//! 5. drain every host's transmissions again.
//!
//! Packets delivered at the same instant as a timer are therefore seen before the timer fires.
//!
//! # Bounded runs
//!
//! [`Sim::run_until`], [`Sim::run_for`], [`Sim::run_until_idle`], [`Sim::run_while`] and
//! [`Sim::run_until_cond`] are all bounded by a virtual-time limit and by [`Limits`]: a step
//! count per run, a number of consecutive steps at one instant (catching zero-delay ping-pong
//! and timers that never clear), and a number of packets per transmit drain. Exceeding one
//! returns a [`SimError`] instead of hanging the test.
//!
//! # Determinism
//!
//! The same seed, hosts, configuration and test actions give the identical sequence of events,
//! bit for bit, on every run and platform: each link direction draws from its own
//! xoshiro256** stream seeded from the simulation seed and the two host indices (implemented
//! here, so no dependency upgrade can change it; [`Link::reseed`] overrides it), ties are broken
//! by a sequence number, no hash map is iterated, and the only floating point is comparing a
//! 53-bit uniform draw with a probability. Different seeds give different loss, jitter,
//! duplication and corruption patterns.
//!
//! # Observing
//!
//! * [`Sim::set_trace`] calls a hook on every sent, dropped and delivered packet with a
//!   [`TraceEvent`] (time, hosts, what happened, the bytes); [`TraceEvent`] displays as one
//!   tcpdump-like line, and [`parse_tcp`] (or [`TraceEvent::tcp`]) turns a packet into
//!   `(source, destination, TcpRepr)` for assertions on segments.
//! * [`Sim::capture_to`] / [`Sim::capture`] write a pcap file readable by tcpdump, each IP
//!   packet framed in Ethernet with a fake MAC per host ([`host_mac`]) and the virtual
//!   timestamp. pcap cannot mark a packet as lost, so the capture point is chosen with
//!   [`CapturePoints`]: at delivery (the default: what receivers got, corruption and
//!   duplicates included) and/or when sent (everything transmitted, lost packets included).
//!
//! # Example
//!
//! ```
//! use tern_sim::{probe_id, Duration, Instant, LinkConfig, Sim, TestHost};
//!
//! let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
//! let mut sim = Sim::new(42);
//! let client = sim.add_host(TestHost::new(a), [a]);
//! let server = sim.add_host(TestHost::echo(b, Duration::ZERO), [b]);
//! sim.set_links(client, server, LinkConfig::new().delay(Duration::from_millis(5)));
//!
//! let ping = sim.host(client).probe_to(b, 7, 64);
//! sim.host_mut(client).send(ping);
//! sim.run_until_idle(Instant::from_millis(100))?;
//!
//! let pong = &sim.host(client).received()[0];
//! assert_eq!((pong.at, probe_id(&pong.packet)), (Instant::from_millis(10), Some(7)));
//! # Ok::<(), tern_sim::SimError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capture;
mod host;
mod link;
mod packet;
mod rng;
mod shard;
mod sim;
mod test_host;

pub use capture::{host_mac, CapturePoints};
pub use host::Host;
pub use link::{DropFilter, DropReason, Link, LinkConfig, LinkStats};
pub use packet::{ip_addrs, parse_tcp, summarize, Summary};
pub use sim::{Limits, Sim, SimError, SimStats, TraceEvent, TraceKind};
pub use test_host::{probe, probe_id, Received, TestHost, PROBE_PROTOCOL};

pub use tern_tcp::time::{Duration, Instant};
