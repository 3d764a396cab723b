#!/usr/bin/env bash
# The SYN-flood generator against hping3, in a veth lab of its own: one hping3 process, and
# `tern-bench flood` through AF_XDP and through XDP live frames, each pinned to core 0, bare SYNs
# to 198.18.0.1:8080. The server end is a cheap sink (`tern-bench xdp-pass --drop`: tern_steer
# drops the flood in XDP) whose NAPI thread is pinned to core 1, so what is measured is what
# each generator pushes through the link, not what a server can answer. The rate is veth-cli's
# tx_packets over the middle 2 s of a 4 s run (start-up excluded); medians of GEN_REPS (3).
#
#   scripts/bench-generators.sh [OUT_DIR]     (default target/bench; writes generators.md there)
#
# hping3 always gets a fixed source inside the benchmarking range (-a 198.18.200.1), never
# --rand-source, which would forge sources from all of IPv4.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
reps=${GEN_REPS:-3}
[[ "$reps" =~ ^[1-9]$ ]] || { echo "bench-generators: GEN_REPS must be 1..9" >&2; exit 1; }

if [ "${TERN_BOOTSTRAPPED:-0}" != 1 ]; then
    scripts/bootstrap.sh
    export TERN_BOOTSTRAPPED=1
    cargo build --release --locked -p tern-bench
fi
bench=$(realpath "${CARGO_TARGET_DIR:-target}/release/tern-bench")
[ -x "$bench" ] || { echo "bench-generators: no $bench (cargo build --release -p tern-bench)" >&2; exit 1; }
command -v hping3 >/dev/null || { echo "bench-generators: hping3 missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
mkdir -p "$out"

export TERN_LAB_PREFIX="tbgen$$-"
lab=scripts/lab.sh
sink=
cleanup() {
    if [ -n "$sink" ]; then kill -INT "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true; fi
    $lab down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

napi() { ps -eo pid=,comm= | awk '$2 ~ /^napi\/veth-srv-/ {print $1}' | sort; }
$lab up --queues 1 >/dev/null
before=$(napi)
$lab exec srv "$bench" xdp-pass -i veth-srv --drop 198.18.0.1:8080 --duration 300s >"$out/generators-sink.log" 2>&1 &
sink=$!
for _ in $(seq 100); do
    grep -q "xdp-pass: attached" "$out/generators-sink.log" 2>/dev/null && break
    kill -0 "$sink" 2>/dev/null || { cat "$out/generators-sink.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "xdp-pass: attached" "$out/generators-sink.log" || { echo "bench-generators: the sink did not attach" >&2; exit 1; }
sleep 0.3
pinned=0
for pid in $(comm -13 <(echo "$before") <(napi)); do
    taskset -pc 1 "$pid" >/dev/null && pinned=$((pinned + 1))
done
(( pinned > 0 )) || { echo "bench-generators: no NAPI thread of veth-srv appeared to pin" >&2; exit 1; }

tx() { $lab exec cli cat /sys/class/net/veth-cli/statistics/tx_packets; }
# window CMD...: packets per second veth-cli sent between 1 s and 3 s into CMD's run.
window() {
    "$@" >>"$out/generators-runs.log" 2>&1 &
    local pid=$! a b t0 t1
    sleep 1; a=$(tx); t0=$(date +%s.%N)
    sleep 2; b=$(tx); t1=$(date +%s.%N)
    wait "$pid" || true
    python3 -c "print(round(($b - $a) / ($t1 - $t0)))"
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

: >"$out/generators-runs.log"
declare -A runs
names=(hping3 af-xdp live-frames)
for ((r = 1; r <= reps; r++)); do
    for name in "${names[@]}"; do
        case $name in
            hping3) cmd=($lab exec cli timeout -s INT 4 taskset -c 0 hping3 -S -p 8080 --flood -a 198.18.200.1 -q 198.18.0.1) ;;
            *) cmd=($lab exec cli "$bench" flood -i veth-cli --dst 198.18.0.1:8080 --shape syn --duration 4s --core 0 --tx "$name") ;;
        esac
        v=$(window "${cmd[@]}")
        runs[$name]+="$v "
        printf '   %-12s run %d: %s pps\n' "$name" "$r" "$v"
    done
done

hp=$(median ${runs[hping3]})
hping_version=$(hping3 --version 2>&1 | awk '/version/ {print $3; exit}')
{
    echo "### The flood generator against hping3 (\`scripts/bench-generators.sh\`)"
    echo
    echo "Bare SYNs to 198.18.0.1:8080 from core 0, into an XDP drop sink on \`veth-srv\` whose NAPI"
    echo "thread runs on core 1; packets per second \`veth-cli\` sent between 1 s and 3 s into each 4 s run,"
    echo "medians of $reps alternating runs. hping3 ${hping_version:-} uses one fixed in-range source"
    echo "(\`-a 198.18.200.1\`); the flood draws sources from 198.18.128.0/17."
    echo
    echo "| generator | runs (pps) | median | × hping3 |"
    echo "| --- | --- | --- | --- |"
    for name in "${names[@]}"; do
        m=$(median ${runs[$name]})
        label=$name
        case $name in
            hping3) label="hping3, one process" ;;
            af-xdp) label="\`tern-bench flood --tx af-xdp\` (copy-mode AF_XDP)" ;;
            live-frames) label="\`tern-bench flood --tx live-frames\` (BPF_PROG_RUN, 2 threads)" ;;
        esac
        ratio=$(python3 -c "print(f'{$m / max($hp, 1):.1f}×')")
        printf '| %s | %s | %s | %s |\n' "$label" "$(echo ${runs[$name]} | sed 's/ / · /g')" "$m" "$ratio"
    done
    echo
    echo '```sh'
    echo "scripts/bench-generators.sh    # GEN_REPS=$reps; per run, in the client namespace:"
    echo "timeout -s INT 4 taskset -c 0 hping3 -S -p 8080 --flood -a 198.18.200.1 -q 198.18.0.1"
    echo "tern-bench flood -i veth-cli --dst 198.18.0.1:8080 --shape syn --duration 4s --core 0 --tx af-xdp"
    echo "tern-bench flood -i veth-cli --dst 198.18.0.1:8080 --shape syn --duration 4s --core 0 --tx live-frames"
    echo '```'
} >"$out/generators.md"
cat "$out/generators.md"
