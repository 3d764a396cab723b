//! tern-bench's in-kernel flood generator, `bpf/tern_flood.bpf.c`, run through BPF_PROG_RUN in
//! live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18+).
//!
//! The caller supplies one frame template and a [`FloodConfig`] saying where its per-packet
//! fields are and what its checksums sum to without them (tern-bench's `FrameGen` builds both).
//! [`FloodProgram::send`] asks the kernel to run the program over `count` copies of the template
//! and transmit each result out of an interface, with no socket, ring or attachment involved: a
//! loop in the kernel per call instead of a descriptor per frame.
//!
//! [`FloodProgram::build_one`] runs the program once without an interface and returns the frame
//! it built, so tests check what goes on the wire (parse, checksums, address range) without
//! sending anything.

use std::mem::size_of;
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::MapType;

use crate::{checked_map, load_object, program_fd, sys, Error, XdpAction};

/// The program's name in the kernel.
pub const FLOOD_PROGRAM_NAME: &str = "tern_flood";

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tern_flood.bpf.o"));

const CONFIG_MAP: &str = "tern_flood_config";
const COUNTERS_MAP: &str = "tern_flood_counters";

/// Frames the program may be given: its offsets are masked to 8 bits, and live-frames mode
/// copies the template into a page with XDP headroom, so anything longer is refused at load.
pub const MAX_FRAME_LEN: usize = 256;

/// `struct tern_flood_config` (bpf/include/tern_flood_abi.h): where the changing fields of the
/// template are, and the checksum bases. Offsets are bytes from the frame start; 0 means absent.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodConfig {
    /// The template's length.
    pub frame_len: u32,
    /// Source address width in 32-bit words: 1 (IPv4) or 4 (IPv6).
    pub addr_words: u32,
    /// Offset of the source address.
    pub src_addr: u32,
    /// Offset of the IPv4 header checksum; 0 for IPv6.
    pub ip_checksum: u32,
    /// Offset of the TCP source port.
    pub src_port: u32,
    /// Offset of the sequence number.
    pub seq: u32,
    /// Offset of the acknowledgment number, or 0 to leave it as in the template.
    pub ack: u32,
    /// Offset of TSval, or 0.
    pub tsval: u32,
    /// Offset of TSecr, or 0.
    pub tsecr: u32,
    /// Offset of the TCP checksum.
    pub tcp_checksum: u32,
    /// `~HC + Σ ~m` over the template's changing fields, folded to 16 bits (RFC 1624 eqn. 3).
    pub tcp_base: u32,
    /// The same for the IPv4 header checksum.
    pub ip_base: u32,
    /// The source prefix, one host-order word per 32 bits, first word first on the wire.
    pub addr_fixed: [u32; 4],
    /// Per word, the bits drawn at random.
    pub addr_random: [u32; 4],
    /// Source ports are `port_min + r % port_span`.
    pub port_min: u32,
    /// See `port_min`; 0 keeps every port at `port_min`.
    pub port_span: u32,
}

// The same number as the _Static_assert in tern_flood_abi.h.
const _: () = assert!(size_of::<FloodConfig>() == 88);

impl FloodConfig {
    fn to_bytes(self) -> Vec<u8> {
        let words = [
            self.frame_len,
            self.addr_words,
            self.src_addr,
            self.ip_checksum,
            self.src_port,
            self.seq,
            self.ack,
            self.tsval,
            self.tsecr,
            self.tcp_checksum,
            self.tcp_base,
            self.ip_base,
        ]
        .into_iter()
        .chain(self.addr_fixed)
        .chain(self.addr_random)
        .chain([self.port_min, self.port_span]);
        words.flat_map(u32::to_ne_bytes).collect()
    }

    /// Checks that every field the program writes lies inside a `frame_len`-byte frame and that
    /// the widths and bases are in range, naming the first offender.
    pub fn validate(&self) -> Result<(), String> {
        let len = self.frame_len as usize;
        if !(14..=MAX_FRAME_LEN).contains(&len) {
            return Err(format!(
                "frame_len {len} is outside 14..={MAX_FRAME_LEN} bytes"
            ));
        }
        if self.addr_words != 1 && self.addr_words != 4 {
            return Err(format!(
                "addr_words is {}, not 1 (IPv4) or 4 (IPv6)",
                self.addr_words
            ));
        }
        let fields = [
            ("src_addr", self.src_addr, 4 * self.addr_words, true),
            ("ip_checksum", self.ip_checksum, 2, false),
            ("src_port", self.src_port, 2, true),
            ("seq", self.seq, 4, true),
            ("ack", self.ack, 4, false),
            ("tsval", self.tsval, 4, false),
            ("tsecr", self.tsecr, 4, false),
            ("tcp_checksum", self.tcp_checksum, 2, true),
        ];
        for (name, offset, width, required) in fields {
            if offset == 0 {
                if required {
                    return Err(format!(
                        "{name} has no offset (0), but every frame needs one"
                    ));
                }
                continue;
            }
            if (offset + width) as usize > len {
                return Err(format!(
                    "{name} at offset {offset} ({width} bytes) runs past the {len}-byte frame"
                ));
            }
        }
        if self.tcp_base > 0xffff || self.ip_base > 0xffff {
            return Err("checksum bases must be folded to 16 bits".to_owned());
        }
        if self.port_min + self.port_span > 0x1_0000 {
            return Err(format!(
                "ports {}..{} run past 65535",
                self.port_min,
                self.port_min + self.port_span
            ));
        }
        Ok(())
    }
}

