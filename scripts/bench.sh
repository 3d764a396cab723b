#!/usr/bin/env bash
# The full comparison: ternd against the Linux kernel (tcp_syncookies 1 and 2) under SYN floods
# of rising rate, in the veth lab, several repetitions each, then the medians as one table, SVG
# plots and the ratios the benchmark issue names. Regenerates the block of docs/benchmarks.md
# between <!-- bench:begin --> and <!-- bench:end --> (appended if the file has none) and the
# plots under docs/img/.
#
#   scripts/bench.sh [OUT_DIR]          (default target/bench; raw JSON and logs go there)
#   BENCH_REPORT_ONLY=1 scripts/bench.sh [OUT_DIR]
#                                       report again from OUT_DIR's runs (after editing the
#                                       notes or the report), measuring nothing
#
# Knobs (environment): BENCH_REPS (5), BENCH_STEP (3s), BENCH_RATES (0,25000,50000,100000,
# 200000,max), BENCH_LEGIT_RATE (200), BENCH_BUDGET (480: seconds of measuring after which no
# new repetition starts), BENCH_CHURN_RATES (5000,10000,20000,40000: connections/s),
# BENCH_CHURN_REPS (3), BENCH_DOC (docs/benchmarks.md; "-" = leave the docs alone),
# BENCH_IMG (docs/img), GEN_REPS (3, scripts/bench-generators.sh).
#
# Every run is `tern-bench run syn-flood` in a lab of its own (bounded, torn down also on
# failure; see crates/tern-bench/README.md), placed the same way for every server: server
# threads and veth-srv's NAPI thread on core 0, flood, legitimate clients and veth-cli's NAPI
# thread on core 1. Phase 1 runs every system at every rate (ternd with the raw AF_XDP reflect
# baseline first); phase 2 runs ternd, and the kernel with syncookies 2, under a flood at half
# the capacity phase 1 measured for ternd, and without;
# phase 3 runs `tern-bench run churn` (connections per second) for ternd and the kernel; phase 4
# is scripts/bench-generators.sh (the flood generator against hping3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
reps=${BENCH_REPS:-5}
step=${BENCH_STEP:-3s}
rates=${BENCH_RATES:-0,25000,50000,100000,200000,max}
legit=${BENCH_LEGIT_RATE:-200}
churn_rates=${BENCH_CHURN_RATES:-5000,10000,20000,40000}
churn_reps=${BENCH_CHURN_REPS:-3}
budget=${BENCH_BUDGET:-480}
doc=${BENCH_DOC:-docs/benchmarks.md}
img=${BENCH_IMG:-docs/img}
[[ "$reps" =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_REPS must be 1..99" >&2; exit 1; }
[[ "$budget" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_BUDGET must be seconds" >&2; exit 1; }
[[ "$churn_reps" =~ ^[0-9]$ ]] || { echo "bench: BENCH_CHURN_REPS must be 0..9" >&2; exit 1; }

scripts/bootstrap.sh
export TERN_BOOTSTRAPPED=1

echo "== building (release)"
cargo build --release --locked -p ternd -p tern-bench
bin=${CARGO_TARGET_DIR:-target}/release
bench=$bin/tern-bench
[ -x "$bench" ] && [ -x "$bin/ternd" ] || { echo "bench: no binaries in $bin" >&2; exit 1; }

measure() {
    rm -rf "$out"
    mkdir -p "$out/runs"
    started=$(date +%s)
    common=(syn-flood --step "$step" --legit-rate "$legit" --shape linux-syn --ternd "$bin/ternd")
    # One run, bounded: SIGINT after the time its steps need plus a margin (tern-bench then stops
    # its children and tears its lab down), SIGKILL 30 s later.
    run() { # NAME ARGS...
        local name=$1; shift
        local dir="$out/runs/$name"
        printf '   %-26s' "$name"
        if timeout --signal=INT --kill-after=30 300 "$bench" run "${common[@]}" "$@" --out "$dir" \
            >"$out/runs/$name.log" 2>&1; then
            echo "ok ($(( $(date +%s) - started )) s)"
        else
            echo "FAILED (log: $out/runs/$name.log)"
            tail -5 "$out/runs/$name.log" | sed 's/^/     /'
            rm -rf "$dir"
        fi
    }

    echo "== phase 1: rates $rates, $step steps, $legit legitimate connections/s, $reps repetition(s)"
    systems=(ternd kernel-sc1 kernel-sc2)
    for ((r = 1; r <= reps; r++)); do
        if (( r > 1 && $(date +%s) - started > budget )); then
            echo "   budget of $budget s spent: stopping after $((r - 1)) repetition(s)"
            break
        fi
        # Rotate the order so that slow drift of the machine does not always favour one system.
        for ((i = 0; i < 3; i++)); do
            s=${systems[$(( (i + r - 1) % 3 ))]}
            case $s in
                ternd) run "ternd-r$r" --server ternd --reflect --rates "$rates" ;;
                kernel-sc1) run "kernel-sc1-r$r" --server kernel --syncookies 1 --rates "$rates" ;;
                kernel-sc2) run "kernel-sc2-r$r" --server kernel --syncookies 2 --rates "$rates" ;;
            esac
        done
    done

    capacity=$("$bench" report "$out/runs" --capacity ternd 2>/dev/null || echo 0)
    half=$(( (capacity / 2 + 500) / 1000 * 1000 ))
    if (( half >= 1000 )); then
        echo "== phase 2: ternd and the kernel (sc=2) under a flood at half ternd's capacity ($capacity pps -> $half pps), and without"
        for ((r = 1; r <= reps; r++)); do
            if (( r > 1 && $(date +%s) - started > budget + 150 )); then
                echo "   budget spent: stopping after $((r - 1)) repetition(s)"
                break
            fi
            run "ternd-half-r$r" --server ternd --rates "0,$half"
            # What the kernel (syncookies 2) does under the same flood, as the issue asks.
            run "kernel-sc2-half-r$r" --server kernel --syncookies 2 --rates "0,$half"
        done
    else
        echo "== phase 2 skipped: no ternd capacity measured"
    fi
    echo "== phase 3: connection churn at $churn_rates connections/s, $churn_reps repetition(s)"
    common=(churn --step "$step" --ternd "$bin/ternd")
    for ((r = 1; r <= churn_reps; r++)); do
        if (( r % 2 )); then order=(ternd kernel); else order=(kernel ternd); fi
        for s in "${order[@]}"; do
            run "churn-$s-r$r" --server "$s" --rates "$churn_rates"
        done
    done

    echo "== phase 4: the flood generator against hping3"
    scripts/bench-generators.sh "$out" || echo "   FAILED (the generator table is left out)"
    elapsed=$(( $(date +%s) - started ))
    # What the generated block says about the measurement, for BENCH_REPORT_ONLY.
    printf 'elapsed=%s\nhalf=%s\nreps=%s\nstep=%s\nrates=%s\nlegit=%s\nchurn_rates=%s\nchurn_reps=%s\n' \
        "$elapsed" "$half" "$reps" "$step" "$rates" "$legit" "$churn_rates" "$churn_reps" >"$out/meta.env"
}

if [ "${BENCH_REPORT_ONLY:-0}" = 1 ]; then
    [ -f "$out/meta.env" ] || { echo "bench: no earlier measurement in $out" >&2; exit 1; }
    # shellcheck disable=SC1091
    . "$out/meta.env"
    echo "== reporting again from $out/runs (measured earlier, in $elapsed s)"
else
    measure
fi

# The machine and the commands, for the generated block.
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
distro=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || echo unknown)
cat >"$out/preamble.md" <<EOF
## System: the full comparison (\`scripts/bench.sh\`)

