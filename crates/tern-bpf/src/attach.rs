//! Attaching tern_steer to an interface through a bpf_link, finding what is attached, and
//! cleaning up after a daemon that died.
//!
//! # Lifetime of an attachment, and leftovers
//!
//! [`SteerProgram::attach`](crate::SteerProgram::attach) creates a bpf_link (BPF_LINK_CREATE with
//! BPF_XDP). A link lives while something holds it: an open fd, or a pin on bpffs. Unpinned, it
//! dies with the process however the process ends, so nothing can be left behind; dropping the
//! [`Attachment`] closes the fd and detaches the program. That is also the weakness: after a
//! crash there is nothing to clean up, but nothing survives a restart either, and an operator
//! cannot see from outside which process owns the hook.
//!
//! So the daemon pins its link with [`Attachment::pin`] at `/sys/fs/bpf/tern/<ifname>`
//! ([`DEFAULT_PIN_ROOT`]/ifname). While the daemon runs, nothing changes: dropping the
//! attachment removes the pin and closes the fd, which detaches. If the daemon is killed
//! (SIGKILL, OOM, a panic with `panic = "abort"`), the pin keeps the link, so the program stays
//! on the interface and keeps steering into sockets that no longer exist (the XSKMAP slots empty
//! as the sockets close, so listener traffic falls back to the kernel, or is dropped for
//! listeners flagged drop-when-no-socket). That is a *leftover*: a pin under the pin root, or a
//! tern_steer program still on the hook with no live daemon. `ternd cleanup` calls
//! [`detach_leftover`], which force-detaches the link (BPF_LINK_DETACH works whoever holds it),
//! removes the pin, and detaches a tern_steer attached the old way (netlink, no link). Anything
//! that is not tern_steer is left alone with a message naming it and how to remove it.
//!
//! A link cannot be detached with `ip link set dev X xdp off` (the kernel refuses to replace a
//! link through netlink); `ip -d link show` does show it, as `prog/xdp id N`.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use libbpf_sys as bpf;

use crate::sys::{self, SysError};
use crate::{Error, PROGRAM_NAME};

/// Where the daemon pins its links: one file per interface, `<root>/<ifname>`.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/tern";

/// A network interface of the calling thread's network namespace, by index and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    index: u32,
    name: String,
}

impl Interface {
    /// The interface called `name`.
    pub fn by_name(name: &str) -> Result<Interface, Error> {
        let index = sys::if_nametoindex(name).map_err(|source| Error::NoSuchInterface {
            name: name.to_owned(),
            source,
        })?;
        Ok(Interface {
            index,
            name: name.to_owned(),
        })
    }

    /// The interface with index `index`.
    pub fn by_index(index: u32) -> Result<Interface, Error> {
        let name = sys::if_indextoname(index).map_err(|source| Error::NoSuchInterface {
            name: format!("#{index}"),
            source,
        })?;
        Ok(Interface { index, name })
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver, as `ethtool -i` names it (`veth`, `mlx5_core`, ...), or a description of why
    /// it is unknown.
    pub fn driver(&self) -> String {
        match sys::driver_name(&self.name) {
            Ok(driver) => driver,
            Err(_) if self.name == "lo" => "loopback".to_owned(),
            Err(e) => format!("unknown ({e})"),
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ifindex {})", self.name, self.index)
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native, falling back to generic (with a warning saying why) when the driver refuses.
    #[default]
    Auto,
    /// In the driver (XDP_FLAGS_DRV_MODE), before any socket buffer exists; fails if the driver
    /// cannot.
    Native,
    /// In the core stack after the socket buffer is built (XDP_FLAGS_SKB_MODE); works on any
    /// interface, slower, and AF_XDP then runs in copy mode.
    Generic,
}

/// The mode a program is actually attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver.
    Native,
    /// In the core stack (SKB mode).
    Generic,
    /// Offloaded to the NIC.
    Offload,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
            AttachMode::Offload => "offload",
        })
    }
}

/// tern_steer attached to an interface through a bpf_link. Dropping it removes its pin (if
/// pinned) and closes the link, which detaches the program.
#[derive(Debug)]
pub struct Attachment {
    link: OwnedFd,
    link_id: u32,
    prog_id: u32,
    interface: Interface,
    mode: AttachMode,
    fallback: Option<String>,
    pin: Option<PathBuf>,
}

impl Attachment {
    /// The effective mode (never what `Auto` asked, always what the kernel did).
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Why `XdpMode::Auto` fell back to generic mode, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The interface.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// The kernel's id of the link (`bpftool link show id N`).
    pub fn link_id(&self) -> u32 {
        self.link_id
    }