/// What the program has done, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodCounters {
    /// Frames built and returned with XDP_TX.
    pub built: u64,
    /// Frames the program refused (its config did not fit the frame): never expected.
    pub aborted: u64,
}

/// tern_flood loaded with its configuration and template.
#[derive(Debug)]
pub struct FloodProgram {
    prog: OwnedFd,
    prog_id: u32,
    counters: sys::MapFd,
    template: Vec<u8>,
}

impl FloodProgram {
    /// Loads the program and configures it for `template`, after checking `config` against it.
    pub fn load(template: &[u8], config: &FloodConfig) -> Result<FloodProgram, Error> {
        config
            .validate()
            .and_then(|()| {
                if config.frame_len as usize == template.len() {
                    Ok(())
                } else {
                    Err(format!(
                        "frame_len {} but the template has {} bytes",
                        config.frame_len,
                        template.len()
                    ))
                }
            })
            .map_err(Error::FloodConfig)?;
        let object = load_object(FLOOD_PROGRAM_NAME, OBJECT)?;
        let (prog, prog_id) = program_fd(&object, FLOOD_PROGRAM_NAME)?;
        let config_map = checked_map(
            &object,
            CONFIG_MAP,
            MapType::Array,
            4,
            size_of::<FloodConfig>(),
            1,
        )?;
        let counters = checked_map(&object, COUNTERS_MAP, MapType::PercpuArray, 4, 8, 2)?;
        config_map.update(
            &0u32.to_ne_bytes(),
            &config.to_bytes(),
            u64::from(libbpf_sys::BPF_ANY),
        )?;
        Ok(FloodProgram {
            prog,
            prog_id,
            counters,
            template: template.to_vec(),
        })
    }

    /// The kernel's id of the loaded program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// Builds and transmits `count` frames out of interface `ifindex`, `batch` per driver
    /// transmit call; returns when the kernel has run them all (it yields to the scheduler in
    /// between, and stops early on a signal).
    ///
    /// The kernel reports no per-frame transmit result: what the driver took or dropped shows in
    /// the interface's counters (on veth the peer's receive queue needs NAPI, i.e. an XDP
    /// program or GRO on the peer, or every frame is dropped and counted in `tx_dropped`).
    pub fn send(&self, ifindex: u32, count: u32, batch: u32) -> Result<(), Error> {
        Ok(sys::prog_run_live_frames(
            self.prog.as_fd(),
            &self.template,
            ifindex,
            count,
            batch,
        )?)
    }

    /// Runs the program once over the template without any interface and returns its verdict
    /// and the frame it built.
    pub fn build_one(&self) -> Result<(XdpAction, Vec<u8>), Error> {
        let mut out = vec![0u8; self.template.len()];
        let (ret, len) = sys::prog_test_run_out(self.prog.as_fd(), &self.template, &mut out)?;
        out.truncate(len);
        Ok((XdpAction::from(ret), out))
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<FloodCounters, Error> {
        let sum = |i: u32| -> Result<u64, Error> {
            Ok(self
                .counters
                .lookup_percpu_u64(&i.to_ne_bytes())?
                .iter()
                .sum())
        };
        Ok(FloodCounters {
            built: sum(0)?,
            aborted: sum(1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_config() -> FloodConfig {
        FloodConfig {
            frame_len: 54,
            addr_words: 1,
            src_addr: 26,
            ip_checksum: 24,
            src_port: 34,
            seq: 38,
            tcp_checksum: 50,
            port_min: 1024,
            port_span: 64512,
            ..FloodConfig::default()
        }
    }

    #[test]
    fn a_consistent_config_validates() {
        assert_eq!(v4_config().validate(), Ok(()));
        assert_eq!(v4_config().to_bytes().len(), 88);
    }

    #[test]
    fn fields_past_the_frame_are_named() {
        let c = FloodConfig {
            tsval: 52,
            ..v4_config()
        };
        let err = c.validate().unwrap_err();
        assert!(err.contains("tsval at offset 52"), "{err}");
        let c = FloodConfig {
            addr_words: 4,
            src_addr: 40,
            ..v4_config()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .contains("src_addr at offset 40 (16 bytes)"));
        let c = FloodConfig {
            addr_words: 2,
            ..v4_config()
        };
        assert!(c.validate().unwrap_err().contains("addr_words is 2"));
        let c = FloodConfig {
            seq: 0,
            ..v4_config()
        };
        assert!(c.validate().unwrap_err().contains("seq has no offset"));
        let c = FloodConfig {
            port_min: 2000,
            ..v4_config()
        };
        assert!(c.validate().unwrap_err().contains("past 65535"));
        let c = FloodConfig {
            frame_len: 1000,
            ..v4_config()
        };
        assert!(c.validate().unwrap_err().contains("frame_len 1000"));
    }
}
