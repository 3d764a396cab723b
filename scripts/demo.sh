#!/usr/bin/env bash
# The main job, in under two minutes: ternd against the Linux kernel under a SYN flood, in the
# veth lab. Each system serves echo in the server namespace while tern-bench floods it with
# Linux-like SYNs from spoofed sources (none, 50,000/s, then flat out) and legitimate clients
# connect alongside at 200/s; the tables show SYN-ACKs answered, the server's CPU time,
# legitimate success and connect latency, and tern-bench report draws the plots.
#
# The setup is the same for every server: an XDP program on veth-srv (ternd's own; for the
# kernel tern_steer with no listener, so every packet passes), so the receive work runs in
# veth-srv's NAPI thread; that thread and the server on core 0, the flood and the clients on
# core 1. Everything it starts is bounded in time and torn down, also on failure or Ctrl-C.
#
#   scripts/demo.sh [OUT_DIR]        (default target/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/demo}

scripts/bootstrap.sh
export TERN_BOOTSTRAPPED=1

echo "== building (release)"
cargo build --release --locked -p ternd -p tern-bench
bin=${CARGO_TARGET_DIR:-target}/release

rm -rf "$out"
mkdir -p "$out"
bench=$bin/tern-bench
common=(syn-flood --rates 0,50000,max --step 3s --legit-rate 200 --shape linux-syn)

# Each run is bounded: SIGINT after 100 s (tern-bench then cleans up), SIGKILL 20 s later.
run() { # NAME ARGS...
    local name=$1; shift
    timeout --signal=INT --kill-after=20 100 "$bench" run "${common[@]}" "$@" --out "$out/$name" \
        >"$out/$name.log" 2>&1 || { tail -20 "$out/$name.log"; exit 1; }
}
echo "== the Linux kernel (tern-bench serve, tcp_syncookies = 1)"
run kernel-sc1 --server kernel --syncookies 1
echo "== the Linux kernel (tern-bench serve, tcp_syncookies = 2)"
run kernel-sc2 --server kernel --syncookies 2
echo "== ternd (one worker, syncookies on-overflow)"
run ternd --server ternd --ternd "$bin/ternd"

for name in kernel-sc1 kernel-sc2 ternd; do
    echo
    cat "$out/$name/scenario.md"
done
echo
echo "== side by side"
"$bench" report "$out" --plots "$out/img" --markdown "$out/combined.md"
echo "Raw figures: $out/*/scenario.json (logs beside them); plots: $out/img/*.svg."
echo "On this 2-core VM the flood and the server have one core each: compare the rows of one"
echo "run, not with numbers from another machine (docs/benchmarks.md)."
