#!/usr/bin/env bash
# The veth lab: two network namespaces joined by a multi-queue veth pair.
#
#   scripts/lab.sh up [--queues N] [--client-addrs N]   create (or re-create) the lab
#   scripts/lab.sh down                                 remove everything, also after a failed up
#   scripts/lab.sh status                               show what exists
#   scripts/lab.sh exec srv|cli CMD...                  run CMD inside a namespace
#
#   ${P}srv  veth-srv  198.18.0.1/24  2001:2::1/64   (the system under test: ternd or a kernel server)
#   ${P}cli  veth-cli  198.18.0.2/24  2001:2::2/64   (clients and flood generators)
#            extra client addresses 198.18.0.100.. with --client-addrs N (N <= 100)
#
# P is $TERN_LAB_PREFIX (default "tern-"), so concurrent runs can use their own namespaces.
# Only the benchmarking ranges 198.18.0.0/15 and 2001:2::/48 (RFC 2544, RFC 5180) are used.
# The server routes the flood source ranges 198.18.128.0/17 and 2001:2:0:8000::/49 back through
# the client, so SYN-ACKs to spoofed sources leave by the veth instead of being dropped.
# With more than one queue, bpf/lab_rss.bpf.c (built here with clang) hashes each TCP 4-tuple
# to a queue at the client's egress, standing in for the RSS veth lacks.
set -euo pipefail

P=${TERN_LAB_PREFIX:-tern-}
SRV="${P}srv"
CLI="${P}cli"
SRV_IF=veth-srv
CLI_IF=veth-cli
SRV_V4=198.18.0.1
CLI_V4=198.18.0.2
SRV_V6=2001:2::1
CLI_V6=2001:2::2
FLOOD_V4=198.18.128.0/17
FLOOD_V6=2001:2:0:8000::/49

# Every script bootstraps first; callers that already did (scripts/test.sh, the Rust lab tests
# it runs) export TERN_BOOTSTRAPPED=1 so repeated lab cycles stay fast.
if [ "${TERN_BOOTSTRAPPED:-0}" != 1 ]; then
    TERN_BOOTSTRAP_QUIET=1 "$(dirname "$0")/bootstrap.sh"
fi

say() { printf 'lab: %s\n' "$*"; }
fail() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

down() {
    local ns removed=0
    for ns in "$SRV" "$CLI"; do
        if ns_exists "$ns"; then
            # Detach any XDP program left on the lab interface before the namespace goes.
            ip -n "$ns" link set dev "$SRV_IF" xdp off 2>/dev/null || true
            ip netns del "$ns"
            removed=$((removed + 1))
        fi
    done
    say "down: removed $removed namespace(s) with prefix '$P'"
}

# Builds bpf/lab_rss.bpf.c and attaches it at tc egress of the client's veth (see up()).
attach_rss() {
    command -v clang >/dev/null || fail "clang not found: scripts/bootstrap.sh installs it"
    local dir multiarch
    dir=$(mktemp -d)
    multiarch=$(clang -print-multiarch 2>/dev/null || true)
    clang -O2 -target bpf -std=gnu11 -Wall -I"/usr/include/${multiarch:-x86_64-linux-gnu}" \
        -c "$(dirname "$0")/../bpf/lab_rss.bpf.c" -o "$dir/lab_rss.o" \
        || { rm -rf "$dir"; fail "compiling bpf/lab_rss.bpf.c failed"; }
    ip netns exec "$CLI" tc qdisc add dev "$CLI_IF" clsact \
        && ip netns exec "$CLI" tc filter add dev "$CLI_IF" egress pref 1 bpf direct-action \
            obj "$dir/lab_rss.o" sec tc \
        || { rm -rf "$dir"; fail "attaching lab_rss at tc egress of $CLI_IF failed"; }
    rm -rf "$dir"
}

