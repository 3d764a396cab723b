#!/usr/bin/env bash
# Prepares a NIC for ternd, checks that it is ready, and puts it back as it was.
#
#   scripts/setup-nic.sh check IFACE [--queues N] [--frame-size 2048|4096]
#       read-only preflight: one line per check, OK / WARN / FAIL, and for anything not OK what
#       to do. Exit status 0 when nothing FAILs, 1 otherwise.
#   scripts/setup-nic.sh apply IFACE [--queues N] [--cores LIST] [--busy-poll] [--dry-run]
#       queue count, LRO/GRO off, queue i's IRQs (or NAPI thread) on core i, and with --busy-poll
#       the busy-polling knobs. Idempotent; the previous value of everything it changes is
#       recorded in the state file, so that
#   scripts/setup-nic.sh undo IFACE [--dry-run]
#       restores them.
#
#   --queues N     queues ternd will serve (default: the number of --cores, else of CPUs)
#   --cores LIST   cores for queues 0, 1, ... as a CPU list ("2-5", "0,2,4,6"; default 0..N-1)
#   --busy-poll    also set net.core.busy_poll/busy_read and the interface's
#                  napi_defer_hard_irqs/gro_flush_timeout (values below)
#   --dry-run      print the commands instead of running them: stdout is then a shell script
#                  (notes are '#' comments); nothing is changed and no state is written
#   --frame-size   ternd's UMEM frame size, for the MTU check (default 2048, ternd's default)
#
# Run it in the interface's network namespace (`ip netns exec NS scripts/setup-nic.sh ...`: that
# also remounts /sys for the namespace). State: $TERN_SETUP_NIC_STATE_DIR (default /run/tern)
# /setup-nic-IFACE.state, or setup-nic-IFACE@NETNS.state inside a named network namespace.
# docs/operations.md describes every check.
set -euo pipefail

STATE_DIR=${TERN_SETUP_NIC_STATE_DIR:-/run/tern}
PIN_ROOT=/sys/fs/bpf/tern            # where ternd pins its bpf_link (crates/tern-bpf)
XDP_HEADROOM=256                     # XDP_PACKET_HEADROOM, reserved in front of every frame
UMEM_BYTES_PER_QUEUE=$((8192 * 2048)) # ternd's default UMEM: 8192 frames of 2048 bytes
# Largest MTU most drivers accept for native XDP on one 4 KiB page without XDP multi-buffer
# (mlx5's limit; i40e and ixgbe are somewhat lower). Approximate by nature.
XDP_DRIVER_MTU=3498
# --busy-poll values: the kernel's AF_XDP busy-poll recipe (the preferred-busy-polling series,
# Linux 5.11, and Documentation/networking/napi.rst): keep interrupts masked while the
# application polls, with a 200 us safety timeout; 50 us is the suggested socket busy-poll time.
BUSY_POLL_USECS=50
BUSY_READ_USECS=50
NAPI_DEFER_HARD_IRQS=2
GRO_FLUSH_TIMEOUT_NS=200000

# Where the IRQ names are read; tests point it at a fixture to exercise the naming conventions.
INTERRUPTS=${TERN_SETUP_NIC_INTERRUPTS:-/proc/interrupts}

