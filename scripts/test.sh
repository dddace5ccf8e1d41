#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite.
#   scripts/test.sh          the short form (CI)
#   STRATA_TEST_LONG=1 scripts/test.sh   also the long fault loops (when they exist)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s (%ss elapsed)\n' "$*" "$(( $(date +%s) - start ))" >&2; }

step "setup"
scripts/setup.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "tests"
cargo test --workspace --no-fail-fast

step "deployment: chart lint and render, images, compose"
# The debug binary the tests just built is enough to check the images and the compose cluster.
STRATA_BIN="${STRATA_BIN:-target/debug/strata}" scripts/test-deploy.sh

if [ "${STRATA_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke run"
  scripts/fuzz.sh "${STRATA_FUZZ_SECONDS:-20}"
fi
step "done"