up() {
    local queues client_addrs=0
    queues=$(nproc)
    while [ $# -gt 0 ]; do
        case "$1" in
            --queues) queues=${2:?--queues needs a number}; shift 2 ;;
            --client-addrs) client_addrs=${2:?--client-addrs needs a number}; shift 2 ;;
            *) fail "up: unknown option '$1' (known: --queues N, --client-addrs N)" ;;
        esac
    done
    [[ "$queues" =~ ^[0-9]+$ ]] && (( queues >= 1 && queues <= 64 )) \
        || fail "--queues must be 1..64, got '$queues'"
    [[ "$client_addrs" =~ ^[0-9]+$ ]] && (( client_addrs <= 100 )) \
        || fail "--client-addrs must be 0..100, got '$client_addrs'"

    # Idempotent: start from nothing, and leave nothing behind if any step fails.
    down >/dev/null
    trap 'rc=$?; if [ $rc -ne 0 ]; then say "up failed, cleaning up"; down; fi' EXIT

    ip netns add "$SRV"
    ip netns add "$CLI"
    ip -n "$SRV" link set lo up
    ip -n "$CLI" link set lo up
    ip -n "$SRV" link add name "$SRV_IF" numtxqueues "$queues" numrxqueues "$queues" type veth \
        peer name "$CLI_IF" netns "$CLI" numtxqueues "$queues" numrxqueues "$queues"

    ip -n "$SRV" addr add "$SRV_V4/24" dev "$SRV_IF"
    ip -n "$CLI" addr add "$CLI_V4/24" dev "$CLI_IF"
    ip -n "$SRV" addr add "$SRV_V6/64" dev "$SRV_IF" nodad
    ip -n "$CLI" addr add "$CLI_V6/64" dev "$CLI_IF" nodad
    local i
    for ((i = 0; i < client_addrs; i++)); do
        ip -n "$CLI" addr add "198.18.0.$((100 + i))/24" dev "$CLI_IF"
    done

    # Full checksums and MTU-sized frames: AF_XDP sees exactly what is on the wire.
    local ns ifc
    for pair in "$SRV:$SRV_IF" "$CLI:$CLI_IF"; do
        ns=${pair%%:*}; ifc=${pair##*:}
        ip netns exec "$ns" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null 2>&1 \
            || fail "ethtool -K $ifc tx off tso off gso off gro off failed in $ns"
    done

    ip -n "$SRV" link set "$SRV_IF" up
    ip -n "$CLI" link set "$CLI_IF" up

    # Threaded NAPI lets the server's receive work be pinned to a core of our choosing. veth has
    # NAPI instances only while GRO is on or an XDP program is attached, and the flag can only be
    # set while they exist; it persists, so NAPI created later by an XDP attach runs threaded.
    ip netns exec "$SRV" sh -c "ethtool -K $SRV_IF gro on >/dev/null \
        && echo 1 > /sys/class/net/$SRV_IF/threaded; ethtool -K $SRV_IF gro off >/dev/null" 2>/dev/null \
        || say "note: threaded NAPI not available on $SRV_IF (needs Linux 5.12+)"

    # veth has no RSS: a packet arrives on the receive queue whose number is the transmit queue
    # the client's kernel picked, from the socket's random txhash. Linux draws a new txhash on an
    # RTO or a spurious retransmission (net.core.txrehash), moving the flow to another queue, so
    # its packets would reach a worker that does not know the connection. A NIC's RSS hashes the
    # 4-tuple and never does that: keep each client socket on one queue, as RSS would.
    # What the client's kernel sends without a socket (a RST to a closed port, a TIME-WAIT ACK)
    # goes through a per-CPU control socket whose queue comes from the skb's hash instead, so
    # with more than one queue it could reach a worker that does not know the connection (a
    # connection whose last ACK was lost then stayed in LAST-ACK): bpf/lab_rss.bpf.c, at tc
    # egress on the client's veth, gives every TCP skb a queue hashed from its 4-tuple.
    ip netns exec "$CLI" sysctl -qw net.core.txrehash=0 \
        || fail "sysctl net.core.txrehash=0 failed in $CLI (needs Linux 5.19+)"
    (( queues > 1 )) && attach_rss

    ip -n "$SRV" route add "$FLOOD_V4" via "$CLI_V4" dev "$SRV_IF"
    ip -n "$SRV" -6 route add "$FLOOD_V6" via "$CLI_V6" dev "$SRV_IF"

    # Bounded wait for the link and for IPv6 to be usable (nodad makes this quick).
    local tries
    for ((tries = 0; tries < 50; tries++)); do
        if ip netns exec "$CLI" ping -c1 -W1 -q "$SRV_V4" >/dev/null 2>&1 \
            && ip netns exec "$CLI" ping -6 -c1 -W1 -q "$SRV_V6" >/dev/null 2>&1; then
            break
        fi
        sleep 0.1
    done
    ((tries < 50)) || fail "the lab is up but $CLI cannot ping $SRV over IPv4 and IPv6"
    trap - EXIT
    say "up: $SRV ($SRV_IF $SRV_V4 $SRV_V6) <-> $CLI ($CLI_IF $CLI_V4 $CLI_V6), $queues queue(s), $client_addrs extra client address(es)"
}

status() {
    local ns found=0
    for ns in "$SRV" "$CLI"; do
        if ns_exists "$ns"; then
            found=$((found + 1))
            echo "== $ns"
            ip -n "$ns" -br addr show
            ip -n "$ns" -d link show | grep -E 'xdp|prog/xdp' || true
        else
            echo "== $ns: absent"
        fi
    done
    [ "$found" -eq 2 ] && say "status: up" || say "status: not up ($found of 2 namespaces)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up) up "$@" ;;
    down) down ;;
    status) status ;;
    exec)
        which=${1:?exec needs srv or cli}; shift
        case "$which" in srv) ns=$SRV ;; cli) ns=$CLI ;; *) fail "exec: srv or cli, got '$which'" ;; esac
        [ $# -gt 0 ] || fail "exec: no command given"
        exec ip netns exec "$ns" "$@"
        ;;
    *) fail "usage: $0 up [--queues N] [--client-addrs N] | down | status | exec srv|cli CMD..." ;;
esac
