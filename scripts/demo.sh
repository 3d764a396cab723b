#!/usr/bin/env bash
# The main job, in under two minutes: ternd against the Linux kernel under a SYN flood, in the
# veth lab. Each system serves echo in the server namespace while tern-bench floods it with
# Linux-like SYNs from spoofed sources (none, 50,000/s, then flat out) and legitimate clients
# connect alongside at 200/s; the tables show SYN-ACKs answered, legitimate success and connect
# latency. Everything it starts is bounded in time and torn down, also on failure or Ctrl-C.
#
#   scripts/demo.sh [OUT_DIR]        (default target/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/demo}

scripts/bootstrap.sh
export TERN_BOOTSTRAPPED=1

echo "== building (release)"
cargo build --release --locked -p ternd -p tern-bench

rm -rf "$out"
mkdir -p "$out"
bench=target/release/tern-bench
common=(syn-flood --rates 0,50000,max --step 3s --legit-rate 200 --shape linux-syn)

echo "== the Linux kernel (tern-bench serve, tcp_syncookies = 1)"
"$bench" run "${common[@]}" --server kernel --syncookies 1 --out "$out/kernel" >"$out/kernel.log" 2>&1 \
    || { tail -20 "$out/kernel.log"; exit 1; }
echo "== ternd (one worker, syncookies on-overflow)"
"$bench" run "${common[@]}" --server ternd --ternd target/release/ternd --out "$out/ternd" >"$out/ternd.log" 2>&1 \
    || { tail -20 "$out/ternd.log"; exit 1; }

echo
cat "$out/kernel/scenario.md"
echo
cat "$out/ternd/scenario.md"
echo
echo "Raw figures: $out/kernel/scenario.json and $out/ternd/scenario.json (logs beside them)."
echo "On this 2-core VM the flood, the veth's NAPI work and the server share the cores: compare"
echo "the two tables row by row, not with numbers from another machine (docs/benchmarks.md)."