PROG=${0##*/}
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() {
    printf '%s: %s\nusage: %s check IFACE [--queues N] [--frame-size 2048|4096]\n       %s apply IFACE [--queues N] [--cores LIST] [--busy-poll] [--dry-run]\n       %s undo IFACE [--dry-run]\n' \
        "$PROG" "$1" "$PROG" "$PROG" "$PROG" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

# Whether the running kernel is at least MAJOR.MINOR (used only as a hint, never as a verdict).
kernel_at_least() {
    local major minor
    IFS=. read -r major minor _ <<<"$(uname -r)"
    minor=${minor%%[!0-9]*}
    (( major > $1 || (major == $1 && ${minor:-0} >= $2) ))
}

# Whether this process has capability number $1 in its effective set.
has_cap() {
    local eff
    eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
    (( (16#$eff >> $1) & 1 ))
}

# "0-3,8" -> "0 1 2 3 8"
expand_cpulist() {
    local part a b out=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        [ -n "$part" ] || continue
        if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
            a=${BASH_REMATCH[1]}; b=${BASH_REMATCH[2]}
            (( a <= b )) || return 1
            for ((; a <= b; a++)); do out+=("$a"); done
        elif [[ "$part" =~ ^[0-9]+$ ]]; then
            out+=("$part")
        else
            return 1
        fi
    done
    [ ${#out[@]} -gt 0 ] || return 1
    echo "${out[*]}"
}

# The command line $@, quoted so that a shell runs exactly it.
quoted() {
    local line='' word
    for word in "$@"; do
        if [[ "$word" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then line+="$word "; else line+="$(printf '%q' "$word") "; fi
    done
    printf '%s' "${line% }"
}

# Interfaces of this network namespace, comma-separated.
interfaces() {
    ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s%s", sep, $2; sep = ", " }'
}

# ethtool -k state of feature $2 (long name, e.g. generic-receive-offload) on $1:
# "on", "off", "on fixed", "off fixed", or nothing when the driver does not list it.
feature() {
    ethtool -k "$1" 2>/dev/null | awk -v n="$2:" '
        $1 == n { s = $2; if ($3 == "[fixed]") s = s " fixed"; print s; exit }' || true
}

# ethtool -l of $1 as "MAX_RX MAX_TX MAX_COMBINED CUR_RX CUR_TX CUR_COMBINED" (0 for n/a);
# fails when the driver has no channel query.
channels() {
    local out
    out=$(ethtool -l "$1" 2>/dev/null) || return 1
    awk '
        /^Pre-set maximums/ { sec = "max" }
        /^Current hardware settings/ { sec = "cur" }
        /^(RX|TX|Combined):/ { v = $2; if (v !~ /^[0-9]+$/) v = 0; a[sec, $1] = v }
        END {
            if (!(("max", "RX:") in a)) exit 1
            print a["max", "RX:"] + 0, a["max", "TX:"] + 0, a["max", "Combined:"] + 0,
                  a["cur", "RX:"] + 0, a["cur", "TX:"] + 0, a["cur", "Combined:"] + 0
        }' <<<"$out"
}

# The netdev generic-netlink family (Linux 6.3+), through python3 when it is there:
#   netdev_nl xdp-features IFINDEX   the driver's XDP feature bits (NETDEV_XDP_ACT_*)
#   netdev_nl napi IFINDEX           "QUEUE NAPI_ID IRQ PID" per RX queue with a NAPI instance
#                                    ("-" where the kernel does not say); queues the kernel does
#                                    not map to a NAPI get the NAPI ids in ascending order
# Exits non-zero when python3 or the family (or the attribute) is missing.
netdev_nl() {
    # TERN_SETUP_NIC_NO_NETLINK=1 forces the fallbacks (the driver table, /proc/interrupts names,
    # napi/IFACE-* thread names), so they can be tested on kernels that have the family.
    [ "${TERN_SETUP_NIC_NO_NETLINK:-0}" != 1 ] || return 1
    command -v python3 >/dev/null 2>&1 || return 1
    python3 - "$@" 2>/dev/null <<'PY'
import os, socket, struct, sys

def attrs(buf):
    out, i = {}, 0
    while i + 4 <= len(buf):
        ln, ty = struct.unpack_from("=HH", buf, i)
        if ln < 4:
            break
        out[ty & 0x3FFF] = buf[i + 4:i + ln]
        i += (ln + 3) & ~3
    return out

def attr(ty, payload):
    ln = 4 + len(payload)
    return struct.pack("=HH", ln, ty) + payload + b"\0" * ((-ln) % 4)

def u32(b):
    return struct.unpack("=I", b[:4])[0]

def request(s, family, cmd, payload, dump=False):
    body = struct.pack("=BBH", cmd, 1, 0) + payload
    flags = 0x1 | (0x300 if dump else 0)  # NLM_F_REQUEST | NLM_F_DUMP
    s.send(struct.pack("=IHHII", 16 + len(body), family, flags, 1, 0) + body)
    msgs = []
    while True:
        data, i = s.recv(1 << 16), 0
        while i + 16 <= len(data):
            ln, ty = struct.unpack_from("=IH", data, i)
            if ty == 3:  # NLMSG_DONE
                return msgs
            if ty == 2:  # NLMSG_ERROR
                err = struct.unpack_from("=i", data, i + 16)[0]
                if err:
                    raise OSError(-err, os.strerror(-err))
                return msgs
            msgs.append(attrs(data[i + 20:i + ln]))
            i += (ln + 3) & ~3
        if not dump:
            return msgs

s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
family = u32(request(s, 0x10, 3, attr(2, b"netdev\0"))[0][1] + b"\0\0") & 0xFFFF
what, ifindex = sys.argv[1], int(sys.argv[2])
if what == "xdp-features":
    dev = request(s, family, 1, attr(1, struct.pack("=I", ifindex)))[0]  # DEV_GET
    if 3 not in dev:  # NETDEV_A_DEV_XDP_FEATURES
        sys.exit(1)
    print(struct.unpack("=Q", dev[3][:8])[0])
elif what == "napi":
    napis = {}
    for m in request(s, family, 11, attr(1, struct.pack("=I", ifindex)), dump=True):  # NAPI_GET
        if 2 in m and (1 not in m or u32(m[1]) == ifindex):
            napis[u32(m[2])] = (u32(m[3]) if 3 in m else "-", u32(m[4]) if 4 in m else "-")
    queues = {}
    for m in request(s, family, 10, attr(2, struct.pack("=I", ifindex)), dump=True):  # QUEUE_GET
        if 3 in m and u32(m[3]) == 0 and 4 in m:  # RX queue with a NAPI id
            queues[u32(m[1])] = u32(m[4])
    if not queues:
        queues = dict(enumerate(sorted(napis)))
    for q in sorted(queues):
        irq, pid = napis.get(queues[q], ("-", "-"))
        print(q, queues[q], irq, pid)
else:
    sys.exit(2)
PY
}

# Names of the NETDEV_XDP_ACT_* bits set in $1.
xdp_feature_names() {
    local bits=$1 names=() i
    local all=(basic redirect ndo-xmit xsk-zerocopy hw-offload rx-sg ndo-xmit-sg)
    for i in "${!all[@]}"; do
        if (( (bits >> i) & 1 )); then names+=("${all[$i]}"); fi
    done
    local IFS=,
    echo "${names[*]:-none}"
}

# Native XDP and AF_XDP zero-copy by driver, for kernels without the netdev family's
# xdp-features (before 6.3) or without python3. "yes", "no", or "X.Y+" (from that kernel on).
# Compiled from the drivers' XDP/XSK support in the upstream tree and its release notes; the
# version a feature landed in is approximate for some drivers, and distribution kernels
# backport. `ternd check --config FILE` (attaches nothing) and a ternd start (which reports the
# mode it got) are the authority; on Linux 6.3+ this table is not consulted.
driver_xdp_table() {
    case "$1" in
        i40e)                     echo "4.13+ 4.20+" ;;
        ice)                      echo "5.5+ 5.5+" ;;
        ixgbe)                    echo "4.12+ 4.20+" ;;
        ixgbevf)                  echo "4.17+ no" ;;
        igc)                      echo "5.13+ 5.14+" ;;
        igb)                      echo "5.10+ 6.14+" ;;
        mlx5_core)                echo "4.9+ 5.3+" ;;
        mlx4_en)                  echo "4.8+ no" ;;
        bnxt_en)                  echo "4.11+ no" ;;
        ena)                      echo "5.5+ no" ;;
        virtio_net)               echo "4.10+ 6.11+" ;;
        veth)                     echo "4.19+ no" ;;
        tun)                      echo "4.14+ no" ;;
        nfp)                      echo "4.10+ 5.18+" ;;
        qede)                     echo "4.10+ no" ;;
        sfc)                      echo "5.1+ no" ;;
        hv_netvsc)                echo "5.6+ no" ;;
        gve)                      echo "6.3+ 6.3+" ;;
        stmmac|st_gmac)           echo "5.13+ 5.13+" ;;
        mvneta|mvpp2)             echo "5.5+ no" ;;
        fsl_dpaa2_eth)            echo "5.0+ 6.2+" ;;
        tsnep)                    echo "6.3+ 6.4+" ;;
        ionic)                    echo "6.9+ no" ;;
        vif)                      echo "5.9+ no" ;;
        e1000|e1000e|r8169|tg3|igbvf|bridge|bonding|team|macvlan|vlan|tap|loopback)
                                  echo "no no" ;;
        *)                        return 1 ;;
    esac
}

# "yes"/"no" for a table entry ("yes", "no", "X.Y+") on this kernel.
table_verdict() {
    case "$1" in
        yes|no) echo "$1" ;;
        *+) local v=${1%+}
            if kernel_at_least "${v%%.*}" "${v#*.}"; then echo yes; else echo no; fi ;;
    esac
}

# IRQs of queue i of $1, from the kernel (netdev netlink) or else from the names drivers give
# them in /proc/interrupts. Prints "QUEUE IRQ" lines (several per queue when RX and TX have
# vectors of their own).
queue_irqs() {
    local ifc=$1 ifindex line q irq pid found=0
    ifindex=$(cat "/sys/class/net/$ifc/ifindex")
    if line=$(netdev_nl napi "$ifindex"); then
        while read -r q _ irq pid; do
            [ -n "$q" ] || continue
            if [ "$irq" != - ]; then echo "$q $irq"; found=1; fi
        done <<<"$line"
    fi
    [ "$found" = 0 ] || return 0
    # Naming conventions: "IFACE-TxRx-N" (i40e, ice, ixgbe, igb, igc, bnxt_en: often prefixed
    # with the driver, "i40e-IFACE-TxRx-N"), "IFACE-rx-N"/"IFACE-tx-N", "IFACE-N", ena's
    # "IFACE-Tx-Rx-N"; mlx5's "mlx5_compN@pci:BUS" (bus from ethtool -i); virtio's
    # "virtioK-input.N"/"virtioK-output.N" (virtioK is the device behind the interface).
    local bus virtio name num before
    bus=$(ethtool -i "$ifc" 2>/dev/null | awk -F': ' '$1 == "bus-info" {print $2}') || true
    virtio=$(basename "$(readlink "/sys/class/net/$ifc/device" 2>/dev/null)" 2>/dev/null) || true
    while read -r num name; do
        num=${num%:}
        [[ "$num" =~ ^[0-9]+$ ]] || continue
        if [[ "$name" == *"$ifc-"* && "$name" =~ ([0-9]+)$ ]]; then
            q=${BASH_REMATCH[1]}
            before=${name%%"$ifc-"*}
            if [ -z "$before" ] || [[ "$before" == *[-_@] ]]; then echo "$q $num"; fi
        elif [ -n "$bus" ] && [[ "$name" =~ ^mlx5_comp([0-9]+)@pci:(.*)$ ]] && [ "${BASH_REMATCH[2]}" = "$bus" ]; then
            echo "${BASH_REMATCH[1]} $num"
        elif [[ "$virtio" == virtio* && "$name" =~ ^${virtio}-(input|output)\.([0-9]+)$ ]]; then
            echo "${BASH_REMATCH[2]} $num"
        fi
    done < <(awk 'NR > 1 { print $1, $NF }' "$INTERRUPTS")
}