    /// The kernel's id of the attached program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The link's fd.
    pub fn link_fd(&self) -> BorrowedFd<'_> {
        self.link.as_fd()
    }

    /// Where the link is pinned, if it is.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pin.as_deref()
    }

    /// Pins the link at `<root>/<ifname>` (creating `root`, which must be on bpffs), so the
    /// attachment outlives this process if it dies without dropping it; see the module docs.
    /// Returns the pin's path.
    pub fn pin(&mut self, root: &Path) -> Result<PathBuf, Error> {
        ensure_bpffs_dir(root)?;
        let path = pin_path(root, &self.interface);
        sys::obj_pin(self.link.as_fd(), &path)?;
        self.pin = Some(path.clone());
        Ok(path)
    }

    /// Detaches now, reporting what `Drop` would swallow.
    pub fn detach(mut self) -> Result<(), Error> {
        self.unpin()?;
        sys::link_detach(self.link.as_fd())?;
        Ok(())
    }

    fn unpin(&mut self) -> Result<(), Error> {
        if let Some(path) = self.pin.take() {
            sys::unpin(&path)?;
        }
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Err(e) = self.unpin() {
            log::warn!(
                "{}: cannot remove the pin of its XDP link: {e}",
                self.interface
            );
        }
        // Closing `link` (our last reference, now that the pin is gone) detaches the program.
    }
}

/// The pin path of `interface`'s link under `root`.
pub fn pin_path(root: &Path, interface: &Interface) -> PathBuf {
    root.join(interface.name())
}

fn ensure_bpffs_dir(root: &Path) -> Result<(), Error> {
    // The nearest existing ancestor must be on bpffs; create the rest.
    let existing = root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if !sys::is_bpffs(existing)? {
        return Err(Error::BpffsNotMounted {
            path: existing.to_owned(),
        });
    }
    std::fs::create_dir_all(root).map_err(|e| {
        Error::Sys(SysError {
            call: format!("mkdir -p {}", root.display()),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            hint: None,
        })
    })
}

/// Attaches `prog` to `interface` in `mode`.
pub(crate) fn attach(
    prog: BorrowedFd<'_>,
    prog_id: u32,
    interface: &Interface,
    mode: XdpMode,
) -> Result<Attachment, Error> {
    let (link, fallback) = match mode {
        XdpMode::Native => (create(prog, interface, bpf::XDP_FLAGS_DRV_MODE)?, None),
        XdpMode::Generic => (create(prog, interface, bpf::XDP_FLAGS_SKB_MODE)?, None),
        XdpMode::Auto => match create(prog, interface, bpf::XDP_FLAGS_DRV_MODE) {
            Ok(link) => (link, None),
            Err(Error::NativeUnsupported { source, driver, .. }) => {
                let reason = format!(
                    "native XDP refused by driver {driver} ({}); using generic mode, which is \
                     slower and puts AF_XDP in copy mode",
                    source.io_error()
                );
                log::warn!("{interface}: {reason}");
                let link = create(prog, interface, bpf::XDP_FLAGS_SKB_MODE)?;
                (link, Some(reason))
            }
            Err(e) => return Err(e),
        },
    };
    let info = sys::link_info(link.as_fd())?;
    let mode = match find_attached(interface)? {
        Some(found) if found.prog_id == prog_id => found.mode,
        other => {
            return Err(Error::Object(format!(
                "attached to {interface} through link {}, but the interface reports {other:?}",
                info.id
            )))
        }
    };
    Ok(Attachment {
        link,
        link_id: info.id,
        prog_id,
        interface: interface.clone(),
        mode,
        fallback,
        pin: None,
    })
}

fn create(prog: BorrowedFd<'_>, interface: &Interface, flags: u32) -> Result<OwnedFd, Error> {
    sys::xdp_link_create(prog, interface.index(), flags).map_err(|source| {
        if matches!(source.errno, libc::EBUSY | libc::EEXIST) {
            if let Ok(Some(existing)) = find_attached(interface) {
                return Error::HookBusy {
                    ifname: interface.name().to_owned(),
                    existing,
                };
            }
        }
        if flags == bpf::XDP_FLAGS_DRV_MODE {
            return Error::NativeUnsupported {
                ifname: interface.name().to_owned(),
                driver: interface.driver(),
                source,
            };
        }
        Error::Sys(source)
    })
}

/// An XDP program found on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedInfo {
    /// The kernel's program id.
    pub prog_id: u32,
    /// The program's name (its function name, up to 15 bytes).
    pub name: String,
    /// The mode it runs in.
    pub mode: AttachMode,
    /// The bpf_link holding it, if it was attached through one (not through netlink).
    pub link_id: Option<u32>,
}

impl AttachedInfo {
    /// Whether it was attached through a bpf_link.
    pub fn via_link(&self) -> bool {
        self.link_id.is_some()
    }

    /// Whether it is tern's program, by name.
    pub fn is_tern(&self) -> bool {
        self.name == PROGRAM_NAME
    }
}

