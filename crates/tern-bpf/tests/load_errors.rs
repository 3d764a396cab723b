//! What `SteerProgram::load` says when the kernel refuses: here, a thread without CAP_BPF.
//!
//! Capabilities are per thread on Linux, so the test drops them from one thread's effective set
//! and loads from there; the rest of the process keeps them. Needs root to start with.

use tern_bpf::{Error, SteerProgram};

const CAP_SYS_ADMIN: usize = 21;
const CAP_BPF: usize = 39;

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` of linux/capability.h.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Clears `caps` from the calling thread's effective set (they stay permitted).
fn drop_effective(caps: &[usize]) {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0, // the calling thread
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes one header and two data structs (version 3), both alive here.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(ret, 0, "capget: {}", std::io::Error::last_os_error());
    for &cap in caps {
        data[cap / 32].effective &= !(1 << (cap % 32));
    }
    // SAFETY: capset reads the same header and two data structs, alive across the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(ret, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn loading_without_cap_bpf_names_the_missing_capability() {
    if !tern_lab::lab_available() {
        return;
    }
    let err = std::thread::spawn(|| {
        drop_effective(&[CAP_BPF, CAP_SYS_ADMIN]);
        SteerProgram::load().expect_err("loading without CAP_BPF must fail")
    })
    .join()
    .unwrap();
    assert!(matches!(err, Error::MissingCapabilities { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("lacks CAP_BPF (or CAP_SYS_ADMIN)"), "{msg}");
    assert!(
        msg.contains("run ternd as root") || msg.contains("Run ternd as root"),
        "{msg}"
    );

    // The same process, on a thread that kept its capabilities, loads fine.
    SteerProgram::load().unwrap_or_else(|e| panic!("{e}"));
}