# The pid of the kernel thread called $1 (or whose name is $1 cut to 15 characters, as older
# kernels show it).
thread_named() {
    local p comm
    for p in /proc/[0-9]*; do
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        if [ "$comm" = "$1" ] || { [ ${#comm} -eq 15 ] && [ "$comm" = "${1:0:15}" ]; }; then
            echo "${p#/proc/}"
            return 0
        fi
    done
    return 1
}

# NAPI kernel threads of $1 (threaded NAPI), as "QUEUE PID NAME" lines. With netdev netlink
# (Linux 6.8+) the kernel says which NAPI instances are the interface's, and (6.9+) their
# threads, so a same-named interface in another network namespace is never taken for this one.
# Without it: the threads named "napi/IFACE-NAPIID", in ascending NAPI id order; kernel threads
# belong to no namespace, so that fallback cannot tell two namespaces' IFACE apart.
napi_threads() {
    local ifc=$1 ifindex line q napi irq pid comm
    ifindex=$(cat "/sys/class/net/$ifc/ifindex")
    if line=$(netdev_nl napi "$ifindex"); then
        while read -r q napi irq pid; do
            [ -n "$q" ] || continue
            if [ "$pid" = - ]; then pid=$(thread_named "napi/$ifc-$napi") || continue; fi
            comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
            echo "$q $pid $comm"
        done <<<"$line"
        return 0
    fi
    local p id i=0
    for p in /proc/[0-9]*; do
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        # Thread names are cut at 15 characters on older kernels: match what is left.
        if [[ "$comm" == "napi/$ifc-"* ]]; then
            id=${comm##*-}
            if [[ "$id" =~ ^[0-9]+$ ]]; then echo "$id ${p#/proc/} $comm"; fi
        elif [ ${#comm} -eq 15 ] && [[ "napi/$ifc-" == "$comm"* ]]; then
            echo "0 ${p#/proc/} $comm"
        fi
    done | sort -n | while read -r id pid comm; do
        echo "$i $pid $comm"; i=$((i + 1))
    done
}

# CPU affinity list of thread $1 ("0-3").
thread_affinity() {
    local out
    out=$(taskset -pc "$1" 2>/dev/null) || return 1
    echo "${out##*: }"
}

ifc_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# Whether an XDP program is attached to $IFC (ip shows "prog/xdp id N" then).
xdp_attached() { ip -d link show dev "$IFC" 2>/dev/null | grep -q 'prog/xdp'; }

# Sets up IFC / state file for the interface argument, with the errors the brief promises.
select_interface() {
    IFC=$1
    command -v ip >/dev/null || fail "ip (iproute2) not found: scripts/bootstrap.sh installs it"
    command -v ethtool >/dev/null \
        || fail "ethtool not found: scripts/bootstrap.sh installs it (or apt-get install ethtool)"
    if ! ifc_exists "$IFC" || [ ! -d "/sys/class/net/$IFC" ]; then
        local ns where='this network namespace'
        ns=$(ip netns identify 2>/dev/null || true)
        [ -z "$ns" ] || where="network namespace $ns"
        fail "no interface '$IFC' in $where (available: $(interfaces)); to reach another namespace run ip netns exec NS $0 ..."
    fi
    NETNS=$(ip netns identify 2>/dev/null || true)
    STATE_FILE="$STATE_DIR/setup-nic-$IFC${NETNS:+@$NETNS}.state"
}

# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------

n_ok=0 n_warn=0 n_fail=0
# result STATUS NAME TEXT [FIX]
result() {
    case "$1" in
        OK) n_ok=$((n_ok + 1)) ;;
        WARN) n_warn=$((n_warn + 1)) ;;
        FAIL) n_fail=$((n_fail + 1)) ;;
    esac
    if [ -n "${4:-}" ]; then
        printf '%-4s  %-10s  %s -- fix: %s\n' "$1" "$2" "$3" "$4"
    else
        printf '%-4s  %-10s  %s\n' "$1" "$2" "$3"
    fi
}

check_af_xdp() {
    local out
    if command -v python3 >/dev/null 2>&1; then
        out=$(python3 -c '
import errno, socket
try:
    socket.socket(44, socket.SOCK_RAW).close()
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' 2>/dev/null) || out=error
        case "$out" in
            ok) result OK af_xdp "AF_XDP sockets work (probe: socket(AF_XDP, SOCK_RAW) succeeded)"; return ;;
            EAFNOSUPPORT) result FAIL af_xdp "the kernel has no AF_XDP (probe: socket(AF_XDP) failed with EAFNOSUPPORT)" \
                "a kernel built with CONFIG_XDP_SOCKETS=y (Linux 4.18+; every major distribution kernel has it)"; return ;;
        esac
        # EPERM (no CAP_NET_RAW) or anything else: fall through to the symbol table.
    fi
    if grep -qE ' (xsk_create|xsk_bind)(\.|$)' /proc/kallsyms 2>/dev/null; then
        result OK af_xdp "AF_XDP is in the kernel (probe: xsk_create in /proc/kallsyms${out:+; socket probe said $out})"
    elif grep -q ' __sys_bpf\| sys_socket' /proc/kallsyms 2>/dev/null; then
        result FAIL af_xdp "no AF_XDP in the kernel (probe: no xsk_create in /proc/kallsyms)" \
            "a kernel built with CONFIG_XDP_SOCKETS=y (Linux 4.18+)"
    else
        result WARN af_xdp "cannot tell: no python3 to try socket(AF_XDP) and /proc/kallsyms unreadable" \
            "run as root, or install python3"
    fi
}

check_bpf() {
    # CONFIG_BPF_SYSCALL registers this sysctl; it exists exactly when the bpf() syscall does.
    if [ -e /proc/sys/kernel/unprivileged_bpf_disabled ]; then
        result OK bpf "bpf() syscall available (probe: /proc/sys/kernel/unprivileged_bpf_disabled exists)"
    elif grep -q ' __sys_bpf$' /proc/kallsyms 2>/dev/null; then
        result OK bpf "bpf() syscall available (probe: __sys_bpf in /proc/kallsyms)"
    else
        result FAIL bpf "no bpf() syscall (probe: no kernel.unprivileged_bpf_disabled sysctl, no __sys_bpf symbol)" \
            "a kernel built with CONFIG_BPF_SYSCALL=y"
    fi
    # XDP through a bpf_link (BPF_LINK_CREATE with BPF_XDP), which tern-bpf uses, came with
    # Linux 5.9 together with the function bpf_xdp_link_attach and the type struct bpf_xdp_link.
    if grep -qE ' bpf_xdp_link_attach(\.|$)' /proc/kallsyms 2>/dev/null; then
        result OK bpf_link "XDP bpf_link supported (probe: bpf_xdp_link_attach in /proc/kallsyms)"
    elif [ -r /sys/kernel/btf/vmlinux ] && grep -qa 'bpf_xdp_link' /sys/kernel/btf/vmlinux; then
        result OK bpf_link "XDP bpf_link supported (probe: struct bpf_xdp_link in /sys/kernel/btf/vmlinux)"
    elif kernel_at_least 5 9; then
        result WARN bpf_link "not found by probe (no bpf_xdp_link_attach in /proc/kallsyms, no BTF), though kernel $(uname -r) >= 5.9 should have it" \
            "run as root so /proc/kallsyms is complete, or try ternd check --config FILE"
    else
        result FAIL bpf_link "no XDP bpf_link: not found by probe, and kernel $(uname -r) < 5.9" \
            "Linux 5.9 or later: tern-bpf attaches through BPF_LINK_CREATE"
    fi
}

check_bpffs() {
    # ternd pins under /sys/fs/bpf/tern when that is a bpffs, else under /run/tern/bpffs
    # (ip netns exec remounts /sys and hides the first; scripts/bootstrap.sh mounts both).
    local fs run_fs
    fs=$(stat -f -c %T /sys/fs/bpf 2>/dev/null || true)
    run_fs=$(stat -f -c %T /run/tern/bpffs 2>/dev/null || true)
    if [ "$fs" = bpf_fs ]; then
        result OK bpffs "bpffs mounted on /sys/fs/bpf (ternd pins its XDP link under $PIN_ROOT/)"
    elif [ "$run_fs" = bpf_fs ]; then
        result OK bpffs "bpffs mounted on /run/tern/bpffs (ternd pins its XDP link there: /sys/fs/bpf is ${fs:-missing} here)"
    else
        result FAIL bpffs "neither /sys/fs/bpf (${fs:-missing}) nor /run/tern/bpffs is a bpffs: ternd cannot pin its XDP link" \
            "run scripts/bootstrap.sh, which mounts both (or mount -t bpf bpf /sys/fs/bpf)"
    fi
}

check_caps() {
    local missing=() note=''
    has_cap 12 || missing+=(CAP_NET_ADMIN)
    has_cap 13 || missing+=(CAP_NET_RAW)
    if ! has_cap 39 && ! has_cap 21; then missing+=("CAP_BPF (or CAP_SYS_ADMIN)"); fi
    has_cap 14 || note="; no CAP_IPC_LOCK: the UMEM then counts against RLIMIT_MEMLOCK (see memlock)"
    if [ ${#missing[@]} -eq 0 ]; then
        result OK caps "CAP_NET_ADMIN, CAP_NET_RAW, $(has_cap 39 && echo CAP_BPF || echo CAP_SYS_ADMIN)$(has_cap 14 && echo ', CAP_IPC_LOCK')$note (read from CapEff of this shell; ternd needs the same)"
    else
        local list
        list=$(printf '%s, ' "${missing[@]}")
        result FAIL caps "missing ${list%, } (read from CapEff of this shell)" \
            "run ternd as root, or grant them: setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep, or AmbientCapabilities= in its systemd unit"
    fi
}

check_memlock() {
    local limit need_kib
    limit=$(ulimit -l)
    need_kib=$(( QUEUES * UMEM_BYTES_PER_QUEUE / 1024 ))
    local maps_note
    maps_note="BPF maps are charged to the memory cgroup from Linux 5.11 (kernel $(uname -r): version hint)"
    kernel_at_least 5 11 || maps_note="kernel $(uname -r) < 5.11 (version hint): BPF maps count against RLIMIT_MEMLOCK too"
    if has_cap 14; then
        result OK memlock "ulimit -l $limit$([ "$limit" = unlimited ] || echo ' KiB'); CAP_IPC_LOCK exempts the UMEM pages AF_XDP pins; $maps_note"
    elif [ "$limit" = unlimited ]; then
        result OK memlock "ulimit -l unlimited; $maps_note"
    elif (( limit >= need_kib )); then
        result OK memlock "ulimit -l $limit KiB >= $need_kib KiB for $QUEUES default UMEM(s) of 16 MiB; $maps_note"
    else
        result FAIL memlock "ulimit -l $limit KiB < $need_kib KiB: AF_XDP pins each queue's UMEM (16 MiB by default) against RLIMIT_MEMLOCK without CAP_IPC_LOCK, and the bind fails with ENOBUFS" \
            "ulimit -l unlimited (LimitMEMLOCK=infinity in a systemd unit), or grant CAP_IPC_LOCK"
    fi
}

check_driver() {
    local driver bits ifindex native zc how entry
    driver=$(ethtool -i "$IFC" 2>/dev/null | awk -F': ' '$1 == "driver" {print $2}') || true
    if [ -z "$driver" ]; then
        result WARN driver "ethtool -i $IFC names no driver" "try ternd check --config FILE, which attaches nothing and reports the mode"
        return
    fi
    ifindex=$(cat "/sys/class/net/$IFC/ifindex")
    if bits=$(netdev_nl xdp-features "$ifindex") && [[ "$bits" =~ ^[0-9]+$ ]]; then
        (( (bits & 3) == 3 )) && native=yes || native=no   # basic + redirect (into the XSKMAP)
        (( bits & 8 )) && zc=yes || zc=no
        how="probed: netdev xdp-features $(xdp_feature_names "$bits")"
    elif entry=$(driver_xdp_table "$driver"); then
        native=$(table_verdict "${entry% *}")
        zc=$(table_verdict "${entry#* }")
        how="from the driver table (native ${entry% *}, zero-copy ${entry#* }): not probed, needs Linux 6.3+ and python3"
    else
        result WARN driver "$driver: unknown driver, native XDP and zero-copy not known (no netdev xdp-features: needs Linux 6.3+ and python3)" \
            "try ternd check --config FILE; ternd falls back to generic XDP when native is refused"
        return
    fi
    local text="$driver: native XDP $native, AF_XDP zero-copy $zc ($how)"
    if [ "$native" = no ]; then
        result WARN driver "$text; generic (SKB) mode only: slower, and AF_XDP runs in copy mode" \
            "a NIC whose driver has native XDP (i40e, ice, ixgbe, mlx5_core, igc, ...) for real numbers"
    elif [ "$zc" = no ]; then
        result OK driver "$text; AF_XDP runs in copy mode"
    else
        result OK driver "$text"
    fi
}

check_link() {
    local state
    state=$(cat "/sys/class/net/$IFC/operstate" 2>/dev/null || echo unknown)
    if [ "$state" = up ]; then
        result OK link "$IFC is up"
    elif [ "$state" = unknown ] && [ "$(cat "/sys/class/net/$IFC/carrier" 2>/dev/null || true)" = 1 ]; then
        result OK link "$IFC has carrier (operstate unknown: the driver does not report it)"
    else
        result WARN link "$IFC is $state" "ip link set dev $IFC up, and check the cable or the peer"
    fi
}

check_queues() {
    local ch max_rx max_tx max_c cur_rx cur_tx cur_c have max kind want_from
    want_from=${QUEUES_FROM}
    if ! ch=$(channels "$IFC"); then
        have=$(find "/sys/class/net/$IFC/queues" -maxdepth 1 -name 'rx-*' 2>/dev/null | wc -l)
        if (( have == QUEUES )); then
            result OK queues "$have RX queue(s) (from sysfs: the driver has no ethtool -l); want $QUEUES ($want_from)"
        else
            result WARN queues "$have RX queue(s) (from sysfs: the driver has no ethtool -l), want $QUEUES ($want_from)" \
                "run ternd with queues = $have, or change the count the way the driver allows"
        fi
        return
    fi
    read -r max_rx max_tx max_c cur_rx cur_tx cur_c <<<"$ch"
    if (( max_c > 0 )); then
        have=$cur_c; max=$max_c; kind=combined
    else
        have=$cur_rx; max=$max_rx; kind=rx
    fi
    local text="$have $kind queue(s) (max $max)"
    [ "$kind" = combined ] || text+=", $cur_tx tx (max $max_tx)"
    text+="; want $QUEUES ($want_from)"
    if (( have == QUEUES )) && { [ "$kind" = combined ] || (( cur_tx >= QUEUES )); }; then
        result OK queues "$text"
    elif (( QUEUES > max )); then
        local fix="run ternd with queues = $max (or fewer)"
        [ "$DRIVER" != veth ] || fix+="; a veth's maximum is fixed when it is created (ip link add ... numrxqueues N numtxqueues N; scripts/lab.sh up --queues N)"
        result WARN queues "$text: the driver allows at most $max" "$fix"
    elif (( have > QUEUES )); then
        result WARN queues "$text: RSS also spreads flows onto the $((have - QUEUES)) queue(s) no worker serves, and those never reach tern" \
            "setup-nic.sh apply $IFC --queues $QUEUES (or run ternd with queues = $have)"
    else
        result WARN queues "$text" "setup-nic.sh apply $IFC --queues $QUEUES"
    fi
}

check_mtu() {
    local mtu room frame_max
    mtu=$(cat "/sys/class/net/$IFC/mtu")
    room=$((FRAME_SIZE - XDP_HEADROOM))
    frame_max=$((4096 - XDP_HEADROOM - 18))
    local sum="$mtu + 14 (Ethernet) + 4 (VLAN) = $((mtu + 18))"
    if (( mtu + 18 <= room && mtu <= XDP_DRIVER_MTU )); then
        result OK mtu "$mtu: $sum <= $room ($FRAME_SIZE-byte UMEM frame - $XDP_HEADROOM headroom)"
    elif (( mtu + 18 <= room )); then
        result WARN mtu "$mtu: fits a $FRAME_SIZE-byte frame, but most drivers refuse native XDP without multi-buffer above about $XDP_DRIVER_MTU (4 KiB pages)" \
            "ip link set dev $IFC mtu $XDP_DRIVER_MTU if ternd's attach falls back to generic mode"
    elif (( FRAME_SIZE == 2048 && mtu + 18 <= frame_max + 18 && mtu <= XDP_DRIVER_MTU )); then
        result WARN mtu "$mtu: $sum > $room ($FRAME_SIZE-byte UMEM frame - $XDP_HEADROOM headroom): full-sized frames do not fit" \
            "frame_size = 4096 in ternd, or ip link set dev $IFC mtu $((room - 18))"
    else
        local fix="ip link set dev $IFC mtu $(( room - 18 < XDP_DRIVER_MTU ? room - 18 : XDP_DRIVER_MTU ))"
        (( FRAME_SIZE == 4096 )) || fix+=" (or up to $XDP_DRIVER_MTU with frame_size = 4096 in ternd)"
        result FAIL mtu "$mtu: $sum does not fit a $FRAME_SIZE-byte UMEM frame, and most drivers refuse native XDP without multi-buffer above about $XDP_DRIVER_MTU" "$fix"
    fi
}

check_offloads() {
    local lro gro hwgro
    lro=$(feature "$IFC" large-receive-offload)
    hwgro=$(feature "$IFC" rx-gro-hw)
    local lro_shown=${lro/ fixed/ [fixed]} hwgro_shown=${hwgro/ fixed/ [fixed]}
    case "$lro" in
        ''|off*) result OK lro "LRO ${lro_shown:-not offered}${hwgro:+; hardware GRO $hwgro_shown}" ;;
        "on fixed") result FAIL lro "LRO on and fixed: XDP needs single-buffer, unaggregated frames" \
            "none with this driver setting; check the driver's firmware/module options" ;;
        *) result FAIL lro "LRO on: drivers refuse native XDP with LRO, and aggregated frames are not what was on the wire" \
            "setup-nic.sh apply $IFC (or ethtool -K $IFC lro off)" ;;
    esac
    if [[ "$hwgro" == on* && "$lro" != on* ]]; then
        result WARN gro_hw "hardware GRO on: like LRO it merges frames before XDP sees them (most drivers turn it off when XDP attaches)" \
            "setup-nic.sh apply $IFC (or ethtool -K $IFC rx-gro-hw off)"
    fi
    gro=$(feature "$IFC" generic-receive-offload)
    local gro_shown=${gro/ fixed/ [fixed]}
    case "$gro" in
        ''|off*) result OK gro "GRO ${gro_shown:-not offered}" ;;
        *) result WARN gro "GRO on: in generic (SKB) XDP mode the program runs after GRO and tern would get merged segments larger than a frame; and it gives the kernel an edge that tern-bench's side-by-side numbers should not include" \
            "setup-nic.sh apply $IFC (or ethtool -K $IFC gro off)" ;;
    esac
}