impl fmt::Display for AttachedInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (prog id {}, {}",
            self.name, self.prog_id, self.mode
        )?;
        match self.link_id {
            Some(link) => write!(f, ", bpf_link {link})"),
            None => write!(f, ", attached through netlink)"),
        }
    }
}

/// The XDP program on `interface`, if any: what `ip -d link show` reports as `prog/xdp`, with
/// its name and the bpf_link holding it.
pub fn find_attached(interface: &Interface) -> Result<Option<AttachedInfo>, Error> {
    let query = sys::xdp_query(interface.index())?;
    let (prog_id, mode) = if query.drv_prog_id != 0 {
        (query.drv_prog_id, AttachMode::Native)
    } else if query.skb_prog_id != 0 {
        (query.skb_prog_id, AttachMode::Generic)
    } else if query.hw_prog_id != 0 {
        (query.hw_prog_id, AttachMode::Offload)
    } else {
        return Ok(None);
    };
    let name = sys::prog_info_by_id(prog_id)?.name;
    let link_id = find_link(interface.index(), prog_id)?;
    Ok(Some(AttachedInfo {
        prog_id,
        name,
        mode,
        link_id,
    }))
}

/// The XDP link on `ifindex` that holds `prog_id`. Link ifindexes are per network namespace,
/// so the program id, unique system-wide, is what makes the match certain.
fn find_link(ifindex: u32, prog_id: u32) -> Result<Option<u32>, Error> {
    for id in sys::link_ids()? {
        // A link can go away between listing and opening it.
        let Ok(fd) = sys::link_fd_by_id(id) else {
            continue;
        };
        let Ok(info) = sys::link_info(fd.as_fd()) else {
            continue;
        };
        if info.xdp_ifindex == Some(ifindex) && info.prog_id == prog_id {
            return Ok(Some(info.id));
        }
    }
    Ok(None)
}

/// What [`detach_leftover`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// The tern_steer program it detached from the interface.
    pub detached: Option<AttachedInfo>,
    /// The pin it removed.
    pub unpinned: Option<PathBuf>,
}

impl Cleanup {
    /// Whether there was nothing to clean up.
    pub fn is_empty(&self) -> bool {
        self.detached.is_none() && self.unpinned.is_none()
    }
}

/// Removes what a dead daemon left on `interface`: its pinned link at `<pin_root>/<ifname>`
/// and a tern_steer program on the hook (through a link or netlink). Refuses, touching nothing
/// on the hook, when the program there is not tern_steer. For `ternd cleanup`.
pub fn detach_leftover(interface: &Interface, pin_root: &Path) -> Result<Cleanup, Error> {
    let mut cleanup = Cleanup::default();

    // The pin first: its link may be on the hook, or already defunct (interface re-created).
    let pin = pin_path(pin_root, interface);
    if pin.exists() {
        let fd = sys::obj_get(&pin)?;
        let foreign = |what: String| Error::ForeignPin {
            path: pin.clone(),
            ifname: interface.name().to_owned(),
            what,
        };
        let info =
            sys::link_info(fd.as_fd()).map_err(|e| foreign(format!("not a bpf_link: {e}")))?;
        match info.xdp_ifindex {
            None => return Err(foreign(format!("bpf_link {} is not an XDP link", info.id))),
            Some(ifindex) if ifindex != 0 && ifindex != interface.index() => {
                return Err(foreign(format!(
                    "bpf_link {} is on ifindex {ifindex}",
                    info.id
                )))
            }
            Some(_) => {}
        }
        let name = sys::prog_info_by_id(info.prog_id)?.name;
        if name != PROGRAM_NAME {
            return Err(foreign(format!(
                "bpf_link {} holds program {name:?}",
                info.id
            )));
        }
        sys::unpin(&pin)?;
        cleanup.unpinned = Some(pin);
        // Dropping `fd` now releases the last reference if nothing else holds the link; the
        // hook check below detaches it in case something still does.
    }

    let Some(existing) = find_attached(interface)? else {
        return Ok(cleanup);
    };
    if !existing.is_tern() {
        return Err(Error::ForeignProgram {
            ifname: interface.name().to_owned(),
            existing,
        });
    }
    match existing.link_id {
        Some(link) => {
            let fd = sys::link_fd_by_id(link)?;
            sys::link_detach(fd.as_fd())?;
        }
        None => {
            let flags = match existing.mode {
                AttachMode::Native => bpf::XDP_FLAGS_DRV_MODE,
                AttachMode::Generic => bpf::XDP_FLAGS_SKB_MODE,
                AttachMode::Offload => bpf::XDP_FLAGS_HW_MODE,
            };
            let prog = sys::prog_fd_by_id(existing.prog_id)?;
            sys::xdp_detach(interface.index(), flags, prog.as_fd())?;
        }
    }
    cleanup.detached = Some(existing);
    Ok(cleanup)
}
