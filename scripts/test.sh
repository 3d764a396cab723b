#!/usr/bin/env bash
# Runs every check CI runs: bootstrap, formatting, clippy, and the whole test suite, including the
# privileged lab tests (they need root; set TERN_SKIP_LAB=1 to skip them explicitly).
#
#   scripts/test.sh            everything
#   scripts/test.sh -p CRATE   one crate's tests (after the same fmt and clippy checks)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "bootstrap"
scripts/bootstrap.sh
export TERN_BOOTSTRAPPED=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace $*"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
if [ $# -gt 0 ]; then
    cargo test --locked "$@" 2>&1 | tee "$log"
else
    cargo test --workspace --locked 2>&1 | tee "$log"
fi
rc=${PIPESTATUS[0]}
set -e

# One closing line over all test binaries (cargo prints one result line per binary).
read -r passed failed ignored < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed;?$/) p += $(i-1);
            if ($(i) ~ /^failed;?$/) f += $(i-1);
            if ($(i) ~ /^ignored;?$/) g += $(i-1);
        }
    } END { print p + 0, f + 0, g + 0 }' "$log")
echo
echo "tests: $passed passed, $failed failed, $ignored skipped"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "cargo test exited with $rc before all tests ran (build error or a crashed test binary)"
fi
exit "$rc"