check_checksums() {
    local rx tx
    rx=$(feature "$IFC" rx-checksumming)
    tx=$(feature "$IFC" tx-checksumming)
    rx=${rx/ fixed/ [fixed]} tx=${tx/ fixed/ [fixed]}
    result OK checksum "rx ${rx:-n/a}, tx ${tx:-n/a}: either is fine. tern verifies every checksum in software (AF_XDP does not pass the NIC's verdict) and writes full checksums into its frames; AF_XDP TX bypasses TX offloads, which stay for the kernel's own traffic"
}

check_affinity() {
    local irqs threads q irq aff pinned=0 total=0 threaded pid comm
    irqs=$(queue_irqs "$IFC")
    if [ -n "$irqs" ]; then
        while read -r q irq; do
            total=$((total + 1))
            aff=$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo '?')
            [[ "$aff" =~ ^[0-9]+$ ]] && pinned=$((pinned + 1))
        done <<<"$irqs"
        if (( pinned == total )); then
            result OK irqs "$total queue IRQ(s), each on one CPU"
        else
            result WARN irqs "$((total - pinned)) of $total queue IRQ(s) may run on several CPUs: queue i's interrupts belong on worker i's core" \
                "setup-nic.sh apply $IFC [--cores LIST]"
        fi
        return
    fi
    threaded=$(cat "/sys/class/net/$IFC/threaded" 2>/dev/null || echo n/a)
    threads=$(napi_threads "$IFC")
    if [ -z "$threads" ]; then
        result OK irqs "no queue IRQs found (software device, or names this script does not know); threaded NAPI $threaded, no NAPI thread now"
        return
    fi
    while read -r q pid comm; do
        total=$((total + 1))
        aff=$(thread_affinity "$pid" || echo '?')
        [[ "$aff" =~ ^[0-9]+$ ]] && pinned=$((pinned + 1))
    done <<<"$threads"
    if (( pinned == total )); then
        result OK irqs "no queue IRQs found; threaded NAPI $threaded, $total NAPI thread(s), each on one CPU"
    else
        result WARN irqs "no queue IRQs found; threaded NAPI $threaded, $((total - pinned)) of $total NAPI thread(s) not pinned" \
            "setup-nic.sh apply $IFC [--cores LIST]"
    fi
}