Generated by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) in ${elapsed} s of measuring; everything
between the \`bench:begin\`/\`bench:end\` markers is rewritten by each run.

Machine: $(nproc) × ${cpu_model:-unknown CPU}, ${mem_gib} GiB, $distro,
Linux $(uname -r) ($(uname -m)), $(rustc --version 2>/dev/null | cut -d' ' -f1-2). A shared,
noisy VM: other work ran on the same two cores during the runs, which is why every figure is a
median of repetitions and why the server's CPU time is counted per thread rather than per core.

Setup, the same for every server: the veth lab with one queue, copy-mode AF_XDP; an XDP
program on \`veth-srv\` for every server (ternd's own; for the kernel tern_steer with no
listener, every packet \`XDP_PASS\`), so the receive work runs in \`veth-srv\`'s threaded NAPI
kernel thread; that thread and the server's threads pinned to core 0; the flood, the legitimate
clients (echo, ${legit} connections/s, 3 s timeout) and \`veth-cli\`'s NAPI thread (which
receives the replies; also with the pass program, \`SCHED_FIFO\` so the flood cannot make it
lose replies, and re-polling every 50 µs while busy so that the server's transmit path does not
wake a thread on core 1 for every reply) on core 1. The kernel is \`tern-bench serve\` (epoll,
SO_REUSEPORT) with \`net.ipv4.tcp_syncookies\` 1 or 2; ternd runs with
\`tcp.syncookies=on-overflow\`.

- *offered pps*: what the flood sent; *max* is as fast as its core allowed, which depends on
  how much of core 1 the replies' receive path took.
- *answered pps*: packets the server sent per second (\`veth-srv\` \`tx_packets + tx_dropped\`)
  from the flood's first packet to its last: SYN-ACKs (with \`tcp_syncookies = 1\` also the
  kernel's SYN-ACK retransmissions for requests in its SYN queue, hence more than offered at
  low rates), plus a few hundred per second for the legitimate connections.
- *server CPU*: time on a CPU (\`/proc/PID/task/TID/schedstat\`) of the server process's threads
  and of \`veth-srv\`'s NAPI thread, plus softirq and irq time of core 0 (\`/proc/stat\`), per
  second of the step (100 % = one core). *answered per CPU-s* divides the two.
- Medians over the repetitions (*runs*); *legit ok* sums them.
- *Connection churn* (phase 3): \`tern-bench churn\`, an AF_XDP client on core 1 (kernel-socket
  clients run out of CPU near 5,000 connections/s there), opens connections at a fixed rate
  from 8,192 addresses × 64 ports: SYN, a 64-byte request on the handshake's ACK, the echo, the
  client's FIN, the server's FIN, the last ACK; no retransmission, so a lost segment shows as a
  failed connection. The same placement as above; the kernel is \`tern-bench serve --mode echo\`
  (one thread). *connections per busy CPU-s* divides the completed connections by the busy time
  of core 0 (\`/proc/stat\`: everything that ran there, not only the server's threads, because
  the kernel frees sockets and runs TCP timers in other kernel threads).

\`\`\`sh
scripts/bench.sh        # BENCH_REPS=$reps BENCH_STEP=$step BENCH_RATES=$rates
# which runs, per repetition (phase 1):
tern-bench run syn-flood --server ternd --reflect --rates $rates --step $step --legit-rate $legit
tern-bench run syn-flood --server kernel --syncookies 1 --rates $rates --step $step --legit-rate $legit
tern-bench run syn-flood --server kernel --syncookies 2 --rates $rates --step $step --legit-rate $legit
# phase 2: ternd at half its measured capacity, and the kernel under the same flood
tern-bench run syn-flood --server ternd --rates 0,$half --step $step --legit-rate $legit
tern-bench run syn-flood --server kernel --syncookies 2 --rates 0,$half --step $step --legit-rate $legit
# phase 3: connections per second ($churn_reps repetitions each)
tern-bench run churn --server ternd --rates $churn_rates --step $step
tern-bench run churn --server kernel --rates $churn_rates --step $step
# phase 4: the generator against hping3
scripts/bench-generators.sh
tern-bench report target/bench/runs --plots docs/img --plots-link img --splice docs/benchmarks.md
\`\`\`
EOF

# Why the figures are what they are (a profile, kept beside the code that measures).
notes=crates/tern-bench/docs/bench-limits.md
args=("$out/runs" --plots "$img" --preamble "$out/preamble.md" --markdown "$out/combined.md")
[ -f "$out/generators.md" ] && args+=(--append "$out/generators.md")
[ -f "$notes" ] && args+=(--append "$notes")
if [ "$doc" != "-" ]; then
    args+=(--splice "$doc" --plots-link "$(realpath -m --relative-to="$(dirname "$doc")" "$img")")
fi
echo "== report"
"$bench" report "${args[@]}" | tee "$out/report.txt"
echo "Raw figures: $out/runs/*/scenario.json; the block: $out/combined.md (${elapsed} s of measuring)."
