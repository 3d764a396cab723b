//! The one place tern-bpf talks to the kernel or to libbpf's C API directly.
//!
//! Every call returns a [`SysError`] that names the call with its arguments, the errno, and,
//! where one is known, a hint for the operator. The rest of the crate only translates those into
//! its [`Error`](crate::Error) sentences. Each `unsafe` block says why it is sound; the common
//! argument is that libbpf reads or writes exactly the buffers passed, for the lengths passed,
//! during the call, and keeps no pointer to them afterwards (the one exception, the verifier log
//! buffer, is called out where it is set).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libbpf_sys as bpf;

/// A failed system or libbpf call: what was called, the errno, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    /// The call and its arguments, e.g. `bpf_link_create(prog 12, ifindex 3, BPF_XDP, XDP_FLAGS_DRV_MODE)`.
    pub call: String,
    /// The positive errno.
    pub errno: i32,
    /// Advice for the operator, when the errno has a likely cause.
    pub hint: Option<&'static str>,
}

impl SysError {
    fn new(call: String, errno: i32) -> SysError {
        SysError {
            call,
            errno,
            hint: default_hint(errno),
        }
    }

    /// Replaces the hint.
    pub(crate) fn with_hint(mut self, hint: &'static str) -> SysError {
        self.hint = Some(hint);
        self
    }

    /// The errno as an [`io::Error`].
    pub fn io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (errno {})",
            self.call,
            self.io_error(),
            self.errno
        )?;
        if let Some(hint) = self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SysError {}

fn default_hint(errno: i32) -> Option<&'static str> {
    match errno {
        libc::EPERM => Some(
            "this needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN on kernels before 5.8): run as root",
        ),
        libc::ENOSYS => Some("the kernel lacks this BPF feature: tern needs Linux 5.9 or newer"),
        _ => None,
    }
}

pub(crate) type Result<T> = std::result::Result<T, SysError>;

/// libbpf's low-level calls return a negative errno on failure (and set errno too).
fn check(ret: libc::c_int, call: impl FnOnce() -> String) -> Result<libc::c_int> {
    if ret < 0 {
        Err(SysError::new(call(), -ret))
    } else {
        Ok(ret)
    }
}

/// For libc calls that return -1 and set errno.
fn check_libc(ret: libc::c_int, call: impl FnOnce() -> String) -> Result<libc::c_int> {
    if ret < 0 {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        Err(SysError::new(call(), errno))
    } else {
        Ok(ret)
    }
}

/// An fd a successful libbpf call returned.
fn owned_fd(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass the non-negative return value of a libbpf call that creates an fd;
    // nothing else owns it, so OwnedFd may close it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SysError::new(format!("path {}", path.display()), libc::EINVAL))
}

// --- program load -------------------------------------------------------------------------------

/// Loads an opened object (maps created, programs verified), with the verifier log of every
/// program going to `log` when its load fails, and the errno kept (libbpf-rs's own `load` folds
/// it into a message).
///
/// libbpf loads first without a log and, on failure, again with log level 1 into `log`; the log
/// ends with a NUL. `log` is borrowed for the whole call, which is the only time libbpf writes
/// it: the pointer it keeps afterwards is never used again, as nothing loads the object twice.
pub(crate) fn object_load(
    mut open: libbpf_rs::OpenObject,
    log: &mut [u8],
    name: &str,
) -> Result<libbpf_rs::Object> {
    for prog in open.progs_mut() {
        let prog = libbpf_rs::AsRawLibbpf::as_libbpf_object(&prog);
        // SAFETY: `prog` is a program of the open object we own; `log` outlives the load below
        // (see above) and is only written during it; the size is the buffer's.
        let ret = unsafe {
            bpf::bpf_program__set_log_buf(prog.as_ptr(), log.as_mut_ptr().cast(), log.len() as _)
        };
        check(ret, || "bpf_program__set_log_buf".to_owned())?;
    }
    let ptr = open.take_ptr();
    // SAFETY: `ptr` is the open, not yet loaded object `open` owned; we own it now.
    let ret = unsafe { bpf::bpf_object__load(ptr.as_ptr()) };
    if let Err(e) = check(ret, || format!("bpf_object__load({name}.bpf.o)")) {
        // SAFETY: `ptr` is ours and nothing else refers to it; it is not used after this.
        unsafe { bpf::bpf_object__close(ptr.as_ptr()) };
        return Err(e);
    }
    // SAFETY: `ptr` is a loaded object that nothing else owns.
    Ok(unsafe { libbpf_rs::Object::from_ptr(ptr) })
}