check_irqbalance() {
    local running=0 p
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -x irqbalance >/dev/null 2>&1 && running=1
    else
        for p in /proc/[0-9]*/comm; do
            [ "$(cat "$p" 2>/dev/null)" = irqbalance ] && running=1 && break
        done
    fi
    if [ "$running" = 1 ]; then
        result WARN irqbalance "irqbalance is running: it moves the IRQs apply pins" \
            "systemctl stop irqbalance, or keep it off the workers' cores (IRQBALANCE_BANNED_CPULIST in /etc/default/irqbalance)"
    else
        result OK irqbalance "not running"
    fi
}

check_busy_poll() {
    local bp br defer flush
    bp=$(cat /proc/sys/net/core/busy_poll 2>/dev/null || echo n/a)
    br=$(cat /proc/sys/net/core/busy_read 2>/dev/null || echo n/a)
    defer=$(cat "/sys/class/net/$IFC/napi_defer_hard_irqs" 2>/dev/null || echo n/a)
    flush=$(cat "/sys/class/net/$IFC/gro_flush_timeout" 2>/dev/null || echo n/a)
    local sysctls="net.core.busy_poll=$bp busy_read=$br"
    [ "$bp" != n/a ] || sysctls="net.core.busy_poll/busy_read: only in the initial network namespace"
    result OK busy_poll "$sysctls, napi_defer_hard_irqs=$defer gro_flush_timeout=$flush (apply --busy-poll sets $BUSY_POLL_USECS, $BUSY_READ_USECS, $NAPI_DEFER_HARD_IRQS, $GRO_FLUSH_TIMEOUT_NS; only needed with ternd's busy_poll)"
}

