//! Compiles each program in `bpf/` (`tern_steer.bpf.c`, the daemon's steering program, and
//! `tern_flood.bpf.c`, tern-bench's live-frames flood generator) into `$OUT_DIR/<name>.bpf.o`,
//! which the crate embeds.
//!
//! Include paths, in order: `bpf/include` (tern's own headers), libbpf's headers
//! (`bpf/bpf_helpers.h`, `bpf/bpf_endian.h`) from the libbpf-sys build this crate links against,
//! found through the `DEP_BPF_INCLUDE` variable its `links = "bpf"` manifest exports, and the
//! kernel UAPI headers from Debian's linux-libc-dev (`linux/bpf.h` in /usr/include, `asm/` in the
//! multiarch directory). Nothing is committed as an object: a fresh checkout builds it here.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs, by file stem: `bpf/<stem>.bpf.c` becomes `$OUT_DIR/<stem>.bpf.o`.
const PROGRAMS: [&str; 2] = ["tern_steer", "tern_flood"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let bpf_dir = manifest_dir.join("../../bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let clang = env::var("TERN_CLANG").unwrap_or_else(|_| "clang".to_owned());

    println!("cargo:rerun-if-env-changed=TERN_CLANG");
    for stem in PROGRAMS {
        println!(
            "cargo:rerun-if-changed={}",
            bpf_dir.join(format!("{stem}.bpf.c")).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        bpf_dir.join("include").display()
    );
    for header in std::fs::read_dir(bpf_dir.join("include")).expect("bpf/include exists") {
        let header = header.expect("readable bpf/include");
        println!("cargo:rerun-if-changed={}", header.path().display());
    }

    let libbpf_include = env::var("DEP_BPF_INCLUDE").unwrap_or_else(|_| {
        fail("libbpf-sys did not export DEP_BPF_INCLUDE (its include directory)")
    });
    let multiarch = multiarch(&clang);

    for stem in PROGRAMS {
        compile(
            &clang,
            &bpf_dir,
            &libbpf_include,
            &multiarch,
            &out_dir,
            stem,
        );
    }
}

/// Compiles `bpf/<stem>.bpf.c` into `out_dir/<stem>.bpf.o`.
fn compile(
    clang: &str,
    bpf_dir: &Path,
    libbpf_include: &str,
    multiarch: &str,
    out_dir: &Path,
    stem: &str,
) {
    let source = format!("{stem}.bpf.c");
    let output = out_dir.join(format!("{stem}.bpf.o"));
    let result = Command::new(clang)
        .args(["-O2", "-g", "-target", "bpf", "-std=gnu11"])
        .args(["-Wall", "-Wextra"])
        .arg(format!("-I{}", bpf_dir.join("include").display()))
        .arg(format!("-I{libbpf_include}"))
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg("-c")
        .arg(bpf_dir.join(&source))
        .arg("-o")
        .arg(&output)
        .output();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "`{clang}` not found: tern-bpf compiles bpf/{source} with clang; run scripts/bootstrap.sh (installs clang and linux-libc-dev)"
        )),
        Err(e) => fail(&format!("cannot run `{clang}`: {e}")),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let hint = if stderr.contains("file not found") {
                "\nA header is missing: scripts/bootstrap.sh installs linux-libc-dev (kernel UAPI headers)."
            } else {
                ""
            };
            fail(&format!(
                "clang failed to compile bpf/{source} ({}):\n{stderr}{hint}",
                out.status
            ))
        }
        Ok(out) => {
            // Warnings do not fail the build (a newer clang may find new ones in kernel
            // headers) but are shown.
            for line in String::from_utf8_lossy(&out.stderr).lines() {
                println!("cargo:warning=bpf/{source}: {line}");
            }
        }
    }
    check_object(&output);
}

/// The Debian multiarch triple whose `asm/` headers the UAPI headers include.
fn multiarch(clang: &str) -> String {
    // Ask the compiler; fall back to the target's architecture for a clang that cannot say.
    if let Ok(out) = Command::new(clang).arg("-print-multiarch").output() {
        let triple = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !triple.is_empty() {
            return triple;
        }
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_owned());
    format!("{arch}-linux-gnu")
}

/// A last sanity check that clang produced a BPF ELF object.
fn check_object(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    // ELF magic, then e_machine (offset 18, little endian) must be EM_BPF (247).
    let is_bpf_elf =
        bytes.starts_with(b"\x7fELF") && bytes.get(18..20) == Some(&247u16.to_le_bytes()[..]);
    if !is_bpf_elf {
        fail(&format!("{} is not a BPF ELF object", path.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: tern-bpf build: {message}");
    std::process::exit(1);
}