/// The name and id of a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProgInfo {
    pub id: u32,
    pub name: String,
}

pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    let mut info = bpf::bpf_prog_info::default();
    let mut len = size_of::<bpf::bpf_prog_info>() as u32;
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes and lives across the call; every
    // pointer field in it is zero, so the kernel fills no arrays.
    let ret = unsafe { bpf::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    check(ret, || {
        format!("bpf_prog_get_info_by_fd(fd {})", fd.as_raw_fd())
    })?;
    // SAFETY: the kernel NUL-terminates the name inside the 16-byte array (BPF_OBJ_NAME_LEN).
    let name = unsafe { CStr::from_ptr(info.name.as_ptr()) };
    Ok(ProgInfo {
        id: info.id,
        name: name.to_string_lossy().into_owned(),
    })
}

pub(crate) fn prog_info_by_id(id: u32) -> Result<ProgInfo> {
    // SAFETY: no pointers; returns a new fd or a negative errno.
    let ret = unsafe { bpf::bpf_prog_get_fd_by_id(id) };
    let fd = owned_fd(check(ret, || format!("bpf_prog_get_fd_by_id({id})"))?);
    prog_info(fd.as_fd())
}

/// Runs the program once over `frame` (BPF_PROG_TEST_RUN) and returns its return value.
pub(crate) fn prog_test_run(prog: BorrowedFd<'_>, frame: &[u8]) -> Result<u32> {
    let mut opts = bpf::bpf_test_run_opts {
        sz: size_of::<bpf::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid bpf_test_run_opts of the size it states; `data_in` points at
    // `frame`, which the kernel only reads, for `data_size_in` bytes; no output buffers are given.
    let ret = unsafe { bpf::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    check(ret, || {
        format!(
            "bpf_prog_test_run_opts(fd {}, {} bytes)",
            prog.as_raw_fd(),
            frame.len()
        )
    })?;
    Ok(opts.retval)
}

/// Runs the program once over `frame` (BPF_PROG_TEST_RUN, no interface) and returns its return
/// value and the frame as the program left it (at most `out.len()` bytes are copied back).
pub(crate) fn prog_test_run_out(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize)> {
    let mut opts = bpf::bpf_test_run_opts {
        sz: size_of::<bpf::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid bpf_test_run_opts of the size it states; `data_in` points at
    // `frame`, which the kernel only reads, for `data_size_in` bytes; `data_out` points at `out`,
    // which the kernel writes at most `data_size_out` bytes of (it returns ENOSPC rather than
    // overrun, after copying what fits).
    let ret = unsafe { bpf::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    check(ret, || {
        format!(
            "bpf_prog_test_run_opts(fd {}, {} bytes in, {} bytes out)",
            prog.as_raw_fd(),
            frame.len(),
            out.len()
        )
    })?;
    Ok((opts.retval, (opts.data_size_out as usize).min(out.len())))
}

/// Runs an XDP program over `repeat` copies of `frame` in live-frames mode
/// (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+): frames the program returns with XDP_TX are sent
/// out of interface `ifindex`, `batch_size` at a time.
pub(crate) fn prog_run_live_frames(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
    batch_size: u32,
) -> Result<()> {
    // The context says where the frames "arrived": XDP_TX sends them back out of that device.
    // The kernel wants data_end equal to the frame's length and no metadata.
    let mut ctx = bpf::xdp_md {
        data: 0,
        data_end: frame.len() as u32,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: 0,
        egress_ifindex: 0,
    };
    let mut opts = bpf::bpf_test_run_opts {
        sz: size_of::<bpf::bpf_test_run_opts>() as _,
        data_in: frame.as_ptr().cast(),
        data_size_in: frame.len() as u32,
        ctx_in: (&raw mut ctx).cast(),
        ctx_size_in: size_of::<bpf::xdp_md>() as u32,
        repeat: repeat as i32,
        flags: bpf::BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid bpf_test_run_opts of the size it states; `data_in` and `ctx_in`
    // point at `frame` and `ctx`, which live across the call and which the kernel only reads, for
    // the sizes given; live-frames mode takes no output buffers and none are given.
    let ret = unsafe { bpf::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    check(ret, || {
        format!(
            "bpf_prog_test_run_opts(fd {}, {} bytes, ifindex {ifindex}, repeat {repeat}, batch {batch_size}, \
             BPF_F_TEST_XDP_LIVE_FRAMES)",
            prog.as_raw_fd(),
            frame.len()
        )
    })
    .map_err(|e| match e.errno {
        libc::EINVAL => e.with_hint(
            "live-frames mode needs Linux 5.18 or newer, a frame of at least 14 bytes and an \
             existing interface",
        ),
        _ => e,
    })?;
    Ok(())
}

// --- maps ---------------------------------------------------------------------------------------

/// A map fd with the key and value sizes the kernel reported, which every access checks first.
#[derive(Debug)]
pub(crate) struct MapFd {
    pub name: &'static str,
    pub fd: OwnedFd,
    pub key_size: usize,
    pub value_size: usize,
}

impl MapFd {
    fn check_len(&self, what: &str, len: usize, expected: usize) -> Result<()> {
        if len == expected {
            Ok(())
        } else {
            Err(SysError::new(
                format!(
                    "access to map {}: {what} of {len} bytes, the map's is {expected}",
                    self.name
                ),
                libc::EINVAL,
            ))
        }
    }

    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        self.check_len("key", key.len(), self.key_size)?;
        self.check_len("value", value.len(), self.value_size)?;
        // SAFETY: the kernel reads key_size bytes of `key` and value_size bytes of `value`, both
        // checked above, during the call only.
        let ret = unsafe {
            bpf::bpf_map_update_elem(
                self.fd.as_raw_fd(),
                key.as_ptr().cast(),
                value.as_ptr().cast(),
                flags,
            )
        };
        check(ret, || format!("bpf_map_update_elem({})", self.name)).map(drop)
    }

    /// Deletes `key`; `Ok(false)` when it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_len("key", key.len(), self.key_size)?;
        // SAFETY: the kernel reads key_size bytes of `key` (checked above) during the call.
        let ret = unsafe { bpf::bpf_map_delete_elem(self.fd.as_raw_fd(), key.as_ptr().cast()) };
        match check(ret, || format!("bpf_map_delete_elem({})", self.name)) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == libc::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Looks `key` up into `value`; `Ok(false)` when it is not there.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool> {
        self.check_len("key", key.len(), self.key_size)?;
        self.check_len("value", value.len(), self.value_size)?;
        // SAFETY: the kernel reads key_size bytes of `key` and writes value_size bytes into
        // `value`, both checked above, during the call only.
        let ret = unsafe {
            bpf::bpf_map_lookup_elem(
                self.fd.as_raw_fd(),
                key.as_ptr().cast(),
                value.as_mut_ptr().cast(),
            )
        };
        match check(ret, || format!("bpf_map_lookup_elem({})", self.name)) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == libc::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The `u64` of every possible CPU at `key` of a per-CPU map whose values are `u64`.
    pub fn lookup_percpu_u64(&self, key: &[u8]) -> Result<Vec<u64>> {
        self.check_len("key", key.len(), self.key_size)?;
        self.check_len("value", size_of::<u64>(), self.value_size)?;
        let cpus = possible_cpus()?;
        // The kernel copies one 8-byte-aligned slot per possible CPU.
        let mut values = vec![0u64; cpus];
        // SAFETY: `values` holds `cpus` u64 slots, exactly what a per-CPU lookup of an 8-byte value
        // writes; the key is key_size bytes (checked above); nothing is kept after the call.
        let ret = unsafe {
            bpf::bpf_map_lookup_elem(
                self.fd.as_raw_fd(),
                key.as_ptr().cast(),
                values.as_mut_ptr().cast(),
            )
        };
        check(ret, || {
            format!("bpf_map_lookup_elem({}, per-CPU)", self.name)
        })?;
        Ok(values)
    }

    /// Every key of a hash map (a snapshot that concurrent updates may skew).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let mut next = vec![0u8; self.key_size];
        loop {
            let prev = keys
                .last()
                .map(|k: &Vec<u8>| k.as_ptr())
                .unwrap_or(std::ptr::null());
            // SAFETY: `prev` is null (start) or a previous key of key_size bytes; `next` has
            // key_size writable bytes; both live across the call.
            let ret = unsafe {
                bpf::bpf_map_get_next_key(
                    self.fd.as_raw_fd(),
                    prev.cast(),
                    next.as_mut_ptr().cast(),
                )
            };
            match check(ret, || format!("bpf_map_get_next_key({})", self.name)) {
                Ok(_) => keys.push(next.clone()),
                Err(e) if e.errno == libc::ENOENT => return Ok(keys),
                Err(e) => return Err(e),
            }
        }
    }
}

fn possible_cpus() -> Result<usize> {
    // SAFETY: no arguments; returns a count or a negative errno.
    let ret = unsafe { bpf::libbpf_num_possible_cpus() };
    check(ret, || "libbpf_num_possible_cpus".to_owned()).map(|n| n as usize)
}

// --- XDP attachment -----------------------------------------------------------------------------

/// The XDP_FLAGS_* mode bit of a link, by name for messages.
pub(crate) fn xdp_flags_name(flags: u32) -> &'static str {
    match flags {
        bpf::XDP_FLAGS_DRV_MODE => "XDP_FLAGS_DRV_MODE",
        bpf::XDP_FLAGS_SKB_MODE => "XDP_FLAGS_SKB_MODE",
        bpf::XDP_FLAGS_HW_MODE => "XDP_FLAGS_HW_MODE",
        0 => "0",
        _ => "XDP_FLAGS_*",
    }
}

/// Attaches `prog` to the XDP hook of `ifindex` through a new bpf_link (BPF_LINK_CREATE with
/// BPF_XDP and `flags`, one of the XDP_FLAGS_*_MODE bits). Closing the last fd of the link
/// detaches the program, unless the link is pinned.
pub(crate) fn xdp_link_create(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> Result<OwnedFd> {
    let opts = bpf::bpf_link_create_opts {
        sz: size_of::<bpf::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid bpf_link_create_opts of the size it states, read during the call.
    let ret =
        unsafe { bpf::bpf_link_create(prog.as_raw_fd(), ifindex as i32, bpf::BPF_XDP, &opts) };
    let fd = check(ret, || {
        format!(
            "bpf_link_create(prog fd {}, ifindex {ifindex}, BPF_XDP, {})",
            prog.as_raw_fd(),
            xdp_flags_name(flags)
        )
    })
    .map_err(|e| match e.errno {
        libc::EBUSY | libc::EEXIST => {
            e.with_hint("another XDP program already holds this interface's hook")
        }
        libc::EOPNOTSUPP => e.with_hint("the driver has no native XDP support"),
        _ => e,
    })?;
    Ok(owned_fd(fd))
}

/// Detaches a link from its hook (BPF_LINK_DETACH) whoever else holds or pins it; the link
/// object stays alive, defunct, until its last fd and pin go.
pub(crate) fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: no pointers; the kernel validates the fd.
    let ret = unsafe { bpf::bpf_link_detach(link.as_raw_fd()) };
    check(ret, || format!("bpf_link_detach(fd {})", link.as_raw_fd())).map(drop)
}

/// What the kernel says about a bpf_link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub id: u32,
    pub prog_id: u32,
    /// The interface of an XDP link (0 once detached); `None` for other link types.
    pub xdp_ifindex: Option<u32>,
}

pub(crate) fn link_info(link: BorrowedFd<'_>) -> Result<LinkInfo> {
    let mut info = bpf::bpf_link_info::default();
    let mut len = size_of::<bpf::bpf_link_info>() as u32;
    // SAFETY: `info` is a writable bpf_link_info of `len` bytes, zeroed so no pointer field asks
    // the kernel to fill a buffer; it lives across the call.
    let ret = unsafe { bpf::bpf_link_get_info_by_fd(link.as_raw_fd(), &mut info, &mut len) };
    check(ret, || {
        format!("bpf_link_get_info_by_fd(fd {})", link.as_raw_fd())
    })?;
    let xdp_ifindex = if info.type_ == bpf::BPF_LINK_TYPE_XDP {
        // SAFETY: for a link of type BPF_LINK_TYPE_XDP the kernel fills the `xdp` member of the
        // union; every member is plain integers, so any bytes are a valid value anyway.
        Some(unsafe { info.__bindgen_anon_1.xdp.ifindex })
    } else {
        None
    };
    Ok(LinkInfo {
        id: info.id,
        prog_id: info.prog_id,
        xdp_ifindex,
    })
}

pub(crate) fn link_fd_by_id(id: u32) -> Result<OwnedFd> {
    // SAFETY: no pointers; returns a new fd or a negative errno.
    let ret = unsafe { bpf::bpf_link_get_fd_by_id(id) };
    Ok(owned_fd(check(ret, || {
        format!("bpf_link_get_fd_by_id({id})")
    })?))
}

/// Ids of every bpf_link in the system.
pub(crate) fn link_ids() -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: `next` is a writable u32 that lives across the call.
        let ret = unsafe { bpf::bpf_link_get_next_id(id, &mut next) };
        match check(ret, || format!("bpf_link_get_next_id({id})")) {
            Ok(_) => {
                ids.push(next);
                id = next;
            }
            Err(e) if e.errno == libc::ENOENT => return Ok(ids),
            Err(e) => return Err(e),
        }
    }
}

/// The XDP programs on an interface, per mode (0 for none), as netlink reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct XdpQuery {
    pub drv_prog_id: u32,
    pub skb_prog_id: u32,
    pub hw_prog_id: u32,
}

pub(crate) fn xdp_query(ifindex: u32) -> Result<XdpQuery> {
    let mut opts = bpf::bpf_xdp_query_opts {
        sz: size_of::<bpf::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a writable bpf_xdp_query_opts of the size it states, filled during the
    // call only.
    let ret = unsafe { bpf::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    check(ret, || format!("bpf_xdp_query(ifindex {ifindex})"))?;
    Ok(XdpQuery {
        drv_prog_id: opts.drv_prog_id,
        skb_prog_id: opts.skb_prog_id,
        hw_prog_id: opts.hw_prog_id,
    })
}

/// Detaches a program attached through netlink (not a bpf_link) in the mode of `flags`.
pub(crate) fn xdp_detach(ifindex: u32, flags: u32, expected: BorrowedFd<'_>) -> Result<()> {
    // XDP_FLAGS_REPLACE with old_prog_fd: detach only if that program is still the one attached.
    let opts = bpf::bpf_xdp_attach_opts {
        sz: size_of::<bpf::bpf_xdp_attach_opts>() as _,
        old_prog_fd: expected.as_raw_fd(),
        ..Default::default()
    };
    let flags = flags | bpf::XDP_FLAGS_REPLACE;
    // SAFETY: `opts` is a valid bpf_xdp_attach_opts of the size it states, read during the call.
    let ret = unsafe { bpf::bpf_xdp_detach(ifindex as i32, flags, &opts) };
    check(ret, || {
        format!(
            "bpf_xdp_detach(ifindex {ifindex}, {} | XDP_FLAGS_REPLACE)",
            xdp_flags_name(flags & !bpf::XDP_FLAGS_REPLACE)
        )
    })
    .map(drop)
}

pub(crate) fn prog_fd_by_id(id: u32) -> Result<OwnedFd> {
    // SAFETY: no pointers; returns a new fd or a negative errno.
    let ret = unsafe { bpf::bpf_prog_get_fd_by_id(id) };
    Ok(owned_fd(check(ret, || {
        format!("bpf_prog_get_fd_by_id({id})")
    })?))
}

// --- bpffs --------------------------------------------------------------------------------------

const BPFFS_HINT: &str =
    "pins live on bpffs: mount it with `mount -t bpf bpf /sys/fs/bpf` (scripts/bootstrap.sh does)";

/// Pins the BPF object behind `fd` at `path` on bpffs.
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let ret = unsafe { bpf::bpf_obj_pin(fd.as_raw_fd(), c.as_ptr()) };
    check(ret, || format!("bpf_obj_pin(fd {}, {})", fd.as_raw_fd(), path.display())).map_err(|e| {
        match e.errno {
            libc::EEXIST => e.with_hint("something is already pinned there: a leftover of a daemon that died? `ternd cleanup` removes it"),
            libc::EPERM | libc::EINVAL => e.with_hint(BPFFS_HINT),
            _ => e,
        }
    })?;
    Ok(())
}

/// Opens the BPF object pinned at `path`.
pub(crate) fn obj_get(path: &Path) -> Result<OwnedFd> {
    let c = c_path(path)?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let ret = unsafe { bpf::bpf_obj_get(c.as_ptr()) };
    Ok(owned_fd(check(ret, || {
        format!("bpf_obj_get({})", path.display())
    })?))
}

/// Whether `path` is on a mounted bpffs.
pub(crate) fn is_bpffs(path: &Path) -> Result<bool> {
    let c = c_path(path)?;
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statfs, both alive for the call.
    let ret = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    check_libc(ret, || format!("statfs({})", path.display()))?;
    Ok(st.f_type as u64 == libc::BPF_FS_MAGIC as u64)
}

// --- interfaces and privileges ------------------------------------------------------------------

/// The index of interface `name` in this thread's network namespace.
pub(crate) fn if_nametoindex(name: &str) -> Result<u32> {
    tern_netdev::if_nametoindex(name).map_err(SysError::from)
}

/// The name of interface `index` in this thread's network namespace.
pub(crate) fn if_indextoname(index: u32) -> Result<String> {
    tern_netdev::if_indextoname(index).map_err(SysError::from)
}

/// The driver of interface `name` (`ethtool -i`) in this thread's network namespace (sysfs
/// would show the namespace of whoever mounted /sys).
pub(crate) fn driver_name(name: &str) -> Result<String> {
    tern_netdev::driver(name).map_err(SysError::from)
}

impl From<tern_netdev::NetdevError> for SysError {
    /// `if_nametoindex("eth0")`, `if_indextoname(7)`,
    /// `ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO, "eth0")`: the call with its interface argument.
    fn from(e: tern_netdev::NetdevError) -> SysError {
        let arg = match e.interface().parse::<u32>() {
            Ok(index) => index.to_string(),
            Err(_) => format!("{:?}", e.interface()),
        };
        let call = match e.call().strip_suffix(')') {
            Some(open) if open.contains('(') => format!("{open}, {arg})"),
            _ => format!("{}({arg})", e.call()),
        };
        SysError::new(call, e.errno())
    }
}

/// Effective capabilities of the calling thread (capabilities are per thread on Linux).
pub(crate) fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Removes a pin (a file on bpffs); `Ok(false)` when there was none.
pub(crate) fn unpin(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SysError::new(
            format!("unlink({})", path.display()),
            e.raw_os_error().unwrap_or(libc::EIO),
        )),
    }
}

#[cfg(test)]
mod netdev_tests {
    use super::*;

    #[test]
    fn interface_errors_keep_the_call_with_its_argument() {
        let e = if_nametoindex("tern-nope0").unwrap_err();
        assert_eq!(e.call, "if_nametoindex(\"tern-nope0\")");
        assert_eq!(e.errno, libc::ENODEV);
        let e = driver_name("tern-nope0").unwrap_err();
        assert_eq!(
            e.call,
            "ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO, \"tern-nope0\")"
        );
        let e = if_indextoname(u32::MAX).unwrap_err();
        assert_eq!(e.call, format!("if_indextoname({})", u32::MAX));
    }
}