check_xdp_hook() {
    local info id
    info=$(ip -d link show dev "$IFC" 2>/dev/null || true)
    id=$(grep -oE 'prog/xdp[a-z]* id [0-9]+' <<<"$info" | head -n1 | awk '{print $NF}') || true
    if [ -z "$id" ]; then
        if [ -e "$PIN_ROOT/$IFC" ]; then
            result WARN xdp "hook free, but a pin $PIN_ROOT/$IFC remains" "ternd cleanup --interface $IFC"
        else
            result OK xdp "no XDP program attached"
        fi
    elif [ -e "$PIN_ROOT/$IFC" ]; then
        result OK xdp "XDP program id $id attached, link pinned at $PIN_ROOT/$IFC (a running ternd, or a leftover: ternd cleanup --interface $IFC)"
    else
        result WARN xdp "XDP program id $id attached by something other than a pinned ternd: ternd's attach fails with EBUSY" \
            "find it with bpftool net / ip -d link show dev $IFC and detach it, or ternd cleanup --interface $IFC if it is tern_steer"
    fi
}

cmd_check() {
    local ns
    ns=${NETNS:+, network namespace $NETNS}
    say "check $IFC (kernel $(uname -r), $(nproc) CPU(s)$ns)"
    check_af_xdp
    check_bpf
    check_bpffs
    check_caps
    check_memlock
    check_driver
    check_link
    check_queues
    check_mtu
    check_offloads
    check_checksums
    check_affinity
    check_irqbalance
    check_busy_poll
    check_xdp_hook
    say "check $IFC: $n_ok OK, $n_warn WARN, $n_fail FAIL"
    (( n_fail == 0 ))
}

# ---------------------------------------------------------------------------------------------
# apply / undo
# ---------------------------------------------------------------------------------------------

DRY_RUN=0
GRO_TURNED_OFF=0
n_changed=0 n_warned=0

note() {
    if [ "$DRY_RUN" = 1 ]; then printf '# %s\n' "$*"; else say "$*"; fi
}
warn() {
    n_warned=$((n_warned + 1))
    if [ "$DRY_RUN" = 1 ]; then printf '# WARN: %s\n' "$*"; else say "WARN: $*"; fi
}

# run CMD...: runs CMD (or, dry, prints it). On failure, a WARN with its error output; returns 1.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        quoted "$@"; echo
        return 0
    fi
    local err rc=0
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" = 0 ]; then
        say "ran: $(quoted "$@")"
        return 0
    fi
    warn "$(quoted "$@") failed (exit $rc): ${err:-no message}"
    return 1
}

