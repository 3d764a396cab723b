#!/usr/bin/env bash
# Idempotent set-up of everything tern needs on a fresh Debian 12 machine that has only the Rust
# toolchain. Every other script calls this first. One line per step says what it did.
#
#   scripts/bootstrap.sh            check and install what is missing
#   TERN_BOOTSTRAP_QUIET=1 ...      print only what changed or failed
#
# Exit status: 0 when the machine is ready; 1 with a message naming what is wrong otherwise.
set -euo pipefail

# Debian packages and why tern needs each.
PACKAGES=(
    clang            # compiles bpf/*.bpf.c
    linux-libc-dev   # kernel UAPI headers bpf/*.bpf.c includes (linux/bpf.h, asm/ in the multiarch dir)
    llvm             # llvm-strip / llvm-objdump for BPF objects
    libelf-dev       # libbpf-sys and xsk-rs link libelf
    zlib1g-dev       # libbpf-sys links zlib
    m4               # xsk-rs's vendored libxdp build
    pkg-config       # -sys crates find their libraries
    make             # libbpf-sys vendored build
    iproute2         # ip netns / ip link for the veth lab
    ethtool          # offloads and queue counts
    tcpdump          # lab captures and fixtures
    iputils-ping     # lab reachability checks
    python3          # setup-nic.sh's AF_XDP socket and netlink XDP-feature probes
    procps           # sysctl, pgrep
    kmod             # modprobe veth / sch_netem when they are modules
    curl             # HTTP client of ternd's interop tests
    wrk              # HTTP keep-alive load of ternd's interop tests
    hping3           # the reference SYN flooder scripts/bench-generators.sh measures against
)

quiet=${TERN_BOOTSTRAP_QUIET:-0}
say() { [ "$quiet" = 1 ] || printf 'bootstrap: %s\n' "$*"; }
fail() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# --- privileges -------------------------------------------------------------------------------
# The lab needs namespaces and links (CAP_NET_ADMIN, CAP_SYS_ADMIN), raw sockets for captures
# (CAP_NET_RAW) and BPF (CAP_BPF, CAP_PERFMON); apt needs root.
check_caps() {
    local eff need=() name bit
    eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
    for pair in NET_ADMIN:12 NET_RAW:13 SYS_ADMIN:21 PERFMON:38 BPF:39; do
        name=${pair%%:*}; bit=${pair##*:}
        if (( (16#$eff >> bit) & 1 == 0 )); then need+=("CAP_$name"); fi
    done
    if [ "$(id -u)" != 0 ]; then
        fail "must run as root (apt-get, network namespaces, XDP); re-run with sudo"
    fi
    if [ ${#need[@]} -gt 0 ]; then
        fail "running as root but missing capabilities: ${need[*]} (a container needs --cap-add for each, or --privileged)"
    fi
    say "privileges: root with CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON"
}

# --- Debian packages --------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        say "packages: all ${#PACKAGES[@]} present"
        return
    fi
    command -v apt-get >/dev/null || fail "missing packages ${missing[*]} and no apt-get: install them by hand"
    # Refresh the index only when it cannot serve a candidate for something we need.
    local stale=0
    for p in "${missing[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then stale=1; fi
    done
    if [ "$stale" = 1 ]; then
        say "packages: refreshing the apt index (apt-get update)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || fail "apt-get update failed"
    fi
    say "packages: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null || fail "apt-get install ${missing[*]} failed (see apt's output above)"
}

# --- Rust toolchain ---------------------------------------------------------------------------
check_rust() {
    command -v cargo >/dev/null || fail "cargo not found: install the Rust toolchain (rustup) first"
    cargo fmt --version >/dev/null 2>&1 || fail "rustfmt missing: rustup component add rustfmt"
    cargo clippy --version >/dev/null 2>&1 || fail "clippy missing: rustup component add clippy"
    say "rust: $(cargo --version | cut -d' ' -f1-2) with rustfmt and clippy"
}

# --- kernel -----------------------------------------------------------------------------------
# ternd pins its XDP link in a bpffs so `ternd cleanup` can find it after a crash. Two mounts:
# /sys/fs/bpf, the usual place; and /run/tern/bpffs, because `ip netns exec` (how the lab runs
# ternd) remounts /sys, hiding the first, while /run stays visible from every namespace.
mount_bpffs() {
    local dir mounted=()
    for dir in /sys/fs/bpf /run/tern/bpffs; do
        if ! mountpoint -q "$dir" 2>/dev/null || [ "$(stat -f -c %T "$dir")" != bpf_fs ]; then
            mkdir -p "$dir"
            mount -t bpf bpf "$dir" || fail "cannot mount bpffs on $dir (needs CAP_SYS_ADMIN)"
            mounted+=("$dir")
        fi
    done
    if [ ${#mounted[@]} -eq 0 ]; then
        say "bpffs: mounted on /sys/fs/bpf and /run/tern/bpffs"
    else
        say "bpffs: mounted on ${mounted[*]}"
    fi
}

check_kernel() {
    # Probe rather than compare versions: can we create a veth pair in a namespace?
    local probe="tern-probe-$$"
    ip netns add "$probe" 2>/dev/null || fail "cannot create a network namespace (ip netns add): needs CAP_SYS_ADMIN and CONFIG_NET_NS"
    if ! ip -n "$probe" link add name probe0 type veth peer name probe1 2>/dev/null; then
        ip netns del "$probe"
        fail "cannot create a veth pair: the kernel lacks CONFIG_VETH (try modprobe veth)"
    fi
    ip netns del "$probe"
    say "kernel: $(uname -r), network namespaces and veth work"
}

check_caps
install_packages
check_rust
mount_bpffs
check_kernel
say "ready"
