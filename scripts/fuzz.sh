#!/usr/bin/env bash
# Builds every fuzz target and runs each for a while.
#   scripts/fuzz.sh            60 s per target
#   scripts/fuzz.sh SECONDS    SECONDS per target
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP lets the one stable toolchain on
# these machines accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
# Every crate with a fuzz/ folder: format (record batches, segments, flush objects), proto (the
# consumer protocol bytes groups exchange), kafka (every request frame Kafka clients send) and
# sasl (SCRAM and PLAIN messages, read before a client has proved anything).
# Targets are found by `cargo fuzz list`, so a new [[bin]] in a fuzz/Cargo.toml runs here as is.
for crate in format proto kafka sasl; do
pushd "$crate" >/dev/null
for target in $(cargo fuzz list); do
  echo "[fuzz] $target for ${seconds}s" >&2
  mkdir -p "fuzz/corpus/$target"
  cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|==|SUMMARY|ERROR)|panicked" || true
  # cargo fuzz exits non-zero on a crash; re-check the status through the artifacts folder.
  if compgen -G "fuzz/artifacts/$target/crash-*" >/dev/null; then
    echo "[fuzz] $target found a crash: $(ls fuzz/artifacts/$target/crash-* | head -1)" >&2
    exit 1
  fi
done
popd >/dev/null
done