# write_value VALUE PATH: `echo VALUE > PATH`, with the same reporting as run.
write_value() {
    if [ "$DRY_RUN" = 1 ]; then
        printf 'echo %s > %s\n' "$(quoted "$1")" "$(quoted "$2")"
        return 0
    fi
    local err rc=0
    err=$( { printf '%s\n' "$1" > "$2"; } 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then
        say "ran: echo $1 > $2"
        return 0
    fi
    warn "echo $1 > $2 failed: ${err##*: }"
    return 1
}

# record KIND KEY PREV: remembers PREV as the value to restore for KIND/KEY, unless an earlier
# apply already recorded one (the first recorded value is the one from before any apply).
record() {
    [ "$DRY_RUN" = 0 ] || return 0
    mkdir -p "$STATE_DIR"
    if [ ! -e "$STATE_FILE" ]; then
        printf '# %s state for %s%s: KIND<TAB>KEY<TAB>VALUE before the first apply\n' \
            "$PROG" "$IFC" "${NETNS:+ in network namespace $NETNS}" > "$STATE_FILE"
    fi
    if ! awk -F'\t' -v k="$1" -v key="$2" '$1 == k && $2 == key { found = 1 } END { exit !found }' "$STATE_FILE"; then
        printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$STATE_FILE"
    fi
}

# change KIND KEY PREV CMD...: runs CMD and records PREV when it worked.
change() {
    local kind=$1 key=$2 prev=$3
    shift 3
    if run "$@"; then
        record "$kind" "$key" "$prev"
        n_changed=$((n_changed + 1))
    fi
}

# change_value KIND PATH PREV VALUE: writes VALUE into PATH, recording PREV.
change_value() {
    if write_value "$4" "$2"; then
        record "$1" "$2" "$3"
        n_changed=$((n_changed + 1))
    fi
}

apply_queues() {
    local ch max_rx max_tx max_c cur_rx cur_tx cur_c
    if ! ch=$(channels "$IFC"); then
        warn "queues: $IFC's driver (${DRIVER:-unknown}) has no ethtool -l/-L: queue count left as it is"
        return
    fi
    read -r max_rx max_tx max_c cur_rx cur_tx cur_c <<<"$ch"
    if (( max_c > 0 )); then
        if (( cur_c == QUEUES )); then
            note "queues: combined $cur_c already"
        elif (( QUEUES > max_c )); then
            warn "queues: $IFC allows at most $max_c combined queue(s), $QUEUES asked: left at $cur_c; run ternd with queues <= $max_c"
        else
            change channels combined "$cur_c" ethtool -L "$IFC" combined "$QUEUES"
        fi
        return
    fi
    # Separate RX and TX channels (veth, some virtual and embedded NICs): RX decides RSS; an
    # AF_XDP socket on queue i also needs TX queue i.
    local args=() prev=()
    if (( max_rx == 0 )); then
        warn "queues: $IFC reports neither combined nor RX channels: queue count left as it is"
        return
    fi
    if (( QUEUES > max_rx || (max_tx > 0 && QUEUES > max_tx) )); then
        local why="the driver allows at most $max_rx RX/$max_tx TX queue(s)"
        [ "$DRIVER" != veth ] || why+=" (a veth's maximum is fixed when it is created: ip link add ... numrxqueues N numtxqueues N; scripts/lab.sh up --queues N)"
        warn "queues: $QUEUES asked but $why: left at rx $cur_rx, tx $cur_tx"
        return
    fi
    if (( cur_rx != QUEUES )); then args+=(rx "$QUEUES"); prev+=(rx "$cur_rx"); fi
    if (( max_tx > 0 && cur_tx < QUEUES )); then args+=(tx "$QUEUES"); prev+=(tx "$cur_tx"); fi
    if [ ${#args[@]} -eq 0 ]; then
        note "queues: rx $cur_rx, tx $cur_tx already"
        return
    fi
    if run ethtool -L "$IFC" "${args[@]}"; then
        local i
        for ((i = 0; i < ${#prev[@]}; i += 2)); do record channels "${prev[i]}" "${prev[i+1]}"; done
        n_changed=$((n_changed + 1))
    fi
}

apply_offloads() {
    local short long state
    for pair in lro:large-receive-offload rx-gro-hw:rx-gro-hw gro:generic-receive-offload; do
        short=${pair%%:*}; long=${pair#*:}
        state=$(feature "$IFC" "$long")
        case "$state" in
            '') ;;   # not offered by the driver
            off*) note "offloads: $short off already" ;;
            "on fixed") warn "offloads: $short is on and fixed by the driver: cannot turn it off" ;;
            on) change feature "$short" on ethtool -K "$IFC" "$short" off
                [ "$short" != gro ] || GRO_TURNED_OFF=1 ;;
        esac
    done
    note "offloads: TX offloads (checksum, TSO, GSO) left alone: AF_XDP TX does not use them and the kernel's own traffic keeps them"
}

apply_affinity() {
    local irqs threads q irq pid comm core aff threaded
    irqs=$(queue_irqs "$IFC")
    if [ -n "$irqs" ]; then
        while read -r q irq; do
            (( q < QUEUES )) || continue
            core=${CORES[$q]}
            aff=$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null) || { warn "irq $irq (queue $q): no /proc/irq/$irq/smp_affinity_list"; continue; }
            if [ "$aff" = "$core" ]; then
                note "affinity: irq $irq (queue $q) on core $core already"
            else
                change_value irq "/proc/irq/$irq/smp_affinity_list" "$aff" "$core"
            fi
        done <<<"$irqs"
        return
    fi
    # No IRQs of our own (a software device, or IRQ names we do not know): threaded NAPI, whose
    # kernel threads can be pinned like any thread.
    if [ ! -e "/sys/class/net/$IFC/threaded" ]; then
        warn "affinity: no queue IRQs of $IFC found in /proc/interrupts and no threaded NAPI (Linux 5.12+): pin its IRQs by hand (echo CORE > /proc/irq/N/smp_affinity_list)"
        return
    fi
    threaded=$(cat "/sys/class/net/$IFC/threaded")
    if [ "$threaded" != 1 ]; then
        change_value sysfs "/sys/class/net/$IFC/threaded" "$threaded" 1
    else
        note "affinity: no queue IRQs found; threaded NAPI on already"
    fi
    if [ "$DRY_RUN" = 1 ] && [ "$DRIVER" = veth ] && [ "$GRO_TURNED_OFF" = 1 ] && ! xdp_attached; then
        # What the dry run prints must be what apply runs: on veth the gro off above removes the
        # NAPI instances, and their threads with them, unless an XDP program keeps them.
        warn "affinity: after the gro off above, $IFC has no NAPI thread to pin (veth has NAPI instances only while GRO is on or an XDP program is attached): run apply again once ternd is attached"
        return
    fi
    threads=$(napi_threads "$IFC")
    if [ -z "$threads" ]; then
        local why="the driver creates them with its NAPI instances"
        [ "$DRIVER" != veth ] || why="veth has NAPI instances only while GRO is on or an XDP program is attached"
        warn "affinity: no NAPI thread of $IFC exists now ($why): run apply again once ternd is attached"
        return
    fi
    while read -r q pid comm; do
        (( q < QUEUES )) || continue
        core=${CORES[$q]}
        aff=$(thread_affinity "$pid") || { warn "affinity: cannot read the affinity of $comm (pid $pid)"; continue; }
        if [ "$aff" = "$core" ]; then
            note "affinity: $comm (queue $q) on core $core already"
        else
            change thread "$pid" "$aff $comm" taskset -pc "$core" "$pid"
        fi
    done <<<"$threads"
    note "affinity: NAPI threads are re-created (unpinned) when the driver re-creates its NAPI instances (queue count change, XDP attach on veth): apply again after"
}

apply_busy_poll() {
    local key want cur path
    for pair in "net.core.busy_poll:$BUSY_POLL_USECS" "net.core.busy_read:$BUSY_READ_USECS"; do
        key=${pair%%:*}; want=${pair#*:}
        path=/proc/sys/${key//./\/}
        if [ ! -e "$path" ]; then
            warn "busy-poll: $key does not exist here (it exists only in the initial network namespace): set it from there, sysctl -w $key=$want"
            continue
        fi
        cur=$(cat "$path")
        if [ "$cur" = "$want" ]; then
            note "busy-poll: $key = $want already"
        else
            change sysctl "$key" "$cur" sysctl -q -w "$key=$want"
        fi
    done
    for pair in "napi_defer_hard_irqs:$NAPI_DEFER_HARD_IRQS" "gro_flush_timeout:$GRO_FLUSH_TIMEOUT_NS"; do
        key=${pair%%:*}; want=${pair#*:}
        path=/sys/class/net/$IFC/$key
        if [ ! -e "$path" ]; then
            warn "busy-poll: no $path (needs Linux 5.10+ for napi_defer_hard_irqs)"
            continue
        fi
        cur=$(cat "$path")
        if [ "$cur" = "$want" ]; then
            note "busy-poll: $key = $want already"
        else
            change_value sysfs "$path" "$cur" "$want"
        fi
    done
}

require_root() {
    [ "$DRY_RUN" = 1 ] || [ "$(id -u)" = 0 ] \
        || fail "$1 changes the interface and needs root: re-run with sudo (or add --dry-run to see the commands)"
}

cmd_apply() {
    require_root apply
    if [ "$DRY_RUN" = 1 ]; then
        note "$PROG apply $IFC --dry-run: the commands apply would run now; nothing is changed and no state is recorded"
    else
        local what="$QUEUES queue(s) on core(s) ${CORES[*]:0:$QUEUES}"
        [ "$BUSY_POLL" = 0 ] || what+=", busy polling"
        say "apply $IFC: $what"
    fi
    apply_queues
    apply_offloads
    apply_affinity
    if [ "$BUSY_POLL" = 1 ]; then apply_busy_poll; fi
    if [ "$DRY_RUN" = 1 ]; then
        (( n_changed > 0 )) || note "nothing to change"
        return 0
    fi
    if (( n_changed == 0 )); then
        say "apply $IFC: nothing to change$( (( n_warned == 0 )) || echo " ($n_warned warning(s) above)")"
    else
        say "apply $IFC: $n_changed change(s); previous values in $STATE_FILE (undo: $0 undo $IFC)"
    fi
}

# restore KIND KEY VALUE: puts one recorded value back. Returns 1 when that failed.
restore() {
    local kind=$1 key=$2 value=$3 cur
    case "$kind" in
        channels)
            local ch max_rx max_tx max_c cur_rx cur_tx cur_c
            ch=$(channels "$IFC") || { warn "undo: cannot read $IFC's channels"; return 1; }
            read -r max_rx max_tx max_c cur_rx cur_tx cur_c <<<"$ch"
            case "$key" in combined) cur=$cur_c ;; rx) cur=$cur_rx ;; tx) cur=$cur_tx ;; *) cur='' ;; esac
            if [ "$cur" = "$value" ]; then note "undo: $key channels $value already"; return 0; fi
            run ethtool -L "$IFC" "$key" "$value" ;;
        feature)
            local long=$key
            case "$key" in gro) long=generic-receive-offload ;; lro) long=large-receive-offload ;; esac
            cur=$(feature "$IFC" "$long")
            if [ "${cur%% *}" = "$value" ]; then note "undo: $key $value already"; return 0; fi
            run ethtool -K "$IFC" "$key" "$value" ;;
        irq|sysfs)
            if [ ! -e "$key" ]; then note "undo: $key is gone; nothing to restore"; return 0; fi
            cur=$(cat "$key" 2>/dev/null || true)
            if [ "$cur" = "$value" ]; then note "undo: $key = $value already"; return 0; fi
            write_value "$value" "$key" ;;
        thread)
            local aff=${value%% *} name=${value#* }
            if [ "$(cat "/proc/$key/comm" 2>/dev/null || true)" != "$name" ]; then
                note "undo: thread $name (pid $key) is gone; nothing to restore"
                return 0
            fi
            cur=$(thread_affinity "$key" || true)
            if [ "$cur" = "$aff" ]; then note "undo: $name on $aff already"; return 0; fi
            run taskset -pc "$aff" "$key" ;;
        sysctl)
            cur=$(sysctl -n "$key" 2>/dev/null || true)
            if [ "$cur" = "$value" ]; then note "undo: $key = $value already"; return 0; fi
            run sysctl -q -w "$key=$value" ;;
        *)
            warn "undo: unknown record '$kind' in $STATE_FILE: skipped"
            return 1 ;;
    esac
}

cmd_undo() {
    require_root undo
    if [ ! -e "$STATE_FILE" ]; then
        note "undo $IFC: nothing to undo (no $STATE_FILE: apply has not changed anything since the last undo)"
        return 0
    fi
    local lines=() kept=() i kind key value
    mapfile -t lines < <(grep -v '^#' "$STATE_FILE" || true)
    [ "$DRY_RUN" = 0 ] || note "$PROG undo $IFC --dry-run: the commands undo would run now; nothing is changed"
    # Newest first: the reverse of the order apply changed things in.
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        [ -n "${lines[i]}" ] || continue
        IFS=$'\t' read -r kind key value <<<"${lines[i]}"
        restore "$kind" "$key" "$value" || kept=("${lines[i]}" "${kept[@]}")
    done
    [ "$DRY_RUN" = 0 ] || return 0
    if [ ${#kept[@]} -eq 0 ]; then
        rm -f "$STATE_FILE"
        say "undo $IFC: restored what apply changed; removed $STATE_FILE"
    else
        { head -n1 "$STATE_FILE"; printf '%s\n' "${kept[@]}"; } > "$STATE_FILE.new"
        mv "$STATE_FILE.new" "$STATE_FILE"
        say "undo $IFC: ${#kept[@]} value(s) could not be restored; they stay in $STATE_FILE"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------

cmd=${1:-}
case "$cmd" in
    check|apply|undo) ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    '') usage_error "no command given" ;;
    *) usage_error "unknown command '$cmd'" ;;
esac
shift
if [ $# -eq 0 ] || [[ "$1" == -* ]]; then usage_error "$cmd needs an interface name"; fi
iface_arg=$1
shift

QUEUES='' CORES_ARG='' BUSY_POLL=0 FRAME_SIZE=2048
while [ $# -gt 0 ]; do
    case "$1" in
        --queues)
            [ "$cmd" != undo ] || usage_error "undo takes no --queues"
            QUEUES=${2:-}; [[ "$QUEUES" =~ ^[1-9][0-9]*$ ]] || usage_error "--queues needs a positive number"
            shift 2 ;;
        --cores)
            [ "$cmd" = apply ] || usage_error "--cores is for apply"
            CORES_ARG=${2:-}; shift 2 || usage_error "--cores needs a CPU list" ;;
        --busy-poll)
            [ "$cmd" = apply ] || usage_error "--busy-poll is for apply"
            BUSY_POLL=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;   # check never changes anything anyway
        --frame-size)
            [ "$cmd" = check ] || usage_error "--frame-size is for check"
            FRAME_SIZE=${2:-}; [[ "$FRAME_SIZE" =~ ^(2048|4096)$ ]] || usage_error "--frame-size is 2048 or 4096"
            shift 2 ;;
        *) usage_error "unknown option '$1' for $cmd" ;;
    esac
done

select_interface "$iface_arg"
DRIVER=$(ethtool -i "$IFC" 2>/dev/null | awk -F': ' '$1 == "driver" {print $2}') || true

# Queues and cores: --queues, else as many as --cores lists, else one per CPU.
CORES=()
if [ -n "$CORES_ARG" ]; then
    expanded=$(expand_cpulist "$CORES_ARG") || usage_error "--cores: '$CORES_ARG' is not a CPU list like 0-3 or 0,2,4"
    read -r -a CORES <<<"$expanded"
    online=" $(expand_cpulist "$(cat /sys/devices/system/cpu/online)") "
    for c in "${CORES[@]}"; do
        [[ "$online" == *" $c "* ]] || usage_error "--cores: CPU $c is not online (online: $(cat /sys/devices/system/cpu/online))"
    done
fi
if [ -n "$QUEUES" ]; then
    QUEUES_FROM="--queues"
elif [ ${#CORES[@]} -gt 0 ]; then
    QUEUES=${#CORES[@]}; QUEUES_FROM="--cores"
else
    QUEUES=$(nproc); QUEUES_FROM="one per CPU; --queues N to choose"
fi
if [ ${#CORES[@]} -eq 0 ]; then
    read -r -a CORES <<<"$(expand_cpulist "$(cat /sys/devices/system/cpu/online)")"
    # More queues than CPUs: queue i goes to CPU i mod CPUs.
    while [ ${#CORES[@]} -lt "$QUEUES" ]; do CORES+=("${CORES[@]}"); done
fi
[ ${#CORES[@]} -ge "$QUEUES" ] || usage_error "--cores lists ${#CORES[@]} core(s) for $QUEUES queue(s)"

case "$cmd" in
    check) cmd_check ;;
    apply) cmd_apply ;;
    undo) cmd_undo ;;
esac
